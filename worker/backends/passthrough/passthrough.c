/*
 * passthrough.c - the passthrough back end's ops table, its start and end,
 * and what other workers ask of it (descriptors): the top of the back end,
 * on passthrough_read.c, _write.c, _dir.c, _locks.c and _xattr.c, which
 * build on passthrough_core.c and passthrough_open.c (passthrough.h).
 * The memory back end is these same calls over the file system the parent
 * made in memory: the share descriptor is all that differs.
 * Runs in: the worker (sandboxed): init and destroy on the loop thread, the
 * provider on the peer thread.
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
