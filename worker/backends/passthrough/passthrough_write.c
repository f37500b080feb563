/*
 * passthrough_write.c - the passthrough back end's operations that change
 * the share: SETATTR, WRITE, FSYNC(DIR), CREATE/TMPFILE, MKNOD/MKDIR/
 * SYMLINK, LINK, UNLINK/RMDIR, RENAME(2), ACCESS, FALLOCATE, LSEEK,
 * COPY_FILE_RANGE, SYNCFS.
 * Runs in: the worker (sandboxed), every host call on a pool thread. Names,
 * modes and ids come from the guest, already copied and checked by the
 * dispatcher (no '/', no "." or ".." for names that are created); ids are
 * resolved through the node table / fdtable. Objects are created, opened
 * and removed with the caller's uid/gid on that one thread (raw
 * setresuid/setresgid), so the host checks its permissions and owns what it
 * makes; nothing is ever re-resolved by name once we hold a descriptor, so
 * unlinked-but-open files keep working.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backend.h"
#include "fdtable.h"
#include "log.h"
#include "node_table.h"
#include "passthrough.h"


void pt_kill_suidgid(int fd)
{
	struct stat st;
	mode_t m;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	m = st.st_mode & ~S_ISUID;
	if (st.st_mode & S_IXGRP)
		m &= ~S_ISGID; /* setgid without group-exec is mandatory locking: kept */
	if (m != st.st_mode && fchmod(fd, m & 07777) < 0)
		log_debug("clear setuid/setgid: %s", strerror(errno));
}

uint32_t pt_init_flags(void *ctx)
{
	struct pt *pt = ctx;

	uint32_t f = FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS; /* passthrough_locks.c */

	if (pt->pt_env.writeback)
		f |= FUSE_WRITEBACK_CACHE;
	if (pt->pt_env.xattr)
		f |= FUSE_SETXATTR_EXT;
	f |= FUSE_SUBMOUNTS; /* mount points flagged on LOOKUP (passthrough_core.c) */
	return f;
}

static void pt_reply_attr_fd(struct pt *pt, struct fuse_req *r, int fd)
{
	struct fuse_attr_out a;
	struct stat st;
	int err;

	if ((err = pt_stat_fd(fd, &st)) < 0) {
		be_reply_err(r, err);
		return;
	}
	memset(&a, 0, sizeof(a));
	a.attr_valid = pt->pt_valid;
	pt_fill_attr(&a.attr, &st);
	be_reply_attr(r, &a);
}

/* ---- SETATTR ---- */

static int pt_setattr_times(struct pt *pt, int nfd, int ffd, const struct fuse_setattr_in *in)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
	uint32_t v = in->valid;

	if (v & FATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (v & FATTR_ATIME)
		ts[0] = (struct timespec){(time_t)in->atime, in->atimensec};
	if (v & FATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (v & FATTR_MTIME)
		ts[1] = (struct timespec){(time_t)in->mtime, in->mtimensec};
	if (ffd >= 0)
		return futimens(ffd, ts) < 0 ? -errno : 0;
	return pt_node_utimens(pt, nfd, ts);
}

/* Truncation of a regular file only (what truncate(2) says of anything
 * else: EISDIR, EINVAL), checked before anything is opened. */
static int pt_setattr_size(struct pt *pt, uint64_t node, int nfd, int ffd, uint64_t size)
{
	struct stat st;
	int fd, err;

	if (size > (uint64_t)INT64_MAX)
		return -EINVAL;
	if (ffd >= 0 && ftruncate(ffd, (off_t)size) == 0)
		return 0;
	if ((err = pt_stat_fd(nfd, &st)) < 0)
		return err;
	if (!S_ISREG(st.st_mode))
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	/* No handle, or one opened read-only: a write-only open of the node. */
	fd = pt_reopen(pt, NULL, node, nfd, O_WRONLY | O_NONBLOCK, PT_REOPEN_FILE);
	if (fd < 0)
		return fd;
	err = ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
	close(fd);
	return err;
}

static void pt_do_setattr(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct pt *pt = j->j_pt;
	const struct fuse_setattr_in *in = j->j_arg;
	uint32_t v = in->valid;
	int nfd, ffd = -1, err;

	if ((err = fdt_node_get(pt->pt_fdt, j->j_id, &nfd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	if ((v & FATTR_FH) && (err = fdt_fh_get(pt->pt_fdt, in->fh, &ffd)) < 0)
		goto out;
	if (v & FATTR_MODE) {
		err = ffd >= 0 ? (fchmod(ffd, in->mode & 07777) < 0 ? -errno : 0)
			       : pt_node_chmod(pt, nfd, in->mode & 07777);
		if (err < 0)
			goto out;
	}
	if ((v & (FATTR_UID | FATTR_GID)) &&
	    fchownat(nfd, "", (v & FATTR_UID) ? in->uid : (uid_t)-1,
		     (v & FATTR_GID) ? in->gid : (gid_t)-1, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		err = -errno;
		goto out;
	}
	if ((v & FATTR_SIZE) && (err = pt_setattr_size(pt, j->j_id, nfd, ffd, in->size)) < 0)
		goto out;
	if ((v & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) &&
	    (err = pt_setattr_times(pt, nfd, ffd, in)) < 0)
		goto out;
	/* With MODE the guest already computed the bits; ctime follows the host. */
	if ((v & FATTR_KILL_SUIDGID) && !(v & FATTR_MODE)) {
		struct stat st;

		if (pt_stat_fd(nfd, &st) == 0 && S_ISREG(st.st_mode)) {
			mode_t m = st.st_mode & ~S_ISUID;

			if (st.st_mode & S_IXGRP)
				m &= ~S_ISGID;
			if (m != st.st_mode && (err = pt_node_chmod(pt, nfd, m & 07777)) < 0)
				log_debug("SETATTR: clear setuid/setgid: %s", strerror(-err));
		}
	}
	err = 0;
out:
	if (err == 0)
		pt_reply_attr_fd(pt, arg, nfd);
	else
		be_reply_err(arg, err);
	if (ffd >= 0)
		fdt_put(pt->pt_fdt, ffd);
	fdt_put(pt->pt_fdt, nfd);
}

void pt_setattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		const struct fuse_setattr_in *in)
{
	/* One with a handle may need it from another worker: the pool waits. */
	if (in->valid & FATTR_FH)
		pt_submit(ctx, r, who, pt_do_setattr, &(struct pt_job){.j_id = node, .j_arg = in});
	else
		pt_meta(ctx, r, who, pt_do_setattr, &(struct pt_job){.j_id = node, .j_arg = in},
			node);
}

/* ---- WRITE, FSYNC ---- */

/* Straight from guest memory: no bounce buffer. */
static void pt_do_write(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct fdt *fdt = j->j_pt->pt_fdt;
	struct iovec *iov;
	unsigned n;
	size_t want;
	ssize_t got;
	int fd, err;

	if ((err = fdt_fh_get(fdt, j->j_id, &fd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	want = be_req_write_iov(arg, j->j_size, &iov, &n);
	if (!iov) {
		fdt_put(fdt, fd);
		be_reply_err(arg, -ENOMEM);
		return;
	}
	do
		got = want ? pwritev(fd, iov, (int)n, (off_t)j->j_off) : 0;
	while (got < 0 && errno == EINTR);
	err = got < 0 ? -errno : 0;
	if (got > 0 && (j->j_flags & FUSE_WRITE_KILL_SUIDGID))
		pt_kill_suidgid(fd);
	fdt_put(fdt, fd);
	if (err < 0)
		be_reply_err(arg, err);
	else
		be_reply_write(arg, (uint32_t)got);
}

/*
 * A write into the page cache takes microseconds, less than two thread
 * hand-offs: a small one runs on the loop thread as metadata calls do
 * (timed, off while the disk is slow, e.g. under dirty-page throttling),
 * also with more requests waiting, unless pool work is queued: then the
 * pool takes it, so writes stay on one thread at a time (two threads
 * writing one file wait for its inode lock: 4 KiB WRITE with 16 in flight
 * fell from 1.7x virtiofsd to 0.9x when the loop and the pool shared
 * them). Measured with `make bench`, 4 KiB WRITE with 16 in flight, once
 * replies were signalled per pass: on tmpfs 1.10x virtiofsd when waiting
 * requests sent writes to the pool, 2.18x on the loop; on ext4 1.60x and
 * 1.50x (within the runs' spread). Large writes are copy-bound: always
 * the pool.
 */
void pt_write(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh, uint64_t off,
	      uint32_t size, uint32_t write_flags)
{
	struct pt *pt = ctx;
	struct pt_job args = {.j_id = fh, .j_off = off, .j_size = size, .j_flags = write_flags};

	if (off > (uint64_t)INT64_MAX - size) {
		be_reply_err(r, -EFBIG);
		return;
	}
	if (size <= PT_INLINE_IO_MAX && !tp_pending(pt->pt_env.tp))
		pt_meta_fh(pt, r, who, pt_do_write, &args, fh);
	else
		pt_submit(pt, r, who, pt_do_write, &args);
}

static void pt_do_fsync(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct fdt *fdt = j->j_pt->pt_fdt;
	int fd, err;

	if ((err = fdt_fh_get(fdt, j->j_id, &fd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	err = (j->j_flags ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
	fdt_put(fdt, fd);
	be_reply_err(arg, err);
}

void pt_fsync(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
	      bool datasync)
{
	pt_submit(ctx, r, who, pt_do_fsync, &(struct pt_job){.j_id = fh, .j_flags = datasync});
}

/* ---- CREATE, TMPFILE ---- */

#define PT_CREATE_PASS (O_ACCMODE | O_APPEND | O_TRUNC | O_EXCL | O_NONBLOCK | O_SYNC | O_DSYNC)
/* Rounds of "exists" / "gone" against a host that keeps replacing the name. */
#define PT_CREATE_TRIES 4

/*
 * CREATE of a name that exists, without O_EXCL: only a regular file is
 * opened, and it is never opened by its name: the name is looked up O_PATH
 * (which opens nothing), the type read from that descriptor, and that very
 * inode reopened (pt_reopen_named). Opening the name would open a device
 * node's device, or wait forever on a FIFO without a writer. -ENOENT when
 * the name went away meanwhile (create it then).
 */
static int pt_create_existing(struct pt *pt, const struct be_caller *who, int dfd, const char *name,
			      int oflags, int *pfd)
{
	int fd, nfd;

	if ((fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -errno;
	nfd = pt_reopen_named(pt, who, dfd, name, fd, oflags);
	if (nfd < 0)
		close(fd);
	else
		*pfd = fd;
	return nfd == -ESTALE ? -ENOENT : nfd;
}

/* The new file's node descriptor (O_PATH) on the inode fd is open on:
 * through our procfs (that very inode), else by its name, checked. */
static int pt_created_node_fd(struct pt *pt, int dfd, const char *name, int fd)
{
	struct stat a, b;
	char pname[16];
	int pfd;

	if (pt->pt_env.proc_fd >= 0) {
		pt_proc_name(pname, sizeof(pname), fd);
		pfd = openat(pt->pt_env.proc_fd, pname, O_PATH | O_CLOEXEC);
		return pfd < 0 ? -errno : pfd;
	}
	if (!name)
		return -EOPNOTSUPP;
	if ((pfd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -errno;
	if (fstat(pfd, &a) < 0 || fstat(fd, &b) < 0 || a.st_dev != b.st_dev ||
	    a.st_ino != b.st_ino) {
		close(pfd);
		return -ESTALE; /* replaced by the host meanwhile */
	}
	return pfd;
}

/*
 * CREATE: a new regular file (O_EXCL on the host), or an existing regular
 * file when the guest did not ask for O_EXCL (pt_create_existing).
 * TMPFILE: an unnamed file in the directory; it needs our procfs (LINK
 * names it through its link), so without one (--sandbox=chroot, none) it
 * is EOPNOTSUPP, which guests fall back from.
 */
static void pt_do_create(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct pt *pt = j->j_pt;
	const struct fuse_create_in *ci = j->j_arg;
	struct fuse_entry_out e;
	mode_t mode = ci->mode & 07777;
	uint64_t id;
	int dfd, fd = -EOPNOTSUPP, pfd = -1, oflags, err;

	oflags = pt_file_oflags(pt, (int)(ci->flags & PT_CREATE_PASS)) | O_NOCTTY;
	if ((err = fdt_node_get(pt->pt_fdt, j->j_id, &dfd)) < 0)
		goto fail;
	if (!j->j_name) {
		if (pt->pt_env.proc_fd >= 0)
			fd = pt_openat_as_caller(pt, j->j_who, dfd, ".", oflags | O_TMPFILE, mode);
	} else {
		for (int i = 0; i < PT_CREATE_TRIES; i++) {
			fd = pt_openat_as_caller(pt, j->j_who, dfd, j->j_name,
						 oflags | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
			if (fd != -EEXIST || (oflags & O_EXCL))
				break;
			/* An existing file may be long to open or truncate: the pool. */
			if (pt_meta_decline(j)) {
				fdt_put(pt->pt_fdt, dfd);
				return;
			}
			fd = pt_create_existing(pt, j->j_who, dfd, j->j_name, oflags, &pfd);
			if (fd != -ENOENT)
				break;
		}
	}
	if (fd >= 0 && pfd < 0)
		pfd = pt_created_node_fd(pt, dfd, j->j_name, fd);
	fdt_put(pt->pt_fdt, dfd);
	if ((err = fd) < 0)
		goto fail;
	if ((err = pfd) < 0)
		goto fail;
	if ((oflags & O_TRUNC) && (ci->open_flags & FUSE_OPEN_KILL_SUIDGID))
		pt_kill_suidgid(fd);
	/* TMPFILE has no name yet (LINK gives it one): pinned till then. */
	err = j->j_name ? pt_node_entry_named(pt, pfd, j->j_id, j->j_name, &e)
			: pt_node_entry(pt, pfd, &e);
	pfd = -1; /* consumed */
	if (err < 0)
		goto fail;
	if ((err = pt_fh_new(pt, e.nodeid, fd, oflags, false, &id)) < 0)
		goto unref;
	be_reply_create(arg, &e, id, pt_file_open_flags(pt));
	return;
unref:
	pt_node_unref(pt, e.nodeid);
fail:
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	be_reply_err(arg, err);
}

void pt_create(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
	       const char *name, const struct fuse_create_in *in)
{
	pt_meta(ctx, r, who, pt_do_create,
		&(struct pt_job){.j_id = parent, .j_name = name, .j_arg = in}, parent);
}

/* ---- MKNOD, MKDIR, SYMLINK, LINK ---- */

/* After a name was made in dfd: its node, with one lookup reference. */
static int pt_entry_of_name(struct pt *pt, int dfd, uint64_t parent, const char *name,
			    struct fuse_entry_out *e)
{
	int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	return fd < 0 ? -errno : pt_node_entry_named(pt, fd, parent, name, e);
}

static void pt_do_mknod(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct pt *pt = j->j_pt;
	struct fuse_entry_out e;
	mode_t mode = j->j_mode;
	int dfd, rc, err;

	if ((err = fdt_node_get(pt->pt_fdt, j->j_id, &dfd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	if ((err = pt_creds_enter(pt, j->j_who)) == 0) {
		if (S_ISDIR(mode))
			rc = mkdirat(dfd, j->j_name, mode & 07777);
		else if (S_ISLNK(mode))
			rc = symlinkat(j->j_name2, dfd, j->j_name);
		else
			rc = mknodat(dfd, j->j_name, mode, (dev_t)j->j_rdev);
		err = rc < 0 ? -errno : 0;
		pt_creds_leave(pt);
	}
	if (err == 0)
		err = pt_entry_of_name(pt, dfd, j->j_id, j->j_name, &e);
	fdt_put(pt->pt_fdt, dfd);
	if (err < 0)
		be_reply_err(arg, err);
	else
		be_reply_entry(arg, &e);
}

void pt_mknod(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
	      const char *name, uint32_t mode, uint32_t rdev, const char *target)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		break;
	default:
		be_reply_err(r, -EINVAL);
		return;
	}
	if (S_ISLNK(mode) != (target != NULL)) {
		be_reply_err(r, -EINVAL);
		return;
	}
	pt_meta(
	    ctx, r, who, pt_do_mknod,
	    &(struct pt_job){
		.j_id = parent, .j_name = name, .j_name2 = target, .j_mode = mode, .j_rdev = rdev},
	    parent);
}

/*
 * A new name for a node we hold: linkat through its link in our procfs with
 * AT_SYMLINK_FOLLOW (AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH). This
 * also links O_TMPFILE files into place. Without a procfs (--sandbox=
 * chroot, none) by the node's recorded name, checked before and after: a
 * name the host replaced meanwhile is undone and answers ESTALE.
 */
static int pt_link_by_name(struct pt *pt, const struct be_caller *who, uint64_t node, int ofd,
			   int dfd, const char *name)
{
	char old[NT_NAME_MAX + 1];
	struct stat want, st;
	uint64_t parent;
	int pfd, err;

	if (pt_stat_fd(ofd, &want) < 0 || nt_node_name(pt->pt_env.nt, node, &parent, old) < 0 ||
	    parent == node)
		return -ESTALE;
	if ((err = fdt_node_get(pt->pt_fdt, parent, &pfd)) < 0)
		return err == -ENFILE ? err : -ESTALE;
	if (fstatat(pfd, old, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != want.st_dev ||
	    st.st_ino != want.st_ino) {
		fdt_put(pt->pt_fdt, pfd);
		return -ESTALE;
	}
	if ((err = pt_creds_enter(pt, who)) == 0) {
		err = linkat(pfd, old, dfd, name, 0) < 0 ? -errno : 0;
		pt_creds_leave(pt);
	}
	fdt_put(pt->pt_fdt, pfd);
	if (err == 0 && (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			 st.st_dev != want.st_dev || st.st_ino != want.st_ino)) {
		(void)unlinkat(dfd, name, 0);
		err = -ESTALE;
	}
	return err;
}

static void pt_do_link(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct pt *pt = j->j_pt;
	struct fuse_entry_out e;
	char pname[16];
	int ofd, dfd, err;

	if ((err = fdt_node_get(pt->pt_fdt, j->j_id, &ofd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	if ((err = fdt_node_get(pt->pt_fdt, j->j_id2, &dfd)) < 0) {
		fdt_put(pt->pt_fdt, ofd);
		be_reply_err(arg, err);
		return;
	}
	if (pt->pt_env.proc_fd < 0) {
		err = pt_link_by_name(pt, j->j_who, j->j_id, ofd, dfd, j->j_name);
	} else if ((err = pt_creds_enter(pt, j->j_who)) == 0) {
		pt_proc_name(pname, sizeof(pname), ofd);
		err = linkat(pt->pt_env.proc_fd, pname, dfd, j->j_name, AT_SYMLINK_FOLLOW) < 0
			  ? -errno
			  : 0;
		pt_creds_leave(pt);
	}
	if (err == 0)
		err = pt_entry_of_name(pt, dfd, j->j_id2, j->j_name, &e);
	fdt_put(pt->pt_fdt, dfd);
	fdt_put(pt->pt_fdt, ofd);
	if (err < 0)
		be_reply_err(arg, err);
	else
		be_reply_entry(arg, &e);
}

void pt_link(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
	     uint64_t newparent, const char *name)
{
	pt_submit(ctx, r, who, pt_do_link,
		  &(struct pt_job){.j_id = node, .j_id2 = newparent, .j_name = name});
}

/* ---- UNLINK, RMDIR, RENAME ---- */

static void pt_do_unlink(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct pt *pt = j->j_pt;
	int dfd, err;

	if ((err = fdt_node_get(pt->pt_fdt, j->j_id, &dfd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	if ((err = pt_creds_enter(pt, j->j_who)) == 0) {
		err = unlinkat(dfd, j->j_name, j->j_dir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
		pt_creds_leave(pt);
	}
	fdt_put(pt->pt_fdt, dfd);
	be_reply_err(arg, err);
}

void pt_unlink(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
	       const char *name, bool dir)
{
	pt_meta(ctx, r, who, pt_do_unlink,
		&(struct pt_job){.j_id = parent, .j_name = name, .j_dir = dir}, parent);
}

/*
 * After a rename the node now at dir/name is re-pointed there, so a later
 * reopen of an evicted descriptor finds it. One fstatat, off the hot path;
 * if it fails (raced with the host) the old name stays, and the reopen
 * answers ESTALE rather than a wrong file: it checks (dev, ino).
 */
static void pt_rename_names(struct pt *pt, int dfd, uint64_t dir, const char *name)
{
	struct nt_node n;
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (nt_node_find(pt->pt_env.nt, st.st_dev, st.st_ino, &n) == 0)
		nt_node_set_name(pt->pt_env.nt, n.n_id, dir, name);
}

static void pt_do_rename(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct pt *pt = j->j_pt;
	int ofd, nfd, err;

	if ((err = fdt_node_get(pt->pt_fdt, j->j_id, &ofd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	if ((err = fdt_node_get(pt->pt_fdt, j->j_id2, &nfd)) < 0) {
		fdt_put(pt->pt_fdt, ofd);
		be_reply_err(arg, err);
		return;
	}
	if ((err = pt_creds_enter(pt, j->j_who)) == 0) {
		err = renameat2(ofd, j->j_name, nfd, j->j_name2, j->j_flags) < 0 ? -errno : 0;
		pt_creds_leave(pt);
	}
	if (err == 0) {
		pt_rename_names(pt, nfd, j->j_id2, j->j_name2);
		if (j->j_flags & RENAME_EXCHANGE)
			pt_rename_names(pt, ofd, j->j_id, j->j_name);
	}
	fdt_put(pt->pt_fdt, nfd);
	fdt_put(pt->pt_fdt, ofd);
	be_reply_err(arg, err);
}

void pt_rename(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t olddir,
	       const char *oldname, uint64_t newdir, const char *newname, uint32_t flags)
{
	pt_submit(ctx, r, who, pt_do_rename,
		  &(struct pt_job){.j_id = olddir,
				   .j_name = oldname,
				   .j_id2 = newdir,
				   .j_name2 = newname,
				   .j_flags = flags});
}

/* ---- ACCESS ---- */

static void pt_do_access(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct pt *pt = j->j_pt;
	int fd, err;

	if ((err = fdt_node_get(pt->pt_fdt, j->j_id, &fd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	if ((err = pt_creds_enter(pt, j->j_who)) == 0) {
		err = faccessat(fd, "", (int)j->j_mode, AT_EMPTY_PATH | AT_EACCESS) < 0 ? -errno
											: 0;
		pt_creds_leave(pt);
	}
	fdt_put(pt->pt_fdt, fd);
	be_reply_err(arg, err);
}

void pt_access(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
	       uint32_t mask)
{
	pt_meta(ctx, r, who, pt_do_access, &(struct pt_job){.j_id = node, .j_mode = mask}, node);
}

/* ---- FALLOCATE, LSEEK, COPY_FILE_RANGE, SYNCFS ---- */

#define PT_FALLOC_MODES                                                                            \
	(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE |                       \
	 FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE | FALLOC_FL_UNSHARE_RANGE)

static void pt_do_fallocate(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct fdt *fdt = j->j_pt->pt_fdt;
	int fd, err;

	if ((err = fdt_fh_get(fdt, j->j_id, &fd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	err = fallocate(fd, (int)j->j_mode, (off_t)j->j_off, (off_t)j->j_len) < 0 ? -errno : 0;
	fdt_put(fdt, fd);
	be_reply_err(arg, err);
}

void pt_fallocate(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
		  uint64_t off, uint64_t len, uint32_t mode)
{
	if (mode & ~(uint32_t)PT_FALLOC_MODES) {
		be_reply_err(r, -EOPNOTSUPP);
		return;
	}
	pt_submit(ctx, r, who, pt_do_fallocate,
		  &(struct pt_job){.j_id = fh, .j_off = off, .j_len = len, .j_mode = mode});
}

static void pt_do_lseek(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct fdt *fdt = j->j_pt->pt_fdt;
	off_t res;
	int fd, err;

	if ((err = fdt_fh_get(fdt, j->j_id, &fd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	/* Moves the shared file position, which no FUSE operation uses. */
	res = lseek(fd, (off_t)j->j_off, (int)j->j_flags);
	err = res < 0 ? -errno : 0;
	fdt_put(fdt, fd);
	if (err < 0)
		be_reply_err(arg, err);
	else
		be_reply_lseek(arg, (uint64_t)res);
}

void pt_lseek(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh, uint64_t off,
	      uint32_t whence)
{
	pt_submit(ctx, r, who, pt_do_lseek,
		  &(struct pt_job){.j_id = fh, .j_off = off, .j_flags = whence});
}

/* The reply counts bytes in 32 bits. */
#define PT_COPY_MAX 0x7ffff000u

static void pt_do_copy(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct fdt *fdt = j->j_pt->pt_fdt;
	const struct fuse_copy_file_range_in *in = j->j_arg;
	loff_t off_in = (loff_t)in->off_in, off_out = (loff_t)in->off_out;
	size_t len = in->len < PT_COPY_MAX ? (size_t)in->len : PT_COPY_MAX;
	ssize_t got;
	int fin, fout, err;

	/* Either handle may belong to another queue's worker: fetched if so. */
	if ((err = fdt_fh_get(fdt, in->fh_in, &fin)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	if ((err = fdt_fh_get(fdt, in->fh_out, &fout)) < 0) {
		fdt_put(fdt, fin);
		be_reply_err(arg, err);
		return;
	}
	got = copy_file_range(fin, &off_in, fout, &off_out, len, 0);
	err = got < 0 ? -errno : 0;
	fdt_put(fdt, fout);
	fdt_put(fdt, fin);
	if (err < 0)
		be_reply_err(arg, err);
	else
		be_reply_write(arg, (uint32_t)got);
}

void pt_copy_file_range(void *ctx, struct fuse_req *r, const struct be_caller *who,
			const struct fuse_copy_file_range_in *in)
{
	pt_submit(ctx, r, who, pt_do_copy, &(struct pt_job){.j_arg = in});
}

static void pt_do_syncfs(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	int fd, err;

	/* syncfs wants an open file, not the O_PATH root */
	fd = openat(j->j_pt->pt_env.root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		be_reply_err(arg, -errno);
		return;
	}
	err = syncfs(fd) < 0 ? -errno : 0;
	close(fd);
	be_reply_err(arg, err);
}

void pt_syncfs(void *ctx, struct fuse_req *r, const struct be_caller *who)
{
	pt_submit(ctx, r, who, pt_do_syncfs, &(struct pt_job){0});
}
