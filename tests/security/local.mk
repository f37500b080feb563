# tests/security: attacks on bulkhead as regression tests. A hostile guest
# (through the test front end) and a compromised worker (a test-hook build of
# the worker, or another process acting with a worker's descriptors) try what
# the security model in man/bulkheadd.8 says they cannot do; each test is
# named after what it attacks and asserts the exact refusal plus a follow-up
# request that must still succeed. Tests that need --enable-test-hooks are
# compiled only then.
SEC_TEST_SRCS = tests/integration/itest.c tests/integration/itest.h \
	tests/security/sectest.c tests/security/sectest.h

if HAVE_CRITERION
SEC_TESTS = tests/security/test_sec_sizes tests/security/test_sec_guest_memory
check_PROGRAMS += $(SEC_TESTS)
TESTS += $(SEC_TESTS)

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
endif
