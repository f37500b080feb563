/*
 * node_table.h - the device-wide table of FUSE nodes and file handles,
 * shared by every worker of one front-end connection, so that a node or an
 * open file a guest got from one queue means the same on every other.
 * Runs in: the parent creates it (nt_create) and afterwards maps only its
 * header page, to watch the lock (nt_lockwatch_*); the workers map it all
 * and use it. It lives in a memfd every worker of the device may write, so
 * nothing in it is trusted: no pointer lives there, every index read back
 * is range-checked, every chain walk is bounded. One lock guards it: a
 * 32-bit futex word holding 0 or the holder's tag (its queue index + 1),
 * which the parent can read and, when the holder died or held it too long,
 * release (node_table_lock.c).
 *
 * Node ids: id = (generation << NT_SLOT_BITS) | slot. Slot 0 is invalid, the
 * root is slot 1 with generation 0, so its id is 1 (FUSE_ROOT_ID). A freed
 * slot is reused only with a higher generation, so an old id never aliases a
 * new node. File handles use the same scheme in their own slot space.
 * Every id that comes from the guest goes through nt_node_get/nt_fh_get,
 * which check range, generation and state.
 */
#ifndef BH_NODE_TABLE_H
#define BH_NODE_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#define NT_SLOT_BITS 20
#define NT_MAX_NODES (1u << NT_SLOT_BITS) /* slots, including 0 and the root */
#define NT_MAX_FHS   (1u << 16)
#define NT_ROOT_ID   1ull
#define NT_NAME_MAX  255 /* longest name kept for a reopen */
#define NT_MAX_WORKERS 32  /* owners and borrowers are bits of a 32-bit mask */

/*
 * The lock word: 0 when free, else the holder's tag (NT_LOCK_TAG of its
 * worker id) with NT_LOCK_WAITERS set once someone sleeps on it. A holder
 * that keeps it longer than NT_LOCK_HOLD_MAX_MS is killed by the parent
 * (daemon/workers.c), which then releases the word; a waiter that waits that
 * long reports it (nt_set_stall_report).
 */
#define NT_LOCK_WAITERS	    0x80000000u
#define NT_LOCK_TAG_MASK    0x7fffffffu
#define NT_LOCK_TAG(w)	    ((uint32_t)(w) + 1u)
#define NT_LOCK_HOLD_MAX_MS 2000u

enum nt_state { NT_FREE = 0, NT_LIVE = 1, NT_DYING = 2 };

struct nt_node {            /* a copy handed out to callers */
	uint64_t n_id;
	uint64_t n_nlookup;
	uint64_t n_dev;         /* back-end identity: (dev, ino) for passthrough */
	uint64_t n_ino;
	uint32_t n_owner;       /* worker (queue index) that holds the descriptor */
	uint32_t n_state;
	uint32_t n_mode;        /* S_IFMT bits at lookup time */
};

enum nt_fh_kind {
	NT_FH_OPEN = 0,  /* a guest's file handle (OPEN, CREATE, OPENDIR) */
	NT_FH_POSIX = 1, /* the description a guest lock owner's POSIX locks live on */
	NT_FH_FLOCK = 2, /* the description a guest flock() owner's locks live on */
};

struct nt_fh {
	uint64_t f_id;
	uint64_t f_node;        /* node id the handle was opened on */
	uint64_t f_lock_owner;  /* lock descriptions: the guest's lock owner */
	uint32_t f_kind;        /* enum nt_fh_kind */
	uint32_t f_dups;        /* bit per worker holding a borrowed duplicate */
	uint32_t f_owner;       /* worker that holds the open file description */
	uint32_t f_state;
	uint32_t f_flags;       /* open flags */
	uint32_t f_isdir;
};

struct nt_table;            /* opaque: the mapping */

/* Parent: create the memfd, size it, initialise header, lock and root.
 * Returns the memfd (caller passes it to workers) or -errno. */
int nt_create(void);

/* Worker: map a table created by nt_create. NULL with errno on failure
 * (wrong size or magic). */
struct nt_table *nt_map(int memfd);
void nt_unmap(struct nt_table *t);

/* Worker: the id (queue index, < NT_MAX_WORKERS) whose tag marks the lock
 * while this process holds it. Until set, the tag names no worker. */
void nt_set_self(struct nt_table *t, uint32_t self);

/*
 * Worker: fn(arg, word) is called by a thread that has waited
 * NT_LOCK_HOLD_MAX_MS for the lock (and again each further period), with
 * the lock word it sees, so that the parent can deal with the holder. It
 * runs on whichever thread waits, outside the lock.
 */
void nt_set_stall_report(struct nt_table *t, void (*fn)(void *arg, uint32_t word), void *arg);

/* The worker a lock word names, or -1 (free, or no worker's tag). */
static inline int nt_lock_holder(uint32_t word)
{
	uint32_t tag = word & NT_LOCK_TAG_MASK;

	return tag >= 1 && tag <= NT_MAX_WORKERS ? (int)tag - 1 : -1;
}

/*
 * Parent: a mapping of the header page only, to watch the lock. The parent
 * reads the lock word and the acquisition counter there, with atomic loads,
 * and releases the word with a compare-and-swap; it dereferences nothing
 * else a worker could have written.
 */
struct nt_lockwatch;
/* NULL with errno. */
struct nt_lockwatch *nt_lockwatch_map(int memfd);
void nt_lockwatch_unmap(struct nt_lockwatch *lw);
/* The lock word now and the number of acquisitions so far (it wraps). */
void nt_lockwatch_sample(const struct nt_lockwatch *lw, uint32_t *word, uint32_t *acq);
/* Release the lock if its word still names the holder 'word' names (the
 * waiters bit aside), and wake the waiters: true if this call released it. */
bool nt_lockwatch_release(struct nt_lockwatch *lw, uint32_t word);

/* Session epoch: bumped by nt_reset. Workers compare it to drop their
 * private descriptor caches after a DESTROY or a second INIT elsewhere. */
uint64_t nt_epoch(struct nt_table *t);

/* Drop every node but the root and every file handle (DESTROY, re-INIT). */
void nt_reset(struct nt_table *t);

/* Shared FUSE session parameters, set by the worker that handled INIT. */
struct nt_session {
	uint32_t s_initialized;
	uint32_t s_minor;
	uint32_t s_max_pages;
	uint32_t s_flags;
};
void nt_session_get(struct nt_table *t, struct nt_session *s);
void nt_session_set(struct nt_table *t, const struct nt_session *s);

/*
 * Find the live node for (dev, ino) and add one lookup, or create it owned
 * by 'owner' with nlookup 1. *created tells which; *out is a copy.
 * 0, or -ENFILE when the table is full.
 */
int nt_node_ref(struct nt_table *t, uint64_t dev, uint64_t ino, uint32_t mode, uint32_t owner,
		struct nt_node *out, bool *created);

/*
 * The same, and record (parent, name) as the link to reopen the node by
 * (fdtable.c evicts descriptors and reopens them from it). A name that
 * cannot be opened relative to its parent (".", "..", empty, too long) is
 * not recorded; parent 0 records nothing. Names are advisory: a reopen
 * checks (dev, ino) before trusting what it opened.
 */
int nt_node_ref_named(struct nt_table *t, uint64_t dev, uint64_t ino, uint32_t mode,
		      uint32_t owner, uint64_t parent, const char *name, struct nt_node *out,
		      bool *created);

/*
 * One more lookup of node id, found by (dev, ino) and recorded by name as
 * nt_node_ref_named does, only if id is still the live node for (dev, ino):
 * 0, or -ENOENT (forgotten, or (dev, ino) is another node's now).
 */
int nt_node_ref_known(struct nt_table *t, uint64_t id, uint64_t dev, uint64_t ino, uint64_t parent,
		      const char *name, struct nt_node *out);

/*
 * Nodes known by (parent, name) rather than by an inode (the S3 back end):
 * the index key is (parent, hash), hash a digest of name the caller
 * computes, and the recorded name is the identity. nt_node_ref_path adds
 * a lookup to the live node of that name, or creates it: -EEXIST when
 * another name of the parent has the same hash (the caller reports it),
 * -EINVAL for a name that cannot be one. A node of that name whose S_IFMT
 * differs from mode's is detached first (the name now is something
 * else). nt_node_move re-keys node id under (parent, name) (RENAME; a node
 * that had the name is detached), and nt_node_detach takes a node out of
 * the index (UNLINK, RMDIR): it stays live, nameless, until forgotten.
 * Both: 0, -ESTALE, -EINVAL.
 */
int nt_node_ref_path(struct nt_table *t, uint64_t parent, const char *name, uint64_t hash,
		     uint32_t mode, uint32_t owner, struct nt_node *out, bool *created);
int nt_node_move(struct nt_table *t, uint64_t id, uint64_t parent, const char *name, uint64_t hash);
int nt_node_detach(struct nt_table *t, uint64_t id);

/* The live node for (dev, ino), without a reference: 0 or -ENOENT. */
int nt_node_find(struct nt_table *t, uint64_t dev, uint64_t ino, struct nt_node *out);

/* Re-point a node's reopen name (RENAME, LINK): 0, -ESTALE, -ENAMETOOLONG. */
int nt_node_set_name(struct nt_table *t, uint64_t id, uint64_t parent, const char *name);

/* The node's reopen name: 0, -ESTALE (not live, or the root), -ENOENT (none
 * recorded). name gets NT_NAME_MAX + 1 bytes, NUL-terminated. */
int nt_node_name(struct nt_table *t, uint64_t id, uint64_t *parent, char name[NT_NAME_MAX + 1]);

/* Copy out a live node: 0, or -ESTALE for an id that is out of range, of
 * another generation, or not live. */
int nt_node_get(struct nt_table *t, uint64_t id, struct nt_node *out);

/*
 * Subtract nlookup (clamped at 0). When the count reaches 0 the node leaves
 * the (dev, ino) index at once (a new LOOKUP creates a fresh node) and turns
 * DYING; *dead = true and *owner tells who must close the descriptor and
 * call nt_node_free. The root ignores forgets. 0 or -ESTALE.
 */
int nt_node_forget(struct nt_table *t, uint64_t id, uint64_t nlookup, bool *dead,
		   uint32_t *owner);

/* Owner: release a DYING (or LIVE, on error paths) slot for reuse. */
void nt_node_free(struct nt_table *t, uint64_t id);

/* Allocate a file handle owned by 'owner'. 0 or -ENFILE. */
int nt_fh_alloc(struct nt_table *t, uint64_t node, uint32_t owner, uint32_t flags, bool isdir,
		struct nt_fh *out);
/* Copy out a live handle: 0 or -EBADF. */
int nt_fh_get(struct nt_table *t, uint64_t id, struct nt_fh *out);
/* Mark released; the owner closes its descriptor. 0 or -EBADF. */
int nt_fh_free(struct nt_table *t, uint64_t id);
/* The same, with the entry as it was (owner, borrowers) in *out. */
int nt_fh_free_get(struct nt_table *t, uint64_t id, struct nt_fh *out);
/* Record that 'worker' is about to borrow a duplicate of the handle, so
 * that RELEASE reaches it (the duplicate keeps the open file alive): 0,
 * -EBADF when the handle is gone, -EINVAL for a worker out of range. */
int nt_fh_note_dup(struct nt_table *t, uint64_t id, uint32_t worker);

/*
 * Lock descriptions (passthrough_locks.c): one open file description per
 * (node, guest lock owner, POSIX or flock), device-wide, so that a lock
 * owner's requests arriving on any queue act on one set of locks. They are
 * file-handle slots of their own kind (never usable as a guest handle); the
 * worker named as owner holds the descriptor, the others borrow duplicates
 * through peer.c. Creating one: nt_lock_alloc (unpublished), install the
 * descriptor, then nt_lock_publish, which returns 1 and the entry to use
 * instead when another worker published the same key first (0 when ours
 * is in; *winner then is ours). nt_lock_find: the published one, or
 * -ENOENT. nt_lock_free unpublishes and frees: 0 or -EBADF.
 */
int nt_lock_alloc(struct nt_table *t, uint64_t node, uint64_t lock_owner, uint32_t kind,
		  uint32_t owner, struct nt_fh *out);
int nt_lock_publish(struct nt_table *t, uint64_t id, struct nt_fh *winner);
int nt_lock_find(struct nt_table *t, uint64_t node, uint64_t lock_owner, uint32_t kind,
		 struct nt_fh *out);
int nt_lock_free(struct nt_table *t, uint64_t id);

#ifdef BH_TEST_HOOKS
/* Test hooks (node_table_hooks.c): take the lock and never give it back;
 * write garbage into every field of the table (seed varies it). */
void nt_test_hold_lock(struct nt_table *t);
void nt_test_scribble(struct nt_table *t, uint32_t seed);
#endif

/* Slot index of an id (no checks) - for per-worker descriptor arrays. */
static inline uint32_t nt_slot(uint64_t id)
{
	return (uint32_t)(id & (NT_MAX_NODES - 1));
}

#endif
