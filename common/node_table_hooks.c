/*
 * node_table_hooks.c - test hooks that play a compromised worker against
 * the shared node table: take the lock and keep it, or write garbage into
 * every field. Built only with --enable-test-hooks (BH_TEST_HOOKS) and into
 * the node table's unit test (NT_TEST_HOOKS); never in a production build.
 * Runs in: a worker started with --test-hold-nt-lock,
 * --test-die-holding-nt-lock or --test-scribble-node-table, and the unit
 * tests. Trust: none needed; this is the attacker.
 */
#include "config.h"

#if defined(BH_TEST_HOOKS) || defined(NT_TEST_HOOKS)

#include <stdint.h>
#include <string.h>

#include "node_table_int.h"

void nt_test_lock(struct nt_table *t);
void nt_test_unlock(struct nt_table *t);
void nt_test_hold_lock(struct nt_table *t);
void nt_test_scribble(struct nt_table *t, uint32_t seed);

/* Node slots (from 0) and file handle slots whose entries are scribbled on,
 * plus the last few of each: the tests' tables use far fewer, and the rest
 * of the memfd stays sparse. */
#define NT_SCRIBBLE_NODES 4096u
#define NT_SCRIBBLE_FHS	  1024u
#define NT_SCRIBBLE_TAIL  4u

void nt_test_lock(struct nt_table *t)
{
	nt_lock(t);
}

void nt_test_unlock(struct nt_table *t)
{
	nt_unlock(t);
}

void nt_test_hold_lock(struct nt_table *t)
{
	nt_lock(t);
}

static uint32_t nt_rand(uint32_t *s)
{
	/* xorshift32: deterministic per seed, so a failure can be replayed */
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static uint64_t nt_rand64(uint32_t *s)
{
	uint64_t hi = nt_rand(s);

	switch (nt_rand(s) % 4) {
	case 0:
		return UINT64_MAX;
	case 1:
		return 0;
	case 2:
		return NT_GEN_MAX;
	default:
		return hi << 32 | nt_rand(s);
	}
}

/* A slot number meant to hurt: out of range, the last one, a self-loop, a
 * chain through the neighbours, the root, a low slot likely in use. */
static uint32_t nt_bad_slot(uint32_t *s, uint32_t self, uint32_t max)
{
	switch (nt_rand(s) % 9) {
	case 0:
		return UINT32_MAX;
	case 1:
		return max;
	case 2:
		return max - 1;
	case 3:
		return self;
	case 4:
		return self + 1;
	case 5:
		return NT_ROOT_ID;
	case 6:
		return 0x80000000u;
	case 7:
		return nt_rand(s);
	default:
		return nt_rand(s) % 64;
	}
}

static uint32_t nt_bad_small(uint32_t *s)
{
	static const uint32_t v[] = {0, 1, 2, 3, 31, 32, 255, 256, 0x7fffffff, UINT32_MAX};

	return nt_rand(s) % 2 ? v[nt_rand(s) % (sizeof(v) / sizeof(v[0]))] : nt_rand(s);
}

static void nt_scribble_node(struct nt_table *t, uint32_t slot, uint32_t *s)
{
	struct nt_ent *e = NT_NODE(t, slot);
	struct nt_nament *m = NT_NAME(t, slot);
	static const char *const names[] = {"..", ".", "/", "../../etc/passwd", "a/b", ""};

	NT_WR(e->e_nlookup, nt_rand64(s));
	NT_WR(e->e_gen, nt_rand64(s));
	NT_WR(e->e_dev, nt_rand64(s));
	NT_WR(e->e_ino, nt_rand64(s));
	NT_WR(e->e_mode, nt_bad_small(s));
	NT_WR(e->e_owner, nt_bad_small(s));
	NT_WR(e->e_state, nt_bad_small(s));
	NT_WR(e->e_link, nt_bad_slot(s, slot, NT_MAX_NODES));

	NT_WR(m->nm_parent, nt_rand(s) % 2 ? NT_ROOT_ID : nt_rand64(s));
	NT_WR(m->nm_len, nt_bad_small(s));
	if (nt_rand(s) % 2) {
		memset(m->nm_name, nt_rand(s) % 2 ? '/' : 0xff, sizeof(m->nm_name));
	} else {
		const char *n = names[nt_rand(s) % (sizeof(names) / sizeof(names[0]))];
		memset(m->nm_name, 0, sizeof(m->nm_name));
		memcpy(m->nm_name, n, strlen(n));
	}
}

static void nt_scribble_fh(struct nt_table *t, uint32_t slot, uint32_t *s)
{
	struct nt_fhent *f = NT_FHE(t, slot);

	NT_WR(f->f_gen, nt_rand64(s));
	NT_WR(f->f_node, nt_rand64(s));
	NT_WR(f->f_lock_owner, nt_rand64(s));
	NT_WR(f->f_owner, nt_bad_small(s));
	NT_WR(f->f_state, nt_bad_small(s));
	NT_WR(f->f_flags, nt_rand(s));
	NT_WR(f->f_isdir, nt_bad_small(s));
	NT_WR(f->f_link, nt_bad_slot(s, slot, NT_MAX_FHS));
	NT_WR(f->f_kind, nt_bad_small(s));
	NT_WR(f->f_lock_next, nt_bad_slot(s, slot, NT_MAX_FHS));
	NT_WR(f->f_published, nt_bad_small(s));
	NT_WR(f->f_dups, nt_rand(s));
}

/*
 * Garbage into every field: the header (counters, free lists, session,
 * epoch, the lock word and its counter), every hash and lock bucket, the
 * node, handle and name entries the tests use and the last ones. Written
 * without the lock, as a compromised worker would. The lock word is left
 * naming no worker, so the parent has to clear it.
 */
void nt_test_scribble(struct nt_table *t, uint32_t seed)
{
	static const uint32_t nexts[] = {
	    UINT32_MAX, NT_MAX_NODES + 1, NT_MAX_NODES, NT_MAX_NODES - 1, 0, 1};
	static const uint32_t words[] = {UINT32_MAX, NT_LOCK_TAG_MASK, NT_LOCK_WAITERS,
					 NT_LOCK_TAG(NT_MAX_WORKERS), 0x12345678u};
	struct nt_hdr *h = t->t_hdr;
	uint32_t s = seed ? seed : 0x2545f491u, i;

	for (i = 0; i < NT_SCRIBBLE_NODES; i++)
		nt_scribble_node(t, i, &s);
	for (i = NT_MAX_NODES - NT_SCRIBBLE_TAIL; i < NT_MAX_NODES; i++)
		nt_scribble_node(t, i, &s);
	for (i = 0; i < NT_SCRIBBLE_FHS; i++)
		nt_scribble_fh(t, i, &s);
	for (i = NT_MAX_FHS - NT_SCRIBBLE_TAIL; i < NT_MAX_FHS; i++)
		nt_scribble_fh(t, i, &s);
	for (i = 0; i < NT_NBUCKETS; i++)
		NT_WR(t->t_buckets[i], nt_bad_slot(&s, i % NT_SCRIBBLE_NODES, NT_MAX_NODES));
	for (i = 0; i < NT_LOCK_BUCKETS; i++)
		NT_WR(t->t_lock_buckets[i], nt_bad_slot(&s, i % NT_SCRIBBLE_FHS, NT_MAX_FHS));

	NT_WR(h->h_magic, nt_rand64(&s));
	NT_WR(h->h_version, nt_rand(&s));
	NT_WR(h->h_nbuckets, nt_rand(&s));
	NT_WR(h->h_max_nodes, nt_rand(&s));
	NT_WR(h->h_max_fhs, nt_rand(&s));
	NT_WR(h->h_node_size, nt_rand(&s));
	NT_WR(h->h_fh_size, nt_rand(&s));
	NT_WR(h->h_size, nt_rand64(&s));
	NT_WR(h->h_epoch, nt_rand64(&s));
	NT_WR(h->h_session.s_initialized, nt_bad_small(&s));
	NT_WR(h->h_session.s_minor, nt_bad_small(&s));
	NT_WR(h->h_session.s_max_pages, nt_bad_small(&s));
	NT_WR(h->h_session.s_flags, nt_rand(&s));
	NT_WR(h->h_node_free, nt_bad_slot(&s, 2, NT_MAX_NODES));
	NT_WR(h->h_node_next, nexts[nt_rand(&s) % (sizeof(nexts) / sizeof(nexts[0]))]);
	NT_WR(h->h_fh_free, nt_bad_slot(&s, 1, NT_MAX_FHS));
	NT_WR(h->h_fh_next, nexts[nt_rand(&s) % (sizeof(nexts) / sizeof(nexts[0]))]);
	NT_WR(h->h_lock_acq, nt_rand(&s));
	__atomic_store_n(&h->h_lock, words[nt_rand(&s) % (sizeof(words) / sizeof(words[0]))],
			 __ATOMIC_RELEASE);
}

#endif
