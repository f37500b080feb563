# tests/integration: Criterion programs that drive the real bulkheadd (and its
# workers) from the build tree through the test front end; test_peer checks
# the front end itself against QEMU's virtiofsd. Each test starts its own
# daemon on a socket in a private temporary directory.
if HAVE_CRITERION
HX_TESTS = tests/integration/test_peer tests/integration/test_vhost_user \
	tests/integration/test_fuse_read tests/integration/test_hostile \
	tests/integration/test_sandbox tests/integration/test_unpriv
check_PROGRAMS += $(HX_TESTS)
TESTS += $(HX_TESTS)

tests_integration_test_peer_SOURCES = tests/integration/test_peer.c
tests_integration_test_peer_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_peer_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_peer_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)

tests_integration_test_vhost_user_SOURCES = tests/integration/test_vhost_user.c \
	tests/integration/itest.c tests/integration/itest.h
tests_integration_test_vhost_user_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_vhost_user_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_vhost_user_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)

tests_integration_test_fuse_read_SOURCES = tests/integration/test_fuse_read.c \
	tests/integration/itest.c tests/integration/itest.h
tests_integration_test_fuse_read_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_fuse_read_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_fuse_read_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)

tests_integration_test_hostile_SOURCES = tests/integration/test_hostile.c \
	tests/integration/itest.c tests/integration/itest.h
tests_integration_test_hostile_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_hostile_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_hostile_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)

# Reads live workers' filters with ptrace and compiles the policy files
# itself; the hook tests inside are built only with --enable-test-hooks.
tests_integration_test_sandbox_SOURCES = tests/integration/test_sandbox.c \
	tests/integration/itest.c tests/integration/itest.h
tests_integration_test_sandbox_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_sandbox_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(LIBSECCOMP_CFLAGS)
tests_integration_test_sandbox_LDADD = $(VUFE_LIBS) $(LIBSECCOMP_LIBS) $(CRITERION_LIBS)

# Runs bulkheadd as a dedicated unprivileged user (created if absent).
tests_integration_test_unpriv_SOURCES = tests/integration/test_unpriv.c \
	tests/integration/itest.c tests/integration/itest.h
tests_integration_test_unpriv_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_unpriv_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_unpriv_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)
endif

# The write side (owned by the write-path work).
if HAVE_CRITERION
check_PROGRAMS += tests/integration/test_fuse_write
TESTS += tests/integration/test_fuse_write
tests_integration_test_fuse_write_SOURCES = tests/integration/test_fuse_write.c \
	tests/integration/fops.c tests/integration/fops.h \
	tests/integration/itest.c tests/integration/itest.h
tests_integration_test_fuse_write_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_fuse_write_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_fuse_write_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)
endif

# Many queues, one file system (owned by the multi-queue work); the
# killed-lock-holder test inside needs --enable-test-hooks.
if HAVE_CRITERION
check_PROGRAMS += tests/integration/test_multiqueue
TESTS += tests/integration/test_multiqueue
tests_integration_test_multiqueue_SOURCES = tests/integration/test_multiqueue.c \
	tests/integration/itest.c tests/integration/itest.h
tests_integration_test_multiqueue_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_multiqueue_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_multiqueue_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)
endif

# Locks and extended attributes (issue 4).
if HAVE_CRITERION
check_PROGRAMS += tests/integration/test_fuse_locks tests/integration/test_fuse_xattr
TESTS += tests/integration/test_fuse_locks tests/integration/test_fuse_xattr
tests_integration_test_fuse_locks_SOURCES = tests/integration/test_fuse_locks.c \
	tests/integration/itest.c tests/integration/itest.h
tests_integration_test_fuse_locks_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_fuse_locks_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_fuse_locks_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)
tests_integration_test_fuse_xattr_SOURCES = tests/integration/test_fuse_xattr.c \
	tests/integration/itest.c tests/integration/itest.h
tests_integration_test_fuse_xattr_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_fuse_xattr_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_fuse_xattr_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)
endif

# Resource limits: descriptor eviction and reopen, exact lookup counts,
# --rlimit-nofile, the read-only mount (owned by the limits work).
if HAVE_CRITERION
check_PROGRAMS += tests/integration/test_limits
TESTS += tests/integration/test_limits
tests_integration_test_limits_SOURCES = tests/integration/test_limits.c \
	tests/integration/itest.c tests/integration/itest.h
tests_integration_test_limits_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_limits_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_limits_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)
endif

# Started as libvirt and Kata start virtiofsd (issue 14).
if HAVE_CRITERION
check_PROGRAMS += tests/integration/test_compat
TESTS += tests/integration/test_compat
tests_integration_test_compat_SOURCES = tests/integration/test_compat.c \
	tests/integration/itest.c tests/integration/itest.h
tests_integration_test_compat_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_compat_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_compat_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)
endif

# The systemd units' command line under socket activation, notify
# messages, SIGHUP (configuration, policies, log file).
if HAVE_CRITERION
check_PROGRAMS += tests/integration/test_systemd
TESTS += tests/integration/test_systemd
tests_integration_test_systemd_SOURCES = tests/integration/test_systemd.c \
	tests/integration/itest.c tests/integration/itest.h \
	tests/integration/fops.c tests/integration/fops.h
tests_integration_test_systemd_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_systemd_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_systemd_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)
endif

# The memory back end and bulkhead.conf(5) (issue 12).
if HAVE_CRITERION
check_PROGRAMS += tests/integration/test_memory
TESTS += tests/integration/test_memory
tests_integration_test_memory_SOURCES = tests/integration/test_memory.c \
	tests/integration/fops.c tests/integration/fops.h \
	tests/integration/itest.c tests/integration/itest.h
tests_integration_test_memory_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_memory_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_memory_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)
endif

# The generic suites again on a memory share (itest.h, IT_BACKEND_MEMORY):
# one source, two programs.
if HAVE_CRITERION
MEM_TESTS = tests/integration/test_fuse_read_memory tests/integration/test_fuse_write_memory \
	tests/integration/test_fuse_locks_memory tests/integration/test_fuse_xattr_memory \
	tests/integration/test_multiqueue_memory
check_PROGRAMS += $(MEM_TESTS)
TESTS += $(MEM_TESTS)
MEM_CPPFLAGS = $(VUFE_CPPFLAGS) -DIT_BACKEND_MEMORY
MEM_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
MEM_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)
tests_integration_test_fuse_read_memory_SOURCES = $(tests_integration_test_fuse_read_SOURCES)
tests_integration_test_fuse_read_memory_CPPFLAGS = $(MEM_CPPFLAGS)
tests_integration_test_fuse_read_memory_CFLAGS = $(MEM_CFLAGS)
tests_integration_test_fuse_read_memory_LDADD = $(MEM_LDADD)
tests_integration_test_fuse_write_memory_SOURCES = $(tests_integration_test_fuse_write_SOURCES)
tests_integration_test_fuse_write_memory_CPPFLAGS = $(MEM_CPPFLAGS)
tests_integration_test_fuse_write_memory_CFLAGS = $(MEM_CFLAGS)
tests_integration_test_fuse_write_memory_LDADD = $(MEM_LDADD)
tests_integration_test_fuse_locks_memory_SOURCES = $(tests_integration_test_fuse_locks_SOURCES)
tests_integration_test_fuse_locks_memory_CPPFLAGS = $(MEM_CPPFLAGS)
tests_integration_test_fuse_locks_memory_CFLAGS = $(MEM_CFLAGS)
tests_integration_test_fuse_locks_memory_LDADD = $(MEM_LDADD)
tests_integration_test_fuse_xattr_memory_SOURCES = $(tests_integration_test_fuse_xattr_SOURCES)
tests_integration_test_fuse_xattr_memory_CPPFLAGS = $(MEM_CPPFLAGS)
tests_integration_test_fuse_xattr_memory_CFLAGS = $(MEM_CFLAGS)
tests_integration_test_fuse_xattr_memory_LDADD = $(MEM_LDADD)
tests_integration_test_multiqueue_memory_SOURCES = $(tests_integration_test_multiqueue_SOURCES)
tests_integration_test_multiqueue_memory_CPPFLAGS = $(MEM_CPPFLAGS)
tests_integration_test_multiqueue_memory_CFLAGS = $(MEM_CFLAGS)
tests_integration_test_multiqueue_memory_LDADD = $(MEM_LDADD)
endif

# The parent's side of the S3 back end: start-up, its keys, SIGHUP (no
# front end, no gateway).
if HAVE_CRITERION
check_PROGRAMS += tests/integration/test_s3_parent
TESTS += tests/integration/test_s3_parent
tests_integration_test_s3_parent_SOURCES = tests/integration/test_s3_parent.c
tests_integration_test_s3_parent_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_integration_test_s3_parent_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_integration_test_s3_parent_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)
endif

# --help and the manual pages name the same options and paths (no Criterion needed).
TESTS += tests/integration/check-docs.sh
EXTRA_DIST += tests/integration/check-docs.sh

# bulkheadd(8)'s table of virtiofsd's options is what the binary does.
TESTS += tests/integration/check-compat.sh
EXTRA_DIST += tests/integration/check-compat.sh

# bulkhead.policy(5)'s example policy text passes bulkheadd --check-policy.
TESTS += tests/integration/check-policy-examples.sh
EXTRA_DIST += tests/integration/check-policy-examples.sh

# The vhost-user descriptor libvirt discovers bulkhead by.
TESTS += tests/integration/check-vhost-user.sh
EXTRA_DIST += tests/integration/check-vhost-user.sh
# The systemd units: substituted, known to systemd, scored.
TESTS += tests/integration/check-units.sh
EXTRA_DIST += tests/integration/check-units.sh
check_DATA = contrib/vhost-user/60-bulkhead.json $(BH_MANS)
