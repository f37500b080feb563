/*
 * passthrough_xattr.c - extended attributes of the passthrough back end
 * (GETXATTR, LISTXATTR, SETXATTR, REMOVEXATTR), served only with --xattr.
 * Runs in: the worker (sandboxed), on pool threads. Names and values come
 * from the guest: the dispatcher checked the name's length and the value's
 * size (<= XATTR_SIZE_MAX, which also bounds GETXATTR's and LISTXATTR's
 * buffers); the value is copied out of guest memory before the call.
 *
 * The f*xattr calls fail on the O_PATH descriptors nodes are held by, and
 * the *xattrat calls are newer than the hosts we run on, so a regular file
 * or directory is reopened read-only for the call (pt_reopen), with the
 * worker's own credentials (opening is not the permission check: the
 * kernel checks the xattr access itself, at the call, which runs as the
 * guest's caller). Symlinks and special files are never opened (a device
 * node would be the device): they answer what a local file system answers
 * for user.* names (no data; EPERM to change). security.* and trusted.*
 * need CAP_SYS_ADMIN, which the worker lacks: the host's EPERM goes back;
 * security.capability is the operator's choice (--file-caps, checked by
 * the dispatcher).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend.h"
#include "fdtable.h"
#include "log.h"
#include "node_table.h"
#include "passthrough.h"

enum { PX_GET, PX_LIST, PX_SET, PX_REMOVE };

/*
 * A readable descriptor for the node's inode: 0 and *fd, or 1 when the
 * node is not a regular file or directory (the caller answers for it), or
 * -errno.
 */
static int px_open(struct pt *pt, uint64_t node, int *fd)
{
	struct stat st;
	int pfd, err;

	if ((err = fdt_node_get(pt->pt_fdt, node, &pfd)) < 0)
		return err;
	if ((err = pt_stat_fd(pfd, &st)) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		err = 1;
	if (err == 0) {
		*fd = pt_reopen(pt, NULL, node, pfd, O_RDONLY | O_NONBLOCK,
				PT_REOPEN_FILE | PT_REOPEN_DIR);
		err = *fd < 0 ? *fd : 0;
	}
	fdt_put(pt->pt_fdt, pfd);
	return err;
}

/* GETXATTR and LISTXATTR: size 0 asks for the size. */
static void px_do_get(void *arg, int op)
{
	struct pt_job *j = pt_job_of(arg);
	struct pt *pt = j->j_pt;
	char *buf = NULL;
	ssize_t got;
	int fd = -1, err;

	if ((err = px_open(pt, j->j_id, &fd)) == 1) {
		/* Symlinks and special files: no user attributes, none listed. */
		if (op == PX_LIST && j->j_size == 0)
			be_reply_xattr_size(arg, 0);
		else if (op == PX_LIST)
			be_reply_buf(arg, NULL, 0);
		else
			be_reply_err(arg, -ENODATA);
		return;
	}
	if (err < 0)
		goto out;
	if (j->j_size && !(buf = malloc(j->j_size))) {
		err = -ENOMEM;
		goto out;
	}
	if ((err = pt_creds_enter(pt, j->j_who)) < 0)
		goto out;
	if (op == PX_GET)
		got = fgetxattr(fd, j->j_name, buf, j->j_size);
	else
		got = flistxattr(fd, buf, j->j_size);
	err = got < 0 ? -errno : 0;
	pt_creds_leave(pt);
	if (err < 0)
		goto out;
	if (j->j_size == 0)
		be_reply_xattr_size(arg, (uint32_t)got);
	else
		be_reply_buf(arg, buf, (size_t)got);
	free(buf);
	close(fd);
	return;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	be_reply_err(arg, err);
}

static void px_do_getxattr(void *arg)
{
	px_do_get(arg, PX_GET);
}

static void px_do_listxattr(void *arg)
{
	px_do_get(arg, PX_LIST);
}

/* SETXATTR and REMOVEXATTR. */
static void px_do_change(void *arg, int op)
{
	struct pt_job *j = pt_job_of(arg);
	struct pt *pt = j->j_pt;
	struct iovec *iov;
	char *val = NULL;
	size_t off = 0;
	unsigned n;
	int fd = -1, err;

	if ((err = px_open(pt, j->j_id, &fd)) == 1) {
		/* A local file system refuses user.* on symlinks and devices. */
		be_reply_err(arg, -EPERM);
		return;
	}
	if (err < 0)
		goto out;
	if (op == PX_SET) {
		/* One private copy: the guest may change its buffer meanwhile. */
		if (!(val = malloc(j->j_size ? j->j_size : 1))) {
			err = -ENOMEM;
			goto out;
		}
		if (be_req_write_iov(j->j_req, j->j_size, &iov, &n) != j->j_size) {
			err = -EIO;
			goto out;
		}
		for (unsigned i = 0; i < n; i++) {
			memcpy(val + off, iov[i].iov_base, iov[i].iov_len);
			off += iov[i].iov_len;
		}
	}
	if ((err = pt_creds_enter(pt, j->j_who)) < 0)
		goto out;
	if (op == PX_SET)
		err = fsetxattr(fd, j->j_name, val, j->j_size, (int)j->j_flags);
	else
		err = fremovexattr(fd, j->j_name);
	err = err < 0 ? -errno : 0;
	pt_creds_leave(pt);
out:
	free(val);
	if (fd >= 0)
		close(fd);
	be_reply_err(arg, err);
}

static void px_do_setxattr(void *arg)
{
	px_do_change(arg, PX_SET);
}

static void px_do_removexattr(void *arg)
{
	px_do_change(arg, PX_REMOVE);
}

/* Without --xattr the dispatcher answers ENOSYS before these run
 * (fuse_dispatch.c, FR_XATTR). */

void pt_getxattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		 const char *name, uint32_t size)
{
	pt_meta(ctx, r, who, px_do_getxattr,
		&(struct pt_job){.j_id = node, .j_name = name, .j_size = size}, node);
}

void pt_listxattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		  uint32_t size)
{
	pt_meta(ctx, r, who, px_do_listxattr, &(struct pt_job){.j_id = node, .j_size = size}, node);
}

void pt_setxattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		 const char *name, uint32_t size, uint32_t flags)
{
	pt_meta(ctx, r, who, px_do_setxattr,
		&(struct pt_job){.j_id = node, .j_name = name, .j_size = size, .j_flags = flags},
		node);
}

void pt_removexattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		    const char *name)
{
	pt_meta(ctx, r, who, px_do_removexattr, &(struct pt_job){.j_id = node, .j_name = name},
		node);
}
