/*
 * node_table.c - the device-wide table of FUSE nodes and file handles in a
 * shared memfd (see node_table.h for the id scheme): the table itself and
 * its nodes; handle and lock-description slots are node_table_fh.c.
 * Runs in: the parent creates and initialises it; the workers map it. Trust:
 * ids come from the guest and are checked here (range, generation, state);
 * the table itself is writable by every worker of the device, so every index
 * read back from it (free lists, hash links, counters) is bounds-checked
 * before use: a corrupted table may give wrong answers but never makes us
 * touch memory outside the mapping.
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
#include <pthread.h>
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

void nt_lock(struct nt_table *t)
{
	int r = pthread_mutex_lock(&t->t_hdr->h_lock);

	if (r == EOWNERDEAD) {
		/* A worker died inside a critical section: every update keeps
		 * indices in range, so the table is usable; carry on. */
		pthread_mutex_consistent(&t->t_hdr->h_lock);
		log_warnx("node table: previous lock holder died, lock recovered");
	} else if (r != 0)
		fatalx("node table: lock failed (%d)", r);
}

void nt_unlock(struct nt_table *t)
{
	pthread_mutex_unlock(&t->t_hdr->h_lock);
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
	return t;
}

int nt_create(void)
{
	pthread_mutexattr_t ma;
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

	if ((r = pthread_mutexattr_init(&ma)) != 0 ||
	    (r = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED)) != 0 ||
	    (r = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST)) != 0 ||
	    (r = pthread_mutex_init(&h->h_lock, &ma)) != 0) {
		munmap(base, NT_TOTAL_SIZE);
		close(fd);
		return -r;
	}
	pthread_mutexattr_destroy(&ma);

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
	uint32_t n = t->t_hdr->h_node_next;
	return n > NT_MAX_NODES ? NT_MAX_NODES : n;
}

uint32_t nt_fh_next(struct nt_table *t)
{
	uint32_t n = t->t_hdr->h_fh_next;
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
		t->t_nodes[i].e_state = NT_FREE;
		t->t_nodes[i].e_link = 0;
		t->t_nodes[i].e_nlookup = 0;
		t->t_names[i].nm_parent = 0;
	}
	n = nt_fh_next(t);
	for (i = 1; i < n; i++) {
		t->t_fhs[i].f_state = NT_FREE;
		t->t_fhs[i].f_link = 0;
		t->t_fhs[i].f_published = 0;
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
	__atomic_store_n(&h->h_epoch, h->h_epoch + 1, __ATOMIC_RELEASE);
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
	out->n_id = (e->e_gen << NT_SLOT_BITS) | slot;
	out->n_nlookup = e->e_nlookup;
	out->n_dev = e->e_dev;
	out->n_ino = e->e_ino;
	out->n_owner = e->e_owner;
	out->n_state = e->e_state;
	out->n_mode = e->e_mode;
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
	e = &t->t_nodes[slot];
	if (e->e_state != NT_LIVE || e->e_gen != id >> NT_SLOT_BITS)
		return NULL;
	return e;
}

/* Locked. Unlink slot from its hash chain (if it is there). */
static void nt_hash_remove(struct nt_table *t, uint32_t slot)
{
	struct nt_ent *e = &t->t_nodes[slot];
	uint32_t *pp = &t->t_buckets[nt_hash(e->e_dev, e->e_ino)];
	uint32_t n, next = nt_node_next(t);

	for (n = 0; n < NT_MAX_NODES && *pp != 0; n++) {
		if (*pp >= next)
			break; /* corrupt link: give up rather than wander */
		if (*pp == slot) {
			*pp = e->e_link;
			e->e_link = 0;
			return;
		}
		pp = &t->t_nodes[*pp].e_link;
	}
}

/* Locked. A fresh slot (generation already advanced) or 0 when full. */
static uint32_t nt_node_alloc_slot(struct nt_table *t)
{
	struct nt_hdr *h = t->t_hdr;
	uint32_t slot = h->h_node_free;
	struct nt_ent *e;

	if (slot >= NT_FIRST_SLOT && slot < nt_node_next(t) &&
	    t->t_nodes[slot].e_state == NT_FREE) {
		h->h_node_free = t->t_nodes[slot].e_link;
	} else {
		h->h_node_free = 0; /* empty, or corrupt: drop the list */
		if (h->h_node_next < NT_FIRST_SLOT)
			h->h_node_next = NT_FIRST_SLOT;
		/* Retired slots (generation exhausted) are skipped. */
		do {
			if (h->h_node_next >= NT_MAX_NODES)
				return 0;
			slot = h->h_node_next++;
		} while (t->t_nodes[slot].e_gen >= NT_GEN_MAX);
	}
	e = &t->t_nodes[slot];
	e->e_gen++; /* a never-used slot starts at generation 1 */
	e->e_link = 0;
	return slot;
}

/* Locked. Record (parent, name) for slot; a name that cannot serve for a
 * reopen ("", ".", "..", too long, with a '/') leaves the old one. */
static void nt_name_set(struct nt_table *t, uint32_t slot, uint64_t parent, const char *name)
{
	struct nt_nament *m = &t->t_names[slot];
	size_t len;

	if (!name || parent == 0)
		return;
	len = strnlen(name, NT_NAME_MAX + 1);
	if (len == 0 || len > NT_NAME_MAX || memchr(name, '/', len) || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return;
	/* A repeated LOOKUP by the same name costs one compare, no write. */
	if (m->nm_parent == parent && m->nm_len == len && memcmp(m->nm_name, name, len) == 0)
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

int nt_node_ref_named(struct nt_table *t, uint64_t dev, uint64_t ino, uint32_t mode, uint32_t owner,
		      uint64_t parent, const char *name, struct nt_node *out, bool *created)
{
	uint32_t b = nt_hash(dev, ino), slot, next, n;
	struct nt_ent *e;

	nt_lock(t);
	next = nt_node_next(t);
	slot = t->t_buckets[b];
	for (n = 0; slot != 0 && slot < next && n < NT_MAX_NODES; n++) {
		e = &t->t_nodes[slot];
		if (e->e_state == NT_LIVE && e->e_dev == dev && e->e_ino == ino) {
			if (e->e_nlookup < UINT64_MAX)
				e->e_nlookup++;
			nt_name_set(t, slot, parent, name);
			nt_node_copy(e, slot, out);
			nt_unlock(t);
			*created = false;
			return 0;
		}
		slot = e->e_link;
	}
	slot = nt_node_alloc_slot(t);
	if (slot == 0) {
		nt_unlock(t);
		nt_log_full("node", NT_MAX_NODES - NT_FIRST_SLOT);
		return -ENFILE;
	}
	e = &t->t_nodes[slot];
	e->e_nlookup = 1;
	e->e_dev = dev;
	e->e_ino = ino;
	e->e_mode = mode;
	e->e_owner = owner;
	e->e_state = NT_LIVE;
	e->e_link = t->t_buckets[b];
	t->t_buckets[b] = slot;
	t->t_names[slot].nm_parent = 0;
	nt_name_set(t, slot, parent, name);
	nt_node_copy(e, slot, out);
	nt_unlock(t);
	*created = true;
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
	uint32_t slot, next, n;
	struct nt_ent *e;

	nt_lock(t);
	next = nt_node_next(t);
	slot = t->t_buckets[nt_hash(dev, ino)];
	for (n = 0; slot != 0 && slot < next && n < NT_MAX_NODES; n++) {
		e = &t->t_nodes[slot];
		if (e->e_state == NT_LIVE && e->e_dev == dev && e->e_ino == ino) {
			nt_node_copy(e, slot, out);
			nt_unlock(t);
			return 0;
		}
		slot = e->e_link;
	}
	nt_unlock(t);
	return -ENOENT;
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
	int r = 0;

	nt_lock(t);
	e = nt_node_lookup_id(t, id);
	if (!e || id == NT_ROOT_ID) {
		r = -ESTALE;
	} else {
		m = &t->t_names[nt_slot(id)];
		/* Every worker may write here: re-check the length. */
		if (m->nm_parent == 0 || m->nm_len == 0 || m->nm_len > NT_NAME_MAX) {
			r = -ENOENT;
		} else {
			*parent = m->nm_parent;
			memcpy(name, m->nm_name, m->nm_len);
			name[m->nm_len] = '\0';
		}
	}
	nt_unlock(t);
	return r;
}

int nt_node_forget(struct nt_table *t, uint64_t id, uint64_t nlookup, bool *dead, uint32_t *owner)
{
	struct nt_ent *e;

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
	e->e_nlookup -= nlookup < e->e_nlookup ? nlookup : e->e_nlookup;
	if (e->e_nlookup == 0) {
		/* Out of the index now, so a new LOOKUP makes a new node even
		 * before the owner gets round to closing the descriptor. */
		nt_hash_remove(t, nt_slot(id));
		e->e_state = NT_DYING;
		*dead = true;
		*owner = e->e_owner;
	}
	nt_unlock(t);
	return 0;
}

void nt_node_free(struct nt_table *t, uint64_t id)
{
	uint32_t slot = nt_slot(id);
	struct nt_ent *e;

	if (slot < NT_FIRST_SLOT)
		return; /* slot 0 is invalid, the root is never freed */
	nt_lock(t);
	if (slot >= nt_node_next(t)) {
		nt_unlock(t);
		return;
	}
	e = &t->t_nodes[slot];
	if (e->e_state == NT_FREE || e->e_gen != id >> NT_SLOT_BITS) {
		nt_unlock(t);
		return;
	}
	if (e->e_state == NT_LIVE)
		nt_hash_remove(t, slot);
	e->e_state = NT_FREE;
	e->e_nlookup = 0;
	/* A slot whose generation is exhausted is retired, never reused. */
	if (e->e_gen < NT_GEN_MAX) {
		e->e_link = t->t_hdr->h_node_free;
		t->t_hdr->h_node_free = slot;
	}
	nt_unlock(t);
}

#ifdef NT_TEST_HOOKS
/* Tests only: hold the lock across a process death. */
void nt_test_lock(struct nt_table *t);
void nt_test_unlock(struct nt_table *t);

void nt_test_lock(struct nt_table *t)
{
	nt_lock(t);
}

void nt_test_unlock(struct nt_table *t)
{
	nt_unlock(t);
}
#endif

#ifdef BH_TEST_HOOKS
/* --test-die-holding-nt-lock: a worker takes the lock and dies with it. */
void nt_test_hold_lock(struct nt_table *t);

void nt_test_hold_lock(struct nt_table *t)
{
	nt_lock(t);
}
#endif
