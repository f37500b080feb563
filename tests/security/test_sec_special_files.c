/*
 * test_sec_special_files.c - a hostile guest tries to open host device
 * nodes, FIFOs and sockets for data, through every request that opens a
 * name or a node: CREATE with and without O_EXCL, TMPFILE and CREATE with
 * the special file as the directory, OPEN, OPENDIR, SETATTR size without a
 * handle, LINK (a new name for the node, then opened), extended attributes. The devices are real: a character device (the
 * host's /dev/zero: a leak would read zeros) and a block device (a loop
 * device the test sets up over a file of known content: a leak would read
 * it, a truncation would change it). A FIFO must never hang a pool thread
 * (the worker runs one), a socket never opens.
 * Every attack asserts the exact errno, then a follow-up request that must
 * succeed on the same queue, and the host objects unchanged. The daemon
 * runs in each sandbox mode: namespace (the share is also mounted nodev
 * in the worker) and chroot (no mount namespace: the checks alone); and
 * with --device-nodes=allow the guest, as root, makes the device nodes
 * itself first.
 * Runs in: the test process as root (mknod, losetup); bulkheadd is a child.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "fops.h"
#include "itest.h"

#define SF_LOOP_SIZE (256u << 10)
#define SF_CANARY    "bulkhead loop canary: a leak reads this\n"

static char sf_dir[256];     /* holds the loop device's backing file */
static char sf_loopdev[64];  /* /dev/loopN */
static char sf_backing[300]; /* its file */
static dev_t sf_blk;	     /* the loop device's number */
static int sf_sock = -1;     /* a listening socket bound in the share */
/* TMPFILE without a procfs of the worker's own (chroot) is EOPNOTSUPP
 * before anything else: it could never be linked into place. */
static int sf_tmpfile_err = -ENOTDIR;

static void sf_fill(unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)SF_CANARY[i % (sizeof(SF_CANARY) - 1)];
}

static void sf_loop_up(void)
{
	static unsigned char buf[SF_LOOP_SIZE];
	char out[256], *nl;
	char *argv[] = {"/usr/sbin/losetup", "--find", "--show", sf_backing, NULL};
	struct stat st;
	int fd, r;

	cr_assert_eq(hx_mkdtemp(sf_dir, sizeof(sf_dir), "loop"), 0);
	snprintf(sf_backing, sizeof(sf_backing), "%s/backing.img", sf_dir);
	sf_fill(buf, sizeof(buf));
	fd = open(sf_backing, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(fd);
	r = hx_run_capture(argv, NULL, NULL, out, sizeof(out));
	cr_assert_eq(r, 0, "losetup --find --show failed (%d): %s", r, out);
	if ((nl = strchr(out, '\n')))
		*nl = '\0';
	snprintf(sf_loopdev, sizeof(sf_loopdev), "%s", out);
	cr_assert_eq(stat(sf_loopdev, &st), 0, "stat %s: %s", sf_loopdev, strerror(errno));
	cr_assert(S_ISBLK(st.st_mode));
	sf_blk = st.st_rdev;
}

static void sf_loop_down(void)
{
	char out[256];
	char *argv[] = {"/usr/sbin/losetup", "--detach", sf_loopdev, NULL};

	if (sf_loopdev[0])
		(void)hx_run_capture(argv, NULL, NULL, out, sizeof(out));
	sf_loopdev[0] = '\0';
	hx_rmtree(sf_dir);
}

/* The loop device's file still holds exactly what we wrote. */
static void sf_expect_backing_intact(void)
{
	static unsigned char want[SF_LOOP_SIZE], got[SF_LOOP_SIZE + 1];
	int fd = open(sf_backing, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	cr_assert_geq(fd, 0);
	n = read(fd, got, sizeof(got));
	close(fd);
	sf_fill(want, sizeof(want));
	cr_expect_eq(n, (ssize_t)sizeof(want), "the loop device's file is %zd bytes", n);
	cr_expect_eq(memcmp(got, want, sizeof(want)), 0, "the loop device's data changed");
}

/* The host's special files: a character device, a block device, a FIFO and
 * a listening socket, made by root on the host inside the share. */
static int sf_prep(const char *share)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/chr", share);
	if (mknod(p, S_IFCHR | 0666, makedev(1, 5)) < 0)
		return -errno;
	snprintf(p, sizeof(p), "%s/blk", share);
	if (mknod(p, S_IFBLK | 0666, sf_blk) < 0)
		return -errno;
	snprintf(p, sizeof(p), "%s/fifo", share);
	if (mkfifo(p, 0666) < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", share);
	sf_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sf_sock < 0 || bind(sf_sock, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(sf_sock, 1) < 0)
		return -errno;
	return 0;
}

static void sf_start(const char *const *extra)
{
	sf_loop_up();
	cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "share"), 0);
	cr_assert_eq(sf_prep(it_share), 0, "special files: %s", strerror(errno));
	it_start(extra, 2);
}

static void sf_fini(void)
{
	it_teardown();
	if (sf_sock >= 0)
		close(sf_sock);
	sf_sock = -1;
	sf_loop_down();
}

static void sf_namespace(void)
{
	static const char *const extra[] = {"--xattr", NULL};

	sf_start(extra);
}

static void sf_chroot(void)
{
	static const char *const extra[] = {"--sandbox=chroot", "--xattr", NULL};

	sf_tmpfile_err = -EOPNOTSUPP;
	sf_start(extra);
}

static void sf_devices_allowed(void)
{
	static const char *const extra[] = {"--device-nodes=allow", "--xattr", NULL};

	sf_start(extra);
}

static void sf_devices_allowed_chroot(void)
{
	static const char *const extra[] = {"--device-nodes=allow", "--sandbox=chroot", "--xattr",
					    NULL};

	sf_tmpfile_err = -EOPNOTSUPP;
	sf_start(extra);
}

TestSuite(sec_special, .init = sf_namespace, .fini = sf_fini, .timeout = 90);
TestSuite(sec_special_chroot, .init = sf_chroot, .fini = sf_fini, .timeout = 90);
TestSuite(sec_special_guest_mknod, .init = sf_devices_allowed, .fini = sf_fini, .timeout = 90);
TestSuite(sec_special_guest_mknod_chroot, .init = sf_devices_allowed_chroot, .fini = sf_fini,
	  .timeout = 90);

/* The follow-up: the queue still answers, with the right data. */
static void sf_follow_up(const char *after)
{
	uint64_t nid = it_lookup(it_fe, FO_Q, "small.txt"), fh;
	char buf[64];
	uint32_t n = 0;

	cr_assert_neq(nid, 0, "LOOKUP after %s failed", after);
	cr_assert_eq(vufe_fuse_open(it_fe, FO_Q, nid, O_RDONLY, &fh), 0, "OPEN after %s", after);
	cr_assert_eq(vufe_fuse_read(it_fe, FO_Q, nid, fh, 0, sizeof(buf), buf, &n, 0), 0,
		     "READ after %s", after);
	cr_assert_eq(n, 15, "READ after %s: %u bytes", after, n);
	cr_assert_eq(vufe_fuse_release(it_fe, FO_Q, FUSE_RELEASE, nid, fh), 0);
}

static int sf_setattr_size(uint64_t nid)
{
	struct fuse_setattr_in in = {.valid = FATTR_SIZE, .size = 0};

	return f_setattr(nid, &in, NULL);
}

static int sf_getxattr(uint64_t nid, const char *name)
{
	struct fuse_getxattr_in gi = {.size = 256};
	char out[256];
	uint32_t n = 0;

	return vufe_fuse(it_fe, FO_Q, FUSE_GETXATTR, nid, &gi, sizeof(gi), name, strlen(name) + 1,
			 out, sizeof(out), &n, 0);
}

/*
 * Every way to open the special file 'name' (of type 'type'), each refused
 * with 'want' (EACCES for devices: what a nodev mount says; ENXIO for a
 * FIFO or socket), each followed by a request that must succeed.
 */
static void sf_attack(const char *name, mode_t type, int want)
{
	static const uint32_t flags[] = {O_RDWR, O_WRONLY, O_RDONLY, O_WRONLY | O_NONBLOCK,
					 O_RDWR | O_TRUNC};
	struct fuse_entry_out e;
	uint64_t nid, fh = 0;
	char what[96], link[64];
	int r;

	nid = it_lookup(it_fe, FO_Q, name);
	cr_assert_neq(nid, 0, "LOOKUP %s", name);
	cr_assert_eq(hstat(name).st_mode & S_IFMT, type);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		snprintf(what, sizeof(what), "CREATE %s flags %#x", name, flags[i]);
		r = f_create(FUSE_CREATE, 1, name, flags[i] | O_CREAT, 0644, &e, &fh);
		cr_assert_eq(r, want, "%s: %d, want %d", what, r, want);
		sf_follow_up(what);
		snprintf(what, sizeof(what), "OPEN %s flags %#x", name, flags[i]);
		r = vufe_fuse_open(it_fe, FO_Q, nid, flags[i], &fh);
		cr_assert_eq(r, want, "%s: %d, want %d", what, r, want);
		sf_follow_up(what);
	}
	r = f_create(FUSE_CREATE, 1, name, O_RDWR | O_CREAT | O_EXCL, 0644, &e, &fh);
	cr_assert_eq(r, -EEXIST, "CREATE %s O_EXCL: %d", name, r);
	/* the special file as the "directory" of a new file, named or not */
	r = f_create(FUSE_TMPFILE, nid, ".", O_RDWR, 0600, &e, &fh);
	cr_assert_eq(r, sf_tmpfile_err, "TMPFILE in %s: %d", name, r);
	r = f_create(FUSE_CREATE, nid, "x", O_RDWR | O_CREAT, 0600, &e, &fh);
	cr_assert_eq(r, -ENOTDIR, "CREATE in %s: %d", name, r);
	r = vufe_fuse_opendir(it_fe, FO_Q, nid, &fh);
	cr_assert_eq(r, -ENOTDIR, "OPENDIR %s: %d", name, r);
	sf_follow_up("OPENDIR");
	/* what truncate(2) says of anything but a regular file, never opened */
	r = sf_setattr_size(nid);
	cr_assert_eq(r, -EINVAL, "SETATTR size of %s: %d", name, r);
	sf_follow_up("SETATTR size");
	/* a second name is no way in either */
	snprintf(link, sizeof(link), "%s-link", name);
	cr_assert_eq(f_link(nid, 1, link, &e), 0, "LINK %s", name);
	cr_assert_eq(e.nodeid, nid);
	r = f_create(FUSE_CREATE, 1, link, O_RDWR | O_CREAT, 0644, NULL, NULL);
	cr_assert_eq(r, want, "CREATE over the link to %s: %d", name, r);
	r = vufe_fuse_open(it_fe, FO_Q, e.nodeid, O_RDWR, &fh);
	cr_assert_eq(r, want, "OPEN through the link to %s: %d", name, r);
	/* extended attributes of a special file are never read by opening it */
	r = sf_getxattr(nid, "user.bulkhead");
	cr_assert_eq(r, -ENODATA, "GETXATTR of %s: %d", name, r);
	sf_follow_up("GETXATTR");
	cr_assert_eq(hstat(name).st_mode & S_IFMT, type, "%s changed type", name);
}

static void sf_attack_all(const char *chr, const char *blk)
{
	sf_attack(chr, S_IFCHR, -EACCES);
	sf_attack(blk, S_IFBLK, -EACCES);
	sf_attack("fifo", S_IFIFO, -ENXIO);
	sf_attack("sock", S_IFSOCK, -ENXIO);
	sf_expect_backing_intact();
}

ITEST(sec_special, host_device_nodes_fifos_and_sockets_are_never_opened)
{
	sf_attack_all("chr", "blk");
}

ITEST(sec_special_chroot, without_a_nodev_mount_the_checks_alone_refuse_every_open)
{
	sf_attack_all("chr", "blk");
}

/* The guest's own device nodes: it may make them (the operator allowed it),
 * and that is all: opening one is refused like the host's. */
static void sf_guest_mknod_then_attack(void)
{
	struct fuse_entry_out e;

	cr_assert_eq(f_mknod(1, "gchr", S_IFCHR | 0666, makedev(1, 5), &e), 0);
	cr_assert_eq(hstat("gchr").st_rdev, makedev(1, 5));
	cr_assert_eq(f_mknod(1, "gblk", S_IFBLK | 0666, (uint32_t)sf_blk, &e), 0);
	cr_assert_eq(hstat("gblk").st_rdev, sf_blk);
	sf_attack_all("gchr", "gblk");
}

ITEST(sec_special_guest_mknod, guest_made_device_nodes_are_never_opened)
{
	sf_guest_mknod_then_attack();
}

ITEST(sec_special_guest_mknod_chroot, guest_made_device_nodes_are_never_opened_under_chroot)
{
	sf_guest_mknod_then_attack();
}
