/*
 * sandbox.c - the worker confines itself: a procfs of its own PID namespace
 * for reopening descriptors, root switched into the share (pivot_root in
 * the namespaces the parent cloned us into, with the share mounted nodev,
 * nosuid and noexec, or chroot), capabilities cut to what the enabled features
 * need with the bounding and ambient sets cleared, no_new_privs, resource
 * limits, a SIGSYS reporter, and last the seccomp filter the parent
 * compiled.
 * Runs in: the worker, after CONFIG and before the first memory table, so
 * nothing the guest controls has been read yet. Single-threaded here:
 * capabilities and filters are per thread, and every later thread inherits
 * them.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <cap-ng.h>

#include "backends.h"
#include "ipc.h"
#include "log.h"
#include "sandbox.h"
#include "util.h"

/* Read by the SIGSYS handler; set before the handler is installed. */
static int sbx_report_fd = -1;
static uint32_t sbx_seccomp_mode;

static int sbx_fail(char *why, size_t len, const char *step, int err)
{
	snprintf(why, len, "%s: %s", step, strerror(err));
	return -err;
}

static int sbx_same_inode(int a, int b)
{
	struct stat sa, sb;

	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return -errno;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino ? 0 : -EXDEV;
}

/* The compiled program, read before the root switch (the memfd needs no path). */
static int sbx_read_prog(int fd, uint32_t n, struct sock_filter **out)
{
	struct sock_filter *p;
	size_t len = (size_t)n * sizeof(*p), done = 0;
	struct stat st;
	ssize_t r;

	if (n == 0 || n > BPF_MAXINSNS)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size != len)
		return -EINVAL;
	if (!(p = malloc(len)))
		return -ENOMEM;
	while (done < len) {
		r = pread(fd, (char *)p + done, len - done, (off_t)done);
		if (r <= 0) {
			free(p);
			return r < 0 ? -errno : -EIO;
		}
		done += (size_t)r;
	}
	*out = p;
	return 0;
}

/*
 * Reopening an O_PATH descriptor for I/O needs its /proc/PID/fd link. The
 * host's procfs would also lead, by "..", to every host process and to
 * /proc/sys (a core_pattern write runs a program as host root), so the
 * worker never holds one: it mounts a procfs instance of its own, detached
 * (fsmount: no mount point anywhere), showing only the processes of its own
 * PID namespace (subset=pid: no /proc/sys, no sysrq-trigger; hidepid) where
 * it is the only process, pid 1. Kept: the "fd" directory of that pid.
 * Before the root switch, while the namespace still shows a complete /proc
 * (a user namespace may mount procfs only then).
 */
static int sbx_private_proc(int *out, char *why, size_t len)
{
	static const char *const opts[] = {"subset", "pid", "hidepid", "invisible", NULL};
	const char *step;
	char what[64];
	ssize_t n;
	int mnt, fd = -1, r;
	char self[16];

	if (getpid() != 1)
		return sbx_fail(why, len, "private procfs: not the init of a PID namespace",
				EINVAL);
	mnt = bh_fs_new("proc", opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
			&step);
	if (mnt < 0) {
		snprintf(what, sizeof(what), "private procfs (%s subset=pid,hidepid=invisible)",
			 step);
		return sbx_fail(why, len, what, -mnt);
	}
	/* Our own PID namespace's instance: "self" is 1. */
	n = readlinkat(mnt, "self", self, sizeof(self) - 1);
	if (n != 1 || self[0] != '1') {
		r = sbx_fail(why, len, "private procfs: self is not pid 1", n < 0 ? errno : EINVAL);
		goto out;
	}
	if ((fd = openat(mnt, "1/fd", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = sbx_fail(why, len, "private procfs: open 1/fd", errno);
		goto out;
	}
	*out = fd;
	r = 0;
out:
	close(mnt);
	return r;
}

/*
 * --sandbox=namespace, the device's mount of the share: a detached clone of
 * the share (open_tree; it is in no mount namespace's tree, so ".." at its
 * root stays there), nodev, nosuid and noexec, and read-only with
 * --readonly, recursively: a device node in the share can never be opened
 * through it, whatever path the back end took, nor anything in it run. The
 * first worker of a device makes it (*tree < 0), every later one gets it
 * from the parent, so that all of them serve one mount: a descriptor one
 * worker hands another (peer.c) is on the receiver's mount too, as LINK and
 * RENAME require (EXDEV across mounts, even of one file system). The
 * share fd from CONFIG belongs to the parent's mount namespace, which
 * open_tree refuses; the parent therefore cloned us with the share as
 * working directory, which the kernel translated into our copy of the tree.
 * A mount flag cannot be undone without CAP_SYS_ADMIN over the mount,
 * which seccomp and the dropped capabilities keep from us.
 */
static int sbx_share_mount(int share_fd, bool readonly, int *tree, char *why, size_t len)
{
	struct mount_attr ma = {.attr_set =
				    MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC};
	unsigned long want = ST_NODEV | ST_NOSUID | ST_NOEXEC | (readonly ? ST_RDONLY : 0);
	struct statvfs sv;
	int t = *tree, r;

	if (t < 0) {
		t = open_tree(AT_FDCWD, ".", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
		if (t < 0)
			return sbx_fail(why, len, "clone the share (open_tree)", errno);
		if (readonly)
			ma.attr_set |= MOUNT_ATTR_RDONLY;
		if (mount_setattr(t, "", AT_EMPTY_PATH | AT_RECURSIVE, &ma, sizeof(ma)) < 0) {
			r = sbx_fail(why, len,
				     readonly ? "mount the share nodev, nosuid, noexec, read-only"
					      : "mount the share nodev, nosuid, noexec",
				     errno);
			close(t);
			return r;
		}
	}
	/* Made here or given: the share, with those flags, or nothing. */
	if ((r = sbx_same_inode(t, share_fd)) < 0)
		r = sbx_fail(why, len, "the device's mount is not the share", -r);
	else if (fstatvfs(t, &sv) < 0)
		r = sbx_fail(why, len, "the device's mount of the share (statvfs)", errno);
	else if ((sv.f_flag & want) != want)
		r = sbx_fail(why, len, "the device's mount of the share lacks nodev, nosuid, "
				       "noexec or ro",
			     EPERM);
	if (r < 0) {
		if (t != *tree)
			close(t);
		return r;
	}
	*tree = t;
	return 0;
}

/*
 * --sandbox=namespace, our root: an empty read-only tmpfs over the working
 * directory, pivot_root into it, everything else detached. The share is
 * reached only through the device's mount (sbx_share_mount), so an absolute
 * path names nothing at all. A share that is no host directory (the memory
 * back end's file system, in no tree) is not our working directory: the
 * parent cloned us in "/", which the empty root covers as well.
 */
static int sbx_pivot(int share_fd, bool host_dir, char *why, size_t len)
{
	static const char *const opts[] = {"size", "4k", "nr_inodes", "1", "mode", "0555", NULL};
	const char *step;
	char what[64];
	int cwd, mnt, r;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return sbx_fail(why, len, "make mounts private", errno);
	if (host_dir) {
		if ((cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
			return sbx_fail(why, len, "open the working directory", errno);
		r = sbx_same_inode(cwd, share_fd);
		close(cwd);
		if (r < 0)
			return sbx_fail(why, len, "working directory is not the share", -r);
	}
	mnt = bh_fs_new(
	    "tmpfs", opts,
	    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, &step);
	if (mnt < 0) {
		snprintf(what, sizeof(what), "an empty root (%s tmpfs)", step);
		return sbx_fail(why, len, what, -mnt);
	}
	if (move_mount(mnt, "", AT_FDCWD, ".", MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		r = sbx_fail(why, len, "an empty root (move_mount)", errno);
		goto out;
	}
	/* mnt now names the root of the attached tmpfs. */
	if (fchdir(mnt) < 0) {
		r = sbx_fail(why, len, "enter the empty root", errno);
		goto out;
	}
	/* pivot_root(".", "."): the old root ends up stacked on ".", then goes. */
	if (syscall(SYS_pivot_root, ".", ".") < 0) {
		r = sbx_fail(why, len, "pivot_root", errno);
		goto out;
	}
	if (umount2(".", MNT_DETACH) < 0) {
		r = sbx_fail(why, len, "detach the old root", errno);
		goto out;
	}
	if (chdir("/") < 0) {
		r = sbx_fail(why, len, "chdir /", errno);
		goto out;
	}
	r = 0;
out:
	close(mnt);
	return r;
}

/* --sandbox=chroot: for containers that grant no namespaces. */
static int sbx_chroot(int share_fd, char *why, size_t len)
{
	if (fchdir(share_fd) < 0)
		return sbx_fail(why, len, "enter the share", errno);
	if (chroot(".") < 0)
		return sbx_fail(why, len, "chroot", errno);
	if (chdir("/") < 0)
		return sbx_fail(why, len, "chdir /", errno);
	return 0;
}

/*
 * Root keeps its back end's set (be_desc.bd_keep; for passthrough and
 * memory: ownership, modes, device nodes and file capabilities on the
 * guest's behalf), less what the operator's choices
 * leave unused (CAP_MKNOD without device nodes, CAP_SETFCAP without file
 * capabilities), and so does the root of a user namespace (or a worker the
 * parent lent them as ambient capabilities): there the kernel honours them
 * only on inodes whose owner and group are mapped, so with an unprivileged
 * parent's single-id map they reach the user's own files and nothing else.
 * A worker without them keeps nothing. The bounding set goes too, so not
 * even an exec could bring a capability back; without CAP_SETPCAP only the
 * sets we can change are cleared, and no_new_privs covers the rest.
 */
static bool sbx_dropped(unsigned cap, uint32_t drop)
{
	return (cap == CAP_MKNOD && (drop & SBX_DROP_MKNOD)) ||
	       (cap == CAP_SETFCAP && (drop & SBX_DROP_SETFCAP));
}

static int sbx_caps(const struct be_desc *be, uint32_t drop, char *why, size_t len)
{
	capng_select_t sel = CAPNG_SELECT_CAPS | CAPNG_SELECT_AMBIENT;
	int held[64], n = 0, r;

	capng_get_caps_process();
	if (capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP))
		sel |= CAPNG_SELECT_BOUNDS;
	for (size_t i = 0; i < be->bd_nkeep && n < 64; i++)
		if (!sbx_dropped(be->bd_keep[i], drop) &&
		    capng_have_capability(CAPNG_PERMITTED, be->bd_keep[i]))
			held[n++] = (int)be->bd_keep[i];
	capng_clear(CAPNG_SELECT_ALL);
	for (int i = 0; i < n; i++)
		if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, (unsigned)held[i]))
			return sbx_fail(why, len, "capabilities (libcap-ng update)", EINVAL);
	if ((r = capng_apply(sel)) < 0)
		return sbx_fail(why, len, "capabilities (libcap-ng apply)", errno ? errno : EPERM);
	return 0;
}

/*
 * No core files: a worker maps guest memory. RLIMIT_NOFILE is left as the
 * parent set it (--rlimit-nofile, default the hard limit): the descriptor
 * table sizes itself from the soft limit we inherit. RLIMIT_NPROC is not
 * set: it counts every process of the real uid (root) on the host.
 * RLIMIT_FSIZE is not set: the guest may legitimately write files of any
 * size the host file system takes.
 */
static int sbx_limits(char *why, size_t len)
{
	struct rlimit rl = {0, 0};

	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		return sbx_fail(why, len, "RLIMIT_CORE", errno);
	return 0;
}

/*
 * SIGSYS under a TRAP action: tell the parent which call it was (a raw
 * sendmsg, async-signal-safe), then die. A PID namespace's init cannot
 * signal itself to death, so: with --seccomp=kill the parent SIGKILLs us on
 * the notice (we wait up to a second for it); otherwise, or if it does not,
 * the call is made again with SIGSYS blocked (we are in its handler), and
 * the kernel then forces SIGSYS with the default action, which ends even
 * an init. Same arguments, same filter verdict.
 */
static void sbx_on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	struct ipc_notice n;
	long a[6] = {0};

	memset(&n, 0, sizeof(n));
	n.in_kind = IPC_NOTICE_SECCOMP;
	n.in_pad = (uint32_t)si->si_syscall;
	(void)ipc_send(sbx_report_fd, IPC_NOTICE, 0, &n, sizeof(n), NULL, 0);
	if (sbx_seccomp_mode == IPC_SECCOMP_KILL) {
		struct timespec ts = {1, 0};

		(void)ppoll(NULL, 0, &ts, NULL);
	}
#if defined(__x86_64__)
	{
		const ucontext_t *uc = ctx;

		a[0] = (long)uc->uc_mcontext.gregs[REG_RDI];
		a[1] = (long)uc->uc_mcontext.gregs[REG_RSI];
		a[2] = (long)uc->uc_mcontext.gregs[REG_RDX];
		a[3] = (long)uc->uc_mcontext.gregs[REG_R10];
		a[4] = (long)uc->uc_mcontext.gregs[REG_R8];
		a[5] = (long)uc->uc_mcontext.gregs[REG_R9];
	}
#endif
	(void)syscall(si->si_syscall, a[0], a[1], a[2], a[3], a[4], a[5]);
	_exit(128 + SIGSYS);
}

static int sbx_seccomp(const struct sbx_conf *sc, struct sock_filter *prog, int *listener,
		       char *why, size_t len)
{
	struct sock_fprog fp = {.len = (unsigned short)sc->sc_ninsns, .filter = prog};
	unsigned flags = 0;
	struct sigaction sa;
	long r;

	sbx_report_fd = sc->sc_ipc_fd;
	sbx_seccomp_mode = sc->sc_seccomp;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sbx_on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return sbx_fail(why, len, "SIGSYS handler", errno);
	if (sc->sc_seccomp == IPC_SECCOMP_LOG)
		flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fp);
	if (r < 0)
		return sbx_fail(why, len, "load the seccomp filter", errno);
	*listener = sc->sc_seccomp == IPC_SECCOMP_LOG ? (int)r : -1;
	return 0;
}

int sbx_enter(const struct sbx_conf *sc, int *root_fd, int *proc_fd, int *share_out,
	      int *listener, char *why, size_t whylen)
{
	struct sock_filter *prog = NULL;
	int r, nroot = -1, nproc = -1, tree = sc->sc_share_fd;

	*listener = -1;
	*root_fd = -1;
	*proc_fd = -1;
	*share_out = -1;
	if (sc->sc_seccomp != IPC_SECCOMP_NONE &&
	    (r = sbx_read_prog(sc->sc_prog_fd, sc->sc_ninsns, &prog)) < 0)
		return sbx_fail(why, whylen, "read the seccomp program", -r);

	/* Without a PID namespace of our own (chroot, none) there is no
	 * procfs we could safely hold: the back end reopens without one. */
	if (sc->sc_mode == IPC_SBX_NAMESPACE && (r = sbx_private_proc(&nproc, why, whylen)) < 0)
		goto out;
	if (sc->sc_mode == IPC_SBX_NAMESPACE) {
		if ((r = sbx_share_mount(sc->sc_root_fd, sc->sc_rdonly != 0, &tree, why,
					 whylen)) < 0)
			goto out;
		r = sbx_pivot(sc->sc_root_fd, (sc->sc_be->bd_sandbox & BE_SBX_HOST_DIR) != 0, why,
			      whylen);
	} else if (sc->sc_mode == IPC_SBX_CHROOT) {
		r = sbx_chroot(sc->sc_root_fd, why, whylen);
	} else {
		r = 0;
	}
	if (r < 0)
		goto out;
	if (sc->sc_mode == IPC_SBX_NAMESPACE) {
		/* The share: the device's mount, our own descriptor of it. */
		if ((nroot = fcntl(tree, F_DUPFD_CLOEXEC, 0)) < 0) {
			r = sbx_fail(why, whylen, "keep the share", errno);
			goto out;
		}
	} else if (sc->sc_mode == IPC_SBX_CHROOT) {
		/* The share as our root names it: ".." from it stays inside,
		 * unlike from a descriptor of the parent's mount tree. */
		if ((nroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
			r = sbx_fail(why, whylen, "open the new root", errno);
			goto out;
		}
		if ((r = sbx_same_inode(nroot, sc->sc_root_fd)) < 0) {
			r = sbx_fail(why, whylen, "the new root is not the share", -r);
			goto out;
		}
	}
	/* No supplementary groups of the parent's: a caller's group is added
	 * per request (FUSE_EXT_GROUPS), and leaving it sets the list empty.
	 * Inside a user namespace that denies setgroups the list is the
	 * namespace's already (overflow ids only), so EPERM is fine there. */
	if (setgroups(0, NULL) < 0 && errno != EPERM) {
		r = sbx_fail(why, whylen, "drop supplementary groups", errno);
		goto out;
	}
	if ((r = sbx_caps(sc->sc_be, sc->sc_drop, why, whylen)) < 0)
		goto out;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		r = sbx_fail(why, whylen, "no_new_privs", errno);
		goto out;
	}
	if ((r = sbx_limits(why, whylen)) < 0)
		goto out;
	if (sc->sc_seccomp != IPC_SECCOMP_NONE &&
	    (r = sbx_seccomp(sc, prog, listener, why, whylen)) < 0)
		goto out;
	r = 0;
	if (nroot >= 0) {
		close(sc->sc_root_fd);
		*root_fd = nroot;
		nroot = -1;
	} else {
		*root_fd = sc->sc_root_fd;
	}
	*proc_fd = nproc;
	nproc = -1;
	/* The mount we made goes to the parent for the device's other workers
	 * (one we were given stays the caller's to close: we keep our own
	 * duplicate). */
	if (tree >= 0 && tree != sc->sc_share_fd)
		*share_out = tree;
	tree = -1;
out:
	if (nroot >= 0)
		close(nroot);
	if (nproc >= 0)
		close(nproc);
	if (tree >= 0 && tree != sc->sc_share_fd)
		close(tree);
	free(prog);
	return r;
}

#ifdef BH_TEST_HOOKS
void sbx_test_forbidden_call(void)
{
	/* Named in no worker policy; harmless if a log-mode filter lets it run. */
	(void)syscall(SYS_umount2, "/bulkhead-test-hook-missing", 0);
}
#endif
