/*
 * fuse_codec.c - FUSE framing on iovec streams: decode a request from the
 * device-readable buffers into private memory, write a reply into the
 * device-writable ones.
 * Runs in: the worker (sandboxed). Input is guest memory, hostile and
 * changing under us: every field is copied out first and only the copy is
 * checked and used. Pure functions, no state (unit-tested directly).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/xattr.h>
#include <linux/limits.h>

#include "fuse_dispatch.h"
#include "util.h"

#define IN_HDR	((uint32_t)sizeof(struct fuse_in_header))
#define OUT_HDR ((uint32_t)sizeof(struct fuse_out_header))

/*
 * Fixed argument sizes are the minimum this 7.38 protocol sends (old
 * compat sizes where the struct grew, e.g. SETXATTR without SETXATTR_EXT).
 * Reply sizes are what a success reply needs at least: a guest that gives
 * less writable space gets -EIO before anything runs.
 */
static const struct fuse_op_info fuse_ops[] = {
    [FUSE_LOOKUP] = {"LOOKUP", 0, sizeof(struct fuse_entry_out), FUSE_OP_NAME},
    [FUSE_FORGET] = {"FORGET", sizeof(struct fuse_forget_in), 0, FUSE_OP_NOREPLY},
    [FUSE_GETATTR] = {"GETATTR", sizeof(struct fuse_getattr_in), sizeof(struct fuse_attr_out), 0},
    [FUSE_SETATTR] = {"SETATTR", sizeof(struct fuse_setattr_in), sizeof(struct fuse_attr_out), 0},
    [FUSE_READLINK] = {"READLINK", 0, 0, 0},
    [FUSE_SYMLINK] = {"SYMLINK", 0, sizeof(struct fuse_entry_out),
		      FUSE_OP_NAME | FUSE_OP_TARGET | FUSE_OP_NODOTS},
    [FUSE_MKNOD] = {"MKNOD", sizeof(struct fuse_mknod_in), sizeof(struct fuse_entry_out),
		    FUSE_OP_NAME | FUSE_OP_NODOTS},
    [FUSE_MKDIR] = {"MKDIR", sizeof(struct fuse_mkdir_in), sizeof(struct fuse_entry_out),
		    FUSE_OP_NAME | FUSE_OP_NODOTS},
    [FUSE_UNLINK] = {"UNLINK", 0, 0, FUSE_OP_NAME},
    [FUSE_RMDIR] = {"RMDIR", 0, 0, FUSE_OP_NAME},
    [FUSE_RENAME] = {"RENAME", sizeof(struct fuse_rename_in), 0,
		     FUSE_OP_NAME | FUSE_OP_NAME2 | FUSE_OP_NODOTS},
    [FUSE_LINK] = {"LINK", sizeof(struct fuse_link_in), sizeof(struct fuse_entry_out),
		   FUSE_OP_NAME | FUSE_OP_NODOTS},
    [FUSE_OPEN] = {"OPEN", sizeof(struct fuse_open_in), sizeof(struct fuse_open_out), 0},
    [FUSE_READ] = {"READ", sizeof(struct fuse_read_in), 0, 0},
    [FUSE_WRITE] = {"WRITE", sizeof(struct fuse_write_in), sizeof(struct fuse_write_out), 0},
    [FUSE_STATFS] = {"STATFS", 0, sizeof(struct fuse_statfs_out), 0},
    [FUSE_RELEASE] = {"RELEASE", sizeof(struct fuse_release_in), 0, 0},
    [FUSE_FSYNC] = {"FSYNC", sizeof(struct fuse_fsync_in), 0, 0},
    [FUSE_SETXATTR] = {"SETXATTR", FUSE_COMPAT_SETXATTR_IN_SIZE, 0, 0},
    [FUSE_GETXATTR] = {"GETXATTR", sizeof(struct fuse_getxattr_in), 0, 0},
    [FUSE_LISTXATTR] = {"LISTXATTR", sizeof(struct fuse_getxattr_in), 0, 0},
    [FUSE_REMOVEXATTR] = {"REMOVEXATTR", 0, 0, 0},
    [FUSE_FLUSH] = {"FLUSH", sizeof(struct fuse_flush_in), 0, 0},
    /* Only major/minor are needed to negotiate; the rest is copied if present. */
    [FUSE_INIT] = {"INIT", 8, sizeof(struct fuse_init_out), 0},
    [FUSE_OPENDIR] = {"OPENDIR", sizeof(struct fuse_open_in), sizeof(struct fuse_open_out), 0},
    [FUSE_READDIR] = {"READDIR", sizeof(struct fuse_read_in), 0, 0},
    [FUSE_RELEASEDIR] = {"RELEASEDIR", sizeof(struct fuse_release_in), 0, 0},
    [FUSE_FSYNCDIR] = {"FSYNCDIR", sizeof(struct fuse_fsync_in), 0, 0},
    [FUSE_GETLK] = {"GETLK", sizeof(struct fuse_lk_in), sizeof(struct fuse_lk_out), 0},
    [FUSE_SETLK] = {"SETLK", sizeof(struct fuse_lk_in), 0, 0},
    [FUSE_SETLKW] = {"SETLKW", sizeof(struct fuse_lk_in), 0, 0},
    [FUSE_ACCESS] = {"ACCESS", sizeof(struct fuse_access_in), 0, 0},
    [FUSE_CREATE] = {"CREATE", sizeof(struct fuse_create_in),
		     sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out),
		     FUSE_OP_NAME | FUSE_OP_NODOTS},
    [FUSE_INTERRUPT] = {"INTERRUPT", sizeof(struct fuse_interrupt_in), 0, 0},
    [FUSE_BMAP] = {"BMAP", sizeof(struct fuse_bmap_in), sizeof(struct fuse_bmap_out), 0},
    [FUSE_DESTROY] = {"DESTROY", 0, 0, 0},
    [FUSE_IOCTL] = {"IOCTL", sizeof(struct fuse_ioctl_in), sizeof(struct fuse_ioctl_out), 0},
    [FUSE_POLL] = {"POLL", sizeof(struct fuse_poll_in), sizeof(struct fuse_poll_out), 0},
    [FUSE_BATCH_FORGET] = {"BATCH_FORGET", sizeof(struct fuse_batch_forget_in), 0, FUSE_OP_NOREPLY},
    [FUSE_FALLOCATE] = {"FALLOCATE", sizeof(struct fuse_fallocate_in), 0, 0},
    [FUSE_READDIRPLUS] = {"READDIRPLUS", sizeof(struct fuse_read_in), 0, 0},
    [FUSE_RENAME2] = {"RENAME2", sizeof(struct fuse_rename2_in), 0,
		      FUSE_OP_NAME | FUSE_OP_NAME2 | FUSE_OP_NODOTS},
    [FUSE_LSEEK] = {"LSEEK", sizeof(struct fuse_lseek_in), sizeof(struct fuse_lseek_out), 0},
    [FUSE_COPY_FILE_RANGE] = {"COPY_FILE_RANGE", sizeof(struct fuse_copy_file_range_in),
			      sizeof(struct fuse_write_out), 0},
    [FUSE_SETUPMAPPING] = {"SETUPMAPPING", sizeof(struct fuse_setupmapping_in), 0, 0},
    [FUSE_REMOVEMAPPING] = {"REMOVEMAPPING", sizeof(struct fuse_removemapping_in), 0, 0},
    [FUSE_SYNCFS] = {"SYNCFS", sizeof(struct fuse_syncfs_in), 0, 0},
    [FUSE_TMPFILE] = {"TMPFILE", sizeof(struct fuse_create_in),
		      sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out), 0},
};

uint32_t fuse_max_payload(uint32_t max_pages)
{
	if (max_pages == 0)
		max_pages = 1;
	if (max_pages > FUSE_MAX_PAGES_CAP)
		max_pages = FUSE_MAX_PAGES_CAP;
	return max_pages * FUSE_PAGE_SIZE;
}

uint32_t fuse_clamp_reply(uint32_t size, uint64_t room, uint32_t cap)
{
	if (size > room)
		size = (uint32_t)room;
	return size < cap ? size : cap;
}

const struct fuse_op_info *fuse_op_lookup(uint32_t opcode)
{
	if (opcode >= BH_ARRAY_SIZE(fuse_ops) || fuse_ops[opcode].oi_name == NULL)
		return NULL;
	return &fuse_ops[opcode];
}

int fuse_decode_name(const struct iovec *rd, unsigned n, size_t off, size_t avail, char *buf,
		     uint16_t *len, size_t *consumed)
{
	size_t want = avail < FUSE_NAME_MAX + 1 ? avail : FUSE_NAME_MAX + 1;
	size_t got = vq_iov_read(rd, n, off, buf, want);
	char *nul = memchr(buf, '\0', got);

	if (nul == NULL) {
		/* No NUL in 256 bytes of a longer request: a name over the limit. */
		buf[0] = '\0';
		return got == FUSE_NAME_MAX + 1 ? -ENAMETOOLONG : -EINVAL;
	}
	if (nul == buf || memchr(buf, '/', (size_t)(nul - buf)) != NULL)
		return -EINVAL;
	*len = (uint16_t)(nul - buf);
	if (consumed)
		*consumed = (size_t)(nul - buf) + 1;
	return 0;
}

static bool fuse_is_dots(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* The second string of RENAME (a name) or SYMLINK (a target, which may
 * hold '/'), avail bytes left in the request. */
static int fuse_decode_second(const struct iovec *rd, unsigned n, size_t off, size_t avail,
			      bool target, struct fuse_in *in)
{
	size_t want, got;
	char *nul;
	int err;

	if (!target) {
		err = fuse_decode_name(rd, n, off, avail, in->name2, &in->namelen2, NULL);
		if (err == 0 && fuse_is_dots(in->name2))
			err = -EINVAL;
		if (err < 0)
			in->name2[0] = '\0';
		return err;
	}
	want = avail < sizeof(in->name2) ? avail : sizeof(in->name2);
	got = vq_iov_read(rd, n, off, in->name2, want);
	nul = memchr(in->name2, '\0', got);
	if (nul == NULL || nul == in->name2) {
		in->name2[0] = '\0';
		return nul == NULL && got == sizeof(in->name2) ? -ENAMETOOLONG : -EINVAL;
	}
	in->namelen2 = (uint16_t)(nul - in->name2);
	return 0;
}

/* A lock range as the guest's VFS builds it: inclusive end, both within
 * off_t (end = INT64_MAX means "to the end of the file"). */
static bool fuse_lk_valid(const struct fuse_file_lock *lk, bool getlk)
{
	if (lk->type != F_RDLCK && lk->type != F_WRLCK && (getlk || lk->type != F_UNLCK))
		return false;
	return lk->start <= (uint64_t)INT64_MAX && lk->end <= (uint64_t)INT64_MAX &&
	       lk->start <= lk->end;
}

/* The extension area after the payload: a run of fuse_ext_header-led
 * records, each a multiple of 8 bytes that fits. FUSE_EXT_GROUPS is kept
 * (its first group, the only one a guest sends); other types are skipped
 * (security contexts, never negotiated). */
#ifndef FUSE_EXT_GROUPS
#define FUSE_EXT_GROUPS 32
#endif

static int fuse_decode_ext(const struct iovec *rd, unsigned n, uint64_t off, uint64_t len,
			   struct fuse_in *in)
{
	struct fuse_ext_header eh;
	uint32_t g[2];

	while (len > 0) {
		if (len < sizeof(eh) || vq_iov_read(rd, n, off, &eh, sizeof(eh)) != sizeof(eh))
			return -EIO;
		if (eh.size < sizeof(eh) || eh.size % 8 != 0 || eh.size > len)
			return -EIO;
		if (eh.type == FUSE_EXT_GROUPS) {
			/* nr_groups, then the groups */
			if (eh.size < sizeof(eh) + sizeof(g) ||
			    vq_iov_read(rd, n, off + sizeof(eh), g, sizeof(g)) != sizeof(g))
				return -EIO;
			if (g[0] == 0 || (uint64_t)g[0] * 4 + 4 > eh.size - sizeof(eh))
				return -EIO;
			in->has_supp_gid = true;
			in->supp_gid = g[1];
		}
		off += eh.size;
		len -= eh.size;
	}
	return 0;
}

/* File offsets and lengths are off_t: a larger value means nothing. */
#define FUSE_OFF_MAX ((uint64_t)INT64_MAX)

/*
 * Values the system calls themselves bound, whatever stores the files:
 * refused here, once, with the errno the call gives (EINVAL), so that no
 * back end checks them again and every back end answers alike.
 */
static int fuse_check_values(const struct fuse_in *in)
{
	switch (in->h.opcode) {
	case FUSE_WRITE:
		/* in.len must be exactly 80 + size, size <= max_write */
		return in->a.write.size > FUSE_MAX_WRITE || in->a.write.size != in->var_len
			   ? -EINVAL
			   : 0;
	case FUSE_GETLK:
	case FUSE_SETLK:
	case FUSE_SETLKW:
		return fuse_lk_valid(&in->a.lk.lk, in->h.opcode == FUSE_GETLK) ? 0 : -EINVAL;
	case FUSE_READ:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
		return in->a.read.offset > FUSE_OFF_MAX ? -EINVAL : 0;
	case FUSE_LSEEK:
		return in->a.lseek.whence > SEEK_HOLE || in->a.lseek.offset > FUSE_OFF_MAX ? -EINVAL
											   : 0;
	case FUSE_FALLOCATE:
		return in->a.fallocate.offset > FUSE_OFF_MAX ||
			       in->a.fallocate.length > FUSE_OFF_MAX
			   ? -EINVAL
			   : 0;
	case FUSE_COPY_FILE_RANGE:
		return in->a.copy.flags != 0 || in->a.copy.off_in > FUSE_OFF_MAX ||
			       in->a.copy.off_out > FUSE_OFF_MAX
			   ? -EINVAL
			   : 0;
	case FUSE_ACCESS:
		return in->a.access.mask & ~(uint32_t)(R_OK | W_OK | X_OK) ? -EINVAL : 0;
	case FUSE_RENAME2:
		return in->a.rename2.flags &
			       ~(uint32_t)(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)
			   ? -EINVAL
			   : 0;
	case FUSE_TMPFILE:
		/* as open(2) says for O_TMPFILE without write access */
		return (in->a.create.flags & O_ACCMODE) == O_RDONLY ? -EINVAL : 0;
	default:
		return 0;
	}
}

int fuse_decode(const struct iovec *rd, unsigned n, uint64_t rd_len, struct fuse_in *in)
{
	const struct fuse_op_info *oi;
	uint64_t fixed, ext, payload;
	size_t copy;

	in->info = NULL;
	in->var_off = in->var_len = 0;
	in->namelen = in->namelen2 = 0;
	in->name[0] = in->name2[0] = '\0';
	in->has_supp_gid = false;
	in->supp_gid = 0;
	if (rd_len < IN_HDR || vq_iov_read(rd, n, 0, &in->h, sizeof(in->h)) != sizeof(in->h)) {
		memset(&in->h, 0, sizeof(in->h));
		return -EPROTO;
	}
	/* From here on only the private copy in->h is used. */
	in->info = oi = fuse_op_lookup(in->h.opcode);
	if (in->h.len > rd_len || in->h.len < IN_HDR)
		return -EIO;
	fixed = oi ? oi->oi_argsz : 0;
	ext = (uint64_t)in->h.total_extlen * 8;
	if ((uint64_t)in->h.len < IN_HDR + fixed + ext)
		return -EIO;
	payload = in->h.len - IN_HDR - ext; /* fixed arguments + variable part */

	memset(&in->a, 0, sizeof(in->a));
	copy = (size_t)fixed;
	if (in->h.opcode == FUSE_INIT)
		copy = payload < sizeof(in->a.init) ? (size_t)payload : sizeof(in->a.init);
	if (copy && vq_iov_read(rd, n, IN_HDR, &in->a, copy) != copy)
		return -EIO;
	in->var_off = (uint32_t)(IN_HDR + fixed);
	in->var_len = (uint32_t)(payload - fixed);
	if (ext) {
		int err = fuse_decode_ext(rd, n, IN_HDR + payload, ext, in);
		if (err < 0)
			return err;
	}
	if (oi == NULL)
		return 0;

	if (oi->oi_flags & FUSE_OP_NAME) {
		size_t used;
		int err = fuse_decode_name(rd, n, in->var_off, in->var_len, in->name,
					   &in->namelen, &used);
		if (err < 0)
			return err;
		if ((oi->oi_flags & FUSE_OP_NODOTS) && fuse_is_dots(in->name))
			return -EINVAL;
		if (oi->oi_flags & (FUSE_OP_NAME2 | FUSE_OP_TARGET)) {
			err = fuse_decode_second(rd, n, in->var_off + used, in->var_len - used,
						 (oi->oi_flags & FUSE_OP_TARGET) != 0, in);
			if (err < 0)
				return err;
		}
	}
	if (in->h.opcode == FUSE_BATCH_FORGET &&
	    (uint64_t)in->a.batch_forget.count * sizeof(struct fuse_forget_one) > in->var_len)
		return -EIO;
	return fuse_check_values(in);
}

_Static_assert(XATTR_NAME_MAX == FUSE_NAME_MAX, "attribute names fit in fuse_in.name");

int fuse_decode_xattr(const struct iovec *rd, unsigned n, struct fuse_in *in, bool ext)
{
	size_t off = in->var_off, avail = in->var_len, want, got;
	uint32_t op = in->h.opcode;
	char *nul;

	if (op != FUSE_GETXATTR && op != FUSE_SETXATTR && op != FUSE_REMOVEXATTR)
		return 0;
	if (op == FUSE_SETXATTR && ext) {
		size_t more = sizeof(struct fuse_setxattr_in) - FUSE_COMPAT_SETXATTR_IN_SIZE;

		if (avail < more ||
		    vq_iov_read(rd, n, off, (char *)&in->a.setxattr + FUSE_COMPAT_SETXATTR_IN_SIZE,
				more) != more)
			return -EIO;
		off += more;
		avail -= more;
	}
	/* Unlike file names, attribute names may hold '/' and dots. */
	want = avail < XATTR_NAME_MAX + 1 ? avail : XATTR_NAME_MAX + 1;
	got = vq_iov_read(rd, n, off, in->name, want);
	nul = memchr(in->name, '\0', got);
	if (nul == NULL) {
		in->name[0] = '\0';
		return got == XATTR_NAME_MAX + 1 ? -ERANGE : -EINVAL;
	}
	if (nul == in->name)
		return -ERANGE; /* what setxattr(2) says for an empty name */
	in->namelen = (uint16_t)(nul - in->name);
	off += in->namelen + 1u;
	avail -= in->namelen + 1u;
	if (op != FUSE_SETXATTR)
		return 0;
	if (in->a.setxattr.flags & ~(uint32_t)(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (in->a.setxattr.size > XATTR_SIZE_MAX)
		return -E2BIG;
	if (in->a.setxattr.size != avail)
		return -EINVAL;
	in->var_off = (uint32_t)off;
	in->var_len = (uint32_t)avail;
	return 0;
}

void fuse_decode_forget_one(const struct iovec *rd, unsigned n, const struct fuse_in *in,
			    uint32_t i, struct fuse_forget_one *out)
{
	size_t off = in->var_off + (size_t)i * sizeof(*out);

	if (vq_iov_read(rd, n, off, out, sizeof(*out)) != sizeof(*out))
		memset(out, 0, sizeof(*out));
}

static int fuse_put_header(const struct iovec *wr, unsigned n, uint64_t unique, int error,
			   uint32_t len)
{
	struct fuse_out_header oh = {.len = len, .error = error, .unique = unique};

	return vq_iov_write(wr, n, 0, &oh, sizeof(oh)) == sizeof(oh) ? 0 : -ENOBUFS;
}

int fuse_reply_write(const struct iovec *wr, unsigned n, uint64_t wr_len, uint64_t unique,
		     int error, const void *payload, size_t len, uint32_t *used)
{
	*used = 0;
	if (wr_len < OUT_HDR)
		return -ENOBUFS;
	if (error)
		len = 0;
	if (len > wr_len - OUT_HDR) {
		if (fuse_put_header(wr, n, unique, -EIO, OUT_HDR) < 0)
			return -ENOBUFS;
		*used = OUT_HDR;
		return -EMSGSIZE;
	}
	if (len && vq_iov_write(wr, n, OUT_HDR, payload, len) != len)
		return -ENOBUFS;
	if (fuse_put_header(wr, n, unique, error, OUT_HDR + (uint32_t)len) < 0)
		return -ENOBUFS;
	*used = OUT_HDR + (uint32_t)len;
	return 0;
}

int fuse_reply_header(const struct iovec *wr, unsigned n, uint64_t wr_len, uint64_t unique,
		      size_t dlen, uint32_t *used)
{
	*used = 0;
	if (wr_len < OUT_HDR)
		return -ENOBUFS;
	if (dlen > wr_len - OUT_HDR) {
		if (fuse_put_header(wr, n, unique, -EIO, OUT_HDR) < 0)
			return -ENOBUFS;
		*used = OUT_HDR;
		return -EMSGSIZE;
	}
	if (fuse_put_header(wr, n, unique, 0, OUT_HDR + (uint32_t)dlen) < 0)
		return -ENOBUFS;
	*used = OUT_HDR + (uint32_t)dlen;
	return 0;
}
