/*
 * memshare.c - the memory back end's file system: a tmpfs instance of this
 * daemon's own, made once at start-up.
 * Runs in: the parent, before its seccomp filter (which denies fsopen); a
 * short-lived child when the parent is unprivileged.
 *
 * Made with the new mount API and never attached anywhere, it is in no
 * mount namespace's tree, so no other process on the host can reach its
 * files; its size is the limit (ENOSPC); it is nodev, nosuid and noexec
 * like a share's mount. The workers serve it exactly as they serve a host
 * directory (the same passthrough calls, the kernel's own tmpfs semantics),
 * each given it as the device's mount, and it lives as long as we do,
 * across front-end connections.
 *
 * An unprivileged parent may not make a file system. A worker may, in the
 * user namespace it runs in: so a child cloned into a user and mount
 * namespace with the workers' id maps makes it and hands it back over a
 * socket. The file system then belongs to that namespace, which outlives
 * the child; the workers' namespaces map the same ids, so their callers'
 * ids are valid on it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkheadd.h"
#include "log.h"
#include "util.h"

#define MEM_HELPER_TIMEOUT_MS 5000
#define MEM_BYTES_PER_INODE   4096

/*
 * The tmpfs: the mount descriptor, or -errno with *step naming the call
 * that failed. Never read-only: the command line refuses --readonly for it.
 * Inodes take host memory the size limit does not count (tmpfs's own
 * default allows half the host's RAM in pages of them): without inodes =
 * the default is one per MEM_BYTES_PER_INODE of the size, so a guest that
 * creates empty files meets ENOSPC long before it could fill the host.
 */
static int mem_mount(const struct parent_conf *c, const char **step)
{
	char size[32], inodes[32];
	const char *opts[] = {"size", size, "mode", "0755", "nr_inodes", inodes, NULL};
	uint64_t bytes = conf_be_num(c, "size"), n = conf_be_num(c, "inodes");

	if (n == 0)
		n = bytes / MEM_BYTES_PER_INODE;
	snprintf(size, sizeof(size), "%llu", (unsigned long long)bytes);
	snprintf(inodes, sizeof(inodes), "%llu", (unsigned long long)n);
	return bh_fs_new("tmpfs", opts, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
			 step);
}

/* The child: wait for its maps, take the workers' ids, make the file
 * system, send it, exit. Reports nothing itself: the parent logs. */
static void mem_helper(const struct parent_env *env, int sock, int syncfd)
{
	struct iovec iov;
	const char *step = "";
	int r, mnt;

	if ((r = uns_child_enter(env, syncfd)) < 0)
		_exit(100);
	mnt = mem_mount(env->pe_conf, &step);
	r = mnt < 0 ? -mnt : 0;
	iov = (struct iovec){&r, sizeof(r)};
	if (bh_sendmsg_fds(sock, &iov, 1, &mnt, mnt < 0 ? 0 : 1) < 0)
		_exit(101);
	_exit(0);
}

static int mem_make_userns(struct parent_env *env)
{
	struct pollfd p;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov;
	struct msghdr mh = {0};
	int sv[2], sync[2], err = 0, fd = -1, st;
	bool bad = false;
	ssize_t n;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (pipe2(sync, O_CLOEXEC) < 0) {
		err = -errno;
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	pid = (pid_t)syscall(SYS_clone, SIGCHLD | CLONE_NEWUSER | CLONE_NEWNS, NULL, NULL, NULL,
			     NULL);
	if (pid == 0) {
		close(sv[0]);
		close(sync[1]);
		mem_helper(env, sv[1], sync[0]);
	}
	err = pid < 0 ? -errno : 0;
	close(sv[1]);
	close(sync[0]);
	if (err == 0 && (err = uns_write_maps(env, pid)) == 0 && write(sync[1], "g", 1) != 1)
		err = -EPIPE;
	close(sync[1]);
	if (err == 0) {
		p = (struct pollfd){sv[0], POLLIN, 0};
		if (poll(&p, 1, MEM_HELPER_TIMEOUT_MS) != 1) {
			err = -ETIMEDOUT;
		} else {
			iov = (struct iovec){&err, sizeof(err)};
			mh.msg_iov = &iov;
			mh.msg_iovlen = 1;
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
			n = recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC);
			if (n != (ssize_t)sizeof(err))
				err = -EPROTO;
			else if (bh_cmsg_take_fds(&mh, &fd, 1, &bad) != 1 || bad)
				err = err ? -err : -EPROTO;
		}
	}
	close(sv[0]);
	if (pid > 0) {
		if (err < 0)
			kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	if (err < 0) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	env->pe_root_fd = fd;
	return 0;
}

int mem_make(struct parent_env *env)
{
	const struct parent_conf *c = env->pe_conf;
	const char *step = "a user namespace for it";
	int r;

	if (env->pe_unpriv && !env->pe_userns) {
		log_warnx("the memory back end needs --sandbox=namespace when not run as root: "
			  "only a user namespace lets us make a file system");
		return -1;
	}
	if (env->pe_unpriv) {
		r = mem_make_userns(env);
	} else if ((r = mem_mount(c, &step)) >= 0) {
		env->pe_root_fd = r;
		r = 0;
	}
	if (r < 0) {
		log_warnx("cannot make the in-memory file system of %llu bytes (%s): %s",
			  (unsigned long long)conf_be_num(c, "size"),
			  env->pe_unpriv ? "in a user namespace" : step, strerror(-r));
		return -1;
	}
	log_info("the share is a new in-memory file system of %llu MiB%s, in no mount tree",
		 (unsigned long long)(conf_be_num(c, "size") >> 20),
		 env->pe_unpriv ? " (made in a user "
				  "namespace)"
				: "");
	return 0;
}
