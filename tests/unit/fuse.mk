# tests/unit: tests owned by the fuse work
if HAVE_CRITERION
check_PROGRAMS += tests/unit/test_fuse_decode
TESTS += tests/unit/test_fuse_decode
tests_unit_test_fuse_decode_SOURCES = tests/unit/test_fuse_decode.c \
	worker/fuse_codec.c worker/fuse_dispatch.h \
	worker/guest_mem.c worker/virtqueue.c worker/virtqueue.h
tests_unit_test_fuse_decode_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/worker
tests_unit_test_fuse_decode_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_fuse_decode_LDADD = common/libcommon.a $(CRITERION_LIBS)
endif

# The dispatcher and the passthrough back end against a temporary directory
# (no ring: the worker.c hooks are test doubles inside the test).
if HAVE_CRITERION
check_PROGRAMS += tests/unit/test_fuse_passthrough
TESTS += tests/unit/test_fuse_passthrough
tests_unit_test_fuse_passthrough_SOURCES = tests/unit/test_fuse_passthrough.c \
	worker/fuse_codec.c worker/fuse_dispatch.c worker/fuse_dispatch.h worker/fuse_policy.c \
	worker/backend.h $(PASSTHROUGH_SOURCES) worker/escape_probe.c \
	worker/peer.c worker/peer.h \
	worker/threadpool.c worker/threadpool.h \
	worker/guest_mem.c worker/virtqueue.c worker/virtqueue.h
tests_unit_test_fuse_passthrough_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/worker \
	-I$(top_srcdir)/worker/backends/passthrough
tests_unit_test_fuse_passthrough_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_test_fuse_passthrough_LDADD = common/libcommon.a $(LIBEVENT_LIBS) $(CRITERION_LIBS)
endif
