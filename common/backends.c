/*
 * backends.c - the table of back-end descriptors (backends.h).
 * Runs in: both (the keys are read by the parent only). A new back end
 * adds one row here with its configuration keys, one folder in
 * worker/backends/ and one policy file.
 */
#include "config.h"

#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>

#include "backends.h"
#include "ini.h"
#include "ipc.h"
#include "util.h"

/* A worker that acts on files as the guest's callers: ownership, modes,
 * device nodes and file capabilities (the last two dropped again when the
 * operator refuses them: sandbox.c). */
static const unsigned be_file_caps[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID,
					CAP_SETGID, CAP_SETUID,	      CAP_MKNOD,  CAP_SETFCAP};

static const struct be_key be_passthrough_keys[] = {
    {.bk_name = "dir",
     .bk_kind = BK_PATH,
     .bk_required = true,
     .bk_what = "DIR",
     .bk_option = "--shared-dir"},
};

/* The host's memory in bytes; all there is if it cannot be told. */
static unsigned long long be_host_ram(void)
{
	struct sysinfo si;

	return sysinfo(&si) == 0 ? (unsigned long long)si.totalram * si.mem_unit : ~0ull;
}

/*
 * The memory back end's size: at least 1 MiB, and no more than the host's
 * memory, or a guest could fill the host's RAM before the share is full
 * (the size is the limit that keeps the host out of an OOM; swap is not
 * counted on, since a host serving VMs often runs without).
 */
static int be_memory_size_check(const char *value, uint64_t n, char *why, size_t whylen)
{
	unsigned long long ram = be_host_ram();

	if (n > ram) {
		snprintf(why, whylen,
			 "size %s is more than this host's memory (%llu MiB): a guest could fill "
			 "the host's memory before the share is full",
			 value, ram >> 20);
		return -1;
	}
	return 0;
}

static const struct be_key be_memory_keys[] = {
    {.bk_name = "size",
     .bk_kind = BK_SIZE,
     .bk_min = 1ull << 20,
     .bk_max = ~0ull,
     .bk_required = true,
     .bk_what = "SIZE",
     .bk_option = "--memory-size",
     .bk_check = be_memory_size_check},
    /* 0 (not given): one per 4 KiB of size (memshare.c) */
    {.bk_name = "inodes", .bk_kind = BK_COUNT, .bk_min = 1, .bk_max = 1ull << 32, .bk_what = "N"},
};

/*
 * The S3 back end's section. Everything a worker puts in a URL or a
 * signature is checked here, once: the endpoint is a scheme and a host
 * (no path or query, and no user:password@, which would bypass the
 * credentials' rules; no message quotes it, lest one log a password), the
 * bucket and the prefix are what S3 takes in a path, the region and the
 * profile are names.
 */
static int be_s3_endpoint_check(const char *v, uint64_t n, char *why, size_t whylen)
{
	const char *host, *end;
	uint64_t port;

	if (strlen(v) >= IPC_S3_ENDPOINT_MAX) {
		snprintf(why, whylen, "endpoint is longer than %d bytes", IPC_S3_ENDPOINT_MAX - 1);
		return -1;
	}
	if (strncmp(v, "http://", 7) == 0) {
		host = v + 7;
	} else if (strncmp(v, "https://", 8) == 0) {
		host = v + 8;
	} else {
		snprintf(why, whylen, "endpoint must begin with http:// or https://");
		return -1;
	}
	if (strchr(host, '@')) {
		snprintf(why, whylen,
			 "endpoint holds a user or password (not shown): keys go in "
			 "credentials_file or the environment");
		return -1;
	}
	if (strpbrk(host, "/?#")) {
		snprintf(why, whylen,
			 "endpoint has a path, query or fragment: give http[s]://HOST[:PORT] only "
			 "(the bucket and the prefix have keys of their own)");
		return -1;
	}
	if (host[0] == '[') {
		/* an IPv6 address: hex digits, ':' and '.' (a v4 tail) in brackets */
		end = strchr(host, ']');
		if (!end || end == host + 1 ||
		    strspn(host + 1, "0123456789abcdefABCDEF:.") != (size_t)(end - host - 1)) {
			snprintf(why, whylen, "endpoint has a bad IPv6 address in [brackets]");
			return -1;
		}
		end++;
	} else {
		end = host + strspn(host, "abcdefghijklmnopqrstuvwxyz"
					  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
		if (end == host) {
			snprintf(why, whylen, "endpoint has no host");
			return -1;
		}
	}
	if (*end == ':' && bh_parse_u64(end + 1, 1, 65535, &port) < 0) {
		snprintf(why, whylen, "endpoint's port is not a number from 1 to 65535");
		return -1;
	}
	if (*end != ':' && *end != '\0') {
		snprintf(why, whylen,
			 "endpoint's host may hold letters, digits, '.' and '-' only (or an IPv6 "
			 "address in [brackets]), and :PORT after it");
		return -1;
	}
	return 0;
}

/* S3's rules for bucket names: 3 to 63 of a-z, 0-9, '.' and '-', a letter
 * or digit at either end, no "..". */
static int be_s3_bucket_check(const char *v, uint64_t n, char *why, size_t whylen)
{
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	size_t len = strlen(v);

	if (len < 3 || len > 63 || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789.-") != len ||
	    !strchr(alnum, v[0]) || !strchr(alnum, v[len - 1]) || strstr(v, "..")) {
		snprintf(why, whylen,
			 "invalid bucket '%s' (3 to 63 lowercase letters, digits, '.' and '-', "
			 "a letter or digit first and last)",
			 v);
		return -1;
	}
	return 0;
}

/* A prefix names a folder of the bucket: "" (the whole bucket) or parts
 * that each end in '/', none empty, "." or "..". */
static int be_s3_prefix_check(const char *v, uint64_t n, char *why, size_t whylen)
{
	size_t len = strlen(v);

	if (len >= IPC_S3_PREFIX_MAX) {
		snprintf(why, whylen, "prefix is longer than %d bytes", IPC_S3_PREFIX_MAX - 1);
		return -1;
	}
	if (len && v[len - 1] != '/') {
		snprintf(why, whylen, "prefix '%s' must end with '/' (%s/)", v, v);
		return -1;
	}
	for (const char *p = v; *p; p++) {
		size_t part = strcspn(p, "/");

		if (part == 0 || (part == 1 && p[0] == '.') ||
		    (part == 2 && p[0] == '.' && p[1] == '.')) {
			snprintf(why, whylen,
				 "prefix '%s' has an empty, '.' or '..' part (or begins with '/')",
				 v);
			return -1;
		}
		p += part;
	}
	return 0;
}

/* The region goes into every signature's scope, the profile names a
 * section of the credentials file: names as bulkhead.conf(5) spells them. */
static int be_s3_name_check(const char *v, uint64_t n, char *why, size_t whylen)
{
	if (!ini_name_ok(v)) {
		snprintf(why, whylen, "invalid name '%s' (1 to 63 letters, digits, '_' and '-')",
			 v);
		return -1;
	}
	return 0;
}

/* Each worker keeps a read cache this large. */
static int be_s3_cache_check(const char *value, uint64_t n, char *why, size_t whylen)
{
	unsigned long long ram = be_host_ram();

	if (n > ram) {
		snprintf(why, whylen,
			 "cache_size %s is more than this host's memory (%llu MiB), and each "
			 "worker keeps a cache that large",
			 value, ram >> 20);
		return -1;
	}
	return 0;
}

static const char *const be_s3_addressing[] = {"path", "virtual", NULL};

static const struct be_key be_s3_keys[] = {
    {.bk_name = "endpoint",
     .bk_kind = BK_TEXT,
     .bk_required = true,
     .bk_what = "URL",
     .bk_check = be_s3_endpoint_check},
    {.bk_name = "bucket",
     .bk_kind = BK_TEXT,
     .bk_required = true,
     .bk_what = "NAME",
     .bk_check = be_s3_bucket_check},
    {.bk_name = "prefix",
     .bk_kind = BK_TEXT,
     .bk_default = "",
     .bk_what = "PREFIX/",
     .bk_check = be_s3_prefix_check},
    {.bk_name = "region",
     .bk_kind = BK_TEXT,
     .bk_default = "us-east-1",
     .bk_what = "REGION",
     .bk_check = be_s3_name_check},
    {.bk_name = "addressing",
     .bk_kind = BK_CHOICE,
     .bk_choices = be_s3_addressing,
     .bk_default = "path",
     .bk_what = "path|virtual"},
    /* not given: the AWS_* environment variables (s3_parent.c) */
    {.bk_name = "credentials_file", .bk_kind = BK_PATH, .bk_what = "FILE"},
    {.bk_name = "profile",
     .bk_kind = BK_TEXT,
     .bk_default = "default",
     .bk_what = "NAME",
     .bk_check = be_s3_name_check},
    /* not given: the system's bundle, for an https endpoint (s3_parent.c) */
    {.bk_name = "ca_file", .bk_kind = BK_PATH, .bk_what = "FILE"},
    {.bk_name = "timeout",
     .bk_kind = BK_COUNT,
     .bk_min = 1,
     .bk_max = 3600,
     .bk_default = "30",
     .bk_what = "SECONDS"},
    {.bk_name = "attempts",
     .bk_kind = BK_COUNT,
     .bk_min = 1,
     .bk_max = 20,
     .bk_default = "4",
     .bk_what = "N"},
    {.bk_name = "concurrency",
     .bk_kind = BK_COUNT,
     .bk_min = 1,
     .bk_max = 256,
     .bk_default = "16",
     .bk_what = "N"},
    {.bk_name = "attr_timeout",
     .bk_kind = BK_COUNT,
     .bk_min = 0,
     .bk_max = 3600,
     .bk_default = "1",
     .bk_what = "SECONDS"},
    /* S3's own bounds on a part of a multipart upload */
    {.bk_name = "part_size",
     .bk_kind = BK_SIZE,
     .bk_min = 5ull << 20,
     .bk_max = 5ull << 30,
     .bk_default = "8M",
     .bk_what = "SIZE"},
    /* above this, a rename copies an object in parts (UploadPartCopy); S3
     * copies at most 5 GiB at once */
    {.bk_name = "copy_threshold",
     .bk_kind = BK_SIZE,
     .bk_min = 5ull << 20,
     .bk_max = 5ull << 30,
     .bk_default = "5G",
     .bk_what = "SIZE"},
    {.bk_name = "cache_size",
     .bk_kind = BK_SIZE,
     .bk_min = 0,
     .bk_max = ~0ull,
     .bk_default = "64M",
     .bk_what = "SIZE",
     .bk_check = be_s3_cache_check},
    {.bk_name = "readahead",
     .bk_kind = BK_SIZE,
     .bk_min = 1ull << 20,
     .bk_max = 1ull << 30,
     .bk_default = "8M",
     .bk_what = "SIZE"},
    {.bk_name = "staging_dir", .bk_kind = BK_PATH, .bk_default = "/var/tmp", .bk_what = "DIR"},
    {.bk_name = "staging_limit",
     .bk_kind = BK_SIZE,
     .bk_min = 1ull << 20,
     .bk_max = ~0ull,
     .bk_default = "1G",
     .bk_what = "SIZE"},
};

_Static_assert(BH_ARRAY_SIZE(be_passthrough_keys) <= BE_MAX_KEYS, "too many passthrough keys");
_Static_assert(BH_ARRAY_SIZE(be_memory_keys) <= BE_MAX_KEYS, "too many memory keys");
_Static_assert(BH_ARRAY_SIZE(be_s3_keys) <= BE_MAX_KEYS, "too many s3 keys");

static const struct be_desc be_descs[] = {
    {
	.bd_id = IPC_BE_PASSTHROUGH,
	.bd_name = "passthrough",
	.bd_keys = be_passthrough_keys,
	.bd_nkeys = BH_ARRAY_SIZE(be_passthrough_keys),
	.bd_sandbox = BE_SBX_HOST_DIR,
	.bd_can = BE_CAN_ALL,
	.bd_keep = be_file_caps,
	.bd_nkeep = BH_ARRAY_SIZE(be_file_caps),
    },
    {
	/* the passthrough calls over a tmpfs the parent makes (memshare.c) */
	.bd_id = IPC_BE_MEMORY,
	.bd_name = "memory",
	.bd_keys = be_memory_keys,
	.bd_nkeys = BH_ARRAY_SIZE(be_memory_keys),
	.bd_sandbox = 0,
	.bd_can = BE_CAN_ALL,
	.bd_keep = be_file_caps,
	.bd_nkeep = BH_ARRAY_SIZE(be_file_caps),
    },
    {
	/* objects of a bucket as files, over HTTP from the worker itself;
	 * random writes go through unnamed files in the staging directory
	 * (staging_dir), which the parent hands the workers as it does the
	 * memory back end's file system (s3_parent.c). No capabilities: the
	 * worker acts on no host file as anyone. */
	.bd_id = IPC_BE_S3,
	.bd_name = "s3",
	.bd_keys = be_s3_keys,
	.bd_nkeys = BH_ARRAY_SIZE(be_s3_keys),
	.bd_sandbox = BE_SBX_NETWORK,
	.bd_can = BE_CAN_RANDOM_WRITE,
    },
};

const struct be_desc *be_desc_find(uint32_t id)
{
	for (size_t i = 0; i < BH_ARRAY_SIZE(be_descs); i++)
		if (be_descs[i].bd_id == id)
			return &be_descs[i];
	return NULL;
}

const struct be_desc *be_desc_by_name(const char *name)
{
	for (size_t i = 0; i < BH_ARRAY_SIZE(be_descs); i++)
		if (strcmp(be_descs[i].bd_name, name) == 0)
			return &be_descs[i];
	return NULL;
}

const struct be_desc *be_desc_at(size_t i)
{
	return i < BH_ARRAY_SIZE(be_descs) ? &be_descs[i] : NULL;
}

int be_key_index(const struct be_desc *be, const char *name)
{
	for (size_t i = 0; i < be->bd_nkeys; i++)
		if (strcmp(be->bd_keys[i].bk_name, name) == 0)
			return (int)i;
	return -1;
}

/* value among k's choices: *n its index, or -1 with the choices in why. */
static int be_key_choice(const struct be_key *k, const char *value, unsigned long long *n,
			 char *why, size_t whylen)
{
	size_t i, len;

	for (i = 0; k->bk_choices[i]; i++) {
		if (strcmp(k->bk_choices[i], value) == 0) {
			*n = i;
			return 0;
		}
	}
	len = (size_t)snprintf(why, whylen, "invalid %s '%s' (", k->bk_name, value);
	for (i = 0; k->bk_choices[i] && len < whylen; i++)
		len += (size_t)snprintf(why + len, whylen - len, "%s%s",
					i == 0			  ? ""
					: k->bk_choices[i + 1] ? ", "
							       : " or ",
					k->bk_choices[i]);
	if (len < whylen)
		snprintf(why + len, whylen - len, ")");
	return -1;
}

int be_key_parse(const struct be_key *k, const char *value, uint64_t *num, char *why, size_t whylen)
{
	unsigned long long n = 0;
	uint64_t count;

	switch (k->bk_kind) {
	case BK_PATH:
		if (value[0] == '\0') {
			snprintf(why, whylen, "%s is empty", k->bk_name);
			return -1;
		}
		break;
	case BK_SIZE:
		if (ini_size(value, k->bk_min, k->bk_max, &n, why, whylen) < 0)
			return -1;
		break;
	case BK_COUNT:
		if (bh_parse_u64(value, k->bk_min, k->bk_max, &count) < 0) {
			snprintf(why, whylen, "invalid %s '%s' (%llu to %llu)", k->bk_name, value,
				 (unsigned long long)k->bk_min, (unsigned long long)k->bk_max);
			return -1;
		}
		n = count;
		break;
	case BK_TEXT:
		for (const char *p = value; *p; p++) {
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				snprintf(why, whylen, "%s holds a control character", k->bk_name);
				return -1;
			}
		}
		break;
	case BK_CHOICE:
		if (be_key_choice(k, value, &n, why, whylen) < 0)
			return -1;
		break;
	}
	if (k->bk_check && k->bk_check(value, n, why, whylen) < 0)
		return -1;
	*num = n;
	return 0;
}
