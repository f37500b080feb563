# tests/unit: the seccomp policy parser and compiler, and the shipped
# policy/x86_64 files (filters are loaded only in forked children).
if HAVE_CRITERION
check_PROGRAMS += tests/unit/test_policy
TESTS += tests/unit/test_policy
tests_unit_test_policy_SOURCES = tests/unit/test_policy.c
tests_unit_test_policy_CPPFLAGS = $(AM_CPPFLAGS) \
	-DPOL_TEST_DIR='"$(abs_top_srcdir)/tests/unit/policies"' \
	-DPOL_SHIPPED_DIR='"$(abs_top_srcdir)/policy/x86_64"'
tests_unit_test_policy_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(LIBSECCOMP_CFLAGS)
tests_unit_test_policy_LDADD = common/libcommon.a $(LIBSECCOMP_LIBS) $(CRITERION_LIBS)
endif
EXTRA_DIST += tests/unit/policies/good_main.policy tests/unit/policies/good_leaf.policy \
	tests/unit/policies/inc/good_inc.policy \
	tests/unit/policies/err_unknown_syscall.policy \
	tests/unit/policies/err_unknown_const.policy \
	tests/unit/policies/err_unknown_errno.policy \
	tests/unit/policies/err_bad_arg.policy \
	tests/unit/policies/err_missing_colon.policy \
	tests/unit/policies/err_trailing.policy \
	tests/unit/policies/err_duplicate.policy \
	tests/unit/policies/err_include_missing.policy \
	tests/unit/policies/err_loop_a.policy tests/unit/policies/err_loop_b.policy
