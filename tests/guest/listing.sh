#!/bin/sh
# listing.sh: print one line per path under DIR with everything a share must
# preserve (type, size, mode, owner, link count, mtime with nanoseconds, symlink
# target) and, in "full" mode, an md5 line per regular file. Runs in the guest
# on the virtio-fs mount and on the host on the seeded tree; both sides call
# the busybox applets explicitly so the formats are byte-identical.
#
# usage: listing.sh DIR full|stat      (run with TZ=UTC on the host)
set -u
dir=$1
mode=${2:-full}
cd "$dir" || exit 1
# busybox ash has pipefail
# shellcheck disable=SC3040
set -o pipefail
# A failure becomes an "E" line, so it shows up in the comparison itself.
{
	busybox find . -exec busybox stat -c 'S %n|%F|%s|%a|%u|%g|%h|%y|%N' {} + ||
		echo "E stat failed under $dir"
	if [ "$mode" = full ]; then
		busybox find . -type f -exec busybox md5sum {} + | busybox sed 's/^/M /' ||
			echo "E md5sum failed under $dir"
	fi
} | LC_ALL=C busybox sort
