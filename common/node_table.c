/*
 * node_table.c - the device-wide table of FUSE nodes and file handles in a
 * shared memfd (see node_table.h for the id scheme): the table itself and
 * its nodes; handle and lock-description slots are node_table_fh.c.
 * Runs in: the parent creates and initialises it; the workers map it. Trust:
 * ids come from the guest and are checked here (range, generation, state);
 * the table itself is writable by every worker of the device, at any time,
 * so every value read back from it (free lists, hash links, counters, owners,
 * name lengths) is read once and checked before use, and every chain walk is
 * bounded: a corrupted table may give wrong answers (ESTALE, ENOENT, ENFILE,
 * a node forgotten early) but never makes us touch memory outside our slot,
 * loop without end, or hand out an owner that is no worker.
 *
 * Layout (the memfd is sparse: pages are touched as slots come into use):
 *   [header, one page][hash buckets][node entries][file handle entries]
 *   [node names]
 * The names (parent id + the name a node was last looked up by) sit apart
 * from the entries so the hot (dev, ino) chain walks stay in small entries;
 * a name page is touched only when its slot is named.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "node_table.h"
#include "util.h"

#include "node_table_int.h"

static uint32_t nt_hash(uint64_t dev, uint64_t ino)
{
	uint64_t h = ino * 0x9e3779b97f4a7c15ull ^ (dev + 0x632be59bd9b4e019ull);
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (uint32_t)(h & (NT_NBUCKETS - 1));
}

static struct nt_table *nt_attach(void *base, size_t size)
{
	struct nt_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->t_hdr = base;
	t->t_buckets = (uint32_t *)((char *)base + NT_BUCKETS_OFF);
	t->t_nodes = (struct nt_ent *)((char *)base + NT_NODES_OFF);
	t->t_fhs = (struct nt_fhent *)((char *)base + NT_FHS_OFF);
	t->t_names = (struct nt_nament *)((char *)base + NT_NAMES_OFF);
	t->t_lock_buckets = (uint32_t *)((char *)base + NT_LOCKS_OFF);
	t->t_size = size;
	t->t_tag = NT_LOCK_TAG_MASK; /* names no worker until nt_set_self */
	return t;
}

int nt_create(void)
{
	struct nt_hdr *h;
	struct nt_ent *root;
	void *base;
	int fd, r;

	fd = memfd_create("bulkhead-nodes", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)NT_TOTAL_SIZE) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	base = mmap(NULL, NT_TOTAL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		r = -errno;
		close(fd);
		return r;
	}
	h = base;
	h->h_version = NT_VERSION;
	h->h_nbuckets = NT_NBUCKETS;
	h->h_max_nodes = NT_MAX_NODES;
	h->h_max_fhs = NT_MAX_FHS;
	h->h_node_size = sizeof(struct nt_ent);
	h->h_fh_size = sizeof(struct nt_fhent);
	h->h_size = NT_TOTAL_SIZE;
	h->h_epoch = 1;
	h->h_node_next = NT_FIRST_SLOT;
	h->h_fh_next = 1;
	h->h_lock = 0; /* free */

	root = (struct nt_ent *)((char *)base + NT_NODES_OFF) + NT_ROOT_ID;
	root->e_nlookup = 1;
	root->e_gen = 0;
	root->e_mode = S_IFDIR;
	root->e_state = NT_LIVE;
	/* The magic goes last: a half-initialised table never maps. */
	__atomic_store_n(&h->h_magic, NT_MAGIC, __ATOMIC_RELEASE);
	munmap(base, NT_TOTAL_SIZE);
	return fd;
}

struct nt_table *nt_map(int memfd)
{
	struct nt_table *t;
	struct nt_hdr *h;
	struct stat st;
	void *base;

	if (fstat(memfd, &st) < 0)
		return NULL;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != NT_TOTAL_SIZE) {
		errno = EINVAL;
		return NULL;
	}
	base = mmap(NULL, NT_TOTAL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (base == MAP_FAILED)
		return NULL;
	h = base;
	if (__atomic_load_n(&h->h_magic, __ATOMIC_ACQUIRE) != NT_MAGIC ||
	    h->h_version != NT_VERSION || h->h_nbuckets != NT_NBUCKETS ||
	    h->h_max_nodes != NT_MAX_NODES || h->h_max_fhs != NT_MAX_FHS ||
	    h->h_node_size != sizeof(struct nt_ent) || h->h_fh_size != sizeof(struct nt_fhent) ||
	    h->h_size != NT_TOTAL_SIZE) {
		munmap(base, NT_TOTAL_SIZE);
		errno = EINVAL;
		return NULL;
	}
	if (!(t = nt_attach(base, NT_TOTAL_SIZE))) {
		munmap(base, NT_TOTAL_SIZE);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

void nt_unmap(struct nt_table *t)
{
	if (!t)
		return;
	munmap(t->t_hdr, t->t_size);
	free(t);
}

uint64_t nt_epoch(struct nt_table *t)
{
	return __atomic_load_n(&t->t_hdr->h_epoch, __ATOMIC_ACQUIRE);
}

/* A full table is the operator's business: one line a minute per process
 * (the guest gets ENFILE). */
void nt_log_full(const char *what, unsigned max)
{
	static time_t last;

	if (!bh_ratelimit(&last, 60))
		return;
	log_warnx("node table: all %u %s slots in use, the guest gets ENFILE", max, what);
}

/* Clamp the shared counters: another worker may have scribbled on them. */
static uint32_t nt_node_next(struct nt_table *t)
{
	uint32_t n = NT_RD(t->t_hdr->h_node_next);
	return n > NT_MAX_NODES ? NT_MAX_NODES : n;
}

uint32_t nt_fh_next(struct nt_table *t)
{
	uint32_t n = NT_RD(t->t_hdr->h_fh_next);
	return n > NT_MAX_FHS ? NT_MAX_FHS : n;
}

void nt_reset(struct nt_table *t)
{
	struct nt_hdr *h = t->t_hdr;
	uint32_t i, n;

	nt_lock(t);
	/* Only slots below the high-water mark were ever touched. Rewinding
	 * the mark keeps each slot's generation, which grows on reuse. */
	n = nt_node_next(t);
	for (i = NT_FIRST_SLOT; i < n; i++) {
		NT_NODE(t, i)->e_state = NT_FREE;
		NT_NODE(t, i)->e_link = 0;
		NT_NODE(t, i)->e_nlookup = 0;
		NT_NAME(t, i)->nm_parent = 0;
	}
	n = nt_fh_next(t);
	for (i = 1; i < n; i++) {
		NT_FHE(t, i)->f_state = NT_FREE;
		NT_FHE(t, i)->f_link = 0;
		NT_FHE(t, i)->f_published = 0;
	}
	memset(t->t_buckets, 0, (size_t)NT_NBUCKETS * sizeof(uint32_t));
	memset(t->t_lock_buckets, 0, (size_t)NT_LOCK_BUCKETS * sizeof(uint32_t));
	h->h_node_free = 0;
	h->h_node_next = NT_FIRST_SLOT;
	h->h_fh_free = 0;
	h->h_fh_next = 1;
	memset(&h->h_session, 0, sizeof(h->h_session));
	t->t_nodes[NT_ROOT_ID].e_state = NT_LIVE;
	t->t_nodes[NT_ROOT_ID].e_gen = 0;
	t->t_nodes[NT_ROOT_ID].e_owner = 0;
	__atomic_store_n(&h->h_epoch, NT_RD(h->h_epoch) + 1, __ATOMIC_RELEASE);
	nt_unlock(t);
}

void nt_session_get(struct nt_table *t, struct nt_session *s)
{
	nt_lock(t);
	*s = t->t_hdr->h_session;
	nt_unlock(t);
}

void nt_session_set(struct nt_table *t, const struct nt_session *s)
{
	nt_lock(t);
	t->t_hdr->h_session = *s;
	nt_unlock(t);
}

static void nt_node_copy(const struct nt_ent *e, uint32_t slot, struct nt_node *out)
{
	out->n_id = (NT_RD(e->e_gen) << NT_SLOT_BITS) | slot;
	out->n_nlookup = NT_RD(e->e_nlookup);
	out->n_dev = NT_RD(e->e_dev);
	out->n_ino = NT_RD(e->e_ino);
	/* nt_node_live checked it, but it may have changed since: again. */
	out->n_owner = NT_RD(e->e_owner);
	if (out->n_owner >= NT_MAX_WORKERS)
		out->n_owner = 0;
	out->n_state = NT_LIVE;
	out->n_mode = NT_RD(e->e_mode);
}

/* A live entry whose owner is a worker; anything else is not a node. */
static bool nt_node_live(const struct nt_ent *e)
{
	return NT_RD(e->e_state) == NT_LIVE && NT_RD(e->e_owner) < NT_MAX_WORKERS;
}

/* Locked. The entry for a guest-supplied id, or NULL if it is not live. */
static struct nt_ent *nt_node_lookup_id(struct nt_table *t, uint64_t id)
{
	uint32_t slot = nt_slot(id);
	struct nt_ent *e;

	if (slot == 0 || slot >= nt_node_next(t))
		return NULL;
	if (slot == NT_ROOT_ID && id != NT_ROOT_ID)
		return NULL;
	e = NT_NODE(t, slot);
	if (!nt_node_live(e) || NT_RD(e->e_gen) != id >> NT_SLOT_BITS)
		return NULL;
	return e;
}

/* Locked. Unlink slot from its hash chain (if it is there). A chain longer
 * than the slots in use, or a link out of range, is a corrupt table: the
 * walk stops rather than wanders. */
static void nt_hash_remove(struct nt_table *t, uint32_t slot)
{
	struct nt_ent *e = NT_NODE(t, slot);
	uint32_t *pp = &t->t_buckets[nt_hash(NT_RD(e->e_dev), NT_RD(e->e_ino))];
	uint32_t n, cur, next = nt_node_next(t);

	for (n = 0; n < next; n++) {
		cur = NT_RD(*pp);
		if (cur == 0 || cur >= next)
			break;
		if (cur == slot) {
			NT_WR(*pp, NT_RD(e->e_link));
			e->e_link = 0;
			return;
		}
		pp = &NT_NODE(t, cur)->e_link;
	}
}

/* Locked. A fresh slot (generation already advanced) or 0 when full. */
static uint32_t nt_node_alloc_slot(struct nt_table *t)
{
	struct nt_hdr *h = t->t_hdr;
	uint32_t slot = NT_RD(h->h_node_free), next;
	struct nt_ent *e;

	if (slot >= NT_FIRST_SLOT && slot < nt_node_next(t) &&
	    NT_RD(NT_NODE(t, slot)->e_state) == NT_FREE) {
		NT_WR(h->h_node_free, NT_RD(NT_NODE(t, slot)->e_link));
	} else {
		NT_WR(h->h_node_free, 0); /* empty, or corrupt: drop the list */
		next = NT_RD(h->h_node_next);
		if (next < NT_FIRST_SLOT)
			next = NT_FIRST_SLOT;
		/* Retired slots (generation exhausted) are skipped. */
		do {
			if (next >= NT_MAX_NODES) {
				NT_WR(h->h_node_next, NT_MAX_NODES);
				return 0;
			}
			slot = next++;
		} while (NT_RD(NT_NODE(t, slot)->e_gen) >= NT_GEN_MAX);
		NT_WR(h->h_node_next, next);
	}
	e = NT_NODE(t, slot);
	e->e_gen = NT_RD(e->e_gen) + 1; /* a never-used slot starts at generation 1 */
	e->e_link = 0;
	return slot;
}

/* A name that can serve for a reopen relative to its parent: 1 to
 * NT_NAME_MAX bytes, no '/' or NUL, not "." or "..". */
static bool nt_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > NT_NAME_MAX || memchr(name, '/', len) || memchr(name, '\0', len))
		return false;
	return !(name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')));
}

/* Locked. Record (parent, name) for slot; a name that cannot serve for a
 * reopen ("", ".", "..", too long, with a '/') leaves the old one. */
static void nt_name_set(struct nt_table *t, uint32_t slot, uint64_t parent, const char *name)
{
	struct nt_nament *m = NT_NAME(t, slot);
	size_t len;

	if (!name || parent == 0)
		return;
	len = strnlen(name, NT_NAME_MAX + 1);
	if (!nt_name_ok(name, len))
		return;
	/* A repeated LOOKUP by the same name costs one compare, no write. */
	if (NT_RD(m->nm_parent) == parent && NT_RD(m->nm_len) == len &&
	    memcmp(m->nm_name, name, len) == 0)
		return;
	memcpy(m->nm_name, name, len);
	m->nm_name[len] = '\0';
	m->nm_len = (uint32_t)len;
	m->nm_parent = parent;
}

int nt_node_ref(struct nt_table *t, uint64_t dev, uint64_t ino, uint32_t mode, uint32_t owner,
		struct nt_node *out, bool *created)
{
	return nt_node_ref_named(t, dev, ino, mode, owner, 0, NULL, out, created);
}

/* Locked. The live node for (dev, ino), or 0. */
static uint32_t nt_find_slot(struct nt_table *t, uint64_t dev, uint64_t ino)
{
	uint32_t next = nt_node_next(t), slot, n;
	struct nt_ent *e;

	slot = NT_RD(t->t_buckets[nt_hash(dev, ino)]);
	for (n = 0; slot != 0 && slot < next && n < next; n++) {
		e = NT_NODE(t, slot);
		if (nt_node_live(e) && NT_RD(e->e_dev) == dev && NT_RD(e->e_ino) == ino)
			return slot;
		slot = NT_RD(e->e_link);
	}
	return 0;
}

/* Locked. One more lookup of the live node in slot, recorded by name. */
static void nt_ref_slot(struct nt_table *t, uint32_t slot, uint64_t parent, const char *name,
			struct nt_node *out)
{
	struct nt_ent *e = NT_NODE(t, slot);

	if (NT_RD(e->e_nlookup) < UINT64_MAX)
		e->e_nlookup = NT_RD(e->e_nlookup) + 1;
	nt_name_set(t, slot, parent, name);
	nt_node_copy(e, slot, out);
}

/* Locked. nt_node_ref_named's work. */
static int nt_ref_locked(struct nt_table *t, uint64_t dev, uint64_t ino, uint32_t mode,
			 uint32_t owner, uint64_t parent, const char *name, struct nt_node *out,
			 bool *created)
{
	uint32_t b = nt_hash(dev, ino), slot;
	struct nt_ent *e;

	if ((slot = nt_find_slot(t, dev, ino)) != 0) {
		nt_ref_slot(t, slot, parent, name, out);
		*created = false;
		return 0;
	}
	slot = nt_node_alloc_slot(t);
	if (slot == 0)
		return -ENFILE;
	e = NT_NODE(t, slot);
	e->e_nlookup = 1;
	e->e_dev = dev;
	e->e_ino = ino;
	e->e_mode = mode;
	e->e_owner = owner < NT_MAX_WORKERS ? owner : 0;
	e->e_state = NT_LIVE;
	e->e_link = NT_RD(t->t_buckets[b]);
	NT_WR(t->t_buckets[b], slot);
	NT_NAME(t, slot)->nm_parent = 0;
	nt_name_set(t, slot, parent, name);
	nt_node_copy(e, slot, out);
	*created = true;
	return 0;
}

int nt_node_ref_named(struct nt_table *t, uint64_t dev, uint64_t ino, uint32_t mode, uint32_t owner,
		      uint64_t parent, const char *name, struct nt_node *out, bool *created)
{
	int r;

	nt_lock(t);
	r = nt_ref_locked(t, dev, ino, mode, owner, parent, name, out, created);
	nt_unlock(t);
	if (r == -ENFILE)
		nt_log_full("node", NT_MAX_NODES - NT_FIRST_SLOT);
	return r;
}

int nt_node_ref_known(struct nt_table *t, uint64_t id, uint64_t dev, uint64_t ino, uint64_t parent,
		      const char *name, struct nt_node *out)
{
	struct nt_ent *e;
	int err = -ENOENT;

	nt_lock(t);
	e = nt_node_lookup_id(t, id);
	if (e && NT_RD(e->e_dev) == dev && NT_RD(e->e_ino) == ino) {
		nt_ref_slot(t, nt_slot(id), parent, name, out);
		err = 0;
	}
	nt_unlock(t);
	return err;
}

/* Locked. Take slot out of the index for good: no (dev, ino) finds it
 * again, no name leads to it; it lives on until its lookups are forgotten. */
static void nt_detach_slot(struct nt_table *t, uint32_t slot)
{
	struct nt_ent *e = NT_NODE(t, slot);

	nt_hash_remove(t, slot);
	e->e_dev = 0;
	e->e_ino = (NT_RD(e->e_gen) << NT_SLOT_BITS) | slot;
	NT_NAME(t, slot)->nm_parent = 0;
}

/* Locked. Does slot's recorded name say (parent, name)? */
static bool nt_name_is(struct nt_table *t, uint32_t slot, uint64_t parent, const char *name)
{
	const struct nt_nament *m = NT_NAME(t, slot);
	size_t len = strlen(name);

	return NT_RD(m->nm_parent) == parent && NT_RD(m->nm_len) == len &&
	       memcmp(m->nm_name, name, len) == 0;
}

int nt_node_ref_path(struct nt_table *t, uint64_t parent, const char *name, uint64_t hash,
		     uint32_t mode, uint32_t owner, struct nt_node *out, bool *created)
{
	size_t len = strnlen(name, NT_NAME_MAX + 1);
	uint32_t slot;
	int r = 0;

	if (parent == 0 || !nt_name_ok(name, len))
		return -EINVAL;
	nt_lock(t);
	if ((slot = nt_find_slot(t, parent, hash)) != 0) {
		if (!nt_name_is(t, slot, parent, name))
			r = -EEXIST;
		else if ((NT_RD(NT_NODE(t, slot)->e_mode) & S_IFMT) != (mode & S_IFMT))
			nt_detach_slot(t, slot); /* the name is something else now */
	}
	if (r == 0)
		r = nt_ref_locked(t, parent, hash, mode, owner, parent, name, out, created);
	nt_unlock(t);
	if (r == -ENFILE)
		nt_log_full("node", NT_MAX_NODES - NT_FIRST_SLOT);
	return r;
}

int nt_node_move(struct nt_table *t, uint64_t id, uint64_t parent, const char *name, uint64_t hash)
{
	size_t len = strnlen(name, NT_NAME_MAX + 1);
	uint32_t b = nt_hash(parent, hash), slot;
	struct nt_ent *e;

	if (parent == 0 || !nt_name_ok(name, len))
		return -EINVAL;
	nt_lock(t);
	if (!(e = nt_node_lookup_id(t, id)) || id == NT_ROOT_ID) {
		nt_unlock(t);
		return -ESTALE;
	}
	if ((slot = nt_find_slot(t, parent, hash)) != 0 && slot != nt_slot(id))
		nt_detach_slot(t, slot); /* the node it replaces */
	nt_hash_remove(t, nt_slot(id));
	e->e_dev = parent;
	e->e_ino = hash;
	e->e_link = NT_RD(t->t_buckets[b]);
	NT_WR(t->t_buckets[b], nt_slot(id));
	nt_name_set(t, nt_slot(id), parent, name);
	nt_unlock(t);
	return 0;
}

int nt_node_detach(struct nt_table *t, uint64_t id)
{
	struct nt_ent *e;

	nt_lock(t);
	if (!(e = nt_node_lookup_id(t, id)) || id == NT_ROOT_ID) {
		nt_unlock(t);
		return -ESTALE;
	}
	nt_detach_slot(t, nt_slot(id));
	nt_unlock(t);
	return 0;
}

int nt_node_get(struct nt_table *t, uint64_t id, struct nt_node *out)
{
	struct nt_ent *e;

	nt_lock(t);
	e = nt_node_lookup_id(t, id);
	if (e)
		nt_node_copy(e, nt_slot(id), out);
	nt_unlock(t);
	return e ? 0 : -ESTALE;
}

int nt_node_find(struct nt_table *t, uint64_t dev, uint64_t ino, struct nt_node *out)
{
	uint32_t slot;

	nt_lock(t);
	if ((slot = nt_find_slot(t, dev, ino)) != 0)
		nt_node_copy(NT_NODE(t, slot), slot, out);
	nt_unlock(t);
	return slot ? 0 : -ENOENT;
}

int nt_node_set_name(struct nt_table *t, uint64_t id, uint64_t parent, const char *name)
{
	struct nt_ent *e;

	if (!name || strnlen(name, NT_NAME_MAX + 1) > NT_NAME_MAX)
		return -ENAMETOOLONG;
	nt_lock(t);
	e = nt_node_lookup_id(t, id);
	if (e && id != NT_ROOT_ID)
		nt_name_set(t, nt_slot(id), parent, name);
	nt_unlock(t);
	return e ? 0 : -ESTALE;
}

int nt_node_name(struct nt_table *t, uint64_t id, uint64_t *parent, char name[NT_NAME_MAX + 1])
{
	struct nt_nament *m;
	struct nt_ent *e;
	uint64_t p = 0;
	uint32_t len = 0;
	int r = 0;

	nt_lock(t);
	e = nt_node_lookup_id(t, id);
	if (!e || id == NT_ROOT_ID) {
		r = -ESTALE;
	} else {
		/* Every worker may write here, even now: read the length once,
		 * copy, and check the copy. */
		m = NT_NAME(t, nt_slot(id));
		p = NT_RD(m->nm_parent);
		len = NT_RD(m->nm_len);
		if (p == 0 || len == 0 || len > NT_NAME_MAX)
			r = -ENOENT;
		else
			memcpy(name, m->nm_name, len);
	}
	nt_unlock(t);
	if (r < 0)
		return r;
	name[len] = '\0';
	if (!nt_name_ok(name, len))
		return -ENOENT;
	*parent = p;
	return 0;
}

int nt_node_forget(struct nt_table *t, uint64_t id, uint64_t nlookup, bool *dead, uint32_t *owner)
{
	struct nt_ent *e;
	uint64_t n;

	*dead = false;
	nt_lock(t);
	e = nt_node_lookup_id(t, id);
	if (!e) {
		nt_unlock(t);
		return -ESTALE;
	}
	if (id == NT_ROOT_ID) {
		nt_unlock(t);
		return 0;
	}
	n = NT_RD(e->e_nlookup);
	n -= nlookup < n ? nlookup : n;
	e->e_nlookup = n;
	if (n == 0) {
		/* Out of the index now, so a new LOOKUP makes a new node even
		 * before the owner gets round to closing the descriptor. */
		nt_hash_remove(t, nt_slot(id));
		e->e_state = NT_DYING;
		*dead = true;
		*owner = NT_RD(e->e_owner);
		if (*owner >= NT_MAX_WORKERS)
			*owner = 0;
	}
	nt_unlock(t);
	return 0;
}

void nt_node_free(struct nt_table *t, uint64_t id)
{
	uint32_t slot = nt_slot(id), state;
	struct nt_ent *e;

	if (slot < NT_FIRST_SLOT)
		return; /* slot 0 is invalid, the root is never freed */
	nt_lock(t);
	if (slot >= nt_node_next(t)) {
		nt_unlock(t);
		return;
	}
	e = NT_NODE(t, slot);
	state = NT_RD(e->e_state);
	if (state == NT_FREE || NT_RD(e->e_gen) != id >> NT_SLOT_BITS) {
		nt_unlock(t);
		return;
	}
	if (state == NT_LIVE)
		nt_hash_remove(t, slot);
	e->e_state = NT_FREE;
	e->e_nlookup = 0;
	/* A slot whose generation is exhausted is retired, never reused. */
	if (NT_RD(e->e_gen) < NT_GEN_MAX) {
		e->e_link = NT_RD(t->t_hdr->h_node_free);
		NT_WR(t->t_hdr->h_node_free, slot);
	}
	nt_unlock(t);
}
