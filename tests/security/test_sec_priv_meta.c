/*
 * test_sec_priv_meta.c - a guest that claims uid 0 tries to plant
 * privileges on the host: device nodes (MKNOD), setuid and setgid files
 * (CREATE, TMPFILE, MKNOD, SETATTR mode) and file capabilities
 * (SETXATTR security.capability). Each operator choice is exercised:
 * --device-nodes=refuse|allow, --setid=refuse|strip|allow,
 * --file-caps=refuse|allow, the -o spellings, and a bad value, which must
 * stop start-up with a message naming the option. Refusals are EPERM with
 * nothing left on the host; what stays allowed (a setgid directory, the
 * overlayfs whiteout, FIFOs, user.* attributes) keeps working.
 * Runs in: the test process as root; bulkheadd is a child.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fops.h"
#include "itest.h"

static void pm_default(void)
{
	static const char *const extra[] = {"--xattr", NULL};

	it_start(extra, 2);
}

static void pm_strip(void)
{
	static const char *const extra[] = {"--xattr", "--setid=strip", NULL};

	it_start(extra, 2);
}

static void pm_allow(void)
{
	static const char *const extra[] = {"--xattr", "--setid=allow", "--device-nodes=allow",
					    "--file-caps=allow", NULL};

	it_start(extra, 2);
}

static void pm_o_spelling(void)
{
	static const char *const extra[] = {
	    "-o", "xattr,device_nodes=allow,setid=strip,file_caps=allow", NULL};

	it_start(extra, 2);
}

TestSuite(sec_meta_default, .init = pm_default, .fini = it_teardown, .timeout = 60);
TestSuite(sec_meta_strip, .init = pm_strip, .fini = it_teardown, .timeout = 60);
TestSuite(sec_meta_allow, .init = pm_allow, .fini = it_teardown, .timeout = 60);
TestSuite(sec_meta_o, .init = pm_o_spelling, .fini = it_teardown, .timeout = 60);
TestSuite(sec_meta_args, .timeout = 30);

/* ---- helpers ---- */

static bool pm_exists(const char *name)
{
	struct stat st;

	return lstat(hpath(name), &st) == 0;
}

static int pm_chmod(const char *name, uint32_t mode, struct fuse_attr_out *out)
{
	struct fuse_setattr_in in = {.valid = FATTR_MODE, .mode = mode};
	uint64_t nid = it_lookup(it_fe, FO_Q, name);

	cr_assert_neq(nid, 0, "LOOKUP %s", name);
	return f_setattr(nid, &in, out);
}

static int pm_setxattr(const char *name, const char *attr, const void *val, uint32_t size)
{
	struct fuse_setxattr_in si = {.size = size};
	char buf[300];
	size_t al = strlen(attr) + 1;
	uint64_t nid = it_lookup(it_fe, FO_Q, name);

	cr_assert_neq(nid, 0);
	memcpy(buf, attr, al);
	memcpy(buf + al, val, size);
	/* the session negotiated SETXATTR_EXT: 16 bytes of fixed arguments */
	return vufe_fuse(it_fe, FO_Q, FUSE_SETXATTR, nid, &si, sizeof(si), buf, al + size, NULL, 0,
			 NULL, 0);
}

/* A version 2 file capability: cap_net_raw, permitted and effective. */
static void pm_cap_blob(struct vfs_cap_data *c)
{
	memset(c, 0, sizeof(*c));
	c->magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE;
	c->data[0].permitted = 1u << CAP_NET_RAW;
}

/* Requests that must keep working under every policy. */
static void pm_unprivileged_still_work(void)
{
	struct fuse_entry_out e;
	uint64_t fh;

	cr_assert_eq(f_create(FUSE_CREATE, 1, "plain", O_RDWR | O_CREAT, 0755, &e, &fh), 0);
	cr_assert_eq(hstat("plain").st_mode & 07777, 0755);
	cr_assert_eq(vufe_fuse_release(it_fe, FO_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	cr_assert_eq(f_mknod(1, "fifo", S_IFIFO | 0644, 0, &e), 0);
	cr_assert(S_ISFIFO(hstat("fifo").st_mode));
	/* the overlayfs whiteout: character device 0:0 */
	cr_assert_eq(f_mknod(1, "whiteout", S_IFCHR | 0, 0, &e), 0);
	cr_assert(S_ISCHR(hstat("whiteout").st_mode));
	cr_assert_eq(hstat("whiteout").st_rdev, makedev(0, 0));
	/* setgid on a directory passes the group on: not a privilege */
	cr_assert_eq(f_mkdir(1, "shared", 0775, &e), 0);
	cr_assert_eq(pm_chmod("shared", 02775, NULL), 0);
	cr_assert_eq(hstat("shared").st_mode & 07777, 02775);
	cr_assert_eq(pm_setxattr("plain", "user.note", "hello", 5), 0);
}

/* ---- refuse (the defaults) ---- */

ITEST(sec_meta_default, device_nodes_are_refused_with_eperm_and_nothing_is_made)
{
	struct fuse_entry_out e;

	cr_assert_eq(f_mknod(1, "zero", S_IFCHR | 0666, makedev(1, 5), &e), -EPERM);
	cr_assert(!pm_exists("zero"), "a refused device node exists on the host");
	cr_assert_eq(f_mknod(1, "disk", S_IFBLK | 0600, makedev(8, 0), &e), -EPERM);
	cr_assert(!pm_exists("disk"));
	pm_unprivileged_still_work();
}

ITEST(sec_meta_default, setuid_and_setgid_files_are_refused_with_eperm)
{
	struct fuse_entry_out e;
	uint64_t fh;

	cr_assert_eq(f_create(FUSE_CREATE, 1, "suid", O_RDWR | O_CREAT, 04755, &e, &fh), -EPERM);
	cr_assert(!pm_exists("suid"), "a refused setuid file exists on the host");
	cr_assert_eq(f_create(FUSE_CREATE, 1, "sgid", O_RDWR | O_CREAT, 02755, &e, &fh), -EPERM);
	cr_assert(!pm_exists("sgid"));
	cr_assert_eq(f_create(FUSE_TMPFILE, 1, ".", O_RDWR, 04700, &e, &fh), -EPERM);
	cr_assert_eq(f_mknod(1, "nsuid", S_IFREG | 04644, 0, &e), -EPERM);
	cr_assert(!pm_exists("nsuid"));
	/* chmod of an existing file: refused, the mode untouched */
	cr_assert_eq(pm_chmod("small.txt", 04755, NULL), -EPERM);
	cr_assert_eq(pm_chmod("small.txt", 02711, NULL), -EPERM);
	cr_assert_eq(hstat("small.txt").st_mode & 07777, 0644);
	pm_unprivileged_still_work();
}

ITEST(sec_meta_default, file_capabilities_are_refused_with_eperm)
{
	struct vfs_cap_data cap;
	char back[64];

	pm_cap_blob(&cap);
	cr_assert_eq(pm_setxattr("small.txt", "security.capability", &cap, XATTR_CAPS_SZ_2),
		     -EPERM);
	cr_assert_lt(getxattr(hpath("small.txt"), "security.capability", back, sizeof(back)), 0);
	cr_assert_eq(errno, ENODATA, "the host file got a capability");
	pm_unprivileged_still_work();
}

/* ---- strip ---- */

ITEST(sec_meta_strip, setuid_and_setgid_bits_are_dropped_and_the_call_succeeds)
{
	struct fuse_attr_out a;
	struct fuse_entry_out e;
	uint64_t fh;

	cr_assert_eq(f_create(FUSE_CREATE, 1, "suid", O_RDWR | O_CREAT, 04755, &e, &fh), 0);
	cr_assert_eq(hstat("suid").st_mode & 07777, 0755);
	cr_assert_eq(e.attr.mode & 07777, 0755, "the reply shows the mode as made");
	cr_assert_eq(vufe_fuse_release(it_fe, FO_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	cr_assert_eq(f_mknod(1, "nsgid", S_IFREG | 02644, 0, &e), 0);
	cr_assert_eq(hstat("nsgid").st_mode & 07777, 0644);
	cr_assert_eq(pm_chmod("small.txt", 06755, &a), 0);
	cr_assert_eq(hstat("small.txt").st_mode & 07777, 0755);
	cr_assert_eq(a.attr.mode & 07777, 0755);
	/* devices and capabilities keep their defaults */
	cr_assert_eq(f_mknod(1, "zero", S_IFCHR | 0666, makedev(1, 5), &e), -EPERM);
	pm_unprivileged_still_work();
}

/* ---- allow ---- */

ITEST(sec_meta_allow, everything_a_local_root_could_make_is_made)
{
	struct fuse_entry_out e;
	uint64_t fh;

	cr_assert_eq(f_create(FUSE_CREATE, 1, "suid", O_RDWR | O_CREAT, 04755, &e, &fh), 0);
	cr_assert_eq(hstat("suid").st_mode & 07777, 04755);
	cr_assert_eq(vufe_fuse_release(it_fe, FO_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	cr_assert_eq(pm_chmod("small.txt", 06755, NULL), 0);
	cr_assert_eq(hstat("small.txt").st_mode & 07777, 06755);
	cr_assert_eq(f_mknod(1, "zero", S_IFCHR | 0666, makedev(1, 5), &e), 0);
	cr_assert(S_ISCHR(hstat("zero").st_mode));
	cr_assert_eq(hstat("zero").st_rdev, makedev(1, 5));
}

Test(sec_meta_allow, file_capabilities_land_on_the_host)
{
	struct vfs_cap_data cap, back;

	pm_cap_blob(&cap);
	cr_assert_eq(pm_setxattr("small.txt", "security.capability", &cap, XATTR_CAPS_SZ_2), 0);
	cr_assert_eq(getxattr(hpath("small.txt"), "security.capability", &back, sizeof(back)),
		     XATTR_CAPS_SZ_2);
	cr_assert_eq(back.data[0].permitted, 1u << CAP_NET_RAW);
	pm_unprivileged_still_work();
	it_stop_ok();
}

/* ---- the -o spelling ---- */

ITEST(sec_meta_o, o_options_set_each_choice)
{
	struct vfs_cap_data cap;
	struct fuse_entry_out e;

	cr_assert_eq(f_mknod(1, "zero", S_IFCHR | 0666, makedev(1, 5), &e), 0);
	cr_assert_eq(pm_chmod("small.txt", 04755, NULL), 0);
	cr_assert_eq(hstat("small.txt").st_mode & 07777, 0755, "setid=strip");
	pm_cap_blob(&cap);
	cr_assert_eq(pm_setxattr("small.txt", "security.capability", &cap, XATTR_CAPS_SZ_2), 0);
}

/* ---- bad values stop start-up, naming the option ---- */

static void pm_bad(const char *arg, const char *want)
{
	char out[1024];
	char *argv[] = {(char *)BH_BUILD_DIR "/daemon/bulkheadd", (char *)"--shared-dir=/",
			(char *)"--socket-path=/nonexistent/sock", (char *)arg, NULL};
	int r = hx_run_capture(argv, NULL, NULL, out, sizeof(out));

	cr_assert_eq(r, 1, "%s: exit %d", arg, r);
	cr_assert(strstr(out, want), "%s: said %s", arg, out);
}

Test(sec_meta_args, a_bad_choice_stops_start_up_naming_the_option)
{
	pm_bad("--setid=maybe", "invalid setid 'maybe' (refuse, strip or allow)");
	pm_bad("--device-nodes=yes", "invalid device-nodes 'yes' (refuse or allow)");
	pm_bad("--file-caps=", "invalid file-caps '' (refuse or allow)");
	pm_bad("-osetid=sometimes", "invalid setid 'sometimes'");
}
