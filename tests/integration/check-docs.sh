#!/bin/sh
# check-docs.sh: the manual pages `make` built agree with the bulkheadd built
# beside them.
# * Every option of `bulkheadd --help` is documented in bulkheadd(8).
# * Every long option the pages name is in --help: none is stale. Left out
#   are bulkheadd(8)'s COMPATIBILITY WITH VIRTIOFSD, whose options are
#   virtiofsd's (check-compat.sh runs each against the binary), the
#   options of other programs in examples ($foreign: systemctl's,
#   setpriv's) and configure's.
# * Every path the pages give is the one this build uses: the policy
#   directory and the worker program as --help prints them, configure's
#   directories (BH_*DIR, from make) for the rest, /run/bulkhead/ for the
#   systemd units' sockets (systemd's /run whatever the prefix) and
#   /srv/bulkhead/ for their default shares; no placeholder is left.
# * groff formats each page without a warning (line breaks aside).
# Runs in: make check, in the build tree (daemon/bulkheadd, man/*.[58]).
set -u
pages="man/bulkheadd.8 man/bulkhead.conf.5 man/bulkhead.policy.5"
foreign="--now --no-new-privs"
help=$(./daemon/bulkheadd --help) || { echo "check-docs: bulkheadd --help failed"; exit 1; }
fail=0
bad() {
	echo "check-docs: $*"
	fail=1
}
for p in $pages; do
	[ -r "$p" ] || { echo "check-docs: cannot read $p (not built?)"; exit 1; }
done

# A page as text to compare: '\-' and '\e' as typed, no font changes.
plain() {
	sed -e 's/\\-/-/g' -e 's/\\e/\\/g' -e 's/\\f[BIRP]//g' "$1"
}

# --help's options are documented.
for o in $(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
	plain man/bulkheadd.8 | grep -q -- "$o" || bad "$o is in --help but not in man/bulkheadd.8"
done

# The pages' long options are in --help.
for p in $pages; do
	for o in $(plain "$p" | sed '/^\.SH COMPATIBILITY WITH VIRTIOFSD/,/^\.SH /d' |
		grep -o -- '--[a-z][a-z-]*' | sort -u); do
		case " $foreign " in *" $o "*) continue ;; esac
		case $o in --with-* | --without-* | --enable-* | --disable-*) continue ;; esac # configure's
		printf '%s\n' "$help" | grep -q -- "$o" || bad "$o is in $p but not in --help"
	done
done

# Paths: --help's, and configure's directories.
pdir=$(printf '%s\n' "$help" | sed -n 's/^  Policy directory: *//p' | head -n 1)
worker=$(printf '%s\n' "$help" | sed -n 's/^  Worker program: *//p' | head -n 1)
[ -n "$pdir" ] && [ -n "$worker" ] || bad "--help prints no policy directory or worker program"
for v in BH_SYSCONFDIR BH_DATADIR BH_LOCALSTATEDIR BH_RUNSTATEDIR; do
	eval "[ -n \"\${$v:-}\" ]" || { echo "check-docs: $v is not set (run through make check)"; exit 1; }
done
json=$BH_DATADIR/qemu/vhost-user/60-bulkhead.json
# The paths in page $1 that end in $2 must begin with one of $3...: each
# one that does not is printed.
stray_paths() {
	p=$1 pat=$2
	shift 2
	plain "$p" | grep -o -- "[^ \"'=<>]*$pat" | sort -u | while read -r path; do
		ok=0
		for want in "$@"; do
			case "$path" in "$want"*) ok=1 ;; esac
		done
		[ $ok = 1 ] || echo "$p names $path, not under this build's $*"
	done
}
for p in $pages; do
	if grep -n '@[a-zA-Z_]*@' "$p"; then bad "$p: a placeholder was left (above)"; fi
	msgs=$(
		stray_paths "$p" /bulkhead/policy "${pdir%/*}"
		stray_paths "$p" /bulkhead-worker "$worker"
		stray_paths "$p" /60-bulkhead.json "$json"
		stray_paths "$p" /bulkhead/ "$BH_SYSCONFDIR/bulkhead/" "$BH_RUNSTATEDIR/bulkhead/" \
			"$BH_LOCALSTATEDIR/lib/bulkhead/" /run/bulkhead/ /srv/bulkhead/
	)
	[ -z "$msgs" ] || bad "$msgs"
done
plain man/bulkheadd.8 | grep -qF -- "${pdir%/*}/ arch" ||
	bad "man/bulkheadd.8 does not give --help's policy directory ${pdir%/*}/<arch>"
plain man/bulkheadd.8 | grep -qF -- "$worker" ||
	bad "man/bulkheadd.8 does not name --help's worker program $worker"
plain man/bulkheadd.8 | grep -qF -- "$json" || bad "man/bulkheadd.8 does not name $json"

# groff has nothing to say about the pages but where a line breaks: a long
# configured path (distcheck's) may leave a line it cannot adjust.
if command -v groff >/dev/null; then
	for p in $pages; do
		w=$(groff -t -man -Tutf8 -ww -Wbreak -z "$p" 2>&1)
		[ -z "$w" ] || bad "groff warns about $p: $w"
	done
fi

[ $fail = 0 ] && echo "check-docs: --help, the paths of this build and $pages agree"
exit $fail
