#!/bin/sh
# hostroot.sh: payload (/bh-run) of the workloads initramfs, runs as root in
# the throwaway guest. It turns the host's / (exported read-only over 9p as
# "hostroot") into the guest's root, so the host's own git, sqlite3, fio,
# python3 and coreutils run in the guest, then starts the workload script the
# kernel command line names (bh.script=NAME bh.args=A,B,...) inside it. The
# scripts come in the initramfs (/bh) and are copied to the guest's own /run/bh
# before the chroot: the host's checkout may be under a directory the guest
# covers with tmpfs. It trusts the host tree; the virtio-fs share is only
# mounted by the script.
NEW=/newroot

fail() {
	echo "BH-ERROR hostroot: $*"
	exit 1
}

script=
args=
for w in $(cat /proc/cmdline); do
	case $w in
	bh.script=*) script=${w#bh.script=} ;;
	bh.args=*) args=$(echo "${w#bh.args=}" | tr ',' ' ') ;;
	esac
done
[ -n "$script" ] || fail "no bh.script= on the kernel command line"
[ -f "/bh/$script" ] || fail "bh.script=$script is not in the initramfs's /bh"

mkdir -p $NEW
# The host asks for a dump of blocked tasks (alt-sysrq-w) when a check hangs.
echo 1 >/proc/sys/kernel/sysrq
# cache=loose: the host root does not change under the guest, and without a
# cache every exec of python3 or git walks 9p for each file it touches.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose \
	hostroot $NEW || fail "cannot mount the 9p host root"
mount -t proc proc $NEW/proc || fail "proc"
mount -t sysfs sysfs $NEW/sys || fail "sysfs"
mount -t devtmpfs devtmpfs $NEW/dev || fail "devtmpfs"
mkdir -p $NEW/dev/shm $NEW/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $NEW/dev/shm || fail "shm"
mount -t devpts devpts $NEW/dev/pts || true
# Everything the guest writes outside the share goes to tmpfs.
for d in tmp run var/tmp root mnt; do
	mount -t tmpfs -o mode=1777 tmpfs $NEW/$d || fail "tmpfs on /$d"
done
chmod 0755 $NEW/mnt $NEW/root $NEW/run
mkdir -p $NEW/mnt/share $NEW/run/bh
cp /bh/* $NEW/run/bh/ || fail "cannot copy the scripts to /run/bh"
chmod 0755 $NEW/run/bh
chmod 0644 $NEW/run/bh/*

echo "BH-READY uptime=$(cut -d' ' -f1 /proc/uptime)"
# shellcheck disable=SC2086
chroot $NEW /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 TERM=dumb /bin/sh "/run/bh/$script" $args
echo "BH-DONE status=$?"
sync
poweroff -f
