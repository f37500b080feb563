#!/bin/sh
# systemd-root.sh: payload (/bh-run, PID 1 through bh.exec) of the systemd
# guest's initramfs. The guest's root is the host's / (read-only over 9p as
# "hostroot") under a tmpfs overlay, with bulkhead installed into it as
# `make install` put it in /bh/inst.tar (DESTDIR layout); then the host's
# own systemd boots it as PID 1 into bh-test.target, whose service runs
# /var/lib/bh-test/systemd-guest.sh. Paths the build configured come in
# /bh/paths (sysconfdir=...). It trusts the host tree.
NEW=/newroot

fail() {
	echo "BH-ERROR systemd-root: $*"
	poweroff -f
}

mkdir -p /lower /upper $NEW
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose \
	hostroot /lower || fail "cannot mount the 9p host root"
mount -t tmpfs -o mode=0755 tmpfs /upper || fail "tmpfs"
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay $NEW ||
	fail "cannot make the overlay root"
tar -xf /bh/inst.tar -C $NEW || fail "cannot unpack the installed tree"
. /bh/paths
mkdir -p $NEW/var/lib/bh-test $NEW/srv/bulkhead/t "$NEW$sysconfdir/bulkhead" \
	$NEW/etc/systemd/system
cp /bh/systemd-guest.sh /bh/unit-client /bh/paths $NEW/var/lib/bh-test/ || fail "cp"
chmod 0755 $NEW/var/lib/bh-test/unit-client
echo "from the host's test" >$NEW/srv/bulkhead/t/hello.txt
# Instance t: a host directory share in the unit's default place.
cat >"$NEW$sysconfdir/bulkhead/t.conf" <<CONF
[share]
backend = passthrough
[passthrough]
dir = /srv/bulkhead/t
[daemon]
log_level = debug
CONF
# Instance m: a memory share.
cat >"$NEW$sysconfdir/bulkhead/m.conf" <<CONF
[share]
backend = memory
[memory]
size = 64M
CONF
cat >$NEW/etc/systemd/system/bh-test.target <<UNIT
[Unit]
Description=bulkhead's systemd test
Requires=bh-test.service
AllowIsolate=yes
UNIT
cat >$NEW/etc/systemd/system/bh-test.service <<UNIT
[Unit]
Description=bulkhead's systemd test, the guest half
Requires=bulkhead@t.socket bulkhead@m.socket
After=bulkhead@t.socket bulkhead@m.socket systemd-journald.service
[Service]
Type=oneshot
ExecStart=/bin/sh /var/lib/bh-test/systemd-guest.sh
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
UNIT
# /etc/machine-id empty: systemd makes a transient one
: >$NEW/etc/machine-id
# The host may be a container: its marker would make systemd believe it runs
# in one (ignoring the kernel command line, starting no udev).
rm -f $NEW/.dockerenv $NEW/run/.containerenv
echo "BH-READY uptime=$(cut -d' ' -f1 /proc/uptime)"
exec switch_root $NEW /lib/systemd/systemd
