/*
 * passthrough_dir.c - READDIR and READDIRPLUS of the host-directory back
 * end: host getdents64 records turned into FUSE dirent records, with a
 * counted lookup for each entry of a PLUS listing.
 * Runs in: the worker (sandboxed), listings on the pool threads. The handle
 * and offset come from the guest: the handle is checked by the node table
 * (a directory handle, live), the offset is the host's own d_off cookie
 * (<= INT64_MAX) and the reply never exceeds the guest's size, which the
 * dispatcher clamped to max_pages (fuse_max_payload): the two buffers
 * allocated here are at most that size each.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "fdtable.h"
#include "node_table.h"
#include "passthrough.h"

struct pt_dirent64 { /* the kernel's linux_dirent64 */
	uint64_t d_ino;
	int64_t d_off;
	uint16_t d_reclen;
	uint8_t d_type;
	char d_name[];
};

/*
 * Append one record for host entry d to buf (used bytes so far, size the
 * limit). Returns the new length, the old one when the entry is skipped (it
 * vanished before READDIRPLUS could look it up), or PT_DIR_FULL when it does
 * not fit (checked before any lookup is counted).
 */
#define PT_DIR_FULL SIZE_MAX
static size_t pt_dir_add(struct pt *pt, int dirfd, uint64_t dirnode, bool plus,
			 const struct pt_dirent64 *d, char *buf, size_t used, size_t size)
{
	size_t namelen = strlen(d->d_name);
	size_t rec =
	    FUSE_DIRENT_ALIGN((plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET) + namelen);
	struct fuse_dirent *fd;
	uint32_t type = d->d_type;
	uint64_t ino = d->d_ino;

	if (namelen > NAME_MAX)
		return used;
	if (used + rec > size)
		return PT_DIR_FULL;
	memset(buf + used, 0, rec); /* record padding is zero */
	if (plus) {
		struct fuse_direntplus *dp = (struct fuse_direntplus *)(buf + used);
		bool dots = strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0;
		struct stat st;

		if (dots) {
			/* No node id and no reference for the dots (the kernel skips them). */
			const char *name = dirnode == NT_ROOT_ID ? "." : d->d_name;

			if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				return used;
			pt_fill_entry(pt, &dp->entry_out, 0, &st);
			dp->entry_out.entry_valid = dp->entry_out.attr_valid = 0;
		} else if (pt_lookup_at(pt, dirfd, dirnode, d->d_name, false, &dp->entry_out) < 0) {
			return used;
		}
		type = (dp->entry_out.attr.mode & S_IFMT) >> 12;
		ino = dp->entry_out.attr.ino;
		fd = &dp->dirent;
	} else {
		fd = (struct fuse_dirent *)(buf + used);
	}
	fd->ino = ino;
	fd->off = (uint64_t)d->d_off;
	fd->namelen = (uint32_t)namelen;
	fd->type = type;
	memcpy(fd->name, d->d_name, namelen);
	return used + rec;
}

static void pt_do_readdir(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct pt *pt = j->j_pt;
	size_t size = j->j_size, used = 0, dsize;
	char *buf = NULL, *dbuf = NULL;
	bool full = false;
	struct nt_fh fh;
	int fd, err;

	if ((err = nt_fh_get(pt->pt_env.nt, j->j_id, &fh)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	if (!fh.f_isdir) {
		be_reply_err(arg, -ENOTDIR);
		return;
	}
	if ((err = fdt_fh_get(pt->pt_env.fdt, j->j_id, &fd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	/* A plus record is ~6 times a host record: read less ahead. */
	dsize = j->j_plus ? size / 4 : size;
	if (dsize < 1024)
		dsize = 1024;
	buf = malloc(size ? size : 1);
	dbuf = malloc(dsize);
	if (!buf || !dbuf) {
		err = -ENOMEM;
		goto out;
	}
	/* The cookie is the previous entry's d_off; 0 is the start. */
	if (lseek(fd, (off_t)j->j_off, SEEK_SET) < 0) {
		err = -errno;
		goto out;
	}
	while (!full) {
		ssize_t n = getdents64(fd, dbuf, dsize);
		size_t pos;

		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		for (pos = 0; pos < (size_t)n;) {
			const struct pt_dirent64 *d = (const struct pt_dirent64 *)(dbuf + pos);
			size_t next = pt_dir_add(pt, fd, fh.f_node, j->j_plus, d, buf, used, size);

			if (next == PT_DIR_FULL) {
				full = true;
				break;
			}
			used = next;
			pos += d->d_reclen;
		}
	}
	if (used == 0 && full)
		err = -EINVAL; /* not even one record fits the guest's buffer */
out:
	fdt_put(pt->pt_env.fdt, fd);
	if (used > 0 || err == 0)
		be_reply_buf(arg, buf, used);
	else
		be_reply_err(arg, err);
	free(buf);
	free(dbuf);
}

void pt_readdir(void *ctx, struct fuse_req *r, uint64_t fh, uint64_t off, uint32_t size, bool plus)
{
	if (off > (uint64_t)INT64_MAX) {
		be_reply_err(r, -EINVAL);
		return;
	}
	pt_meta_fh(ctx, r, pt_do_readdir,
		   &(struct pt_job){.j_id = fh, .j_off = off, .j_size = size, .j_plus = plus}, fh);
}
