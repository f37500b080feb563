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
 * user namespace it runs in: so a child in a user namespace with the
 * workers' id maps makes it (uns_make_fd).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#include "bulkheadd.h"
#include "log.h"
#include "util.h"

#define MEM_BYTES_PER_INODE 4096

/*
 * The tmpfs: the mount descriptor, or -errno with *step naming the call
 * that failed. Never read-only: the command line refuses --readonly for it.
 * Inodes take host memory the size limit does not count (tmpfs's own
 * default allows half the host's RAM in pages of them): without inodes =
 * the default is one per MEM_BYTES_PER_INODE of the size, so a guest that
 * creates empty files meets ENOSPC long before it could fill the host.
 */
static int mem_mount(const struct parent_env *env, const char **step)
{
	const struct parent_conf *c = env->pe_conf;
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

int mem_make(struct parent_env *env)
{
	const struct parent_conf *c = env->pe_conf;
	const char *step = "";
	int r;

	if (env->pe_unpriv && !env->pe_userns) {
		log_warnx("the memory back end needs --sandbox=namespace when not run as root: "
			  "only a user namespace lets us make a file system");
		return -1;
	}
	r = env->pe_unpriv ? uns_make_fd(env, mem_mount) : mem_mount(env, &step);
	if (r < 0) {
		log_warnx("cannot make the in-memory file system of %llu bytes (%s): %s",
			  (unsigned long long)conf_be_num(c, "size"),
			  env->pe_unpriv ? "in a user namespace" : step, strerror(-r));
		return -1;
	}
	env->pe_root_fd = r;
	log_info("the share is a new in-memory file system of %llu MiB%s, in no mount tree",
		 (unsigned long long)(conf_be_num(c, "size") >> 20),
		 env->pe_unpriv ? " (made in a user "
				  "namespace)"
				: "");
	return 0;
}
