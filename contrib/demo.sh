#!/bin/sh
# demo.sh: from a fresh clone on Debian 12, as root: install the dependencies,
# build bulkhead, share a fresh temporary directory with bulkheadd, boot a
# throwaway Linux guest under QEMU that mounts it with virtio-fs, lists and
# reads the files, and show what the guest printed.
# Everything it starts is stopped and removed on exit.
#
# Environment: BH_SKIP_DEPS=1 (skip apt-get), BH_SKIP_BUILD=1 with
# BH_BUILDDIR=DIR (use an existing build), BH_DEMO_DAEMON=virtiofsd (serve with
# QEMU's virtiofsd instead, for comparison).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

say() {
	printf '\n==> %s\n' "$*"
}

if [ "$(id -u)" != 0 ]; then
	echo "demo: run as root (apt-get, and QEMU's vhost-user back end serves as root)" >&2
	exit 1
fi

say "installing dependencies"
./contrib/install-deps.sh

builddir=${BH_BUILDDIR:-$top}
if [ "${BH_SKIP_BUILD:-0}" != 1 ]; then
	say "building (autoreconf -fi && ./configure && make -j2)"
	autoreconf -fi
	./configure -q
	make -j2
	builddir=$top
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bulkhead-demo.XXXXXX")
daemon_pid=
qemu_pid=
# shellcheck disable=SC2317 # (called from the trap)
# Under set -e a failing kill (the process already gone) would end the trap
# before the rm; hence set +e here.
cleanup() {
	set +e
	if [ -n "$qemu_pid" ]; then
		kill "$qemu_pid" 2>/dev/null
	fi
	if [ -n "$daemon_pid" ]; then
		kill "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

say "creating a share in $tmp/share"
share=$tmp/share
mkdir -p "$share/notes"
echo "Hello from the host, $(date -u '+%Y-%m-%d %H:%M UTC')." >"$share/hello.txt"
printf 'bulkhead serves this directory over virtio-fs.\nEach virtqueue has its own sandboxed worker.\n' \
	>"$share/notes/readme.txt"
seq 1 5 >"$share/notes/numbers.txt"
ln -s notes/readme.txt "$share/link-to-readme"
ls -lR "$share"

# The guest's whole job, run as /bh-run by the initramfs's /init.
cat >"$tmp/payload.sh" <<'GUEST'
#!/bin/sh
echo "guest: kernel $(uname -r), mounting the share"
if ! mount -t virtiofs demo /mnt; then
	echo "DEMO-FAIL mount"
	poweroff -f
fi
ok=1
echo "guest: ls -lR /mnt"
ls -lR /mnt || ok=0
for f in /mnt/hello.txt /mnt/notes/readme.txt /mnt/notes/numbers.txt /mnt/link-to-readme; do
	echo "guest: cat $f"
	cat "$f" || ok=0
done
umount /mnt || ok=0
[ $ok = 1 ] && echo "DEMO-OK"
poweroff -f
GUEST

say "building the guest initramfs"
kinfo=$("$top/tests/guest/mkinitramfs.sh" --print-kernel)
kernel=${kinfo% *}
"$top/tests/guest/mkinitramfs.sh" -o "$tmp/initrd.cpio.gz" -k "${kinfo#* }" -p "$tmp/payload.sh"

sock=$tmp/vhost.sock
case ${BH_DEMO_DAEMON:-bulkheadd} in
virtiofsd)
	say "starting /usr/lib/qemu/virtiofsd on $share"
	/usr/lib/qemu/virtiofsd --socket-path="$sock" -o source="$share" -o cache=auto \
		>"$tmp/daemon.log" 2>&1 &
	;;
*)
	say "starting bulkheadd on $share"
	"$builddir/daemon/bulkheadd" --socket-path="$sock" --shared-dir="$share" \
		>"$tmp/daemon.log" 2>&1 &
	;;
esac
daemon_pid=$!
i=0
while [ ! -S "$sock" ]; do
	if ! kill -0 "$daemon_pid" 2>/dev/null || [ $i -ge 100 ]; then
		echo "demo: the daemon did not start listening:" >&2
		cat "$tmp/daemon.log" >&2
		exit 1
	fi
	sleep 0.1
	i=$((i + 1))
done

say "booting the guest (QEMU, TCG; about 10 seconds)"
timeout 180 qemu-system-x86_64 -accel tcg -smp 1 -m 512M \
	-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
	-chardev socket,id=char0,path="$sock" \
	-device vhost-user-fs-pci,chardev=char0,tag=demo \
	-kernel "$kernel" -initrd "$tmp/initrd.cpio.gz" -append "console=ttyS0 quiet" \
	-nographic -no-user-config -nodefaults -no-reboot -serial stdio -monitor none \
	</dev/null >"$tmp/console.log" 2>&1 &
qemu_pid=$!
# Show the guest's console as it comes, without the firmware's screen resets.
tail -n +1 -f --pid="$qemu_pid" "$tmp/console.log" | sed -u 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g'
wait "$qemu_pid" || true
qemu_pid=

if grep -q '^DEMO-OK' "$tmp/console.log"; then
	say "demo finished: the guest mounted and read the share through ${BH_DEMO_DAEMON:-bulkheadd}"
	exit 0
fi
echo "demo: FAILED (the guest did not finish); daemon log:" >&2
cat "$tmp/daemon.log" >&2
exit 1
