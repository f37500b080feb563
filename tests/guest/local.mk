# tests/guest: end-to-end test with a real Linux guest under QEMU (TCG).
# Not part of TESTS: it needs root and takes about two minutes, so CI runs it
# once through `make check-guest` (tests/run-all.sh), never under distcheck.
# BH_GUEST_DAEMON=virtiofsd runs the same test against QEMU's virtiofsd.
# check-guest-workloads: git, sqlite3, fio, tar and python3 system-call checks
# in a guest whose root is the host's / over 9p (about 10 minutes, needs root
# and the packages contrib/install-deps.sh installs); same BH_GUEST_DAEMON;
# BH_GUEST_BACKEND=memory runs it on a memory share.
# check-guest-s3: the workloads guest on a share of an S3 bucket (a one-node
# Ceph cluster of its own, seeded and checked with boto3; root, a few minutes).
# check-guest-libvirt: a libvirtd of its own (in a mount namespace) starts
# bulkheadd for a TCG domain that runs the workloads guest's main checks.
# check-guest-replay: the command lines of libvirt 10 (separate options) and of
# Kata's Go and Rust runtimes (tests/guest/client_argv.py) replayed against
# bulkheadd, each started as its client starts it, with a guest using it.
GUEST_TEST_FILES = \
	tests/guest/run-guest-test.py \
	tests/guest/mkinitramfs.sh \
	tests/guest/init.sh \
	tests/guest/guest-check.sh \
	tests/guest/listing.sh \
	tests/guest/workloads.py \
	tests/guest/workloads-guest.sh \
	tests/guest/wl_checks.py \
	tests/guest/s3share.py \
	tests/guest/s3_checks.py \
	tests/guest/hostroot.sh \
	tests/guest/systemd-guest.py \
	tests/guest/systemd-root.sh \
	tests/guest/systemd-guest.sh \
	tests/guest/client_argv.py \
	tests/guest/libvirt.py \
	tests/guest/replay.py
EXTRA_DIST += $(GUEST_TEST_FILES) \
	contrib/install-deps.sh contrib/demo.sh tests/run-all.sh .ci/run

.PHONY: check-guest
check-guest: daemon/bulkheadd worker/bulkhead-worker
	BH_BUILDDIR='$(abs_top_builddir)' python3 '$(abs_top_srcdir)/tests/guest/run-guest-test.py'

.PHONY: check-guest-workloads
check-guest-workloads: daemon/bulkheadd worker/bulkhead-worker
	BH_BUILDDIR='$(abs_top_builddir)' python3 '$(abs_top_srcdir)/tests/guest/workloads.py'

.PHONY: check-guest-s3
check-guest-s3: daemon/bulkheadd worker/bulkhead-worker
	BH_BUILDDIR='$(abs_top_builddir)' python3 '$(abs_top_srcdir)/tests/guest/s3share.py'

# check-guest-systemd: the installed systemd units under the host's own
# systemd as PID 1 in a guest (its root the host's / under an overlay), a
# front end (unit-client) in the guest connecting to their sockets; root,
# about a minute.
check_PROGRAMS += tests/guest/unit-client
tests_guest_unit_client_SOURCES = tests/guest/unit-client.c
tests_guest_unit_client_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_guest_unit_client_LDADD = $(VUFE_LIBS)

.PHONY: check-guest-systemd
check-guest-systemd: daemon/bulkheadd worker/bulkhead-worker tests/guest/unit-client
	BH_BUILDDIR='$(abs_top_builddir)' BH_SOCKET_GROUP='$(SOCKET_GROUP)' \
		python3 '$(abs_top_srcdir)/tests/guest/systemd-guest.py'

.PHONY: check-guest-libvirt
check-guest-libvirt: daemon/bulkheadd worker/bulkhead-worker
	BH_BUILDDIR='$(abs_top_builddir)' python3 '$(abs_top_srcdir)/tests/guest/libvirt.py'

.PHONY: check-guest-replay
check-guest-replay: daemon/bulkheadd worker/bulkhead-worker
	BH_BUILDDIR='$(abs_top_builddir)' python3 '$(abs_top_srcdir)/tests/guest/replay.py'
