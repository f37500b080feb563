/*
 * policy_parse.c - read seccomp policy files (minijail/crosvm syntax) into a
 * struct pol_set: one entry per syscall, argument expressions in disjunctive
 * normal form, named constants resolved.
 * Runs in: both. The files are operator-written; nothing here trusts them to
 * be well formed: every line is bounded, every name resolved against a
 * table or libseccomp, and the first problem is reported as
 * "file:line: reason" to the caller.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "policy.h"
#include "util.h"

#ifndef BH_POLICY_DIR
#define BH_POLICY_DIR "/etc/bulkhead/policy"
#endif
#ifndef BH_SRC_POLICY_DIR
#define BH_SRC_POLICY_DIR "policy"
#endif

/* State of one pol_load: the include stack guards against loops. */
struct pol_parser {
	struct pol_set *pp_set;
	char *pp_err;
	size_t pp_errlen;
	uint32_t pp_arch;
	int pp_depth;
	dev_t pp_dev[POL_MAX_INCLUDE_DEPTH + 1];
	ino_t pp_ino[POL_MAX_INCLUDE_DEPTH + 1];
};

/* Cursor over one line, for error messages that name the line. */
struct pol_line {
	struct pol_parser *pl_p;
	const char *pl_file;
	unsigned pl_no;
	const char *pl_s;
};

static int pol_file_parse(struct pol_parser *pp, const char *path, const char *from,
			  unsigned from_line);

static int __attribute__((format(printf, 4, 5)))
pol_err(struct pol_parser *pp, const char *file, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (pp->pp_errlen == 0)
		return -EINVAL;
	if (line)
		snprintf(pp->pp_err, pp->pp_errlen, "%s:%u: %s", file, line, msg);
	else
		snprintf(pp->pp_err, pp->pp_errlen, "%s: %s", file, msg);
	return -EINVAL;
}

const char *pol_arch_name(void)
{
	switch (seccomp_arch_native()) {
	case SCMP_ARCH_X86_64:
		return "x86_64";
	case SCMP_ARCH_AARCH64:
		return "aarch64";
	default:
		return "unknown";
	}
}

int pol_default_dir(int from_build_tree, char *buf, size_t len)
{
	const char *base = from_build_tree ? BH_SRC_POLICY_DIR : BH_POLICY_DIR;
	int n = snprintf(buf, len, "%s/%s", base, pol_arch_name());

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int pol_resolve_dir(const char *dir, char *buf, size_t len)
{
	struct stat st;
	int n = snprintf(buf, len, "%s/%s", dir, pol_arch_name());

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	n = snprintf(buf, len, "%s", dir);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int pol_worker_file(const char *kind, char *buf, size_t len)
{
	int n = snprintf(buf, len, "worker-%s.policy", kind);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int pol_conj_push(struct pol_conj *pc, const struct pol_atom *a)
{
	struct pol_atom *na;

	na = reallocarray(pc->pc_atoms, pc->pc_n + 1, sizeof(*na));
	if (na == NULL)
		return -ENOMEM;
	na[pc->pc_n++] = *a;
	pc->pc_atoms = na;
	return 0;
}

static int pol_dnf_push(struct pol_dnf *pd, struct pol_conj *pc)
{
	struct pol_conj *nc;

	nc = reallocarray(pd->pd_conj, pd->pd_n + 1, sizeof(*nc));
	if (nc == NULL)
		return -ENOMEM;
	nc[pd->pd_n++] = *pc;
	pd->pd_conj = nc;
	pc->pc_atoms = NULL;
	pc->pc_n = 0;
	return 0;
}

static void pol_dnf_free(struct pol_dnf *pd)
{
	for (size_t i = 0; i < pd->pd_n; i++)
		free(pd->pd_conj[i].pc_atoms);
	free(pd->pd_conj);
	pd->pd_conj = NULL;
	pd->pd_n = 0;
}

void pol_free(struct pol_set *ps)
{
	if (ps == NULL)
		return;
	for (size_t i = 0; i < ps->ps_n; i++) {
		free(ps->ps_ent[i].pe_name);
		pol_dnf_free(&ps->ps_ent[i].pe_expr);
	}
	free(ps->ps_ent);
	for (size_t i = 0; i < ps->ps_nfiles; i++)
		free(ps->ps_files[i]);
	free(ps->ps_files);
	free(ps);
}

size_t pol_count(const struct pol_set *ps)
{
	return ps->ps_n;
}

int pol_lookup(const struct pol_set *ps, const char *name, enum pol_action *act, int *errnum)
{
	for (size_t i = 0; i < ps->ps_n; i++) {
		if (strcmp(ps->ps_ent[i].pe_name, name) != 0)
			continue;
		*act = ps->ps_ent[i].pe_action;
		*errnum = ps->ps_ent[i].pe_errno;
		return 0;
	}
	return -ENOENT;
}

/* --- lexing one line ----------------------------------------------------- */

static void pl_skip_ws(struct pol_line *pl)
{
	while (*pl->pl_s == ' ' || *pl->pl_s == '\t')
		pl->pl_s++;
}

static int pl_is_ident(int c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Consume KW if it is the next word (not a prefix of a longer word). */
static int pl_word(struct pol_line *pl, const char *kw)
{
	size_t n = strlen(kw);

	pl_skip_ws(pl);
	if (strncmp(pl->pl_s, kw, n) != 0 || pl_is_ident(pl->pl_s[n]))
		return 0;
	pl->pl_s += n;
	return 1;
}

static int pl_error(struct pol_line *pl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int pl_error(struct pol_line *pl, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return pol_err(pl->pl_p, pl->pl_file, pl->pl_no, "%s", msg);
}

/* The rest of the line, shortened, for "unexpected ..." messages. */
static const char *pl_rest(const struct pol_line *pl, char *buf, size_t len)
{
	snprintf(buf, len, "%s", pl->pl_s);
	if (strlen(pl->pl_s) >= len && len > 4)
		memcpy(buf + len - 4, "...", 4);
	return buf;
}

/* One term of a constant: [~] (number | NAME). */
static int pl_term(struct pol_line *pl, uint64_t *out)
{
	const char *s;
	int neg = 0, inv = 0;
	char *end;

	pl_skip_ws(pl);
	if (*pl->pl_s == '~') {
		inv = 1;
		pl->pl_s++;
		pl_skip_ws(pl);
	}
	s = pl->pl_s;
	if (isalpha((unsigned char)*s) || *s == '_') {
		while (pl_is_ident(*pl->pl_s))
			pl->pl_s++;
		if (pol_const_value(s, (size_t)(pl->pl_s - s), out) < 0)
			return pl_error(pl, "unknown constant '%.*s'", (int)(pl->pl_s - s), s);
		if (inv)
			*out = ~*out;
		return 0;
	}
	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (!isdigit((unsigned char)*s))
		return pl_error(pl, "expected a number or a constant name at '%.20s'", pl->pl_s);
	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno == ERANGE || (neg && *out > (uint64_t)INT64_MAX + 1))
		return pl_error(pl, "number out of range at '%.20s'", pl->pl_s);
	if (pl_is_ident(*end))
		return pl_error(pl, "bad number '%.20s'", pl->pl_s);
	pl->pl_s = end;
	if (neg)
		*out = -*out;
	if (inv)
		*out = ~*out;
	return 0;
}

/* VALUE: terms joined with a single '|'. */
static int pl_value(struct pol_line *pl, uint64_t *out)
{
	uint64_t v = 0;
	int r;

	*out = 0;
	for (;;) {
		if ((r = pl_term(pl, &v)) < 0)
			return r;
		*out |= v;
		pl_skip_ws(pl);
		if (pl->pl_s[0] != '|' || pl->pl_s[1] == '|')
			return 0;
		pl->pl_s++;
	}
}

/* argN OP VALUE */
static int pl_atom(struct pol_line *pl, struct pol_atom *a)
{
	static const struct {
		const char *tok;
		enum pol_op op;
	} ops[] = {
	    {"==", POL_OP_EQ}, {"!=", POL_OP_NE}, {"<=", POL_OP_LE},	 {">=", POL_OP_GE},
	    {"<", POL_OP_LT},  {">", POL_OP_GT},  {"&", POL_OP_ANYBITS},
	};
	const char *s;
	uint64_t v;
	size_t i;
	int r;

	pl_skip_ws(pl);
	s = pl->pl_s;
	if (strncmp(s, "arg", 3) != 0) {
		char rest[24];

		return pl_error(pl, "expected argN at '%s'", pl_rest(pl, rest, sizeof(rest)));
	}
	s += 3;
	if (!isdigit((unsigned char)s[0]) || pl_is_ident(s[1]) || s[0] > '5')
		return pl_error(pl, "bad argument index in '%.8s' (arg0 to arg5)", pl->pl_s);
	memset(a, 0, sizeof(*a));
	a->pa_arg = (uint8_t)(s[0] - '0');
	pl->pl_s = s + 1;
	pl_skip_ws(pl);
	for (i = 0; i < BH_ARRAY_SIZE(ops); i++) {
		size_t n = strlen(ops[i].tok);

		if (strncmp(pl->pl_s, ops[i].tok, n) == 0 &&
		    !(ops[i].op == POL_OP_ANYBITS && pl->pl_s[1] == '&'))
			break;
	}
	if (i < BH_ARRAY_SIZE(ops)) {
		a->pa_op = ops[i].op;
		pl->pl_s += strlen(ops[i].tok);
	} else if (pl_word(pl, "in")) {
		a->pa_op = POL_OP_MASKED;
	} else {
		return pl_error(pl, "expected a comparison (== != < <= > >= & in) after arg%u",
				a->pa_arg);
	}
	if ((r = pl_value(pl, &v)) < 0)
		return r;
	switch (a->pa_op) {
	case POL_OP_ANYBITS:
		a->pa_mask = v;
		break;
	case POL_OP_MASKED:
		/* "argN in M": no bit outside M, i.e. (argN & ~M) == 0. */
		a->pa_mask = ~v;
		a->pa_val = 0;
		break;
	default:
		a->pa_val = v;
		break;
	}
	return 0;
}

/* EXPR: atoms joined by &&, groups joined by ||. */
static int pl_expr(struct pol_line *pl, struct pol_dnf *pd)
{
	struct pol_conj pc = {0};
	struct pol_atom a;
	int r;

	for (;;) {
		if ((r = pl_atom(pl, &a)) < 0 || (r = pol_conj_push(&pc, &a)) < 0)
			goto fail;
		pl_skip_ws(pl);
		if (strncmp(pl->pl_s, "&&", 2) == 0) {
			pl->pl_s += 2;
			continue;
		}
		if ((r = pol_dnf_push(pd, &pc)) < 0)
			goto fail;
		if (strncmp(pl->pl_s, "||", 2) != 0)
			return 0;
		pl->pl_s += 2;
	}
fail:
	free(pc.pc_atoms);
	return r == -ENOMEM ? pl_error(pl, "out of memory") : r;
}

/* "return ERRNO" after the keyword. */
static int pl_errno(struct pol_line *pl, int *out)
{
	const char *s;
	uint64_t v;
	char *end;

	pl_skip_ws(pl);
	s = pl->pl_s;
	if (isalpha((unsigned char)*s)) {
		while (pl_is_ident(*pl->pl_s))
			pl->pl_s++;
		if (pol_errno_value(s, (size_t)(pl->pl_s - s), out) < 0)
			return pl_error(pl, "unknown errno '%.*s'", (int)(pl->pl_s - s), s);
		return 0;
	}
	if (!isdigit((unsigned char)*s))
		return pl_error(pl, "expected an errno after 'return'");
	errno = 0;
	v = strtoull(s, &end, 0);
	/* The kernel passes at most 4095 through SECCOMP_RET_ERRNO as an error. */
	if (errno == ERANGE || v > 4095 || pl_is_ident(*end))
		return pl_error(pl, "bad errno '%.20s' (0 to 4095 or a name)", s);
	pl->pl_s = end;
	*out = (int)v;
	return 0;
}

static int pl_end(struct pol_line *pl)
{
	char rest[40];

	pl_skip_ws(pl);
	if (*pl->pl_s == '\0')
		return 0;
	return pl_error(pl, "unexpected '%s'", pl_rest(pl, rest, sizeof(rest)));
}

/* The part after "name:". */
static int pl_body(struct pol_line *pl, struct pol_entry *pe)
{
	int r;

	if (pl_word(pl, "return")) {
		pe->pe_action = POL_ERRNO;
		if ((r = pl_errno(pl, &pe->pe_errno)) < 0)
			return r;
		return pl_end(pl);
	}
	if (pl_word(pl, "kill")) {
		pe->pe_action = POL_KILL;
		return pl_end(pl);
	}
	if (pl_word(pl, "1")) {
		pe->pe_action = POL_ALLOW;
		return pl_end(pl);
	}
	pl_skip_ws(pl);
	if (*pl->pl_s == '\0')
		return pl_error(pl, "missing rule after ':' (1, an expression, return ERRNO "
				    "or kill)");
	pe->pe_action = POL_ALLOW_IF;
	if ((r = pl_expr(pl, &pe->pe_expr)) < 0)
		return r;
	pl_skip_ws(pl);
	if (*pl->pl_s == ';') {
		pl->pl_s++;
		if (!pl_word(pl, "return"))
			return pl_error(pl, "expected 'return ERRNO' after ';'");
		if ((r = pl_errno(pl, &pe->pe_errno)) < 0)
			return r;
	}
	return pl_end(pl);
}

static int pol_add_entry(struct pol_set *ps, struct pol_entry *pe)
{
	struct pol_entry *ne;

	if (ps->ps_n == ps->ps_cap) {
		size_t cap = ps->ps_cap ? ps->ps_cap * 2 : 64;

		ne = reallocarray(ps->ps_ent, cap, sizeof(*ne));
		if (ne == NULL)
			return -ENOMEM;
		ps->ps_ent = ne;
		ps->ps_cap = cap;
	}
	ps->ps_ent[ps->ps_n++] = *pe;
	return 0;
}

/* Resolve @include PATH against the directory of the including file. */
static int pol_include(struct pol_line *pl, const char *arg)
{
	char path[PATH_MAX];
	const char *slash;
	int n;

	if (*arg == '\0')
		return pl_error(pl, "@include needs a path");
	slash = strrchr(pl->pl_file, '/');
	if (arg[0] == '/' || slash == NULL)
		n = snprintf(path, sizeof(path), "%s", arg);
	else
		n = snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - pl->pl_file), pl->pl_file,
			     arg);
	if (n < 0 || (size_t)n >= sizeof(path))
		return pl_error(pl, "include path too long");
	return pol_file_parse(pl->pl_p, path, pl->pl_file, pl->pl_no);
}

static int pol_line_parse(struct pol_parser *pp, const char *file, unsigned no, char *s)
{
	struct pol_line pl = {.pl_p = pp, .pl_file = file, .pl_no = no};
	struct pol_entry pe = {0};
	const char *name;
	size_t namelen, i;
	char *p;
	int r;

	if ((p = strchr(s, '#')) != NULL)
		*p = '\0';
	for (p = s + strlen(s); p > s && isspace((unsigned char)p[-1]); p--)
		p[-1] = '\0';
	while (isspace((unsigned char)*s))
		s++;
	pl.pl_s = s;
	if (*s == '\0')
		return 0;
	if (*s == '@') {
		pl.pl_s++;
		if (pl_word(&pl, "include")) {
			pl_skip_ws(&pl);
			return pol_include(&pl, pl.pl_s);
		}
		if (pl_word(&pl, "frequency"))
			return 0;
		return pl_error(&pl, "unknown directive '%s'", s);
	}
	name = s;
	while (pl_is_ident(*pl.pl_s))
		pl.pl_s++;
	namelen = (size_t)(pl.pl_s - name);
	pl_skip_ws(&pl);
	if (namelen == 0 || *pl.pl_s != ':')
		return pl_error(&pl, "expected 'syscall: rule' (missing ':'?)");
	pl.pl_s++;
	if ((pe.pe_name = strndup(name, namelen)) == NULL)
		return pl_error(&pl, "out of memory");
	pe.pe_nr = seccomp_syscall_resolve_name_arch(pp->pp_arch, pe.pe_name);
	/* Negative numbers are libseccomp's pseudo-syscalls for other arches. */
	if (pe.pe_nr < 0) {
		r = pl_error(&pl, "unknown syscall '%s' for %s", pe.pe_name, pol_arch_name());
		goto fail;
	}
	for (i = 0; i < pp->pp_set->ps_n; i++) {
		const struct pol_entry *o = &pp->pp_set->ps_ent[i];

		if (o->pe_nr == pe.pe_nr) {
			r = pl_error(&pl, "duplicate entry for '%s' (first at %s:%u)", pe.pe_name,
				     o->pe_file, o->pe_line);
			goto fail;
		}
	}
	if ((r = pl_body(&pl, &pe)) < 0)
		goto fail;
	pe.pe_file = file;
	pe.pe_line = no;
	if (pol_add_entry(pp->pp_set, &pe) < 0) {
		r = pl_error(&pl, "out of memory");
		goto fail;
	}
	return 0;
fail:
	free(pe.pe_name);
	pol_dnf_free(&pe.pe_expr);
	return r;
}

/* Keep a copy of PATH for the lifetime of the set (entries point to it). */
static const char *pol_set_file(struct pol_set *ps, const char *path)
{
	char **nf;

	nf = reallocarray(ps->ps_files, ps->ps_nfiles + 1, sizeof(*nf));
	if (nf == NULL)
		return NULL;
	ps->ps_files = nf;
	if ((nf[ps->ps_nfiles] = strdup(path)) == NULL)
		return NULL;
	return nf[ps->ps_nfiles++];
}

static int pol_file_parse(struct pol_parser *pp, const char *path, const char *from,
			  unsigned from_line)
{
	const char *file;
	struct stat st;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned no = 0;
	FILE *fp;
	int i, r = 0;

	if (pp->pp_depth > POL_MAX_INCLUDE_DEPTH)
		return pol_err(pp, from, from_line, "includes nested deeper than %d at '%s'",
			       POL_MAX_INCLUDE_DEPTH, path);
	if ((fp = fopen(path, "re")) == NULL) {
		if (from)
			return pol_err(pp, from, from_line, "cannot open include '%s': %s", path,
				       strerror(errno));
		return pol_err(pp, path, 0, "cannot open: %s", strerror(errno));
	}
	if (fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode)) {
		r = pol_err(pp, from ? from : path, from ? from_line : 0, "'%s' is not a file",
			    path);
		goto out;
	}
	for (i = 0; i < pp->pp_depth; i++) {
		if (pp->pp_dev[i] == st.st_dev && pp->pp_ino[i] == st.st_ino) {
			r = pol_err(pp, from, from_line, "include loop: '%s' is already being read",
				    path);
			goto out;
		}
	}
	if ((file = pol_set_file(pp->pp_set, path)) == NULL) {
		r = pol_err(pp, path, 0, "out of memory");
		goto out;
	}
	pp->pp_dev[pp->pp_depth] = st.st_dev;
	pp->pp_ino[pp->pp_depth] = st.st_ino;
	pp->pp_depth++;
	while ((len = getline(&line, &cap, fp)) >= 0) {
		no++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if ((size_t)len > POL_MAX_LINE) {
			r = pol_err(pp, file, no, "line too long (more than %d characters)",
				    POL_MAX_LINE);
			break;
		}
		if (strlen(line) != (size_t)len) {
			r = pol_err(pp, file, no, "NUL byte in line");
			break;
		}
		if ((r = pol_line_parse(pp, file, no, line)) < 0)
			break;
	}
	if (r == 0 && ferror(fp))
		r = pol_err(pp, file, no + 1, "read error");
	pp->pp_depth--;
out:
	free(line);
	fclose(fp);
	return r;
}

struct pol_set *pol_load(const char *dir, const char *file, char *err, size_t errlen)
{
	struct pol_parser pp = {.pp_err = err, .pp_errlen = errlen};
	char path[PATH_MAX];
	int n;

	if (errlen)
		err[0] = '\0';
	if (dir == NULL || file[0] == '/')
		n = snprintf(path, sizeof(path), "%s", file);
	else
		n = snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		pol_err(&pp, file, 0, "path too long");
		errno = ENAMETOOLONG;
		return NULL;
	}
	if ((pp.pp_set = calloc(1, sizeof(*pp.pp_set))) == NULL) {
		pol_err(&pp, path, 0, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	pp.pp_arch = seccomp_arch_native();
	if (pol_file_parse(&pp, path, NULL, 0) < 0) {
		pol_free(pp.pp_set);
		errno = EINVAL;
		return NULL;
	}
	return pp.pp_set;
}
