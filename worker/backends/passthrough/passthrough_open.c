/*
 * passthrough_open.c - the one way the passthrough back end opens an inode
 * it already holds (an O_PATH node descriptor, or an open handle) for I/O:
 * OPEN and OPENDIR, CREATE of an existing name, truncation without a
 * handle, extended attributes, lock descriptions. And the check that a
 * ".." lookup stays inside the share, and acting as the guest's caller
 * (pt_creds_enter: the lowest layer of the back end, on which
 * passthrough_core.c and every operation file build).
 * Runs in: the worker (sandboxed), on pool threads or the loop thread.
 * Node ids come from the guest and are resolved through the node table /
 * fdtable; the node table is shared with other workers, so nothing read
 * from it is trusted without a look at the inode itself.
 *
 * Only regular files and directories are ever opened. The type is read
 * from the descriptor we hold (fstat), which pins the inode, so no rename
 * can swap a device node, FIFO or socket in between: a device opened would
 * be the host's device, and a FIFO's open would block a thread for good.
 * With --sandbox=namespace the share is also mounted nodev in the worker,
 * so a device node that slipped past would still fail in the kernel.
 *
 * How the inode is reopened: through the "fd" directory of the worker's own
 * procfs instance (sandbox.c) when it has one: the magic link reaches the
 * very inode, as the caller, with no path walk. Without one (--sandbox=
 * chroot or none: no PID namespace of our own, and the host's procfs is
 * never held) a directory reopens as "." of itself, and a regular file by
 * its recorded (parent, name), checked to be the same inode before it is
 * used; a file without a name (unlinked, O_TMPFILE) cannot be reopened
 * then (ESTALE).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend.h"
#include "fdtable.h"
#include "log.h"
#include "node_table.h"
#include "passthrough.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452 /* Linux 6.6; the same number on every architecture */
#endif

/* The longest chain of ".." walked to find the share root (PATH_MAX / 2:
 * no deeper path can be named). */
#define PT_DOTDOT_DEPTH 2048

int pt_open_type_err(mode_t mode, unsigned allow)
{
	if (S_ISDIR(mode))
		return (allow & PT_REOPEN_DIR) ? 0 : -EISDIR;
	if (!(allow & PT_REOPEN_FILE))
		return -ENOTDIR; /* what open(O_DIRECTORY) says of anything else */
	if (S_ISREG(mode))
		return 0;
	if (S_ISLNK(mode))
		return -ELOOP; /* O_NOFOLLOW: the guest resolves symlinks itself */
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return -EACCES; /* what a nodev mount answers */
	return -ENXIO;		/* FIFO, socket: nobody on the other end for us */
}

static bool pt_same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* openat as the request's caller, or as the worker without a request. */
static int pt_open_at(const struct pt *pt, const struct be_caller *who, int dirfd, const char *path,
		      int oflags)
{
	int fd;

	if (who)
		return pt_openat_as_caller(pt, who, dirfd, path, oflags, 0);
	fd = openat(dirfd, path, oflags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* No procfs: a regular file by the name dirfd/name, which must still lead
 * to the inode 'want' or it is ESTALE. Opened without O_TRUNC and with
 * O_NONBLOCK (a FIFO swapped in by a rename must not block us) until it is
 * known to be that file. */
static int pt_reopen_at(struct pt *pt, const struct be_caller *who, int dirfd, const char *name,
			const struct stat *want, int oflags)
{
	struct stat st;
	int fd, err;

	fd = pt_open_at(pt, who, dirfd, name, (oflags & ~O_TRUNC) | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return fd == -ENOENT || fd == -ELOOP || fd == -ENXIO ? -ESTALE : fd;
	if (fstat(fd, &st) < 0 || !pt_same_inode(&st, want) || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ESTALE;
	}
	if ((!(oflags & O_NONBLOCK) && fcntl(fd, F_SETFL, oflags & ~(O_ACCMODE | O_TRUNC)) < 0) ||
	    ((oflags & O_TRUNC) && ftruncate(fd, 0) < 0)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* No procfs, by node: its recorded (parent, name). */
static int pt_reopen_by_name(struct pt *pt, const struct be_caller *who, uint64_t node,
			     const struct stat *want, int oflags)
{
	char name[NT_NAME_MAX + 1];
	uint64_t parent;
	int pfd, fd, err;

	if (node == 0 || nt_node_name(pt->pt_env.nt, node, &parent, name) < 0 || parent == node)
		return -ESTALE;
	if ((err = fdt_node_get(pt->pt_fdt, parent, &pfd)) < 0)
		return err == -ENFILE ? err : -ESTALE;
	fd = pt_reopen_at(pt, who, pfd, name, want, oflags);
	fdt_put(pt->pt_fdt, pfd);
	return fd;
}

/* Through our procfs: the magic link to the very inode. Directories
 * without one: "." of themselves. */
static int pt_reopen_link(struct pt *pt, const struct be_caller *who, int fd,
			  const struct stat *want, int oflags)
{
	struct stat got;
	char path[16];
	int nfd;

	if (pt->pt_env.proc_fd >= 0) {
		/* The magic link is the descriptor's own file, not a name:
		 * it opens that very inode whatever happened to names. */
		pt_proc_name(path, sizeof(path), fd);
		return pt_open_at(pt, who, pt->pt_env.proc_fd, path, oflags);
	}
	nfd = pt_open_at(pt, who, fd, ".", oflags);
	if (nfd < 0)
		return nfd;
	/* "." of a directory: the same inode, unless it was replaced. */
	if (fstat(nfd, &got) < 0 || !pt_same_inode(&got, want)) {
		close(nfd);
		return -ESTALE;
	}
	return nfd;
}

/* The type check and the flags every reopen gets: 0 or -errno. */
static int pt_reopen_prepare(int fd, unsigned allow, struct stat *want, int *oflags)
{
	int err;

	if ((err = pt_stat_fd(fd, want)) < 0)
		return err;
	if ((err = pt_open_type_err(want->st_mode, allow)) < 0)
		return err;
	*oflags &= ~(O_CREAT | O_EXCL | O_TMPFILE | O_PATH);
	*oflags |= O_NOCTTY;
	if (S_ISDIR(want->st_mode))
		*oflags |= O_DIRECTORY;
	return 0;
}

int pt_reopen(struct pt *pt, const struct be_caller *who, uint64_t node, int fd, int oflags,
	      unsigned allow)
{
	struct stat want;
	int err;

	if ((err = pt_reopen_prepare(fd, allow, &want, &oflags)) < 0)
		return err;
	if (pt->pt_env.proc_fd >= 0 || S_ISDIR(want.st_mode))
		return pt_reopen_link(pt, who, fd, &want, oflags);
	return pt_reopen_by_name(pt, who, node, &want, oflags);
}

int pt_reopen_named(struct pt *pt, const struct be_caller *who, int dirfd, const char *name, int fd,
		    int oflags)
{
	struct stat want;
	int err;

	if ((err = pt_reopen_prepare(fd, PT_REOPEN_FILE, &want, &oflags)) < 0)
		return err;
	if (pt->pt_env.proc_fd >= 0)
		return pt_reopen_link(pt, who, fd, &want, oflags);
	return pt_reopen_at(pt, who, dirfd, name, &want, oflags);
}

/*
 * Is the directory behind fd the share root or below it? Walks ".." up to
 * the root's identity. A directory a host process moved out of the share
 * never meets it: with --sandbox=namespace the kernel already refuses ".."
 * above the root of the device's mount (ENOENT), but with chroot or none the walk
 * would reach the host's directories. 0, or -ENOENT when outside.
 */
int pt_inside_share(struct pt *pt, int fd)
{
	struct stat st, up;
	int cur = fd, next, err = -ENOENT;

	if (pt_stat_fd(fd, &st) < 0)
		return -ENOENT;
	for (unsigned i = 0; i < PT_DOTDOT_DEPTH; i++) {
		if (st.st_dev == pt->pt_root_dev && st.st_ino == pt->pt_root_ino) {
			err = 0;
			break;
		}
		next = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (next < 0)
			break;
		if (cur != fd)
			close(cur);
		cur = next;
		if (pt_stat_fd(cur, &up) < 0 || pt_same_inode(&up, &st))
			break; /* the top of a file system, or an error */
		st = up;
	}
	if (cur != fd)
		close(cur);
	return err;
}

/* Mode and times of a node held by an O_PATH descriptor, which takes no
 * fchmod/futimens: the *at calls with AT_EMPTY_PATH where the kernel has
 * them, else through the procfs link. */
int pt_node_chmod(struct pt *pt, int nfd, mode_t mode)
{
	char path[16];

	if (syscall(SYS_fchmodat2, nfd, "", mode, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOSYS || pt->pt_env.proc_fd < 0)
		return -errno;
	pt_proc_name(path, sizeof(path), nfd);
	return fchmodat(pt->pt_env.proc_fd, path, mode, 0) < 0 ? -errno : 0;
}

int pt_node_utimens(struct pt *pt, int nfd, const struct timespec ts[2])
{
	char path[16];

	if (utimensat(nfd, "", ts, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != EINVAL || pt->pt_env.proc_fd < 0)
		return -errno;
	pt_proc_name(path, sizeof(path), nfd);
	return utimensat(pt->pt_env.proc_fd, path, ts, 0) < 0 ? -errno : 0;
}

/* ---- acting as the guest's caller ---- */

/* Did this thread take the caller's identity? (pt_creds_leave undoes it.) */
static __thread bool pt_switched;
static __thread bool pt_switched_groups;

/*
 * The caller's supplementary group, when the guest names one (it does for
 * a group that owns the parent directory, so that creating in a directory
 * writable by that group works as it did in the guest's own check). Per
 * thread like the rest: the raw system call, not glibc's, which would
 * change every thread. The worker's own list is empty (sandbox.c clears
 * it), so leaving sets it empty again. A user namespace that denies
 * setgroups leaves the caller without it: the host then decides.
 */
static void pt_groups_enter(const struct be_caller *who)
{
	gid_t g = (gid_t)who->bc_supp_gid;

	if (!who->bc_has_supp_gid)
		return;
	if (syscall(SYS_setgroups, 1, &g) == 0)
		pt_switched_groups = true;
	else
		log_debug("supplementary group %u not applied: %s", who->bc_supp_gid,
			  strerror(errno));
}

int pt_creds_enter(const struct pt *pt, const struct be_caller *who)
{
	if (!pt->pt_setcreds || (who->bc_uid == 0 && who->bc_gid == 0))
		return 0;
	/* groups, then gid: both need CAP_SETGID, which euid != 0 drops */
	pt_groups_enter(who);
	if (syscall(SYS_setresgid, -1, who->bc_gid, -1) < 0) {
		int err = -errno;
		pt_creds_leave(pt);
		return err;
	}
	if (syscall(SYS_setresuid, -1, who->bc_uid, -1) < 0) {
		int err = -errno;

		if (syscall(SYS_setresgid, -1, 0, -1) < 0)
			fatal("restore egid");
		pt_creds_leave(pt);
		return err;
	}
	pt_switched = true;
	return 0;
}

void pt_creds_leave(const struct pt *pt)
{
	if (pt_switched) {
		/* euid 0 again restores the effective capabilities, then the gid */
		if (syscall(SYS_setresuid, -1, 0, -1) < 0 ||
		    syscall(SYS_setresgid, -1, 0, -1) < 0)
			fatal("restore the worker's credentials");
		pt_switched = false;
	}
	if (pt_switched_groups) {
		if (syscall(SYS_setgroups, 0, NULL) < 0)
			fatal("restore the worker's supplementary groups");
		pt_switched_groups = false;
	}
	(void)pt;
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

int pt_openat_as_caller(const struct pt *pt, const struct be_caller *who, int dirfd,
			const char *path, int oflags, mode_t mode)
{
	int fd, err;

	if ((err = pt_creds_enter(pt, who)) < 0)
		return err;
	fd = openat(dirfd, path, oflags | O_CLOEXEC, mode);
	err = fd < 0 ? -errno : fd;
	pt_creds_leave(pt);
	return err;
}
