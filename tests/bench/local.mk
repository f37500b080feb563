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
