/*
 * policy_compile.c - turn a parsed policy set into a libseccomp filter, and
 * validate a whole policy directory for --check-policy.
 * Runs in: both. Input is a set policy_parse.c already checked; what can
 * still fail here is an expression libseccomp cannot hold, reported with
 * the line it came from.
 *
 * libseccomp (2.5) takes, per rule, at most one comparison per argument,
 * has no "masked bits non-zero" and no negation, lets an unconditional rule
 * override conditional ones, does not backtrack into a sibling when a
 * subtree fails, and gets 64-bit < <= > >= wrong once they have siblings.
 * So each line is compiled here into a decision tree that only uses ==, !=
 * and masked ==: at each argument the values are cut into cells that every
 * || group holds entirely or not at all, so sibling rules never overlap;
 * "EXPR; return ERRNO" gives the cells outside EXPR explicit ERRNO rules.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "util.h"

/*
 * A set of values of one argument, as disjoint intervals or, when masked
 * tests are involved, as disjoint cubes (ternary patterns: the bits in cb_m
 * equal those in cb_v, the others are free).
 */
struct pol_iv {
	uint64_t lo, hi;
};

struct pol_cube {
	uint64_t cb_m, cb_v;
};

struct pol_vset {
	int vs_cubes;
	size_t vs_n;
	struct pol_iv *vs_iv;
	struct pol_cube *vs_cb;
};

struct pol_emit {
	scmp_filter_ctx pm_ctx;
	unsigned pm_rules;	 /* added to the filter */
	unsigned pm_entry_rules; /* for the current line, against the limit */
	char *pm_err;
	size_t pm_errlen;
	/* the line being compiled */
	const struct pol_entry *pm_pe;
	uint32_t pm_allow; /* action inside the expression */
	int pm_emit_allow; /* 0 when that is the default already */
	uint32_t pm_else;  /* action outside it ... */
	int pm_has_else;   /* ... when not the default */
};

static int __attribute__((format(printf, 3, 4)))
pm_error(struct pol_emit *pm, const struct pol_entry *pe, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (pm->pm_errlen)
		snprintf(pm->pm_err, pm->pm_errlen, "%s:%u: %s", pe->pe_file, pe->pe_line, msg);
	return -EINVAL;
}

static void vs_free(struct pol_vset *vs)
{
	free(vs->vs_iv);
	free(vs->vs_cb);
	memset(vs, 0, sizeof(*vs));
}

static int vs_add_iv(struct pol_vset *vs, uint64_t lo, uint64_t hi)
{
	struct pol_iv *n = reallocarray(vs->vs_iv, vs->vs_n + 1, sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	n[vs->vs_n++] = (struct pol_iv){lo, hi};
	vs->vs_iv = n;
	return 0;
}

static int vs_add_cube(struct pol_vset *vs, uint64_t m, uint64_t v)
{
	struct pol_cube *n;

	if (vs->vs_n >= 4 * POL_MAX_RULES_PER_SYSCALL)
		return -E2BIG;
	n = reallocarray(vs->vs_cb, vs->vs_n + 1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	n[vs->vs_n++] = (struct pol_cube){m, v & m};
	vs->vs_cb = n;
	return 0;
}

/* [lo, hi] as aligned blocks: the largest 2^k block aligned at lo, repeatedly. */
static int iv_to_cubes(struct pol_vset *out, uint64_t lo, uint64_t hi)
{
	int r;

	for (;;) {
		unsigned k = 0;

		while (k < 64 && (k == 63 || (lo & ((UINT64_C(1) << (k + 1)) - 1)) == 0) &&
		       (k == 63 ? lo == 0 && hi == UINT64_MAX
				: hi - lo >= (UINT64_C(1) << (k + 1)) - 1))
			k++;
		if (k == 64)
			return vs_add_cube(out, 0, 0);
		if ((r = vs_add_cube(out, ~((UINT64_C(1) << k) - 1), lo)) < 0)
			return r;
		if (hi - lo < (UINT64_C(1) << k))
			return 0;
		lo += UINT64_C(1) << k;
	}
}

/* The values one comparison atom accepts, as intervals. */
static int atom_ivs(const struct pol_atom *a, struct pol_vset *out)
{
	uint64_t v = a->pa_val;
	int r = 0;

	switch (a->pa_op) {
	case POL_OP_EQ:
		return vs_add_iv(out, v, v);
	case POL_OP_NE:
		if (v > 0)
			r = vs_add_iv(out, 0, v - 1);
		if (r == 0 && v < UINT64_MAX)
			r = vs_add_iv(out, v + 1, UINT64_MAX);
		return r;
	case POL_OP_LT:
		return v > 0 ? vs_add_iv(out, 0, v - 1) : 0;
	case POL_OP_LE:
		return vs_add_iv(out, 0, v);
	case POL_OP_GT:
		return v < UINT64_MAX ? vs_add_iv(out, v + 1, UINT64_MAX) : 0;
	default: /* POL_OP_GE */
		return vs_add_iv(out, v, UINT64_MAX);
	}
}

/* The values one atom accepts, as disjoint cubes. */
static int atom_cubes(const struct pol_atom *a, struct pol_vset *out)
{
	struct pol_vset iv = {0};
	uint64_t above = 0;
	int r = 0;

	out->vs_cubes = 1;
	switch (a->pa_op) {
	case POL_OP_MASKED:
		return vs_add_cube(out, a->pa_mask, a->pa_val);
	case POL_OP_ANYBITS:
		/* Some bit of the mask set: the highest set one is bit b. */
		for (int b = 63; b >= 0 && r == 0; b--) {
			uint64_t bit = UINT64_C(1) << b;

			if (!(a->pa_mask & bit))
				continue;
			r = vs_add_cube(out, above | bit, bit);
			above |= bit;
		}
		return r;
	default:
		if ((r = atom_ivs(a, &iv)) == 0)
			for (size_t i = 0; i < iv.vs_n && r == 0; i++)
				r = iv_to_cubes(out, iv.vs_iv[i].lo, iv.vs_iv[i].hi);
		vs_free(&iv);
		return r;
	}
}

static int cube_meet(const struct pol_cube *a, const struct pol_cube *b, struct pol_cube *out)
{
	if ((a->cb_v ^ b->cb_v) & a->cb_m & b->cb_m)
		return 0;
	*out = (struct pol_cube){a->cb_m | b->cb_m, a->cb_v | b->cb_v};
	return 1;
}

/* a within b */
static int cube_within(const struct pol_cube *a, const struct pol_cube *b)
{
	return (b->cb_m & ~a->cb_m) == 0 && ((a->cb_v ^ b->cb_v) & b->cb_m) == 0;
}

/* Intersect two sets of the same kind (both lists disjoint, so the result is). */
static int vs_meet(struct pol_vset *acc, const struct pol_vset *with)
{
	struct pol_vset out = {.vs_cubes = acc->vs_cubes};
	struct pol_cube c;
	int r = 0;

	for (size_t i = 0; i < acc->vs_n && r == 0; i++) {
		for (size_t j = 0; j < with->vs_n && r == 0; j++) {
			if (acc->vs_cubes) {
				if (cube_meet(&acc->vs_cb[i], &with->vs_cb[j], &c))
					r = vs_add_cube(&out, c.cb_m, c.cb_v);
			} else {
				uint64_t lo = acc->vs_iv[i].lo > with->vs_iv[j].lo
						  ? acc->vs_iv[i].lo
						  : with->vs_iv[j].lo;
				uint64_t hi = acc->vs_iv[i].hi < with->vs_iv[j].hi
						  ? acc->vs_iv[i].hi
						  : with->vs_iv[j].hi;

				if (lo <= hi)
					r = vs_add_iv(&out, lo, hi);
			}
		}
	}
	vs_free(acc);
	*acc = out;
	return r;
}

/* What one && group accepts for argument ARG. */
static int conj_vset(const struct pol_conj *pc, unsigned arg, int cubes, struct pol_vset *out)
{
	struct pol_vset one;
	int r;

	*out = (struct pol_vset){.vs_cubes = cubes};
	r = cubes ? vs_add_cube(out, 0, 0) : vs_add_iv(out, 0, UINT64_MAX);
	for (size_t i = 0; i < pc->pc_n && r == 0; i++) {
		if (pc->pc_atoms[i].pa_arg != arg)
			continue;
		one = (struct pol_vset){.vs_cubes = cubes};
		r = cubes ? atom_cubes(&pc->pc_atoms[i], &one) : atom_ivs(&pc->pc_atoms[i], &one);
		if (r == 0)
			r = vs_meet(out, &one);
		vs_free(&one);
	}
	return r;
}

static int conj_tests(const struct pol_conj *pc, unsigned arg, int *masked)
{
	int n = 0;

	for (size_t i = 0; i < pc->pc_n; i++) {
		if (pc->pc_atoms[i].pa_arg != arg)
			continue;
		n++;
		if (pc->pc_atoms[i].pa_op == POL_OP_MASKED ||
		    pc->pc_atoms[i].pa_op == POL_OP_ANYBITS)
			*masked = 1;
	}
	return n;
}

static int pm_add(struct pol_emit *pm, uint32_t action, const struct scmp_arg_cmp *cmp,
		  unsigned ncmp)
{
	const struct pol_entry *pe = pm->pm_pe;
	int r;

	if (++pm->pm_entry_rules > POL_MAX_RULES_PER_SYSCALL)
		return pm_error(pm, pe,
				"expression expands to more than %d filter rules "
				"(< <= > >= and the complement of & and in cost up to 64 "
				"rules each; prefer == and in)",
				POL_MAX_RULES_PER_SYSCALL);
	r = seccomp_rule_add_exact_array(pm->pm_ctx, action, pe->pe_nr, ncmp, cmp);
	if (r < 0)
		return pm_error(pm, pe, "libseccomp rejected the rule for '%s': %s", pe->pe_name,
				strerror(-r));
	pm->pm_rules++;
	return 0;
}

static int tree_emit(struct pol_emit *pm, const struct pol_conj **boxes, size_t nb, unsigned from,
		     struct scmp_arg_cmp *path, unsigned npath);

/* Cells of the universe for ARG: each inside or outside every box's set. */
static int tree_cells(const struct pol_vset *vs, size_t nvs, int cubes, struct pol_vset *cells)
{
	struct pol_vset next;
	struct pol_cube c, cur;
	uint64_t *cut = NULL;
	size_t ncut = 0, i, j, k;
	int r = 0;

	*cells = (struct pol_vset){.vs_cubes = cubes};
	if (!cubes) {
		/* Cut the range at every interval's ends. */
		for (i = 0; i < nvs; i++)
			ncut += 2 * vs[i].vs_n;
		if ((cut = calloc(ncut + 1, sizeof(*cut))) == NULL)
			return -ENOMEM;
		for (i = 0, ncut = 0; i < nvs; i++) {
			for (j = 0; j < vs[i].vs_n; j++) {
				cut[ncut++] = vs[i].vs_iv[j].lo;
				if (vs[i].vs_iv[j].hi != UINT64_MAX)
					cut[ncut++] = vs[i].vs_iv[j].hi + 1;
			}
		}
		cut[ncut++] = 0;
		for (i = 1; i < ncut; i++) /* insertion sort: a few dozen at most */
			for (j = i; j > 0 && cut[j - 1] > cut[j]; j--) {
				uint64_t t = cut[j];

				cut[j] = cut[j - 1];
				cut[j - 1] = t;
			}
		for (i = 0; i < ncut && r == 0; i++) {
			if (i + 1 < ncut && cut[i + 1] == cut[i])
				continue;
			r = vs_add_iv(cells, cut[i], i + 1 < ncut ? cut[i + 1] - 1 : UINT64_MAX);
		}
		free(cut);
		return r;
	}
	/* Split every cell by every cube: the part inside, the parts outside. */
	if ((r = vs_add_cube(cells, 0, 0)) < 0)
		return r;
	for (i = 0; i < nvs; i++) {
		for (j = 0; j < vs[i].vs_n; j++) {
			const struct pol_cube *b = &vs[i].vs_cb[j];

			next = (struct pol_vset){.vs_cubes = 1};
			for (k = 0; k < cells->vs_n && r == 0; k++) {
				cur = cells->vs_cb[k];
				if (!cube_meet(&cur, b, &c) || cube_within(&cur, b)) {
					r = vs_add_cube(&next, cur.cb_m, cur.cb_v);
					continue;
				}
				r = vs_add_cube(&next, c.cb_m, c.cb_v);
				for (int bit = 0; bit < 64 && r == 0; bit++) {
					uint64_t m = UINT64_C(1) << bit;

					if (!(b->cb_m & m) || (cur.cb_m & m))
						continue;
					/* outside b on this bit, inside on the ones before */
					r = vs_add_cube(&next, cur.cb_m | m,
							(cur.cb_v | (~b->cb_v & m)));
					cur.cb_m |= m;
					cur.cb_v |= b->cb_v & m;
				}
			}
			vs_free(cells);
			*cells = next;
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int vs_holds_cell(const struct pol_vset *vs, const struct pol_vset *cells, size_t k)
{
	for (size_t i = 0; i < vs->vs_n; i++) {
		if (cells->vs_cubes ? cube_within(&cells->vs_cb[k], &vs->vs_cb[i])
				    : cells->vs_iv[k].lo >= vs->vs_iv[i].lo &&
					  cells->vs_iv[k].hi <= vs->vs_iv[i].hi)
			return 1;
	}
	return 0;
}

/* Whether nothing below argument FROM is tested for these groups. */
static int tree_is_leaf(const struct pol_conj **sub, size_t nsub, unsigned from)
{
	int masked = 0;

	for (size_t i = 0; i < nsub; i++) {
		unsigned a;

		for (a = from; a < 6; a++)
			if (conj_tests(sub[i], a, &masked) > 0)
				break;
		if (a == 6)
			return 1; /* this group holds whatever follows */
	}
	return nsub == 0;
}

/*
 * Recurse under each comparison that spells the value set IV (sorted,
 * disjoint, non-adjacent intervals). Only == != and masked tests are used:
 * libseccomp's 64-bit < <= > >= rules misbehave once they have siblings.
 */
static int tree_ivs(struct pol_emit *pm, const struct pol_vset *iv, unsigned arg,
		    const struct pol_conj **sub, size_t nsub, struct scmp_arg_cmp *path,
		    unsigned npath)
{
	const struct pol_iv *v = iv->vs_iv;
	struct pol_vset blocks = {0};
	int r = 0;

	/*
	 * Everything but one value: the complement of an == test. Only as the
	 * last test of a rule: libseccomp's insertion under != nodes grows
	 * exponentially with the rules below them.
	 */
	if (tree_is_leaf(sub, nsub, arg + 1) &&
	    ((iv->vs_n == 2 && v[0].lo == 0 && v[1].hi == UINT64_MAX && v[1].lo == v[0].hi + 2) ||
	     (iv->vs_n == 1 && v[0].lo == 0 && v[0].hi == UINT64_MAX - 1) ||
	     (iv->vs_n == 1 && v[0].lo == 1 && v[0].hi == UINT64_MAX))) {
		uint64_t hole = v[0].lo == 1 ? 0 : v[0].hi + 1;

		path[npath] = SCMP_CMP64(arg, SCMP_CMP_NE, hole);
		return tree_emit(pm, sub, nsub, arg + 1, path, npath + 1);
	}
	for (size_t i = 0; i < iv->vs_n && r == 0; i++) {
		if (v[i].lo == 0 && v[i].hi == UINT64_MAX)
			return tree_emit(pm, sub, nsub, arg + 1, path, npath);
		if (v[i].lo == v[i].hi) {
			path[npath] = SCMP_CMP64(arg, SCMP_CMP_EQ, v[i].lo);
			r = tree_emit(pm, sub, nsub, arg + 1, path, npath + 1);
			continue;
		}
		r = iv_to_cubes(&blocks, v[i].lo, v[i].hi);
		for (size_t j = 0; j < blocks.vs_n && r == 0; j++) {
			path[npath] = SCMP_CMP64(arg, SCMP_CMP_MASKED_EQ, blocks.vs_cb[j].cb_m,
						 blocks.vs_cb[j].cb_v);
			r = tree_emit(pm, sub, nsub, arg + 1, path, npath + 1);
		}
		vs_free(&blocks);
	}
	return r;
}

static int tree_cube(struct pol_emit *pm, const struct pol_cube *c, unsigned arg,
		     const struct pol_conj **sub, size_t nsub, struct scmp_arg_cmp *path,
		     unsigned npath)
{
	if (c->cb_m == 0)
		return tree_emit(pm, sub, nsub, arg + 1, path, npath);
	if (c->cb_m == UINT64_MAX)
		path[npath] = SCMP_CMP64(arg, SCMP_CMP_EQ, c->cb_v);
	else
		path[npath] = SCMP_CMP64(arg, SCMP_CMP_MASKED_EQ, c->cb_m, c->cb_v);
	return tree_emit(pm, sub, nsub, arg + 1, path, npath + 1);
}

/*
 * Cells that the same groups hold lead to the same subtree: emit them
 * together (merged intervals), so "arg == v; return E" costs two rules.
 */
static int tree_groups(struct pol_emit *pm, const struct pol_conj **boxes, size_t nb,
		       const struct pol_vset *vs, const struct pol_vset *cells, unsigned arg,
		       struct scmp_arg_cmp *path, unsigned npath)
{
	const struct pol_conj **sub = calloc(nb, sizeof(*sub));
	char *member = calloc(cells->vs_n, nb), *done = calloc(cells->vs_n, 1);
	struct pol_vset merged;
	size_t i, j, k, nsub;
	int r = 0;

	if (sub == NULL || member == NULL || done == NULL)
		r = -ENOMEM;
	for (k = 0; k < cells->vs_n && r == 0; k++)
		for (i = 0; i < nb; i++)
			member[k * nb + i] = (char)vs_holds_cell(&vs[i], cells, k);
	for (k = 0; k < cells->vs_n && r == 0; k++) {
		if (done[k])
			continue;
		for (i = 0, nsub = 0; i < nb; i++)
			if (member[k * nb + i])
				sub[nsub++] = boxes[i];
		merged = (struct pol_vset){0};
		for (j = k; j < cells->vs_n && r == 0; j++) {
			if (done[j] || memcmp(member + j * nb, member + k * nb, nb) != 0)
				continue;
			done[j] = 1;
			if (nsub == 0 && !pm->pm_has_else)
				continue; /* the default action, no rule needed */
			if (cells->vs_cubes) {
				r = tree_cube(pm, &cells->vs_cb[j], arg, sub, nsub, path, npath);
			} else if (merged.vs_n &&
				   merged.vs_iv[merged.vs_n - 1].hi + 1 == cells->vs_iv[j].lo) {
				merged.vs_iv[merged.vs_n - 1].hi = cells->vs_iv[j].hi;
			} else {
				r = vs_add_iv(&merged, cells->vs_iv[j].lo, cells->vs_iv[j].hi);
			}
		}
		if (r == 0 && merged.vs_n)
			r = tree_ivs(pm, &merged, arg, sub, nsub, path, npath);
		vs_free(&merged);
	}
	free(sub);
	free(member);
	free(done);
	return r;
}

/*
 * Emit the rules for the && groups BOXES under the comparisons in PATH, as a
 * decision tree: at each argument the universe is cut into cells that every
 * group either holds or not, so sibling rules never overlap and libseccomp's
 * tree (which does not backtrack into a sibling) means what we mean.
 */
static int tree_emit(struct pol_emit *pm, const struct pol_conj **boxes, size_t nb, unsigned from,
		     struct scmp_arg_cmp *path, unsigned npath)
{
	struct pol_vset *vs = NULL, cells = {0};
	unsigned arg = 6;
	int cubes = 0, r = 0;
	size_t i;

	if (nb == 0)
		return pm->pm_has_else ? pm_add(pm, pm->pm_else, path, npath) : 0;
	for (i = 0; i < nb; i++) {
		unsigned a, first = 6;

		for (a = from; a < 6 && first == 6; a++)
			if (conj_tests(boxes[i], a, &cubes) > 0)
				first = a;
		if (first == 6) /* this group holds for everything below PATH */
			return pm->pm_emit_allow ? pm_add(pm, pm->pm_allow, path, npath) : 0;
		if (first < arg)
			arg = first;
	}
	cubes = 0;
	for (i = 0; i < nb; i++)
		conj_tests(boxes[i], arg, &cubes);
	if ((vs = calloc(nb, sizeof(*vs))) == NULL)
		return pm_error(pm, pm->pm_pe, "out of memory");
	for (i = 0; i < nb && r == 0; i++)
		r = conj_vset(boxes[i], arg, cubes, &vs[i]);
	if (r == 0)
		r = tree_cells(vs, nb, cubes, &cells);
	if (r == 0)
		r = tree_groups(pm, boxes, nb, vs, &cells, arg, path, npath);
	vs_free(&cells);
	for (i = 0; i < nb; i++)
		vs_free(&vs[i]);
	free(vs);
	if (r == -E2BIG)
		return pm_error(pm, pm->pm_pe, "expression expands to too many filter rules");
	if (r == -ENOMEM)
		return pm_error(pm, pm->pm_pe, "out of memory");
	return r;
}

/* "name: EXPR [; return ERRNO]" */
static int emit_expr(struct pol_emit *pm, const struct pol_entry *pe, uint32_t dflt)
{
	const struct pol_conj **boxes;
	struct scmp_arg_cmp path[6];
	int r;

	if (dflt == SCMP_ACT_ALLOW && pe->pe_errno == 0)
		return pm_error(pm, pe,
				"in a deny list '%s' needs '; return ERRNO' after the "
				"expression",
				pe->pe_name);
	if ((boxes = calloc(pe->pe_expr.pd_n, sizeof(*boxes))) == NULL)
		return pm_error(pm, pe, "out of memory");
	for (size_t i = 0; i < pe->pe_expr.pd_n; i++)
		boxes[i] = &pe->pe_expr.pd_conj[i];
	pm->pm_allow = SCMP_ACT_ALLOW;
	pm->pm_emit_allow = dflt != SCMP_ACT_ALLOW;
	pm->pm_else = SCMP_ACT_ERRNO((uint32_t)pe->pe_errno);
	pm->pm_has_else = pe->pe_errno != 0;
	r = tree_emit(pm, boxes, pe->pe_expr.pd_n, 0, path, 0);
	free(boxes);
	return r;
}

static int emit_entry(struct pol_emit *pm, const struct pol_entry *pe, uint32_t dflt, uint32_t kill)
{
	pm->pm_entry_rules = 0;
	pm->pm_pe = pe;
	switch (pe->pe_action) {
	case POL_ALLOW:
		if (dflt == SCMP_ACT_ALLOW)
			return pm_error(pm, pe,
					"'%s: 1' in a deny list allows what is allowed "
					"anyway",
					pe->pe_name);
		return pm_add(pm, SCMP_ACT_ALLOW, NULL, 0);
	case POL_ERRNO:
		return pm_add(pm, SCMP_ACT_ERRNO((uint32_t)pe->pe_errno), NULL, 0);
	case POL_KILL:
		/* In an allow list, kill is what the default already does. */
		if (kill == dflt)
			return 0;
		return pm_add(pm, kill, NULL, 0);
	case POL_ALLOW_IF:
		break;
	}
	return emit_expr(pm, pe, dflt);
}

static int pol_compile_mode(const struct pol_set *ps, uint32_t dflt, uint32_t kill,
			    scmp_filter_ctx *out, unsigned *nrules, char *err, size_t errlen)
{
	struct pol_emit pm = {.pm_err = err, .pm_errlen = errlen};
	int clone3, r;

	if (errlen)
		err[0] = '\0';
	*out = NULL;
	if ((pm.pm_ctx = seccomp_init(dflt)) == NULL) {
		snprintf(err, errlen, "seccomp_init failed");
		return -ENOMEM;
	}
	/* Other ABIs (int 0x80, x32) would bypass rules keyed on native numbers. */
	r = seccomp_attr_set(pm.pm_ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r < 0) {
		snprintf(err, errlen, "seccomp_attr_set: %s", strerror(-r));
		goto fail;
	}
	/* A binary search over the syscall numbers instead of a linear chain:
	 * every system call of a worker runs this filter (the kernel's cache
	 * skips it only for calls allowed whatever their arguments). */
	r = seccomp_attr_set(pm.pm_ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (r < 0) {
		snprintf(err, errlen, "seccomp_attr_set optimize: %s", strerror(-r));
		goto fail;
	}
	clone3 = seccomp_syscall_resolve_name("clone3");
	for (size_t i = 0; i < ps->ps_n; i++) {
		if ((r = emit_entry(&pm, &ps->ps_ent[i], dflt, kill)) < 0)
			goto fail;
		if (ps->ps_ent[i].pe_nr == clone3)
			clone3 = -1;
	}
	/* clone3's flags live in memory a filter cannot read; glibc retries
	 * with clone (which the policy can filter) only on ENOSYS. */
	if (clone3 >= 0) {
		r = seccomp_rule_add(pm.pm_ctx, SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
		if (r < 0) {
			snprintf(err, errlen, "clone3 rule: %s", strerror(-r));
			goto fail;
		}
		pm.pm_rules++;
	}
	*out = pm.pm_ctx;
	*nrules = pm.pm_rules;
	return 0;
fail:
	seccomp_release(pm.pm_ctx);
	return r < 0 ? r : -EINVAL;
}

int pol_compile(const struct pol_set *ps, uint32_t default_action, scmp_filter_ctx *out,
		unsigned *nrules, char *err, size_t errlen)
{
	if (default_action == SCMP_ACT_ALLOW) {
		snprintf(err, errlen, "an allow list needs a default action other than allow");
		return -EINVAL;
	}
	return pol_compile_mode(ps, default_action, default_action, out, nrules, err, errlen);
}

int pol_compile_denylist(const struct pol_set *ps, uint32_t kill_action, scmp_filter_ctx *out,
			 unsigned *nrules, char *err, size_t errlen)
{
	return pol_compile_mode(ps, SCMP_ACT_ALLOW, kill_action, out, nrules, err, errlen);
}

/* Load and compile one file; print its line or its error. */
static int pol_check_one(const char *dir, const char *file, const char *kind, int deny, FILE *out)
{
	char err[600];
	struct pol_set *ps;
	scmp_filter_ctx ctx;
	unsigned nrules;
	int r;

	if ((ps = pol_load(dir, file, err, sizeof(err))) == NULL) {
		fprintf(out, "%s\n", err);
		return -EINVAL;
	}
	if (deny)
		r = pol_compile_denylist(ps, SCMP_ACT_KILL_PROCESS, &ctx, &nrules, err,
					 sizeof(err));
	else
		r = pol_compile(ps, SCMP_ACT_KILL_PROCESS, &ctx, &nrules, err, sizeof(err));
	if (r < 0) {
		fprintf(out, "%s\n", err);
	} else {
		fprintf(out, "%-20s %s/%s: %zu syscalls, %u rules (%s list)\n", kind, dir, file,
			pol_count(ps), nrules, deny ? "deny" : "allow");
		seccomp_release(ctx);
	}
	pol_free(ps);
	return r;
}

static int pol_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int pol_check_dir(const char *dir, FILE *out)
{
	char **names = NULL, **nn, kind[256];
	struct dirent *de;
	size_t n = 0, i, len;
	int have_pt = 0, r = 0, r1;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		r = -errno;
		fprintf(out, "%s: %s\n", dir, strerror(-r));
		return r;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (strncmp(de->d_name, "worker-", 7) != 0 || len < 15 ||
		    strcmp(de->d_name + len - 7, ".policy") != 0)
			continue;
		if ((nn = reallocarray(names, n + 1, sizeof(*nn))) == NULL ||
		    (nn[n] = strdup(de->d_name)) == NULL) {
			names = nn ? nn : names;
			r = -ENOMEM;
			break;
		}
		names = nn;
		n++;
	}
	closedir(d);
	if (r == 0 && n)
		qsort(names, n, sizeof(*names), pol_name_cmp);
	if (r == -ENOMEM) {
		fprintf(out, "%s: out of memory\n", dir);
		goto out;
	}
	/* Check every file, so one run reports every broken kind. */
	for (i = 0; i < n; i++) {
		len = strlen(names[i]);
		snprintf(kind, sizeof(kind), "%.*s", (int)(len - 7), names[i]);
		if (strcmp(names[i], "worker-passthrough.policy") == 0)
			have_pt = 1;
		if ((r1 = pol_check_one(dir, names[i], kind, 0, out)) < 0 && r == 0)
			r = r1;
	}
	if (!have_pt) {
		fprintf(out, "%s/worker-passthrough.policy: missing\n", dir);
		if (r == 0)
			r = -ENOENT;
	}
	if ((r1 = pol_check_one(dir, "parent.policy", "parent", 1, out)) < 0 && r == 0)
		r = r1;
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}
