/*
 * passthrough.c - the host-directory back end, read side: LOOKUP,
 * GETATTR, READLINK, OPEN/READ/RELEASE, OPENDIR/RELEASEDIR, FLUSH, STATFS,
 * and the ops table (the write side is passthrough_write.c, listings
 * passthrough_dir.c), and what other workers ask of it (descriptors).
 * OPEN for writing lives here too: it is the same reopen, as the caller.
 * The memory back end is these same calls over the file system the parent
 * made in memory: the share descriptor is all that differs.
 * Runs in: the worker (sandboxed), blocking calls on the pool threads.
 * Names and ids come from the guest, already copied and checked by the
 * dispatcher (no '/', NUL-terminated, <= 255 bytes); ids are resolved
 * through the node table / fdtable, which check range and generation. Every
 * host access is relative to a directory descriptor, never follows a
 * symlink (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW) and never goes above the share
 * root ("..": root stays root).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "backend.h"
#include "bulkhead.h"
#include "fdtable.h"
#include "ipc.h"
#include "log.h"
#include "node_table.h"
#include "passthrough.h"
#include "util.h"
#include "peer.h"
#include "sandbox.h"
#include "threadpool.h"

static struct pt_job *pt_prepare(struct pt *pt, struct fuse_req *r, const struct pt_job *args)
{
	struct pt_job *j = be_req_priv(r);

	*j = *args;
	j->j_pt = pt;
	j->j_req = r;
	return j;
}

void pt_submit(struct pt *pt, struct fuse_req *r, tp_fn fn, const struct pt_job *args)
{
	pt_prepare(pt, r, args);
	tp_submit(pt->pt_env.tp, fn, r);
}

/*
 * The fast path. A few operations can be finished on the loop thread when
 * the kernel promises not to block: the descriptor is already here (no
 * round trip to its owner), the name is in the dentry cache
 * (RESOLVE_CACHED), the data is in the page cache (RWF_NOWAIT). The body
 * then replies at once and returns 0; PT_DEFER means "would block": the
 * same body runs again, blocking, on the pool. This keeps small cached
 * requests free of two thread hand-offs while a slow disk still never
 * stalls the queue.
 */
#define PT_DEFER 1

static void pt_fast(struct pt *pt, struct fuse_req *r, int (*body)(struct pt_job *, bool),
		    tp_fn slow, const struct pt_job *args)
{
	struct pt_job *j = pt_prepare(pt, r, args);

	if (body(j, true) == PT_DEFER)
		tp_submit(pt->pt_env.tp, slow, r);
}

/*
 * Metadata calls (CREATE, MKDIR, UNLINK, RELEASE and kin) have no "would
 * block" flag, but on a healthy local file system they take a few
 * microseconds: less than handing them to a pool thread and waking the loop
 * for the reply. So the loop runs them itself while they stay fast, and
 * times each; one slower than PT_META_SLOW_NS (a directory block read from
 * disk, an inode lock someone else holds) sends every metadata call to the
 * pool for the next PT_META_BACKOFF_NS, so a slow disk costs the queue one
 * stall a second at most. A call whose directory descriptor is not here
 * (reopen, or a round trip to its owner) goes to the pool at once, and a
 * body may decline (pt_meta_decline) when it finds it could wait after
 * all, before it has done anything.
 */
#define PT_META_SLOW_NS	   (2000ull * 1000)
#define PT_META_BACKOFF_NS (100ull * 1000 * 1000)

/* May the loop thread run a call that could block? Not while backing off. */
static bool pt_meta_open(const struct pt *pt, uint64_t now)
{
	return now >= pt->pt_meta_until;
}

/* The loop thread's voluntary context switches so far: a call that slept
 * (waited for the disk or a lock) adds one, a preemption does not. */
static long pt_slept_count(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nvcsw : -1;
}

/* The count before an inline call, read once per pass over the ring (the
 * loop sleeps only between passes, in epoll_wait), not once per call: a
 * system call less on every call that runs inline. */
static long pt_slept_before(struct pt *pt)
{
	const uint64_t *passes = pt->pt_env.ring_passes;

	if (!passes)
		return pt_slept_count();
	if (*passes != pt->pt_pass_seen) {
		pt->pt_pass_seen = *passes;
		pt->pt_slept_base = pt_slept_count();
	}
	return pt->pt_slept_base;
}

/* A call that could block ran on the loop thread from start until now,
 * with slept0 the count before it (or before an earlier call of the same
 * pass: a sleep of that one counts too): one that was slow because it slept
 * closes the gate for PT_META_BACKOFF_NS. One that was only preempted (a
 * host whose CPUs also run the guest's vCPUs does that all the time) is
 * not the disk's fault and leaves the gate open: measured, the wall time
 * alone sent a third of a guest's opens to the pool. */
static void pt_meta_took(struct pt *pt, uint64_t start, long slept0, uint32_t opcode)
{
	uint64_t took = bh_now_ns() - start;

	if (took <= PT_META_SLOW_NS || (slept0 >= 0 && pt_slept_count() == slept0))
		return;
	pt->pt_meta_until = start + took + PT_META_BACKOFF_NS;
	log_debug("opcode %u took %llu us on the loop thread: calls that may block go to the "
		  "pool for %llu ms",
		  opcode, (unsigned long long)(took / 1000), PT_META_BACKOFF_NS / 1000000);
}

/* The loop thread runs fn if the gate is open and the descriptor it needs
 * (the node's, or the open file's with fh) is already here. */
static void pt_inline(struct pt *pt, struct fuse_req *r, tp_fn fn, const struct pt_job *args,
		      uint64_t id, bool fh)
{
	struct pt_job *j = pt_prepare(pt, r, args);
	uint64_t start = bh_now_ns();
	uint32_t opcode = be_req_header(r)->opcode;
	int fd = -1;
	long slept0;

	if (!pt_meta_open(pt, start) ||
	    (id && (fh ? fdt_fh_get_nowait(pt->pt_fdt, id, &fd)
		       : fdt_node_get_nowait(pt->pt_fdt, id, &fd)) < 0)) {
		tp_submit(pt->pt_env.tp, fn, r);
		return;
	}
	j->j_inline = true;
	slept0 = pt_slept_before(pt);
	fn(r); /* replies, and r may be gone, unless it declined */
	if (id)
		fdt_put(pt->pt_fdt, fd);
	if (pt->pt_meta_declined) {
		pt->pt_meta_declined = false;
		j->j_inline = false;
		tp_submit(pt->pt_env.tp, fn, r);
		return;
	}
	pt_meta_took(pt, start, slept0, opcode);
}

void pt_meta(struct pt *pt, struct fuse_req *r, tp_fn fn, const struct pt_job *args, uint64_t node)
{
	pt_inline(pt, r, fn, args, node, false);
}

void pt_meta_fh(struct pt *pt, struct fuse_req *r, tp_fn fn, const struct pt_job *args, uint64_t fh)
{
	pt_inline(pt, r, fn, args, fh, true);
}

bool pt_meta_decline(struct pt_job *j)
{
	if (!j->j_inline)
		return false;
	j->j_pt->pt_meta_declined = true;
	return true;
}

static int pt_node_fd(struct pt *pt, uint64_t id, bool nowait, int *fd)
{
	return nowait ? fdt_node_get_nowait(pt->pt_fdt, id, fd)
		      : fdt_node_get(pt->pt_fdt, id, fd);
}

struct pt_job *pt_job_of(void *arg)
{
	return be_req_priv(arg);
}

void pt_fill_attr(struct fuse_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = (uint32_t)st->st_rdev;
	a->blksize = (uint32_t)st->st_blksize;
}

void pt_fill_entry(const struct pt *pt, struct fuse_entry_out *e, uint64_t id,
		   const struct stat *st)
{
	e->nodeid = id;
	e->generation = id >> NT_SLOT_BITS;
	e->entry_valid = e->attr_valid = pt->pt_valid;
	e->entry_valid_nsec = e->attr_valid_nsec = 0;
	pt_fill_attr(&e->attr, st);
}

int pt_stat_fd(int fd, struct stat *st)
{
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

void pt_proc_name(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "%d", fd);
}

uint32_t pt_file_open_flags(const struct pt *pt)
{
	return pt->pt_keep_cache;
}

int pt_file_oflags(const struct pt *pt, int oflags)
{
	if (pt->pt_env.writeback) {
		if ((oflags & O_ACCMODE) == O_WRONLY)
			oflags = (oflags & ~O_ACCMODE) | O_RDWR;
		oflags &= ~O_APPEND;
	}
	return oflags;
}

int pt_openat_as_caller(const struct pt *pt, struct fuse_req *r, int dirfd, const char *path,
			int oflags, mode_t mode)
{
	int fd, err;

	if ((err = pt_creds_enter(pt, r)) < 0)
		return err;
	fd = openat(dirfd, path, oflags | O_CLOEXEC, mode);
	err = fd < 0 ? -errno : fd;
	pt_creds_leave(pt);
	return err;
}

int pt_fh_new(struct pt *pt, uint64_t node, int fd, int oflags, bool dir, uint64_t *id)
{
	struct nt_fh fh;
	int err;

	err = nt_fh_alloc(pt->pt_env.nt, node, pt->pt_env.self, (uint32_t)oflags, dir, &fh);
	if (err < 0)
		return err;
	if ((err = fdt_fh_install(pt->pt_fdt, fh.f_id, fd)) < 0) {
		nt_fh_free(pt->pt_env.nt, fh.f_id);
		return err;
	}
	*id = fh.f_id;
	return 0;
}

/* A bounded table is full: one line for the operator, at most a minute. */
static void pt_log_full(const char *what)
{
	static time_t last;

	if (!bh_ratelimit(&last, 60))
		return;
	log_warnx("%s full: the guest gets ENFILE", what);
}

/* Out of descriptors is the host's table being full, not the guest's
 * doing: ENFILE, and a line for the operator. */
static int pt_open_err(int e)
{
	if (e == EMFILE || e == ENFILE) {
		pt_log_full("descriptor table");
		return -ENFILE;
	}
	return -e;
}

void pt_node_unref(struct pt *pt, uint64_t id)
{
	uint32_t owner;
	bool dead;

	if (nt_node_forget(pt->pt_env.nt, id, 1, &dead, &owner) < 0 || !dead)
		return;
	/* Only a node this request created can die here, and we own it. */
	fdt_node_drop(pt->pt_fdt, id);
	nt_node_free(pt->pt_env.nt, id);
}

uint64_t pt_node_dev(struct pt *pt, uint64_t id)
{
	struct nt_node n;

	if (id == NT_ROOT_ID)
		return pt->pt_root_dev;
	return nt_node_get(pt->pt_env.nt, id, &n) == 0 ? n.n_dev : PT_NO_DEV;
}

/*
 * Host submounts are announced, as virtiofsd's --announce-submounts does:
 * a directory on another device than its parent is a mount point, and
 * with FUSE_SUBMOUNTS negotiated its entry carries FUSE_ATTR_SUBMOUNT, so
 * the guest mounts it as its own superblock with its own st_dev and equal
 * inode numbers on two host file systems never meet under one st_dev.
 * Remapping inode numbers instead would make them change whenever a node
 * is forgotten and looked up again. Only directories off the root's device
 * get here, so the share's common case pays nothing.
 */
static bool pt_is_submount(struct pt *pt, uint64_t parent, dev_t dev)
{
	struct nt_session ss;
	uint64_t pdev = pt_node_dev(pt, parent);

	if (pdev == PT_NO_DEV || pdev == (uint64_t)dev)
		return false;
	nt_session_get(pt->pt_env.nt, &ss);
	return (ss.s_flags & FUSE_SUBMOUNTS) != 0;
}

int pt_node_entry(struct pt *pt, int fd, struct fuse_entry_out *e)
{
	return pt_node_entry_named(pt, fd, 0, NULL, e);
}

/* The entry for node id with attributes st, reached by a name in parent:
 * a directory on another device than its parent is a submount. */
static void pt_fill_named(struct pt *pt, struct fuse_entry_out *e, uint64_t id, uint64_t parent,
			  const struct stat *st)
{
	pt_fill_entry(pt, e, id, st);
	if (S_ISDIR(st->st_mode) && st->st_dev != pt->pt_root_dev && parent &&
	    pt_is_submount(pt, parent, st->st_dev))
		e->attr.flags |= FUSE_ATTR_SUBMOUNT;
}

int pt_node_entry_named(struct pt *pt, int fd, uint64_t parent, const char *name,
			struct fuse_entry_out *e)
{
	struct nt_node n;
	struct stat st;
	bool created;
	int err;

	if ((err = pt_stat_fd(fd, &st)) < 0)
		goto fail;
	if (st.st_dev == pt->pt_root_dev && st.st_ino == pt->pt_root_ino) {
		close(fd);
		pt_fill_entry(pt, e, NT_ROOT_ID, &st);
		return 0;
	}
	/* "." and ".." name no link of this node under parent. */
	if (name && (strcmp(name, ".") == 0 || strcmp(name, "..") == 0))
		name = NULL;
	if (!name)
		parent = 0;
	err = nt_node_ref_named(pt->pt_env.nt, st.st_dev, st.st_ino, st.st_mode & S_IFMT,
				pt->pt_env.self, name ? parent : 0, name, &n, &created);
	if (err < 0)
		goto fail; /* -ENFILE: node_table.c told the operator */
	if (created) {
		err = name ? fdt_node_install_named(pt->pt_fdt, n.n_id, fd)
			   : fdt_node_install(pt->pt_fdt, n.n_id, fd);
		if (err < 0) {
			bool dead;
			uint32_t owner;

			if (nt_node_forget(pt->pt_env.nt, n.n_id, 1, &dead, &owner) == 0 && dead)
				nt_node_free(pt->pt_env.nt, n.n_id);
			goto fail;
		}
	} else {
		fdt_node_offer(pt->pt_fdt, n.n_id, fd);
	}
	pt_fill_named(pt, e, n.n_id, parent, &st);
	return 0;
fail:
	close(fd);
	return err;
}

/*
 * READDIRPLUS of a name whose node this worker already holds a descriptor
 * for (found by the listing's d_ino in directory device dirdev): one
 * fstatat instead of pt_lookup_at's O_PATH open, fstat and close (an ls -l
 * of a listed directory meets only such names). The name must still lead
 * to that node, which the descriptor held keeps from being reused.
 * -EAGAIN: ask pt_lookup_at.
 */
int pt_lookup_known(struct pt *pt, int dirfd, uint64_t dirdev, uint64_t parent, const char *name,
		    uint64_t d_ino, struct fuse_entry_out *e)
{
	struct nt_node n;
	struct stat st;

	if (nt_node_find(pt->pt_env.nt, dirdev, d_ino, &n) < 0 ||
	    !fdt_node_held(pt->pt_fdt, n.n_id))
		return -EAGAIN;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) < 0 ||
	    (uint64_t)st.st_dev != n.n_dev || (uint64_t)st.st_ino != n.n_ino)
		return -EAGAIN;
	if (nt_node_ref_known(pt->pt_env.nt, n.n_id, n.n_dev, n.n_ino, parent, name, &n) < 0)
		return -EAGAIN;
	pt_fill_named(pt, e, n.n_id, parent, &st);
	return 0;
}

/*
 * Resolve name in the directory dirfd (node parent) and take one lookup
 * reference on the result. "." is the directory itself and ".." of the
 * root is the root; any other ".." must lead to the share root or below it
 * (pt_inside_share: a directory moved out of the share by the host has a
 * parent outside), else ENOENT. The share root always answers as node 1
 * (not counted: the root is never forgotten).
 */
int pt_lookup_at(struct pt *pt, int dirfd, uint64_t parent, const char *name, bool nowait,
		 struct fuse_entry_out *e)
{
	bool dotdot = strcmp(name, "..") == 0;
	const char *path = name;
	int fd;

	if (strcmp(name, ".") == 0 || (parent == NT_ROOT_ID && dotdot))
		path = ".";
	else if (dotdot && nowait)
		return -EWOULDBLOCK; /* the walk up to the root is the pool's */
	if (nowait) {
		struct open_how how = {.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				       .resolve = RESOLVE_CACHED | RESOLVE_NO_MAGICLINKS};

		fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd < 0)
			return errno == EAGAIN || errno == ENOSYS || errno == EINVAL
				   ? -EWOULDBLOCK
				   : pt_open_err(errno);
	} else {
		fd = openat(dirfd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return pt_open_err(errno);
	}
	if (dotdot && path == name && pt_inside_share(pt, fd) < 0) {
		static time_t last;

		if (bh_ratelimit(&last, 60))
			log_warnx("LOOKUP \"..\" of node %llu leads outside the share (moved away "
				  "on the host?): ENOENT",
				  (unsigned long long)parent);
		close(fd);
		return -ENOENT;
	}
	return pt_node_entry_named(pt, fd, parent, name, e);
}

/* ---- jobs (pool threads) ---- */

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
	fd = pt_reopen(pt, j->j_req, j->j_id, pfd, oflags, j->j_dir ? PT_REOPEN_DIR : PT_REOPEN_FILE);
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

static void pt_lookup(void *ctx, struct fuse_req *r, uint64_t parent, const char *name)
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
	if (pt_lookup_body(pt_prepare(ctx, r, &args), true) == PT_DEFER)
		pt_meta(ctx, r, pt_do_lookup, &args, parent);
}

static void pt_getattr(void *ctx, struct fuse_req *r, uint64_t node, bool has_fh, uint64_t fh)
{
	/* The node's O_PATH descriptor answers for open files too. */
	pt_fast(ctx, r, pt_getattr_body, pt_do_getattr, &(struct pt_job){.j_id = node});
}

static void pt_readlink(void *ctx, struct fuse_req *r, uint64_t node)
{
	pt_meta(ctx, r, pt_do_readlink, &(struct pt_job){.j_id = node}, node);
}

static void pt_open(void *ctx, struct fuse_req *r, uint64_t node, uint32_t flags)
{
	const struct fuse_open_in *oi = be_req_args(r);

	/* j_size carries open_flags (FUSE_OPEN_KILL_SUIDGID). Special files
	 * are refused before anything is opened (pt_reopen), so an open never
	 * waits for a device or a FIFO's other end: a metadata call. */
	pt_meta(ctx, r, pt_do_open,
		&(struct pt_job){.j_id = node, .j_flags = flags, .j_size = oi->open_flags}, node);
}

static void pt_opendir(void *ctx, struct fuse_req *r, uint64_t node, uint32_t flags)
{
	pt_meta(ctx, r, pt_do_open, &(struct pt_job){.j_id = node, .j_flags = flags, .j_dir = true},
		node);
}

static void pt_read(void *ctx, struct fuse_req *r, uint64_t fh, uint64_t off, uint32_t size)
{
	struct pt *pt = ctx;

	/* Large reads are copy-bound. With more requests waiting, the pool
	 * copies one while the loop takes the next, and the loop copies too
	 * (cached data only) while the pool is busy, so two copies run at once.
	 * One that comes alone runs here (cached data only): the loop has
	 * nothing else to do, and the pool would cost two thread wake-ups. */
	if (size > PT_INLINE_IO_MAX && !tp_busy(pt->pt_env.tp) && pt_more_waiting(pt))
		pt_submit(ctx, r, pt_do_read,
			  &(struct pt_job){.j_id = fh, .j_off = off, .j_size = size});
	else
		pt_fast(ctx, r, pt_read_body, pt_do_read,
			&(struct pt_job){.j_id = fh, .j_off = off, .j_size = size});
}

/* RELEASE with FUSE_RELEASE_FLOCK_UNLOCK drops the flock owner's locks
 * first (pt_do_release, on the pool: that may wait for another worker). */
static void pt_release(void *ctx, struct fuse_req *r, uint64_t fh)
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
		pt_meta(pt, r, pt_do_release, &(struct pt_job){.j_id = fh}, 0);
	else
		pt_submit(pt, r, pt_do_release, &(struct pt_job){.j_id = fh});
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
static void pt_flush(void *ctx, struct fuse_req *r, uint64_t fh)
{
	const struct fuse_flush_in *in = be_req_args(r);

	if (pt_locks_flush_local(be_req_header(r)->nodeid, in->lock_owner))
		be_reply_err(r, 0);
	else
		pt_submit(ctx, r, pt_do_flush, &(struct pt_job){.j_id = fh});
}

static void pt_statfs(void *ctx, struct fuse_req *r, uint64_t node)
{
	pt_meta(ctx, r, pt_do_statfs, &(struct pt_job){.j_id = node}, node);
}

/*
 * What other workers ask of us (peer thread): duplicates of the node and
 * file descriptors we own, and releases of them. File handles come from
 * the descriptor table, lock descriptions from passthrough_locks.c; both
 * share the node table's handle id space.
 */
static int pt_provide_node_fd(void *ctx, uint64_t id)
{
	return fdt_provide_node_fd(((struct pt *)ctx)->pt_fdt, id);
}

static int pt_provide_fh_fd(void *ctx, uint64_t id)
{
	int fd = fdt_provide_fh_fd(((struct pt *)ctx)->pt_fdt, id);

	return fd == -EBADF ? pt_locks_provide_fd(id) : fd;
}

static void pt_release_node(void *ctx, uint64_t id)
{
	fdt_release_node(((struct pt *)ctx)->pt_fdt, id);
}

static void pt_release_fh(void *ctx, uint64_t id)
{
	fdt_release_fh(((struct pt *)ctx)->pt_fdt, id);
	pt_locks_release_id(id);
}

static int pt_init(const struct be_env *env, void **ctx)
{
	struct stat st;
	struct pt *pt;

	if (fstat(env->root_fd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (!(pt = calloc(1, sizeof(*pt))))
		return -ENOMEM;
	pt->pt_env = *env;
	if (!(pt->pt_fdt = fdt_create(env->nt, env->self, env->root_fd, PT_FDT_CACHE))) {
		free(pt);
		return -ENOMEM;
	}
	fdt_set_peer(pt->pt_fdt, env->peer);
#ifdef BH_TEST_HOOKS
	if (env->test_slow_borrow)
		fdt_test_slow_borrow(pt->pt_fdt);
#endif
	peer_set_provider(env->peer, &(struct peer_provider){
					 .ctx = pt,
					 .node_fd = pt_provide_node_fd,
					 .fh_fd = pt_provide_fh_fd,
					 .release_node = pt_release_node,
					 .release_fh = pt_release_fh,
				     });
	pt->pt_root_dev = st.st_dev;
	pt->pt_root_ino = st.st_ino;
	pt->pt_setcreds = geteuid() == 0;
	pthread_mutex_init(&pt->pt_opened_mu, NULL);
	pthread_mutex_init(&pt->pt_dirs_mu, NULL);
	pt_locks_init(env->nt, env->peer, env->self);
	/* The guest applied its umask already (no FUSE_DONT_MASK): ours must not
	 * take more bits off what it asks for. */
	umask(0);
	switch (env->cache) {
	case IPC_CACHE_NONE:
		pt->pt_valid = 0;
		pt->pt_keep_cache = FOPEN_DIRECT_IO;
		break;
	case IPC_CACHE_ALWAYS:
		pt->pt_valid = 86400;
		pt->pt_keep_cache = FOPEN_KEEP_CACHE;
		pt->pt_dir_cache = FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR;
		break;
	default:
		pt->pt_valid = 1;
		break;
	}
	*ctx = pt;
	return 0;
}

/* A new session: every descriptor we hold is stale. */
static void pt_session_reset(void *ctx)
{
	struct pt *pt = ctx;

	fdt_reset(pt->pt_fdt);
	pt_locks_reset();
}

/* The node's last lookup is gone: drop our descriptor of it (ours, or our
 * cached duplicate of another worker's). */
static void pt_forget(void *ctx, uint64_t id)
{
	struct pt *pt = ctx;

	fdt_node_drop(pt->pt_fdt, id);
}

static void pt_ring_stop(void *ctx)
{
	pt_locks_ring_stop();
}


static void pt_destroy(void *ctx)
{
	struct pt *pt = ctx;

	pt_dirstreams_free(pt);
	fdt_destroy(pt->pt_fdt);
	free(pt);
}

const struct be_ops be_passthrough_ops = {
    .name = "passthrough",
    .init = pt_init,
    .destroy = pt_destroy,
    .lookup = pt_lookup,
    .getattr = pt_getattr,
    .readlink = pt_readlink,
    .open = pt_open,
    .read = pt_read,
    .release = pt_release,
    .flush = pt_flush,
    .opendir = pt_opendir,
    .readdir = pt_readdir,
    .releasedir = pt_release,
    .statfs = pt_statfs,
    .init_flags = pt_init_flags,
    .setattr = pt_setattr,
    .write = pt_write,
    .fsync = pt_fsync,
    .create = pt_create,
    .mknod = pt_mknod,
    .link = pt_link,
    .unlink = pt_unlink,
    .rename = pt_rename,
    .access = pt_access,
    .fallocate = pt_fallocate,
    .lseek = pt_lseek,
    .copy_file_range = pt_copy_file_range,
    .syncfs = pt_syncfs,
    .session_reset = pt_session_reset,
    .ring_stop = pt_ring_stop,
    .forget = pt_forget,
    .getlk = pt_getlk,
    .setlk = pt_setlk,
    .getxattr = pt_getxattr,
    .listxattr = pt_listxattr,
    .setxattr = pt_setxattr,
    .removexattr = pt_removexattr,
};
