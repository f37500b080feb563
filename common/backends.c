/*
 * backends.c - the table of back-end descriptors (backends.h).
 * Runs in: both. A new back end adds one row here, one folder in
 * worker/backends/, one policy file, and its configuration keys
 * (daemon/config.c).
 */
#include "config.h"

#include <linux/capability.h>
#include <string.h>

#include "backends.h"
#include "ipc.h"
#include "util.h"

/* A worker that acts on files as the guest's callers: ownership, modes,
 * device nodes and file capabilities (the last two dropped again when the
 * operator refuses them: sandbox.c). */
static const unsigned be_file_caps[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID,
					CAP_SETGID, CAP_SETUID,	      CAP_MKNOD,  CAP_SETFCAP};

static const struct be_desc be_descs[] = {
    {
	.bd_id = IPC_BE_PASSTHROUGH,
	.bd_name = "passthrough",
	.bd_sandbox = BE_SBX_HOST_DIR,
	.bd_can = BE_CAN_ALL,
	.bd_keep = be_file_caps,
	.bd_nkeep = BH_ARRAY_SIZE(be_file_caps),
    },
    {
	/* the passthrough calls over a tmpfs the parent makes (memshare.c) */
	.bd_id = IPC_BE_MEMORY,
	.bd_name = "memory",
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
