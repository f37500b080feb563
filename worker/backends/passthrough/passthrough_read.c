/*
 * passthrough_read.c - the passthrough back end's read side: LOOKUP,
 * GETATTR, READLINK, OPEN/READ/RELEASE, OPENDIR/RELEASEDIR, FLUSH, STATFS.
 * OPEN for writing lives here too: it is the same reopen, as the caller.
 * Runs in: the worker (sandboxed), blocking calls on the pool threads.
 * Names and ids come from the guest, already copied and checked by the
 * dispatcher (no '/', NUL-terminated, <= 255 bytes); ids are resolved
 * through the node table / fdtable, which check range and generation. Every
 * host access is relative to a directory descriptor, never follows a
 * symlink (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW) and never goes above the share
 * root ("..": root stays root).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "bulkhead.h"
#include "fdtable.h"
#include "ipc.h"
#include "log.h"
#include "node_table.h"
#include "passthrough.h"
#include "peer.h"
#include "sandbox.h"
#include "threadpool.h"
#include "util.h"

static int pt_lookup_body(struct pt_job *j, bool nowait)
{
	struct fuse_entry_out e;
	int fd, err;

	if ((err = pt_node_fd(j->j_pt, j->j_id, nowait, &fd)) < 0)
		goto out;
	err = pt_lookup_at(j->j_pt, fd, j->j_id, j->j_name, nowait, &e);
	fdt_put(j->j_pt->pt_fdt, fd);
out:
	if (err == -EWOULDBLOCK && nowait)
		return PT_DEFER;
	if (err < 0)
		be_reply_err(j->j_req, err);
	else
		be_reply_entry(j->j_req, &e);
	return 0;
}

static void pt_do_lookup(void *arg)
{
	pt_lookup_body(pt_job_of(arg), false);
}

/* fstat of a descriptor we hold needs no I/O on a local file system. */
static int pt_getattr_body(struct pt_job *j, bool nowait)
{
	struct fuse_attr_out a;
	struct stat st;
	int fd, err;

	if ((err = pt_node_fd(j->j_pt, j->j_id, nowait, &fd)) < 0) {
		if (err == -EWOULDBLOCK && nowait)
			return PT_DEFER;
		be_reply_err(j->j_req, err);
		return 0;
	}
	err = pt_stat_fd(fd, &st);
	fdt_put(j->j_pt->pt_fdt, fd);
	if (err < 0) {
		be_reply_err(j->j_req, err);
		return 0;
	}
	memset(&a, 0, sizeof(a));
	a.attr_valid = j->j_pt->pt_valid;
	pt_fill_attr(&a.attr, &st);
	be_reply_attr(j->j_req, &a);
	return 0;
}

static void pt_do_getattr(void *arg)
{
	pt_getattr_body(pt_job_of(arg), false);
}

static void pt_do_readlink(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	char buf[PATH_MAX];
	ssize_t n;
	int fd, err;

	if ((err = fdt_node_get(j->j_pt->pt_fdt, j->j_id, &fd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	n = readlinkat(fd, "", buf, sizeof(buf));
	err = n < 0 ? -errno : 0;
	fdt_put(j->j_pt->pt_fdt, fd);
	if (err < 0)
		be_reply_err(arg, err);
	else
		be_reply_buf(arg, buf, (size_t)n);
}

/*
 * OPEN and OPENDIR: reopen the node's O_PATH descriptor (pt_reopen: a
 * regular file or a directory, nothing else), as the caller so the host
 * checks its permissions. With --writeback the guest reads to fill partial
 * pages and does appends itself: O_WRONLY becomes O_RDWR and O_APPEND goes.
 */
#define PT_OPEN_PASS (O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK | O_SYNC | O_DSYNC)
/*
 * With cache=auto the guest drops a file's cached pages at every OPEN
 * unless told to keep them (FOPEN_KEEP_CACHE): close-to-open consistency,
 * bought with a READ of every file it opens again. Keeping them is as
 * consistent when the file is the one the guest's last OPEN of it saw:
 * same inode, size, mtime and ctime (nanoseconds), so nothing has written
 * it since but the guest itself, whose writes are in its cache already.
 * Anything else, or a file this worker has not seen opened, drops them.
 * Timestamps tick coarsely (a few milliseconds on most file systems), so
 * a host write right after an OPEN could leave them unchanged: a file
 * changed in the last PT_OPENED_SETTLE seconds is not remembered.
 * Measured by `make bench-guest`: reading a tree of small files again
 * costs one request fewer per file.
 */
#define PT_OPENED_SETTLE 2 /* seconds */

static uint32_t pt_keep_pages(struct pt *pt, uint64_t node, int fd)
{
	struct pt_opened *o = &pt->pt_opened[node % PT_OPENED_MEMO];
	struct timespec now;
	struct stat st;
	bool same, settled;

	if (pt->pt_env.cache != IPC_CACHE_AUTO || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	settled = clock_gettime(CLOCK_REALTIME, &now) == 0 &&
		  now.tv_sec - st.st_ctim.tv_sec >= PT_OPENED_SETTLE &&
		  now.tv_sec - st.st_mtim.tv_sec >= PT_OPENED_SETTLE;
	pthread_mutex_lock(&pt->pt_opened_mu);
	same = o->o_node == node && o->o_dev == st.st_dev && o->o_ino == st.st_ino &&
	       o->o_size == st.st_size && o->o_mtime.tv_sec == st.st_mtim.tv_sec &&
	       o->o_mtime.tv_nsec == st.st_mtim.tv_nsec && o->o_ctime.tv_sec == st.st_ctim.tv_sec &&
	       o->o_ctime.tv_nsec == st.st_ctim.tv_nsec;
	*o = (struct pt_opened){.o_node = settled ? node : 0,
				.o_dev = st.st_dev,
				.o_ino = st.st_ino,
				.o_size = st.st_size,
				.o_mtime = st.st_mtim,
				.o_ctime = st.st_ctim};
	pthread_mutex_unlock(&pt->pt_opened_mu);
	return same ? FOPEN_KEEP_CACHE : 0;
}

static void pt_do_open(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct pt *pt = j->j_pt;
	uint64_t id;
	int pfd, fd, oflags, err;

	oflags = j->j_dir ? O_RDONLY | O_DIRECTORY
			  : pt_file_oflags(pt, (int)(j->j_flags & PT_OPEN_PASS));
	if ((err = fdt_node_get(pt->pt_fdt, j->j_id, &pfd)) < 0)
		goto out;
	fd = pt_reopen(pt, j->j_who, j->j_id, pfd, oflags,
		       j->j_dir ? PT_REOPEN_DIR : PT_REOPEN_FILE);
	fdt_put(pt->pt_fdt, pfd);
	if ((err = fd) < 0)
		goto out;
	if ((oflags & O_TRUNC) && (j->j_size & FUSE_OPEN_KILL_SUIDGID))
		pt_kill_suidgid(fd);
	if ((err = pt_fh_new(pt, j->j_id, fd, oflags, j->j_dir, &id)) < 0) {
		close(fd);
		goto out;
	}
	be_reply_open(arg, id,
		      j->j_dir ? pt->pt_dir_cache
			       : pt_file_open_flags(pt) |
					 ((oflags & O_TRUNC) ? 0 : pt_keep_pages(pt, j->j_id, fd)));
	return;
out:
	be_reply_err(arg, err);
}

/*
 * Straight into guest memory; a short count is EOF for the guest. On the
 * fast path RWF_NOWAIT reads only what the page cache holds: anything short
 * of the full size (a partly cached range, or the end of the file) is read
 * again, blocking, on the pool, so the guest never mistakes it for EOF.
 */
static bool pt_read_at_eof(int fd, uint64_t end)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= end;
}

static int pt_read_body(struct pt_job *j, bool nowait)
{
	struct pt *pt = j->j_pt;
	struct fdt *fdt = pt->pt_fdt;
	struct iovec *iov;
	uint64_t start, *memo;
	unsigned n;
	size_t want;
	ssize_t got;
	int fd, err;

	err = nowait ? fdt_fh_get_nowait(fdt, j->j_id, &fd) : fdt_fh_get(fdt, j->j_id, &fd);
	if (err < 0) {
		if (err == -EWOULDBLOCK && nowait)
			return PT_DEFER;
		be_reply_err(j->j_req, err);
		return 0;
	}
	want = be_req_data_iov(j->j_req, j->j_size, &iov, &n);
	if (!iov) {
		fdt_put(fdt, fd);
		be_reply_err(j->j_req, -ENOMEM);
		return 0;
	}
	memo = &pt->pt_no_nowait[j->j_id % PT_NO_NOWAIT_MEMO];
	if (nowait && *memo == j->j_id) {
		got = -1;
		errno = EOPNOTSUPP;
	} else {
		do
			got = want ? preadv2(fd, iov, (int)n, (off_t)j->j_off,
					     nowait ? RWF_NOWAIT : 0)
				   : 0;
		while (got < 0 && errno == EINTR);
		if (nowait && got < 0 && errno == EOPNOTSUPP)
			*memo = j->j_id;
	}
	/* tmpfs and kin make no promise not to block (EOPNOTSUPP), and their
	 * reads are memory copies: run here anyway while reads stay fast. */
	if (nowait && got < 0 && errno == EOPNOTSUPP && pt_meta_open(pt, start = bh_now_ns())) {
		long slept0 = pt_slept_before(pt);

		do
			got = preadv2(fd, iov, (int)n, (off_t)j->j_off, 0);
		while (got < 0 && errno == EINTR);
		err = got < 0 ? -errno : 0;
		pt_meta_took(pt, start, slept0, FUSE_READ);
		nowait = false; /* a short count is the end of the file */
	} else {
		err = got < 0 ? -errno : 0;
	}
	/* Short: the end of the file (a small file's whole content, the
	 * usual case) if the size says so, else the rest is not cached. */
	if (nowait && err == 0 && (size_t)got < want && pt_read_at_eof(fd, j->j_off + (size_t)got))
		nowait = false;
	fdt_put(fdt, fd);
	if (nowait && (err < 0 || (size_t)got < want))
		return PT_DEFER;
	if (err < 0)
		be_reply_err(j->j_req, err);
	else
		be_reply_data(j->j_req, (size_t)got);
	return 0;
}

static void pt_do_read(void *arg)
{
	pt_read_body(pt_job_of(arg), false);
}

/* The handle goes device-wide at once (a later request with it is EBADF
 * everywhere); the holder of the open file and every worker that borrowed
 * a duplicate close theirs, since any one of them keeps the file open on
 * the host. */
static void pt_do_release(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct pt *pt = j->j_pt;
	struct nt_fh fh;
	uint32_t tell;
	int err;

	if (be_req_header(arg)->opcode == FUSE_RELEASE)
		pt_locks_release(be_req_header(arg)->nodeid, be_req_args(arg));
	if ((err = nt_fh_free_get(pt->pt_env.nt, j->j_id, &fh)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	fdt_fh_drop(pt->pt_fdt, j->j_id);
	if (fh.f_isdir)
		pt_dirstream_drop(pt, j->j_id);
	/* a shift past the word would be undefined: owners are queue indexes */
	tell = fh.f_dups | (fh.f_owner < BH_MAX_QUEUES ? 1u << fh.f_owner : 0);
	tell &= ~(1u << pt->pt_env.self);
	for (uint32_t q = 0; q < BH_MAX_QUEUES; q++) {
		if (!(tell & (1u << q)))
			continue;
		err = peer_release_fh(pt->pt_env.peer, q, j->j_id);
		if (err < 0)
			log_warnx("RELEASE %llu: q%u unreachable: %s", (unsigned long long)j->j_id,
				  q, strerror(-err));
	}
	be_reply_err(arg, 0);
}

static void pt_do_statfs(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct fuse_kstatfs k;
	struct statfs sf;
	int fd, err;

	if ((err = fdt_node_get(j->j_pt->pt_fdt, j->j_id, &fd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	err = fstatfs(fd, &sf) < 0 ? -errno : 0;
	fdt_put(j->j_pt->pt_fdt, fd);
	if (err < 0) {
		be_reply_err(arg, err);
		return;
	}
	memset(&k, 0, sizeof(k));
	k.blocks = sf.f_blocks;
	k.bfree = sf.f_bfree;
	k.bavail = sf.f_bavail;
	k.files = sf.f_files;
	k.ffree = sf.f_ffree;
	k.bsize = (uint32_t)sf.f_bsize;
	k.namelen = (uint32_t)sf.f_namelen;
	k.frsize = (uint32_t)sf.f_frsize;
	be_reply_statfs(arg, &k);
}

/* ---- be_ops entry points (loop thread) ---- */

void pt_lookup(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
	       const char *name)
{
	const struct pt_job args = {.j_id = parent, .j_name = name};

#ifdef BH_TEST_HOOKS
	struct pt *pt = ctx;

	/* --test-escape-probe: ECHILD when nothing escaped, EXDEV otherwise. */
	if (pt->pt_env.test_escape_probe && parent == NT_ROOT_ID &&
	    strcmp(name, SBX_TEST_PROBE_NAME) == 0) {
		unsigned n;

		be_reply_err(r, sbx_test_escape_probe(pt->pt_env.proc_fd, &n) == 0 ? -ECHILD
											: -EXDEV);
		return;
	}
#endif
	/* A name not in the host's dentry cache (a negative lookup before a
	 * create, a cold directory) is a directory search: a metadata call. */
	if (pt_lookup_body(pt_prepare(ctx, r, who, &args), true) == PT_DEFER)
		pt_meta(ctx, r, who, pt_do_lookup, &args, parent);
}

void pt_getattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		bool has_fh, uint64_t fh)
{
	/* The node's O_PATH descriptor answers for open files too. */
	pt_fast(ctx, r, who, pt_getattr_body, pt_do_getattr, &(struct pt_job){.j_id = node});
}

void pt_readlink(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node)
{
	pt_meta(ctx, r, who, pt_do_readlink, &(struct pt_job){.j_id = node}, node);
}

void pt_open(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
	     uint32_t flags)
{
	const struct fuse_open_in *oi = be_req_args(r);

	/* j_size carries open_flags (FUSE_OPEN_KILL_SUIDGID). Special files
	 * are refused before anything is opened (pt_reopen), so an open never
	 * waits for a device or a FIFO's other end: a metadata call. */
	pt_meta(ctx, r, who, pt_do_open,
		&(struct pt_job){.j_id = node, .j_flags = flags, .j_size = oi->open_flags}, node);
}

void pt_opendir(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		uint32_t flags)
{
	pt_meta(ctx, r, who, pt_do_open,
		&(struct pt_job){.j_id = node, .j_flags = flags, .j_dir = true}, node);
}

void pt_read(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh, uint64_t off,
	     uint32_t size)
{
	struct pt *pt = ctx;

	/* Large reads are copy-bound. With more requests waiting, the pool
	 * copies one while the loop takes the next, and the loop copies too
	 * (cached data only) while the pool is busy, so two copies run at once.
	 * One that comes alone runs here (cached data only): the loop has
	 * nothing else to do, and the pool would cost two thread wake-ups. */
	if (size > PT_INLINE_IO_MAX && !tp_busy(pt->pt_env.tp) && pt_more_waiting(pt))
		pt_submit(ctx, r, who, pt_do_read,
			  &(struct pt_job){.j_id = fh, .j_off = off, .j_size = size});
	else
		pt_fast(ctx, r, who, pt_read_body, pt_do_read,
			&(struct pt_job){.j_id = fh, .j_off = off, .j_size = size});
}

/* RELEASE with FUSE_RELEASE_FLOCK_UNLOCK drops the flock owner's locks
 * first (pt_do_release, on the pool: that may wait for another worker). */
void pt_release(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh)
{
	struct pt *pt = ctx;
	const struct fuse_release_in *in = be_req_args(r);
	struct nt_node n;
	struct nt_fh f;
	bool local;

	/* On the loop thread only when no other worker is involved and the
	 * close cannot wait on a device (a tty drains its output first). */
	local = !(be_req_header(r)->opcode == FUSE_RELEASE &&
		  (in->release_flags & FUSE_RELEASE_FLOCK_UNLOCK)) &&
		nt_fh_get(pt->pt_env.nt, fh, &f) == 0 && f.f_owner == pt->pt_env.self &&
		!f.f_dups && nt_node_get(pt->pt_env.nt, f.f_node, &n) == 0 &&
		(S_ISREG(n.n_mode) || S_ISDIR(n.n_mode));
	if (local)
		pt_meta(pt, r, who, pt_do_release, &(struct pt_job){.j_id = fh}, 0);
	else
		pt_submit(pt, r, who, pt_do_release, &(struct pt_job){.j_id = fh});
}

static void pt_do_flush(void *arg)
{
	const struct fuse_flush_in *in = be_req_args(arg);

	pt_locks_flush(be_req_header(arg)->nodeid, in->lock_owner);
	be_reply_err(arg, 0);
}

/* close() in the guest: that owner's POSIX locks on the file go. Nothing
 * is buffered here (writes go straight to the host), so a FLUSH of an
 * owner without locks is answered at once; one whose description another
 * worker holds waits for it on the pool. */
void pt_flush(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh)
{
	const struct fuse_flush_in *in = be_req_args(r);

	if (pt_locks_flush_local(be_req_header(r)->nodeid, in->lock_owner))
		be_reply_err(r, 0);
	else
		pt_submit(ctx, r, who, pt_do_flush, &(struct pt_job){.j_id = fh});
}

void pt_statfs(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node)
{
	pt_meta(ctx, r, who, pt_do_statfs, &(struct pt_job){.j_id = node}, node);
}
