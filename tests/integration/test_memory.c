/*
 * test_memory.c - the memory back end, started from bulkhead.conf(5) and
 * from the command line: a file system of its own, bounded by its size,
 * shared by every request queue, in no mount tree, and a configuration file
 * that stops start-up with FILE:LINE: reason.
 * Runs in: integration test program only (the daemon as root; test_unpriv
 * has the unprivileged case).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "fops.h"
#include "itest.h"

static char mt_conf[PATH_MAX];

/* The configuration file, in it_share (removed with it by it_teardown). */
static void mt_write_conf(const char *text)
{
	FILE *f;

	if (!it_share[0])
		cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "memconf"), 0);
	snprintf(mt_conf, sizeof(mt_conf), "%s/bulkhead.conf", it_share);
	cr_assert_not_null(f = fopen(mt_conf, "w"));
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
}

/* bulkheadd with no --shared-dir: extra says what it serves. */
static void mt_start(const char *const *extra, unsigned nqueues)
{
	struct vufe_opts o;

	vufe_fuse_set_creds(0, 0);
	vufe_opts_default(&o);
	o.nqueues = nqueues;
	cr_assert_eq(hx_start_bulkheadd(&it_d, NULL, extra), 0, "bulkheadd did not start");
	it_fe = it_connect(&o);
	cr_assert_eq(it_up_init(it_fe), 0, "INIT failed");
}

/* The configuration as the manual page gives it, word for word. */
static void mt_start_as_written(void)
{
	static char arg[PATH_MAX + 16];
	static const char *extra[] = {arg, NULL};

	mt_write_conf("[share]\n"
		      "backend = memory\n"
		      "\n"
		      "[memory]\n"
		      "size = 1G\n");
	snprintf(arg, sizeof(arg), "--config=%s", mt_conf);
	mt_start(extra, 3);
}

static void mt_start_4m(void)
{
	static const char *const extra[] = {"--memory-size=4M", NULL};

	if (!it_share[0])
		cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "memconf"), 0);
	mt_start(extra, 2);
}

TestSuite(memory, .fini = it_teardown, .timeout = 60);

/* Write len bytes of c at off through an open handle: the FUSE result. */
static int mt_write(uint64_t node, uint64_t fh, uint64_t off, size_t len, int c)
{
	static char buf[256 * 1024];
	uint32_t written = 0;
	int r;

	cr_assert_leq(len, sizeof(buf));
	memset(buf, c, len);
	r = vufe_fuse_write(it_fe, FO_Q, node, fh, off, buf, (uint32_t)len, 0, &written);
	if (r == 0)
		cr_assert_eq(written, len);
	return r;
}

Test(memory, the_configuration_as_written_serves_a_file_system_of_that_size,
     .init = mt_start_as_written)
{
	struct fuse_statfs_out sf;
	struct fuse_entry_out e;
	char back[5000];
	uint32_t got = 0;
	uint64_t fh;

	cr_assert_eq(vufe_fuse_statfs(it_fe, FO_Q, &sf), 0);
	cr_expect_eq((uint64_t)sf.st.blocks * sf.st.bsize, 1ull << 30,
		     "%llu blocks of %u bytes for size = 1G", (unsigned long long)sf.st.blocks,
		     sf.st.bsize);
	cr_expect_eq(it_lookup(it_fe, FO_Q, "small.txt"), 0, "a new file system is empty");

	cr_assert_eq(f_create(FUSE_CREATE, 1, "hello", O_RDWR, 0640, &e, &fh), 0);
	cr_assert_eq(mt_write(e.nodeid, fh, 0, 4096, 'a'), 0);
	cr_assert_eq(mt_write(e.nodeid, fh, 4096, 904, 'b'), 0);
	cr_assert_eq(vufe_fuse_read(it_fe, FO_Q, e.nodeid, fh, 0, sizeof(back), back, &got, 0), 0);
	cr_assert_eq(got, 5000);
	cr_expect_eq(back[0], 'a');
	cr_expect_eq(back[4095], 'a');
	cr_expect_eq(back[4096], 'b');
	cr_expect_eq(back[4999], 'b');
	cr_assert_eq(vufe_fuse_release(it_fe, FO_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	cr_assert_eq(f_mkdir(1, "dir", 0755, &e), 0);
	cr_expect_eq(e.attr.mode, S_IFDIR | 0755);
	it_stop_ok();
}

Test(memory, both_request_queues_serve_one_file_system, .init = mt_start_as_written)
{
	struct fuse_entry_out e, e2;
	uint64_t fh;

	cr_assert_eq(f_create(FUSE_CREATE, 1, "shared", O_RDWR, 0600, &e, &fh), 0);
	cr_assert_eq(mt_write(e.nodeid, fh, 0, 1234, 'q'), 0);
	cr_assert_eq(vufe_fuse_lookup(it_fe, 2, 1, "shared", &e2), 0,
		     "queue 2 does not see what queue 1 made");
	cr_expect_eq(e2.nodeid, e.nodeid);
	cr_expect_eq(e2.attr.size, 1234);
	cr_expect_eq(e2.attr.ino, e.attr.ino);
	it_stop_ok();
}

/*
 * size is the limit: a file that grows past it gets ENOSPC (the daemon and
 * the host carry on), and what is deleted is free again once the guest
 * forgets the node, as a guest's kernel does when it drops the inode (till
 * then the worker holds the file open, as tmpfs keeps an open deleted
 * file's pages).
 */
/* Wait up to 2 s for at least want bytes free (STATFS). 0 or -ETIMEDOUT. */
static int mt_wait_free(uint64_t want)
{
	struct fuse_statfs_out sf;

	for (int i = 0; i < 200; i++) {
		cr_assert_eq(vufe_fuse_statfs(it_fe, FO_Q, &sf), 0);
		if ((uint64_t)sf.st.bfree * sf.st.bsize >= want)
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

Test(memory, filling_it_gives_enospc_and_deleting_frees_the_space, .init = mt_start_4m)
{
	enum { CHUNK = 256 * 1024 };
	struct fuse_entry_out e;
	uint64_t fh, off;
	int r = 0;

	for (int round = 0; round < 2; round++) {
		cr_assert_eq(f_create(FUSE_CREATE, 1, "fill", O_RDWR, 0600, &e, &fh), 0, "round %d",
			     round);
		for (off = 0;
		     off < (8u << 20) && (r = mt_write(e.nodeid, fh, off, CHUNK, 'f')) == 0;
		     off += CHUNK)
			;
		cr_expect_eq(r, -ENOSPC, "round %d: the write past 4 MiB gave %d", round, r);
		cr_expect_geq(off, 3u << 20, "round %d: only %llu bytes fit", round,
			      (unsigned long long)off);
		cr_expect_leq(off, 4u << 20, "round %d: %llu bytes fit in 4 MiB", round,
			      (unsigned long long)off);
		cr_assert_eq(hx_alive(&it_d), 1);
		cr_assert_eq(vufe_fuse_release(it_fe, FO_Q, FUSE_RELEASE, e.nodeid, fh), 0);
		cr_assert_eq(f_unlink(FUSE_UNLINK, 1, "fill"), 0);
		cr_assert_eq(vufe_fuse_forget(it_fe, 0, e.nodeid, 1), 0);
		cr_assert_eq(mt_wait_free(3u << 20), 0, "round %d: the space did not come back",
			     round);
	}
	it_stop_ok();
}

/* Lines of /proc/PID/mountinfo. */
static int mt_mounts(pid_t pid)
{
	char path[64], line[1024];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
	cr_assert_not_null(f = fopen(path, "re"), "%s", path);
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

/*
 * Its contents never appear in the host's mount tree: the daemon (in our
 * mount namespace) added no mount to it, and a worker's whole tree is its
 * empty root; the file system is reached only through descriptors.
 */
Test(memory, the_file_system_is_in_no_mount_tree, .init = mt_start_4m)
{
	pid_t w[8];
	int n;

	cr_assert_eq(f_mkdir(1, "visible-nowhere", 0755, NULL), 0);
	cr_expect_eq(mt_mounts(it_d.hd_pid), mt_mounts(getpid()),
		     "the daemon's mount namespace has a mount ours has not");
	cr_assert_eq(hx_wait_children(it_d.hd_pid, 2, 5000), 0);
	n = hx_children(it_d.hd_pid, w, 8);
	cr_assert_geq(n, 1);
	for (int i = 0; i < n; i++)
		cr_expect_eq(mt_mounts(w[i]), 1, "worker %d has more than its empty root",
			     (int)w[i]);
	it_stop_ok();
}

/* The command line overrides the file: --shared-dir makes it passthrough. */
Test(memory, the_command_line_overrides_the_file)
{
	static char arg[PATH_MAX + 16], dir[PATH_MAX];
	const char *extra[] = {arg, NULL};
	struct vufe_opts o;

	mt_write_conf("[share]\nbackend = memory\n[memory]\nsize = 64M\n");
	snprintf(arg, sizeof(arg), "--config=%s", mt_conf);
	snprintf(dir, sizeof(dir), "%s/dir", it_share);
	cr_assert_eq(mkdir(dir, 0755), 0);
	cr_assert_eq(hx_seed_share(dir), 0);
	vufe_opts_default(&o);
	cr_assert_eq(hx_start_bulkheadd(&it_d, dir, extra), 0);
	it_fe = it_connect(&o);
	cr_assert_eq(it_up_init(it_fe), 0);
	cr_expect_neq(it_lookup(it_fe, FO_Q, "small.txt"), 0,
		      "--shared-dir did not override backend = memory");
	cr_expect_eq(hx_log_contains(&it_d, "serving /"), 1);
	it_stop_ok();
}

/* A mistake in the file stops start-up, naming file, line and reason. */
Test(memory, a_bad_file_stops_start_up_with_file_line_and_reason)
{
	static char arg[PATH_MAX + 16], want[PATH_MAX + 64], out[4096];
	char *argv[] = {(char *)BH_BUILD_DIR "/daemon/bulkheadd", arg,
			(char *)"--socket-path=/nonexistent/s", NULL};

	mt_write_conf("[share]\nbackend = memory\n\n[memory]\nsize = lots\n");
	snprintf(arg, sizeof(arg), "--config=%s", mt_conf);
	cr_expect_eq(hx_run_capture(argv, NULL, NULL, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "bulkheadd: %s:5: 'lots' is not a size", mt_conf);
	cr_expect_not_null(strstr(out, want), "'%s' does not say '%s'", out, want);
}

/* A memory share starts empty: read-only, it would stay so, and is refused. */
Test(memory, a_read_only_memory_share_is_refused)
{
	static char out[4096];
	char *argv[] = {(char *)BH_BUILD_DIR "/daemon/bulkheadd", (char *)"--memory-size=8M",
			(char *)"--readonly", (char *)"--socket-path=/nonexistent/s", NULL};

	cr_expect_eq(hx_run_capture(argv, NULL, NULL, out, sizeof(out)), 1);
	cr_expect_not_null(strstr(out, "--readonly (readonly = yes) with the memory back end"),
			   "%s", out);
}

/*
 * Inodes cost the host memory the size does not count: by default a memory
 * share holds one per 4 KiB of its size, so a guest creating empty files
 * meets ENOSPC at 256 of them in 1 MiB (the root is one), not when the
 * host runs out. Deleting one (and forgetting it) makes room again.
 */
Test(memory, empty_files_are_bounded_by_the_size_too)
{
	static const char *const extra[] = {"--memory-size=1M", NULL};
	struct fuse_entry_out e;
	char name[32];
	uint64_t fh, first = 0;
	int r = 0, n;

	if (!it_share[0])
		cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "memconf"), 0);
	mt_start(extra, 2);
	for (n = 0; n < 2000; n++) {
		snprintf(name, sizeof(name), "e%04d", n);
		if ((r = f_create(FUSE_CREATE, 1, name, O_RDWR, 0600, &e, &fh)) < 0)
			break;
		if (n == 0)
			first = e.nodeid;
		cr_assert_eq(vufe_fuse_release(it_fe, FO_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	}
	cr_expect_eq(r, -ENOSPC, "file %d: %d", n, r);
	cr_expect_eq(n, 255, "%d empty files fit in a 1 MiB share", n);
	cr_assert_eq(hx_alive(&it_d), 1);
	cr_assert_eq(f_unlink(FUSE_UNLINK, 1, "e0000"), 0);
	cr_assert_eq(vufe_fuse_forget(it_fe, 0, first, 1), 0);
	for (int i = 0; i < 200 && (r = f_create(FUSE_CREATE, 1, "again", O_RDWR, 0600, &e,
						 &fh)) == -ENOSPC;
	     i++)
		usleep(10000);
	cr_expect_eq(r, 0, "no room after a delete: %d", r);
	it_stop_ok();
}
