# tests/unit: tests owned by the shared work (node table, thread pool,
# worker-to-worker descriptor sharing, descriptor table).
if HAVE_CRITERION
check_PROGRAMS += tests/unit/test_node_table tests/unit/test_threadpool tests/unit/test_peer
TESTS += tests/unit/test_node_table tests/unit/test_threadpool tests/unit/test_peer

# Built with its own copy of the node table: the test hooks (lock, garbage)
# and bounds assertions that abort on any index a corrupted table could
# make it use out of range (NT_BOUND).
tests_unit_test_node_table_SOURCES = tests/unit/test_node_table.c common/node_table.c \
	common/node_table_fh.c common/node_table_lock.c common/node_table_hooks.c \
	common/node_table_int.h
tests_unit_test_node_table_CPPFLAGS = $(AM_CPPFLAGS) -DNT_TEST_HOOKS
tests_unit_test_node_table_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_node_table_LDADD = common/libcommon.a $(CRITERION_LIBS)

tests_unit_test_threadpool_SOURCES = tests/unit/test_threadpool.c worker/threadpool.c
tests_unit_test_threadpool_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/worker
tests_unit_test_threadpool_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_test_threadpool_LDADD = common/libcommon.a $(LIBEVENT_LIBS) $(CRITERION_LIBS)

tests_unit_test_peer_SOURCES = tests/unit/test_peer.c worker/peer.c \
	worker/backends/passthrough/fdtable.c
tests_unit_test_peer_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/worker \
	-I$(top_srcdir)/worker/backends/passthrough
tests_unit_test_peer_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_peer_LDADD = common/libcommon.a $(CRITERION_LIBS)
endif
