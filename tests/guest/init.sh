#!/bin/busybox sh
# init.sh: /init of the test initramfs; runs as PID 1 inside the throwaway
# guest. Loads the modules listed in /etc/bh-modules, then hands over to the
# payload /bh-run. Whatever the payload does, the guest ends powered off, so
# the host never waits for a guest that has nothing left to do.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo 3 >/proc/sys/kernel/printk
while read -r m; do
	insmod "/lib/bh-modules/$m.ko" || echo "BH-ERROR insmod $m failed"
done </etc/bh-modules
# bh.exec on the kernel command line: the payload becomes PID 1 (to hand
# over to another init with switch_root).
case " $(cat /proc/cmdline) " in
*" bh.exec "*) exec /bh-run ;;
esac
/bh-run
echo "BH-ERROR payload returned $?"
poweroff -f
