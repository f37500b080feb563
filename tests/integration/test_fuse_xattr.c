/*
 * test_fuse_xattr.c - GETXATTR/SETXATTR/LISTXATTR/REMOVEXATTR through
 * bulkheadd, from the test front end against the real daemon (default
 * sandbox, --seccomp=kill): ENOSYS without --xattr (the guest's kernel
 * says EOPNOTSUPP and stops asking); with it, user.* round trips checked
 * on the host, the size query, ERANGE, ENODATA, the
 * XATTR_CREATE/REPLACE flags, SETXATTR_EXT's longer argument, symlinks and
 * the privileged namespaces.
 * Runs in: the test process as root; bulkheadd is a child.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "itest.h"

#define Q 1

static uint64_t x_node;

/* A symlink beside the seeded files. */
static int x_prep(const char *dir)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/link", dir);
	return symlink("small.txt", p) < 0 ? -errno : 0;
}

static void x_start(const char *const *extra)
{
	struct vufe_opts o;

	vufe_fuse_set_creds(0, 0);
	it_start_share(extra, x_prep);
	vufe_opts_default(&o);
	it_fe = it_connect(&o);
	cr_assert_eq(it_up_init(it_fe), 0, "INIT failed");
	x_node = it_lookup(it_fe, Q, "small.txt");
	cr_assert_neq(x_node, 0);
}

static void x_setup(void)
{
	static const char *const extra[] = {"--xattr", NULL};

	x_start(extra);
}

TestSuite(fxattr, .init = x_setup, .fini = it_teardown, .timeout = 60);
TestSuite(fxattr_off, .fini = it_teardown, .timeout = 60);

static const char *hpath(const char *name)
{
	static char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", it_share, name);
	return p;
}

/* SETXATTR as a 6.1 guest sends it after SETXATTR_EXT: 16-byte arguments. */
static int x_set(uint64_t node, const char *name, const void *val, uint32_t size, uint32_t flags)
{
	struct fuse_setxattr_in in = {.size = size, .flags = flags};
	char buf[512];
	size_t nl = strlen(name) + 1;

	cr_assert_leq(nl + size, sizeof(buf));
	memcpy(buf, name, nl);
	memcpy(buf + nl, val, size);
	return vufe_fuse(it_fe, Q, FUSE_SETXATTR, node, &in, sizeof(in), buf, nl + size, NULL, 0,
			 NULL, 0);
}

static int x_get(uint64_t node, uint32_t op, const char *name, uint32_t size, void *out,
		 uint32_t *len)
{
	struct fuse_getxattr_in in = {.size = size};
	char tmp[512];
	uint32_t n = 0;
	int r;

	r = vufe_fuse(it_fe, Q, op, node, &in, sizeof(in), name, name ? strlen(name) + 1 : 0, tmp,
		      size ? size : sizeof(struct fuse_getxattr_out), &n, 0);
	if (r == 0) {
		memcpy(out, tmp, n);
		*len = n;
	}
	return r;
}

static int x_remove(uint64_t node, const char *name)
{
	return vufe_fuse(it_fe, Q, FUSE_REMOVEXATTR, node, name, strlen(name) + 1, NULL, 0, NULL, 0,
			 NULL, 0);
}

Test(fxattr_off, xattr_ops_answer_eopnotsupp_without_the_option)
{
	char buf[64];
	uint32_t n;

	x_start(NULL);
	cr_assert_eq(setxattr(hpath("small.txt"), "user.k", "v", 1, 0), 0);
	/* without SETXATTR_EXT the argument is the 8-byte compat one */
	{
		struct fuse_setxattr_in in = {.size = 1};
		cr_assert_eq(vufe_fuse(it_fe, Q, FUSE_SETXATTR, x_node, &in, 8, "user.a\0v", 8,
				       NULL, 0, NULL, 0),
			     -ENOSYS);
	}
	/* ENOSYS: the guest's kernel says EOPNOTSUPP and stops asking */
	cr_assert_eq(x_get(x_node, FUSE_GETXATTR, "user.k", 64, buf, &n), -ENOSYS);
	cr_assert_eq(x_get(x_node, FUSE_LISTXATTR, NULL, 64, buf, &n), -ENOSYS);
	cr_assert_eq(x_remove(x_node, "user.k"), -ENOSYS);
	cr_assert_eq(getxattr(hpath("small.txt"), "user.k", buf, sizeof(buf)), 1, "host unchanged");
	it_stop_ok();
}

Test(fxattr, user_xattr_round_trip_is_visible_on_the_host)
{
	char buf[256];
	uint32_t n = 0;
	ssize_t h;

	cr_assert_eq(x_set(x_node, "user.bulkhead", "hello", 5, 0), 0);
	h = getxattr(hpath("small.txt"), "user.bulkhead", buf, sizeof(buf));
	cr_assert_eq(h, 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);

	cr_assert_eq(setxattr(hpath("small.txt"), "user.from/host", "xyz", 3, 0), 0);
	cr_assert_eq(x_get(x_node, FUSE_GETXATTR, "user.from/host", 64, buf, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(memcmp(buf, "xyz", 3), 0);

	cr_assert_eq(x_get(x_node, FUSE_LISTXATTR, NULL, sizeof(buf), buf, &n), 0);
	cr_assert_eq(n, sizeof("user.bulkhead") + sizeof("user.from/host"));
	cr_assert(memmem(buf, n, "user.bulkhead", sizeof("user.bulkhead")) != NULL);
	cr_assert(memmem(buf, n, "user.from/host", sizeof("user.from/host")) != NULL);

	cr_assert_eq(x_remove(x_node, "user.bulkhead"), 0);
	cr_assert_eq(getxattr(hpath("small.txt"), "user.bulkhead", buf, sizeof(buf)), -1);
	cr_assert_eq(errno, ENODATA);
	it_stop_ok();
}

Test(fxattr, size_zero_query_errors_and_directories)
{
	struct fuse_getxattr_out go;
	char buf[64];
	uint32_t n = 0;

	cr_assert_eq(setxattr(hpath("small.txt"), "user.ten", "0123456789", 10, 0), 0);
	cr_assert_eq(x_get(x_node, FUSE_GETXATTR, "user.ten", 0, &go, &n), 0);
	cr_assert_eq(n, sizeof(go));
	cr_assert_eq(go.size, 10);
	cr_assert_eq(x_get(x_node, FUSE_LISTXATTR, NULL, 0, &go, &n), 0);
	cr_assert_eq(go.size, sizeof("user.ten"));
	cr_assert_eq(x_get(x_node, FUSE_GETXATTR, "user.ten", 4, buf, &n), -ERANGE);
	cr_assert_eq(x_get(x_node, FUSE_LISTXATTR, NULL, 4, buf, &n), -ERANGE);
	cr_assert_eq(x_get(x_node, FUSE_GETXATTR, "user.none", 64, buf, &n), -ENODATA);
	cr_assert_eq(x_remove(x_node, "user.none"), -ENODATA);
	/* the root directory takes attributes too */
	cr_assert_eq(x_set(1, "user.dir", "d", 1, 0), 0);
	cr_assert_eq(getxattr(it_share, "user.dir", buf, sizeof(buf)), 1);
	it_stop_ok();
}

Test(fxattr, setxattr_create_and_replace_flags)
{
	char buf[64];
	uint32_t n = 0;

	cr_assert_eq(x_set(x_node, "user.f", "1", 1, XATTR_REPLACE), -ENODATA);
	cr_assert_eq(x_set(x_node, "user.f", "1", 1, XATTR_CREATE), 0);
	cr_assert_eq(x_set(x_node, "user.f", "2", 1, XATTR_CREATE), -EEXIST);
	cr_assert_eq(x_set(x_node, "user.f", "33", 2, XATTR_REPLACE), 0);
	cr_assert_eq(x_get(x_node, FUSE_GETXATTR, "user.f", 64, buf, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(memcmp(buf, "33", 2), 0);
	cr_assert_eq(x_set(x_node, "user.f", "1", 1, 0x80), -EINVAL, "unknown flag");
	it_stop_ok();
}

Test(fxattr, symlinks_privileged_namespaces_and_malformed_requests)
{
	struct fuse_setxattr_in in = {.size = 3};
	uint64_t link = it_lookup(it_fe, Q, "link");
	char buf[64];
	uint32_t n = 0;

	cr_assert_neq(link, 0);
	cr_assert_eq(x_set(link, "user.l", "1", 1, 0), -EPERM);
	cr_assert_eq(x_get(link, FUSE_GETXATTR, "user.l", 64, buf, &n), -ENODATA);
	/* the worker has no CAP_SYS_ADMIN */
	cr_assert_eq(x_set(x_node, "trusted.t", "1", 1, 0), -EPERM);
	/* a value shorter than announced, an empty name */
	cr_assert_eq(vufe_fuse(it_fe, Q, FUSE_SETXATTR, x_node, &in, sizeof(in), "user.s\0ab", 9,
			       NULL, 0, NULL, 0),
		     -EINVAL);
	cr_assert_eq(x_get(x_node, FUSE_GETXATTR, "", 64, buf, &n), -ERANGE);
	cr_assert_eq(getxattr(hpath("small.txt"), "user.s", buf, sizeof(buf)), -1);
	it_stop_ok();
}
