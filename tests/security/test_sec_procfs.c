/*
 * test_sec_procfs.c - a compromised worker looks for a way out through the
 * descriptors it holds. The worker of a --test-escape-probe build plays
 * the attacker on request (worker/escape_probe.c): from every descriptor
 * it has at that moment (the share's directories and files, its procfs,
 * the parent channel, peer channels, eventfds, the log) it tries to open
 * the host's /proc/sys/kernel/core_pattern and /proc/sysrq-trigger by
 * every relative and absolute route, a procfs root that lists other
 * processes, and a marker file the test puts beside the share; the reply
 * says whether anything opened (ECHILD: nothing; EXDEV: something) and the
 * log names every descriptor. From outside, every descriptor of every
 * worker is fetched (pidfd_getfd) and none may belong to the host's procfs,
 * and its standard descriptors are /dev/null and its log pipe.
 * A worker without a sandbox (--sandbox=none) is the probe's own control:
 * there it must find the host's core_pattern.
 * Runs in: the test process as root; bulkheadd is a child. Needs
 * --enable-test-hooks.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "itest.h"

#define PR_PROBE  "bulkhead-test-escape-probe"
#define PR_MARKER "bulkhead-escape-marker"

static char pr_dir[256]; /* holds the share and, beside it, the marker */

static void pr_start(const char *sandbox)
{
	const char *extra[] = {"--test-escape-probe", sandbox, NULL};
	char p[PATH_MAX];
	int fd;

	cr_assert_eq(hx_mkdtemp(pr_dir, sizeof(pr_dir), "escape"), 0);
	snprintf(it_share, sizeof(it_share), "%s/share", pr_dir);
	cr_assert_eq(mkdir(it_share, 0755), 0);
	snprintf(p, sizeof(p), "%s/%s", pr_dir, PR_MARKER);
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	it_start(extra, 3);
}

static void pr_namespace(void)
{
	pr_start("--sandbox=namespace");
}

static void pr_chroot(void)
{
	pr_start("--sandbox=chroot");
}

static void pr_none(void)
{
	pr_start("--sandbox=none");
}

static void pr_fini(void)
{
	it_teardown();
	hx_rmtree(pr_dir);
}

TestSuite(sec_procfs, .init = pr_namespace, .fini = pr_fini, .timeout = 60);
TestSuite(sec_procfs_chroot, .init = pr_chroot, .fini = pr_fini, .timeout = 60);
TestSuite(sec_procfs_none, .init = pr_none, .fini = pr_fini, .timeout = 60);

/* Give both request workers every kind of descriptor they can hold: nodes,
 * open files and directories, a borrowed one from the other queue, a lock
 * description. */
static void pr_populate(void)
{
	uint64_t dir, file, fh, dfh, fh2;
	struct fuse_lk_in lk;
	char buf[16];
	uint32_t n;

	dir = it_lookup(it_fe, 1, "dir");
	file = it_lookup(it_fe, 1, "small.txt");
	cr_assert(dir && file);
	cr_assert_eq(vufe_fuse_open(it_fe, 1, file, O_RDWR, &fh), 0);
	cr_assert_eq(vufe_fuse_opendir(it_fe, 1, dir, &dfh), 0);
	/* queue 2 reads through queue 1's handle: a borrowed descriptor */
	cr_assert_eq(vufe_fuse_read(it_fe, 2, file, fh, 0, sizeof(buf), buf, &n, 0), 0);
	cr_assert_eq(vufe_fuse_open(it_fe, 2, file, O_RDONLY, &fh2), 0);
	memset(&lk, 0, sizeof(lk));
	lk.fh = fh;
	lk.owner = 0x1234;
	lk.lk.type = 1; /* F_WRLCK */
	lk.lk.end = 10;
	lk.lk.pid = 42;
	cr_assert_eq(
	    vufe_fuse(it_fe, 1, FUSE_SETLK, file, &lk, sizeof(lk), NULL, 0, NULL, 0, NULL, 0), 0);
}

/* Run the probe in queue q's worker; on anything but "nothing escaped" the
 * daemon's log (which names what opened) goes to our stderr. */
static int pr_probe(unsigned q)
{
	struct fuse_entry_out e;
	int r = vufe_fuse_lookup(it_fe, q, 1, PR_PROBE, &e);

	if (r != -ECHILD || getenv("PR_DUMP"))
		hx_log_dump(&it_d);
	return r;
}

/* The log's "escape probe: N descriptors, E escapes" lines: how many had
 * E == 0, and the smallest N seen. */
static int pr_count_reports(unsigned *min_fds)
{
	char line[512];
	int clean = 0;
	FILE *f = fopen(it_d.hd_log, "re");

	*min_fds = ~0u;
	cr_assert(f);
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "escape probe: ");
		unsigned nfds;
		int esc;

		if (p && sscanf(p, "escape probe: %u descriptors, %d escapes", &nfds, &esc) == 2) {
			if (esc == 0)
				clean++;
			if (nfds < *min_fds)
				*min_fds = nfds;
		}
	}
	fclose(f);
	return clean;
}

/* The same once 'want' reports are there: a worker's lines reach the log
 * through the parent, after the reply (waits up to 5 s). */
static int pr_clean_reports(int want, unsigned *min_fds)
{
	int n = 0;

	for (int i = 0; i < 250 && (n = pr_count_reports(min_fds)) < want; i++)
		usleep(20000);
	return n;
}

/* From outside: every descriptor of every worker, fetched and looked at.
 * The host's procfs never; a private one: how many. */
static int pr_private_procfs_fds(void)
{
	struct stat host, st;
	pid_t w[8];
	int n = hx_children(it_d.hd_pid, w, 8), private = 0;

	cr_assert_eq(stat("/proc", &host), 0);
	cr_assert_geq(n, 3, "expected three workers");
	for (int i = 0; i < n; i++) {
		int pidfd = pidfd_open(w[i], 0), seen = 0;

		cr_assert_geq(pidfd, 0, "pidfd_open %d: %s", (int)w[i], strerror(errno));
		for (int fd = 0; fd < 4096; fd++) {
			struct statfs sf;
			int got = pidfd_getfd(pidfd, fd, 0);

			if (got < 0)
				continue;
			seen++;
			if (fstatfs(got, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC) {
				cr_assert_eq(fstat(got, &st), 0);
				cr_expect_neq(st.st_dev, host.st_dev,
					      "worker %d fd %d is in the host's procfs", (int)w[i],
					      fd);
				private++;
			}
			close(got);
		}
		cr_expect_gt(seen, 3, "worker %d: only %d descriptors", (int)w[i], seen);
		/* no terminal, log file or journal of ours: /dev/null, and a pipe
		 * to the parent for its log */
		for (int fd = 0; fd < 3; fd++) {
			int got = pidfd_getfd(pidfd, fd, 0);

			cr_assert_geq(got, 0, "worker %d fd %d: %s", (int)w[i], fd, strerror(errno));
			cr_assert_eq(fstat(got, &st), 0);
			close(got);
			if (fd < 2)
				cr_expect(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3),
					  "worker %d fd %d is not /dev/null", (int)w[i], fd);
			else
				cr_expect(S_ISFIFO(st.st_mode), "worker %d fd 2 is not a pipe",
					  (int)w[i]);
		}
		close(pidfd);
	}
	return private;
}

ITEST(sec_procfs, no_descriptor_of_a_worker_leads_out_of_its_box)
{
	unsigned min_fds;

	pr_populate();
	cr_assert_eq(pr_probe(1), -ECHILD, "queue 1's worker escaped (see the log)");
	cr_assert_eq(pr_probe(2), -ECHILD, "queue 2's worker escaped (see the log)");
	cr_assert_eq(pr_clean_reports(2, &min_fds), 2);
	/* the channel, the log, the share root, the procfs, eventfds, peers,
	 * nodes, handles: far more than a handful */
	cr_expect_geq(min_fds, 12, "only %u descriptors probed", min_fds);
	cr_assert(hx_log_contains(&it_d, "escape probe: fd 3 type 140000"),
		  "the parent channel was not probed");
	/* each worker holds its own procfs, none the host's */
	cr_expect_eq(pr_private_procfs_fds(), 3);
	/* and the reopening it serves still works */
	cr_assert_neq(it_lookup(it_fe, 1, "small.txt"), 0);
	pr_populate();
}

ITEST(sec_procfs_chroot, a_chrooted_worker_holds_no_procfs_and_leads_nowhere)
{
	unsigned min_fds;

	pr_populate();
	cr_assert_eq(pr_probe(1), -ECHILD, "queue 1's worker escaped (see the log)");
	cr_assert_eq(pr_probe(2), -ECHILD, "queue 2's worker escaped (see the log)");
	cr_assert_eq(pr_clean_reports(2, &min_fds), 2);
	cr_expect_geq(min_fds, 11, "only %u descriptors probed", min_fds);
	cr_expect_eq(pr_private_procfs_fds(), 0);
	cr_assert_neq(it_lookup(it_fe, 1, "small.txt"), 0);
}

/* The control: without a sandbox the very same probe finds the host. */
ITEST(sec_procfs_none, the_probe_finds_the_host_from_an_unconfined_worker)
{
	pr_populate();
	cr_assert_eq(vufe_fuse_lookup(it_fe, 1, 1, PR_PROBE, &(struct fuse_entry_out){0}), -EXDEV,
		     "the probe found no way out of an unconfined worker");
	hx_wait_log(&it_d, " escapes", 5000);
	cr_assert(hx_log_contains(&it_d, "opened /proc/sys/kernel/core_pattern"));
	cr_assert_neq(it_lookup(it_fe, 1, "small.txt"), 0);
}
