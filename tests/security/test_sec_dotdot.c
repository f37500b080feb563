/*
 * test_sec_dotdot.c - ".." must never lead a guest out of the share. The
 * guest holds a directory's node; a host process then moves that directory
 * out of the share; the guest asks for its "..". Under --sandbox=namespace
 * the kernel refuses ".." above the worker's bind mount by itself; under
 * chroot and none only the back end's check (the walk up to the share
 * root's identity) stands between the guest and the host's directory the
 * moved one now sits in. Before the move ".." is answered normally.
 * Runs in: the test process as root; bulkheadd is a child.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"

static char dd_dir[256]; /* the share and, beside it, "outside" */

static void dd_start(const char *sandbox)
{
	const char *extra[] = {sandbox, NULL};
	char p[PATH_MAX];

	cr_assert_eq(hx_mkdtemp(dd_dir, sizeof(dd_dir), "dotdot"), 0);
	snprintf(it_share, sizeof(it_share), "%s/share", dd_dir);
	cr_assert_eq(mkdir(it_share, 0755), 0);
	snprintf(p, sizeof(p), "%s/a", it_share);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/a/b", it_share);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/outside", dd_dir);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/outside/host-secret", dd_dir);
	cr_assert_eq(close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
	it_start(extra, 2);
}

static void dd_namespace(void)
{
	dd_start("--sandbox=namespace");
}

static void dd_chroot(void)
{
	dd_start("--sandbox=chroot");
}

static void dd_none(void)
{
	dd_start("--sandbox=none");
}

static void dd_fini(void)
{
	it_teardown();
	hx_rmtree(dd_dir);
}

TestSuite(sec_dotdot, .init = dd_namespace, .fini = dd_fini, .timeout = 60);
TestSuite(sec_dotdot_chroot, .init = dd_chroot, .fini = dd_fini, .timeout = 60);
TestSuite(sec_dotdot_none, .init = dd_none, .fini = dd_fini, .timeout = 60);

static void dd_moved_out_directory_has_no_parent(void)
{
	struct fuse_entry_out e;
	uint64_t a, b;
	char from[PATH_MAX], to[PATH_MAX];

	a = it_lookup(it_fe, 1, "a");
	cr_assert_neq(a, 0);
	cr_assert_eq(vufe_fuse_lookup(it_fe, 1, a, "b", &e), 0);
	b = e.nodeid;
	/* inside the share ".." answers as usual */
	cr_assert_eq(vufe_fuse_lookup(it_fe, 1, b, "..", &e), 0);
	cr_assert_eq(e.nodeid, a, "\"..\" of a/b is not a");
	cr_assert_eq(vufe_fuse_lookup(it_fe, 1, a, "..", &e), 0);
	cr_assert_eq(e.nodeid, 1, "\"..\" of a is not the root");

	snprintf(from, sizeof(from), "%s/a/b", it_share);
	snprintf(to, sizeof(to), "%s/outside/b", dd_dir);
	cr_assert_eq(rename(from, to), 0);
	cr_assert_eq(vufe_fuse_lookup(it_fe, 1, b, "..", &e), -ENOENT,
		     "\"..\" of a directory moved out of the share was answered");
	/* and the share serves on */
	cr_assert_neq(it_lookup(it_fe, 1, "small.txt"), 0);
	cr_assert_eq(vufe_fuse_lookup(it_fe, 1, a, "..", &e), 0);
	cr_assert_eq(e.nodeid, 1);
}

ITEST(sec_dotdot, parent_of_a_directory_moved_out_is_enoent)
{
	dd_moved_out_directory_has_no_parent();
}

ITEST(sec_dotdot_chroot, parent_of_a_directory_moved_out_is_enoent_under_chroot)
{
	dd_moved_out_directory_has_no_parent();
}

ITEST(sec_dotdot_none, parent_of_a_directory_moved_out_is_enoent_without_a_sandbox)
{
	dd_moved_out_directory_has_no_parent();
}
