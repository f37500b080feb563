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
 * The table is this worker's: a guest that used the same lock owner on two
 * request queues would hold two descriptions that conflict with each other.
 * A Linux guest sends all requests of one file system through one request
 * queue today; different owners on different queues exclude each other as
 * they should.
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
#include "threadpool.h"

#define PL_BUCKETS	 256
#define PL_WAIT_FIRST_MS 1
#define PL_WAIT_MAX_MS	 100

struct pl_ofd {
	LIST_ENTRY(pl_ofd) o_entry;
	uint64_t o_node;
	uint64_t o_owner;
	bool o_flock;
	bool o_listed; /* in the table (else only waiters still hold it) */
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

/* Drop the description of (node, owner): its locks are released. */
static void pl_drop(uint64_t node, uint64_t owner, bool flock)
{
	struct pl_ofd *o;

	pthread_mutex_lock(&pl_mu);
	if ((o = pl_find_locked(node, owner, flock)) != NULL)
		pl_unlist_locked(o);
	pthread_mutex_unlock(&pl_mu);
}

/* A new description of the file behind handle fh (pool thread), with the
 * handle's access mode (an OFD write lock needs a writable one, as a POSIX
 * write lock does locally; flock() needs none). */
static int pl_open(struct pt *pt, struct fuse_req *r, uint64_t node, uint64_t fh, int *out)
{
	struct nt_fh f;
	char path[16];
	int hfd, fd = -1, acc, err;

	if ((err = nt_fh_get(pt->pt_env.nt, fh, &f)) < 0)
		return err == -ESTALE ? -EBADF : err;
	if (f.f_node != node)
		return -EBADF; /* a handle of another file: a confused or hostile guest */
	acc = (int)(f.f_flags & O_ACCMODE);
	if ((err = fdt_fh_get(pt->pt_env.fdt, fh, &hfd)) < 0)
		return err;
	pt_proc_name(path, sizeof(path), hfd);
	if ((err = pt_creds_enter(pt, r)) == 0) {
		fd = openat(pt->pt_env.proc_fd, path, acc | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		err = fd < 0 ? -errno : 0;
		pt_creds_leave(pt);
	}
	fdt_put(pt->pt_env.fdt, hfd);
	*out = fd;
	return err;
}

/* The description of (node, owner) with a reference; created unless
 * create is false (then NULL with 0 when there is none). */
static int pl_get(struct pt *pt, struct fuse_req *r, const struct fuse_lk_in *in, uint64_t node,
		  bool create, struct pl_ofd **out)
{
	bool flock = (in->lk_flags & FUSE_LK_FLOCK) != 0;
	struct pl_ofd *o, *n;
	int fd, err;

	*out = NULL;
	pthread_mutex_lock(&pl_mu);
	if ((o = pl_find_locked(node, in->owner, flock)) != NULL)
		o->o_refs++;
	pthread_mutex_unlock(&pl_mu);
	if (o || !create) {
		*out = o;
		return 0;
	}
	if ((err = pl_open(pt, r, node, in->fh, &fd)) < 0)
		return err;
	if (!(n = calloc(1, sizeof(*n)))) {
		close(fd);
		return -ENOMEM;
	}
	n->o_node = node;
	n->o_owner = in->owner;
	n->o_flock = flock;
	n->o_fd = fd;
	pthread_mutex_lock(&pl_mu);
	if ((o = pl_find_locked(node, in->owner, flock)) == NULL) {
		/* Two requests of one owner raced: the first one wins. */
		o = n;
		n = NULL;
		o->o_refs = 1; /* the table's */
		o->o_listed = true;
		LIST_INSERT_HEAD(&pl_table[pl_hash(node, in->owner)], o, o_entry);
	}
	o->o_refs++;
	pthread_mutex_unlock(&pl_mu);
	if (n) {
		close(n->o_fd);
		free(n);
	}
	*out = o;
	return 0;
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
	pthread_mutex_lock(&pl_mu);
	listed = w->w_ofd->o_listed;
	pthread_mutex_unlock(&pl_mu);
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

	if ((err = pl_get(j->j_pt, arg, in, j->j_id, !unlock, &o)) < 0 || o == NULL)
		goto out; /* unlocking what was never locked is a success */
	pl_to_flock(in, &fl);
	err = pl_try(o, &fl);
	if (err == 0 && unlock && fl.l_start == 0 && fl.l_len == 0) {
		/* Everything released: the description is no longer needed. */
		pthread_mutex_lock(&pl_mu);
		pl_unlist_locked(o);
		pthread_mutex_unlock(&pl_mu);
	}
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
	if ((err = pl_get(j->j_pt, arg, in, j->j_id, true, &o)) < 0) {
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

void pt_setlk(void *ctx, struct fuse_req *r, uint64_t node, const struct fuse_lk_in *in, bool sleep)
{
	pt_submit(ctx, r, pl_do_setlk,
		  &(struct pt_job){.j_id = node, .j_arg = in, .j_flags = sleep});
}

void pt_getlk(void *ctx, struct fuse_req *r, uint64_t node, const struct fuse_lk_in *in)
{
	pt_submit(ctx, r, pl_do_getlk, &(struct pt_job){.j_id = node, .j_arg = in});
}

/* ---- closing (backend_passthrough.c) ---- */

void pt_locks_flush(uint64_t node, uint64_t lock_owner)
{
	pl_drop(node, lock_owner, false);
}

void pt_locks_release(uint64_t node, const struct fuse_release_in *in)
{
	if (in->release_flags & FUSE_RELEASE_FLOCK_UNLOCK)
		pl_drop(node, in->lock_owner, true);
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
