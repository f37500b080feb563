/*
 * fops.h - FUSE calls and host-side checks shared by the integration and
 * security tests (fops.c). Every f_* helper sends one request on queue
 * FO_Q of the fixture's front end (it_fe) and returns the FUSE error (0,
 * -errno, or the front end's VUFE_E* codes), asserting the reply's size on
 * success; the h* helpers look at it_share from the host and assert.
 * Runs in: integration and security test programs only.
 */
#ifndef BH_FOPS_H
#define BH_FOPS_H

#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define FO_Q 1

/* it_share/name (two results may be used at once). */
const char *hpath(const char *name);
struct stat hstat(const char *name);
void hwrite(const char *name, const void *buf, size_t len, mode_t mode);
size_t hread(const char *name, void *buf, size_t cap);

/* CREATE or TMPFILE (op) with mode S_IFREG | mode; e and fh may be NULL. */
int f_create(uint32_t op, uint64_t parent, const char *name, uint32_t flags, uint32_t mode,
	     struct fuse_entry_out *e, uint64_t *fh);
/* A request answered with an entry (MKNOD, MKDIR, SYMLINK, LINK, LOOKUP). */
int f_entry_op(uint32_t op, uint64_t parent, const void *a1, size_t l1, const void *a2, size_t l2,
	       struct fuse_entry_out *e);
int f_mkdir(uint64_t parent, const char *name, uint32_t mode, struct fuse_entry_out *e);
int f_mknod(uint64_t parent, const char *name, uint32_t mode, uint32_t rdev,
	    struct fuse_entry_out *e);
int f_symlink(uint64_t parent, const char *name, const char *target, struct fuse_entry_out *e);
int f_link(uint64_t node, uint64_t newparent, const char *name, struct fuse_entry_out *e);
/* A request answered with nothing but its header. */
int f_simple(uint32_t op, uint64_t node, const void *a1, size_t l1, const void *a2, size_t l2);
int f_unlink(uint32_t op, uint64_t parent, const char *name);
int f_rename(uint64_t olddir, const char *old, uint64_t newdir, const char *new, uint32_t flags);
int f_setattr(uint64_t node, const struct fuse_setattr_in *in, struct fuse_attr_out *out);

#endif
