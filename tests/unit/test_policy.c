/*
 * test_policy.c - the seccomp policy parser and compiler (common/policy_*.c)
 * and the shipped policy/x86_64 files.
 * Filters are loaded only in forked children, so the Criterion runner's own
 * process is never confined; the parent of the child judges the outcome
 * from its exit status.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy.h"
#include "util.h"

#ifndef POL_TEST_DIR
#error "POL_TEST_DIR must name tests/unit/policies"
#endif
#ifndef POL_SHIPPED_DIR
#error "POL_SHIPPED_DIR must name policy/x86_64"
#endif

/* An errno nothing here produces by itself: "the default action said no". */
#define DENIED	   EHWPOISON
#define ACT_DENIED SCMP_ACT_ERRNO(DENIED)

static char tmpdir[64];

static void tmp_setup(void)
{
	strcpy(tmpdir, "/tmp/test_policy.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void tmp_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", tmpdir);
}

static void write_file(const char *name, const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	cr_assert_not_null(fp, "%s: %s", path, strerror(errno));
	fputs(text, fp);
	fclose(fp);
}

static struct pol_set *load_text(const char *text, char *err, size_t errlen)
{
	write_file("t.policy", text);
	return pol_load(tmpdir, "t.policy", err, errlen);
}

/* Compile TEXT as an allow list with DFLT or as a deny list (DFLT ignored). */
static scmp_filter_ctx compile_text(const char *text, int deny, uint32_t dflt)
{
	char err[600];
	struct pol_set *ps;
	scmp_filter_ctx ctx;
	unsigned n;
	int r;

	ps = load_text(text, err, sizeof(err));
	cr_assert_not_null(ps, "load: %s", err);
	if (deny)
		r = pol_compile_denylist(ps, SCMP_ACT_KILL_PROCESS, &ctx, &n, err, sizeof(err));
	else
		r = pol_compile(ps, dflt, &ctx, &n, err, sizeof(err));
	pol_free(ps);
	cr_assert_eq(r, 0, "compile: %s", err);
	return ctx;
}

/* Run FN in a child confined by CTX; the child's wait status. */
static int run_confined(scmp_filter_ctx ctx, int (*fn)(void *), void *arg)
{
	int status, r;
	pid_t pid;

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (seccomp_load(ctx) < 0)
			_exit(120);
		r = fn(arg);
		syscall(SYS_exit_group, r);
		_exit(121);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	seccomp_release(ctx);
	return status;
}

static void assert_exit_ok(int status)
{
	cr_assert(WIFEXITED(status), "child died by signal %d", WTERMSIG(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "child reported %d mismatches (or set-up %d)",
		     WEXITSTATUS(status), WEXITSTATUS(status));
}

static void assert_sigsys(int status)
{
	cr_assert(WIFSIGNALED(status), "child exited %d instead of dying by SIGSYS",
		  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	cr_assert_eq(WTERMSIG(status), SIGSYS);
}

/* getpid/getppid ignore their arguments, so any value probes the filter. */
static int probe(long nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	errno = 0;
	if (syscall(nr, a0, a1, a2, 0, 0, 0) >= 0)
		return 0;
	return errno;
}

struct probe_case {
	uint64_t a0, a1, a2;
	int want; /* 0 = allowed, else the errno */
};

struct probe_run {
	long nr;
	const struct probe_case *c;
	size_t n;
};

static int probe_all(void *arg)
{
	const struct probe_run *pr = arg;
	int bad = 0;

	for (size_t i = 0; i < pr->n; i++)
		if (probe(pr->nr, pr->c[i].a0, pr->c[i].a1, pr->c[i].a2) != pr->c[i].want)
			bad++;
	return bad;
}

static void expect_probes(const char *text, long nr, const struct probe_case *c, size_t n)
{
	struct probe_run pr = {nr, c, n};
	scmp_filter_ctx ctx = compile_text(text, 0, ACT_DENIED);

	assert_exit_ok(run_confined(ctx, probe_all, &pr));
}

#define EXPECT_PROBES(text, nr, cases)                                                             \
	expect_probes(text, nr, cases, sizeof(cases) / sizeof(cases[0]))

TestSuite(policy, .init = tmp_setup, .fini = tmp_teardown);

/* --- parsing ------------------------------------------------------------- */

Test(policy, valid_file_with_relative_includes_parses_every_entry)
{
	enum pol_action act;
	char err[600];
	struct pol_set *ps;
	int e;

	ps = pol_load(POL_TEST_DIR, "good_main.policy", err, sizeof(err));
	cr_assert_not_null(ps, "%s", err);
	/* 6 lines in good_main, 1 in inc/good_inc, 1 in good_leaf (two levels). */
	cr_assert_eq(pol_count(ps), 8);
	cr_assert_eq(pol_lookup(ps, "geteuid", &act, &e), 0, "leaf reached via ../");
	cr_assert_eq(act, POL_ALLOW);
	cr_assert_eq(pol_lookup(ps, "sched_yield", &act, &e), 0);
	cr_assert_eq(pol_lookup(ps, "getppid", &act, &e), 0);
	cr_assert_eq(act, POL_ERRNO);
	cr_assert_eq(e, EPERM);
	cr_assert_eq(pol_lookup(ps, "getuid", &act, &e), 0);
	cr_assert_eq(act, POL_ALLOW_IF);
	cr_assert_eq(e, ENOSYS);
	cr_assert_eq(pol_lookup(ps, "exit_group", &act, &e), 0);
	cr_assert_eq(act, POL_KILL);
	cr_assert_eq(pol_lookup(ps, "read", &act, &e), -ENOENT);
	pol_free(ps);
}

Test(policy, valid_file_compiles_with_rule_count)
{
	char err[600];
	struct pol_set *ps;
	scmp_filter_ctx ctx;
	unsigned n = 0;

	ps = pol_load(POL_TEST_DIR, "good_main.policy", err, sizeof(err));
	cr_assert_not_null(ps, "%s", err);
	cr_assert_eq(pol_compile(ps, SCMP_ACT_KILL_PROCESS, &ctx, &n, err, sizeof(err)), 0, "%s",
		     err);
	/* getpid, geteuid, sched_yield, getppid, clone3 (ENOSYS): 1 each;
	 * exit_group: kill == default, none; gettid and getuid expand. */
	cr_assert_gt(n, 6);
	seccomp_release(ctx);
	pol_free(ps);
}

Test(policy, comments_and_blank_lines_are_ignored)
{
	char err[600];
	struct pol_set *ps;

	ps = load_text("\n# only a comment\n   \t\n  # indented comment\ngetpid: 1 # why\n\n", err,
		       sizeof(err));
	cr_assert_not_null(ps, "%s", err);
	cr_assert_eq(pol_count(ps), 1);
	pol_free(ps);
}

static void expect_error(const char *file, const char *where, const char *reason)
{
	char err[600];
	struct pol_set *ps;

	ps = pol_load(POL_TEST_DIR, file, err, sizeof(err));
	cr_assert_null(ps, "%s loaded but should fail", file);
	cr_assert_eq(errno, EINVAL);
	cr_assert_not_null(strstr(err, where), "error '%s' lacks '%s'", err, where);
	cr_assert_not_null(strstr(err, reason), "error '%s' lacks '%s'", err, reason);
}

Test(policy, unknown_syscall_reports_file_and_line)
{
	expect_error("err_unknown_syscall.policy",
		     "/err_unknown_syscall.policy:3: ", "unknown syscall 'no_such_syscall'");
}

Test(policy, unknown_constant_reports_file_and_line)
{
	expect_error("err_unknown_const.policy",
		     "/err_unknown_const.policy:2: ", "unknown constant 'NOT_A_CONSTANT'");
}

Test(policy, unknown_errno_reports_file_and_line)
{
	expect_error("err_unknown_errno.policy",
		     "/err_unknown_errno.policy:3: ", "unknown errno 'NOT_AN_ERRNO'");
}

Test(policy, bad_argument_index_reports_file_and_line)
{
	expect_error("err_bad_arg.policy", "/err_bad_arg.policy:3: ", "bad argument index");
}

Test(policy, missing_colon_reports_file_and_line)
{
	expect_error("err_missing_colon.policy", "/err_missing_colon.policy:1: ", "missing ':'");
}

Test(policy, trailing_garbage_reports_file_and_line)
{
	expect_error("err_trailing.policy", "/err_trailing.policy:3: ", "unexpected 'garbage'");
}

Test(policy, duplicate_syscall_reports_second_line_and_first)
{
	expect_error("err_duplicate.policy",
		     "/err_duplicate.policy:4: ", "duplicate entry for 'getpid' (first at ");
	expect_error("err_duplicate.policy", "err_duplicate.policy:1)", "duplicate");
}

Test(policy, missing_include_reports_including_line)
{
	expect_error("err_include_missing.policy",
		     "/err_include_missing.policy:3: ", "cannot open include");
}

Test(policy, include_loop_is_rejected_at_the_closing_include)
{
	expect_error("err_loop_a.policy", "/err_loop_b.policy:2: ", "include loop");
}

Test(policy, include_deeper_than_limit_is_rejected)
{
	char name[32], text[64];
	char err[600];
	int i;

	/* d0 includes d1 ... d9: ten files, nine levels of @include. */
	for (i = 0; i <= POL_MAX_INCLUDE_DEPTH + 1; i++) {
		snprintf(name, sizeof(name), "d%d.policy", i);
		snprintf(text, sizeof(text), "@include d%d.policy\n", i + 1);
		write_file(name, i == POL_MAX_INCLUDE_DEPTH + 1 ? "getpid: 1\n" : text);
	}
	cr_assert_null(pol_load(tmpdir, "d0.policy", err, sizeof(err)));
	cr_assert_not_null(strstr(err, "/d8.policy:1: "), "%s", err);
	cr_assert_not_null(strstr(err, "deeper than"), "%s", err);
	/* Eight levels are fine. */
	cr_assert_not_null(pol_load(tmpdir, "d1.policy", err, sizeof(err)), "%s", err);
}

Test(policy, line_too_long_reports_file_and_line)
{
	char *text = malloc(POL_MAX_LINE + 64);
	char err[600];

	cr_assert_not_null(text);
	strcpy(text, "getpid: 1\n# ");
	memset(text + strlen(text), 'x', POL_MAX_LINE);
	strcpy(text + strlen("getpid: 1\n# ") + POL_MAX_LINE, "\ngetppid: 1\n");
	cr_assert_null(load_text(text, err, sizeof(err)));
	cr_assert_not_null(strstr(err, "/t.policy:2: line too long"), "%s", err);
	free(text);
}

Test(policy, missing_rule_after_colon_is_an_error)
{
	char err[600];

	cr_assert_null(load_text("getpid:\n", err, sizeof(err)));
	cr_assert_not_null(strstr(err, "t.policy:1: missing rule"), "%s", err);
}

Test(policy, errno_out_of_range_is_an_error)
{
	char err[600];

	cr_assert_null(load_text("getpid: return 5000\n", err, sizeof(err)));
	cr_assert_not_null(strstr(err, "t.policy:1: bad errno"), "%s", err);
}

Test(policy, missing_top_file_names_the_path)
{
	char err[600];

	cr_assert_null(pol_load(POL_TEST_DIR, "nope.policy", err, sizeof(err)));
	cr_assert_not_null(strstr(err, "nope.policy: cannot open"), "%s", err);
}

Test(policy, plain_allow_in_deny_list_is_rejected_with_line)
{
	char err[600];
	struct pol_set *ps;
	scmp_filter_ctx ctx;
	unsigned n;

	ps = load_text("getppid: kill\ngetpid: 1\n", err, sizeof(err));
	cr_assert_not_null(ps, "%s", err);
	cr_assert_lt(pol_compile_denylist(ps, SCMP_ACT_KILL_PROCESS, &ctx, &n, err, sizeof(err)),
		     0);
	cr_assert_not_null(strstr(err, "t.policy:2: "), "%s", err);
	pol_free(ps);
}

/* --- behaviour of compiled filters ---------------------------------------- */

Test(policy, return_eperm_produces_errno_not_a_kill)
{
	static const struct probe_case c[] = {{0, 0, 0, EPERM}, {7, 7, 7, EPERM}};

	EXPECT_PROBES("exit_group: 1\ngetppid: return EPERM\n", SYS_getppid, c);
}

Test(policy, numeric_return_value_is_used_as_errno)
{
	static const struct probe_case c[] = {{0, 0, 0, 42}};

	EXPECT_PROBES("exit_group: 1\ngetppid: return 42\n", SYS_getppid, c);
}

Test(policy, equality_allows_listed_values_only)
{
	static const struct probe_case c[] = {
	    {1, 0, 0, 0},
	    {5, 0, 0, 0},
	    {0, 0, 0, DENIED},
	    {2, 0, 0, DENIED},
	    {UINT64_C(1) << 32 | 1, 0, 0, DENIED},
	};

	EXPECT_PROBES("exit_group: 1\ngetppid: arg0 == 1 || arg0 == 5\n", SYS_getppid, c);
}

Test(policy, not_equal_and_orderings_compare_unsigned)
{
	static const struct probe_case c[] = {
	    {1, 0, 0, 0},	  {3, 0, 0, 0},
	    {4, 0, 0, DENIED},			      /* != 0 && < 4 */
	    {0, 9, 0, 0},	  {0, 10, 0, DENIED}, /* arg1 <= 9 */
	    {7, 0, 100, 0},	  {7, 0, 101, 0},     /* arg2 > 99 */
	    {7, 0, 99, DENIED},	  {7, 0, UINT64_MAX, 0},
	    {5, 10, 100, DENIED}, {UINT64_MAX, 0, 0, DENIED},
	};

	EXPECT_PROBES("exit_group: 1\n"
		      "getppid: arg0 != 0 && arg0 < 4 || arg1 <= 9 && arg0 == 0 || "
		      "arg2 > 99 && arg0 == 7\n",
		      SYS_getppid, c);
}

Test(policy, masked_and_is_true_when_any_bit_is_set)
{
	static const struct probe_case c[] = {
	    {2, 0, 0, 0},      {4, 0, 0, 0},	  {6, 0, 0, 0},	     {7, 0, 0, 0},
	    {0, 0, 0, DENIED}, {1, 0, 0, DENIED}, {8, 0, 0, DENIED},
	};

	EXPECT_PROBES("exit_group: 1\ngetppid: arg0 & 0x6\n", SYS_getppid, c);
}

Test(policy, in_is_true_when_no_bit_outside_the_mask)
{
	static const struct probe_case c[] = {
	    {0, 0, 0, 0},
	    {1, 0, 0, 0},
	    {4, 0, 0, 0},
	    {5, 0, 0, 0},
	    {2, 0, 0, DENIED},
	    {8, 0, 0, DENIED},
	    {UINT64_C(1) << 40, 0, 0, DENIED},
	};

	EXPECT_PROBES("exit_group: 1\ngetppid: arg0 in 0x5\n", SYS_getppid, c);
}

Test(policy, range_on_one_argument_allows_inside_only)
{
	static const struct probe_case c[] = {
	    {9, 0, 0, DENIED},
	    {10, 0, 0, 0},
	    {15, 0, 0, 0},
	    {16, 0, 0, 0},
	    {1000, 0, 0, 0},
	    {1001, 0, 0, DENIED},
	    {UINT64_C(1) << 40, 0, 0, DENIED},
	};

	EXPECT_PROBES("exit_group: 1\ngetppid: arg0 >= 10 && arg0 <= 1000\n", SYS_getppid, c);
}

Test(policy, named_constants_and_negative_values_match)
{
	static const struct probe_case c[] = {
	    {O_RDONLY | O_CLOEXEC, 0, 0, 0},
	    {O_WRONLY | O_CLOEXEC, 0, 0, DENIED},
	    {0, (uint64_t)(int64_t)AT_FDCWD, 0, 0},
	    {0, 100, 0, DENIED},
	};

	EXPECT_PROBES("exit_group: 1\n"
		      "getppid: arg0 == O_RDONLY|O_CLOEXEC || arg0 == 0 && arg1 == -100\n",
		      SYS_getppid, c);
}

Test(policy, expression_with_return_gives_errno_outside_the_expression)
{
	static const struct probe_case c[] = {
	    {1, 0, 0, 0}, {2, 0, 0, 0}, {3, 0, 0, ENOSPC}, {0, 0, 0, ENOSPC},
	    {9, 4, 0, 0}, {9, 5, 0, 0}, {9, 3, 0, ENOSPC}, {9, 0, 0, ENOSPC},
	};

	EXPECT_PROBES("exit_group: 1\n"
		      "getppid: arg0 == 1 || arg0 == 2 || arg0 == 9 && arg1 & 4; return ENOSPC\n",
		      SYS_getppid, c);
}

Test(policy, in_with_return_gives_errno_for_bits_outside)
{
	static const struct probe_case c[] = {
	    {0, 0, 0, 0},      {4, 0, 0, 0},	  {6, 0, 0, 0},
	    {1, 0, 0, ENOSPC}, {9, 0, 0, ENOSPC}, {UINT64_C(1) << 63, 0, 0, ENOSPC},
	};

	EXPECT_PROBES("exit_group: 1\ngetppid: arg0 in 6; return ENOSPC\n", SYS_getppid, c);
}

Test(policy, single_value_with_return_compiles_to_two_rules)
{
	char err[600];
	struct pol_set *ps;
	scmp_filter_ctx ctx;
	unsigned n = 0;

	ps = load_text("prlimit64: arg2 == 0; return EPERM\nclone3: return ENOSYS\n", err,
		       sizeof(err));
	cr_assert_not_null(ps, "%s", err);
	cr_assert_eq(pol_compile(ps, SCMP_ACT_KILL_PROCESS, &ctx, &n, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(n, 3, "== and its complement (!=), plus clone3: %u rules", n);
	seccomp_release(ctx);
	pol_free(ps);
}

Test(policy, expression_too_large_for_libseccomp_is_an_error_with_line)
{
	char err[600];
	struct pol_set *ps;
	scmp_filter_ctx ctx;
	unsigned n;

	/* Every one of the 64 bits outside "in 0" is its own ERRNO rule, below
	 * 60-odd blocks for arg0's range: far past the per-line limit. */
	ps = load_text("getpid: 1\ngetppid: arg0 > 10 && arg0 < 99999 && arg1 in 0; return EPERM\n",
		       err, sizeof(err));
	cr_assert_not_null(ps, "%s", err);
	cr_assert_lt(pol_compile(ps, SCMP_ACT_KILL_PROCESS, &ctx, &n, err, sizeof(err)), 0);
	cr_assert_not_null(strstr(err, "t.policy:2: expression expands to"), "%s", err);
	pol_free(ps);
}

/* A reference model of one expression, against the compiled filter. */
static int model(uint64_t a0, uint64_t a1)
{
	if ((a0 >= 3 && a0 < 40 && (a1 & 0x12) != 0) || a0 == 77 ||
	    (a0 == 4 && (a1 & ~UINT64_C(0xf0)) == 0))
		return 0;
	return DENIED;
}

static int model_probe(void *arg)
{
	static const uint64_t vals[] = {0,  1,	2,    3,  4,	5,    0x10,	  0x12,	     0x20,
					39, 40, 0x77, 77, 0xf0, 0xf1, 1ULL << 33, UINT64_MAX};
	int bad = 0;

	(void)arg;
	for (size_t i = 0; i < BH_ARRAY_SIZE(vals); i++)
		for (size_t j = 0; j < BH_ARRAY_SIZE(vals); j++)
			if (probe(SYS_getppid, vals[i], vals[j], 0) != model(vals[i], vals[j]))
				bad++;
	return bad > 100 ? 100 : bad;
}

Test(policy, compiled_expression_matches_a_model)
{
	scmp_filter_ctx ctx;

	ctx = compile_text("exit_group: 1\n"
			   "getppid: arg0 >= 3 && arg0 < 40 && arg1 & 0x12 || arg0 == 77 || "
			   "arg0 == 4 && arg1 in 0xf0\n",
			   0, ACT_DENIED);
	assert_exit_ok(run_confined(ctx, model_probe, NULL));
}

static int call_clone3(void *arg)
{
	int want = *(int *)arg;

	errno = 0;
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != want)
		return 1;
	return 0;
}

Test(policy, clone3_gets_enosys_unless_named)
{
	int want = ENOSYS;

	assert_exit_ok(run_confined(compile_text("exit_group: 1\n", 0, SCMP_ACT_KILL_PROCESS),
				    call_clone3, &want));
	want = EPERM;
	assert_exit_ok(run_confined(
	    compile_text("exit_group: 1\nclone3: return EPERM\n", 0, SCMP_ACT_KILL_PROCESS),
	    call_clone3, &want));
}

static int call_getppid(void *arg)
{
	(void)arg;
	return syscall(SYS_getppid) > 0 ? 0 : 1;
}

Test(policy, call_outside_allow_list_gets_the_default_trap)
{
	assert_sigsys(
	    run_confined(compile_text("exit_group: 1\n", 0, SCMP_ACT_TRAP), call_getppid, NULL));
}

Test(policy, deny_list_kills_named_calls_and_allows_the_rest)
{
	static const struct probe_case c[] = {{0, 0, 0, 0}};
	struct probe_run pr = {SYS_getpid, c, 1};

	assert_exit_ok(run_confined(compile_text("getppid: kill\n", 1, 0), probe_all, &pr));
	assert_sigsys(run_confined(compile_text("getppid: kill\n", 1, 0), call_getppid, NULL));
}

/* --- the shipped policy files --------------------------------------------- */

static struct pol_set *load_shipped(const char *file)
{
	char err[600];
	struct pol_set *ps = pol_load(POL_SHIPPED_DIR, file, err, sizeof(err));

	cr_assert_not_null(ps, "%s", err);
	return ps;
}

static scmp_filter_ctx compile_shipped(const char *file, int deny, unsigned *n)
{
	struct pol_set *ps = load_shipped(file);
	scmp_filter_ctx ctx;
	char err[600];
	int r;

	if (deny)
		r = pol_compile_denylist(ps, SCMP_ACT_KILL_PROCESS, &ctx, n, err, sizeof(err));
	else
		r = pol_compile(ps, SCMP_ACT_KILL_PROCESS, &ctx, n, err, sizeof(err));
	cr_assert_eq(r, 0, "%s: %s", file, err);
	pol_free(ps);
	return ctx;
}

Test(policy, shipped_policies_parse_and_compile)
{
	unsigned n = 0;

	seccomp_release(compile_shipped("worker-passthrough.policy", 0, &n));
	cr_assert_gt(n, 40, "passthrough compiled to only %u rules", n);
	seccomp_release(compile_shipped("worker-memory.policy", 0, &n));
	cr_assert_gt(n, 40, "memory compiled to only %u rules", n);
	seccomp_release(compile_shipped("worker-s3.policy", 0, &n));
	cr_assert_gt(n, 40, "s3 compiled to only %u rules", n);
	seccomp_release(compile_shipped("parent.policy", 1, &n));
	cr_assert_gt(n, 20, "parent compiled to only %u rules", n);
}

static const char *const must_not_allow[] = {
    "execve",
    "execveat",
    "ptrace",
    "mount",
    "umount2",
    "pivot_root",
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "open_by_handle_at",
    "name_to_handle_at",
    "bpf",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "unshare",
    "setns",
    "process_vm_readv",
    "process_vm_writev",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "fork",
    "vfork",
    "chroot",
};

/* The S3 worker's calls among them: it connects out to its gateway. */
static const char *const s3_may_call[] = {"socket", "connect", NULL};

static bool excepted(const char *name, const char *const *except)
{
	for (; except && *except; except++)
		if (strcmp(*except, name) == 0)
			return true;
	return false;
}

/* file allows none of must_not_allow but those in except. */
static void assert_names_none(const char *file, const char *const *except)
{
	struct pol_set *ps = load_shipped(file);
	enum pol_action act;
	int e;

	for (size_t i = 0; i < BH_ARRAY_SIZE(must_not_allow); i++) {
		int r = pol_lookup(ps, must_not_allow[i], &act, &e);

		if (excepted(must_not_allow[i], except))
			continue;
		cr_expect(r == -ENOENT || act == POL_ERRNO || act == POL_KILL, "%s allows %s", file,
			  must_not_allow[i]);
	}
	pol_free(ps);
}

Test(policy, passthrough_policy_names_none_of_the_forbidden_calls)
{
	assert_names_none("worker-passthrough.policy", NULL);
}

Test(policy, memory_policy_names_none_of_the_forbidden_calls)
{
	assert_names_none("worker-memory.policy", NULL);
}

Test(policy, s3_policy_names_none_of_the_forbidden_calls_but_socket_and_connect)
{
	assert_names_none("worker-s3.policy", s3_may_call);
}

static int call_nr(void *arg)
{
	syscall(*(long *)arg, 0, 0, 0, 0, 0, 0);
	return 0;
}

/* Under file's filter each of must_not_allow but those in except dies. */
static void assert_kills_each(const char *file, const char *const *except)
{
	for (size_t i = 0; i < BH_ARRAY_SIZE(must_not_allow); i++) {
		long nr = seccomp_syscall_resolve_name(must_not_allow[i]);
		unsigned n;
		int status;

		if (excepted(must_not_allow[i], except))
			continue;
		cr_assert_geq(nr, 0, "%s", must_not_allow[i]);
		status = run_confined(compile_shipped(file, 0, &n), call_nr, &nr);
		cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
			  "%s: %s was not killed (status 0x%x)", file, must_not_allow[i], status);
	}
}

Test(policy, passthrough_filter_kills_each_forbidden_call)
{
	assert_kills_each("worker-passthrough.policy", NULL);
}

Test(policy, s3_filter_kills_each_forbidden_call)
{
	assert_kills_each("worker-s3.policy", s3_may_call);
}

/* One call with three arguments (call_nr's arguments are all 0). */
struct call3 {
	long c_nr;
	long c_a[4];
};

static int call3(void *arg)
{
	const struct call3 *c = arg;

	syscall(c->c_nr, c->c_a[0], c->c_a[1], c->c_a[2], c->c_a[3], 0, 0);
	return 0;
}

static int s3_confined(const struct call3 *c)
{
	unsigned n;

	return run_confined(compile_shipped("worker-s3.policy", 0, &n), call3, (void *)c);
}

Test(policy, s3_filter_lets_tcp_sockets_through_and_no_other)
{
	static const struct call3 ok[] = {
	    {SYS_socket, {AF_INET, SOCK_STREAM, 0}},
	    {SYS_socket, {AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP}},
	    {SYS_setsockopt, {3, IPPROTO_TCP, TCP_NODELAY, 0}},
	    {SYS_getsockopt, {3, SOL_SOCKET, SO_ERROR, 0}},
	};
	static const struct call3 killed[] = {
	    {SYS_socket, {AF_UNIX, SOCK_STREAM, 0}},
	    {SYS_socket, {AF_INET, SOCK_DGRAM, 0}},
	    {SYS_socket, {AF_INET6, SOCK_RAW, IPPROTO_TCP}},
	    {SYS_socket, {AF_NETLINK, SOCK_RAW, 0}},
	    {SYS_socket, {AF_PACKET, SOCK_RAW, 0}},
	    {SYS_socketpair, {AF_UNIX, SOCK_STREAM, 0, 0}},
	    {SYS_setsockopt, {3, IPPROTO_IPV6, 0, 0}},
	};

	for (size_t i = 0; i < BH_ARRAY_SIZE(ok); i++)
		assert_exit_ok(s3_confined(&ok[i]));
	for (size_t i = 0; i < BH_ARRAY_SIZE(killed); i++) {
		int status = s3_confined(&killed[i]);

		cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
			  "case %zu was not killed (status 0x%x)", i, status);
	}
}

Test(policy, s3_filter_opens_only_new_unnamed_files)
{
	static const struct call3 tmpfile = {
	    SYS_openat, {AT_FDCWD, (long)"/tmp", O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600}};
	static const struct call3 killed[] = {
	    {SYS_openat, {AT_FDCWD, (long)"/etc/passwd", O_RDONLY | O_CLOEXEC, 0}},
	    {SYS_openat, {AT_FDCWD, (long)"/tmp", O_RDONLY | O_DIRECTORY, 0}},
	    {SYS_openat, {AT_FDCWD, (long)"/tmp/x", O_RDWR | O_CREAT | O_EXCL, 0600}},
	    {SYS_openat, {AT_FDCWD, (long)"/tmp", O_TMPFILE | O_RDWR | O_PATH, 0600}},
	};

	assert_exit_ok(s3_confined(&tmpfile));
	for (size_t i = 0; i < BH_ARRAY_SIZE(killed); i++) {
		int status = s3_confined(&killed[i]);

		cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
			  "case %zu was not killed (status 0x%x)", i, status);
	}
}

static int passthrough_allowed_calls(void *arg)
{
	int fd;
	void *p;

	(void)arg;
	fd = (int)syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 1;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 2;
	if (syscall(SYS_close, fd) != 0)
		return 3;
	return 0;
}

Test(policy, passthrough_filter_allows_opens_and_plain_memory)
{
	unsigned n;

	assert_exit_ok(run_confined(compile_shipped("worker-passthrough.policy", 0, &n),
				    passthrough_allowed_calls, NULL));
}

static int map_executable(void *arg)
{
	(void)arg;
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return 0;
}

Test(policy, passthrough_filter_kills_exec_mappings)
{
	unsigned n;

	assert_sigsys(run_confined(compile_shipped("worker-passthrough.policy", 0, &n),
				   map_executable, NULL));
}

static int parent_allowed_and_soft_denied(void *arg)
{
	(void)arg;
	if (syscall(SYS_getpid) <= 0)
		return 1;
	if (syscall(SYS_personality, 0xffffffffUL) < 0)
		return 2; /* querying stays possible */
	errno = 0;
	if (syscall(SYS_personality, 0x0008UL) != -1 || errno != EPERM)
		return 3;
	return 0;
}

Test(policy, parent_deny_list_allows_ordinary_calls)
{
	unsigned n;

	assert_exit_ok(run_confined(compile_shipped("parent.policy", 1, &n),
				    parent_allowed_and_soft_denied, NULL));
}

Test(policy, parent_deny_list_kills_module_loading)
{
	long nr = SYS_init_module;
	unsigned n;

	assert_sigsys(run_confined(compile_shipped("parent.policy", 1, &n), call_nr, &nr));
}

Test(policy, check_dir_prints_one_line_per_kind)
{
	char buf[4096] = "";
	FILE *fp = fmemopen(buf, sizeof(buf) - 1, "w");

	cr_assert_not_null(fp);
	cr_assert_eq(pol_check_dir(POL_SHIPPED_DIR, fp), 0);
	fclose(fp);
	cr_assert_not_null(strstr(buf, "worker-passthrough "), "%s", buf);
	cr_assert_not_null(strstr(buf, "worker-s3 "), "%s", buf);
	cr_assert_not_null(strstr(buf, "\nparent "), "%s", buf);
	cr_assert_not_null(strstr(buf, " rules "), "%s", buf);
}

Test(policy, check_dir_reports_a_broken_file_with_its_line)
{
	char buf[4096] = "";
	FILE *fp;

	write_file("worker-passthrough.policy", "getpid: 1\n");
	write_file("worker-broken.policy", "getpid: 1\n\nbogus_call: 1\n");
	write_file("parent.policy", "getppid: kill\n");
	fp = fmemopen(buf, sizeof(buf) - 1, "w");
	cr_assert_not_null(fp);
	cr_assert_neq(pol_check_dir(tmpdir, fp), 0);
	fclose(fp);
	cr_assert_not_null(strstr(buf, "/worker-broken.policy:3: unknown syscall"), "%s", buf);
	cr_assert_not_null(strstr(buf, "worker-passthrough "), "the good kinds still print: %s",
			   buf);
}

Test(policy, resolve_dir_prefers_the_arch_subdirectory)
{
	char buf[512], want[512];

	snprintf(want, sizeof(want), "%s/%s", tmpdir, pol_arch_name());
	cr_assert_eq(pol_resolve_dir(tmpdir, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, tmpdir);
	cr_assert_eq(mkdir(want, 0700), 0);
	cr_assert_eq(pol_resolve_dir(tmpdir, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, want);
}
