/*
 * test_fuse_write.c - the FUSE write side of bulkheadd, from the test front
 * end against the real daemon (default sandbox, --seccomp=kill): every
 * operation that changes the share checked against the host (stat, read),
 * the errors a local file system gives (EEXIST, ENOTEMPTY, EXDEV, ELOOP,
 * ENAMETOOLONG, EACCES), ownership of created objects, setuid clearing,
 * --readonly, --writeback and the cache modes.
 * Runs in: the test process as root (it mounts a tmpfs for EXDEV and
 * creates files owned by root); bulkheadd is a child.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fops.h"
#include "itest.h"

#define Q FO_Q

static void w_setup(void)
{
	it_start_prep(NULL, 2, NULL);
}

static void w_fini(void)
{
	vufe_fuse_set_creds(0, 0);
	it_teardown();
}

TestSuite(fwrite, .init = w_setup, .fini = w_fini, .timeout = 60);
/* Tests that start the daemon themselves (other options). */
TestSuite(fwrite_opts, .fini = w_fini, .timeout = 60);

/* ---- helpers ---- */

static int f_lseek(uint64_t node, uint64_t fh, uint64_t off, uint32_t whence, uint64_t *res)
{
	struct fuse_lseek_in li = {.fh = fh, .offset = off, .whence = whence};
	struct fuse_lseek_out lo = {0};
	int r = vufe_fuse(it_fe, Q, FUSE_LSEEK, node, &li, sizeof(li), NULL, 0, &lo, sizeof(lo),
			  NULL, 0);

	*res = lo.offset;
	return r;
}

static void fill(unsigned char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(i * 31 + seed + (i >> 12));
}

/* ---- data ---- */

ITEST(fwrite, write_data_in_separate_pages_lands_byte_exact)
{
	static unsigned char buf[3 * 4096 + 100], back[sizeof(buf) + 10];
	struct fuse_entry_out e;
	uint32_t written = 0, got = 0;
	uint64_t fh;

	fill(buf, sizeof(buf), 7);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "new.bin", O_RDWR | O_CREAT, 0644, &e, &fh), 0);
	cr_assert_gt(e.nodeid, 1);
	cr_assert_eq(vufe_fuse_write(it_fe, Q, e.nodeid, fh, 0, buf, sizeof(buf), 0, &written), 0);
	cr_assert_eq(written, sizeof(buf));
	cr_assert_eq(hread("new.bin", back, sizeof(back)), sizeof(buf));
	cr_assert_eq(memcmp(buf, back, sizeof(buf)), 0, "host file differs");
	/* an overwrite in the middle, then the guest's view */
	cr_assert_eq(vufe_fuse_write(it_fe, Q, e.nodeid, fh, 4000, "XYZ", 3, 0, &written), 0);
	memcpy(buf + 4000, "XYZ", 3);
	cr_assert_eq(vufe_fuse_read(it_fe, Q, e.nodeid, fh, 0, sizeof(back), back, &got, 0), 0);
	cr_assert_eq(got, sizeof(buf));
	cr_assert_eq(memcmp(buf, back, sizeof(buf)), 0);
	cr_assert_eq(hstat("new.bin").st_mode & 07777, 0644);
	cr_assert_eq(vufe_fuse_flush(it_fe, Q, e.nodeid, fh), 0);
	cr_assert_eq(vufe_fuse_release(it_fe, Q, FUSE_RELEASE, e.nodeid, fh), 0);
}

ITEST(fwrite, open_with_o_trunc_and_o_append_behave_like_the_host)
{
	uint64_t nid = it_lookup(it_fe, Q, "small.txt"), fh;
	uint32_t written;
	char back[64];

	cr_assert_eq(vufe_fuse_open(it_fe, Q, nid, O_WRONLY | O_TRUNC, &fh), 0);
	cr_assert_eq(hstat("small.txt").st_size, 0);
	cr_assert_eq(vufe_fuse_write(it_fe, Q, nid, fh, 0, "abc", 3, 0, &written), 0);
	cr_assert_eq(vufe_fuse_release(it_fe, Q, FUSE_RELEASE, nid, fh), 0);
	cr_assert_eq(vufe_fuse_open(it_fe, Q, nid, O_WRONLY | O_APPEND, &fh), 0);
	/* O_APPEND: the host places the data at the end whatever the offset */
	cr_assert_eq(vufe_fuse_write(it_fe, Q, nid, fh, 0, "de", 2, 0, &written), 0);
	cr_assert_eq(hread("small.txt", back, sizeof(back)), 5);
	cr_assert_eq(memcmp(back, "abcde", 5), 0);
}

ITEST(fwrite, write_length_not_matching_size_is_refused)
{
	uint64_t nid = it_lookup(it_fe, Q, "small.txt"), fh;
	struct fuse_write_in wi = {.size = 10};
	struct fuse_write_out wo;

	cr_assert_eq(vufe_fuse_open(it_fe, Q, nid, O_RDWR, &fh), 0);
	wi.fh = fh;
	/* in.len = 80 + 4 while size says 10 */
	cr_assert_eq(vufe_fuse(it_fe, Q, FUSE_WRITE, nid, &wi, sizeof(wi), "abcd", 4, &wo,
			       sizeof(wo), NULL, 0),
		     -EINVAL);
	cr_assert_neq(hstat("small.txt").st_size, 4);
}

ITEST(fwrite, unlinked_but_open_file_stays_readable_and_writable)
{
	struct fuse_entry_out e;
	uint32_t written, got;
	uint64_t fh;
	char back[16];

	cr_assert_eq(f_create(FUSE_CREATE, 1, "gone", O_RDWR | O_CREAT, 0600, &e, &fh), 0);
	cr_assert_eq(vufe_fuse_write(it_fe, Q, e.nodeid, fh, 0, "before", 6, 0, &written), 0);
	cr_assert_eq(f_unlink(FUSE_UNLINK, 1, "gone"), 0);
	cr_assert_neq(access(hpath("gone"), F_OK), 0);
	cr_assert_eq(vufe_fuse_write(it_fe, Q, e.nodeid, fh, 6, "after", 5, 0, &written), 0);
	cr_assert_eq(vufe_fuse_read(it_fe, Q, e.nodeid, fh, 0, 16, back, &got, 0), 0);
	cr_assert_eq(got, 11);
	cr_assert_eq(memcmp(back, "beforeafter", 11), 0);
	struct fuse_attr_out a;
	cr_assert_eq(vufe_fuse_getattr(it_fe, Q, e.nodeid, &a), 0);
	cr_assert_eq(a.attr.nlink, 0);
	cr_assert_eq(a.attr.size, 11);
}

/* ---- SETATTR ---- */

ITEST(fwrite, setattr_changes_mode_owner_size_and_times_on_the_host)
{
	uint64_t nid = it_lookup(it_fe, Q, "small.txt"), fh;
	struct fuse_setattr_in in = {0};
	struct fuse_attr_out a;
	struct stat st;

	in.valid = FATTR_MODE | FATTR_UID | FATTR_GID;
	in.mode = S_IFREG | 0604;
	in.uid = 4321;
	in.gid = 8765;
	cr_assert_eq(f_setattr(nid, &in, &a), 0);
	st = hstat("small.txt");
	cr_assert_eq(st.st_mode & 07777, 0604);
	cr_assert_eq(st.st_uid, 4321);
	cr_assert_eq(st.st_gid, 8765);
	cr_assert_eq(a.attr.uid, 4321);
	cr_assert_eq(a.attr.mode, st.st_mode);

	memset(&in, 0, sizeof(in));
	in.valid = FATTR_SIZE;
	in.size = 3;
	cr_assert_eq(f_setattr(nid, &in, &a), 0);
	cr_assert_eq(hstat("small.txt").st_size, 3);
	cr_assert_eq(a.attr.size, 3);

	/* truncate through a handle opened read-write */
	cr_assert_eq(vufe_fuse_open(it_fe, Q, nid, O_RDWR, &fh), 0);
	in.valid = FATTR_SIZE | FATTR_FH;
	in.fh = fh;
	in.size = 10000;
	cr_assert_eq(f_setattr(nid, &in, &a), 0);
	cr_assert_eq(hstat("small.txt").st_size, 10000);

	memset(&in, 0, sizeof(in));
	in.valid = FATTR_ATIME | FATTR_MTIME;
	in.atime = 1000000000;
	in.atimensec = 123;
	in.mtime = 1100000000;
	in.mtimensec = 456789;
	cr_assert_eq(f_setattr(nid, &in, &a), 0);
	st = hstat("small.txt");
	cr_assert_eq(st.st_atim.tv_sec, 1000000000);
	cr_assert_eq(st.st_atim.tv_nsec, 123);
	cr_assert_eq(st.st_mtim.tv_sec, 1100000000);
	cr_assert_eq(st.st_mtim.tv_nsec, 456789);
	cr_assert_eq(a.attr.mtimensec, 456789);

	in.valid = FATTR_MTIME_NOW;
	cr_assert_eq(f_setattr(nid, &in, &a), 0);
	cr_assert_gt(hstat("small.txt").st_mtim.tv_sec, 1100000000);
	cr_assert_eq(hstat("small.txt").st_atim.tv_sec, 1000000000, "atime untouched");
}

ITEST(fwrite, setattr_kill_suidgid_clears_setuid_and_setgid)
{
	struct fuse_setattr_in in = {.valid = FATTR_KILL_SUIDGID | FATTR_SIZE, .size = 1};
	uint64_t nid;

	hwrite("suid2", "hello", 5, 06755);
	nid = it_lookup(it_fe, Q, "suid2");
	cr_assert_eq(f_setattr(nid, &in, NULL), 0);
	cr_assert_eq(hstat("suid2").st_mode & 07777, 0755);
}

ITEST(fwrite, setuid_cleared_after_write_with_kill_suidgid)
{
	uint64_t nid, fh;
	uint32_t written;

	hwrite("suid", "hello", 5, 04755);
	nid = it_lookup(it_fe, Q, "suid");
	cr_assert_eq(vufe_fuse_open(it_fe, Q, nid, O_WRONLY, &fh), 0);
	cr_assert_eq(vufe_fuse_write(it_fe, Q, nid, fh, 0, "j", 1, 0, &written), 0);
	cr_assert_eq(hstat("suid").st_mode & 07777, 04755, "a privileged write keeps setuid");
	cr_assert_eq(vufe_fuse_write(it_fe, Q, nid, fh, 1, "e", 1, FUSE_WRITE_KILL_SUIDGID,
				     &written),
		     0);
	cr_assert_eq(hstat("suid").st_mode & 07777, 0755);
}

/* ---- names ---- */

static int prep_public_dir(const char *share)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/pub", share);
	if (mkdir(p, 0777) < 0 || chmod(p, 0777) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/rootdir", share);
	if (mkdir(p, 0755) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/secret", share);
	int fd = open(p, O_WRONLY | O_CREAT, 0600);
	if (fd < 0)
		return -1;
	close(fd);
	return chmod(share, 0755);
}

ITEST(fwrite_opts, created_objects_belong_to_the_request_uid_and_gid)
{
	struct fuse_entry_out e, d;
	uint64_t pub, fh;
	struct stat st;

	it_start_prep(NULL, 2, prep_public_dir);
	pub = it_lookup(it_fe, Q, "pub");
	cr_assert_gt(pub, 0);
	vufe_fuse_set_creds(1000, 1001);
	cr_assert_eq(f_create(FUSE_CREATE, pub, "f", O_WRONLY | O_CREAT, 0640, &e, &fh), 0);
	cr_assert_eq(f_mkdir(pub, "d", 0750, &d), 0);
	cr_assert_eq(f_symlink(pub, "s", "f", NULL), 0);
	cr_assert_eq(f_mknod(pub, "p", S_IFIFO | 0600, 0, NULL), 0);
	cr_assert_eq(f_mkdir(d.nodeid, "inner", 0700, NULL), 0);
	static const char *names[] = {"pub/f", "pub/d", "pub/s", "pub/p", "pub/d/inner"};
	for (size_t i = 0; i < 5; i++) {
		st = hstat(names[i]);
		cr_expect_eq(st.st_uid, 1000, "%s uid %u", names[i], st.st_uid);
		cr_expect_eq(st.st_gid, 1001, "%s gid %u", names[i], st.st_gid);
	}
	cr_assert(S_ISFIFO(hstat("pub/p").st_mode));
	cr_assert_eq(hstat("pub/f").st_mode & 07777, 0640);
	cr_assert_eq(e.attr.uid, 1000);
	vufe_fuse_set_creds(0, 0);
}

/* A directory only group 4321 may write into. */
static int prep_group_dir(const char *share)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/grp", share);
	if (mkdir(p, 0770) < 0 || chown(p, 0, 4321) < 0 || chmod(p, 0770) < 0)
		return -1;
	return chmod(share, 0755);
}

/* MKDIR with a FUSE_EXT_GROUPS extension naming 'group' (nr_groups
 * given separately, to send malformed ones too). */
static int mkdir_with_group(uint64_t parent, const char *name, uint32_t nr, uint32_t group)
{
	struct fuse_mkdir_in mi = {.mode = 0755};
	unsigned char tail[PATH_MAX];
	size_t nl = strlen(name) + 1;
	struct {
		struct fuse_ext_header h;
		uint32_t nr, group;
	} ext = {{sizeof(ext), 32 /* FUSE_EXT_GROUPS */}, nr, group};
	struct vufe_call *c = vufe_call_new(it_fe, 512, 256);
	int r;

	cr_assert(c);
	memcpy(tail, name, nl);
	memcpy(tail + nl, &ext, sizeof(ext));
	cr_assert_eq(vufe_call_prep(it_fe, c, FUSE_MKDIR, parent, &mi, sizeof(mi), tail,
				    nl + sizeof(ext), 16 + sizeof(struct fuse_entry_out)),
		     0);
	((struct fuse_in_header *)c->c_in)->total_extlen = sizeof(ext) / 8;
	cr_assert_eq(vufe_call_submit(it_fe, Q, c, 0), 0);
	cr_assert_eq(vufe_call_wait(it_fe, c, 5000), 0);
	r = vufe_call_result(c);
	vufe_call_free(it_fe, c);
	return r;
}

/* A 6.3+ guest names the caller's supplementary group that owns the parent
 * (FUSE_CREATE_SUPP_GROUP): creating where only that group may write
 * works, as it did in the guest's own permission check; without it, or
 * after it, the host refuses. */
ITEST(fwrite_opts, supplementary_group_from_the_guest_lets_a_member_create)
{
	struct fuse_init_in ii = {.major = 7, .minor = 38, .max_readahead = 1 << 17,
				  .flags = VUFE_GUEST_INIT_FLAGS | FUSE_INIT_EXT,
				  .flags2 = VUFE_GUEST_INIT_FLAGS2 | (1u << 2)};
	struct fuse_init_out io;
	uint32_t n = 0;
	uint64_t grp;
	struct stat st;

	it_start_prep(NULL, 2, prep_group_dir);
	/* a newer guest INITs again, offering CREATE_SUPP_GROUP */
	cr_assert_eq(vufe_fuse(it_fe, Q, FUSE_INIT, 0, &ii, sizeof(ii), NULL, 0, &io, sizeof(io),
			       &n, 0),
		     0);
	cr_assert(io.flags & FUSE_INIT_EXT);
	cr_assert_eq(io.flags2 & (1u << 2), 1u << 2, "CREATE_SUPP_GROUP declined: %#x",
		     io.flags2);
	grp = it_lookup(it_fe, Q, "grp");
	cr_assert_gt(grp, 0);
	vufe_fuse_set_creds(1000, 1000);
	cr_assert_eq(f_mkdir(grp, "plain", 0755, NULL), -EACCES);
	cr_assert_eq(mkdir_with_group(grp, "other", 1, 4322), -EACCES, "a group that is not it");
	cr_assert_eq(mkdir_with_group(grp, "member", 1, 4321), 0);
	st = hstat("grp/member");
	cr_assert_eq(st.st_uid, 1000);
	cr_assert_eq(st.st_gid, 1000);
	/* the group was this request's only */
	cr_assert_eq(f_mkdir(grp, "after", 0755, NULL), -EACCES);
	cr_assert_eq(mkdir_with_group(grp, "bad", 0, 4321), -EIO, "nr_groups 0");
	cr_assert_eq(mkdir_with_group(grp, "bad", 9, 4321), -EIO, "nr_groups past the record");
	vufe_fuse_set_creds(0, 0);
}

ITEST(fwrite_opts, non_owner_is_denied_like_on_the_host)
{
	uint64_t secret, rootdir, fh;

	it_start_prep(NULL, 2, prep_public_dir);
	secret = it_lookup(it_fe, Q, "secret");
	rootdir = it_lookup(it_fe, Q, "rootdir");
	cr_assert(secret && rootdir);
	vufe_fuse_set_creds(1000, 1000);
	cr_assert_eq(vufe_fuse_open(it_fe, Q, secret, O_WRONLY, &fh), -EACCES);
	cr_assert_eq(vufe_fuse_open(it_fe, Q, secret, O_RDONLY, &fh), -EACCES);
	cr_assert_eq(f_create(FUSE_CREATE, rootdir, "x", O_WRONLY | O_CREAT, 0644, NULL, NULL),
		     -EACCES);
	cr_assert_eq(f_mkdir(rootdir, "y", 0755, NULL), -EACCES);
	struct fuse_access_in ai = {.mask = W_OK};
	cr_assert_eq(f_simple(FUSE_ACCESS, secret, &ai, sizeof(ai), NULL, 0), -EACCES);
	/* the same requests as root succeed: the loop thread kept its identity */
	vufe_fuse_set_creds(0, 0);
	cr_assert_eq(f_simple(FUSE_ACCESS, secret, &ai, sizeof(ai), NULL, 0), 0);
	cr_assert_eq(vufe_fuse_open(it_fe, Q, secret, O_WRONLY, &fh), 0);
	cr_assert_eq(f_mkdir(rootdir, "y", 0755, NULL), 0);
	cr_assert_eq(hstat("rootdir/y").st_uid, 0);
}

ITEST(fwrite, mkdir_symlink_mknod_link_create_host_objects)
{
	struct fuse_entry_out d, s, l, f;
	char target[64];
	uint64_t small = it_lookup(it_fe, Q, "small.txt");
	ssize_t n;

	cr_assert_eq(f_mkdir(1, "newdir", 0751, &d), 0);
	cr_assert(S_ISDIR(hstat("newdir").st_mode));
	cr_assert_eq(hstat("newdir").st_mode & 07777, 0751);
	cr_assert_eq(d.attr.ino, hstat("newdir").st_ino);
	cr_assert_eq(f_symlink(d.nodeid, "sl", "../some/where", &s), 0);
	n = readlink(hpath("newdir/sl"), target, sizeof(target));
	cr_assert_eq(n, 13);
	cr_assert_eq(memcmp(target, "../some/where", 13), 0);
	cr_assert(S_ISLNK(s.attr.mode));
	cr_assert_eq(f_mknod(d.nodeid, "fifo", S_IFIFO | 0644, 0, &f), 0);
	cr_assert(S_ISFIFO(hstat("newdir/fifo").st_mode));
	cr_assert_eq(f_link(small, d.nodeid, "hard", &l), 0);
	cr_assert_eq(l.nodeid, small, "a hard link is the same node");
	cr_assert_eq(hstat("newdir/hard").st_ino, hstat("small.txt").st_ino);
	cr_assert_eq(l.attr.nlink, 2);
	cr_assert_eq(f_unlink(FUSE_UNLINK, d.nodeid, "hard"), 0);
	cr_assert_eq(f_unlink(FUSE_UNLINK, d.nodeid, "fifo"), 0);
	cr_assert_eq(f_unlink(FUSE_UNLINK, d.nodeid, "sl"), 0);
	cr_assert_eq(f_unlink(FUSE_RMDIR, 1, "newdir"), 0);
	cr_assert_neq(access(hpath("newdir"), F_OK), 0);
}

/* CREATE without O_EXCL of a name that exists opens it, as open(2) does:
 * the same node, its data kept (or cut by O_TRUNC). Only a regular file:
 * a FIFO is never opened (ENXIO, whatever the flags: its open would wait
 * for a peer), see tests/security for devices and sockets. (The loop thread
 * only ever makes new files; an existing name goes to the pool.) */
ITEST(fwrite, create_of_an_existing_name_opens_it)
{
	struct fuse_entry_out e;
	uint64_t small = it_lookup(it_fe, Q, "small.txt"), fh;
	char buf[64];

	hwrite("kept", "keep me", 7, 0640);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "small.txt", O_RDWR | O_CREAT, 0600, &e, &fh), 0);
	cr_assert_eq(e.nodeid, small, "the existing node, not a new one");
	cr_assert_eq(vufe_fuse_release(it_fe, Q, FUSE_RELEASE, small, fh), 0);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "kept", O_WRONLY | O_CREAT, 0600, &e, &fh), 0);
	cr_assert_eq(hread("kept", buf, sizeof(buf)), 7, "data kept without O_TRUNC");
	cr_assert_eq(hstat("kept").st_mode & 07777, 0640, "mode of the existing file kept");
	cr_assert_eq(vufe_fuse_release(it_fe, Q, FUSE_RELEASE, e.nodeid, fh), 0);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "kept", O_WRONLY | O_CREAT | O_TRUNC, 0600, &e, &fh),
		     0);
	cr_assert_eq(hstat("kept").st_size, 0, "O_TRUNC cut it");
	cr_assert_eq(vufe_fuse_release(it_fe, Q, FUSE_RELEASE, e.nodeid, fh), 0);

	cr_assert_eq(mkfifo(hpath("pipe"), 0644), 0);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "pipe", O_WRONLY | O_CREAT | O_NONBLOCK, 0644, &e,
			      NULL),
		     -ENXIO);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "pipe", O_RDWR | O_CREAT, 0644, &e, NULL), -ENXIO);
	cr_assert(S_ISFIFO(hstat("pipe").st_mode), "still a FIFO on the host");
	/* and new names are still made */
	cr_assert_eq(f_create(FUSE_CREATE, 1, "fresh", O_WRONLY | O_CREAT, 0600, &e, &fh), 0);
	cr_assert(S_ISREG(hstat("fresh").st_mode));
	cr_assert_eq(hstat("fresh").st_mode & 07777, 0600);
	cr_assert_eq(vufe_fuse_release(it_fe, Q, FUSE_RELEASE, e.nodeid, fh), 0);
}

ITEST(fwrite, tmpfile_then_link_makes_it_visible)
{
	struct fuse_entry_out e, l;
	uint32_t written;
	uint64_t fh;
	char back[16];

	cr_assert_eq(f_create(FUSE_TMPFILE, 1, "/", O_RDWR, 0640, &e, &fh), 0);
	cr_assert_eq(e.attr.nlink, 0);
	cr_assert_eq(vufe_fuse_write(it_fe, Q, e.nodeid, fh, 0, "tmpdata", 7, 0, &written), 0);
	cr_assert_eq(f_link(e.nodeid, 1, "fromtmp", &l), 0);
	cr_assert_eq(l.nodeid, e.nodeid);
	cr_assert_eq(hread("fromtmp", back, sizeof(back)), 7);
	cr_assert_eq(memcmp(back, "tmpdata", 7), 0);
	cr_assert_eq(hstat("fromtmp").st_mode & 07777, 0640);
}

ITEST(fwrite, rename_moves_and_rename2_exchange_swaps)
{
	uint64_t dir = it_lookup(it_fe, Q, "dir");
	char a[8], b[8];

	hwrite("a", "AAAA", 4, 0644);
	hwrite("b", "BB", 2, 0644);
	cr_assert_eq(f_rename(1, "a", 1, "b", RENAME_EXCHANGE), 0);
	cr_assert_eq(hread("a", a, sizeof(a)), 2);
	cr_assert_eq(hread("b", b, sizeof(b)), 4);
	cr_assert_eq(memcmp(b, "AAAA", 4), 0);
	cr_assert_eq(f_rename(1, "a", dir, "moved", 0), 0);
	cr_assert_neq(access(hpath("a"), F_OK), 0);
	cr_assert_eq(hread("dir/moved", a, sizeof(a)), 2);
	cr_assert_eq(f_rename(dir, "moved", 1, "b", 0), 0, "plain rename replaces");
	cr_assert_eq(hread("b", b, sizeof(b)), 2);
}

/* ---- errors ---- */

ITEST(fwrite, existing_names_give_eexist)
{
	uint64_t small = it_lookup(it_fe, Q, "small.txt");

	cr_assert_eq(f_create(FUSE_CREATE, 1, "small.txt", O_WRONLY | O_CREAT | O_EXCL, 0644, NULL,
			      NULL),
		     -EEXIST);
	cr_assert_eq(f_mkdir(1, "dir", 0755, NULL), -EEXIST);
	cr_assert_eq(f_link(small, 1, "empty", NULL), -EEXIST);
	cr_assert_eq(f_symlink(1, "empty", "x", NULL), -EEXIST);
	cr_assert_eq(f_rename(1, "small.txt", 1, "empty", RENAME_NOREPLACE), -EEXIST);
	cr_assert_eq(access(hpath("small.txt"), F_OK), 0);
}

ITEST(fwrite, non_empty_directories_give_enotempty)
{
	cr_assert_eq(mkdir(hpath("emptydir"), 0755), 0);
	cr_assert_eq(f_unlink(FUSE_RMDIR, 1, "dir"), -ENOTEMPTY);
	cr_assert_eq(f_rename(1, "emptydir", 1, "dir", 0), -ENOTEMPTY);
	cr_assert(S_ISDIR(hstat("dir/sub").st_mode));
}

ITEST(fwrite, symlinks_are_not_followed_eloop)
{
	uint64_t link = it_lookup(it_fe, Q, "link_small"), fh;
	struct fuse_entry_out e;

	cr_assert_gt(link, 0);
	cr_assert_eq(vufe_fuse_open(it_fe, Q, link, O_RDWR, &fh), -ELOOP);
	cr_assert_eq(vufe_fuse_open(it_fe, Q, link, O_RDONLY, &fh), -ELOOP);
	/* a name looked up under a symlink to a directory does not pass through it */
	uint64_t etc = it_lookup(it_fe, Q, "link_etc");
	cr_assert_eq(vufe_fuse_lookup(it_fe, Q, etc, "passwd", &e), -ENOTDIR);
	cr_assert_eq(f_create(FUSE_CREATE, etc, "evil", O_WRONLY | O_CREAT, 0644, NULL, NULL),
		     -ENOTDIR);
	cr_assert_eq(access("/etc/evil", F_OK), -1);
	cr_assert_eq(errno, ENOENT);
	cr_assert_neq(it_lookup(it_fe, Q, "small.txt"), 0);
}

ITEST(fwrite, long_and_dot_names_are_refused)
{
	char name[257];

	memset(name, 'n', 256);
	name[256] = '\0';
	cr_assert_eq(f_create(FUSE_CREATE, 1, name, O_WRONLY | O_CREAT, 0644, NULL, NULL),
		     -ENAMETOOLONG);
	cr_assert_eq(f_mkdir(1, name, 0755, NULL), -ENAMETOOLONG);
	cr_assert_eq(f_mkdir(1, "..", 0755, NULL), -EINVAL);
	cr_assert_eq(f_rename(1, "small.txt", 1, ".", 0), -EINVAL);
	cr_assert_eq(access(hpath("small.txt"), F_OK), 0);
}

#ifndef IT_BACKEND_MEMORY
/* Passthrough only: a host mount inside the share; the memory
 * share is in no mount tree, so nothing can be mounted in it. */
static int prep_submount(const char *share)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/mnt", share);
	if (mkdir(p, 0755) < 0)
		return -1;
	return mount("bh-test", p, "tmpfs", 0, "size=1m");
}

ITEST(fwrite_opts, rename_across_a_host_mount_gives_exdev)
{
	uint64_t mnt;
	char p[PATH_MAX];

	struct fuse_entry_out e;

	it_start_prep(NULL, 2, prep_submount);
	/* The worker took its copy of the mount tree at start: the host's can go. */
	snprintf(p, sizeof(p), "%s/mnt", it_share);
	cr_assert_eq(umount2(p, MNT_DETACH), 0);
	mnt = it_lookup(it_fe, Q, "mnt");
	cr_assert_gt(mnt, 0);
	cr_assert_eq(f_rename(1, "small.txt", mnt, "moved", 0), -EXDEV);
	cr_assert_eq(f_link(it_lookup(it_fe, Q, "small.txt"), mnt, "hard", NULL), -EXDEV);
	cr_assert_eq(f_mkdir(mnt, "inside", 0755, NULL), 0, "the submount itself is writable");
	cr_assert_eq(vufe_fuse_lookup(it_fe, Q, mnt, "inside", &e), 0);
	cr_assert_eq(access(hpath("small.txt"), F_OK), 0);
}
#endif

/* ---- handles ---- */

ITEST(fwrite, lseek_finds_data_and_holes_in_a_sparse_file)
{
	static unsigned char page[4096];
	struct fuse_entry_out e;
	uint64_t fh, res;
	uint32_t written;

	fill(page, sizeof(page), 3);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "sparse", O_RDWR | O_CREAT, 0644, &e, &fh), 0);
	cr_assert_eq(vufe_fuse_write(it_fe, Q, e.nodeid, fh, 1 << 20, page, 4096, 0, &written), 0);
	cr_assert_eq(f_lseek(e.nodeid, fh, 0, SEEK_DATA, &res), 0);
	cr_assert_eq(res, 1 << 20);
	cr_assert_eq(f_lseek(e.nodeid, fh, 1 << 20, SEEK_HOLE, &res), 0);
	cr_assert_eq(res, (1 << 20) + 4096);
	cr_assert_eq(f_lseek(e.nodeid, fh, 0, SEEK_HOLE, &res), 0);
	cr_assert_eq(res, 0);
	cr_assert_eq(f_lseek(e.nodeid, fh, 0, SEEK_END, &res), 0);
	cr_assert_eq(res, (1 << 20) + 4096);
	cr_assert_eq(f_lseek(e.nodeid, fh, (1 << 20) + 4096, SEEK_DATA, &res), -ENXIO);
	cr_assert_eq(f_lseek(e.nodeid, fh, 0, 9, &res), -EINVAL);
}

ITEST(fwrite, fallocate_extends_and_punches_holes)
{
	static unsigned char buf[65536];
	struct fuse_fallocate_in fi = {0};
	struct fuse_entry_out e;
	uint32_t written;
	uint64_t fh;

	fill(buf, sizeof(buf), 9);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "falloc", O_RDWR | O_CREAT, 0644, &e, &fh), 0);
	fi.fh = fh;
	fi.length = 1 << 20;
	cr_assert_eq(f_simple(FUSE_FALLOCATE, e.nodeid, &fi, sizeof(fi), NULL, 0), 0);
	cr_assert_eq(hstat("falloc").st_size, 1 << 20);
	cr_assert_eq(vufe_fuse_write(it_fe, Q, e.nodeid, fh, 0, buf, sizeof(buf), 0, &written), 0);
	blkcnt_t before = hstat("falloc").st_blocks;
	fi.mode = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE;
	fi.offset = 0;
	fi.length = sizeof(buf);
	cr_assert_eq(f_simple(FUSE_FALLOCATE, e.nodeid, &fi, sizeof(fi), NULL, 0), 0);
	cr_assert_lt(hstat("falloc").st_blocks, before);
	cr_assert_eq(hstat("falloc").st_size, 1 << 20);
	fi.mode = 0x4000; /* no such mode */
	cr_assert_eq(f_simple(FUSE_FALLOCATE, e.nodeid, &fi, sizeof(fi), NULL, 0), -EOPNOTSUPP);
}

ITEST(fwrite, fsync_fsyncdir_flush_and_syncfs_succeed)
{
	struct fuse_entry_out e;
	struct fuse_fsync_in fi = {0};
	struct fuse_syncfs_in si = {0};
	uint64_t fh, dh;

	cr_assert_eq(f_create(FUSE_CREATE, 1, "synced", O_WRONLY | O_CREAT, 0644, &e, &fh), 0);
	fi.fh = fh;
	cr_assert_eq(f_simple(FUSE_FSYNC, e.nodeid, &fi, sizeof(fi), NULL, 0), 0);
	fi.fsync_flags = 1;
	cr_assert_eq(f_simple(FUSE_FSYNC, e.nodeid, &fi, sizeof(fi), NULL, 0), 0);
	cr_assert_eq(vufe_fuse_opendir(it_fe, Q, 1, &dh), 0);
	fi.fh = dh;
	cr_assert_eq(f_simple(FUSE_FSYNCDIR, 1, &fi, sizeof(fi), NULL, 0), 0);
	cr_assert_eq(vufe_fuse_flush(it_fe, Q, e.nodeid, fh), 0);
	cr_assert_eq(f_simple(FUSE_SYNCFS, 1, &si, sizeof(si), NULL, 0), 0);
	fi.fh = 0xdead0001;
	cr_assert_eq(f_simple(FUSE_FSYNC, e.nodeid, &fi, sizeof(fi), NULL, 0), -EBADF);
}

ITEST(fwrite_opts, copy_file_range_between_handles_of_two_queues)
{
	static unsigned char src[20000], back[sizeof(src)];
	struct fuse_copy_file_range_in ci = {0};
	struct fuse_entry_out e1, e2;
	struct fuse_write_out wo = {0};
	uint64_t f1, f2;
	uint32_t written;

	it_start_prep(NULL, 3, NULL);
	fill(src, sizeof(src), 5);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "src", O_RDWR | O_CREAT, 0644, &e1, &f1), 0);
	cr_assert_eq(vufe_fuse_write(it_fe, Q, e1.nodeid, f1, 0, src, sizeof(src), 0, &written), 0);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "dst", O_RDWR | O_CREAT, 0644, &e2, &f2), 0);
	ci.fh_in = f1;
	ci.off_in = 100;
	ci.nodeid_out = e2.nodeid;
	ci.fh_out = f2;
	ci.off_out = 10;
	ci.len = 15000;
	/* on the other request queue: both handles belong to queue 1's worker */
	cr_assert_eq(vufe_fuse(it_fe, 2, FUSE_COPY_FILE_RANGE, e1.nodeid, &ci, sizeof(ci), NULL, 0,
			       &wo, sizeof(wo), NULL, 0),
		     0);
	cr_assert_eq(wo.size, 15000);
	cr_assert_eq(hread("dst", back, sizeof(back)), 15010);
	cr_assert_eq(memcmp(back + 10, src + 100, 15000), 0);
}

/* ---- options ---- */

#ifndef IT_BACKEND_MEMORY
/* Passthrough only: a memory share refuses --readonly
 * (test_memory: a_read_only_memory_share_is_refused). */
ITEST(fwrite_opts, readonly_refuses_every_change_with_erofs)
{
	static const char *const ro[] = {"--readonly", NULL};
	struct fuse_setattr_in sa = {.valid = FATTR_MODE, .mode = 0600};
	uint64_t small, fh, rfh;
	uint32_t written;

	it_start_prep(ro, 2, NULL);
	small = it_lookup(it_fe, Q, "small.txt");
	cr_assert_eq(vufe_fuse_open(it_fe, Q, small, O_WRONLY, &fh), -EROFS);
	cr_assert_eq(vufe_fuse_open(it_fe, Q, small, O_RDWR, &fh), -EROFS);
	cr_assert_eq(vufe_fuse_open(it_fe, Q, small, O_RDONLY | O_TRUNC, &fh), -EROFS);
	cr_assert_eq(vufe_fuse_open(it_fe, Q, small, O_RDONLY, &rfh), 0);
	cr_assert_eq(vufe_fuse_write(it_fe, Q, small, rfh, 0, "x", 1, 0, &written), -EROFS);
	cr_assert_eq(f_setattr(small, &sa, NULL), -EROFS);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "n", O_WRONLY | O_CREAT, 0644, NULL, NULL), -EROFS);
	cr_assert_eq(f_create(FUSE_TMPFILE, 1, "/", O_RDWR, 0644, NULL, NULL), -EROFS);
	cr_assert_eq(f_mkdir(1, "d", 0755, NULL), -EROFS);
	cr_assert_eq(f_mknod(1, "p", S_IFIFO | 0644, 0, NULL), -EROFS);
	cr_assert_eq(f_symlink(1, "s", "t", NULL), -EROFS);
	cr_assert_eq(f_link(small, 1, "l", NULL), -EROFS);
	cr_assert_eq(f_unlink(FUSE_UNLINK, 1, "small.txt"), -EROFS);
	cr_assert_eq(f_unlink(FUSE_RMDIR, 1, "dir"), -EROFS);
	cr_assert_eq(f_rename(1, "small.txt", 1, "x", 0), -EROFS);
	struct fuse_fallocate_in fi = {.fh = rfh, .length = 10};
	cr_assert_eq(f_simple(FUSE_FALLOCATE, small, &fi, sizeof(fi), NULL, 0), -EROFS);
	cr_assert_eq(access(hpath("small.txt"), F_OK), 0);
	cr_assert_neq(access(hpath("d"), F_OK), 0);
}
#endif

static void expect_cache_mode(const char *arg, uint64_t valid, uint32_t fopen, uint32_t dopen)
{
	const char *const args[] = {arg, NULL};
	struct fuse_open_in oi = {.flags = O_RDONLY};
	struct fuse_open_out oo;
	struct fuse_entry_out e;

	it_start_prep(arg ? args : NULL, 2, NULL);
	cr_assert_eq(vufe_fuse_lookup(it_fe, Q, 1, "small.txt", &e), 0);
	cr_expect_eq(e.entry_valid, valid, "%s: entry_valid %llu", arg,
		     (unsigned long long)e.entry_valid);
	cr_expect_eq(e.attr_valid, valid);
	cr_assert_eq(vufe_fuse(it_fe, Q, FUSE_OPEN, e.nodeid, &oi, sizeof(oi), NULL, 0, &oo,
			       sizeof(oo), NULL, 0),
		     0);
	cr_expect_eq(oo.open_flags, fopen, "%s: file open flags %#x", arg, oo.open_flags);
	oi.flags = O_RDONLY | O_DIRECTORY;
	cr_assert_eq(vufe_fuse(it_fe, Q, FUSE_OPENDIR, 1, &oi, sizeof(oi), NULL, 0, &oo,
			       sizeof(oo), NULL, 0),
		     0);
	cr_expect_eq(oo.open_flags, dopen, "%s: dir open flags %#x", arg, oo.open_flags);
}

ITEST(fwrite_opts, cache_never_means_no_timeouts_and_direct_io)
{
	expect_cache_mode("--cache=never", 0, FOPEN_DIRECT_IO, 0);
}

ITEST(fwrite_opts, cache_none_is_an_alias_of_never)
{
	expect_cache_mode("--cache=none", 0, FOPEN_DIRECT_IO, 0);
}

ITEST(fwrite_opts, cache_auto_means_one_second_and_no_open_flags)
{
	expect_cache_mode(NULL, 1, 0, 0);
}

static uint32_t open_flags_of(uint64_t nid, uint32_t flags)
{
	struct fuse_open_in oi = {.flags = flags};
	struct fuse_open_out oo;

	cr_assert_eq(vufe_fuse(it_fe, Q, FUSE_OPEN, nid, &oi, sizeof(oi), NULL, 0, &oo, sizeof(oo),
			       NULL, 0),
		     0);
	return oo.open_flags;
}

/* cache=auto: an OPEN of a file nobody changed since the guest's last OPEN
 * of it keeps the guest's pages; a change on the host, or one too recent
 * for coarse timestamps to show the next one (2 s), drops them. */
ITEST(fwrite_opts, cache_auto_keeps_pages_only_of_files_unchanged_since_their_last_open)
{
	uint64_t nid;
	int fd;

	it_start_prep(NULL, 2, NULL);
	nid = it_lookup(it_fe, Q, "small.txt");
	cr_assert_eq(open_flags_of(nid, O_RDONLY), 0, "made just now: drop");
	cr_assert_eq(open_flags_of(nid, O_RDONLY), 0, "still too recent to remember");
	sleep(3);
	cr_assert_eq(open_flags_of(nid, O_RDONLY), 0, "not opened since it settled: drop");
	cr_assert_eq(open_flags_of(nid, O_RDONLY), FOPEN_KEEP_CACHE, "unchanged: keep");
	cr_assert_eq(open_flags_of(nid, O_RDWR), FOPEN_KEEP_CACHE, "unchanged: keep");
	fd = open(hpath("small.txt"), O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "Z", 1, 0), 1, "same size, new content, on the host");
	close(fd);
	cr_assert_eq(open_flags_of(nid, O_RDONLY), 0, "changed on the host: drop");
	cr_assert_eq(open_flags_of(nid, O_RDONLY), 0, "changed just now: drop again");
}

ITEST(fwrite_opts, cache_always_means_a_day_and_kept_caches)
{
	expect_cache_mode("--cache=always", 86400, FOPEN_KEEP_CACHE,
			  FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR);
}

ITEST(fwrite_opts, writeback_is_offered_and_makes_write_only_opens_readable)
{
	static const char *const wb[] = {"--writeback", NULL};
	struct fuse_init_out io;
	uint64_t nid, fh;
	uint32_t written, got;
	char back[32];

	it_start_prep(wb, 2, NULL);
	cr_assert_eq(vufe_fuse_init(it_fe, Q, &io), 0);
	cr_assert_neq(io.flags & FUSE_WRITEBACK_CACHE, 0);
	cr_assert_neq(io.flags & FUSE_HANDLE_KILLPRIV_V2, 0);
	cr_assert_neq(io.flags & FUSE_ATOMIC_O_TRUNC, 0);
	nid = it_lookup(it_fe, Q, "small.txt");
	cr_assert_eq(vufe_fuse_open(it_fe, Q, nid, O_WRONLY | O_APPEND, &fh), 0);
	/* the guest places appends itself: offset 0 means offset 0 */
	cr_assert_eq(vufe_fuse_write(it_fe, Q, nid, fh, 0, "WB", 2, 0, &written), 0);
	cr_assert_eq(vufe_fuse_read(it_fe, Q, nid, fh, 0, 2, back, &got, 0), 0);
	cr_assert_eq(got, 2);
	cr_assert_eq(memcmp(back, "WB", 2), 0);
	cr_assert_eq(hread("small.txt", back, sizeof(back)) > 2, 1);
	cr_assert_eq(memcmp(back, "WB", 2), 0);
}

ITEST(fwrite, init_offers_write_flags_but_not_writeback_by_default)
{
	struct fuse_init_out io;

	cr_assert_eq(vufe_fuse_init(it_fe, Q, &io), 0);
	cr_assert_eq(io.flags & FUSE_WRITEBACK_CACHE, 0);
	cr_assert_neq(io.flags & FUSE_BIG_WRITES, 0);
	cr_assert_neq(io.flags & FUSE_ATOMIC_O_TRUNC, 0);
	cr_assert_neq(io.flags & FUSE_HANDLE_KILLPRIV_V2, 0);
	/* locks are served (passthrough_locks.c); xattrs only with --xattr */
	cr_assert_eq(io.flags & (FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS),
		     FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS);
	cr_assert_eq(io.flags & FUSE_SETXATTR_EXT, 0);
	cr_assert_geq(io.max_write, 1u << 20);
}

ITEST(fwrite, ioctl_and_poll_get_enosys)
{
	struct fuse_ioctl_in ii = {0};
	struct fuse_poll_in pi = {0};
	struct fuse_ioctl_out io;
	struct fuse_poll_out po;

	cr_assert_eq(vufe_fuse(it_fe, Q, FUSE_IOCTL, 1, &ii, sizeof(ii), NULL, 0, &io, sizeof(io),
			       NULL, 0),
		     -ENOSYS);
	cr_assert_eq(vufe_fuse(it_fe, Q, FUSE_POLL, 1, &pi, sizeof(pi), NULL, 0, &po, sizeof(po),
			       NULL, 0),
		     -ENOSYS);
}
