/*
 * test_s3_fs.c - the S3 back end through the test front end: the real
 * bulkheadd serving a bucket of a real one-node Ceph cluster (started once
 * for the program, tests/s3/ceph-cluster.sh), every operation checked both
 * in the FUSE replies and in the bucket itself, read with a client of the
 * gateway of our own (gw.c) that does not go through the daemon.
 * Runs in: the test process, as root. Each test has a bucket of its own
 * and its own daemon, with the [s3] section of bulkhead.conf(5).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fops.h"
#include "gw.h"
#include "itest.h"
#include "s3_xml.h"
#include "s3t.h"


static char t_cluster[64] = "/tmp/bh-ceph-fs-XXXXXX";

/* One cluster for the whole program: tests fork from the runner, and find
 * it by the environment. */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	char cmd[4096];

	(void)set;
	if (!mkdtemp(t_cluster))
		return;
	snprintf(cmd, sizeof(cmd), "'%s/tests/s3/ceph-cluster.sh' start '%s'", BH_SRC_DIR,
		 t_cluster);
	if (system(cmd) == 0)
		setenv("BH_TEST_S3_CLUSTER", t_cluster, 1);
	else
		fprintf(stderr, "test_s3_fs: the Ceph cluster did not start\n");
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	char cmd[4096];

	(void)stats;
	snprintf(cmd, sizeof(cmd), "'%s/tests/s3/ceph-cluster.sh' stop '%s' >/dev/null 2>&1",
		 BH_SRC_DIR, t_cluster);
	if (system(cmd) != 0)
		fprintf(stderr, "test_s3_fs: stopping the cluster in %s failed\n", t_cluster);
}

/* The program's cluster, a bucket of the test's own, the daemon on it. */
static void fs_start(const char *extra_conf)
{
	const char *dir = getenv("BH_TEST_S3_CLUSTER");

	cr_assert_not_null(dir, "no Ceph cluster (its start failed: see above)");
	gw_load_env(dir);
	s3t_start_at(NULL, extra_conf);
}

TestSuite(s3fs, .fini = s3t_fini, .timeout = 240);

/* ---- the tests ---- */

Test(s3fs, a_created_file_is_read_back_before_and_stored_at_close)
{
	static const char a[] = "first piece, ", b[] = "second piece\n";
	struct fuse_entry_out e;
	struct fuse_attr_out ao;
	char buf[64], *body;
	struct s3_req h;
	uint64_t fh;
	size_t len;

	fs_start(NULL);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "hello.txt", O_RDWR, 0640, &e, &fh), 0);
	s3t_write(e.nodeid, fh, 0, a, sizeof(a) - 1);
	s3t_write(e.nodeid, fh, sizeof(a) - 1, b, sizeof(b) - 1);
	/* not stored yet, yet there for the guest */
	cr_assert_eq(s3t_head("vm1/hello.txt", &h), 404);
	cr_assert_eq(s3t_read(e.nodeid, fh, 0, buf, sizeof(buf)), sizeof(a) + sizeof(b) - 2);
	cr_assert_eq(memcmp(buf, "first piece, second piece\n", 26), 0);
	cr_assert_eq(vufe_fuse_getattr(it_fe, T_Q, e.nodeid, &ao), 0);
	cr_assert_eq(ao.attr.size, 26);
	cr_assert_eq(vufe_fuse_flush(it_fe, T_Q, e.nodeid, fh), 0);
	cr_assert_eq(s3t_get("vm1/hello.txt", &body, &len), 200);
	cr_assert_eq(len, 26);
	cr_assert_eq(memcmp(body, "first piece, second piece\n", 26), 0);
	free(body);
	cr_assert_eq(s3t_head("vm1/hello.txt", &h), 200);
	cr_expect_str_eq(h.meta.mode, "33184", "mode 0100640 in x-amz-meta-mode");
	cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	/* and a new lookup finds it with its size and mode */
	s3t_lookup(1, "hello.txt", &e);
	cr_assert_eq(e.attr.size, 26);
	cr_assert_eq(e.attr.mode, S_IFREG | 0640);
	it_stop_ok();
}

Test(s3fs, a_large_file_streams_as_a_multipart_upload)
{
	const size_t total = (17u << 20) + 12345;
	unsigned char *data = malloc(total), *back = malloc(1u << 20);
	struct fuse_entry_out e;
	struct s3_req h;
	char *body;
	size_t len;
	uint64_t fh;

	cr_assert(data && back);
	s3t_pattern(data, total, 1);
	fs_start(NULL);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "big.bin", O_WRONLY, 0644, &e, &fh), 0);
	for (size_t off = 0; off < total; off += 1u << 20) {
		uint32_t n = (uint32_t)(total - off < (1u << 20) ? total - off : 1u << 20);

		s3t_write(e.nodeid, fh, off, data + off, n);
	}
	/* parts are on their way before the close: an upload is open */
	for (int i = 0; i < 50 && s3t_uploads() == 0; i++)
		usleep(100000);
	cr_assert_geq(s3t_uploads(), 1u, "no multipart upload while the file is written");
	cr_assert_eq(vufe_fuse_flush(it_fe, T_Q, e.nodeid, fh), 0);
	cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	cr_assert_eq(s3t_uploads(), 0u, "an upload left open");
	cr_assert_eq(s3t_head("vm1/big.bin", &h), 200);
	cr_assert_eq(h.content_length, total);
	cr_assert_not_null(strchr(h.etag, '-'), "ETag %s is not a multipart upload's", h.etag);
	cr_assert_eq(s3t_get("vm1/big.bin", &body, &len), 200);
	cr_assert_eq(len, total);
	cr_assert_eq(memcmp(body, data, total), 0, "the object is not what was written");
	free(body);
	/* read back through the share: in order, then from the middle */
	cr_assert_eq(vufe_fuse_open(it_fe, T_Q, e.nodeid, O_RDONLY, &fh), 0);
	for (size_t off = 0; off < total; off += 256u << 10) {
		size_t n = s3t_read(e.nodeid, fh, off, back, 256u << 10);

		cr_assert_eq(n, total - off < (256u << 10) ? total - off : 256u << 10);
		cr_assert_eq(memcmp(back, data + off, n), 0, "READ at %zu", off);
	}
	cr_assert_eq(s3t_read(e.nodeid, fh, 5000000, back, 4096), 4096);
	cr_assert_eq(memcmp(back, data + 5000000, 4096), 0);
	cr_assert_eq(s3t_read(e.nodeid, fh, total, back, 4096), 0, "EOF");
	cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	free(data);
	free(back);
	it_stop_ok();
}

Test(s3fs, a_write_into_an_existing_object_changes_only_those_bytes)
{
	const size_t total = 11u << 20;
	unsigned char *data = malloc(total);
	static const char patch[] = "PATCHED IN THE MIDDLE";
	struct fuse_entry_out e;
	char *body, buf[64];
	uint64_t fh;
	size_t len;

	cr_assert_not_null(data);
	s3t_pattern(data, total, 2);
	fs_start(NULL);
	cr_assert_eq(s3t_put("vm1/old.bin", data, total), 200);
	s3t_lookup(1, "old.bin", &e);
	cr_assert_eq(e.attr.size, total);
	cr_assert_eq(vufe_fuse_open(it_fe, T_Q, e.nodeid, O_RDWR, &fh), 0);
	s3t_write(e.nodeid, fh, 6000000, patch, sizeof(patch) - 1);
	/* an append too */
	s3t_write(e.nodeid, fh, total, "END", 3);
	cr_assert_eq(s3t_read(e.nodeid, fh, 6000000 - 2, buf, 25), 25);
	cr_assert_eq(memcmp(buf + 2, patch, sizeof(patch) - 1), 0);
	/* the old object is untouched until the flush */
	cr_assert_eq(s3t_get("vm1/old.bin", &body, &len), 200);
	cr_assert_eq(len, total);
	cr_assert_eq(memcmp(body, data, total), 0);
	free(body);
	{
		struct fuse_fsync_in fi = {.fh = fh};

		cr_assert_eq(f_simple(FUSE_FSYNC, e.nodeid, &fi, sizeof(fi), NULL, 0), 0);
	}
	cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	memcpy(data + 6000000, patch, sizeof(patch) - 1);
	cr_assert_eq(s3t_get("vm1/old.bin", &body, &len), 200);
	cr_assert_eq(len, total + 3);
	cr_assert_eq(memcmp(body, data, total), 0, "bytes outside the write changed");
	cr_assert_eq(memcmp(body + total, "END", 3), 0);
	free(body);
	cr_assert_eq(s3t_uploads(), 0u);
	free(data);
	it_stop_ok();
}

Test(s3fs, directories_are_markers_and_prefixes)
{
	struct fuse_entry_out e, d;
	struct s3_req h;
	char buf[8192];
	uint32_t got = 0;
	uint64_t fh;

	fs_start(NULL);
	cr_assert_eq(f_mkdir(1, "made", 0750, &d), 0);
	cr_assert_eq(s3t_head("vm1/made/", &h), 200, "mkdir left no marker");
	cr_assert_str_eq(h.meta.mode, "16872"); /* 040750 */
	/* a directory that exists only as a prefix of another client's key */
	cr_assert_eq(s3t_put("vm1/implied/deep/file.txt", "x", 1), 200);
	s3t_lookup(1, "implied", &e);
	cr_assert(S_ISDIR(e.attr.mode));
	s3t_lookup(e.nodeid, "deep", &e);
	cr_assert(S_ISDIR(e.attr.mode));
	s3t_lookup(e.nodeid, "file.txt", &e);
	cr_assert(S_ISREG(e.attr.mode));
	cr_assert_eq(e.attr.size, 1);
	/* the listing shows both, once, as directories */
	cr_assert_eq(vufe_fuse_opendir(it_fe, T_Q, 1, &fh), 0);
	cr_assert_eq(vufe_fuse_readdir(it_fe, T_Q, FUSE_READDIR, 1, fh, 0, sizeof(buf), buf, &got),
		     0);
	{
		unsigned seen = 0;

		for (size_t off = 0; off < got;) {
			const struct fuse_dirent *de = (const void *)(buf + off);

			if ((de->namelen == 4 && !memcmp(de->name, "made", 4)) ||
			    (de->namelen == 7 && !memcmp(de->name, "implied", 7))) {
				cr_assert_eq(de->type, DT_DIR);
				seen++;
			}
			off += FUSE_DIRENT_SIZE(de);
		}
		cr_assert_eq(seen, 2);
	}
	cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASEDIR, 1, fh), 0);
	/* an empty directory can go; one with something in it cannot */
	cr_assert_eq(f_unlink(FUSE_RMDIR, 1, "implied"), -ENOTEMPTY);
	cr_assert_eq(f_unlink(FUSE_RMDIR, 1, "made"), 0);
	cr_assert_eq(s3t_head("vm1/made/", &h), 404);
	cr_assert_eq(vufe_fuse_lookup(it_fe, T_Q, 1, "made", &e), -ENOENT);
	it_stop_ok();
}

/* Names of a READDIR reply from offset off on, appended to out. */
static size_t t_names(const char *buf, uint32_t got, char names[][32], size_t n, size_t cap,
		      uint64_t *last_off)
{
	for (size_t off = 0; off < got && n < cap;) {
		const struct fuse_dirent *de = (const void *)(buf + off);

		snprintf(names[n++], 32, "%.*s", (int)de->namelen, de->name);
		*last_off = de->off;
		off += FUSE_DIRENT_SIZE(de);
	}
	return n;
}

Test(s3fs, a_listing_is_a_snapshot_whose_offsets_stay_valid)
{
	enum { N = 2500 };
	static char names[N + 10][32], again[64][32];
	struct s3_req r[64];
	char buf[4096], key[64][64];
	uint64_t fh, off = 0, mark = 0;
	uint32_t got;
	size_t n = 0, m = 0;

	fs_start(NULL);
	/* 2,500 keys: three pages of the gateway's listing */
	for (unsigned i = 0; i < N; i += 64) {
		unsigned k = 0;

		for (; k < 64 && i + k < N; k++) {
			snprintf(key[k], sizeof(key[k]), "vm1/many/f%05u", i + k);
			s3t_req(&r[k], "PUT", key[k]);
			r[k].body = "";
		}
		gw_run(&s3t_l, r, k);
		for (unsigned j = 0; j < k; j++)
			cr_assert_eq(r[j].status, 200);
	}
	s3t_lookup(1, "many", NULL);
	cr_assert_eq(vufe_fuse_opendir(it_fe, T_Q, s3t_lookup(1, "many", NULL), &fh), 0);
	do {
		got = 0;
		cr_assert_eq(
		    vufe_fuse_readdir(it_fe, T_Q, FUSE_READDIR, 1, fh, off, sizeof(buf), buf, &got),
		    0);
		if (n < 1500 && !mark)
			mark = off;
		n = t_names(buf, got, names, n, N + 10, &off);
	} while (got > 0);
	cr_assert_eq(n, N + 2, "listed %zu entries", n);
	cr_assert_str_eq(names[0], ".");
	cr_assert_str_eq(names[1], "..");
	for (unsigned i = 0; i < N; i++) {
		char want[32];

		snprintf(want, sizeof(want), "f%05u", i);
		cr_assert_str_eq(names[i + 2], want);
	}
	/* another client adds a key: this snapshot does not change under us */
	cr_assert_eq(s3t_put("vm1/many/a-new-one", "", 0), 200);
	off = 1502;
	got = 0;
	cr_assert_eq(
	    vufe_fuse_readdir(it_fe, T_Q, FUSE_READDIR, 1, fh, off, sizeof(buf), buf, &got), 0);
	m = t_names(buf, got, again, 0, 64, &off);
	cr_assert_gt(m, 0);
	cr_assert_str_eq(again[0], names[1502], "seeking back to offset 1502");
	cr_assert_str_eq(again[m - 1], names[1502 + m - 1]);
	cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASEDIR, 1, fh), 0);
	(void)mark;
	it_stop_ok();
}

Test(s3fs, renaming_moves_files_and_whole_directories)
{
	struct fuse_entry_out dir, child, e;
	struct fuse_attr_out ao;
	char *body;
	size_t len;

	fs_start(NULL);
	cr_assert_eq(s3t_put("vm1/a.txt", "AAA", 3), 200);
	cr_assert_eq(s3t_put("vm1/d/one", "1", 1), 200);
	cr_assert_eq(s3t_put("vm1/d/sub/two", "22", 2), 200);
	cr_assert_eq(s3t_put("vm1/d/", "", 0), 200);
	s3t_lookup(1, "a.txt", NULL);
	cr_assert_eq(f_rename(1, "a.txt", 1, "b.txt", 0), 0);
	cr_assert_eq(s3t_get("vm1/b.txt", &body, &len), 200);
	cr_assert_eq(len, 3);
	free(body);
	cr_assert_eq(s3t_get("vm1/a.txt", &body, &len), 404);
	free(body);
	/* a directory, with a node of a child known before the move */
	s3t_lookup(1, "d", &dir);
	s3t_lookup(dir.nodeid, "sub", &child);
	cr_assert_eq(f_rename(1, "d", 1, "moved", 0), 0);
	cr_assert_eq(s3t_keys("vm1/d/"), 0u, "keys left under the old name");
	cr_assert_eq(s3t_keys("vm1/moved/"), 3u);
	cr_assert_eq(s3t_get("vm1/moved/sub/two", &body, &len), 200);
	cr_assert_eq(len, 2);
	free(body);
	/* the child's node follows its parent */
	cr_assert_eq(vufe_fuse_getattr(it_fe, T_Q, child.nodeid, &ao), 0);
	cr_assert(S_ISDIR(ao.attr.mode));
	s3t_lookup(child.nodeid, "two", &e);
	cr_assert_eq(e.attr.size, 2);
	/* RENAME_NOREPLACE over an existing name, and an exchange */
	cr_assert_eq(s3t_put("vm1/c.txt", "C", 1), 200);
	s3t_lookup(1, "b.txt", NULL);
	cr_assert_eq(f_rename(1, "b.txt", 1, "c.txt", RENAME_NOREPLACE), -EEXIST);
	cr_assert_eq(f_rename(1, "b.txt", 1, "c.txt", RENAME_EXCHANGE), -EINVAL);
	it_stop_ok();
}

Test(s3fs, metadata_changes_are_kept_in_the_object)
{
	struct fuse_setattr_in in;
	struct fuse_attr_out ao;
	struct fuse_entry_out e;
	struct s3_req h;
	char *body;
	size_t len;

	fs_start(NULL);
	cr_assert_eq(s3t_put("vm1/m.txt", "metadata", 8), 200);
	s3t_lookup(1, "m.txt", &e);
	cr_assert_eq(e.attr.mode, S_IFREG | 0644, "default mode");
	memset(&in, 0, sizeof(in));
	in.valid = FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_MTIME;
	in.mode = 0600;
	in.uid = 1234;
	in.gid = 5678;
	in.mtime = 1700000000;
	in.mtimensec = 123456789;
	cr_assert_eq(f_setattr(e.nodeid, &in, &ao), 0);
	cr_assert_eq(ao.attr.mode, S_IFREG | 0600);
	cr_assert_eq(s3t_head("vm1/m.txt", &h), 200);
	cr_assert_str_eq(h.meta.mode, "33152");
	cr_assert_str_eq(h.meta.uid, "1234");
	cr_assert_str_eq(h.meta.gid, "5678");
	cr_assert_str_eq(h.meta.mtime, "1700000000.123456789");
	cr_assert_eq(s3t_get("vm1/m.txt", &body, &len), 200);
	cr_assert_eq(len, 8, "the copy onto itself kept the bytes");
	free(body);
	cr_assert_eq(vufe_fuse_getattr(it_fe, T_Q, e.nodeid, &ao), 0);
	cr_assert_eq(ao.attr.uid, 1234);
	cr_assert_eq(ao.attr.mtime, 1700000000);
	cr_assert_eq(ao.attr.mtimensec, 123456789);
	/* truncation without a handle is stored at once */
	memset(&in, 0, sizeof(in));
	in.valid = FATTR_SIZE;
	in.size = 4;
	cr_assert_eq(f_setattr(e.nodeid, &in, &ao), 0);
	cr_assert_eq(ao.attr.size, 4);
	cr_assert_eq(s3t_get("vm1/m.txt", &body, &len), 200);
	cr_assert_eq(len, 4);
	cr_assert_eq(memcmp(body, "meta", 4), 0);
	free(body);
	cr_assert_eq(s3t_head("vm1/m.txt", &h), 200);
	cr_assert_str_eq(h.meta.uid, "1234", "truncation kept the owner");
	it_stop_ok();
}

Test(s3fs, symlinks_unlink_and_what_a_bucket_cannot_do)
{
	struct fuse_entry_out e;
	struct s3_req h;
	char buf[256];
	uint32_t got = 0;

	fs_start(NULL);
	cr_assert_eq(f_symlink(1, "link", "target/of the link", &e), 0);
	cr_assert(S_ISLNK(e.attr.mode));
	cr_assert_eq(s3t_head("vm1/link", &h), 200);
	cr_assert_str_eq(h.meta.mode, "41471"); /* 0120777 */
	cr_assert_eq(vufe_fuse_readlink(it_fe, T_Q, e.nodeid, buf, sizeof(buf), &got), 0);
	cr_assert_eq(got, 18);
	cr_assert_eq(memcmp(buf, "target/of the link", 18), 0);
	s3t_lookup(1, "link", &e);
	cr_assert(S_ISLNK(e.attr.mode));
	cr_assert_eq(f_unlink(FUSE_UNLINK, 1, "link"), 0);
	cr_assert_eq(s3t_head("vm1/link", &h), 404);
	/* no hard links, FIFOs or device nodes in a bucket */
	cr_assert_eq(s3t_put("vm1/x", "x", 1), 200);
	s3t_lookup(1, "x", &e);
	cr_assert_eq(f_link(e.nodeid, 1, "y", NULL), -EPERM);
	cr_assert_eq(f_mknod(1, "fifo", S_IFIFO | 0644, 0, NULL), -EPERM);
	{
		struct fuse_statfs_out st;

		cr_assert_eq(vufe_fuse_statfs(it_fe, T_Q, &st), 0);
		cr_assert_gt(st.st.bavail, 0);
		cr_assert_gt(st.st.ffree, 0);
		cr_assert_eq(st.st.namelen, 255);
	}
	it_stop_ok();
}

Test(s3fs, keys_that_cannot_be_names_are_hidden)
{
	struct fuse_entry_out e;
	char buf[8192];
	uint32_t got = 0;
	uint64_t fh, off = 0;
	static char names[32][32];
	size_t n;

	fs_start(NULL);
	cr_assert_eq(s3t_put("vm1/h/ok", "1", 1), 200);
	cr_assert_eq(s3t_put("vm1/h/./dot", "1", 1), 200);
	cr_assert_eq(s3t_put("vm1/h//empty", "1", 1), 200);
	cr_assert_eq(s3t_put("vm1/h/both", "file", 4), 200);
	cr_assert_eq(s3t_put("vm1/h/both/inside", "1", 1), 200);
	s3t_lookup(1, "h", &e);
	cr_assert_eq(vufe_fuse_opendir(it_fe, T_Q, e.nodeid, &fh), 0);
	cr_assert_eq(
	    vufe_fuse_readdir(it_fe, T_Q, FUSE_READDIR, e.nodeid, fh, 0, sizeof(buf), buf, &got),
	    0);
	n = t_names(buf, got, names, 0, 32, &off);
	cr_assert_eq(n, 4, "entries: . .. both ok (got %zu)", n);
	cr_assert_str_eq(names[2], "both");
	cr_assert_str_eq(names[3], "ok");
	cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASEDIR, e.nodeid, fh), 0);
	s3t_lookup(e.nodeid, "both", &e);
	cr_assert(S_ISDIR(e.attr.mode), "the directory wins over the object of its name");
	cr_assert(hx_log_contains(&it_d, "is not shown"), "hidden keys are logged");
	it_stop_ok();
}

Test(s3fs, changes_by_another_client_show_after_the_attribute_timeout)
{
	struct fuse_attr_out ao;
	struct fuse_entry_out e;
	char buf[64];
	uint64_t fh;

	fs_start("attr_timeout = 1\n");
	cr_assert_eq(s3t_put("vm1/shared.txt", "version one", 11), 200);
	s3t_lookup(1, "shared.txt", &e);
	cr_assert_eq(e.attr.size, 11);
	cr_assert_eq(e.attr_valid, 1);
	cr_assert_eq(s3t_put("vm1/shared.txt", "the second version", 18), 200);
	cr_assert_eq(vufe_fuse_getattr(it_fe, T_Q, e.nodeid, &ao), 0);
	cr_assert_eq(ao.attr.size, 18);
	cr_assert_eq(vufe_fuse_open(it_fe, T_Q, e.nodeid, O_RDONLY, &fh), 0);
	cr_assert_eq(s3t_read(e.nodeid, fh, 0, buf, sizeof(buf)), 18);
	cr_assert_eq(memcmp(buf, "the second version", 18), 0);
	cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	it_stop_ok();
}

Test(s3fs, an_s3_worker_keeps_the_network_and_nothing_else)
{
	static const char *const own[] = {"mnt", "pid", "ipc", "uts"};
	char mine[128], theirs[128];
	struct dirent *de;
	pid_t w[8];
	int n, entries;
	DIR *d;

	fs_start(NULL);
	cr_assert_eq(hx_wait_children(it_d.hd_pid, 2, 5000), 0);
	n = hx_children(it_d.hd_pid, w, 8);
	cr_assert_eq(n, 2);
	for (int i = 0; i < n; i++) {
		cr_expect_eq(it_status_num(w[i], "Seccomp"), 2);
		cr_expect_eq(it_status_num(w[i], "NoNewPrivs"), 1);
		cr_expect_eq(it_status_hex(w[i], "CapEff"), 0, "an S3 worker holds capabilities");
		cr_expect_eq(it_status_hex(w[i], "CapPrm"), 0);
		cr_expect_eq(it_status_hex(w[i], "CapBnd"), 0);
		/* the host's network, its own everything else */
		it_ns_link(getpid(), "net", mine, sizeof(mine));
		it_ns_link(w[i], "net", theirs, sizeof(theirs));
		cr_expect_str_eq(theirs, mine, "an S3 worker needs the network");
		for (size_t k = 0; k < sizeof(own) / sizeof(own[0]); k++) {
			it_ns_link(getpid(), own[k], mine, sizeof(mine));
			it_ns_link(w[i], own[k], theirs, sizeof(theirs));
			cr_expect_str_neq(theirs, mine, "an S3 worker shares the host's %s",
					  own[k]);
		}
		/* its root is empty: nothing of the host to name */
		snprintf(mine, sizeof(mine), "/proc/%d/root", (int)w[i]);
		cr_assert_not_null(d = opendir(mine));
		for (entries = 0; (de = readdir(d));)
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				entries++;
		closedir(d);
		cr_expect_eq(entries, 0, "the worker's root holds %d names", entries);
	}
	it_stop_ok();
}

Test(s3fs, a_listing_of_100000_entries_is_whole_and_in_order, .timeout = 600)
{
	enum { N = 100000, BATCH = 128 };
	static char key[BATCH][32];
	static struct s3_req r[BATCH];
	static char buf[64 << 10];
	uint64_t fh, off = 0, dir;
	unsigned seen = 0;
	uint32_t got;
	double t0;

	fs_start(NULL);
	t0 = gw_now();
	for (unsigned i = 0, k; i < N; i += k) {
		for (k = 0; k < BATCH && i + k < N; k++) {
			snprintf(key[k], sizeof(key[k]), "vm1/big/k%06u", i + k);
			s3t_req(&r[k], "PUT", key[k]);
			r[k].body = "";
		}
		gw_run(&s3t_l, r, k);
		for (unsigned j = 0; j < k; j++)
			cr_assert_eq(r[j].status, 200, "PUT %s: %ld", key[j], r[j].status);
	}
	cr_log_info("100,000 keys put in %.1f s", gw_now() - t0);
	dir = s3t_lookup(1, "big", NULL);
	cr_assert_eq(vufe_fuse_opendir(it_fe, T_Q, dir, &fh), 0);
	t0 = gw_now();
	do {
		got = 0;
		cr_assert_eq(vufe_fuse_readdir(it_fe, T_Q, FUSE_READDIR, dir, fh, off, sizeof(buf),
					       buf, &got),
			     0);
		for (size_t o = 0; o < got;) {
			const struct fuse_dirent *de = (const void *)(buf + o);
			char want[16];

			off = de->off;
			o += FUSE_DIRENT_SIZE(de);
			if (de->namelen <= 2 && de->name[0] == '.')
				continue;
			snprintf(want, sizeof(want), "k%06u", seen);
			cr_assert(de->namelen == 7 && memcmp(de->name, want, 7) == 0,
				  "entry %u is %.*s", seen, (int)de->namelen, de->name);
			seen++;
		}
	} while (got > 0);
	cr_assert_eq(seen, N, "listed %u of %u", seen, N);
	cr_log_info("listed in %.1f s", gw_now() - t0);
	cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASEDIR, dir, fh), 0);
	it_stop_ok();
}

Test(s3fs, virtual_addressing_reaches_the_same_bucket)
{
	const char *dir = getenv("BH_TEST_S3_CLUSTER");
	char endpoint[300];

	cr_assert_not_null(dir);
	gw_load_env(dir);
	/* a name, not an address: the bucket goes into the host name
	 * (BUCKET.localhost, which the gateway's rgw dns name serves) */
	cr_assert_eq(strncmp(gw_endpoint, "http://127.0.0.1:", 17), 0);
	snprintf(endpoint, sizeof(endpoint), "http://localhost:%s", gw_endpoint + 17);
	s3t_start_at(endpoint, "addressing = virtual\n");
	s3t_round_trip("virtual.txt", "by the host name\n");
	it_stop_ok();
}

Test(s3fs, a_file_above_the_copy_threshold_is_renamed_in_parts)
{
	const size_t total = (12u << 20) + 77;
	unsigned char *data = malloc(total);
	struct fuse_setattr_in in;
	struct fuse_attr_out ao;
	struct fuse_entry_out e;
	struct s3_req h;
	char *body;
	size_t len;

	cr_assert_not_null(data);
	s3t_pattern(data, total, 3);
	fs_start("copy_threshold = 5M\n");
	cr_assert_eq(s3t_put("vm1/large.bin", data, total), 200);
	s3t_lookup(1, "large.bin", &e);
	memset(&in, 0, sizeof(in));
	in.valid = FATTR_MODE;
	in.mode = 0604;
	cr_assert_eq(f_setattr(e.nodeid, &in, &ao), 0);
	cr_assert_eq(f_rename(1, "large.bin", 1, "moved.bin", 0), 0);
	cr_assert_eq(s3t_head("vm1/large.bin", &h), 404);
	cr_assert_eq(s3t_head("vm1/moved.bin", &h), 200);
	cr_assert_not_null(strchr(h.etag, '-'), "ETag %s: not copied in parts", h.etag);
	cr_assert_str_eq(h.meta.mode, "33156", "the metadata went with it"); /* 0100604 */
	cr_assert_eq(s3t_get("vm1/moved.bin", &body, &len), 200);
	cr_assert_eq(len, total);
	cr_assert_eq(memcmp(body, data, total), 0);
	free(body);
	cr_assert_eq(s3t_uploads(), 0u);
	free(data);
	it_stop_ok();
}

Test(s3fs, a_write_beyond_the_staging_limit_fails_with_enospc_and_changes_nothing)
{
	const size_t total = 2u << 20;
	unsigned char *data = malloc(total);
	struct fuse_entry_out e;
	uint32_t written = 0;
	char *body;
	uint64_t fh;
	size_t len;

	cr_assert_not_null(data);
	s3t_pattern(data, total, 4);
	fs_start("staging_limit = 1M\n");
	cr_assert_eq(s3t_put("vm1/two.bin", data, total), 200);
	s3t_lookup(1, "two.bin", &e);
	cr_assert_eq(vufe_fuse_open(it_fe, T_Q, e.nodeid, O_RDWR, &fh), 0);
	cr_assert_eq(vufe_fuse_write(it_fe, T_Q, e.nodeid, fh, 100, "x", 1, 0, &written), -ENOSPC);
	cr_assert_eq(vufe_fuse_flush(it_fe, T_Q, e.nodeid, fh), 0);
	cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	cr_assert(hx_log_contains(&it_d, "staging limit"), "the limit is logged");
	cr_assert_eq(s3t_get("vm1/two.bin", &body, &len), 200);
	cr_assert_eq(len, total);
	cr_assert_eq(memcmp(body, data, total), 0);
	free(body);
	free(data);
	it_stop_ok();
}

Test(s3fs, many_files_written_at_once_arrive_whole_in_bounded_memory, .timeout = 600)
{
	enum { FILES = 32, MIB = 6 };
	unsigned char *data = malloc(1u << 20);
	struct fuse_entry_out e[FILES];
	uint64_t fh[FILES];
	char name[32], *body;
	pid_t w[8];
	size_t len;
	long hwm = 0;

	cr_assert_not_null(data);
	fs_start(NULL);
	for (int i = 0; i < FILES; i++) {
		snprintf(name, sizeof(name), "many%02d.bin", i);
		cr_assert_eq(f_create(FUSE_CREATE, 1, name, O_WRONLY, 0644, &e[i], &fh[i]), 0);
	}
	/* 1 MiB to each in turn: every file is a part and more into its upload */
	for (int m = 0; m < MIB; m++)
		for (int i = 0; i < FILES; i++) {
			s3t_pattern(data, 1u << 20, (unsigned)(i * MIB + m));
			s3t_write(e[i].nodeid, fh[i], (uint64_t)m << 20, data, 1u << 20);
		}
	for (int i = 0; i < FILES; i++) {
		cr_assert_eq(vufe_fuse_flush(it_fe, T_Q, e[i].nodeid, fh[i]), 0, "file %d", i);
		cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASE, e[i].nodeid, fh[i]), 0);
	}
	for (int i = 0; i < FILES; i++) {
		snprintf(name, sizeof(name), "vm1/many%02d.bin", i);
		cr_assert_eq(s3t_get(name, &body, &len), 200);
		cr_assert_eq(len, (size_t)MIB << 20, "%s", name);
		for (int m = 0; m < MIB; m++) {
			s3t_pattern(data, 1u << 20, (unsigned)(i * MIB + m));
			cr_assert_eq(memcmp(body + ((size_t)m << 20), data, 1u << 20), 0,
				     "%s, MiB %d", name, m);
		}
		free(body);
	}
	cr_assert_eq(s3t_uploads(), 0u);
	/* 192 MiB went through the request worker; what it held at its peak is
	 * its bounds (8 parts filling, 80 MiB in flight), not the data: about
	 * 60 MiB here, 160 MiB when every file filled a part of its own */
	cr_assert_eq(hx_children(it_d.hd_pid, w, 8), 2);
	for (int i = 0; i < 2; i++) {
		long v = it_status_num(w[i], "VmHWM");

		hwm = v > hwm ? v : hwm;
	}
	cr_log_info("peak resident memory of a worker: %ld KiB", hwm);
	cr_assert_lt(hwm, 100 << 10, "a worker's peak resident memory: %ld KiB", hwm);
	free(data);
	it_stop_ok();
}

Test(s3fs, a_new_session_lets_the_old_handles_go)
{
	struct fuse_entry_out e;
	struct fuse_init_out io;
	uint64_t fh, dfh;
	uint32_t got = 0;
	char buf[16];

	fs_start(NULL);
	cr_assert_eq(f_create(FUSE_CREATE, 1, "old.txt", O_RDWR, 0644, &e, &fh), 0);
	s3t_write(e.nodeid, fh, 0, "unstored", 8);
	cr_assert_eq(vufe_fuse_opendir(it_fe, T_Q, 1, &dfh), 0);
	/* the guest's kernel goes away and a new one comes, handles left open */
	cr_assert_eq(vufe_fuse_destroy(it_fe, T_Q), 0);
	cr_assert_eq(vufe_fuse_init(it_fe, T_Q, &io), 0);
	cr_assert_eq(vufe_fuse_read(it_fe, T_Q, e.nodeid, fh, 0, sizeof(buf), buf, &got, 0),
		     -EBADF);
	{
		struct fuse_fsync_in fi = {.fh = dfh};

		cr_assert_eq(f_simple(FUSE_FSYNCDIR, 1, &fi, sizeof(fi), NULL, 0), -EBADF);
	}
	/* what was never stored is not in the bucket; the share serves on */
	cr_assert_eq(vufe_fuse_lookup(it_fe, T_Q, 1, "old.txt", &e), -ENOENT);
	s3t_round_trip("new.txt", "after the new session\n");
	it_stop_ok();
}
