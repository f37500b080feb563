/*
 * config.c - the parent's settings: their defaults, their values as the
 * command line and bulkhead.conf(5) spell them, and the configuration file.
 * Runs in: the parent, at start-up, before anything is opened. One table
 * holds every setting the file knows, so a key cannot be parsed one way on
 * the command line and another in the file.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends.h"
#include "bulkhead.h"
#include "bulkheadd.h"
#include "ini.h"
#include "log.h"
#include "util.h"

const char *const conf_cache_names[3] = {"none", "auto", "always"};
const char *const conf_sandbox_names[3] = {"none", "chroot", "namespace"};
const char *const conf_seccomp_names[4] = {"none", "kill", "trap", "log"};
static const char *const conf_refuse_allow[] = {"refuse", "allow"};
static const char *const conf_setid_names[] = {"refuse", "strip", "allow"};

void conf_defaults(struct parent_conf *c)
{
	const struct be_desc *be;
	char why[256];

	memset(c, 0, sizeof(*c));
	c->pc_fd = -1;
	c->pc_backend = IPC_BE_PASSTHROUGH;
	c->pc_cache = IPC_CACHE_AUTO;
	c->pc_sandbox = IPC_SBX_NAMESPACE;
	c->pc_seccomp = IPC_SECCOMP_KILL;
	c->pc_thread_pool = CONF_DEFAULT_THREADS;
	c->pc_poll_us = CONF_DEFAULT_POLL_US;
	c->pc_log_level = LOG_LVL_INFO;
	/* A back end's key with a default holds it, read as a given value
	 * would be, until the file or the command line gives another. */
	for (size_t i = 0; (be = be_desc_at(i)) != NULL; i++) {
		for (size_t k = 0; k < be->bd_nkeys; k++) {
			const struct be_key *key = &be->bd_keys[k];

			if (key->bk_default &&
			    conf_set_be_key(c, be->bd_id, key->bk_name, key->bk_default, why,
					    sizeof(why)) < 0)
				fatalx("%s: the default of %s in [%s]: %s", __func__, key->bk_name,
				       be->bd_name, why);
		}
	}
}

/* v among names (an empty name is never matched); list spells the choices
 * for the message. */
static int conf_choice(const char *const *names, size_t n, const char *what, const char *list,
		       const char *v, uint32_t *out, char *why, size_t whylen)
{
	for (size_t i = 0; i < n; i++) {
		if (names[i][0] && strcmp(names[i], v) == 0) {
			*out = (uint32_t)i;
			return 0;
		}
	}
	snprintf(why, whylen, "invalid %s '%s' (%s)", what, v, list);
	return -1;
}

int conf_set_cache(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	/* "never" is virtiofsd's spelling of "none"; its Rust version's
	 * "metadata" (attributes cached, data not) is served as auto */
	if (strcmp(v, "never") == 0)
		v = "none";
	else if (strcmp(v, "metadata") == 0)
		v = "auto";
	return conf_choice(conf_cache_names, 3, "cache mode", "never, auto or always", v,
			   &c->pc_cache, why, whylen);
}

int conf_set_sandbox(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	return conf_choice(conf_sandbox_names, 3, "sandbox mode", "namespace, chroot or none", v,
			   &c->pc_sandbox, why, whylen);
}

int conf_set_seccomp(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	return conf_choice(conf_seccomp_names, 4, "seccomp mode", "kill, trap, log or none", v,
			   &c->pc_seccomp, why, whylen);
}

int conf_set_devices(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	return conf_choice(conf_refuse_allow, 2, "device-nodes", "refuse or allow", v,
			   &c->pc_devices, why, whylen);
}

int conf_set_setid(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	return conf_choice(conf_setid_names, 3, "setid", "refuse, strip or allow", v, &c->pc_setid,
			   why, whylen);
}

int conf_set_file_caps(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	return conf_choice(conf_refuse_allow, 2, "file-caps", "refuse or allow", v,
			   &c->pc_file_caps, why, whylen);
}

int conf_set_log_level(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	int lvl = log_parse_level(v);

	if (lvl < 0) {
		snprintf(why, whylen, "invalid log level '%s' (error, warn, info or debug)", v);
		return -1;
	}
	c->pc_log_level = lvl;
	return 0;
}

/* "passthrough or memory": the back ends the descriptors name. */
static void conf_be_names(char *buf, size_t len)
{
	const struct be_desc *be;
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; (be = be_desc_at(i)) != NULL && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s",
				      i == 0		  ? ""
				      : be_desc_at(i + 1) ? ", "
							  : " or ",
				      be->bd_name);
}

int conf_set_backend(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	const struct be_desc *be = be_desc_by_name(v);
	char names[128];

	if (!be) {
		conf_be_names(names, sizeof(names));
		snprintf(why, whylen, "invalid backend '%s' (%s)", v, names);
		return -1;
	}
	c->pc_backend = be->bd_id;
	return 0;
}

int conf_number(const char *what, const char *v, uint64_t min, uint64_t max, uint64_t *out,
		char *why, size_t whylen)
{
	if (bh_parse_u64(v, min, max, out) < 0) {
		snprintf(why, whylen, "invalid %s '%s' (%llu to %llu)", what, v,
			 (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	return 0;
}

/* ---- each back end's own keys (be_desc.bd_keys) ---- */

int conf_set_be_key(struct parent_conf *c, uint32_t id, const char *name, const char *v, char *why,
		    size_t whylen)
{
	const struct be_desc *be = be_desc_find(id);
	int i = be && id < BE_MAX_ID ? be_key_index(be, name) : -1;
	uint64_t n;

	if (i < 0) {
		snprintf(why, whylen, "unknown key '%s' in [%s]", name, be ? be->bd_name : "?");
		return -1;
	}
	if (be_key_parse(&be->bd_keys[i], v, &n, why, whylen) < 0)
		return -1;
	c->pc_be[id].bv_str[i] = v;
	c->pc_be[id].bv_num[i] = n;
	return 0;
}

static int conf_be_key(const struct parent_conf *c, const char *name)
{
	const struct be_desc *be = be_desc_find(c->pc_backend);

	return be && c->pc_backend < BE_MAX_ID ? be_key_index(be, name) : -1;
}

const char *conf_be_str(const struct parent_conf *c, const char *name)
{
	int i = conf_be_key(c, name);

	return i < 0 ? NULL : c->pc_be[c->pc_backend].bv_str[i];
}

uint64_t conf_be_num(const struct parent_conf *c, const char *name)
{
	int i = conf_be_key(c, name);

	return i < 0 ? 0 : c->pc_be[c->pc_backend].bv_num[i];
}

const struct be_key *conf_be_missing(const struct parent_conf *c)
{
	const struct be_desc *be = be_desc_find(c->pc_backend);

	for (size_t i = 0; be && i < be->bd_nkeys; i++)
		if (be->bd_keys[i].bk_required && !c->pc_be[c->pc_backend].bv_str[i])
			return &be->bd_keys[i];
	return NULL;
}

/* ---- the configuration file ---- */

enum conf_kind {
	CK_STRING, /* kept as given (a path, a group) */
	CK_FLAG,   /* yes/no into a uint32_t or int */
	CK_U32,	   /* a number within [min, max] */
	CK_U64,
	CK_SETTER, /* one of the conf_set_* above */
};

typedef int (*conf_setter)(struct parent_conf *, const char *, char *, size_t);

struct conf_key {
	const char *ck_section;
	const char *ck_key;
	enum conf_kind ck_kind;
	size_t ck_off; /* CK_STRING, CK_FLAG, CK_U32, CK_U64: the field */
	uint64_t ck_min, ck_max;
	conf_setter ck_set;
	bool ck_int; /* CK_FLAG into an int, not a uint32_t */
};

#define CK_FIELD(f) offsetof(struct parent_conf, f)

static const struct conf_key conf_keys[] = {
    {"share", "backend", CK_SETTER, 0, 0, 0, conf_set_backend, false},
    {"share", "cache", CK_SETTER, 0, 0, 0, conf_set_cache, false},
    {"share", "readonly", CK_FLAG, CK_FIELD(pc_readonly), 0, 0, NULL, false},
    {"share", "writeback", CK_FLAG, CK_FIELD(pc_writeback), 0, 0, NULL, false},
    {"share", "xattr", CK_FLAG, CK_FIELD(pc_xattr), 0, 0, NULL, false},
    {"share", "device_nodes", CK_SETTER, 0, 0, 0, conf_set_devices, false},
    {"share", "setid", CK_SETTER, 0, 0, 0, conf_set_setid, false},
    {"share", "file_caps", CK_SETTER, 0, 0, 0, conf_set_file_caps, false},
    {"daemon", "socket_path", CK_STRING, CK_FIELD(pc_socket_path), 0, 0, NULL, false},
    {"daemon", "socket_group", CK_STRING, CK_FIELD(pc_socket_group), 0, 0, NULL, false},
    {"daemon", "sandbox", CK_SETTER, 0, 0, 0, conf_set_sandbox, false},
    {"daemon", "seccomp", CK_SETTER, 0, 0, 0, conf_set_seccomp, false},
    {"daemon", "policy_dir", CK_STRING, CK_FIELD(pc_policy_dir), 0, 0, NULL, false},
    {"daemon", "thread_pool_size", CK_U32, CK_FIELD(pc_thread_pool), 0, CONF_MAX_THREADS, NULL,
     false},
    {"daemon", "poll_us", CK_U32, CK_FIELD(pc_poll_us), 0, BH_MAX_POLL_US, NULL, false},
    {"daemon", "rlimit_nofile", CK_U64, CK_FIELD(pc_rlimit_nofile), 1, UINT32_MAX, NULL, false},
    {"daemon", "log_level", CK_SETTER, 0, 0, 0, conf_set_log_level, false},
    {"daemon", "syslog", CK_FLAG, CK_FIELD(pc_syslog), 0, 0, NULL, true},
    {"daemon", "log_file", CK_STRING, CK_FIELD(pc_log_file), 0, 0, NULL, false},
};

/* The sections of the table above; each back end's own section, named
 * after it, holds the keys of its descriptor (be_desc.bd_keys). */
static const char *const conf_sections[] = {"share", "daemon"};

/* What the file said, for the checks once it has all been read. */
struct conf_load {
	struct parent_conf *cl_conf;
	const char *cl_path;
	unsigned cl_backend_line;				/* backend = */
	unsigned cl_section_line[BH_ARRAY_SIZE(conf_sections)]; /* [share] first */
	unsigned cl_be_line[BE_MAX_ID];				/* [NAME] of back end id */
};

/* Strings the file (or a copy of a command-line value) gave live as long
 * as the configuration. */
int conf_keep(struct parent_conf *c, char *s)
{
	char **n = realloc(c->pc_strings, (c->pc_nstrings + 1) * sizeof(*n));

	if (!n)
		return -1;
	n[c->pc_nstrings++] = s;
	c->pc_strings = n;
	return 0;
}

/* A line of back end be's own section: its header, or one of its keys. */
static int conf_be_item(struct conf_load *cl, const struct be_desc *be, const struct ini_item *it,
			char *why, size_t whylen)
{
	char *v;

	if (be->bd_id >= BE_MAX_ID) {
		snprintf(why, whylen, "section [%s]: back end id out of range", be->bd_name);
		return -1;
	}
	if (!it->ii_key) {
		cl->cl_be_line[be->bd_id] = it->ii_line;
		return 0;
	}
	if (be_key_index(be, it->ii_key) < 0) {
		snprintf(why, whylen, "unknown key '%s' in [%s]", it->ii_key, it->ii_section);
		return -1;
	}
	if (it->ii_value[0] == '\0') {
		snprintf(why, whylen, "'%s' has no value", it->ii_key);
		return -1;
	}
	if (!(v = strdup(it->ii_value)) || conf_keep(cl->cl_conf, v) < 0) {
		free(v);
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return conf_set_be_key(cl->cl_conf, be->bd_id, it->ii_key, v, why, whylen);
}

static int conf_item(void *arg, const struct ini_item *it, char *why, size_t whylen)
{
	struct conf_load *cl = arg;
	struct parent_conf *c = cl->cl_conf;
	const struct conf_key *k = NULL;
	const struct be_desc *be;
	char *base = (char *)c, *s;
	uint64_t v;
	int flag;

	if ((be = be_desc_by_name(it->ii_section)) != NULL)
		return conf_be_item(cl, be, it, why, whylen);
	if (!it->ii_key) {
		for (size_t i = 0; i < BH_ARRAY_SIZE(conf_sections); i++) {
			if (strcmp(conf_sections[i], it->ii_section) == 0) {
				cl->cl_section_line[i] = it->ii_line;
				return 0;
			}
		}
		size_t n =
		    (size_t)snprintf(why, whylen, "unknown section [%s] (share", it->ii_section);
		for (size_t i = 0; (be = be_desc_at(i)) != NULL && n < whylen; i++)
			n += (size_t)snprintf(why + n, whylen - n, ", %s", be->bd_name);
		if (n < whylen)
			snprintf(why + n, whylen - n, ", daemon)");
		return -1;
	}
	for (size_t i = 0; i < BH_ARRAY_SIZE(conf_keys); i++)
		if (strcmp(conf_keys[i].ck_section, it->ii_section) == 0 &&
		    strcmp(conf_keys[i].ck_key, it->ii_key) == 0)
			k = &conf_keys[i];
	if (!k) {
		snprintf(why, whylen, "unknown key '%s' in [%s]", it->ii_key, it->ii_section);
		return -1;
	}
	if (it->ii_value[0] == '\0') {
		snprintf(why, whylen, "'%s' has no value", it->ii_key);
		return -1;
	}
	switch (k->ck_kind) {
	case CK_STRING:
		if (!(s = strdup(it->ii_value)) || conf_keep(c, s) < 0) {
			free(s);
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		*(const char **)(base + k->ck_off) = s;
		break;
	case CK_FLAG:
		if (ini_bool(it->ii_value, &flag, why, whylen) < 0)
			return -1;
		if (k->ck_int)
			*(int *)(base + k->ck_off) = flag;
		else
			*(uint32_t *)(base + k->ck_off) = (uint32_t)flag;
		break;
	case CK_U32:
		if (conf_number(it->ii_key, it->ii_value, k->ck_min, k->ck_max, &v, why, whylen) <
		    0)
			return -1;
		*(uint32_t *)(base + k->ck_off) = (uint32_t)v;
		break;
	case CK_U64:
		if (conf_number(it->ii_key, it->ii_value, k->ck_min, k->ck_max, &v, why, whylen) <
		    0)
			return -1;
		*(uint64_t *)(base + k->ck_off) = v;
		break;
	case CK_SETTER:
		if (k->ck_set(c, it->ii_value, why, whylen) < 0)
			return -1;
		break;
	}
	if (k->ck_set == conf_set_backend)
		cl->cl_backend_line = it->ii_line;
	return 0;
}

/* After the whole file: the back end named, its section there with what it
 * needs (a value the defaults leave unset), no other back end's section. */
static int conf_check(const struct conf_load *cl, char *err, size_t errlen)
{
	const struct parent_conf *c = cl->cl_conf;
	const char *be = be_desc_find(c->pc_backend)->bd_name;
	const struct be_desc *other;
	const struct be_key *missing;

	if (!cl->cl_section_line[0]) {
		snprintf(err, errlen, "%s: no [share] section (it names the backend)", cl->cl_path);
		return -1;
	}
	if (!cl->cl_backend_line) {
		char names[128];

		conf_be_names(names, sizeof(names));
		snprintf(err, errlen, "%s:%u: [share] needs backend = %s", cl->cl_path,
			 cl->cl_section_line[0], names);
		return -1;
	}
	for (size_t i = 0; (other = be_desc_at(i)) != NULL; i++) {
		unsigned line = other->bd_id < BE_MAX_ID ? cl->cl_be_line[other->bd_id] : 0;

		if (line && other->bd_id != c->pc_backend) {
			snprintf(err, errlen,
				 "%s:%u: section [%s] is for backend = %s, but the "
				 "share's backend is %s (line %u)",
				 cl->cl_path, line, other->bd_name, other->bd_name, be,
				 cl->cl_backend_line);
			return -1;
		}
	}
	if ((missing = conf_be_missing(c)) != NULL) {
		unsigned line = cl->cl_be_line[c->pc_backend];

		snprintf(err, errlen, "%s:%u: backend = %s needs %s = %s in [%s]", cl->cl_path,
			 line ? line : cl->cl_backend_line, be, missing->bk_name, missing->bk_what,
			 be);
		return -1;
	}
	return 0;
}

int conf_load(struct parent_conf *c, const char *path, char *err, size_t errlen)
{
	struct conf_load cl = {.cl_conf = c, .cl_path = path};

	if (ini_read(path, conf_item, &cl, err, errlen) < 0)
		return -1;
	return conf_check(&cl, err, errlen);
}

void conf_free(struct parent_conf *c)
{
	for (size_t i = 0; i < c->pc_nstrings; i++)
		free(c->pc_strings[i]);
	free(c->pc_strings);
	c->pc_strings = NULL;
	c->pc_nstrings = 0;
}
