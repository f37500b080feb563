/*
 * policy.h - seccomp policy files: parse (policy_parse.c) and compile to a
 * libseccomp filter (policy_compile.c).
 * Runs in: the parent (it compiles its own deny list and each worker kind's
 * allow list, which a worker only loads, and validates sets for
 * --check-policy) and the unit tests. Input is operator-written, trusted to be what the
 * operator meant but not to be well formed: every error is reported as
 * "file:line: reason" in the caller's buffer, never by exiting.
 *
 * Syntax (minijail/crosvm compatible), one syscall per line:
 *	name: 1				allow
 *	name: EXPR			allow when EXPR, else the default action
 *	name: EXPR; return ERRNO	allow when EXPR, else fail with ERRNO
 *	name: return ERRNO		fail with ERRNO (EPERM, ENOSYS, or a number)
 *	name: kill			the kill action
 *	@include path			relative to the including file's directory
 *	@frequency path			ignored (minijail BPF layout hint)
 *	# comment
 * EXPR is an || of &&-groups of "argN OP VALUE" with OP one of == != < <=
 * > >= & (some bit of VALUE set) or "in" (no bit outside VALUE set); VALUE
 * is numbers and named constants joined with |, each optionally negated
 * with ~.
 *
 * Cost: libseccomp takes one test per argument and rule and its 64-bit
 * < <= > >= are unreliable, so a line becomes a decision tree of ==, !=
 * and masked tests. == and in cost one rule, & one per bit; a range bound,
 * the complement of several values or of in (under "; return"), or an ||
 * group that leaves an argument untested while another tests it, cost up
 * to ~64 rules each. A line past POL_MAX_RULES_PER_SYSCALL is an error.
 *
 * Operators have this as bulkhead.policy(5) (man/bulkhead.policy.5.in), whose
 * examples tests/integration/check-policy-examples.sh runs through the
 * parser: a change of syntax, names or limits here changes the page too.
 */
#ifndef BH_POLICY_H
#define BH_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <seccomp.h>

#define POL_MAX_LINE		  1024 /* longer lines are an error, not truncated */
#define POL_MAX_INCLUDE_DEPTH	  8
#define POL_MAX_RULES_PER_SYSCALL 128 /* expansion limit per policy line */

/* Sub-directory of the policy base directory for this build's architecture. */
const char *pol_arch_name(void);

/*
 * The directory holding this architecture's files: BH_POLICY_DIR/<arch>, or,
 * for a binary run from its build tree, the source tree's policy/<arch>.
 * 0 or -ENAMETOOLONG.
 */
int pol_default_dir(int from_build_tree, char *buf, size_t len);

/* --policy-dir=DIR: DIR/<arch> when that is a directory, else DIR itself. */
int pol_resolve_dir(const char *dir, char *buf, size_t len);

/* File name of a worker kind's policy ("passthrough" -> worker-passthrough.policy). */
int pol_worker_file(const char *kind, char *buf, size_t len);

/* What a policy line says about one syscall. */
enum pol_action {
	POL_ALLOW = 1, /* name: 1 */
	POL_ALLOW_IF,  /* name: EXPR [; return ERRNO] */
	POL_ERRNO,     /* name: return ERRNO */
	POL_KILL,      /* name: kill */
};

/*
 * The parsed form, shared by policy_parse.c and policy_compile.c (callers
 * use the functions below). An expression is in disjunctive normal form: an
 * || of conjunctions, each an && of atoms on one argument.
 */
enum pol_op {
	POL_OP_EQ,
	POL_OP_NE,
	POL_OP_LT,
	POL_OP_LE,
	POL_OP_GT,
	POL_OP_GE,
	POL_OP_MASKED,	/* (arg & mask) == val */
	POL_OP_ANYBITS, /* (arg & mask) != 0 */
};

struct pol_atom {
	uint8_t pa_arg;
	uint8_t pa_op;
	uint64_t pa_val;
	uint64_t pa_mask;
};

struct pol_conj {
	struct pol_atom *pc_atoms;
	size_t pc_n;
};

struct pol_dnf {
	struct pol_conj *pd_conj;
	size_t pd_n;
};

struct pol_entry {
	char *pe_name;
	int pe_nr; /* for the native architecture */
	enum pol_action pe_action;
	int pe_errno;		/* POL_ERRNO, or POL_ALLOW_IF's "; return" */
	struct pol_dnf pe_expr; /* POL_ALLOW_IF only */
	const char *pe_file;	/* points into the set's file list */
	unsigned pe_line;
};

struct pol_set {
	struct pol_entry *ps_ent;
	size_t ps_n;
	size_t ps_cap;
	char **ps_files;
	size_t ps_nfiles;
};

/* policy_names.c: the value of a constant name / errno name of len bytes
 * as a policy file spells it: 0, or -ENOENT for a name not in the table. */
int pol_const_value(const char *name, size_t len, uint64_t *val);
int pol_errno_value(const char *name, size_t len, int *val);

/*
 * Parse DIR/FILE (FILE may be absolute) and everything it includes.
 * NULL with errno set and "file:line: reason" in err on failure.
 */
struct pol_set *pol_load(const char *dir, const char *file, char *err, size_t errlen);
void pol_free(struct pol_set *ps);

/* Number of syscalls the set names. */
size_t pol_count(const struct pol_set *ps);

/*
 * The entry for syscall NAME: 0 with its action (and errno for POL_ERRNO and
 * for POL_ALLOW_IF with "; return", else 0), or -ENOENT if not named.
 */
int pol_lookup(const struct pol_set *ps, const char *name, enum pol_action *act, int *errnum);

/*
 * Allow list: everything not named gets DEFAULT_ACTION (SCMP_ACT_KILL_PROCESS,
 * SCMP_ACT_TRAP, SCMP_ACT_NOTIFY, SCMP_ACT_LOG ...), allowed calls
 * SCMP_ACT_ALLOW, "return" lines SCMP_ACT_ERRNO(n), "kill" lines the default
 * action. clone3 gets ENOSYS unless named. The filter is not loaded; the
 * caller owns *out (seccomp_release). *nrules counts the libseccomp rules
 * added. 0 or -errno with "file:line: reason" in err.
 */
int pol_compile(const struct pol_set *ps, uint32_t default_action, scmp_filter_ctx *out,
		unsigned *nrules, char *err, size_t errlen);

/*
 * Deny list (parent.policy): everything not named is allowed; "return"
 * lines get SCMP_ACT_ERRNO(n), "kill" lines KILL_ACTION, "EXPR; return
 * ERRNO" lines the errno when EXPR is false. A plain allow line is an error
 * (it would mean nothing). Other architectures' syscall numbers (int 0x80,
 * x32) kill the process, since a deny list keyed on x86_64 numbers cannot
 * cover them.
 */
int pol_compile_denylist(const struct pol_set *ps, uint32_t kill_action, scmp_filter_ctx *out,
			 unsigned *nrules, char *err, size_t errlen);

/*
 * --check-policy: load and compile every worker-*.policy in DIR (at least
 * worker-passthrough.policy) and parent.policy, print one line per kind with
 * its compiled rule count, or the first "file:line: reason". 0 when all are
 * valid, -errno otherwise.
 */
int pol_check_dir(const char *dir, FILE *out);

#endif
