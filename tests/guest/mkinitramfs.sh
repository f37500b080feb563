#!/bin/sh
# mkinitramfs.sh: build the small initramfs the guest tests and the demo boot.
# Host-side test tooling, runs as root on the build machine; trusts only the
# host (busybox-static, the installed linux-image-amd64 kernel and its modules).
#
# The image holds busybox, the virtio/virtio-fs (and virtio-blk, for getting
# results out) modules of the chosen kernel, the generic /init from
# tests/guest/init.sh and one payload script installed as /bh-run.
#
# usage: mkinitramfs.sh -o OUT.cpio.gz -p PAYLOAD [-f SRC:DST]... [-m MODULE]... [-k KVER]
#        mkinitramfs.sh --print-kernel   (prints "VMLINUZ KVER" and exits)
set -eu

here=$(cd "$(dirname "$0")" && pwd)

# Modules in load order; dependencies found by modinfo are loaded first.
# -m appends more (the workloads guest adds 9p for its host-root).
BH_MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
fuse virtiofs virtio_blk"

die() {
	echo "mkinitramfs: $*" >&2
	exit 1
}

# The newest /boot/vmlinuz-* whose modules are installed: that is the kernel
# linux-image-amd64 brought, whatever its version number is today.
find_kernel() {
	best=
	for k in /boot/vmlinuz-*; do
		[ -f "$k" ] || continue
		v=${k#/boot/vmlinuz-}
		[ -d "/lib/modules/$v" ] || continue
		best="$k $v"
	done
	[ -n "$best" ] || die "no /boot/vmlinuz-* with /lib/modules (apt-get install linux-image-amd64)"
	echo "$best"
}

out=
payload=
kver=
files=
while [ $# -gt 0 ]; do
	case $1 in
	--print-kernel)
		find_kernel
		exit 0
		;;
	-o) out=$2; shift 2 ;;
	-p) payload=$2; shift 2 ;;
	-k) kver=$2; shift 2 ;;
	-f) files="$files $2"; shift 2 ;;
	-m) BH_MODULES="$BH_MODULES $2"; shift 2 ;;
	*) die "unknown argument: $1" ;;
	esac
done
if [ -z "$out" ] || [ -z "$payload" ]; then
	die "usage: $0 -o OUT -p PAYLOAD [-f SRC:DST]... [-k KVER]"
fi
[ -f "$payload" ] || die "payload $payload not found"
if [ -z "$kver" ]; then
	kver=$(find_kernel)
	kver=${kver#* }
fi
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || die "busybox not found (apt-get install busybox-static)"
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked (apt-get install busybox-static)"
fi
command -v modinfo >/dev/null || die "modinfo not found (apt-get install kmod)"
command -v cpio >/dev/null || die "cpio not found (apt-get install cpio)"

root=$(mktemp -d "${TMPDIR:-/tmp}/bh-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/mnt" "$root/tmp" \
	"$root/etc" "$root/lib/bh-modules"
# Without /dev/console in the image the kernel starts /init with no
# stdin/stdout at all; devtmpfs is mounted over it later.
mknod -m 0600 "$root/dev/console" c 5 1 || die "mknod failed (run as root)"
cp "$busybox" "$root/bin/busybox"
cp "$here/init.sh" "$root/init"
cp "$payload" "$root/bh-run"
chmod 0755 "$root/init" "$root/bh-run"
for f in $files; do
	src=${f%%:*}
	dst=${f#*:}
	mkdir -p "$root/$(dirname "$dst")"
	cp "$src" "$root/$dst"
done

# Copy one module (after its dependencies) uncompressed, so busybox insmod
# needs no decompressor whatever the distribution compresses with.
added=" "
add_module() {
	case $added in *" $1 "*) return 0 ;; esac
	modinfo -k "$kver" -F filename "$1" >/dev/null 2>&1 ||
		die "module $1 not found for kernel $kver"
	for dep in $(modinfo -k "$kver" -F depends "$1" | tr ',' ' '); do
		add_module "$dep"
	done
	# Only now: sh has no locals, so the recursion above overwrites fn.
	fn=$(modinfo -k "$kver" -F filename "$1")
	case $fn in
	"(builtin)" | "") added="$added$1 "; return 0 ;;
	esac
	dst="$root/lib/bh-modules/$1.ko"
	case $fn in
	*.ko) cp "$fn" "$dst" ;;
	*.ko.xz) xz -dc "$fn" >"$dst" ;;
	*.ko.zst) zstd -qdc "$fn" >"$dst" ;;
	*.ko.gz) gzip -dc "$fn" >"$dst" ;;
	*) die "unexpected module file $fn" ;;
	esac
	echo "$1" >>"$root/etc/bh-modules"
	added="$added$1 "
}
: >"$root/etc/bh-modules"
for m in $BH_MODULES; do
	add_module "$m"
done

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
