#!/bin/sh
# check-units.sh: the systemd units `make install` puts in the unit directory
# are what systemd accepts and as hardened as promised: the exposure that
# `systemd-analyze security --offline=true` gives bulkhead@.service (host
# directory and memory shares) is below 3.0, bulkhead-s3@.service's at most
# 4.0; the configured paths are substituted, no placeholder is left, and
# every directive is one systemd knows (systemd-analyze verify says nothing
# about unknown lvalues).
# Runs in: make check (the build tree; BH_SBINDIR is configure's sbindir).
set -u
rc=0
cd contrib/systemd || { echo "check-units: contrib/systemd was not built"; exit 1; }
for u in bulkhead@.socket bulkhead@.service bulkhead-s3@.socket bulkhead-s3@.service; do
	[ -r "$u" ] || { echo "check-units: $u was not built"; exit 1; }
	if grep -n '@[A-Za-z_]*@' "$u" | grep -v '^[0-9]*:#' | grep -v '@%i\|@\.\|@vm1\|@NAME'; then
		echo "check-units: $u keeps a placeholder"
		rc=1
	fi
done
grep -q "^ExecStart=$BH_SBINDIR/bulkheadd " bulkhead@.service ||
	{ echo "check-units: ExecStart does not name $BH_SBINDIR/bulkheadd"; rc=1; }

# verify reads the instance as a unit of its own: copies named for one
unitdir=$(mktemp -d)
trap 'rm -rf "$unitdir"' EXIT
for u in bulkhead@ bulkhead-s3@; do
	cp "$u.socket" "$unitdir/${u}t.socket"
	cp "$u.service" "$unitdir/${u}t.service"
done
out=$(cd "$unitdir" && systemd-analyze verify --man=no ./bulkhead@t.service ./bulkhead-s3@t.service 2>&1)
if printf '%s\n' "$out" | grep -i 'unknown\|failed to parse\|invalid'; then
	echo "check-units: systemd-analyze verify objects"
	rc=1
fi

# score LIMIT UNIT: the exposure, at most LIMIT (a number with one decimal)
score() {
	line=$(systemd-analyze security --offline=true "./$2" 2>&1 | grep 'Overall exposure level')
	s=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9][0-9.]*\) .*/\1/p')
	if [ -z "$s" ]; then
		echo "check-units: no score for $2: $line"
		rc=1
		return
	fi
	echo "check-units: $2 scores $s (limit $1)"
	awk -v s="$s" -v l="$1" 'BEGIN { exit !(s <= l) }' || { echo "check-units: $2 above $1"; rc=1; }
}
score 2.9 bulkhead@.service
score 4.0 bulkhead-s3@.service
exit $rc
