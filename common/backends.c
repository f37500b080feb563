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

/*
 * The memory back end's size: at least 1 MiB, and no more than the host's
 * memory, or a guest could fill the host's RAM before the share is full
 * (the size is the limit that keeps the host out of an OOM; swap is not
 * counted on, since a host serving VMs often runs without).
 */
static int be_memory_size_check(const char *value, uint64_t n, char *why, size_t whylen)
{
	unsigned long long ram = ~0ull;
	struct sysinfo si;

	if (sysinfo(&si) == 0)
		ram = (unsigned long long)si.totalram * si.mem_unit;
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
