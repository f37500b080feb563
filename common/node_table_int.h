/*
 * node_table_int.h - the shared node table's layout, for node_table*.c
 * (and the tests that corrupt it) only: everyone else goes through
 * node_table.h.
 * Runs in: the parent and the workers (see node_table.c for trust).
 */
#ifndef BH_NODE_TABLE_INT_H
#define BH_NODE_TABLE_INT_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "node_table.h"

#define NT_MAGIC	0x4e4f4445424b4844ull /* "BHKDEDON" */
#define NT_VERSION	4
#define NT_BUCKET_BITS	18
#define NT_NBUCKETS	(1u << NT_BUCKET_BITS)
#define NT_HDR_SIZE	4096
#define NT_GEN_MAX	((1ull << (64 - NT_SLOT_BITS)) - 1)
#define NT_FIRST_SLOT	2 /* 0 is invalid, 1 is the root */
#define NT_LOCK_BUCKETS 4096

struct nt_hdr {
	uint64_t h_magic;
	uint32_t h_version;
	uint32_t h_nbuckets;
	uint32_t h_max_nodes;
	uint32_t h_max_fhs;
	uint32_t h_node_size;
	uint32_t h_fh_size;
	uint64_t h_size;
	uint64_t h_epoch; /* written under the lock, read atomically */
	struct nt_session h_session;
	uint32_t h_node_free; /* free-list head, 0 = empty */
	uint32_t h_node_next; /* first slot never used (since the last reset) */
	uint32_t h_fh_free;
	uint32_t h_fh_next;
	/* The lock (node_table_lock.c): no pointer, nothing libc follows. */
	uint32_t h_lock;     /* 0, or holder's tag | NT_LOCK_WAITERS */
	uint32_t h_lock_acq; /* acquisitions, bumped by each holder */
};

struct nt_ent {
	uint64_t e_nlookup;
	uint64_t e_gen;
	uint64_t e_dev;
	uint64_t e_ino;
	uint32_t e_mode;
	uint32_t e_owner;
	uint32_t e_state;
	uint32_t e_link; /* hash chain when LIVE, free list when FREE */
};

struct nt_fhent {
	uint64_t f_gen;
	uint64_t f_node;
	uint64_t f_lock_owner; /* NT_FH_POSIX/NT_FH_FLOCK: the guest's lock owner */
	uint32_t f_owner;
	uint32_t f_state;
	uint32_t f_flags;
	uint32_t f_isdir;
	uint32_t f_link;      /* free list */
	uint32_t f_kind;      /* enum nt_fh_kind */
	uint32_t f_lock_next; /* lock index chain while published */
	uint32_t f_published;
	uint32_t f_dups; /* bit per worker that borrowed a duplicate */
	uint32_t f_pad;
};

struct nt_nament {
	uint64_t nm_parent; /* 0 = no usable name */
	uint32_t nm_len;
	uint32_t nm_pad;
	char nm_name[NT_NAME_MAX + 1];
};

struct nt_table {
	struct nt_hdr *t_hdr;
	struct nt_nament *t_names;
	uint32_t *t_buckets;
	struct nt_ent *t_nodes;
	struct nt_fhent *t_fhs;
	uint32_t *t_lock_buckets;
	size_t t_size;
	uint32_t t_tag; /* our lock tag (nt_set_self) */
	void (*t_stall_fn)(void *arg, uint32_t word);
	void *t_stall_arg;
};

_Static_assert(sizeof(struct nt_hdr) <= NT_HDR_SIZE, "node table header too big");
_Static_assert(NT_LOCK_TAG(NT_MAX_WORKERS - 1) <= NT_LOCK_TAG_MASK, "lock tags overlap the bit");

/*
 * Every worker writes the table, concurrently and without the lock if it
 * likes: a value read from it is read once (NT_RD), into a local that is
 * checked and then used, so that it cannot change between check and use.
 */
#define NT_RD(x)    __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define NT_WR(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* The unit tests (NT_TEST_HOOKS) turn an out-of-range index into an abort,
 * so that a corrupted table that would make us stray is caught even where
 * the stray access would land inside the mapping. */
#ifdef NT_TEST_HOOKS
#define NT_BOUND(i, n) ((i) < (n) ? (i) : (abort(), 0))
#else
#define NT_BOUND(i, n) (i)
#endif
#define NT_NODE(t, i) (&(t)->t_nodes[NT_BOUND((i), NT_MAX_NODES)])
#define NT_NAME(t, i) (&(t)->t_names[NT_BOUND((i), NT_MAX_NODES)])
#define NT_FHE(t, i)  (&(t)->t_fhs[NT_BOUND((i), NT_MAX_FHS)])

#define NT_BUCKETS_OFF NT_HDR_SIZE
#define NT_NODES_OFF   (NT_BUCKETS_OFF + (size_t)NT_NBUCKETS * sizeof(uint32_t))
#define NT_FHS_OFF     (NT_NODES_OFF + (size_t)NT_MAX_NODES * sizeof(struct nt_ent))
#define NT_NAMES_OFF   (NT_FHS_OFF + (size_t)NT_MAX_FHS * sizeof(struct nt_fhent))
#define NT_LOCKS_OFF   (NT_NAMES_OFF + (size_t)NT_MAX_NODES * sizeof(struct nt_nament))
#define NT_TOTAL_SIZE  (NT_LOCKS_OFF + (size_t)NT_LOCK_BUCKETS * sizeof(uint32_t))

/*
 * The table's one lock. Uncontended: one compare-and-swap to take it, one
 * exchange to give it back, no system call. Contended: node_table_lock.c.
 */
void nt_lock_slow(struct nt_table *t);
void nt_unlock_wake(struct nt_table *t);

static inline void nt_lock(struct nt_table *t)
{
	uint32_t free_word = 0;

	if (!__atomic_compare_exchange_n(&t->t_hdr->h_lock, &free_word, t->t_tag, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
		nt_lock_slow(t);
		return;
	}
	/* For the parent's stall check: a plain store, we hold the lock. */
	NT_WR(t->t_hdr->h_lock_acq, NT_RD(t->t_hdr->h_lock_acq) + 1);
}

static inline void nt_unlock(struct nt_table *t)
{
	if (__atomic_exchange_n(&t->t_hdr->h_lock, 0, __ATOMIC_RELEASE) & NT_LOCK_WAITERS)
		nt_unlock_wake(t);
}

/* One "table full" line a minute per process. */
void nt_log_full(const char *what, unsigned max);
/* The first never-used handle slot, clamped to the table. */
uint32_t nt_fh_next(struct nt_table *t);

#endif
