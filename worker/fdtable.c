/*
 * fdtable.c - this worker's descriptors for nodes and file handles: the ones
 * it owns (it opened them) and the ones it borrowed from their owners through
 * peer.c (same open file description), cached and evicted first-in
 * first-out.
 * Runs in: the worker, from the loop and the pool threads (one mutex, held
 * only for memory updates; closes happen after it is dropped, peer requests
 * never under it). Trust: ids come from the guest and are validated against
 * the node table before any descriptor is handed out; an entry remembers the
 * generation it was made for, so a reused slot never returns an old file.
 *
 * Entries live in two sparse arrays indexed by slot (anonymous mappings:
 * pages appear as slots are used). Every entry is on one of two lists:
 * owned (walked by fdt_reset) or cached (the eviction order). A descriptor
 * handed out by fdt_*_get carries a reference; discarding a referenced one
 * only marks it, and the last fdt_put closes it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fdtable.h"
#include "log.h"
#include "node_table.h"
#include "peer.h"
#include "util.h"

/* List handle: slot, with this bit for the file-handle space; 0 = none
 * (slot 0 is invalid in both spaces). */
#define FDT_FH_BIT 0x80000000u

enum fdt_kind { FDT_EMPTY = 0, FDT_OWNED = 1, FDT_CACHED = 2 };

struct fdt_ent {
	int32_t e_fd; /* descriptor + 1, so zero pages read as empty */
	uint32_t e_kind;
	uint64_t e_gen;
	uint32_t e_prev;
	uint32_t e_next;
};

struct fdt_list {
	uint32_t l_head;
	uint32_t l_tail;
	unsigned l_count;
};

struct fdt_ref {
	uint32_t r_refs;
	uint32_t r_doomed; /* close at the last fdt_put */
};

/* Descriptors to close once the mutex is dropped. */
struct fdt_closer {
	int c_fd[8];
	unsigned c_n;
};

struct fdt {
	pthread_mutex_t t_lock;
	struct nt_table *t_nt;
	struct peer *t_peer;
	uint32_t t_self;
	int t_root;
	unsigned t_cache_max;
	uint64_t t_epoch;
	struct fdt_ent *t_nodes; /* NT_MAX_NODES */
	struct fdt_ent *t_fhs;	 /* NT_MAX_FHS */
	struct fdt_list t_owned;
	struct fdt_list t_cached;
	struct fdt_ref *t_refs; /* indexed by descriptor number */
	size_t t_nrefs;
};

#define FDT_NODES_SIZE ((size_t)NT_MAX_NODES * sizeof(struct fdt_ent))
#define FDT_FHS_SIZE   ((size_t)NT_MAX_FHS * sizeof(struct fdt_ent))

static struct fdt_ent *fdt_h2e(struct fdt *t, uint32_t h)
{
	if (h & FDT_FH_BIT)
		return &t->t_fhs[h & ~FDT_FH_BIT];
	return &t->t_nodes[h];
}

static void fdt_list_append(struct fdt *t, struct fdt_list *l, uint32_t h)
{
	struct fdt_ent *e = fdt_h2e(t, h);

	e->e_prev = l->l_tail;
	e->e_next = 0;
	if (l->l_tail)
		fdt_h2e(t, l->l_tail)->e_next = h;
	else
		l->l_head = h;
	l->l_tail = h;
	l->l_count++;
}

static void fdt_list_remove(struct fdt *t, struct fdt_list *l, uint32_t h)
{
	struct fdt_ent *e = fdt_h2e(t, h);

	if (e->e_prev)
		fdt_h2e(t, e->e_prev)->e_next = e->e_next;
	else
		l->l_head = e->e_next;
	if (e->e_next)
		fdt_h2e(t, e->e_next)->e_prev = e->e_prev;
	else
		l->l_tail = e->e_prev;
	e->e_prev = e->e_next = 0;
	l->l_count--;
}

static void fdt_closer_flush(struct fdt_closer *c)
{
	for (unsigned i = 0; i < c->c_n; i++)
		close(c->c_fd[i]);
	c->c_n = 0;
}

/* Locked. Make room in the reference map for descriptor fd. */
static int fdt_refs_grow(struct fdt *t, int fd)
{
	struct fdt_ref *r;
	size_t n;

	if ((size_t)fd < t->t_nrefs)
		return 0;
	n = t->t_nrefs ? t->t_nrefs : 64;
	while (n <= (size_t)fd)
		n *= 2;
	if (!(r = realloc(t->t_refs, n * sizeof(*r))))
		return -ENOMEM;
	memset(r + t->t_nrefs, 0, (n - t->t_nrefs) * sizeof(*r));
	t->t_refs = r;
	t->t_nrefs = n;
	return 0;
}

/* Locked. The descriptor left the table: close it now, or at the last put. */
static void fdt_discard(struct fdt *t, int fd, struct fdt_closer *c)
{
	if ((size_t)fd < t->t_nrefs && t->t_refs[fd].r_refs > 0) {
		t->t_refs[fd].r_doomed = 1;
		return;
	}
	if (c && c->c_n < BH_ARRAY_SIZE(c->c_fd))
		c->c_fd[c->c_n++] = fd;
	else
		close(fd);
}

/* Locked. Empty an entry, discarding its descriptor. */
static void fdt_clear(struct fdt *t, uint32_t h, struct fdt_closer *c)
{
	struct fdt_ent *e = fdt_h2e(t, h);

	if (e->e_kind == FDT_EMPTY)
		return;
	fdt_list_remove(t, e->e_kind == FDT_OWNED ? &t->t_owned : &t->t_cached, h);
	fdt_discard(t, e->e_fd - 1, c);
	e->e_fd = 0;
	e->e_kind = FDT_EMPTY;
}

/* Locked. Fill an (empty) entry. */
static void fdt_fill(struct fdt *t, uint32_t h, int fd, uint64_t gen, enum fdt_kind kind)
{
	struct fdt_ent *e = fdt_h2e(t, h);

	e->e_fd = fd + 1;
	e->e_gen = gen;
	e->e_kind = kind;
	fdt_list_append(t, kind == FDT_OWNED ? &t->t_owned : &t->t_cached, h);
}

static void fdt_reset_locked(struct fdt *t)
{
	/* Many descriptors, rarely: closed right here. */
	while (t->t_owned.l_head)
		fdt_clear(t, t->t_owned.l_head, NULL);
	while (t->t_cached.l_head)
		fdt_clear(t, t->t_cached.l_head, NULL);
}

/* Lock and drop everything first if the session was reset elsewhere. */
static void fdt_lock(struct fdt *t)
{
	uint64_t e;

	pthread_mutex_lock(&t->t_lock);
	e = nt_epoch(t->t_nt);
	if (e != t->t_epoch) {
		fdt_reset_locked(t);
		__atomic_store_n(&t->t_epoch, e, __ATOMIC_RELAXED);
	}
}

static void fdt_unlock(struct fdt *t, struct fdt_closer *c)
{
	pthread_mutex_unlock(&t->t_lock);
	if (c)
		fdt_closer_flush(c);
}

/* Catch up with a reset before answering even for an id that fails. */
static void fdt_sync(struct fdt *t)
{
	if (nt_epoch(t->t_nt) != __atomic_load_n(&t->t_epoch, __ATOMIC_RELAXED)) {
		fdt_lock(t);
		fdt_unlock(t, NULL);
	}
}

/* The list handle for an id, or 0 if its slot is out of range. */
static uint32_t fdt_handle(uint64_t id, bool fh)
{
	uint32_t slot = nt_slot(id);

	if (fh)
		return slot > 0 && slot < NT_MAX_FHS ? (slot | FDT_FH_BIT) : 0;
	return slot > NT_ROOT_ID ? slot : 0;
}

struct fdt *fdt_create(struct nt_table *nt, uint32_t self, int root_fd, unsigned cache_max)
{
	struct fdt *t;

	if (!(t = calloc(1, sizeof(*t))))
		return NULL;
	t->t_nodes = mmap(NULL, FDT_NODES_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	t->t_fhs = mmap(NULL, FDT_FHS_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (t->t_nodes == MAP_FAILED || t->t_fhs == MAP_FAILED) {
		if (t->t_nodes != MAP_FAILED)
			munmap(t->t_nodes, FDT_NODES_SIZE);
		if (t->t_fhs != MAP_FAILED)
			munmap(t->t_fhs, FDT_FHS_SIZE);
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&t->t_lock, NULL);
	t->t_nt = nt;
	t->t_self = self;
	t->t_root = root_fd;
	t->t_cache_max = cache_max;
	t->t_epoch = nt_epoch(nt);
	return t;
}

void fdt_destroy(struct fdt *t)
{
	if (!t)
		return;
	/* Everything but the root, which the caller opened and closes. */
	pthread_mutex_lock(&t->t_lock);
	fdt_reset_locked(t);
	pthread_mutex_unlock(&t->t_lock);
	for (size_t i = 0; i < t->t_nrefs; i++)
		if (t->t_refs[i].r_doomed)
			close((int)i);
	munmap(t->t_nodes, FDT_NODES_SIZE);
	munmap(t->t_fhs, FDT_FHS_SIZE);
	pthread_mutex_destroy(&t->t_lock);
	free(t->t_refs);
	free(t);
}

void fdt_set_peer(struct fdt *t, struct peer *p)
{
	pthread_mutex_lock(&t->t_lock);
	t->t_peer = p;
	pthread_mutex_unlock(&t->t_lock);
}

/* On error the caller keeps fd. */
static int fdt_install(struct fdt *t, uint64_t id, bool fh, int fd)
{
	struct fdt_closer c = {.c_n = 0};
	uint32_t h = fdt_handle(id, fh);

	if (!h)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	fdt_lock(t);
	/* An older generation's descriptor (its release got lost) goes. */
	fdt_clear(t, h, &c);
	fdt_fill(t, h, fd, id >> NT_SLOT_BITS, FDT_OWNED);
	fdt_unlock(t, &c);
	return 0;
}

int fdt_node_install(struct fdt *t, uint64_t nodeid, int fd)
{
	return fdt_install(t, nodeid, false, fd);
}

int fdt_fh_install(struct fdt *t, uint64_t fh, int fd)
{
	return fdt_install(t, fh, true, fd);
}

void fdt_node_offer(struct fdt *t, uint64_t nodeid, int fd)
{
	struct fdt_closer c = {.c_n = 0};
	uint32_t h = fdt_handle(nodeid, false);
	struct fdt_ent *e;

	if (fd < 0)
		return;
	if (!h) {
		close(fd);
		return;
	}
	fdt_lock(t);
	e = fdt_h2e(t, h);
	if (e->e_kind != FDT_EMPTY && e->e_gen == nodeid >> NT_SLOT_BITS) {
		fdt_discard(t, fd, &c); /* already have one */
	} else {
		fdt_clear(t, h, &c);
		if (t->t_cached.l_count < t->t_cache_max)
			fdt_fill(t, h, fd, nodeid >> NT_SLOT_BITS, FDT_CACHED);
		else
			fdt_discard(t, fd, &c);
	}
	fdt_unlock(t, &c);
}

/* Locked. Hand out fd with a reference. */
static int fdt_ref(struct fdt *t, int fd)
{
	int r = fdt_refs_grow(t, fd);

	if (r < 0)
		return r;
	t->t_refs[fd].r_refs++;
	return 0;
}

static int fdt_get(struct fdt *t, uint64_t id, bool fh, uint32_t owner, bool nowait, int *out)
{
	struct fdt_closer c = {.c_n = 0};
	uint32_t h = fdt_handle(id, fh);
	uint64_t gen = id >> NT_SLOT_BITS, epoch;
	struct fdt_ent *e;
	struct peer *p;
	int fd, r;

	if (!h)
		return fh ? -EBADF : -ESTALE;
	fdt_lock(t);
	e = fdt_h2e(t, h);
	if (e->e_kind != FDT_EMPTY) {
		if (e->e_gen == gen) {
			fd = e->e_fd - 1;
			r = fdt_ref(t, fd);
			fdt_unlock(t, NULL);
			if (r == 0)
				*out = fd;
			return r;
		}
		fdt_clear(t, h, &c); /* the slot was reused */
	}
	p = t->t_peer;
	epoch = t->t_epoch;
	fdt_unlock(t, &c);

	if (owner == t->t_self) {
		log_warnx("%s %#llx: owned here but no descriptor", fh ? "handle" : "node",
			  (unsigned long long)id);
		return -EIO;
	}
	if (!p)
		return -EIO;
	if (nowait)
		return -EWOULDBLOCK; /* only the owner has it: a blocking round trip */
	fd = fh ? peer_get_fh_fd(p, owner, id) : peer_get_node_fd(p, owner, id);
	if (fd < 0) {
		log_debug("%s %#llx: owner q%u cannot provide it (%d)", fh ? "handle" : "node",
			  (unsigned long long)id, owner, fd);
		return -EIO;
	}

	fdt_lock(t);
	if (t->t_epoch != epoch) {
		/* The session was reset while we asked: the id is gone. */
		fdt_unlock(t, NULL);
		close(fd);
		return fh ? -EBADF : -ESTALE;
	}
	if ((r = fdt_refs_grow(t, fd)) < 0) {
		fdt_unlock(t, NULL);
		close(fd);
		return r;
	}
	if (e->e_kind != FDT_EMPTY && e->e_gen == gen) {
		/* Another thread fetched it meanwhile: keep one. */
		fdt_discard(t, fd, &c);
		fd = e->e_fd - 1;
		if ((r = fdt_ref(t, fd)) < 0) {
			fdt_unlock(t, &c);
			return r;
		}
	} else {
		fdt_clear(t, h, &c);
		fdt_fill(t, h, fd, gen, FDT_CACHED);
		t->t_refs[fd].r_refs++;
		/* Over the bound: the oldest go first (a referenced one is
		 * closed by its last fdt_put). */
		while (t->t_cached.l_count > t->t_cache_max)
			fdt_clear(t, t->t_cached.l_head, &c);
	}
	fdt_unlock(t, &c);
	*out = fd;
	return 0;
}

static int fdt_node_lookup(struct fdt *t, uint64_t nodeid, bool nowait, int *fd)
{
	struct nt_node n;
	int r;

	fdt_sync(t);
	if (nodeid == NT_ROOT_ID) {
		fdt_lock(t);
		r = fdt_ref(t, t->t_root);
		fdt_unlock(t, NULL);
		if (r == 0)
			*fd = t->t_root;
		return r;
	}
	if (nt_node_get(t->t_nt, nodeid, &n) < 0)
		return -ESTALE;
	return fdt_get(t, nodeid, false, n.n_owner, nowait, fd);
}

static int fdt_fh_lookup(struct fdt *t, uint64_t fh, bool nowait, int *fd)
{
	struct nt_fh f;

	fdt_sync(t);
	if (nt_fh_get(t->t_nt, fh, &f) < 0)
		return -EBADF;
	return fdt_get(t, fh, true, f.f_owner, nowait, fd);
}

int fdt_node_get(struct fdt *t, uint64_t nodeid, int *fd)
{
	return fdt_node_lookup(t, nodeid, false, fd);
}

int fdt_fh_get(struct fdt *t, uint64_t fh, int *fd)
{
	return fdt_fh_lookup(t, fh, false, fd);
}

int fdt_node_get_nowait(struct fdt *t, uint64_t nodeid, int *fd)
{
	return fdt_node_lookup(t, nodeid, true, fd);
}

int fdt_fh_get_nowait(struct fdt *t, uint64_t fh, int *fd)
{
	return fdt_fh_lookup(t, fh, true, fd);
}

void fdt_put(struct fdt *t, int fd)
{
	struct fdt_ref *r;
	bool doomed = false;

	pthread_mutex_lock(&t->t_lock);
	if (fd < 0 || (size_t)fd >= t->t_nrefs || t->t_refs[fd].r_refs == 0) {
		pthread_mutex_unlock(&t->t_lock);
		log_warnx("%s: descriptor %d holds no reference", __func__, fd);
		return;
	}
	r = &t->t_refs[fd];
	if (--r->r_refs == 0 && r->r_doomed) {
		r->r_doomed = 0;
		doomed = true;
	}
	pthread_mutex_unlock(&t->t_lock);
	if (doomed)
		close(fd);
}

/* Empty the entry for id if it holds that generation; true if it was owned. */
static bool fdt_drop(struct fdt *t, uint64_t id, bool fh, bool owned_only)
{
	struct fdt_closer c = {.c_n = 0};
	uint32_t h = fdt_handle(id, fh);
	struct fdt_ent *e;
	bool owned = false;

	if (!h)
		return false;
	fdt_lock(t);
	e = fdt_h2e(t, h);
	if (e->e_kind != FDT_EMPTY && e->e_gen == id >> NT_SLOT_BITS &&
	    (!owned_only || e->e_kind == FDT_OWNED)) {
		owned = e->e_kind == FDT_OWNED;
		fdt_clear(t, h, &c);
	}
	fdt_unlock(t, &c);
	return owned;
}

void fdt_node_drop(struct fdt *t, uint64_t nodeid)
{
	if (fdt_drop(t, nodeid, false, false))
		nt_node_free(t->t_nt, nodeid);
}

void fdt_fh_drop(struct fdt *t, uint64_t fh)
{
	fdt_drop(t, fh, true, false);
}

void fdt_reset(struct fdt *t)
{
	pthread_mutex_lock(&t->t_lock);
	fdt_reset_locked(t);
	__atomic_store_n(&t->t_epoch, nt_epoch(t->t_nt), __ATOMIC_RELAXED);
	pthread_mutex_unlock(&t->t_lock);
}

static int fdt_provide(struct fdt *t, uint64_t id, bool fh)
{
	uint32_t h = fdt_handle(id, fh);
	struct fdt_ent *e;
	int fd = -1, r;

	fdt_lock(t);
	if (!fh && id == NT_ROOT_ID) {
		fd = t->t_root;
	} else if (h) {
		e = fdt_h2e(t, h);
		if (e->e_kind == FDT_OWNED && e->e_gen == id >> NT_SLOT_BITS)
			fd = e->e_fd - 1;
	}
	/* One quick dup under the lock keeps the descriptor from closing. */
	r = fd < 0 ? (fh ? -EBADF : -ESTALE) : fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (r < 0 && fd >= 0)
		r = -errno;
	fdt_unlock(t, NULL);
	return r;
}

int fdt_provide_node_fd(void *t, uint64_t nodeid)
{
	return fdt_provide(t, nodeid, false);
}

int fdt_provide_fh_fd(void *t, uint64_t fh)
{
	return fdt_provide(t, fh, true);
}

void fdt_release_node(void *t, uint64_t nodeid)
{
	struct fdt *ft = t;

	if (fdt_drop(ft, nodeid, false, true))
		nt_node_free(ft->t_nt, nodeid);
}

void fdt_release_fh(void *t, uint64_t fh)
{
	struct fdt *ft = t;

	if (fdt_drop(ft, fh, true, true))
		nt_fh_free(ft->t_nt, fh); /* -EBADF if the releaser freed it */
}
