#!/bin/sh
# install-deps.sh: install everything needed to build bulkhead, run its tests
# (unit, front-end, the QEMU guest test) and the demo on a fresh Debian 12
# (bookworm) machine. Runs as root; safe to run again (apt-get skips what is
# already installed). BH_SKIP_DEPS=1 skips it, e.g. on a prepared machine.
set -eu

if [ "${BH_SKIP_DEPS:-0}" = 1 ]; then
	echo "install-deps: BH_SKIP_DEPS=1, not installing anything"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: must run as root (it calls apt-get)" >&2
	exit 1
fi

# build: toolchain, autotools and the libraries configure requires
# tests: Criterion; the guest test: QEMU (qemu-system-common ships
# /usr/lib/qemu/virtiofsd, the peer we compare with), Debian's kernel and its
# modules, a static busybox for the initramfs, cpio/kmod/xz/zstd to build it,
# python3 for the test driver; the workloads guest test runs the host's own
# git, sqlite3, fio, tar, diff (diffutils) and setpriv (util-linux) in the guest;
# the S3 tests: a one-node Ceph cluster with its gateway (tests/s3/ceph-cluster.sh),
# openssl to make its test CA and certificate for the TLS run, and boto3, the
# independent client the S3 guest test seeds and checks the bucket with;
# systemd for systemd-socket-activate and systemd-analyze (the units' tests;
# installing it starts nothing where it is not PID 1); uidmap (newuidmap,
# newgidmap) writes an unprivileged daemon's id maps of more than its own
# ids (libvirt's session form, test_unpriv); the libvirt guest test: a
# libvirtd and virtlogd of its own with the QEMU driver, and virsh
PACKAGES="
	build-essential autoconf automake pkg-config
	libevent-dev libseccomp-dev libcap-ng-dev libcurl4-openssl-dev libssl-dev libexpat1-dev
	libcriterion-dev
	qemu-system-x86 qemu-system-common
	linux-image-amd64 busybox-static cpio kmod xz-utils zstd
	python3 python3-boto3
	git sqlite3 fio tar diffutils util-linux
	ceph-mon ceph-osd radosgw ceph-common
	openssl
	systemd
	uidmap
	libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
"

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $PACKAGES
