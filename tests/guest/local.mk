# tests/guest: end-to-end test with a real Linux guest under QEMU (TCG).
# Not part of TESTS: it needs root and takes about two minutes, so CI runs it
# once through `make check-guest` (tests/run-all.sh), never under distcheck.
# BH_GUEST_DAEMON=virtiofsd runs the same test against QEMU's virtiofsd.
GUEST_TEST_FILES = \
	tests/guest/run-guest-test.py \
	tests/guest/mkinitramfs.sh \
	tests/guest/init.sh \
	tests/guest/guest-check.sh \
	tests/guest/listing.sh
EXTRA_DIST += $(GUEST_TEST_FILES) \
	contrib/install-deps.sh contrib/demo.sh tests/run-all.sh .ci/run

.PHONY: check-guest
check-guest: daemon/bulkheadd worker/bulkhead-worker
	BH_BUILDDIR='$(abs_top_builddir)' python3 '$(abs_top_srcdir)/tests/guest/run-guest-test.py'
