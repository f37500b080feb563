# tests/bench: `make bench` compares bulkheadd with QEMU's virtiofsd through
# the test front end (tests/frontend) and prints one BENCH line per row.
check_PROGRAMS += tests/bench/bench
tests_bench_bench_SOURCES = tests/bench/bench.c
tests_bench_bench_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_bench_bench_LDADD = $(VUFE_LIBS)

.PHONY: bench
bench: tests/bench/bench daemon/bulkheadd worker/bulkhead-worker
	tests/bench/bench $(BENCH_FLAGS)

# `make bench-guest` (root): the same comparison as a real guest sees it,
# with CPU time per unit; BENCH_GUEST_FLAGS e.g. "--rounds=6 --queues=2".
EXTRA_DIST += tests/bench/bench-guest.py tests/bench/bench-guest.sh \
	tests/bench/bench_guest_rows.py

.PHONY: bench-guest
bench-guest: daemon/bulkheadd worker/bulkhead-worker
	BH_BUILDDIR='$(abs_top_builddir)' python3 '$(abs_top_srcdir)/tests/bench/bench-guest.py' \
		$(BENCH_GUEST_FLAGS)

# `make bench-s3` (root): the S3 back end against a direct client of the
# same gateway (a one-node Ceph cluster the program starts and stops).
check_PROGRAMS += tests/bench/bench-s3
tests_bench_bench_s3_SOURCES = tests/bench/bench_s3.c $(S3_SOURCES)
tests_bench_bench_s3_CPPFLAGS = $(VUFE_CPPFLAGS) -I$(top_srcdir)/worker/backends/s3 \
	-DBH_SRC_DIR='"$(abs_top_srcdir)"'
tests_bench_bench_s3_CFLAGS = $(AM_CFLAGS) $(LIBCRYPTO_CFLAGS) $(LIBCURL_CFLAGS) \
	$(EXPAT_CFLAGS) $(LIBEVENT_CFLAGS)
tests_bench_bench_s3_LDADD = $(VUFE_LIBS) $(LIBCURL_LIBS) $(LIBCRYPTO_LIBS) $(EXPAT_LIBS) \
	$(LIBEVENT_LIBS)

.PHONY: bench-s3
bench-s3: tests/bench/bench-s3 daemon/bulkheadd worker/bulkhead-worker
	tests/bench/bench-s3 $(BENCH_S3_FLAGS)
