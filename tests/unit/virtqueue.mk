# tests/unit: tests owned by the virtqueue work
if HAVE_CRITERION
check_PROGRAMS += tests/unit/test_virtqueue
TESTS += tests/unit/test_virtqueue
tests_unit_test_virtqueue_SOURCES = tests/unit/test_virtqueue.c \
	worker/guest_mem.c worker/virtqueue.c worker/virtqueue.h
tests_unit_test_virtqueue_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/worker
tests_unit_test_virtqueue_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_virtqueue_LDADD = common/libcommon.a $(CRITERION_LIBS)
endif
