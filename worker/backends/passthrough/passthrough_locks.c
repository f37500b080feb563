/*
 * passthrough_locks.c - the guest's POSIX locks on host open file
 * description (OFD) locks and its flock()s on host flock()s: GETLK, SETLK,
 * SETLKW.
 * Runs in: the worker (sandboxed). Lock ranges were checked by the decoder;
 * lock owners are opaque guest numbers used only as keys.
 *
 * OFD locks conflict between open file descriptions, never within one, so
 * each guest lock owner gets its own description of the file: (node,
 * owner, flock?) -> a descriptor reopened through /proc/self/fd with the
 * handle's access mode. Two guests (two daemons) on one directory, and
 * host processes, then exclude each other like local processes do. A
 * flock() owner's description takes flock(2) locks, so POSIX locks and
 * flock()s do not see each other, as on a local Linux file system.
 *
 * Descriptions are the device's, not a queue's: a lock owner whose lock
 * arrives on one request queue and whose unlock arrives on another (a 6.11+
 * guest picks the queue by CPU) acts on one description. The node table
 * indexes them by (node, owner, kind) (nt_lock_*); the worker that made one
 * holds its descriptor in this file's table, and another worker borrows a
 * duplicate through peer.c for the one operation (a duplicate shares the
 * description, so its locks are the owner's), closing it right after. A
 * description is dropped device-wide (unpublished, then closed by its
 * holder) from whichever queue the unlock, FLUSH or RELEASE comes on.
 *
 * Descriptions go when their owner unlocks the whole file, when FLUSH
 * (close() in the guest) names the POSIX owner, when RELEASE carries
 * FUSE_RELEASE_FLOCK_UNLOCK for the flock owner, and at a session reset.
 *
 * A SETLKW that has to wait holds neither the queue nor a pool thread: the
 * attempt never waits (F_OFD_SETLK, LOCK_NB), and after EAGAIN it is retried
 * from a timer on the worker's loop, 1 ms doubling to 100 ms, the request
 * staying in flight. Waits end with EIO when the queue stops (RING_STOP,
 * at once: pt_locks_ring_stop) or the session is reset (DESTROY, re-INIT):
 * EIO because nobody is left to retry an EINTR and the lock was not taken.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "fdtable.h"
#include "log.h"
#include "node_table.h"
#include "passthrough.h"
#include "peer.h"
#include "threadpool.h"

#define PL_BUCKETS	 256
#define PL_WAIT_FIRST_MS 1
#define PL_WAIT_MAX_MS	 100

struct pl_ofd {
	LIST_ENTRY(pl_ofd) o_entry;
	uint64_t o_node;
	uint64_t o_owner;
	uint64_t o_id; /* the description's id in the node table */
	bool o_flock;
	bool o_listed; /* in the table (else only waiters still hold it) */
	bool o_remote; /* a duplicate borrowed from the worker that holds it */
	int o_fd;
	unsigned o_refs;
};

struct pl_wait {
	TAILQ_ENTRY(pl_wait) w_entry;
	struct pt *w_pt;
	struct fuse_req *w_req;
	struct pl_ofd *w_ofd;
	struct event *w_ev;
	struct flock w_fl;
	unsigned w_delay_ms;
	bool w_cancelled;
};

LIST_HEAD(pl_chain, pl_ofd);
TAILQ_HEAD(pl_waits, pl_wait);

/* One back end per worker process: the table is this process's. */
static pthread_mutex_t pl_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pl_chain pl_table[PL_BUCKETS];
static struct pl_waits pl_waiters = TAILQ_HEAD_INITIALIZER(pl_waiters); /* loop thread */
/* Set once by pt_locks_init, before any request. */
static struct nt_table *pl_nt;
static struct peer *pl_peer;
static uint32_t pl_self;

static unsigned pl_hash(uint64_t node, uint64_t owner)
{
	uint64_t h = node * 0x9e3779b97f4a7c15ull ^ owner * 0xc2b2ae3d27d4eb4full;

	return (unsigned)(h >> 56) % PL_BUCKETS;
}

static void pl_unref_locked(struct pl_ofd *o)
{
	if (--o->o_refs == 0) {
		close(o->o_fd); /* its locks go with the description */
		free(o);
	}
}

static void pl_unref(struct pl_ofd *o)
{
	pthread_mutex_lock(&pl_mu);
	pl_unref_locked(o);
	pthread_mutex_unlock(&pl_mu);
}

static void pl_unlist_locked(struct pl_ofd *o)
{
	if (!o->o_listed)
		return;
	LIST_REMOVE(o, o_entry);
	o->o_listed = false;
	pl_unref_locked(o);
}

static struct pl_ofd *pl_find_locked(uint64_t node, uint64_t owner, bool flock)
{
	struct pl_ofd *o;

	for (o = LIST_FIRST(&pl_table[pl_hash(node, owner)]); o; o = LIST_NEXT(o, o_entry))
		if (o->o_node == node && o->o_owner == owner && o->o_flock == flock)
			return o;
	return NULL;
}

static struct pl_ofd *pl_find_id_locked(uint64_t id)
{
	struct pl_ofd *o;

	for (unsigned i = 0; i < PL_BUCKETS; i++)
		for (o = LIST_FIRST(&pl_table[i]); o; o = LIST_NEXT(o, o_entry))
			if (o->o_id == id)
				return o;
	return NULL;
}

static uint32_t pl_kind(bool flock)
{
	return flock ? NT_FH_FLOCK : NT_FH_POSIX;
}

/* Drop the description of (node, owner) device-wide: its locks are
 * released. Ours is closed here; another worker's is unpublished at once
 * (nobody finds it any more) and its holder told to close it. */
static void pl_drop(uint64_t node, uint64_t owner, bool flock)
{
	struct pl_ofd *o;
	struct nt_fh f;
	uint64_t id = 0;
	int err;

	pthread_mutex_lock(&pl_mu);
	if ((o = pl_find_locked(node, owner, flock)) != NULL) {
		id = o->o_id;
		pl_unlist_locked(o);
	}
	pthread_mutex_unlock(&pl_mu);
	if (o) {
		(void)nt_lock_free(pl_nt, id);
		return;
	}
	if (nt_lock_find(pl_nt, node, owner, pl_kind(flock), &f) < 0 || f.f_owner == pl_self)
		return;
	if (nt_lock_free(pl_nt, f.f_id) < 0)
		return; /* dropped by someone else meanwhile */
	/* Wait for the close, so that the locks are gone when the guest gets
	 * its reply: the holder serves a channel in order, so the answer to a
	 * request sent after the release (-EBADF: no such description now)
	 * means the release has been handled. */
	if ((err = peer_release_fh(pl_peer, f.f_owner, f.f_id)) == 0) {
		int fd = peer_get_fh_fd(pl_peer, f.f_owner, f.f_id);
		if (fd >= 0)
			close(fd);
		err = fd == -EBADF || fd >= 0 ? 0 : fd;
	}
	if (err < 0)
		log_warnx("lock owner %#llx: holder q%u of its description unreachable: %s",
			  (unsigned long long)owner, f.f_owner, strerror(-err));
}

/* A new description of the file behind handle fh (pool thread), with the
 * handle's access mode (an OFD write lock needs a writable one, as a POSIX
 * write lock does locally; flock() needs none). */
static int pl_open(struct pt *pt, const struct be_caller *who, uint64_t node, uint64_t fh, int *out)
{
	struct nt_fh f;
	int hfd, fd, acc, err;

	if ((err = nt_fh_get(pt->pt_env.nt, fh, &f)) < 0)
		return err == -ESTALE ? -EBADF : err;
	if (f.f_node != node)
		return -EBADF; /* a handle of another file: a confused or hostile guest */
	acc = (int)(f.f_flags & O_ACCMODE);
	if ((err = fdt_fh_get(pt->pt_fdt, fh, &hfd)) < 0)
		return err;
	fd = pt_reopen(pt, who, node, hfd, acc | O_NONBLOCK, PT_REOPEN_FILE | PT_REOPEN_DIR);
	fdt_put(pt->pt_fdt, hfd);
	*out = fd;
	return fd < 0 ? fd : 0;
}

/* Another worker's description, borrowed for one operation (or one wait):
 * 0, 1 when it went away meanwhile (look again), or -errno. */
static int pl_borrow(const struct nt_fh *f, bool flock, struct pl_ofd **out)
{
	struct pl_ofd *o;
	int fd;

	fd = peer_get_fh_fd(pl_peer, f->f_owner, f->f_id);
	if (fd == -EBADF)
		return 1;
	if (fd < 0) {
		log_warnx("lock owner %#llx: holder q%u of its description unreachable: %s",
			  (unsigned long long)f->f_lock_owner, f->f_owner, strerror(-fd));
		return -ENOLCK;
	}
	if (!(o = calloc(1, sizeof(*o)))) {
		close(fd);
		return -ENOMEM;
	}
	o->o_node = f->f_node;
	o->o_owner = f->f_lock_owner;
	o->o_id = f->f_id;
	o->o_flock = flock;
	o->o_remote = true;
	o->o_fd = fd;
	o->o_refs = 1;
	*out = o;
	return 0;
}

/* A new description, ours: 0 with *out, 1 when another request of the same
 * owner (here or on another queue) got there first (look again), -errno. */
static int pl_create(struct pt *pt, const struct be_caller *who, const struct fuse_lk_in *in,
		     uint64_t node, bool flock, struct pl_ofd **out)
{
	struct nt_fh f, w;
	struct pl_ofd *n;
	int fd, err;

	if ((err = pl_open(pt, who, node, in->fh, &fd)) < 0)
		return err;
	if ((err = nt_lock_alloc(pl_nt, node, in->owner, pl_kind(flock), pl_self, &f)) < 0) {
		close(fd);
		return err;
	}
	if (!(n = calloc(1, sizeof(*n)))) {
		close(fd);
		(void)nt_lock_free(pl_nt, f.f_id);
		return -ENOMEM;
	}
	n->o_node = node;
	n->o_owner = in->owner;
	n->o_id = f.f_id;
	n->o_flock = flock;
	n->o_fd = fd;
	n->o_refs = 2; /* the table's and the caller's */
	n->o_listed = true;
	pthread_mutex_lock(&pl_mu);
	if (pl_find_locked(node, in->owner, flock)) {
		pthread_mutex_unlock(&pl_mu);
		(void)nt_lock_free(pl_nt, f.f_id);
		close(fd);
		free(n);
		return 1;
	}
	LIST_INSERT_HEAD(&pl_table[pl_hash(node, in->owner)], n, o_entry);
	pthread_mutex_unlock(&pl_mu);
	/* Listed before published: a peer asking for it finds it. */
	err = nt_lock_publish(pl_nt, f.f_id, &w);
	if (err == 0) {
		*out = n;
		return 0;
	}
	pthread_mutex_lock(&pl_mu);
	pl_unlist_locked(n);
	pthread_mutex_unlock(&pl_mu);
	pl_unref(n);
	(void)nt_lock_free(pl_nt, f.f_id);
	return err == 1 ? 1 : -ENOLCK;
}

/* The description of (node, owner) with a reference, wherever it lives;
 * created unless create is false (then NULL with 0 when there is none). */
static int pl_get(struct pt *pt, const struct be_caller *who, const struct fuse_lk_in *in,
		  uint64_t node, bool create, struct pl_ofd **out)
{
	bool flock = (in->lk_flags & FUSE_LK_FLOCK) != 0;
	struct pl_ofd *o;
	struct nt_fh f;
	int err;

	*out = NULL;
	/* Each retry follows a description that another request made or
	 * dropped meanwhile; a few settle any honest race. */
	for (int tries = 0; tries < 8; tries++) {
		pthread_mutex_lock(&pl_mu);
		if ((o = pl_find_locked(node, in->owner, flock)) != NULL)
			o->o_refs++;
		pthread_mutex_unlock(&pl_mu);
		if (o) {
			*out = o;
			return 0;
		}
		err = nt_lock_find(pl_nt, node, in->owner, pl_kind(flock), &f);
		if (err == 0 && f.f_owner != pl_self)
			err = pl_borrow(&f, flock, out);
		else if (err == 0)
			err = 1; /* ours, in the middle of being made or dropped */
		else if (!create)
			return 0;
		else
			err = pl_create(pt, who, in, node, flock, out);
		if (err != 1)
			return err;
	}
	return -ENOLCK;
}

static void pl_to_flock(const struct fuse_lk_in *in, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = (short)in->lk.type;
	fl->l_whence = SEEK_SET;
	if (in->lk_flags & FUSE_LK_FLOCK) {
		fl->l_start = 0;
		fl->l_len = 0; /* the whole file, like flock() */
		return;
	}
	fl->l_start = (off_t)in->lk.start;
	fl->l_len = in->lk.end == (uint64_t)INT64_MAX ? 0 : (off_t)(in->lk.end - in->lk.start + 1);
}

/* One attempt that never waits: 0, -EAGAIN (held elsewhere) or -errno. */
static int pl_try(const struct pl_ofd *o, struct flock *fl)
{
	int err, op;

	if (o->o_flock) {
		op = fl->l_type == F_UNLCK ? LOCK_UN : fl->l_type == F_RDLCK ? LOCK_SH : LOCK_EX;
		do
			err = flock(o->o_fd, op | LOCK_NB);
		while (err < 0 && errno == EINTR);
		return err == 0 ? 0 : errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
	fl->l_pid = 0; /* required for OFD locks */
	do
		err = fcntl(o->o_fd, F_OFD_SETLK, fl);
	while (err < 0 && errno == EINTR);
	if (err == 0)
		return 0;
	return errno == EACCES ? -EAGAIN : -errno;
}

/* ---- waiting SETLKW (loop thread) ---- */

static void pl_wait_end(struct pl_wait *w, int err)
{
	TAILQ_REMOVE(&pl_waiters, w, w_entry);
	event_free(w->w_ev);
	pl_unref(w->w_ofd);
	be_reply_err(w->w_req, err);
	free(w);
}

static void pl_wait_arm(struct pl_wait *w, unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(w->w_ev, &tv);
}

static void pl_wait_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pl_wait *w = arg;
	bool listed;
	int err;

	(void)fd;
	(void)what;
	if (w->w_cancelled || be_req_abandoned(w->w_req)) {
		pl_wait_end(w, -EIO);
		return;
	}
	if (w->w_ofd->o_remote) {
		struct nt_fh f;
		listed = nt_lock_find(pl_nt, w->w_ofd->o_node, w->w_ofd->o_owner,
				      pl_kind(w->w_ofd->o_flock), &f) == 0 &&
			 f.f_id == w->w_ofd->o_id;
	} else {
		pthread_mutex_lock(&pl_mu);
		listed = w->w_ofd->o_listed;
		pthread_mutex_unlock(&pl_mu);
	}
	if (!listed) {
		/* The owner closed the file meanwhile: a lock now would vanish. */
		pl_wait_end(w, -EIO);
		return;
	}
	err = pl_try(w->w_ofd, &w->w_fl);
	if (err != -EAGAIN) {
		pl_wait_end(w, err);
		return;
	}
	w->w_delay_ms = w->w_delay_ms * 2 > PL_WAIT_MAX_MS ? PL_WAIT_MAX_MS : w->w_delay_ms * 2;
	pl_wait_arm(w, w->w_delay_ms);
}

/* From the pool (tp_complete): start waiting on the loop. */
static void pl_wait_start(void *arg)
{
	struct pl_wait *w = arg;

	w->w_ev = evtimer_new(w->w_pt->pt_env.base, pl_wait_tick, w);
	if (!w->w_ev) {
		pl_unref(w->w_ofd);
		be_reply_err(w->w_req, -ENOLCK);
		free(w);
		return;
	}
	TAILQ_INSERT_TAIL(&pl_waiters, w, w_entry);
	w->w_delay_ms = PL_WAIT_FIRST_MS;
	pl_wait_arm(w, w->w_delay_ms);
}

/* ---- operations (pool threads) ---- */

static void pl_do_setlk(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	const struct fuse_lk_in *in = j->j_arg;
	bool unlock = in->lk.type == F_UNLCK;
	struct pl_ofd *o;
	struct pl_wait *w;
	struct flock fl;
	int err;

	if ((err = pl_get(j->j_pt, j->j_who, in, j->j_id, !unlock, &o)) < 0 || o == NULL)
		goto out; /* unlocking what was never locked is a success */
	pl_to_flock(in, &fl);
	err = pl_try(o, &fl);
	if (err == 0 && unlock && fl.l_start == 0 && fl.l_len == 0)
		/* Everything released: the description is no longer needed. */
		pl_drop(j->j_id, in->owner, o->o_flock);
	if (err == -EAGAIN && j->j_flags) {
		if (!(w = calloc(1, sizeof(*w)))) {
			err = -ENOLCK;
		} else {
			w->w_pt = j->j_pt;
			w->w_req = arg;
			w->w_ofd = o; /* the reference moves to the waiter */
			w->w_fl = fl;
			tp_complete(j->j_pt->pt_env.tp, pl_wait_start, w);
			return;
		}
	}
	pl_unref(o);
out:
	be_reply_err(arg, err);
}

static void pl_do_getlk(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	const struct fuse_lk_in *in = j->j_arg;
	struct fuse_file_lock lk;
	struct pl_ofd *o;
	struct flock fl;
	int err;

	/* flock() has no query; a Linux guest never asks. */
	if (in->lk_flags & FUSE_LK_FLOCK) {
		be_reply_err(arg, -EINVAL);
		return;
	}
	/* The owner's own description: its own locks are no conflict. */
	if ((err = pl_get(j->j_pt, j->j_who, in, j->j_id, true, &o)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	pl_to_flock(in, &fl);
	fl.l_pid = 0;
	err = fcntl(o->o_fd, F_OFD_GETLK, &fl) < 0 ? -errno : 0;
	pl_unref(o);
	if (err < 0) {
		be_reply_err(arg, err);
		return;
	}
	memset(&lk, 0, sizeof(lk));
	lk.type = (uint32_t)fl.l_type;
	if (fl.l_type != F_UNLCK) {
		lk.start = (uint64_t)fl.l_start;
		lk.end =
		    fl.l_len == 0 ? (uint64_t)INT64_MAX : (uint64_t)(fl.l_start + fl.l_len - 1);
		/* OFD holders have no pid (-1); a host process's pid means nothing
		 * in the guest: 0, "some other owner". */
		lk.pid = 0;
	}
	be_reply_lk(arg, &lk);
}

void pt_setlk(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
	      const struct fuse_lk_in *in, bool sleep)
{
	pt_submit(ctx, r, who, pl_do_setlk,
		  &(struct pt_job){.j_id = node, .j_arg = in, .j_flags = sleep});
}

void pt_getlk(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
	      const struct fuse_lk_in *in)
{
	pt_submit(ctx, r, who, pl_do_getlk, &(struct pt_job){.j_id = node, .j_arg = in});
}

/* ---- closing (passthrough_read.c) ---- */

void pt_locks_flush(uint64_t node, uint64_t lock_owner)
{
	pl_drop(node, lock_owner, false);
}

bool pt_locks_flush_local(uint64_t node, uint64_t lock_owner)
{
	struct nt_fh f;

	if (nt_lock_find(pl_nt, node, lock_owner, NT_FH_POSIX, &f) == 0 && f.f_owner != pl_self)
		return false;
	pl_drop(node, lock_owner, false);
	return true;
}

void pt_locks_release(uint64_t node, const struct fuse_release_in *in)
{
	if (in->release_flags & FUSE_RELEASE_FLOCK_UNLOCK)
		pl_drop(node, in->lock_owner, true);
}

void pt_locks_init(struct nt_table *nt, struct peer *peer, uint32_t self)
{
	pl_nt = nt;
	pl_peer = peer;
	pl_self = self;
}

/* Peer thread: a duplicate of one of our descriptions, for the worker
 * that got a request of its lock owner: fd, or -EBADF when we hold none. */
int pt_locks_provide_fd(uint64_t id)
{
	struct pl_ofd *o;
	int fd = -EBADF;

	pthread_mutex_lock(&pl_mu);
	if ((o = pl_find_id_locked(id)) != NULL) {
		fd = fcntl(o->o_fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			fd = -errno;
	}
	pthread_mutex_unlock(&pl_mu);
	return fd;
}

/* Peer thread: another worker dropped (and unpublished) one of ours. */
void pt_locks_release_id(uint64_t id)
{
	struct pl_ofd *o;

	pthread_mutex_lock(&pl_mu);
	if ((o = pl_find_id_locked(id)) != NULL)
		pl_unlist_locked(o);
	pthread_mutex_unlock(&pl_mu);
}

/* Loop thread, RING_STOP: the queue stops, so its waits end now with EIO
 * (the drain that follows runs no timers). Not inside a dispatch, so the
 * replies may go out from here. */
void pt_locks_ring_stop(void)
{
	struct pl_wait *w;

	while ((w = TAILQ_FIRST(&pl_waiters)) != NULL)
		pl_wait_end(w, -EIO);
}

/* Loop thread: every description goes, waiters end from their timers (not
 * from here: replying may run the ring, and we may be inside a dispatch). */
void pt_locks_reset(void)
{
	struct pl_wait *w;
	struct pl_ofd *o;

	/* nt_reset dropped the index already */
	pthread_mutex_lock(&pl_mu);
	for (unsigned i = 0; i < PL_BUCKETS; i++)
		while ((o = LIST_FIRST(&pl_table[i])) != NULL)
			pl_unlist_locked(o);
	pthread_mutex_unlock(&pl_mu);
	for (w = TAILQ_FIRST(&pl_waiters); w; w = TAILQ_NEXT(w, w_entry)) {
		w->w_cancelled = true;
		event_active(w->w_ev, EV_TIMEOUT, 0);
	}
}
