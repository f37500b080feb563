/*
 * test_multiqueue.c - one file system behind many queues: requests for one
 * file arrive on different request queues (one worker each) at the same
 * time while FORGETs arrive on hiprio, and the device must behave as one
 * host file system: one open file description per fh (O_APPEND and the
 * offset are shared), locks visible from every queue, exact lookup counts
 * over many LOOKUP/FORGET pairs, a file made with TMPFILE on one queue and
 * named by LINK on another, and a worker that dies holding the node-table
 * lock does not wedge the others (the parent releases it).
 * Runs in: the test process as root; bulkheadd and its workers are children.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"

#define MQ_NQ	   4 /* hiprio + three request queues */
#define MQ_NFILES  300
#define MQ_PAIRS   100000
#define MQ_BATCH   48 /* LOOKUPs in flight per round, spread over the queues */
#define MQ_TIMEOUT 5000

static int mq_make_files(const char *share)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/lf", share);
	if (mkdir(p, 0755))
		return -errno;
	for (int i = 0; i < MQ_NFILES; i++) {
		char f[PATH_MAX + 8];
		int fd;
		snprintf(f, sizeof(f), "%s/n%03d", p, i);
		if ((fd = open(f, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
			return -errno;
		close(fd);
	}
	return 0;
}

static void mq_start(const char *const *extra)
{
	it_start_prep(extra, MQ_NQ, mq_make_files);
}

static void mq_setup(void)
{
	mq_start(NULL);
}

TestSuite(mq, .init = mq_setup, .fini = it_teardown, .timeout = 120);
/* Tests that start the daemon themselves (other options). */
TestSuite(mq_opts, .fini = it_teardown, .timeout = 120);

/* ---- asynchronous requests: submit now, kick the queues, wait later ---- */

static struct vufe_call *mq_submit(unsigned q, uint32_t op, uint64_t node, const void *a1,
				   size_t l1, const void *a2, size_t l2, size_t reply)
{
	struct vufe_call *c = vufe_call_new(it_fe, 64 + l1 + l2, reply > 16 ? reply : 64);

	cr_assert(c, "no guest memory for a call");
	cr_assert_eq(vufe_call_prep(it_fe, c, op, node, a1, l1, a2, l2, reply), 0);
	cr_assert_eq(vufe_call_submit(it_fe, q, c, VUFE_NO_KICK), 0, "submit on queue %u", q);
	return c;
}

static void mq_kick_all(void)
{
	for (unsigned q = 0; q < MQ_NQ; q++)
		vufe_kick(it_fe, q);
}

/* Wait for c and return its FUSE result (the call stays for the caller). */
static int mq_wait(struct vufe_call *c)
{
	cr_assert_eq(vufe_call_wait(it_fe, c, MQ_TIMEOUT), 0, "no reply on queue %u", c->c_queue);
	return vufe_call_result(c);
}

static struct vufe_call *mq_write(unsigned q, uint64_t node, uint64_t fh, uint64_t off,
				  const char *data)
{
	struct fuse_write_in in = {.fh = fh, .offset = off, .size = (uint32_t)strlen(data)};

	return mq_submit(q, FUSE_WRITE, node, &in, sizeof(in), data, strlen(data),
			 16 + sizeof(struct fuse_write_out));
}

static struct vufe_call *mq_read(unsigned q, uint64_t node, uint64_t fh, uint64_t off,
				 uint32_t size)
{
	struct fuse_read_in in = {.fh = fh, .offset = off, .size = size};

	return mq_submit(q, FUSE_READ, node, &in, sizeof(in), NULL, 0, 16 + size);
}

static struct vufe_call *mq_forget(uint64_t node, uint64_t n)
{
	struct fuse_forget_in in = {.nlookup = n};

	return mq_submit(0, FUSE_FORGET, node, &in, sizeof(in), NULL, 0, 0);
}

static void mq_host_read(const char *name, char *buf, size_t cap)
{
	char p[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", it_share, name);
	cr_assert((fd = open(p, O_RDONLY | O_CLOEXEC)) >= 0, "open %s", p);
	n = read(fd, buf, cap - 1);
	close(fd);
	cr_assert(n >= 0);
	buf[n] = '\0';
}

static struct vufe_call *mq_lk(unsigned q, uint32_t op, uint64_t node, uint64_t fh, uint64_t owner,
			       uint32_t type);
static int mq_lk_sync(unsigned q, uint32_t op, uint64_t node, uint64_t fh, uint64_t owner,
		      uint32_t type, uint32_t *got);
static short mq_host_lock(const char *name);

/* ---- one open file across queues ---- */

ITEST(mq, append_fh_opened_on_q1_is_locked_written_read_and_released_on_other_queues)
{
	const char *orig = "hello bulkhead\n";
	struct vufe_call *w, *r, *f[4], *rel, *lk;
	uint64_t node, fh;
	char host[256];
	int res;

	node = it_lookup(it_fe, 1, "small.txt");
	cr_assert_neq(node, 0);
	/* four more lookups from other queues; hiprio forgets them below */
	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(it_lookup(it_fe, 1 + i % 3, "small.txt"), node,
			     "the same inode has one node id on every queue");
	cr_assert_eq(vufe_fuse_open(it_fe, 1, node, O_RDWR | O_APPEND, &fh), 0);

	/* SETLK on q1, WRITE at offset 0 on q2 and READ on q3 at once, FORGETs
	 * on hiprio */
	lk = mq_lk(1, FUSE_SETLK, node, fh, 0x333, F_WRLCK);
	w = mq_write(2, node, fh, 0, "APPENDED\n");
	r = mq_read(3, node, fh, 0, 4096);
	for (int i = 0; i < 4; i++)
		f[i] = mq_forget(node, 1);
	mq_kick_all();
	cr_assert_eq(mq_wait(lk), 0, "SETLK on queue 1");
	vufe_call_free(it_fe, lk);
	cr_assert_eq(mq_host_lock("small.txt"), F_WRLCK, "the guest's lock is not on the host");
	cr_assert_eq(mq_wait(w), 0);
	cr_assert_eq(((struct fuse_write_out *)vufe_call_data(w))->size, 9);
	cr_assert_eq(mq_wait(r), 0);
	/* the READ raced the WRITE: it sees the old file or the appended one */
	res = (int)vufe_call_data_len(r);
	cr_assert(res == 15 || res == 24, "READ returned %d bytes", res);
	cr_assert_eq(memcmp(vufe_call_data(r), orig, 15), 0);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(mq_wait(f[i]), 0);
		vufe_call_free(it_fe, f[i]);
	}
	vufe_call_free(it_fe, w);
	vufe_call_free(it_fe, r);
	mq_host_read("small.txt", host, sizeof(host));
	cr_assert_str_eq(host, "hello bulkhead\nAPPENDED\n",
			 "O_APPEND from the OPEN on q1 holds for a WRITE on q2");

	/* a second append from q3, read back on q1 */
	w = mq_write(3, node, fh, 0, "again\n");
	mq_kick_all();
	cr_assert_eq(mq_wait(w), 0);
	vufe_call_free(it_fe, w);
	r = mq_read(1, node, fh, 0, 4096);
	mq_kick_all();
	cr_assert_eq(mq_wait(r), 0);
	cr_assert_eq(vufe_call_data_len(r), 30);
	cr_assert_eq(memcmp(vufe_call_data(r), "hello bulkhead\nAPPENDED\nagain\n", 30), 0);
	vufe_call_free(it_fe, r);

	cr_assert_eq(mq_lk_sync(1, FUSE_SETLK, node, fh, 0x333, F_UNLCK, NULL), 0);
	cr_assert_eq(mq_host_lock("small.txt"), F_UNLCK);

	/* RELEASE on q2 ends the fh for every queue; the last lookup keeps the node */
	{
		struct fuse_release_in ri = {.fh = fh, .flags = O_RDWR | O_APPEND};
		rel = mq_submit(2, FUSE_RELEASE, node, &ri, sizeof(ri), NULL, 0, 16);
	}
	mq_kick_all();
	cr_assert_eq(mq_wait(rel), 0);
	vufe_call_free(it_fe, rel);
	for (unsigned q = 1; q < MQ_NQ; q++) {
		char buf[64];
		uint32_t len;
		struct fuse_attr_out ao;
		cr_assert_eq(vufe_fuse_read(it_fe, q, node, fh, 0, sizeof(buf), buf, &len, 0),
			     -EBADF, "a released fh still reads on queue %u", q);
		cr_assert_eq(vufe_fuse_getattr(it_fe, q, node, &ao), 0,
			     "node lost on queue %u while one lookup remains", q);
		cr_assert_eq(ao.attr.size, 30);
	}
}

ITEST(mq, file_offset_is_one_object_for_a_write_on_q2_and_q3)
{
	uint64_t node, fh;
	struct vufe_call *w;
	char host[256];

	node = it_lookup(it_fe, 1, "empty");
	cr_assert_neq(node, 0);
	cr_assert_eq(vufe_fuse_open(it_fe, 1, node, O_WRONLY | O_APPEND, &fh), 0);
	/* concurrent appends from two queues: both land, neither overwrites */
	for (int round = 0; round < 20; round++) {
		struct vufe_call *a = mq_write(2, node, fh, 0, "aaaa");
		struct vufe_call *b = mq_write(3, node, fh, 0, "bbbb");
		mq_kick_all();
		cr_assert_eq(mq_wait(a), 0);
		cr_assert_eq(mq_wait(b), 0);
		vufe_call_free(it_fe, a);
		vufe_call_free(it_fe, b);
	}
	w = mq_write(1, node, fh, 0, "\n");
	mq_kick_all();
	cr_assert_eq(mq_wait(w), 0);
	vufe_call_free(it_fe, w);
	mq_host_read("empty", host, sizeof(host));
	cr_assert_eq(strlen(host), 20 * 8 + 1, "appends lost: %zu bytes", strlen(host));
	cr_assert_eq(vufe_fuse_release(it_fe, 2, FUSE_RELEASE, node, fh), 0);
}

/* Descriptors in the daemon's workers that lead to the share file 'name'
 * (O_PATH node descriptors included). */
static int mq_fds_on(const char *name)
{
	char want[PATH_MAX], p[64], l[PATH_MAX + 64], target[PATH_MAX];
	pid_t kids[64];
	int n = hx_children(it_d.hd_pid, kids, 64), total = 0;

	snprintf(want, sizeof(want), "%s/%s", it_share, name);
	for (int i = 0; i < n; i++) {
		DIR *d;
		struct dirent *de;
		snprintf(p, sizeof(p), "/proc/%d/fd", (int)kids[i]);
		cr_assert((d = opendir(p)) != NULL, "%s: %s", p, strerror(errno));
		while ((de = readdir(d))) {
			ssize_t k;
			if (de->d_name[0] == '.')
				continue;
			snprintf(l, sizeof(l), "%s/%s", p, de->d_name);
			if ((k = readlink(l, target, sizeof(target) - 1)) < 0)
				continue;
			target[k] = '\0';
			/* workers see the share as their root: match the tail */
			if (strcmp(target, want) == 0 ||
			    (strlen(target) > 1 && strcmp(target + 1, name) == 0))
				total++;
		}
		closedir(d);
	}
	return total;
}

/* A handle opened on Q1 and written on Q2 and Q3 (each borrows a duplicate
 * of the open file) is closed everywhere by RELEASE on Q1: nothing keeps
 * the file open on the host, only the node's O_PATH descriptor is left. */
ITEST(mq, release_closes_every_borrowed_duplicate)
{
	uint64_t node, fh;
	int before;

	node = it_lookup(it_fe, 1, "small.txt");
	cr_assert_neq(node, 0);
	before = mq_fds_on("small.txt");
	cr_assert_geq(before, 1, "no node descriptor found for small.txt");
	cr_assert_eq(vufe_fuse_open(it_fe, 1, node, O_RDWR, &fh), 0);
	for (unsigned q = 2; q <= 3; q++) {
		struct vufe_call *w = mq_write(q, node, fh, 0, "x");
		mq_kick_all();
		cr_assert_eq(mq_wait(w), 0);
		vufe_call_free(it_fe, w);
	}
	cr_assert_geq(mq_fds_on("small.txt"), before + 3, "the handle and two duplicates");
	cr_assert_eq(vufe_fuse_release(it_fe, 1, FUSE_RELEASE, node, fh), 0);
	for (int i = 0; i < 100 && mq_fds_on("small.txt") > before; i++)
		usleep(10 * 1000);
	cr_assert_eq(mq_fds_on("small.txt"), before, "a duplicate outlived RELEASE");
	/* and the handle is gone on every queue */
	for (unsigned q = 1; q <= 3; q++) {
		struct vufe_call *w = mq_write(q, node, fh, 0, "y");
		mq_kick_all();
		cr_assert_eq(mq_wait(w), -EBADF, "q%u", q);
		vufe_call_free(it_fe, w);
	}
}

/*
 * A RELEASE on Q1 that lands while Q2 fetches a duplicate of the handle,
 * after Q2 checked the handle is live and before it keeps the duplicate
 * (the test hook holds that window open 200 ms): Q2's WRITE fails EBADF
 * and no duplicate stays behind to keep the file open. (Test-hook builds
 * only, like the lock-holder test below; distcheck builds without them.)
 */
#ifdef BH_TEST_HOOKS
Test(mq_opts, release_during_a_borrow_leaves_no_duplicate)
{
	static const char *const hook[] = {"--test-slow-borrow", NULL};
	struct vufe_call *w;
	uint64_t node, fh;
	int before;

	mq_start(hook);
	node = it_lookup(it_fe, 1, "small.txt");
	cr_assert_neq(node, 0);
	before = mq_fds_on("small.txt");
	cr_assert_eq(vufe_fuse_open(it_fe, 1, node, O_RDWR, &fh), 0);
	w = mq_write(2, node, fh, 0, "x");
	mq_kick_all();
	usleep(50 * 1000); /* Q2 has the duplicate and waits in the window */
	cr_assert_eq(vufe_fuse_release(it_fe, 1, FUSE_RELEASE, node, fh), 0);
	cr_assert_eq(mq_wait(w), -EBADF, "the WRITE on a released handle");
	vufe_call_free(it_fe, w);
	for (int i = 0; i < 100 && mq_fds_on("small.txt") > before; i++)
		usleep(10 * 1000);
	cr_assert_eq(mq_fds_on("small.txt"), before, "a duplicate outlived RELEASE");
}
#endif

/* ---- exact lookup counts ---- */

/* Descriptors open in every child of the daemon (its workers). */
static int mq_worker_fds(void)
{
	pid_t kids[64];
	int n = hx_children(it_d.hd_pid, kids, 64), total = 0;

	cr_assert(n >= MQ_NQ, "expected %d workers, found %d", MQ_NQ, n);
	for (int i = 0; i < n; i++) {
		char p[64];
		DIR *d;
		struct dirent *de;
		snprintf(p, sizeof(p), "/proc/%d/fd", (int)kids[i]);
		cr_assert((d = opendir(p)) != NULL, "%s: %s", p, strerror(errno));
		while ((de = readdir(d)))
			total += de->d_name[0] != '.';
		closedir(d);
	}
	return total;
}

/* One round: MQ_BATCH LOOKUPs over the request queues, then one FORGET per
 * LOOKUP on hiprio; ids[i] gets the node id of name (first + i). */
static void mq_lookup_forget_round(uint64_t dir, unsigned first, uint64_t *ids)
{
	static struct vufe_call *lk[MQ_BATCH], *fg[MQ_BATCH];
	char name[16];

	for (unsigned i = 0; i < MQ_BATCH; i++) {
		int n = snprintf(name, sizeof(name), "n%03u", (first + i) % MQ_NFILES);
		if (!lk[i]) {
			cr_assert((lk[i] = vufe_call_new(it_fe, 64, 256)) != NULL);
			cr_assert((fg[i] = vufe_call_new(it_fe, 64, 64)) != NULL);
		}
		cr_assert_eq(vufe_call_prep(it_fe, lk[i], FUSE_LOOKUP, dir, name, (size_t)n + 1,
					    NULL, 0, 16 + sizeof(struct fuse_entry_out)),
			     0);
		cr_assert_eq(vufe_call_submit(it_fe, 1 + i % 3, lk[i], VUFE_NO_KICK), 0);
	}
	mq_kick_all();
	for (unsigned i = 0; i < MQ_BATCH; i++) {
		struct fuse_forget_in in = {.nlookup = 1};
		cr_assert_eq(mq_wait(lk[i]), 0, "LOOKUP failed");
		ids[i] = ((struct fuse_entry_out *)vufe_call_data(lk[i]))->nodeid;
		cr_assert_eq(
		    vufe_call_prep(it_fe, fg[i], FUSE_FORGET, ids[i], &in, sizeof(in), NULL, 0, 0),
		    0);
		cr_assert_eq(vufe_call_submit(it_fe, 0, fg[i], VUFE_NO_KICK), 0);
	}
	vufe_kick(it_fe, 0);
	for (unsigned i = 0; i < MQ_BATCH; i++)
		cr_assert_eq(vufe_call_wait(it_fe, fg[i], MQ_TIMEOUT), 0, "FORGET not consumed");
}

Test(mq_opts, lookup_forget_pairs_across_queues_leave_nothing_behind)
{
	static const char *const quiet[] = {"--log-level=info", NULL};
	uint64_t ids[MQ_BATCH], old[MQ_BATCH], dir;
	struct fuse_attr_out ao;
	int base_fds, end_fds;
	unsigned done = 0;

	mq_start(quiet);
	dir = it_lookup(it_fe, 1, "lf");
	cr_assert_neq(dir, 0);
	/* warm up every worker, then take the baseline */
	mq_lookup_forget_round(dir, 0, old);
	for (unsigned i = 0; i < MQ_BATCH; i++)
		cr_assert_eq(vufe_fuse_getattr(it_fe, 1 + i % 3, old[i], &ao), -ESTALE,
			     "node %llu outlived its last FORGET", (unsigned long long)old[i]);
	base_fds = mq_worker_fds();
	while (done < MQ_PAIRS) {
		mq_lookup_forget_round(dir, done, ids);
		done += MQ_BATCH;
	}
	for (unsigned i = 0; i < MQ_BATCH; i++) {
		cr_assert_eq(vufe_fuse_getattr(it_fe, 1 + i % 3, old[i], &ao), -ESTALE,
			     "old node id %llu answers again", (unsigned long long)old[i]);
		cr_assert_eq(vufe_fuse_getattr(it_fe, 1 + i % 3, ids[i], &ao), -ESTALE,
			     "node id %llu outlived its last FORGET", (unsigned long long)ids[i]);
	}
	/* A worker holds releases for others back a moment (2 ms) to send
	 * several in one message: closed within a second, not at once. */
	for (int i = 0; i < 100 && (end_fds = mq_worker_fds()) > base_fds; i++)
		usleep(10 * 1000);
	cr_log_info("worker descriptors: %d before, %d after %d LOOKUP/FORGET pairs", base_fds,
		    end_fds, MQ_PAIRS);
	cr_assert_leq(end_fds, base_fds, "workers hold %d descriptors, %d at the start", end_fds,
		      base_fds);
	/* and the share still works from every queue */
	for (unsigned q = 1; q < MQ_NQ; q++)
		cr_assert_neq(it_lookup(it_fe, q, "small.txt"), 0);
	it_stop_ok();
}

/* ---- a file without a name, given one on another queue ---- */

/* TMPFILE then LINK: what a guest sends for open(dir, O_TMPFILE) and
 * linkat(AT_FDCWD, "/proc/self/fd/N", dirfd, name, AT_SYMLINK_FOLLOW). A
 * guest kernel that spreads requests over its queues (newer Linux maps them
 * to CPUs; Debian 12's 6.1 uses the first only) may send the LINK on a
 * queue other than the TMPFILE's. */
static int mq_tmpfile(unsigned q, uint64_t parent, uint64_t *node)
{
	struct fuse_create_in ci = {.flags = O_WRONLY, .mode = S_IFREG | 0640};
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out;
	uint32_t n = 0;
	int r = vufe_fuse(it_fe, q, FUSE_TMPFILE, parent, &ci, sizeof(ci), "/", 2, &out,
			  sizeof(out), &n, 0);

	*node = r == 0 ? out.e.nodeid : 0;
	return r;
}

static int mq_link(unsigned q, uint64_t node, uint64_t parent, const char *name)
{
	struct fuse_link_in li = {.oldnodeid = node};
	struct fuse_entry_out e;
	uint32_t n = 0;

	return vufe_fuse(it_fe, q, FUSE_LINK, parent, &li, sizeof(li), name, strlen(name) + 1, &e,
			 sizeof(e), &n, 0);
}

ITEST(mq, tmpfile_made_on_one_queue_is_linked_on_another)
{
	uint64_t node, dir = it_lookup(it_fe, 1, "dir");
	struct stat st;
	char p[PATH_MAX];
	int r;

	cr_assert_neq(dir, 0);
	/* on one queue, as a control */
	cr_assert_eq(mq_tmpfile(1, 1, &node), 0);
	cr_assert_eq(mq_link(1, node, 1, "same-queue"), 0);
	/* made on q1, named on q2: into its own directory and another one */
	cr_assert_eq(mq_tmpfile(1, 1, &node), 0);
	r = mq_link(2, node, 1, "other-queue");
	cr_expect_eq(r, 0, "LINK on q2 of a q1 tmpfile: %d", r);
	cr_assert_eq(mq_tmpfile(1, 1, &node), 0);
	r = mq_link(3, node, dir, "other-queue-and-dir");
	cr_expect_eq(r, 0, "LINK on q3 of a q1 tmpfile into dir/: %d", r);
	snprintf(p, sizeof(p), "%s/other-queue", it_share);
	cr_expect_eq(stat(p, &st), 0, "%s", p);
	snprintf(p, sizeof(p), "%s/dir/other-queue-and-dir", it_share);
	cr_expect_eq(stat(p, &st), 0, "%s", p);
}

/* ---- a worker dies holding the node-table lock ---- */

#ifdef BH_TEST_HOOKS
Test(mq_opts, worker_killed_holding_node_table_lock_does_not_wedge_others)
{
	static const char *const hook[] = {"--test-die-holding-nt-lock=2", NULL};
	struct vufe_call *doomed;
	struct fuse_getattr_in gi = {0};
	struct fuse_entry_out e;
	struct fuse_attr_out ao;
	pid_t before[64], after[64];
	int nbefore, nafter;

	mq_start(hook);
	nbefore = hx_children(it_d.hd_pid, before, 64);
	if (nbefore != MQ_NQ)
		hx_log_dump(&it_d);
	cr_assert_eq(nbefore, MQ_NQ, "%d children", nbefore);
	/* the hook's kill(2) is not in the worker's policy: the SIGSYS reporter
	 * tells the parent, which kills it (still holding the lock) */
	it_expect_worker_death(2, IT_FORBIDDEN "kill (62)");
	it_expect_worker_death(2, IT_KILLED);
	/* q2's first request: its worker takes the lock and dies */
	doomed = mq_submit(2, FUSE_GETATTR, 1, &gi, sizeof(gi), NULL, 0,
			   16 + sizeof(struct fuse_attr_out));
	vufe_kick(it_fe, 2);
	cr_assert_eq(vufe_call_wait(it_fe, doomed, 1000), -ETIMEDOUT, "the hooked worker answered");
	cr_assert_eq(hx_wait_children(it_d.hd_pid, MQ_NQ - 1, MQ_TIMEOUT), 0,
		     "the hooked worker did not die");
	nafter = hx_children(it_d.hd_pid, after, 64);
	cr_assert_eq(nafter, MQ_NQ - 1);
	/* every other queue still takes the lock: new nodes, attributes, forgets */
	cr_assert_eq(vufe_fuse_lookup(it_fe, 1, 1, "small.txt", &e), 0,
		     "queue 1 wedged behind a dead lock holder");
	cr_assert_eq(vufe_fuse_lookup(it_fe, 3, 1, "small.txt", &e), 0,
		     "queue 3 wedged behind a dead lock holder");
	cr_assert_eq(vufe_fuse_getattr(it_fe, 3, e.nodeid, &ao), 0);
	cr_assert_eq(ao.attr.size, 15);
	cr_assert_eq(vufe_fuse_forget(it_fe, 0, e.nodeid, 2), 0);
	cr_assert_neq(it_lookup(it_fe, 1, "lf"), 0);
	cr_assert(
	    hx_log_contains(&it_d, "worker q2 died holding the node table lock; lock recovered"),
	    "the parent did not report releasing the dead worker's lock");
	/* the call on the dead queue is never answered; keep its buffers */
	it_stop_ok();
}
#endif

/* ---- locks: set on one queue, seen and released on others ---- */

static struct vufe_call *mq_lk(unsigned q, uint32_t op, uint64_t node, uint64_t fh, uint64_t owner,
			       uint32_t type)
{
	struct fuse_lk_in in = {.fh = fh, .owner = owner};

	in.lk.start = 0;
	in.lk.end = 99;
	in.lk.type = type;
	in.lk.pid = 4242;
	return mq_submit(q, op, node, &in, sizeof(in), NULL, 0,
			 op == FUSE_GETLK ? 16 + sizeof(struct fuse_lk_out) : 16);
}

static int mq_lk_sync(unsigned q, uint32_t op, uint64_t node, uint64_t fh, uint64_t owner,
		      uint32_t type, uint32_t *got)
{
	struct vufe_call *c = mq_lk(q, op, node, fh, owner, type);
	int r;

	vufe_kick(it_fe, q);
	r = mq_wait(c);
	if (r == 0 && got) {
		cr_assert_eq(vufe_call_data_len(c), sizeof(struct fuse_lk_out));
		*got = ((struct fuse_lk_out *)vufe_call_data(c))->lk.type;
	}
	vufe_call_free(it_fe, c);
	return r;
}

/* The host's view: the type of a lock conflicting with a write lock on 0..99. */
static short mq_host_lock(const char *name)
{
	char p[PATH_MAX];
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
	int fd;

	snprintf(p, sizeof(p), "%s/%s", it_share, name);
	cr_assert((fd = open(p, O_RDWR | O_CLOEXEC)) >= 0);
	cr_assert_eq(fcntl(fd, F_OFD_GETLK, &fl), 0, "F_OFD_GETLK: %s", strerror(errno));
	close(fd);
	return fl.l_type;
}

ITEST(mq, setlk_on_one_queue_is_seen_by_getlk_and_setlk_on_others)
{
	struct vufe_call *g, *s;
	uint64_t node, fh1, fh2;
	uint32_t type = 0;

	node = it_lookup(it_fe, 1, "small.txt");
	cr_assert_neq(node, 0);
	cr_assert_eq(vufe_fuse_open(it_fe, 1, node, O_RDWR, &fh1), 0);
	cr_assert_eq(vufe_fuse_open(it_fe, 2, node, O_RDWR, &fh2), 0);
	cr_assert_eq(mq_lk_sync(2, FUSE_SETLK, node, fh1, 0x111, F_WRLCK, NULL), 0,
		     "SETLK on queue 2");
	cr_assert_eq(mq_host_lock("small.txt"), F_WRLCK, "the lock is not a host lock");

	/* the other open file, from queues 3 and 1 at once */
	g = mq_lk(3, FUSE_GETLK, node, fh2, 0x222, F_RDLCK);
	s = mq_lk(1, FUSE_SETLK, node, fh2, 0x222, F_RDLCK);
	mq_kick_all();
	cr_assert_eq(mq_wait(g), 0);
	cr_assert_eq(((struct fuse_lk_out *)vufe_call_data(g))->lk.type, F_WRLCK,
		     "GETLK on queue 3 misses the lock set on queue 2");
	cr_assert_eq(mq_wait(s), -EAGAIN, "a conflicting SETLK on queue 1 got the lock");
	vufe_call_free(it_fe, g);
	vufe_call_free(it_fe, s);

	/* The owner unlocks on the queue it locked on: passthrough_locks.c keeps
	 * its owner -> description table per worker (a 6.1 guest uses one request
	 * queue), so the same owner on another queue is a different holder. */
	cr_assert_eq(mq_lk_sync(2, FUSE_SETLK, node, fh1, 0x111, F_UNLCK, NULL), 0);
	cr_assert_eq(mq_lk_sync(1, FUSE_GETLK, node, fh2, 0x222, F_WRLCK, &type), 0);
	cr_assert_eq(type, F_UNLCK, "GETLK on queue 1 still sees the lock unlocked on queue 2");
	cr_assert_eq(mq_host_lock("small.txt"), F_UNLCK);
	/* now the other owner gets it from queue 3, and queue 2 sees that */
	cr_assert_eq(mq_lk_sync(3, FUSE_SETLK, node, fh2, 0x222, F_WRLCK, NULL), 0);
	cr_assert_eq(mq_lk_sync(2, FUSE_GETLK, node, fh1, 0x111, F_RDLCK, &type), 0);
	cr_assert_eq(type, F_WRLCK);
	cr_assert_eq(mq_lk_sync(3, FUSE_SETLK, node, fh2, 0x222, F_UNLCK, NULL), 0);
	cr_assert_eq(vufe_fuse_release(it_fe, 3, FUSE_RELEASE, node, fh2), 0);
	cr_assert_eq(mq_host_lock("small.txt"), F_UNLCK);
	cr_assert_eq(vufe_fuse_release(it_fe, 1, FUSE_RELEASE, node, fh1), 0);
}
