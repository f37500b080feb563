/*
 * fuse_dispatch.c - the FUSE session of one worker: decode a popped
 * request, answer what needs no back end (INIT, DESTROY, FORGET, protocol
 * errors), hand the rest to the back end, and the reply helpers through
 * which back ends finish requests.
 * Runs in: the worker (sandboxed). fuse_dispatch runs on the loop thread;
 * the be_reply_* helpers run on any thread and only touch the request's
 * own writable buffers before handing it back to the loop.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <linux/limits.h>

#include "backend.h"
#include "backends.h"
#include "bulkhead.h"
#include "fuse_dispatch.h"
#include "log.h"
#include "node_table.h"
#include "peer.h"
#include "threadpool.h"
#include "util.h"

#define OUT_HDR sizeof(struct fuse_out_header)

/* INIT flags we implement; everything else the kernel offers is declined. */
#define FUSE_OUR_FLAGS                                                                             \
	(FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_AUTO_INVAL_DATA | FUSE_DO_READDIRPLUS |          \
	 FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_ASYNC_DIO |         \
	 FUSE_ATOMIC_O_TRUNC | FUSE_HANDLE_KILLPRIV_V2)
/* POSIX_LOCKS, FLOCK_LOCKS and SETXATTR_EXT come from the back end's
 * init_flags: only it knows whether it serves them. */
/* flags2 (bits 32..63 of the flags, with FUSE_INIT_EXT): CREATE, MKDIR,
 * MKNOD, SYMLINK and TMPFILE name the caller's supplementary group that
 * owns the parent directory (a 6.3+ guest); the back end creates with it. */
#ifndef FUSE_CREATE_SUPP_GROUP
#define FUSE_CREATE_SUPP_GROUP (1ULL << 34)
#endif
#define FUSE_OUR_FLAGS2 ((uint32_t)(FUSE_CREATE_SUPP_GROUP >> 32))
#define FUSE_MAX_BACKGROUND 64
#define FUSE_CONGESTION	    48

/* The tp in use and where finished requests go, for be_reply_* called
 * from pool threads (set once by fuse_sess_start). */
static struct tp *fuse_tp;
static const struct fuse_host *fuse_host;

/* ---- request accessors and reply helpers (backend.h) ---- */

const struct fuse_in_header *be_req_header(const struct fuse_req *r)
{
	return &r->r_in.h;
}

const void *be_req_args(const struct fuse_req *r)
{
	return &r->r_in.a;
}

void *be_req_priv(struct fuse_req *r)
{
	return &r->r_priv;
}

bool be_req_abandoned(const struct fuse_req *r)
{
	return __atomic_load_n(&r->r_state, __ATOMIC_ACQUIRE) == FR_ABANDONED;
}

/* Room for need iovecs in the request itself (need is at most the chain's
 * descriptors): NULL when out of memory. */
static struct iovec *fuse_req_slice(struct fuse_req *r, unsigned need)
{
	struct iovec *p;

	if (need > IOV_MAX)
		need = IOV_MAX; /* preadv and pwritev take no more */
	if (r->r_slice && need <= r->r_slice_cap)
		return r->r_slice;
	if (need <= FUSE_SLICE_INLINE) {
		r->r_slice = r->r_slice_inline;
		r->r_slice_cap = FUSE_SLICE_INLINE;
		return r->r_slice;
	}
	if (!(p = calloc(need, sizeof(*p))))
		return NULL;
	fuse_req_slice_free(r);
	r->r_slice = p;
	r->r_slice_cap = need;
	return p;
}

void fuse_req_slice_free(struct fuse_req *r)
{
	if (r->r_slice != r->r_slice_inline)
		free(r->r_slice);
	r->r_slice = NULL;
	r->r_slice_cap = 0;
}

/* size bytes of the iovecs from offset off on, in the request's slice. */
static size_t fuse_req_iov(struct fuse_req *r, const struct iovec *from, unsigned nfrom, size_t off,
			   size_t size, struct iovec **iov, unsigned *n)
{
	struct iovec *to = fuse_req_slice(r, nfrom);
	size_t covered = 0;
	unsigned k;

	*iov = to;
	*n = 0;
	if (!to)
		return 0;
	k = vq_iov_slice(from, nfrom, off, size, to, r->r_slice_cap);
	for (unsigned i = 0; i < k; i++)
		covered += to[i].iov_len;
	*n = k;
	return covered;
}

size_t be_req_data_iov(struct fuse_req *r, size_t size, struct iovec **iov, unsigned *n)
{
	return fuse_req_iov(r, r->r_elem.wr, r->r_elem.nwr, OUT_HDR, size, iov, n);
}

size_t be_req_write_iov(struct fuse_req *r, size_t size, struct iovec **iov, unsigned *n)
{
	/* var_off is 80 for WRITE: the data follows write_in. */
	return fuse_req_iov(r, r->r_elem.rd, r->r_elem.nrd, r->r_in.var_off, size, iov, n);
}

/* Take the right to write the reply; false if the loop gave up on it. */
static bool fuse_req_claim(struct fuse_req *r)
{
	int expect = FR_PENDING;

	return __atomic_compare_exchange_n(&r->r_state, &expect, FR_REPLYING, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static void fuse_req_finish(struct fuse_req *r)
{
	fuse_req_slice_free(r);
	if (fuse_host->fh_on_loop())
		fuse_host->fh_complete_local(r);
	else
		tp_complete(fuse_tp, fuse_host->fh_complete, r);
}

static void fuse_reply(struct fuse_req *r, int err, const void *buf, size_t len)
{
	if (fuse_req_claim(r)) {
		if (fuse_reply_write(r->r_elem.wr, r->r_elem.nwr, r->r_elem.wr_len,
				     r->r_in.h.unique, err, buf, len, &r->r_used) == -EMSGSIZE)
			log_debug("unique %llu: reply of %zu bytes does not fit in %llu",
				  (unsigned long long)r->r_in.h.unique, len,
				  (unsigned long long)r->r_elem.wr_len);
	}
	fuse_req_finish(r);
}

void be_reply_err(struct fuse_req *r, int err)
{
	if (err > 0 || err < -4095)
		err = -EIO; /* keep the guest's errno range sane whatever a back end does */
	fuse_reply(r, err, NULL, 0);
}

void be_reply_entry(struct fuse_req *r, const struct fuse_entry_out *e)
{
	fuse_reply(r, 0, e, sizeof(*e));
}

void be_reply_attr(struct fuse_req *r, const struct fuse_attr_out *a)
{
	fuse_reply(r, 0, a, sizeof(*a));
}

void be_reply_open(struct fuse_req *r, uint64_t fh, uint32_t open_flags)
{
	struct fuse_open_out o = {.fh = fh, .open_flags = open_flags};

	fuse_reply(r, 0, &o, sizeof(o));
}

void be_reply_statfs(struct fuse_req *r, const struct fuse_kstatfs *st)
{
	struct fuse_statfs_out o = {.st = *st};

	fuse_reply(r, 0, &o, sizeof(o));
}

void be_reply_create(struct fuse_req *r, const struct fuse_entry_out *e, uint64_t fh,
		     uint32_t open_flags)
{
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out = {.e = *e, .o = {.fh = fh, .open_flags = open_flags}};

	_Static_assert(sizeof(out) == sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out),
		       "create reply is packed");
	fuse_reply(r, 0, &out, sizeof(out));
}

void be_reply_write(struct fuse_req *r, uint32_t size)
{
	struct fuse_write_out o = {.size = size};

	fuse_reply(r, 0, &o, sizeof(o));
}

void be_reply_lseek(struct fuse_req *r, uint64_t off)
{
	struct fuse_lseek_out o = {.offset = off};

	fuse_reply(r, 0, &o, sizeof(o));
}

void be_reply_lk(struct fuse_req *r, const struct fuse_file_lock *lk)
{
	struct fuse_lk_out o = {.lk = *lk};

	fuse_reply(r, 0, &o, sizeof(o));
}

void be_reply_xattr_size(struct fuse_req *r, uint32_t size)
{
	struct fuse_getxattr_out o = {.size = size};

	fuse_reply(r, 0, &o, sizeof(o));
}

void be_reply_buf(struct fuse_req *r, const void *buf, size_t len)
{
	fuse_reply(r, 0, buf, len);
}

void be_reply_data(struct fuse_req *r, size_t len)
{
	if (fuse_req_claim(r))
		(void)fuse_reply_header(r->r_elem.wr, r->r_elem.nwr, r->r_elem.wr_len,
					r->r_in.h.unique, len, &r->r_used);
	fuse_req_finish(r);
}

/* ---- session ---- */

/* Nodes whose descriptors other workers own, released in one message per
 * owner rather than one per node (a BATCH_FORGET holds hundreds), and held
 * back up to FUSE_RELEASE_DELAY_US to share it with the next FORGETs: a
 * guest that unlinks files one at a time sends a FORGET for each, and a
 * message per node woke the owner's peer thread for every file (measured
 * in make bench-guest's unlink row: one sendmsg, poll, recvmsg and close
 * per file: 78 ms of CPU beside its loop thread's 241). Held 2 ms, 2,815
 * releases of that row still took 895 messages; held 20 ms, 2,865 took 205
 * and the peer thread's CPU fell from 50-70 to 20 ms. Nothing waits on a
 * release but the host's space of an unlinked file, 20 ms later. */
#define FUSE_RELEASE_BATCH    64
#define FUSE_RELEASE_DELAY_US 20000

struct fuse_releases {
	uint64_t ids[BH_MAX_QUEUES][FUSE_RELEASE_BATCH];
	unsigned n[BH_MAX_QUEUES];
};

static void fuse_releases_due(evutil_socket_t fd, short what, void *arg);

void fuse_sess_start(struct fuse_sess *s)
{
	fuse_tp = s->fs_tp;
	fuse_host = s->fs_host;
	if (s->fs_base) {
		s->fs_rel = calloc(1, sizeof(*s->fs_rel));
		s->fs_release_ev = evtimer_new(s->fs_base, fuse_releases_due, s);
		if (!s->fs_rel || !s->fs_release_ev) {
			log_warnx("no memory to hold releases back: each is sent at once");
			free(s->fs_rel);
			if (s->fs_release_ev)
				event_free(s->fs_release_ev);
			s->fs_rel = NULL;
			s->fs_release_ev = NULL;
		}
	}
	s->fs_epoch = nt_epoch(s->fs_nt);
	s->fs_initialized = false;
	fuse_sess_sync(s);
}

void fuse_sess_sync(struct fuse_sess *s)
{
	uint64_t epoch = nt_epoch(s->fs_nt);
	struct nt_session ss;

	if (epoch != s->fs_epoch) {
		/* DESTROY or a re-INIT on another queue: our descriptors are stale. */
		log_debug("node table epoch %llu -> %llu: dropping descriptors",
			  (unsigned long long)s->fs_epoch, (unsigned long long)epoch);
		if (s->fs_be->session_reset)
			s->fs_be->session_reset(s->fs_be_ctx);
		s->fs_epoch = epoch;
		s->fs_initialized = false;
	}
	if (!s->fs_initialized) {
		nt_session_get(s->fs_nt, &ss);
		s->fs_initialized = ss.s_initialized != 0;
		s->fs_max_pages = ss.s_max_pages;
	}
}

static void fuse_sess_drop(struct fuse_sess *s)
{
	struct nt_session ss = {0};

	nt_reset(s->fs_nt);
	nt_session_set(s->fs_nt, &ss);
	if (s->fs_be->session_reset)
		s->fs_be->session_reset(s->fs_be_ctx);
	s->fs_epoch = nt_epoch(s->fs_nt);
	s->fs_initialized = false;
	s->fs_max_pages = 0;
}

static void fuse_do_init(struct fuse_sess *s, struct fuse_req *r)
{
	const struct fuse_init_in *ii = &r->r_in.a.init;
	struct fuse_init_out out;
	struct nt_session ss;
	uint32_t pages;

	if (ii->major != FUSE_OUR_MAJOR) {
		log_warnx("INIT: kernel protocol %u.%u, we speak %u.%u", ii->major, ii->minor,
			  FUSE_OUR_MAJOR, FUSE_OUR_MINOR);
		be_reply_err(r, -EPROTO);
		return;
	}
	nt_session_get(s->fs_nt, &ss);
	if (ss.s_initialized) {
		/* The guest rebooted with the file system mounted. */
		log_info("reinit");
		fuse_sess_drop(s);
	}

	pages = s->fs_queue_size > 4 ? s->fs_queue_size - 4u : 1u;
	if (pages > FUSE_MAX_PAGES_CAP)
		pages = FUSE_MAX_PAGES_CAP;
	memset(&out, 0, sizeof(out));
	out.major = FUSE_OUR_MAJOR;
	out.minor = ii->minor < FUSE_OUR_MINOR ? ii->minor : FUSE_OUR_MINOR;
	out.max_readahead = ii->max_readahead;
	out.flags = ii->flags & (FUSE_OUR_FLAGS | (s->fs_be->init_flags
							   ? s->fs_be->init_flags(s->fs_be_ctx)
							   : 0));
	if (ii->flags & FUSE_INIT_EXT) {
		out.flags2 = ii->flags2 & FUSE_OUR_FLAGS2;
		if (out.flags2)
			out.flags |= FUSE_INIT_EXT;
	}
	out.max_background = FUSE_MAX_BACKGROUND;
	out.congestion_threshold = FUSE_CONGESTION;
	out.max_write = FUSE_MAX_WRITE;
	out.time_gran = 1;
	out.max_pages = (uint16_t)pages;

	ss.s_initialized = 1;
	ss.s_minor = out.minor;
	ss.s_max_pages = pages;
	ss.s_flags = out.flags;
	nt_session_set(s->fs_nt, &ss);
	s->fs_epoch = nt_epoch(s->fs_nt);
	s->fs_initialized = true;
	s->fs_max_pages = pages;
	log_info("session 7.%u, flags 0x%x, flags2 0x%x, max_pages %u", out.minor, out.flags,
		 out.flags2, pages);
	fuse_reply(r, 0, &out, sizeof(out));
}

static void fuse_releases_flush(struct fuse_sess *s, struct fuse_releases *rel, uint32_t owner)
{
	int err;

	if (rel->n[owner] == 0)
		return;
	err = peer_release_nodes(s->fs_peer, owner, rel->ids[owner], rel->n[owner]);
	if (err < 0)
		log_warnx("FORGET of %u nodes: owner q%u unreachable: %s", rel->n[owner], owner,
			  strerror(-err));
	rel->n[owner] = 0;
}

/* One node loses nlookup references; the last one closes its descriptor
 * wherever it lives. */
static void fuse_forget_node(struct fuse_sess *s, struct fuse_releases *rel, uint64_t id,
			     uint64_t nlookup)
{
	uint32_t owner;
	bool dead;
	int err;

	err = nt_node_forget(s->fs_nt, id, nlookup, &dead, &owner);
	if (err < 0) {
		log_debug("FORGET %llu: %s", (unsigned long long)id, strerror(-err));
		return;
	}
	if (!dead)
		return;
	if (s->fs_be->forget)
		s->fs_be->forget(s->fs_be_ctx, id);
	if (owner == s->fs_self) {
		nt_node_free(s->fs_nt, id);
		return;
	}
	if (owner >= BH_MAX_QUEUES) {
		log_warnx("FORGET %llu: owner q%u out of range", (unsigned long long)id, owner);
		return;
	}
	rel->ids[owner][rel->n[owner]++] = id;
	if (rel->n[owner] == FUSE_RELEASE_BATCH)
		fuse_releases_flush(s, rel, owner);
}

static void fuse_releases_flush_all(struct fuse_sess *s, struct fuse_releases *rel)
{
	for (uint32_t q = 0; q < BH_MAX_QUEUES; q++)
		fuse_releases_flush(s, rel, q);
}

static bool fuse_releases_held(const struct fuse_releases *rel)
{
	for (uint32_t q = 0; q < BH_MAX_QUEUES; q++)
		if (rel->n[q] > 0)
			return true;
	return false;
}

static void fuse_releases_due(evutil_socket_t fd, short what, void *arg)
{
	struct fuse_sess *s = arg;

	fuse_releases_flush_all(s, s->fs_rel);
}

static void fuse_do_forget(struct fuse_sess *s, struct fuse_req *r)
{
	static const struct timeval delay = {0, FUSE_RELEASE_DELAY_US};
	const struct fuse_in *in = &r->r_in;
	struct fuse_forget_one one;
	struct fuse_releases now, *rel = s->fs_rel;

	if (!rel) {
		memset(now.n, 0, sizeof(now.n));
		rel = &now;
	}
	if (in->h.opcode == FUSE_FORGET) {
		fuse_forget_node(s, rel, in->h.nodeid, in->a.forget.nlookup);
	} else {
		for (uint32_t i = 0; i < in->a.batch_forget.count; i++) {
			fuse_decode_forget_one(r->r_elem.rd, r->r_elem.nrd, in, i, &one);
			fuse_forget_node(s, rel, one.nodeid, one.nlookup);
		}
	}
	if (rel == &now) {
		fuse_releases_flush_all(s, rel);
		return;
	}
	if (fuse_releases_held(rel) && !evtimer_pending(s->fs_release_ev, NULL))
		evtimer_add(s->fs_release_ev, &delay);
}

/* ---- dispatch: one row per opcode a back end serves ---- */

/*
 * A row hands a decoded request to the back end's call for it, with the
 * arguments that call takes, and returns false when the back end has no
 * such call (answered ENOSYS). What a share cannot do whatever the back
 * end is decided from the row, here, before any back end runs: a change
 * to a read-only share is EROFS (FR_CHANGES), and a call that needs what
 * the session cannot do (fr_needs against fs_can: the back end's
 * capabilities, less extended attributes without --xattr) gets what a
 * local file system without it answers (fuse_cannot).
 */
#define FR_CHANGES 0x1 /* changes the share */

struct fuse_route {
	bool (*fr_run)(struct fuse_sess *s, struct fuse_req *r, uint64_t room);
	uint32_t fr_flags;
	uint32_t fr_needs; /* BE_CAN_*: answered by fuse_cannot without it */
};

static bool fr_lookup(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->lookup)
		return false;
	s->fs_be->lookup(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, r->r_in.name);
	return true;
}

static bool fr_getattr(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	const struct fuse_getattr_in *a = &r->r_in.a.getattr;

	if (!s->fs_be->getattr)
		return false;
	s->fs_be->getattr(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid,
			  (a->getattr_flags & FUSE_GETATTR_FH) != 0, a->fh);
	return true;
}

static bool fr_readlink(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->readlink)
		return false;
	s->fs_be->readlink(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid);
	return true;
}

static bool fr_open(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->open)
		return false;
	s->fs_be->open(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, r->r_in.a.open.flags);
	return true;
}

static bool fr_opendir(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->opendir)
		return false;
	s->fs_be->opendir(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, r->r_in.a.open.flags);
	return true;
}

/* READ and READDIR(PLUS) sizes: what the guest can take and INIT allowed
 * (the back end allocates a buffer of this size). */
static uint32_t fr_payload(const struct fuse_sess *s, const struct fuse_req *r, uint64_t room)
{
	return fuse_clamp_reply(r->r_in.a.read.size, room, fuse_max_payload(s->fs_max_pages));
}

static bool fr_read(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->read)
		return false;
	s->fs_be->read(s->fs_be_ctx, r, &r->r_caller, r->r_in.a.read.fh, r->r_in.a.read.offset,
		       fr_payload(s, r, room));
	return true;
}

static bool fr_readdir(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->readdir)
		return false;
	s->fs_be->readdir(s->fs_be_ctx, r, &r->r_caller, r->r_in.a.read.fh, r->r_in.a.read.offset,
			  fr_payload(s, r, room), r->r_in.h.opcode == FUSE_READDIRPLUS);
	return true;
}

static bool fr_release(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	void (*fn)(void *, struct fuse_req *, const struct be_caller *, uint64_t) =
	    r->r_in.h.opcode == FUSE_RELEASE ? s->fs_be->release : s->fs_be->releasedir;

	if (!fn)
		return false;
	fn(s->fs_be_ctx, r, &r->r_caller, r->r_in.a.release.fh);
	return true;
}

static bool fr_flush(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->flush)
		return false;
	s->fs_be->flush(s->fs_be_ctx, r, &r->r_caller, r->r_in.a.flush.fh);
	return true;
}

static bool fr_statfs(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->statfs)
		return false;
	s->fs_be->statfs(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid);
	return true;
}

static bool fr_destroy(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	fuse_sess_drop(s);
	be_reply_err(r, 0);
	return true;
}

static bool fr_setattr(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->setattr)
		return false;
	s->fs_be->setattr(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, &r->r_in.a.setattr);
	return true;
}

static bool fr_write(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	const struct fuse_write_in *a = &r->r_in.a.write;

	if (!s->fs_be->write)
		return false;
	s->fs_be->write(s->fs_be_ctx, r, &r->r_caller, a->fh, a->offset, a->size, a->write_flags);
	return true;
}

static bool fr_fsync(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->fsync)
		return false;
	s->fs_be->fsync(s->fs_be_ctx, r, &r->r_caller, r->r_in.a.fsync.fh,
			(r->r_in.a.fsync.fsync_flags & 1) != 0);
	return true;
}

static bool fr_create(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->create)
		return false;
	s->fs_be->create(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid,
			 r->r_in.h.opcode == FUSE_CREATE ? r->r_in.name : NULL, &r->r_in.a.create);
	return true;
}

/* MKNOD, MKDIR and SYMLINK are one call: the type is in the mode. */
static bool fr_mknod(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	const struct fuse_in *in = &r->r_in;

	if (!s->fs_be->mknod)
		return false;
	if (in->h.opcode == FUSE_MKNOD)
		s->fs_be->mknod(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, in->name,
				in->a.mknod.mode, in->a.mknod.rdev, NULL);
	else if (in->h.opcode == FUSE_MKDIR)
		s->fs_be->mknod(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, in->name,
				S_IFDIR | (in->a.mkdir.mode & 07777), 0, NULL);
	else
		s->fs_be->mknod(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, in->name,
				S_IFLNK | 0777, 0, in->name2);
	return true;
}

static bool fr_link(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->link)
		return false;
	s->fs_be->link(s->fs_be_ctx, r, &r->r_caller, r->r_in.a.link.oldnodeid, r->r_in.h.nodeid,
		       r->r_in.name);
	return true;
}

static bool fr_unlink(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->unlink)
		return false;
	s->fs_be->unlink(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, r->r_in.name,
			 r->r_in.h.opcode == FUSE_RMDIR);
	return true;
}

static bool fr_rename(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	const struct fuse_in *in = &r->r_in;

	if (!s->fs_be->rename)
		return false;
	/* rename_in is the head of rename2_in: newdir sits at offset 0 in both */
	s->fs_be->rename(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, in->name,
			 in->a.rename.newdir, in->name2,
			 in->h.opcode == FUSE_RENAME2 ? in->a.rename2.flags : 0);
	return true;
}

static bool fr_access(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->access)
		return false;
	s->fs_be->access(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, r->r_in.a.access.mask);
	return true;
}

static bool fr_fallocate(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	const struct fuse_fallocate_in *a = &r->r_in.a.fallocate;

	if (!s->fs_be->fallocate)
		return false;
	s->fs_be->fallocate(s->fs_be_ctx, r, &r->r_caller, a->fh, a->offset, a->length, a->mode);
	return true;
}

static bool fr_lseek(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->lseek)
		return false;
	s->fs_be->lseek(s->fs_be_ctx, r, &r->r_caller, r->r_in.a.lseek.fh, r->r_in.a.lseek.offset,
			r->r_in.a.lseek.whence);
	return true;
}

static bool fr_copy_file_range(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->copy_file_range)
		return false;
	s->fs_be->copy_file_range(s->fs_be_ctx, r, &r->r_caller, &r->r_in.a.copy);
	return true;
}

static bool fr_syncfs(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->syncfs)
		return false;
	s->fs_be->syncfs(s->fs_be_ctx, r, &r->r_caller);
	return true;
}

static bool fr_getlk(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->getlk)
		return false;
	s->fs_be->getlk(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, &r->r_in.a.lk);
	return true;
}

static bool fr_setlk(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	if (!s->fs_be->setlk)
		return false;
	s->fs_be->setlk(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, &r->r_in.a.lk,
			r->r_in.h.opcode == FUSE_SETLKW);
	return true;
}

/*
 * The xattr calls: their names and SETXATTR's argument size depend on the
 * session (SETXATTR_EXT), so they are decoded now, then put to the
 * operator's policy; true when answered here or handed on.
 */
static bool fr_xattr(struct fuse_sess *s, struct fuse_req *r, uint64_t room)
{
	const struct be_ops *be = s->fs_be;
	struct fuse_in *in = &r->r_in;
	struct nt_session ss;
	uint32_t size;
	int err;

	nt_session_get(s->fs_nt, &ss);
	if ((err = fuse_decode_xattr(r->r_elem.rd, r->r_elem.nrd, in,
				     (ss.s_flags & FUSE_SETXATTR_EXT) != 0)) < 0) {
		log_debug("%s: malformed (%s)", in->info->oi_name, strerror(-err));
		be_reply_err(r, err);
		return true;
	}
	if ((err = fuse_policy_xattr(s, in)) < 0) {
		be_reply_err(r, err);
		return true;
	}
	switch (in->h.opcode) {
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR:
		if (in->h.opcode == FUSE_GETXATTR ? !be->getxattr : !be->listxattr)
			return false;
		/* size 0 asks for the size: the reply is a getxattr_out. */
		size = in->a.getxattr.size;
		if (size == 0 && room < sizeof(struct fuse_getxattr_out)) {
			be_reply_err(r, -EIO);
			return true;
		}
		/* the back end allocates a buffer of this size; nothing larger exists */
		size = fuse_clamp_reply(size, room, XATTR_SIZE_MAX);
		if (in->h.opcode == FUSE_GETXATTR)
			be->getxattr(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, in->name,
				     size);
		else
			be->listxattr(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, size);
		return true;
	case FUSE_SETXATTR:
		if (!be->setxattr)
			return false;
		be->setxattr(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, in->name,
			     in->a.setxattr.size, in->a.setxattr.flags);
		return true;
	default:
		if (!be->removexattr)
			return false;
		be->removexattr(s->fs_be_ctx, r, &r->r_caller, r->r_in.h.nodeid, in->name);
		return true;
	}
}

/* Every opcode a back end may serve; INIT, FORGET and BATCH_FORGET are the
 * session's own, IOCTL and POLL stay ENOSYS, deliberately. */
static const struct fuse_route fuse_routes[] = {
    [FUSE_LOOKUP] = {fr_lookup, 0},
    [FUSE_GETATTR] = {fr_getattr, 0},
    [FUSE_SETATTR] = {fr_setattr, FR_CHANGES},
    [FUSE_READLINK] = {fr_readlink, 0},
    [FUSE_SYMLINK] = {fr_mknod, FR_CHANGES},
    [FUSE_MKNOD] = {fr_mknod, FR_CHANGES},
    [FUSE_MKDIR] = {fr_mknod, FR_CHANGES},
    [FUSE_UNLINK] = {fr_unlink, FR_CHANGES},
    [FUSE_RMDIR] = {fr_unlink, FR_CHANGES},
    [FUSE_RENAME] = {fr_rename, FR_CHANGES},
    [FUSE_LINK] = {fr_link, FR_CHANGES, BE_CAN_LINK},
    [FUSE_OPEN] = {fr_open, 0}, /* EROFS by its flags: fuse_changes_share */
    [FUSE_READ] = {fr_read, 0},
    [FUSE_WRITE] = {fr_write, FR_CHANGES},
    [FUSE_STATFS] = {fr_statfs, 0},
    [FUSE_RELEASE] = {fr_release, 0},
    [FUSE_FSYNC] = {fr_fsync, 0},
    [FUSE_SETXATTR] = {fr_xattr, FR_CHANGES, BE_CAN_XATTR},
    [FUSE_GETXATTR] = {fr_xattr, 0, BE_CAN_XATTR},
    [FUSE_LISTXATTR] = {fr_xattr, 0, BE_CAN_XATTR},
    [FUSE_REMOVEXATTR] = {fr_xattr, FR_CHANGES, BE_CAN_XATTR},
    [FUSE_FLUSH] = {fr_flush, 0},
    [FUSE_OPENDIR] = {fr_opendir, 0},
    [FUSE_READDIR] = {fr_readdir, 0},
    [FUSE_RELEASEDIR] = {fr_release, 0},
    [FUSE_FSYNCDIR] = {fr_fsync, 0},
    [FUSE_GETLK] = {fr_getlk, 0, BE_CAN_LOCK},
    [FUSE_SETLK] = {fr_setlk, 0, BE_CAN_LOCK},
    [FUSE_SETLKW] = {fr_setlk, 0, BE_CAN_LOCK},
    [FUSE_ACCESS] = {fr_access, 0}, /* EROFS for W_OK: fuse_changes_share */
    [FUSE_CREATE] = {fr_create, FR_CHANGES},
    [FUSE_DESTROY] = {fr_destroy, 0},
    [FUSE_READDIRPLUS] = {fr_readdir, 0},
    [FUSE_RENAME2] = {fr_rename, FR_CHANGES},
    [FUSE_LSEEK] = {fr_lseek, 0},
    [FUSE_COPY_FILE_RANGE] = {fr_copy_file_range, FR_CHANGES, BE_CAN_RANDOM_WRITE},
    [FUSE_FALLOCATE] = {fr_fallocate, FR_CHANGES, BE_CAN_RANDOM_WRITE},
    [FUSE_SYNCFS] = {fr_syncfs, 0},
    [FUSE_TMPFILE] = {fr_create, FR_CHANGES, BE_CAN_TMPFILE},
};

/* What a share answers for a call its back end cannot make (backends.h):
 * what a local file system without the feature says. */
static int fuse_cannot(uint32_t opcode, uint32_t needs)
{
	if (needs & BE_CAN_LINK)
		return -EPERM;
	if (needs & BE_CAN_TMPFILE)
		return -EOPNOTSUPP;
	if (needs & BE_CAN_RANDOM_WRITE)
		/* copy_file_range: the guest's kernel copies by READ and WRITE */
		return opcode == FUSE_COPY_FILE_RANGE ? -ENOSYS : -EOPNOTSUPP;
	/* xattrs, locks: the guest's kernel stops asking. For xattrs that
	 * matters: it turns ENOSYS into EOPNOTSUPP for the caller and never
	 * asks again, where EOPNOTSUPP itself would be asked again each time,
	 * and it asks for security.capability before every write() (measured:
	 * ~20% of a small-file write workload's requests). */
	return -ENOSYS;
}

/* Would the request change a read-only share? OPEN for writing or
 * truncation and ACCESS asking for W_OK do, like the rows that say so. */
static bool fuse_changes_share(const struct fuse_in *in, const struct fuse_route *rt)
{
	switch (in->h.opcode) {
	case FUSE_OPEN:
		return (in->a.open.flags & O_ACCMODE) != O_RDONLY ||
		       (in->a.open.flags & (O_TRUNC | O_CREAT));
	case FUSE_ACCESS:
		return (in->a.access.mask & W_OK) != 0;
	default:
		return (rt->fr_flags & FR_CHANGES) != 0;
	}
}

void fuse_dispatch(struct fuse_sess *s, struct fuse_req *r)
{
	struct vq_elem *e = &r->r_elem;
	struct fuse_in *in = &r->r_in;
	const struct fuse_op_info *oi;
	const struct fuse_route *rt = NULL;
	uint64_t room;
	int err;

	r->r_used = 0;
	r->r_slice = NULL;
	r->r_slice_cap = 0;
	err = fuse_decode(e->rd, e->nrd, e->rd_len, in);
	oi = in->info;
	if (oi && (oi->oi_flags & FUSE_OP_NOREPLY)) {
		/* Nothing goes back, not even an error: complete with len 0. */
		if (err < 0)
			log_debug("%s: malformed (%s), dropped", oi->oi_name, strerror(-err));
		else if (s->fs_initialized)
			fuse_do_forget(s, r);
		s->fs_host->fh_complete_local(r);
		return;
	}
	if (e->wr_len < OUT_HDR) {
		/* A broken guest: it could not even receive an error. */
		log_debug("opcode %u unique %llu: %llu writable bytes, no reply possible",
			  in->h.opcode, (unsigned long long)in->h.unique,
			  (unsigned long long)e->wr_len);
		s->fs_host->fh_complete_local(r);
		return;
	}
	if (err < 0) {
		log_debug("opcode %u unique %llu: malformed request: %s", in->h.opcode,
			  (unsigned long long)in->h.unique, strerror(-err));
		be_reply_err(r, err == -EPROTO ? -EIO : err);
		return;
	}
	if (oi == NULL) {
		log_debug("unknown opcode %u", in->h.opcode);
		be_reply_err(r, -ENOSYS);
		return;
	}
	room = e->wr_len - OUT_HDR;
	if (room < oi->oi_replysz) {
		log_debug("%s: %llu writable bytes, reply needs %u", oi->oi_name,
			  (unsigned long long)e->wr_len, oi->oi_replysz);
		be_reply_err(r, -EIO);
		return;
	}
	if (in->h.opcode == FUSE_INIT) {
		fuse_do_init(s, r);
		return;
	}
	if (!s->fs_initialized) {
		/* Another worker may have answered INIT since our last look. */
		fuse_sess_sync(s);
		if (!s->fs_initialized) {
			be_reply_err(r, -EIO);
			return;
		}
	}
	log_debug("%s unique %llu node %llu", oi->oi_name, (unsigned long long)in->h.unique,
		  (unsigned long long)in->h.nodeid);
	r->r_caller = (struct be_caller){.bc_uid = in->h.uid,
					 .bc_gid = in->h.gid,
					 .bc_pid = in->h.pid,
					 .bc_has_supp_gid = in->has_supp_gid,
					 .bc_supp_gid = in->supp_gid};
	if (in->h.opcode < BH_ARRAY_SIZE(fuse_routes) && fuse_routes[in->h.opcode].fr_run)
		rt = &fuse_routes[in->h.opcode];
	if (!rt) {
		be_reply_err(r, -ENOSYS);
		return;
	}
	if (rt->fr_needs & ~s->fs_can) {
		be_reply_err(r, fuse_cannot(in->h.opcode, rt->fr_needs & ~s->fs_can));
		return;
	}
	if (s->fs_readonly && fuse_changes_share(in, rt)) {
		be_reply_err(r, -EROFS);
		return;
	}
	if ((err = fuse_policy_check(s, in)) < 0) {
		be_reply_err(r, err);
		return;
	}
	if (!rt->fr_run(s, r, room))
		be_reply_err(r, -ENOSYS);
}
