# tests/bench: `make bench` compares bulkheadd with QEMU's virtiofsd through
# the test front end (tests/frontend) and prints one BENCH line per row.
check_PROGRAMS += tests/bench/bench
tests_bench_bench_SOURCES = tests/bench/bench.c
tests_bench_bench_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_bench_bench_LDADD = $(VUFE_LIBS)

.PHONY: bench
bench: tests/bench/bench daemon/bulkheadd worker/bulkhead-worker
	tests/bench/bench $(BENCH_FLAGS)
