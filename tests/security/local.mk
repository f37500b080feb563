# tests/security: attacks on bulkhead as regression tests. A hostile guest
# (through the test front end) and a compromised worker (a test-hook build of
# the worker, or another process acting with a worker's descriptors) try what
# the security model in man/bulkheadd.8 says they cannot do; each test is
# named after what it attacks and asserts the exact refusal plus a follow-up
# request that must still succeed. Tests that need --enable-test-hooks are
# compiled only then.
SEC_TEST_SRCS = tests/integration/itest.c tests/integration/itest.h \
	tests/security/sectest.c tests/security/sectest.h
SEC_FOPS_SRCS = tests/integration/fops.c tests/integration/fops.h

if HAVE_CRITERION
SEC_TESTS = tests/security/test_sec_priv_meta tests/security/test_sec_special_files \
	tests/security/test_sec_dotdot tests/security/test_sec_sizes \
	tests/security/test_sec_guest_memory
check_PROGRAMS += $(SEC_TESTS)
TESTS += $(SEC_TESTS)

# Device nodes, setuid/setgid and file capabilities under each policy.
tests_security_test_sec_priv_meta_SOURCES = tests/security/test_sec_priv_meta.c \
	$(SEC_FOPS_SRCS) $(SEC_TEST_SRCS)
tests_security_test_sec_priv_meta_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_security_test_sec_priv_meta_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_security_test_sec_priv_meta_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)

# Host devices (a loop device among them), FIFOs and sockets: never opened.
tests_security_test_sec_special_files_SOURCES = tests/security/test_sec_special_files.c \
	$(SEC_FOPS_SRCS) $(SEC_TEST_SRCS)
tests_security_test_sec_special_files_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_security_test_sec_special_files_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_security_test_sec_special_files_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)

# ".." of a directory the host moved out of the share, in every sandbox mode.
tests_security_test_sec_dotdot_SOURCES = tests/security/test_sec_dotdot.c $(SEC_TEST_SRCS)
tests_security_test_sec_dotdot_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_security_test_sec_dotdot_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_security_test_sec_dotdot_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)

# Requests at the protocol's largest sizes; the workers' peak memory watched.
tests_security_test_sec_sizes_SOURCES = tests/security/test_sec_sizes.c $(SEC_TEST_SRCS)
tests_security_test_sec_sizes_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_security_test_sec_sizes_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_security_test_sec_sizes_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)

# A front end that shrinks its guest memory under the workers (SIGBUS); the
# SIGBUS-outside-guest-memory test inside needs --enable-test-hooks.
tests_security_test_sec_guest_memory_SOURCES = tests/security/test_sec_guest_memory.c \
	$(SEC_TEST_SRCS)
tests_security_test_sec_guest_memory_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_security_test_sec_guest_memory_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_security_test_sec_guest_memory_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)

# A compromised worker against its peers and the parent: garbage in the
# shared node table, its lock held for ever, a flood of NOTICEs (the hook
# tests inside need --enable-test-hooks).
check_PROGRAMS += tests/security/test_sec_workers
TESTS += tests/security/test_sec_workers
tests_security_test_sec_workers_SOURCES = tests/security/test_sec_workers.c $(SEC_TEST_SRCS)
tests_security_test_sec_workers_CPPFLAGS = $(VUFE_CPPFLAGS) -I$(top_srcdir)/daemon
tests_security_test_sec_workers_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_security_test_sec_workers_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)

# The worker plays its own attacker: built only with --enable-test-hooks.
if BH_TEST_HOOKS
check_PROGRAMS += tests/security/test_sec_procfs
TESTS += tests/security/test_sec_procfs
tests_security_test_sec_procfs_SOURCES = tests/security/test_sec_procfs.c $(SEC_TEST_SRCS)
tests_security_test_sec_procfs_CPPFLAGS = $(VUFE_CPPFLAGS)
tests_security_test_sec_procfs_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_security_test_sec_procfs_LDADD = $(VUFE_LIBS) $(CRITERION_LIBS)
endif
endif
