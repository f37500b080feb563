/*
 * backends.h - what the parent and the worker core know of each back end:
 * its descriptor, read from one table instead of facts about passthrough
 * spread through the code.
 * Runs in: both. Holds no state.
 *
 * The parent reads the name (configuration, policy file
 * policy/<arch>/worker-NAME.policy), the keys of its own section of the
 * configuration file and how to check them, the sandbox profile (does the parent
 * open a host directory for it, do its workers keep a network, which
 * capabilities they keep) and passes the id in CONFIG; the worker's
 * dispatcher reads what the back end can do and answers the rest itself,
 * with the errno a local file system without that feature gives.
 */
#ifndef BH_BACKENDS_H
#define BH_BACKENDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sandbox profile. */
#define BE_SBX_HOST_DIR 0x1 /* serves a host directory the parent opens (--shared-dir) */
#define BE_SBX_NETWORK	0x2 /* its workers keep a network (no new network namespace) */

/* What a back end can do; the dispatcher answers the rest (fuse_dispatch.c):
 * LINK without BE_CAN_LINK is EPERM, as link(2) says on a file system
 * without hard links; the xattr calls without BE_CAN_XATTR and the lock
 * calls without BE_CAN_LOCK are ENOSYS (the guest's kernel then keeps
 * locks to itself and answers xattr calls EOPNOTSUPP); TMPFILE without
 * BE_CAN_TMPFILE is EOPNOTSUPP, as open(2) says for O_TMPFILE. Without
 * BE_CAN_RANDOM_WRITE (a store that takes a file only whole, front to
 * back) FALLOCATE is EOPNOTSUPP, as fallocate(2) says where a file system
 * lacks it, and COPY_FILE_RANGE is ENOSYS, so the guest's kernel copies
 * through READ and WRITE instead; a WRITE that does not continue the file
 * where the last one ended is the back end's to refuse (EINVAL). */
#define BE_CAN_LINK	    0x1
#define BE_CAN_XATTR	    0x2
#define BE_CAN_LOCK	    0x4
#define BE_CAN_TMPFILE	    0x8
#define BE_CAN_RANDOM_WRITE 0x10
#define BE_CAN_ALL	    (BE_CAN_LINK | BE_CAN_XATTR | BE_CAN_LOCK | BE_CAN_TMPFILE | BE_CAN_RANDOM_WRITE)

/* A key of a back end's own section of bulkhead.conf(5), [NAME]. */
enum be_key_kind {
	BK_PATH,   /* a path, kept as given (the parent opens it at start-up) */
	BK_SIZE,   /* bytes: digits with an optional K, M, G or T, within [min, max] */
	BK_COUNT,  /* a number within [min, max] */
	BK_TEXT,   /* printable text, which bk_check says more about */
	BK_CHOICE, /* one of bk_choices; its number is the index */
};

struct be_key {
	const char *bk_name;
	enum be_key_kind bk_kind;
	uint64_t bk_min, bk_max; /* BK_SIZE, BK_COUNT */
	const char *const *bk_choices; /* BK_CHOICE: the names, NULL-terminated */
	bool bk_required;
	/* the value when none is given, parsed as a given one would be; NULL:
	 * none (a required key has none) */
	const char *bk_default;
	const char *bk_what;   /* its value in messages: "needs dir = DIR" */
	const char *bk_option; /* the command-line option that sets it, or NULL */
	/* a check of its own after the kind's: 0, or -1 with why filled */
	int (*bk_check)(const char *value, uint64_t num, char *why, size_t whylen);
};

#define BE_MAX_KEYS 24 /* keys of one back end (backends.c asserts each table fits) */
#define BE_MAX_ID   8 /* back-end ids are below this */

struct be_desc {
	uint32_t bd_id;	     /* enum ipc_backend */
	const char *bd_name; /* in bulkhead.conf(5) and in worker-NAME.policy */
	const struct be_key *bd_keys; /* its section's keys, at most BE_MAX_KEYS */
	size_t bd_nkeys;
	uint32_t bd_sandbox; /* BE_SBX_* */
	uint32_t bd_can;     /* BE_CAN_* */
	/* capabilities a worker keeps when it runs as root or in a user
	 * namespace (the parent keeps them too: it cannot give what it does
	 * not hold); never CAP_DAC_READ_SEARCH, with which
	 * open_by_handle_at(2) reaches any inode */
	const unsigned *bd_keep;
	size_t bd_nkeep;
};

/* The descriptor of a back end by id or by name; NULL if there is none. */
const struct be_desc *be_desc_find(uint32_t id);
const struct be_desc *be_desc_by_name(const char *name);
/* The i-th descriptor (in the order bulkhead.conf(5) lists them), or NULL. */
const struct be_desc *be_desc_at(size_t i);

/* The index of back end be's key name, or -1 if it has none. */
int be_key_index(const struct be_desc *be, const char *name);
/* Check value against key k: 0 with *num set (BK_SIZE, BK_COUNT, the index
 * for BK_CHOICE; 0 for a path or text), or -1 with why filled. */
int be_key_parse(const struct be_key *k, const char *value, uint64_t *num, char *why,
		 size_t whylen);

#endif
