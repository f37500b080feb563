/*
 * ini.h - a strict reader for the INI form of bulkhead.conf(5).
 * Runs in: the parent (start-up). The file is the operator's, not the
 * guest's, but a mistake in it must stop start-up with FILE:LINE: reason,
 * never be half-applied.
 *
 * The form: "[section]" lines, "key = value" lines inside a section, blank
 * lines and lines starting with '#' or ';'. Spaces around names and values
 * are dropped; a value is the rest of its line (no quoting, no inline
 * comments: '#' may be part of a path). A section may appear once, a key
 * once per section.
 */
#ifndef BH_INI_H
#define BH_INI_H

#include <stdbool.h>
#include <stddef.h>

#define INI_MAX_LINE 4096
#define INI_MAX_FILE (1u << 20)

/* One "key = value" line, as the callback sees it. */
struct ini_item {
	const char *ii_file;
	unsigned ii_line;
	const char *ii_section;
	unsigned ii_section_line; /* where the section began */
	const char *ii_key;
	const char *ii_value;
};

/* Called for every section header (key and value NULL) and every key in
 * file order. Returns 0, or -1 with the reason in why (no FILE:LINE). */
typedef int (*ini_fn)(void *arg, const struct ini_item *it, char *why, size_t whylen);

/* Read path and call fn. 0, or -1 with "FILE:LINE: reason" (or "FILE:
 * reason" for the file as a whole) in err. */
int ini_read(const char *path, ini_fn fn, void *arg, char *err, size_t errlen);
/* The same over a buffer of len bytes; name is what messages call it. */
int ini_parse(const char *name, const char *buf, size_t len, ini_fn fn, void *arg, char *err,
	      size_t errlen);

/* Section and key names: letters, digits, '_' and '-', at most 63. */
bool ini_name_ok(const char *s);

/* Values. Each returns 0, or -1 with a reason in why. */
/* yes/no, true/false, on/off, 1/0. */
int ini_bool(const char *v, int *out, char *why, size_t whylen);
/* A size in bytes: digits with an optional K, M, G or T (powers of 1024),
 * within [min, max]. */
int ini_size(const char *v, unsigned long long min, unsigned long long max, unsigned long long *out,
	     char *why, size_t whylen);

#endif
