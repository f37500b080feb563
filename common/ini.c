/*
 * ini.c - a strict reader for the INI form of bulkhead.conf(5).
 * Runs in: the parent (start-up). See ini.h for the form; every deviation
 * from it is an error with its line, since a setting the reader skipped
 * would silently leave a default the operator meant to change.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ini.h"
#include "util.h"

/* Settings one file may hold: far more than bulkhead has, few enough that
 * the duplicate checks stay cheap. */
#define INI_MAX_ITEMS 1024

struct ini_seen {
	char is_section[64];
	char is_key[64]; /* "" for the section header itself */
	unsigned is_line;
};

struct ini_state {
	struct ini_seen *st_seen;
	unsigned st_nseen;
	char st_section[64];
	unsigned st_section_line;
};

static int ini_fail(char *err, size_t errlen, const char *name, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int ini_fail(char *err, size_t errlen, const char *name, unsigned line, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (line)
		snprintf(err, errlen, "%s:%u: %s", name, line, why);
	else
		snprintf(err, errlen, "%s: %s", name, why);
	return -1;
}

static char *ini_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

bool ini_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* The line an earlier section header or key took, 0 if none. */
static unsigned ini_seen_at(const struct ini_state *st, const char *section, const char *key)
{
	for (unsigned i = 0; i < st->st_nseen; i++)
		if (strcmp(st->st_seen[i].is_section, section) == 0 &&
		    strcmp(st->st_seen[i].is_key, key) == 0)
			return st->st_seen[i].is_line;
	return 0;
}

static int ini_remember(struct ini_state *st, const char *section, const char *key, unsigned line)
{
	struct ini_seen *s;

	if (st->st_nseen == INI_MAX_ITEMS)
		return -1;
	s = &st->st_seen[st->st_nseen++];
	snprintf(s->is_section, sizeof(s->is_section), "%s", section);
	snprintf(s->is_key, sizeof(s->is_key), "%s", key);
	s->is_line = line;
	return 0;
}

static int ini_line(struct ini_state *st, const char *name, unsigned lineno, char *line, ini_fn fn,
		    void *arg, char *err, size_t errlen)
{
	struct ini_item it = {.ii_file = name, .ii_line = lineno};
	char why[400] = "";
	char *s = ini_trim(line), *eq, *key, *val;
	unsigned prev;

	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	if (*s == '[') {
		size_t n = strlen(s);
		if (s[n - 1] != ']')
			return ini_fail(err, errlen, name, lineno,
					"a section header must end with ']'");
		s[n - 1] = '\0';
		s = ini_trim(s + 1);
		if (!ini_name_ok(s))
			return ini_fail(err, errlen, name, lineno,
					"bad section name '%s' (letters, digits, '_', '-')", s);
		if ((prev = ini_seen_at(st, s, "")))
			return ini_fail(err, errlen, name, lineno,
					"section [%s] already began on line %u", s, prev);
		if (ini_remember(st, s, "", lineno) < 0)
			return ini_fail(err, errlen, name, lineno, "more than %d settings",
					INI_MAX_ITEMS);
		snprintf(st->st_section, sizeof(st->st_section), "%s", s);
		st->st_section_line = lineno;
		it.ii_section = st->st_section;
		it.ii_section_line = lineno;
		if (fn(arg, &it, why, sizeof(why)) < 0)
			return ini_fail(err, errlen, name, lineno, "%s", why);
		return 0;
	}
	if (!(eq = strchr(s, '=')))
		return ini_fail(err, errlen, name, lineno,
				"expected '[section]' or 'key = value', not '%.40s'", s);
	*eq = '\0';
	key = ini_trim(s);
	val = ini_trim(eq + 1);
	if (!ini_name_ok(key))
		return ini_fail(err, errlen, name, lineno,
				"bad key '%.40s' (letters, digits, '_', '-')", key);
	if (st->st_section[0] == '\0')
		return ini_fail(err, errlen, name, lineno, "'%s' comes before any [section]", key);
	if ((prev = ini_seen_at(st, st->st_section, key)))
		return ini_fail(err, errlen, name, lineno, "'%s' already set on line %u", key,
				prev);
	if (ini_remember(st, st->st_section, key, lineno) < 0)
		return ini_fail(err, errlen, name, lineno, "more than %d settings", INI_MAX_ITEMS);
	it.ii_section = st->st_section;
	it.ii_section_line = st->st_section_line;
	it.ii_key = key;
	it.ii_value = val;
	if (fn(arg, &it, why, sizeof(why)) < 0)
		return ini_fail(err, errlen, name, lineno, "%s", why);
	return 0;
}

int ini_parse(const char *name, const char *buf, size_t len, ini_fn fn, void *arg, char *err,
	      size_t errlen)
{
	struct ini_state st = {0};
	char line[INI_MAX_LINE + 1];
	unsigned lineno = 0;
	size_t off = 0;
	int r = 0;

	if (!(st.st_seen = calloc(INI_MAX_ITEMS, sizeof(*st.st_seen))))
		return ini_fail(err, errlen, name, 0, "out of memory");
	while (off < len && r == 0) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;

		lineno++;
		if (n > 0 && buf[off + n - 1] == '\r')
			n--; /* a file written on Windows */
		if (n > INI_MAX_LINE)
			r = ini_fail(err, errlen, name, lineno, "line longer than %d bytes",
				     INI_MAX_LINE);
		else if (memchr(buf + off, '\0', n))
			r = ini_fail(err, errlen, name, lineno, "a NUL byte");
		else {
			memcpy(line, buf + off, n);
			line[n] = '\0';
			r = ini_line(&st, name, lineno, line, fn, arg, err, errlen);
		}
		off += (nl ? (size_t)(nl - (buf + off)) + 1 : len - off);
	}
	free(st.st_seen);
	return r;
}

int ini_read(const char *path, ini_fn fn, void *arg, char *err, size_t errlen)
{
	struct stat sb;
	char *buf;
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return ini_fail(err, errlen, path, 0, "%s", strerror(errno));
	if (fstat(fd, &sb) < 0) {
		r = errno;
		close(fd);
		return ini_fail(err, errlen, path, 0, "%s", strerror(r));
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > INI_MAX_FILE) {
		close(fd);
		return ini_fail(err, errlen, path, 0,
				S_ISREG(sb.st_mode) ? "larger than 1 MiB" : "not a regular file");
	}
	if (!(buf = malloc((size_t)sb.st_size + 1))) {
		close(fd);
		return ini_fail(err, errlen, path, 0, "out of memory");
	}
	r = bh_read_full(fd, buf, (size_t)sb.st_size);
	close(fd);
	if (r < 0) {
		free(buf);
		return ini_fail(err, errlen, path, 0, "%s",
				r == -EPIPE ? "changed while read" : strerror(-r));
	}
	r = ini_parse(path, buf, (size_t)sb.st_size, fn, arg, err, errlen);
	free(buf);
	return r;
}

int ini_bool(const char *v, int *out, char *why, size_t whylen)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < BH_ARRAY_SIZE(yes); i++) {
		if (strcmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	snprintf(why, whylen, "'%.40s' is not yes or no (true/false, on/off, 1/0)", v);
	return -1;
}

int ini_size(const char *v, unsigned long long min, unsigned long long max, unsigned long long *out,
	     char *why, size_t whylen)
{
	static const char units[] = "KMGT";
	unsigned long long n = 0, mul = 1;
	const char *p = v, *u;

	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (~0ull - 9) / 10)
			goto range;
		n = n * 10 + (unsigned)(*p - '0');
	}
	if (*p) {
		if (p[1] != '\0' || !(u = strchr(units, *p >= 'a' ? *p - 32 : *p)))
			goto bad;
		for (const char *q = units; q <= u; q++)
			mul *= 1024;
	}
	if (n > ~0ull / mul)
		goto range;
	n *= mul;
	if (n < min || n > max)
		goto range;
	*out = n;
	return 0;
bad:
	snprintf(why, whylen, "'%.40s' is not a size (a number with K, M, G or T)", v);
	return -1;
range:
	snprintf(why, whylen, "'%.40s' is out of range (%llu to %llu bytes)", v, min, max);
	return -1;
}
