/*
 * node_table_fh.c - file handle and lock-description slots of the shared
 * node table: allocation, lookup by guest id (range, generation, kind),
 * borrowers, and the (node, lock owner, kind) index of published lock
 * descriptions.
 * Runs in: the workers. Ids come from the guest and are checked here; every
 * value read back from the shared table is read once and checked, every
 * chain walk bounded (node_table.c says why).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "node_table_int.h"

/* Callers check kind and state before; the owner is checked again here
 * (it may have changed since), the rest is only data. */
static void nt_fh_copy(const struct nt_fhent *f, uint32_t slot, struct nt_fh *out)
{
	out->f_id = (NT_RD(f->f_gen) << NT_SLOT_BITS) | slot;
	out->f_node = NT_RD(f->f_node);
	out->f_owner = NT_RD(f->f_owner);
	if (out->f_owner >= NT_MAX_WORKERS)
		out->f_owner = 0;
	out->f_state = NT_LIVE;
	out->f_flags = NT_RD(f->f_flags);
	out->f_isdir = NT_RD(f->f_isdir) != 0;
	out->f_kind = NT_RD(f->f_kind);
	if (out->f_kind > NT_FH_FLOCK)
		out->f_kind = NT_FH_OPEN;
	out->f_lock_owner = NT_RD(f->f_lock_owner);
	out->f_dups = NT_RD(f->f_dups);
}

/* A live entry of this kind whose owner is a worker. */
static bool nt_fh_live(const struct nt_fhent *f, uint32_t kind)
{
	return NT_RD(f->f_state) == NT_LIVE && NT_RD(f->f_kind) == kind &&
	       NT_RD(f->f_owner) < NT_MAX_WORKERS;
}

/* Locked. The live entry of kind 'kind' for an id, or NULL. Guest-supplied
 * handles are looked up as NT_FH_OPEN only: a lock description's id shares
 * the slot space but never works as a file handle. */
static struct nt_fhent *nt_fh_lookup_kind(struct nt_table *t, uint64_t id, uint32_t kind)
{
	uint32_t slot = nt_slot(id);
	struct nt_fhent *f;

	if (slot == 0 || slot >= nt_fh_next(t))
		return NULL;
	f = NT_FHE(t, slot);
	if (!nt_fh_live(f, kind) || NT_RD(f->f_gen) != id >> NT_SLOT_BITS)
		return NULL;
	return f;
}

static struct nt_fhent *nt_fh_lookup_id(struct nt_table *t, uint64_t id)
{
	return nt_fh_lookup_kind(t, id, NT_FH_OPEN);
}

/* Locked. A fresh slot, or NULL (logged) when all are taken. */
static struct nt_fhent *nt_fh_take(struct nt_table *t, uint32_t *slotp)
{
	struct nt_hdr *h = t->t_hdr;
	struct nt_fhent *f;
	uint32_t slot, next;

	slot = NT_RD(h->h_fh_free);
	if (slot >= 1 && slot < nt_fh_next(t) && NT_RD(NT_FHE(t, slot)->f_state) == NT_FREE) {
		NT_WR(h->h_fh_free, NT_RD(NT_FHE(t, slot)->f_link));
	} else {
		NT_WR(h->h_fh_free, 0); /* empty, or corrupt: drop the list */
		next = NT_RD(h->h_fh_next);
		if (next < 1)
			next = 1;
		do {
			if (next >= NT_MAX_FHS) {
				NT_WR(h->h_fh_next, NT_MAX_FHS);
				nt_log_full("file handle", NT_MAX_FHS - 1);
				return NULL;
			}
			slot = next++;
		} while (NT_RD(NT_FHE(t, slot)->f_gen) >= NT_GEN_MAX);
		NT_WR(h->h_fh_next, next);
	}
	f = NT_FHE(t, slot);
	f->f_gen = NT_RD(f->f_gen) + 1;
	f->f_link = 0;
	f->f_kind = NT_FH_OPEN;
	f->f_lock_owner = 0;
	f->f_lock_next = 0;
	f->f_published = 0;
	f->f_dups = 0;
	f->f_state = NT_LIVE;
	*slotp = slot;
	return f;
}

/* Locked. Back on the free list. */
static void nt_fh_put(struct nt_table *t, struct nt_fhent *f, uint32_t slot)
{
	f->f_state = NT_FREE;
	if (NT_RD(f->f_gen) < NT_GEN_MAX) {
		f->f_link = NT_RD(t->t_hdr->h_fh_free);
		NT_WR(t->t_hdr->h_fh_free, slot);
	}
}

/* A new live entry of any kind: 0, or -ENFILE when the slots are taken. */
static int nt_fh_new(struct nt_table *t, const struct nt_fh *want, struct nt_fh *out)
{
	struct nt_fhent *f;
	uint32_t slot;

	nt_lock(t);
	if (!(f = nt_fh_take(t, &slot))) {
		nt_unlock(t);
		return -ENFILE;
	}
	f->f_node = want->f_node;
	f->f_owner = want->f_owner < NT_MAX_WORKERS ? want->f_owner : 0;
	f->f_flags = want->f_flags;
	f->f_isdir = want->f_isdir;
	f->f_kind = want->f_kind;
	f->f_lock_owner = want->f_lock_owner;
	nt_fh_copy(f, slot, out);
	nt_unlock(t);
	return 0;
}

int nt_fh_alloc(struct nt_table *t, uint64_t node, uint32_t owner, uint32_t flags, bool isdir,
		struct nt_fh *out)
{
	const struct nt_fh want = {
	    .f_node = node, .f_owner = owner, .f_flags = flags, .f_isdir = isdir};

	return nt_fh_new(t, &want, out);
}

int nt_fh_get(struct nt_table *t, uint64_t id, struct nt_fh *out)
{
	struct nt_fhent *f;

	nt_lock(t);
	f = nt_fh_lookup_id(t, id);
	if (f)
		nt_fh_copy(f, nt_slot(id), out);
	nt_unlock(t);
	return f ? 0 : -EBADF;
}

int nt_fh_note_dup(struct nt_table *t, uint64_t id, uint32_t worker)
{
	struct nt_fhent *f;

	if (worker >= NT_MAX_WORKERS)
		return -EINVAL;
	nt_lock(t);
	f = nt_fh_lookup_id(t, id);
	if (f)
		f->f_dups = NT_RD(f->f_dups) | 1u << worker;
	nt_unlock(t);
	return f ? 0 : -EBADF;
}

int nt_fh_free(struct nt_table *t, uint64_t id)
{
	return nt_fh_free_get(t, id, NULL);
}

int nt_fh_free_get(struct nt_table *t, uint64_t id, struct nt_fh *out)
{
	struct nt_fhent *f;

	nt_lock(t);
	f = nt_fh_lookup_id(t, id);
	if (!f) {
		nt_unlock(t);
		return -EBADF;
	}
	if (out)
		nt_fh_copy(f, nt_slot(id), out);
	nt_fh_put(t, f, nt_slot(id));
	nt_unlock(t);
	return 0;
}

/* ---- lock descriptions ---- */

static uint32_t nt_lock_hash(uint64_t node, uint64_t lock_owner, uint32_t kind)
{
	uint64_t h = node * 0x9e3779b97f4a7c15ull ^ lock_owner * 0xc2b2ae3d27d4eb4full ^ kind;

	h ^= h >> 31;
	return (uint32_t)(h & (NT_LOCK_BUCKETS - 1));
}

/* Locked. The published description for the key, or 0. */
static uint32_t nt_lock_lookup(struct nt_table *t, uint64_t node, uint64_t lock_owner,
			       uint32_t kind)
{
	uint32_t slot = NT_RD(t->t_lock_buckets[nt_lock_hash(node, lock_owner, kind)]);
	uint32_t next = nt_fh_next(t);

	/* A chain longer than the slots in use is a corrupt table: stop. */
	for (uint32_t n = 0; slot && n < next; n++) {
		struct nt_fhent *f;

		if (slot >= next)
			return 0;
		f = NT_FHE(t, slot);
		if (nt_fh_live(f, kind) && NT_RD(f->f_published) && NT_RD(f->f_node) == node &&
		    NT_RD(f->f_lock_owner) == lock_owner)
			return slot;
		slot = NT_RD(f->f_lock_next);
	}
	return 0;
}

int nt_lock_alloc(struct nt_table *t, uint64_t node, uint64_t lock_owner, uint32_t kind,
		  uint32_t owner, struct nt_fh *out)
{
	const struct nt_fh want = {
	    .f_node = node, .f_owner = owner, .f_kind = kind, .f_lock_owner = lock_owner};

	if (kind != NT_FH_POSIX && kind != NT_FH_FLOCK)
		return -EINVAL;
	return nt_fh_new(t, &want, out) == 0 ? 0 : -ENOLCK;
}

int nt_lock_publish(struct nt_table *t, uint64_t id, struct nt_fh *winner)
{
	uint64_t node, lock_owner;
	struct nt_fhent *f, *w;
	uint32_t b, other, kind;

	nt_lock(t);
	f = nt_fh_lookup_kind(t, id, NT_FH_POSIX);
	if (!f)
		f = nt_fh_lookup_kind(t, id, NT_FH_FLOCK);
	if (!f || NT_RD(f->f_published)) {
		nt_unlock(t);
		return -EBADF;
	}
	node = NT_RD(f->f_node);
	lock_owner = NT_RD(f->f_lock_owner);
	kind = NT_RD(f->f_kind);
	other = nt_lock_lookup(t, node, lock_owner, kind);
	if (other) {
		w = NT_FHE(t, other);
		nt_fh_copy(w, other, winner);
		nt_unlock(t);
		return 1;
	}
	b = nt_lock_hash(node, lock_owner, kind);
	f->f_lock_next = NT_RD(t->t_lock_buckets[b]);
	NT_WR(t->t_lock_buckets[b], nt_slot(id));
	f->f_published = 1;
	nt_fh_copy(f, nt_slot(id), winner);
	nt_unlock(t);
	return 0;
}

int nt_lock_find(struct nt_table *t, uint64_t node, uint64_t lock_owner, uint32_t kind,
		 struct nt_fh *out)
{
	uint32_t slot;

	nt_lock(t);
	slot = nt_lock_lookup(t, node, lock_owner, kind);
	if (slot)
		nt_fh_copy(NT_FHE(t, slot), slot, out);
	nt_unlock(t);
	return slot ? 0 : -ENOENT;
}

int nt_lock_free(struct nt_table *t, uint64_t id)
{
	struct nt_fhent *f;
	uint32_t *pp, cur, next, slot = nt_slot(id);

	nt_lock(t);
	f = nt_fh_lookup_kind(t, id, NT_FH_POSIX);
	if (!f)
		f = nt_fh_lookup_kind(t, id, NT_FH_FLOCK);
	if (!f) {
		nt_unlock(t);
		return -EBADF;
	}
	if (NT_RD(f->f_published)) {
		next = nt_fh_next(t);
		pp = &t->t_lock_buckets[nt_lock_hash(NT_RD(f->f_node), NT_RD(f->f_lock_owner),
						     NT_RD(f->f_kind))];
		for (uint32_t n = 0; n < next; n++) {
			cur = NT_RD(*pp);
			if (cur == 0 || cur >= next)
				break; /* end, or a corrupt link */
			if (cur == slot) {
				NT_WR(*pp, NT_RD(f->f_lock_next));
				break;
			}
			pp = &NT_FHE(t, cur)->f_lock_next;
		}
		f->f_published = 0;
	}
	nt_fh_put(t, f, slot);
	nt_unlock(t);
	return 0;
}
