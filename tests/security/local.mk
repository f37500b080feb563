# tests/security: attacks on bulkhead as regression tests. A hostile guest
# (through the test front end) and a compromised worker (a test-hook build of
# the worker, or another process acting with a worker's descriptors) try what
# the security model in man/bulkheadd.8 says they cannot do; each test is
# named after what it attacks and asserts the exact refusal plus a follow-up
# request that must still succeed. Tests that need --enable-test-hooks are
# compiled only then.
SEC_TEST_SRCS = tests/integration/itest.c tests/integration/itest.h
