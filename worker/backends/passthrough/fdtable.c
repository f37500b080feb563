/*
 * fdtable.c - this worker's descriptors for nodes and file handles: the ones
 * it owns (it opened them) and the ones it borrowed from their owners through
 * peer.c (same open file description), cached and evicted least recently
 * used first.
 * Runs in: the worker, from the loop and the pool threads (one mutex, held
 * only for memory updates; closes happen after it is dropped, peer requests
 * never under it). Trust: ids come from the guest and are validated against
 * the node table before any descriptor is handed out; an entry remembers the
 * generation it was made for, so a reused slot never returns an old file.
 *
 * Entries live in two sparse arrays indexed by slot (anonymous mappings:
 * pages appear as slots are used). Every entry is on one of two lists:
 * pinned (never evicted) or lru (evicted least recently used first). The
 * table holds at most t_max descriptors in all, sized from RLIMIT_NOFILE,
 * because a guest may hold far more nodes than a host lets us keep open.
 *
 * A node descriptor is only a name for an inode, so any worker can make a
 * new one: the node table keeps (parent node, name) of the link the node
 * was looked up by, and a miss reopens that name under the parent's
 * descriptor (itself reopened if need be; the root is always held) and
 * checks (dev, ino). Hence node descriptors are evictable whoever "owns"
 * them. Pinned are: open file handles this worker owns (the open file
 * description is the state), node entries without a reopen name (".." and
 * TMPFILE results), and the node entries of files this worker holds open: an
 * unlinked file has no name left to reopen by, and its node descriptor must
 * survive for as long as the guest can still reach it through a handle. An
 * unlinked node without open handles whose descriptor was evicted answers
 * ESTALE, which is what the guest's dentry for a deleted file deserves.
 *
 * A descriptor handed out by fdt_*_get carries a reference; discarding a
 * referenced one only marks it, and the last fdt_put closes it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
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

/* Ancestors reopened in one go at most (each level costs a name buffer on
 * a pool thread's stack); deeper chains of evicted directories get ESTALE. */
#define FDT_REOPEN_DEPTH 48

struct fdt_ent {
	int32_t e_fd; /* descriptor + 1, so zero pages read as empty */
	uint32_t e_kind;
	uint64_t e_gen;
	uint32_t e_prev;
	uint32_t e_next;
	uint32_t e_lru;	  /* on t_lru (else t_pinned) */
	uint32_t e_pins;  /* nodes: open handles of this worker on it */
	uint32_t e_named; /* owned nodes: reopenable, so evictable */
	uint32_t e_pad;
	uint64_t e_node; /* owned handles: the node they pin */
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
	unsigned t_max; /* descriptors held, pinned + lru */
	uint64_t t_epoch;
	time_t t_full_logged;
	struct fdt_ent *t_nodes; /* NT_MAX_NODES */
	struct fdt_ent *t_fhs;	 /* NT_MAX_FHS */
	struct fdt_list t_pinned;
	struct fdt_list t_lru;
	struct fdt_ref *t_refs; /* indexed by descriptor number */
	size_t t_nrefs;
	bool t_slow_borrow; /* test hook, see fdt_test_slow_borrow */
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

/* Locked. May this filled entry be evicted? */
static bool fdt_evictable(const struct fdt_ent *e, uint32_t h)
{
	if (h & FDT_FH_BIT)
		return e->e_kind == FDT_CACHED; /* a borrowed duplicate */
	return e->e_pins == 0 && (e->e_kind == FDT_CACHED || e->e_named);
}

/* Locked. Put a filled entry on the list its state calls for. */
static void fdt_place(struct fdt *t, uint32_t h)
{
	struct fdt_ent *e = fdt_h2e(t, h);
	bool lru = fdt_evictable(e, h);

	if (e->e_lru == (uint32_t)lru)
		return;
	fdt_list_remove(t, e->e_lru ? &t->t_lru : &t->t_pinned, h);
	e->e_lru = lru;
	fdt_list_append(t, lru ? &t->t_lru : &t->t_pinned, h);
}

/* Locked. A node's pin count changes by delta (its handles come and go). */
static void fdt_pin(struct fdt *t, uint64_t nodeid, int delta)
{
	uint32_t slot = nt_slot(nodeid);
	struct fdt_ent *e;

	if (slot <= NT_ROOT_ID)
		return;
	e = &t->t_nodes[slot];
	if (e->e_kind == FDT_EMPTY || e->e_gen != nodeid >> NT_SLOT_BITS)
		return;
	if (delta > 0)
		e->e_pins++;
	else if (e->e_pins > 0)
		e->e_pins--;
	fdt_place(t, slot);
}

/* Locked. Empty an entry, discarding its descriptor. */
static void fdt_clear(struct fdt *t, uint32_t h, struct fdt_closer *c)
{
	struct fdt_ent *e = fdt_h2e(t, h);
	uint64_t node = 0;

	if (e->e_kind == FDT_EMPTY)
		return;
	fdt_list_remove(t, e->e_lru ? &t->t_lru : &t->t_pinned, h);
	fdt_discard(t, e->e_fd - 1, c);
	if ((h & FDT_FH_BIT) && e->e_kind == FDT_OWNED)
		node = e->e_node;
	e->e_fd = 0;
	e->e_kind = FDT_EMPTY;
	e->e_lru = e->e_pins = e->e_named = 0;
	e->e_node = 0;
	if (node)
		fdt_pin(t, node, -1);
}

/* Locked. Make room for one more descriptor: the least recently used
 * evictable ones go (a referenced one is closed by its last fdt_put). */
static void fdt_make_room(struct fdt *t, struct fdt_closer *c)
{
	while (t->t_pinned.l_count + t->t_lru.l_count >= t->t_max && t->t_lru.l_head)
		fdt_clear(t, t->t_lru.l_head, c);
}

/* Locked. Fill an (empty) entry. */
static void fdt_fill(struct fdt *t, uint32_t h, int fd, uint64_t gen, enum fdt_kind kind,
		     bool named, struct fdt_closer *c)
{
	struct fdt_ent *e = fdt_h2e(t, h);

	fdt_make_room(t, c);
	e->e_fd = fd + 1;
	e->e_gen = gen;
	e->e_kind = kind;
	e->e_pins = 0;
	e->e_named = named;
	e->e_lru = fdt_evictable(e, h);
	fdt_list_append(t, e->e_lru ? &t->t_lru : &t->t_pinned, h);
}

/* Locked. A hit: the entry becomes the most recently used. */
static void fdt_touch(struct fdt *t, uint32_t h)
{
	struct fdt_ent *e = fdt_h2e(t, h);

	if (!e->e_lru || t->t_lru.l_tail == h)
		return;
	fdt_list_remove(t, &t->t_lru, h);
	fdt_list_append(t, &t->t_lru, h);
}

static void fdt_reset_locked(struct fdt *t)
{
	/* Many descriptors, rarely: closed right here. */
	while (t->t_pinned.l_head)
		fdt_clear(t, t->t_pinned.l_head, NULL);
	while (t->t_lru.l_head)
		fdt_clear(t, t->t_lru.l_head, NULL);
}

/* An operator-facing line when a bound is hit, at most one a minute. */
static void fdt_log_full(struct fdt *t, const char *what)
{
	if (!bh_ratelimit(&t->t_full_logged, 60))
		return;
	log_warnx("out of descriptors (%s): %u held, %u pinned; the guest gets ENFILE (raise "
		  "--rlimit-nofile)",
		  what, t->t_pinned.l_count + t->t_lru.l_count, t->t_pinned.l_count);
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

/*
 * How many descriptors the table may hold: the soft RLIMIT_NOFILE (the
 * daemon raised it as far as it could) less a reserve for what is open
 * besides (ring, eventfds, IPC and peer channels, memory region fds, the
 * root, the descriptors pool threads open for a moment). 'cap' (0: none)
 * lowers it further; never more than the limit allows, or the guest would
 * see EMFILE where eviction could have made room.
 */
static unsigned fdt_bound(unsigned cap)
{
	struct rlimit rl;
	uint64_t soft, reserve;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return cap ? cap : 1024;
	soft = rl.rlim_cur == RLIM_INFINITY ? (uint64_t)1 << 30 : rl.rlim_cur;
	reserve = 192 + soft / 8;
	if (soft < reserve + 64)
		return 64; /* a tiny limit: little, but something */
	soft -= reserve;
	if (soft > (uint64_t)NT_MAX_NODES + NT_MAX_FHS)
		soft = (uint64_t)NT_MAX_NODES + NT_MAX_FHS;
	return cap && cap < soft ? cap : (unsigned)soft;
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
	t->t_max = fdt_bound(cache_max);
	t->t_epoch = nt_epoch(nt);
	log_debug("descriptor table: at most %u descriptors", t->t_max);
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
static int fdt_install(struct fdt *t, uint64_t id, bool fh, int fd, bool named, uint64_t node)
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
	fdt_fill(t, h, fd, id >> NT_SLOT_BITS, FDT_OWNED, named, &c);
	if (fh && node) {
		fdt_h2e(t, h)->e_node = node;
		fdt_pin(t, node, +1);
	}
	fdt_unlock(t, &c);
	return 0;
}

int fdt_node_install(struct fdt *t, uint64_t nodeid, int fd)
{
	return fdt_install(t, nodeid, false, fd, false, 0);
}

int fdt_node_install_named(struct fdt *t, uint64_t nodeid, int fd)
{
	return fdt_install(t, nodeid, false, fd, true, 0);
}

int fdt_fh_install(struct fdt *t, uint64_t fh, int fd)
{
	struct nt_fh f;

	/* The handle's node keeps its descriptor here while the handle lives
	 * (see the top of the file); the node entry is normally present, the
	 * OPEN that made the handle has just used it. */
	if (nt_fh_get(t->t_nt, fh, &f) < 0)
		f.f_node = 0;
	return fdt_install(t, fh, true, fd, false, f.f_node);
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
		/* Not worth an eviction: whoever needs it can reopen it. */
		if (t->t_pinned.l_count + t->t_lru.l_count < t->t_max)
			fdt_fill(t, h, fd, nodeid >> NT_SLOT_BITS, FDT_CACHED, true, &c);
		else
			fdt_discard(t, fd, &c);
	}
	fdt_unlock(t, &c);
}

bool fdt_node_held(struct fdt *t, uint64_t nodeid)
{
	uint32_t h = fdt_handle(nodeid, false);
	struct fdt_ent *e;
	bool held;

	if (!h)
		return false;
	fdt_lock(t);
	e = fdt_h2e(t, h);
	held = e->e_kind != FDT_EMPTY && e->e_gen == nodeid >> NT_SLOT_BITS;
	fdt_unlock(t, NULL);
	return held;
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

static int fdt_node_lookup(struct fdt *t, uint64_t nodeid, bool nowait, unsigned depth, int *fd);

/*
 * A new descriptor for a node from its name in the node table: 0, -ENOENT
 * when it has no name, -ESTALE when the name no longer leads to it,
 * -ENFILE when we are out of descriptors.
 */
static int fdt_reopen(struct fdt *t, uint64_t id, unsigned depth, int *out)
{
	char name[NT_NAME_MAX + 1];
	struct nt_node n;
	struct stat st;
	uint64_t parent;
	int pfd, fd, r;

	if (depth >= FDT_REOPEN_DEPTH)
		return -ESTALE;
	if ((r = nt_node_name(t->t_nt, id, &parent, name)) < 0)
		return r;
	if (parent == id)
		return -ESTALE; /* a corrupt table, not a loop to follow */
	if ((r = fdt_node_lookup(t, parent, false, depth + 1, &pfd)) < 0)
		return r == -ENFILE ? r : -ESTALE;
	fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	fdt_put(t, pfd);
	if (r == -EMFILE || r == -ENFILE) {
		fdt_log_full(t, "reopen");
		return -ENFILE;
	}
	if (r < 0)
		return -ESTALE;
	/* The name may lead somewhere else by now (renamed on the host, or
	 * unlinked and reused): only the same inode will do. */
	if (fstat(fd, &st) < 0 || nt_node_get(t->t_nt, id, &n) < 0 ||
	    (uint64_t)st.st_dev != n.n_dev || (uint64_t)st.st_ino != n.n_ino) {
		close(fd);
		return -ESTALE;
	}
	*out = fd;
	return 0;
}

static bool fdt_drop(struct fdt *t, uint64_t id, bool fh, bool owned_only);

static int fdt_get(struct fdt *t, uint64_t id, bool fh, uint32_t owner, bool nowait, unsigned depth,
		   int *out)
{
	struct fdt_closer c = {.c_n = 0};
	bool borrowed = false;
	uint32_t h = fdt_handle(id, fh);
	uint64_t gen = id >> NT_SLOT_BITS, epoch;
	struct fdt_ent *e;
	struct peer *p;
	struct nt_fh f;
	int fd, r;

	if (!h)
		return fh ? -EBADF : -ESTALE;
	fdt_lock(t);
	e = fdt_h2e(t, h);
	if (e->e_kind != FDT_EMPTY) {
		if (e->e_gen == gen) {
			fd = e->e_fd - 1;
			fdt_touch(t, h);
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

	if (nowait)
		return -EWOULDBLOCK; /* a reopen or a round trip to the owner */
	r = fh ? -ENOENT : fdt_reopen(t, id, depth, &fd);
	if (r == -ENFILE)
		return r;
	/* A name that no longer leads to the node (unlinked, renamed on the
	 * host) is ESTALE; no name at all means only a holder can help. */
	if (r < 0 && owner == t->t_self) {
		if (r != -ESTALE)
			log_warnx("%s %#llx: owned here but no descriptor", fh ? "handle" : "node",
				  (unsigned long long)id);
		return r == -ESTALE ? r : -EIO;
	}
	if (r < 0) {
		/* The owner may still hold it (pinned, or not evicted yet). */
		if (!p)
			return r == -ESTALE ? r : -EIO;
		/* A borrowed handle keeps the open file alive: RELEASE must
		 * find us (noted first, so a RELEASE from now on does). */
		if (fh && nt_fh_note_dup(t->t_nt, id, t->t_self) < 0)
			return -EBADF;
		fd = fh ? peer_get_fh_fd(p, owner, id) : peer_get_node_fd(p, owner, id);
		if (fd < 0) {
			log_debug("%s %#llx: owner q%u cannot provide it (%d)",
				  fh ? "handle" : "node", (unsigned long long)id, owner, fd);
			return r == -ESTALE ? r : -EIO;
		}
		if (fh && nt_fh_get(t->t_nt, id, &f) < 0) {
			close(fd); /* released while we asked */
			return -EBADF;
		}
		borrowed = fh;
		if (borrowed && t->t_slow_borrow)
			(void)nanosleep(&(struct timespec){.tv_nsec = 200 * 1000 * 1000}, NULL);
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
		fdt_fill(t, h, fd, gen, FDT_CACHED, true, &c);
		t->t_refs[fd].r_refs++;
	}
	fdt_unlock(t, &c);
	/* A RELEASE between the check above and the install told us to drop a
	 * handle we did not have yet; it freed the handle first, so look again. */
	if (borrowed && nt_fh_get(t->t_nt, id, &f) < 0) {
		fdt_put(t, fd);
		fdt_drop(t, id, true, false);
		return -EBADF;
	}
	*out = fd;
	return 0;
}

static int fdt_node_lookup(struct fdt *t, uint64_t nodeid, bool nowait, unsigned depth, int *fd)
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
	return fdt_get(t, nodeid, false, n.n_owner, nowait, depth, fd);
}

static int fdt_fh_lookup(struct fdt *t, uint64_t fh, bool nowait, int *fd)
{
	struct nt_fh f;

	fdt_sync(t);
	if (nt_fh_get(t->t_nt, fh, &f) < 0)
		return -EBADF;
	return fdt_get(t, fh, true, f.f_owner, nowait, 0, fd);
}

int fdt_node_get(struct fdt *t, uint64_t nodeid, int *fd)
{
	return fdt_node_lookup(t, nodeid, false, 0, fd);
}

int fdt_fh_get(struct fdt *t, uint64_t fh, int *fd)
{
	return fdt_fh_lookup(t, fh, false, fd);
}

int fdt_node_get_nowait(struct fdt *t, uint64_t nodeid, int *fd)
{
	return fdt_node_lookup(t, nodeid, true, 0, fd);
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
		/* Nodes: whatever we hold (an owned one may have been evicted
		 * and reopened since); handles: only the original. */
		if (e->e_gen == id >> NT_SLOT_BITS &&
		    (e->e_kind == FDT_OWNED || (!fh && e->e_kind == FDT_CACHED)))
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

	/* The owner frees the slot even if its descriptor was evicted; the
	 * generation check in nt_node_free keeps a reused slot safe. */
	fdt_drop(ft, nodeid, false, false);
	nt_node_free(ft->t_nt, nodeid);
}

/* The owner's descriptor or a borrowed duplicate: both go (a duplicate
 * alone keeps the file open on the host). */
void fdt_release_fh(void *t, uint64_t fh)
{
	struct fdt *ft = t;

	if (fdt_drop(ft, fh, true, false))
		nt_fh_free(ft->t_nt, fh); /* -EBADF: the releaser freed it */
}

#ifdef BH_TEST_HOOKS
void fdt_test_slow_borrow(struct fdt *t)
{
	t->t_slow_borrow = true;
}
#endif
