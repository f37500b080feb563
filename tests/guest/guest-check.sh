#!/bin/sh
# guest-check.sh: the guest half of the end-to-end test, installed as /bh-run
# in the initramfs. It trusts nothing it reads from the share: it only reports.
# The host (run-guest-test.py) drives it over the serial console, one command
# per line, so the host alone decides what each boot does; every command ends
# with exactly one "BH-RESULT <command> ok|fail ..." line.
#
#   mount              mount -t virtiofs testfs /mnt
#   umount             umount /mnt
#   list full|stat     listing of /mnt: line count and sha256 on the console,
#                      the listing itself on /dev/vda ("BH-LISTING <bytes>" + data)
#   md5 PATH           md5sum of /mnt/PATH
#   write PATH         4 MiB of new random bytes to /mnt/PATH, fsynced; its md5sum
#   writeloop PATH     rewrite /mnt/PATH (16 MiB, fsynced) in a loop in the
#                      background until the guest ends
#   reboot | poweroff  immediately (-f), mounted or not
TAG=testfs
OUT=/dev/vda

result() {
	echo "BH-RESULT $*"
}

# The kernel may finish probing the virtio-blk disk a moment after insmod.
i=0
while [ ! -b $OUT ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done

echo "BH-READY uptime=$(cut -d' ' -f1 /proc/uptime)"
while read -r cmd arg; do
	case $cmd in
	mount)
		if mount -t virtiofs $TAG /mnt; then
			result mount ok
		else
			result mount fail
		fi
		;;
	umount)
		if umount /mnt; then
			result umount ok
		else
			result umount fail
		fi
		;;
	list)
		t0=$(cut -d' ' -f1 /proc/uptime)
		sh /listing.sh /mnt "$arg" >/tmp/listing
		n=$(wc -l </tmp/listing)
		h=$(sha256sum </tmp/listing | cut -d' ' -f1)
		sz=$(wc -c </tmp/listing)
		# The header and data go out in one write, then fsync, so the host
		# reads the complete listing once QEMU has exited or we reported.
		if { echo "BH-LISTING $sz"; cat /tmp/listing; } >/tmp/out &&
			dd if=/tmp/out of=$OUT bs=1M conv=fsync 2>/dev/null; then
			result list ok lines=$n sha256=$h t0=$t0 t1=$(cut -d' ' -f1 /proc/uptime)
		else
			result list fail could not write $OUT
		fi
		;;
	md5)
		s=$(md5sum "/mnt/$arg" | cut -d' ' -f1)
		if [ -n "$s" ]; then
			result md5 ok $s
		else
			result md5 fail
		fi
		;;
	write)
		if dd if=/dev/urandom of="/mnt/$arg" bs=1M count=4 conv=fsync 2>/dev/null; then
			result write ok "$(md5sum "/mnt/$arg" | cut -d' ' -f1)"
		else
			result write fail
		fi
		;;
	writeloop)
		(while :; do
			dd if=/dev/zero of="/mnt/$arg" bs=1M count=16 conv=fsync 2>/dev/null
		done) &
		result writeloop ok
		;;
	reboot)
		reboot -f
		;;
	poweroff)
		poweroff -f
		;;
	"")
		;;
	*)
		result "$cmd" fail unknown command
		;;
	esac
done
echo "BH-ERROR console closed"
