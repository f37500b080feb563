#!/bin/sh
# bench-guest.sh: payload script of `make bench-guest`, run as root in the
# throwaway guest by hostroot.sh (from /run/bh). Mounts the share (with
# "paired" among the arguments, virtiofsd's second share too), runs the
# benchmark rows (bench_guest_rows.py, which prints the BH-ROW lines the host
# samples the daemon's CPU time at), unmounts. The host's bench-guest.py
# decides everything else.
#
# usage: bench-guest.sh [ROW...]   (hostroot.sh splits bh.args at commas)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
S=/mnt/share

P=
case " $* " in *" paired "*) P=/mnt/peer ;; esac

mount -t virtiofs testfs $S || {
	echo "BH-ERROR cannot mount the share"
	exit 1
}
if [ -n "$P" ]; then
	mkdir -p $P
	mount -t virtiofs peerfs $P || {
		echo "BH-ERROR cannot mount the second share"
		exit 1
	}
fi
/usr/bin/python3 "$HERE/bench_guest_rows.py" $S "$(echo "$*" | tr ' ' ',')"
rc=$?
for m in $S $P; do
	umount $m || {
		echo "BH-ERROR umount of $m failed"
		rc=1
	}
done
echo "BH-END"
exit $rc
