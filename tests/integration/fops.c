/*
 * fops.c - FUSE calls and host-side checks shared by the integration and
 * security tests: each helper sends one request on queue FO_Q of the
 * fixture's front end (it_fe) and checks the reply's size, or looks at the
 * share (it_share) from the host.
 * Runs in: integration and security test programs only.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fops.h"
#include "itest.h"

const char *hpath(const char *name)
{
	static char p[2][PATH_MAX];
	static int k;

	k ^= 1;
	snprintf(p[k], sizeof(p[k]), "%s/%s", it_share, name);
	return p[k];
}

struct stat hstat(const char *name)
{
	struct stat st;

	cr_assert_eq(lstat(hpath(name), &st), 0, "lstat %s: %s", name, strerror(errno));
	return st;
}

void hwrite(const char *name, const void *buf, size_t len, mode_t mode)
{
	int fd = open(hpath(name), O_WRONLY | O_CREAT | O_TRUNC, mode);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

size_t hread(const char *name, void *buf, size_t cap)
{
	int fd = open(hpath(name), O_RDONLY);
	ssize_t n;

	cr_assert_geq(fd, 0, "open %s", name);
	n = read(fd, buf, cap);
	close(fd);
	cr_assert_geq(n, 0);
	return (size_t)n;
}

int f_create(uint32_t op, uint64_t parent, const char *name, uint32_t flags, uint32_t mode,
	     struct fuse_entry_out *e, uint64_t *fh)
{
	struct fuse_create_in ci = {.flags = flags, .mode = S_IFREG | mode};
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out;
	uint32_t n = 0;
	int r = vufe_fuse(it_fe, FO_Q, op, parent, &ci, sizeof(ci), name, strlen(name) + 1, &out,
			  sizeof(out), &n, 0);

	if (r == 0) {
		cr_assert_eq(n, sizeof(out));
		if (e)
			*e = out.e;
		if (fh)
			*fh = out.o.fh;
	}
	return r;
}

int f_entry_op(uint32_t op, uint64_t parent, const void *a1, size_t l1, const void *a2, size_t l2,
	       struct fuse_entry_out *e)
{
	struct fuse_entry_out tmp;
	uint32_t n = 0;
	int r = vufe_fuse(it_fe, FO_Q, op, parent, a1, l1, a2, l2, &tmp, sizeof(tmp), &n, 0);

	if (r == 0) {
		cr_assert_eq(n, sizeof(tmp));
		if (e)
			*e = tmp;
	}
	return r;
}

int f_mkdir(uint64_t parent, const char *name, uint32_t mode, struct fuse_entry_out *e)
{
	struct fuse_mkdir_in mi = {.mode = mode};

	return f_entry_op(FUSE_MKDIR, parent, &mi, sizeof(mi), name, strlen(name) + 1, e);
}

int f_mknod(uint64_t parent, const char *name, uint32_t mode, uint32_t rdev,
	    struct fuse_entry_out *e)
{
	struct fuse_mknod_in mi = {.mode = mode, .rdev = rdev};

	return f_entry_op(FUSE_MKNOD, parent, &mi, sizeof(mi), name, strlen(name) + 1, e);
}

int f_symlink(uint64_t parent, const char *name, const char *target, struct fuse_entry_out *e)
{
	return f_entry_op(FUSE_SYMLINK, parent, name, strlen(name) + 1, target, strlen(target) + 1,
			  e);
}

int f_link(uint64_t node, uint64_t newparent, const char *name, struct fuse_entry_out *e)
{
	struct fuse_link_in li = {.oldnodeid = node};

	return f_entry_op(FUSE_LINK, newparent, &li, sizeof(li), name, strlen(name) + 1, e);
}

int f_simple(uint32_t op, uint64_t node, const void *a1, size_t l1, const void *a2, size_t l2)
{
	return vufe_fuse(it_fe, FO_Q, op, node, a1, l1, a2, l2, NULL, 0, NULL, 0);
}

int f_unlink(uint32_t op, uint64_t parent, const char *name)
{
	return f_simple(op, parent, name, strlen(name) + 1, NULL, 0);
}

int f_rename(uint64_t olddir, const char *old, uint64_t newdir, const char *new, uint32_t flags)
{
	char names[600];
	size_t lo = strlen(old) + 1, ln = strlen(new) + 1;
	struct fuse_rename2_in r2 = {.newdir = newdir, .flags = flags};
	struct fuse_rename_in r1 = {.newdir = newdir};

	memcpy(names, old, lo);
	memcpy(names + lo, new, ln);
	if (flags == 0)
		return f_simple(FUSE_RENAME, olddir, &r1, sizeof(r1), names, lo + ln);
	return f_simple(FUSE_RENAME2, olddir, &r2, sizeof(r2), names, lo + ln);
}

int f_setattr(uint64_t node, const struct fuse_setattr_in *in, struct fuse_attr_out *out)
{
	struct fuse_attr_out tmp;
	uint32_t n = 0;
	int r = vufe_fuse(it_fe, FO_Q, FUSE_SETATTR, node, in, sizeof(*in), NULL, 0, &tmp,
			  sizeof(tmp), &n, 0);

	if (r == 0) {
		cr_assert_eq(n, sizeof(tmp));
		if (out)
			*out = tmp;
	}
	return r;
}
