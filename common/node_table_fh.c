/*
 * node_table_fh.c - file handle and lock-description slots of the shared
 * node table: allocation, lookup by guest id (range, generation, kind),
 * borrowers, and the (node, lock owner, kind) index of published lock
 * descriptions.
 * Runs in: the workers. Ids come from the guest and are checked here; every
 * index read back from the shared table is bounds-checked (node_table.c).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "node_table_int.h"

static void nt_fh_copy(const struct nt_fhent *f, uint32_t slot, struct nt_fh *out)
{
	out->f_id = (f->f_gen << NT_SLOT_BITS) | slot;
	out->f_node = f->f_node;
	out->f_owner = f->f_owner;
	out->f_state = f->f_state;
	out->f_flags = f->f_flags;
	out->f_isdir = f->f_isdir;
	out->f_kind = f->f_kind;
	out->f_lock_owner = f->f_lock_owner;
	out->f_dups = f->f_dups;
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
	f = &t->t_fhs[slot];
	if (f->f_state != NT_LIVE || f->f_gen != id >> NT_SLOT_BITS || f->f_kind != kind)
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
	uint32_t slot;

	slot = h->h_fh_free;
	if (slot >= 1 && slot < nt_fh_next(t) && t->t_fhs[slot].f_state == NT_FREE) {
		h->h_fh_free = t->t_fhs[slot].f_link;
	} else {
		h->h_fh_free = 0;
		if (h->h_fh_next < 1)
			h->h_fh_next = 1;
		do {
			if (h->h_fh_next >= NT_MAX_FHS) {
				nt_log_full("file handle", NT_MAX_FHS - 1);
				return NULL;
			}
			slot = h->h_fh_next++;
		} while (t->t_fhs[slot].f_gen >= NT_GEN_MAX);
	}
	f = &t->t_fhs[slot];
	f->f_gen++;
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
	if (f->f_gen < NT_GEN_MAX) {
		f->f_link = t->t_hdr->h_fh_free;
		t->t_hdr->h_fh_free = slot;
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
	f->f_owner = want->f_owner;
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

	if (worker >= 32)
		return -EINVAL;
	nt_lock(t);
	f = nt_fh_lookup_id(t, id);
	if (f)
		f->f_dups |= 1u << worker;
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
	uint32_t slot = t->t_lock_buckets[nt_lock_hash(node, lock_owner, kind)];
	/* A chain longer than the slots is a corrupt table: stop. */
	for (uint32_t n = 0; slot && n < NT_MAX_FHS; n++) {
		struct nt_fhent *f;

		if (slot >= nt_fh_next(t))
			return 0;
		f = &t->t_fhs[slot];
		if (f->f_state == NT_LIVE && f->f_published && f->f_node == node &&
		    f->f_lock_owner == lock_owner && f->f_kind == kind)
			return slot;
		slot = f->f_lock_next;
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
	struct nt_fhent *f, *w;
	uint32_t b, other;

	nt_lock(t);
	f = nt_fh_lookup_kind(t, id, NT_FH_POSIX);
	if (!f)
		f = nt_fh_lookup_kind(t, id, NT_FH_FLOCK);
	if (!f || f->f_published) {
		nt_unlock(t);
		return -EBADF;
	}
	other = nt_lock_lookup(t, f->f_node, f->f_lock_owner, f->f_kind);
	if (other) {
		w = &t->t_fhs[other];
		nt_fh_copy(w, other, winner);
		nt_unlock(t);
		return 1;
	}
	b = nt_lock_hash(f->f_node, f->f_lock_owner, f->f_kind);
	f->f_lock_next = t->t_lock_buckets[b];
	t->t_lock_buckets[b] = nt_slot(id);
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
		nt_fh_copy(&t->t_fhs[slot], slot, out);
	nt_unlock(t);
	return slot ? 0 : -ENOENT;
}

int nt_lock_free(struct nt_table *t, uint64_t id)
{
	struct nt_fhent *f;
	uint32_t *pp, slot = nt_slot(id);

	nt_lock(t);
	f = nt_fh_lookup_kind(t, id, NT_FH_POSIX);
	if (!f)
		f = nt_fh_lookup_kind(t, id, NT_FH_FLOCK);
	if (!f) {
		nt_unlock(t);
		return -EBADF;
	}
	if (f->f_published) {
		pp = &t->t_lock_buckets[nt_lock_hash(f->f_node, f->f_lock_owner, f->f_kind)];
		for (uint32_t n = 0; *pp && n < NT_MAX_FHS; n++) {
			if (*pp == slot) {
				*pp = f->f_lock_next;
				break;
			}
			if (*pp >= nt_fh_next(t))
				break;
			pp = &t->t_fhs[*pp].f_lock_next;
		}
		f->f_published = 0;
	}
	nt_fh_put(t, f, slot);
	nt_unlock(t);
	return 0;
}
