/*
 * test_sec_workers.c - a compromised worker against its peers and the
 * parent. The shared node table is writable by every worker of a device;
 * the parent reads every worker's channel. A worker that writes garbage
 * over the whole table, holds the table's lock for ever (plainly, or while
 * faking progress), names someone else in the lock word, or floods the
 * parent with NOTICEs must not crash or stall the other worker, nor stall
 * or crash the parent: the other queue keeps answering, the parent kills
 * the culprit (and only a worker of the device) and says why, once, and
 * the next front end is served. A worker that floods its log (its
 * standard error, a pipe the parent reads) gets a bounded number of lines
 * into the daemon's log, each tagged with its queue and without control
 * characters.
 * Runs in: the test process as root; bulkheadd and its workers are
 * children. The hook tests need --enable-test-hooks; the others act as the
 * compromised worker themselves, through its own mapping of the table
 * (/proc/PID/map_files).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "bulkhead.h"
#include "bulkheadd.h"
#include "itest.h"
#include "node_table.h"
#include "node_table_int.h"
#include "util.h"

#define SW_TIMEOUT 10000 /* ms: any answer at all, even behind a stuck lock */
/* The parent samples the lock every 250 ms and acts after the bound; the
 * slack covers a loaded machine (two cores shared with other builds). */
#define SW_KILL_MAX_MS (NT_LOCK_HOLD_MAX_MS + 250 + 2000)

static void sw_start(const char *hook)
{
	const char *const extra[] = {hook, NULL};
	uint64_t features;
	struct vufe_opts o;

	cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "share"), 0);
	cr_assert_eq(hx_seed_share(it_share), 0);
	cr_assert_eq(hx_start_bulkheadd(&it_d, it_share, hook ? extra : NULL), 0,
		     "bulkheadd did not start");
	vufe_opts_default(&o);
	o.nqueues = 3; /* hiprio, q1 (the honest one), q2 (the hostile one) */
	it_fe = it_connect(&o);
	cr_assert_eq(it_up_init(it_fe), 0, "INIT failed");
	/* The parent answers in order: once this is answered, it is done with
	 * every ring message before it, and waits for no worker. */
	cr_assert_eq(vufe_get_features(it_fe, &features), 0);
}

/* SW_DUMP=1 in the environment: print each test's daemon log. */
static void sw_fini(void)
{
	if (getenv("SW_DUMP"))
		hx_log_dump(&it_d);
	it_teardown();
}

TestSuite(sec_workers, .fini = sw_fini, .timeout = 90);

/* ---- what the log and /proc say ---- */

static unsigned sw_log_count(const char *s)
{
	FILE *f = fopen(it_d.hd_log, "re");
	char *line = NULL;
	size_t cap = 0;
	unsigned n = 0;

	if (!f)
		return 0;
	while (getline(&line, &cap, f) >= 0)
		n += strstr(line, s) != NULL;
	free(line);
	fclose(f);
	return n;
}

/* Milliseconds since t0 when s shows up in the log (polled), -1 if not
 * within timeout_ms. */
static long sw_wait_log(const char *s, uint64_t t0, int timeout_ms)
{
	uint64_t end = bh_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	do {
		if (hx_log_contains(&it_d, s))
			return (long)((bh_now_ns() - t0) / 1000000ull);
		usleep(20000);
	} while (bh_now_ns() < end);
	return -1;
}

/* The host pid of queue q's worker, from the parent's "worker qN started"
 * line (the last one: a queue's worker is started once per front end). */
static pid_t sw_worker_pid(unsigned q)
{
	FILE *f = fopen(it_d.hd_log, "re");
	char *line = NULL, want[48];
	size_t cap = 0;
	pid_t pid = 0;

	cr_assert_not_null(f);
	snprintf(want, sizeof(want), "worker q%u started (pid ", q);
	while (getline(&line, &cap, f) >= 0) {
		char *p = strstr(line, want);
		if (p)
			pid = (pid_t)atoi(p + strlen(want));
	}
	free(line);
	fclose(f);
	cr_assert_gt(pid, 0, "no worker for queue %u in the log", q);
	return pid;
}

static bool sw_gone(pid_t pid)
{
	char s = hx_proc_state(pid);

	return s == 0 || s == 'Z' || s == 'X';
}

static bool sw_wait_gone(pid_t pid, int timeout_ms)
{
	for (int i = 0; i < timeout_ms / 20 && !sw_gone(pid); i++)
		usleep(20000);
	return sw_gone(pid);
}

/* Alive and well: running or sleeping, not stopped, not a zombie. */
static void sw_assert_healthy(pid_t pid, const char *who)
{
	char s = hx_proc_state(pid);

	cr_assert(s == 'R' || s == 'S', "%s (pid %d) is in state '%c'", who, (int)pid, s ? s : '-');
}

/* A second front end gets a fresh device: INIT and a LOOKUP on q1. */
static void sw_next_front_end_served(void)
{
	vufe_disconnect(it_fe);
	it_next_front_end_served();
}

static struct vufe_call *sw_submit(unsigned q, uint32_t op, uint64_t node, const void *a,
				   size_t len, size_t reply)
{
	struct vufe_call *c = vufe_call_new(it_fe, 64 + len, reply);

	cr_assert_not_null(c);
	cr_assert_eq(vufe_call_prep(it_fe, c, op, node, a, len, NULL, 0, reply), 0);
	cr_assert_eq(vufe_call_submit(it_fe, q, c, 0), 0, "submit on queue %u", q);
	return c;
}

static struct vufe_call *sw_lookup(unsigned q, const char *name)
{
	return sw_submit(q, FUSE_LOOKUP, NT_ROOT_ID, name, strlen(name) + 1,
			 16 + sizeof(struct fuse_entry_out));
}

/* The answer to c within SW_TIMEOUT (the test fails without one). */
static int sw_answer(struct vufe_call *c, const char *what)
{
	int r;

	cr_assert_eq(vufe_call_wait(it_fe, c, SW_TIMEOUT), 0, "no answer to %s on queue %u", what,
		     c->c_queue);
	r = vufe_call_result(c);
	vufe_call_free(it_fe, c);
	return r;
}

/* ---- acting as a compromised worker: its log ---- */

/*
 * q2's standard error, taken from it, written as fast as the pipe takes
 * lines for SW_FLOOD_MS: at --log-level=info the parent logs at most its
 * burst and rate of them (a count of the rest instead), each line as
 * "worker q2: ...", with the escape character replaced; q1 and the parent
 * never notice. The pipe is q2's own: a full one costs it lines, not time.
 */
#define SW_FLOOD_MS 1500
ITEST(sec_workers, worker_flooding_its_log_gets_a_bounded_tagged_share_of_ours)
{
	static const char line[] = "flood \x1b[2J forged: bulkheadd[1]: fake\n";
	const char *const extra[] = {"--log-level=info", NULL};
	unsigned long written = 0;
	uint64_t t0, end;
	pid_t q1, q2;
	int pidfd, fd;
	unsigned logged, allowed;
	char *logtext;
	FILE *f;
	size_t len = 0;

	it_start(extra, 3);
	q1 = sw_worker_pid(1);
	q2 = sw_worker_pid(2);
	pidfd = pidfd_open(q2, 0);
	cr_assert_geq(pidfd, 0);
	fd = pidfd_getfd(pidfd, 2, 0);
	cr_assert_geq(fd, 0, "q2's standard error: %s", strerror(errno));
	close(pidfd);
	t0 = bh_now_ns();
	end = t0 + SW_FLOOD_MS * 1000000ull;
	while (bh_now_ns() < end) {
		ssize_t w = write(fd, line, sizeof(line) - 1);

		if (w > 0)
			written++;
		else
			usleep(1000); /* full: the parent has not read yet */
	}
	close(fd);
	cr_assert_gt(written, 2 * PARENT_WK_STDERR_BURST, "only %lu lines written", written);
	/* the parent keeps serving meanwhile, and so does q1 */
	cr_assert_eq(sw_answer(sw_lookup(1, "small.txt"), "LOOKUP during the flood"), 0);
	usleep(300000); /* what is left in the pipe */
	logged = sw_log_count("worker q2: flood ?[2J forged: bulkheadd[1]: fake");
	allowed = PARENT_WK_STDERR_BURST +
		  PARENT_WK_STDERR_RATE * (unsigned)((bh_now_ns() - t0) / 1000000000ull + 1);
	cr_assert_gt(logged, 0, "none of q2's lines was relayed");
	cr_assert_leq(logged, allowed, "%u of %lu lines logged, at most %u allowed", logged,
		      written, allowed);
	cr_assert_gt(sw_log_count("worker q2: ") , 0);
	cr_assert_gt(sw_log_count("lines of its log were left out"), 0);
	/* no escape character from a worker reaches the log */
	cr_assert_not_null(f = fopen(it_d.hd_log, "re"));
	logtext = NULL;
	cr_assert_geq(getdelim(&logtext, &len, '\0', f), 0);
	fclose(f);
	cr_assert_null(strchr(logtext, '\x1b'), "a control character reached the log");
	free(logtext);
	sw_assert_healthy(q1, "worker q1");
	sw_assert_healthy(q2, "worker q2");
	cr_assert_eq(sw_answer(sw_lookup(2, "small.txt"), "LOOKUP on q2 after its flood"), 0);
	sw_next_front_end_served();
}

/* ---- acting as a compromised worker: its own mapping of the table ---- */

/* The header page of the node table, mapped through worker pid's mapping
 * of it: the same memory a compromised worker writes. */
static struct nt_hdr *sw_map_table_of(pid_t pid)
{
	char path[96], line[512];
	unsigned long lo = 0, hi = 0;
	struct nt_hdr *h;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	cr_assert_not_null(f = fopen(path, "re"));
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "bulkhead-nodes") && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			break;
	fclose(f);
	cr_assert_neq(hi, 0, "worker %d has no node table mapped", (int)pid);
	snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", (int)pid, lo, hi);
	fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	h = mmap(NULL, NT_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	cr_assert_neq(h, MAP_FAILED);
	cr_assert_eq(h->h_magic, NT_MAGIC);
	return h;
}

/* Take the free lock with 'word' in it, as the worker it names would. */
static void sw_take_lock(struct nt_hdr *h, uint32_t word)
{
	uint32_t free_word = 0;

	cr_assert(__atomic_compare_exchange_n(&h->h_lock, &free_word, word, false, __ATOMIC_ACQUIRE,
					      __ATOMIC_RELAXED),
		  "the lock was not free: %#x", free_word);
}

static volatile bool sw_faking;

/* A holder that pretends to make progress: the acquisition counter moves,
 * the word never does. */
static void *sw_fake_progress(void *arg)
{
	struct nt_hdr *h = arg;

	while (sw_faking) {
		__atomic_fetch_add(&h->h_lock_acq, 1, __ATOMIC_RELAXED);
		usleep(20000);
	}
	return NULL;
}

/* q2 takes the lock (its tag in the word, as its own nt_lock would put it)
 * and keeps it while bumping the counter, so that the parent's samples see
 * progress. Only its victim knows better: q1's LOOKUP waits, q1 reports,
 * the parent kills q2 and releases the lock, q1 answers. */
ITEST(sec_workers, holding_the_lock_while_faking_progress_is_killed_once_a_peer_waits)
{
	pid_t q1, q2;
	pthread_t th;
	struct nt_hdr *h;
	uint64_t t0;
	long ms;
	int r;

	sw_start(NULL);
	it_expect_worker_death(2, IT_KILLED);
	cr_assert_neq(it_lookup(it_fe, 2, "small.txt"), 0);
	q1 = sw_worker_pid(1);
	q2 = sw_worker_pid(2);
	h = sw_map_table_of(q2);
	sw_take_lock(h, NT_LOCK_TAG(2));
	sw_faking = true;
	cr_assert_eq(pthread_create(&th, NULL, sw_fake_progress, h), 0);

	t0 = bh_now_ns();
	r = sw_answer(sw_lookup(1, "small.txt"), "LOOKUP behind the stuck lock");
	ms = (long)((bh_now_ns() - t0) / 1000000ull);
	sw_faking = false;
	pthread_join(th, NULL);
	cr_assert_eq(r, 0, "LOOKUP on q1: %d", r);
	cr_assert(ms >= (long)NT_LOCK_HOLD_MAX_MS - 100 && ms < SW_KILL_MAX_MS,
		  "q1 was answered after %ld ms", ms);
	cr_assert(sw_wait_gone(q2, 2000), "the holder was not killed");
	cr_assert_eq(sw_log_count("worker q2 held the node table lock for more than 2000 ms, "
				  "killing it (worker q1 waited for it)"),
		     1);
	cr_assert(sw_wait_log("worker q2 died holding the node table lock; lock recovered", t0,
			      2000) >= 0);
	sw_assert_healthy(q1, "worker q1");
	cr_assert_neq(it_lookup(it_fe, 1, "big.bin"), 0, "q1 stopped serving");
	munmap(h, NT_HDR_SIZE);
	sw_next_front_end_served();
}

/* The lock word is anyone's to write. One naming a queue without a worker,
 * or a worker id beyond any queue, makes the parent kill nobody: it
 * releases the word after the bound, and every worker lives on. */
ITEST(sec_workers, lock_word_naming_no_worker_of_the_device_kills_nothing)
{
	static const uint32_t words[] = {NT_LOCK_TAG(BH_MAX_QUEUES - 1), NT_LOCK_TAG(31),
					 NT_LOCK_WAITERS | NT_LOCK_TAG(5)};
	pid_t q0, q1, q2;
	struct nt_hdr *h;
	char line[96];
	uint64_t t0;
	long ms;

	sw_start(NULL);
	cr_assert_neq(it_lookup(it_fe, 2, "small.txt"), 0);
	q0 = sw_worker_pid(0);
	q1 = sw_worker_pid(1);
	q2 = sw_worker_pid(2);
	h = sw_map_table_of(q2);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		sw_take_lock(h, words[i]);
		t0 = bh_now_ns();
		snprintf(line, sizeof(line),
			 "node table lock word %#x names no worker of this device; released",
			 words[i]);
		ms = sw_wait_log(line, t0, SW_KILL_MAX_MS + 1000);
		cr_assert(ms >= 0, "'%s' not logged", line);
		cr_assert_eq(__atomic_load_n(&h->h_lock, __ATOMIC_RELAXED), 0);
		cr_assert_neq(it_lookup(it_fe, 1, "small.txt"), 0);
	}
	cr_assert_eq(sw_log_count("killing it"), 0, "the parent killed someone");
	sw_assert_healthy(q0, "worker q0");
	sw_assert_healthy(q1, "worker q1");
	sw_assert_healthy(q2, "worker q2");
	munmap(h, NT_HDR_SIZE);
}

#ifdef BH_TEST_HOOKS
static struct vufe_call *sw_getattr(unsigned q, uint64_t node)
{
	struct fuse_getattr_in gi = {0};

	return sw_submit(q, FUSE_GETATTR, node, &gi, sizeof(gi), 16 + sizeof(struct fuse_attr_out));
}

/* q2 writes garbage into every field of the table (header, lock word and
 * counters, free lists, buckets, nodes, handles, names, lock buckets)
 * before each request it serves. q1 must answer everything (some answers
 * wrong: the nodes it knew may be gone), never hang, never crash; the
 * parent must clear a lock word that names nobody and keep serving. */
ITEST(sec_workers, worker_scribbling_over_the_node_table_cannot_crash_or_stall_its_peer)
{
	static const char *const names[] = {"small.txt", "dir", "big.bin", "empty", "link_small"};
	struct fuse_read_in ri;
	uint64_t node, fh;
	pid_t q1;
	int r;

	sw_start("--test-scribble-node-table=2");
	q1 = sw_worker_pid(1);
	node = it_lookup(it_fe, 1, "small.txt");
	cr_assert_neq(node, 0);
	cr_assert_eq(vufe_fuse_open(it_fe, 1, node, O_RDONLY, &fh), 0);
	for (int round = 1; round <= 3; round++) {
		struct vufe_call *bad = sw_getattr(2, NT_ROOT_ID); /* the scribble */

		usleep(100000);
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			r = sw_answer(sw_lookup(1, names[i]), "LOOKUP");
			cr_assert(r == 0 || r == -ESTALE || r == -ENOENT || r == -ENFILE,
				  "round %d: LOOKUP %s on q1: %d", round, names[i], r);
		}
		r = sw_answer(sw_getattr(1, node), "GETATTR");
		cr_assert(r == 0 || r == -ESTALE, "round %d: GETATTR on q1: %d", round, r);
		r = sw_answer(sw_getattr(1, NT_ROOT_ID), "GETATTR of the root");
		cr_assert(r == 0 || r == -ESTALE, "round %d: GETATTR / on q1: %d", round, r);
		memset(&ri, 0, sizeof(ri));
		ri.fh = fh;
		ri.size = 4096;
		r = sw_answer(sw_submit(1, FUSE_READ, node, &ri, sizeof(ri), 16 + 4096), "READ");
		cr_assert(r == 0 || r == -EBADF || r == -ESTALE, "round %d: READ on q1: %d", round,
			  r);
		/* the scribbler's own request: whatever it says, if anything */
		(void)vufe_call_wait(it_fe, bad, SW_TIMEOUT);
		sw_assert_healthy(q1, "worker q1");
		cr_assert_eq(sw_worker_pid(1), q1, "worker q1 was replaced");
	}
	cr_assert(hx_alive(&it_d), "the daemon died");
	cr_assert_eq(sw_log_count("killing it"), 0, "the parent killed a worker");
	sw_next_front_end_served();
}

/* Between requests: the flood trips the rate limit, the worker is killed
 * and the reason logged once; the lines it makes the parent log are
 * limited; q1 keeps serving. */
ITEST(sec_workers, worker_flooding_notices_is_killed_once_and_its_lines_are_limited)
{
	const char *killed = "worker q2 sent more than 64 notices at once, or more than 16 a "
			     "second, killing it";
	pid_t q1, q2;
	uint64_t t0;
	unsigned lines;

	sw_start("--test-flood-notices=2");
	it_expect_worker_death(2, IT_KILLED);
	q1 = sw_worker_pid(1);
	q2 = sw_worker_pid(2);
	t0 = bh_now_ns();
	(void)sw_getattr(2, NT_ROOT_ID); /* starts the flood; never answered */
	cr_assert(sw_wait_log(killed, t0, 5000) >= 0, "the flooding worker was not killed");
	cr_assert(sw_wait_gone(q2, 2000), "the flooding worker is still there");
	usleep(300000);
	cr_assert_eq(sw_log_count(killed), 1);
	/* a burst of 20, and 2 a second after it (the kill takes milliseconds,
	 * but the machine may be busy) */
	lines = sw_log_count("]: worker q2: test flood of notices");
	cr_assert(lines >= 1 && lines <= 20 + 2, "%u flood lines logged", lines);
	cr_assert_eq(sw_log_count("more of its lines were not logged"), 1);
	sw_assert_healthy(q1, "worker q1");
	cr_assert_neq(it_lookup(it_fe, 1, "small.txt"), 0, "q1 stopped serving");
	sw_next_front_end_served();
}

/* During a request: the parent waits for q2's ACK of RING_ENABLE while q2
 * streams NOTICEs instead. The wait ends at its deadline (5 s), not when
 * the stream ends; meanwhile q1 serves the guest, and afterwards the parent
 * serves the front end again. */
ITEST(sec_workers, worker_flooding_notices_while_the_parent_waits_meets_the_deadline)
{
	const char *timeout = "worker q2 did not send an ACK within 5000 ms, killing it";
	uint64_t features = 0;
	unsigned lines;
	pid_t q1, q2;
	uint64_t t0;
	long ms;

	sw_start("--test-flood-notices=2");
	it_expect_worker_death(2, IT_KILLED);
	q1 = sw_worker_pid(1);
	q2 = sw_worker_pid(2);
	t0 = bh_now_ns();
	cr_assert_eq(vufe_set_vring_enable(it_fe, 2, 0), 0);
	/* the parent is busy with q2; q1 answers the guest on its own */
	cr_assert_neq(it_lookup(it_fe, 1, "small.txt"), 0, "q1 stalled with the parent");
	ms = sw_wait_log(timeout, t0, 15000);
	cr_assert(ms >= 4500 && ms < 10000, "the wait ended after %ld ms", ms);
	cr_assert(sw_wait_gone(q2, 2000));
	cr_assert_eq(sw_log_count(timeout), 1);
	cr_assert_eq(sw_log_count("notices at once"), 0, "not the deadline ended the wait");
	lines = sw_log_count("]: worker q2: test flood of notices");
	cr_assert(lines >= 1 && lines <= 20 + 2 * 6, "%u flood lines logged in 5 s", lines);
	/* the parent answers the front end again, and q1 still serves */
	cr_assert_eq(vufe_get_features(it_fe, &features), 0);
	sw_assert_healthy(q1, "worker q1");
	cr_assert_neq(it_lookup(it_fe, 1, "big.bin"), 0);
	sw_next_front_end_served();
}

/* The parent's watch does not pause while it waits for a worker: q2
 * streams NOTICEs instead of an ACK (5 s), and meanwhile q1 (here: this
 * test, in q1's own mapping of the table) keeps the lock. q1 is killed and
 * its lock released within the bound, before that wait ends. */
ITEST(sec_workers, lock_kept_while_the_parent_waits_for_another_worker_is_still_bounded)
{
	const char *timeout = "worker q2 did not send an ACK within 5000 ms, killing it";
	long killed, released, waited;
	struct nt_hdr *h;
	pid_t q0, q1;
	uint64_t t0;

	sw_start("--test-flood-notices=2");
	it_expect_worker_death(1, IT_KILLED); /* it kept the lock */
	it_expect_worker_death(2, IT_KILLED); /* its ACK never came */
	q0 = sw_worker_pid(0);
	q1 = sw_worker_pid(1);
	h = sw_map_table_of(q1);
	sw_take_lock(h, NT_LOCK_TAG(1));
	t0 = bh_now_ns();
	cr_assert_eq(vufe_set_vring_enable(it_fe, 2, 0), 0);
	killed = sw_wait_log("worker q1 held the node table lock for more than 2000 ms, killing it",
			     t0, 10000);
	released =
	    sw_wait_log("worker q1 died holding the node table lock; lock recovered", t0, 10000);
	waited = sw_wait_log(timeout, t0, 15000);
	cr_assert(killed >= (long)NT_LOCK_HOLD_MAX_MS - 100 && killed < SW_KILL_MAX_MS,
		  "killed after %ld ms", killed);
	cr_assert(waited >= 4500, "the wait for q2 ended after %ld ms", waited);
	cr_assert(released >= killed && released < waited,
		  "released after %ld ms, the wait ended after %ld ms", released, waited);
	cr_assert_eq(__atomic_load_n(&h->h_lock, __ATOMIC_RELAXED), 0);
	cr_assert(sw_wait_gone(q1, 2000));
	sw_assert_healthy(q0, "worker q0");
	munmap(h, NT_HDR_SIZE);
	sw_next_front_end_served();
}

/* q2 takes the lock and keeps it, nobody waiting: the parent's own samples
 * see the same holder and counter for the bound, it kills q2, reaps it,
 * releases the lock, and q1's next request goes through. */
ITEST(sec_workers, worker_keeping_the_node_table_lock_is_killed_within_the_bound)
{
	const char *killed = "worker q2 held the node table lock for more than 2000 ms, killing it";
	struct vufe_call *held;
	pid_t q1, q2;
	uint64_t t0;
	long ms;

	sw_start("--test-hold-nt-lock=2");
	it_expect_worker_death(2, IT_KILLED);
	q1 = sw_worker_pid(1);
	q2 = sw_worker_pid(2);
	t0 = bh_now_ns();
	held = sw_getattr(2, NT_ROOT_ID);
	ms = sw_wait_log(killed, t0, SW_KILL_MAX_MS + 1000);
	cr_assert(ms >= (long)NT_LOCK_HOLD_MAX_MS - 100 && ms < SW_KILL_MAX_MS,
		  "killed after %ld ms", ms);
	cr_assert_eq(sw_log_count("(worker q1 waited for it)"), 0, "q1 was not even asked");
	cr_assert(sw_wait_gone(q2, 2000), "the holder is still there");
	cr_assert(sw_wait_log("worker q2 died holding the node table lock; lock recovered", t0,
			      2000) >= 0);
	t0 = bh_now_ns();
	cr_assert_eq(sw_answer(sw_lookup(1, "small.txt"), "LOOKUP after the kill"), 0);
	ms = (long)((bh_now_ns() - t0) / 1000000ull);
	cr_assert_lt(ms, 1000, "q1 waited %ld ms for a released lock", ms);
	cr_assert_eq(sw_log_count(killed), 1);
	sw_assert_healthy(q1, "worker q1");
	(void)held; /* never answered: its worker is dead */
}
#endif
