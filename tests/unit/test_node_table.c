/*
 * test_node_table.c - the shared node table: id scheme, generation checks,
 * reset, file handles, the lock (across processes, a holder that dies or
 * stays, a corrupted word) and a table full of garbage.
 * Built with NT_TEST_HOOKS: lock accessors, the garbage writer, and bounds
 * assertions (NT_BOUND) that abort on any index out of range, so that a
 * corrupted table that would make the code stray fails the test even where
 * the stray access would still land inside the mapping. White-box: it
 * includes the layout (node_table_int.h) to corrupt the lock word.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node_table.h"
#include "node_table_int.h"
#include "util.h"

void nt_test_lock(struct nt_table *t);
void nt_test_unlock(struct nt_table *t);
void nt_test_scribble(struct nt_table *t, uint32_t seed);

static int memfd = -1;
static struct nt_table *nt;

static void setup(void)
{
	memfd = nt_create();
	cr_assert_geq(memfd, 0, "nt_create: %d", memfd);
	nt = nt_map(memfd);
	cr_assert_not_null(nt);
}

static void teardown(void)
{
	nt_unmap(nt);
	close(memfd);
}

TestSuite(node_table, .init = setup, .fini = teardown);

static uint64_t ref(uint64_t dev, uint64_t ino, bool expect_created)
{
	struct nt_node n;
	bool created;

	cr_assert_eq(nt_node_ref(nt, dev, ino, S_IFREG, 3, &n, &created), 0);
	cr_assert_eq(created, expect_created);
	return n.n_id;
}

Test(node_table, root_is_id_1_and_survives_forget)
{
	struct nt_node n;
	bool dead = true;
	uint32_t owner;

	cr_assert_eq(nt_node_get(nt, NT_ROOT_ID, &n), 0);
	cr_assert_eq(n.n_id, 1);
	cr_assert_eq(n.n_state, NT_LIVE);
	cr_assert_eq(nt_node_forget(nt, NT_ROOT_ID, 1000, &dead, &owner), 0);
	cr_assert_not(dead);
	nt_node_free(nt, NT_ROOT_ID);
	cr_assert_eq(nt_node_get(nt, NT_ROOT_ID, &n), 0);
	cr_assert_eq(n.n_state, NT_LIVE);
}

Test(node_table, ref_of_same_dev_ino_twice_returns_same_id_with_nlookup_2)
{
	struct nt_node n;
	uint64_t a = ref(7, 42, true);
	uint64_t b = ref(7, 42, false);

	cr_assert_eq(a, b);
	cr_assert_neq(nt_slot(a), 0);
	cr_assert_neq(a, NT_ROOT_ID);
	cr_assert_eq(nt_node_get(nt, a, &n), 0);
	cr_assert_eq(n.n_nlookup, 2);
	cr_assert_eq(n.n_dev, 7);
	cr_assert_eq(n.n_ino, 42);
	cr_assert_eq(n.n_owner, 3);
	cr_assert_eq(n.n_mode, S_IFREG);
	/* Another inode on the same device is another node. */
	cr_assert_neq(ref(7, 43, true), a);
}

Test(node_table, forget_to_zero_makes_node_dying_and_new_ref_creates_new_id)
{
	uint64_t a = ref(1, 2, true), b;
	struct nt_node n;
	uint32_t owner = 99;
	bool dead;

	ref(1, 2, false);
	cr_assert_eq(nt_node_forget(nt, a, 1, &dead, &owner), 0);
	cr_assert_not(dead);
	cr_assert_eq(nt_node_forget(nt, a, 1, &dead, &owner), 0);
	cr_assert(dead);
	cr_assert_eq(owner, 3);
	/* Dying: not usable, not found by (dev, ino). */
	cr_assert_eq(nt_node_get(nt, a, &n), -ESTALE);
	b = ref(1, 2, true);
	cr_assert_neq(a, b);
	cr_assert_eq(nt_node_forget(nt, a, 1, &dead, &owner), -ESTALE);
}

Test(node_table, forget_clamps_nlookup_at_zero)
{
	uint64_t a = ref(1, 3, true);
	uint32_t owner;
	bool dead;

	ref(1, 3, false);
	cr_assert_eq(nt_node_forget(nt, a, 1000, &dead, &owner), 0);
	cr_assert(dead);
}

Test(node_table, stale_generation_after_slot_reuse_is_estale)
{
	uint64_t a = ref(1, 2, true), b;
	struct nt_node n;
	uint32_t owner;
	bool dead;

	cr_assert_eq(nt_node_forget(nt, a, 1, &dead, &owner), 0);
	nt_node_free(nt, a);
	b = ref(9, 9, true);
	cr_assert_eq(nt_slot(a), nt_slot(b), "freed slot is reused");
	cr_assert_gt(b >> NT_SLOT_BITS, a >> NT_SLOT_BITS);
	cr_assert_eq(nt_node_get(nt, a, &n), -ESTALE);
	cr_assert_eq(nt_node_get(nt, b, &n), 0);
	cr_assert_eq(n.n_ino, 9);
	/* Freeing through the stale id must not touch the new node. */
	nt_node_free(nt, a);
	cr_assert_eq(nt_node_get(nt, b, &n), 0);
}

Test(node_table, invalid_slots_and_generations_are_estale)
{
	uint64_t a = ref(1, 2, true);
	struct nt_node n;
	uint32_t owner;
	bool dead;

	cr_assert_eq(nt_node_get(nt, 0, &n), -ESTALE);
	cr_assert_eq(nt_node_get(nt, 1ull << NT_SLOT_BITS, &n), -ESTALE);	/* slot 0 */
	cr_assert_eq(nt_node_get(nt, (1ull << NT_SLOT_BITS) | 1, &n), -ESTALE); /* root, gen 1 */
	cr_assert_eq(nt_node_get(nt, NT_MAX_NODES - 1, &n), -ESTALE);		/* never used */
	cr_assert_eq(nt_node_get(nt, a + 1, &n), -ESTALE);			/* next slot */
	cr_assert_eq(nt_node_get(nt, a + (5ull << NT_SLOT_BITS), &n), -ESTALE); /* future gen */
	cr_assert_eq(nt_node_get(nt, UINT64_MAX, &n), -ESTALE);
	cr_assert_eq(nt_node_forget(nt, 0, 1, &dead, &owner), -ESTALE);
	cr_assert_eq(nt_node_forget(nt, UINT64_MAX, 1, &dead, &owner), -ESTALE);
	nt_node_free(nt, 0);
	nt_node_free(nt, UINT64_MAX);
	cr_assert_eq(nt_node_get(nt, a, &n), 0);
}

Test(node_table, many_nodes_stay_findable_while_others_are_forgotten)
{
	enum { N = 20000 };
	static uint64_t ids[N];
	struct nt_node n;
	uint32_t owner;
	bool dead;

	for (int i = 0; i < N; i++)
		ids[i] = ref(i % 3, (uint64_t)i * 262144, true); /* crowd the buckets */
	for (int i = 0; i < N; i += 2) {
		cr_assert_eq(nt_node_forget(nt, ids[i], 1, &dead, &owner), 0);
		cr_assert(dead);
		nt_node_free(nt, ids[i]);
	}
	for (int i = 1; i < N; i += 2) {
		cr_assert_eq(nt_node_get(nt, ids[i], &n), 0);
		cr_assert_eq(ref(i % 3, (uint64_t)i * 262144, false), ids[i]);
	}
	for (int i = 0; i < N; i += 2)
		cr_assert_eq(nt_node_get(nt, ids[i], &n), -ESTALE);
}

Test(node_table, reset_invalidates_ids_clears_session_and_bumps_epoch)
{
	struct nt_session s = {.s_initialized = 1, .s_minor = 31, .s_max_pages = 256};
	uint64_t e0 = nt_epoch(nt), a = ref(1, 2, true), b;
	struct nt_fh f;
	struct nt_node n;

	cr_assert_eq(nt_fh_alloc(nt, a, 3, 0, false, &f), 0);
	nt_session_set(nt, &s);
	nt_reset(nt);
	cr_assert_gt(nt_epoch(nt), e0);
	cr_assert_eq(nt_node_get(nt, a, &n), -ESTALE);
	cr_assert_eq(nt_fh_get(nt, f.f_id, &f), -EBADF);
	cr_assert_eq(nt_node_get(nt, NT_ROOT_ID, &n), 0);
	nt_session_get(nt, &s);
	cr_assert_eq(s.s_initialized, 0);
	b = ref(1, 2, true);
	cr_assert_neq(a, b, "an id from before the reset never comes back");
}

Test(node_table, session_roundtrips)
{
	struct nt_session in = {1, 31, 256, 0x55}, out;

	nt_session_set(nt, &in);
	nt_session_get(nt, &out);
	cr_assert_eq(memcmp(&in, &out, sizeof(in)), 0);
}

Test(node_table, fh_alloc_get_free_and_stale)
{
	struct nt_fh f, g, h;

	cr_assert_eq(nt_fh_alloc(nt, NT_ROOT_ID, 4, 02, true, &f), 0);
	cr_assert_neq(nt_slot(f.f_id), 0);
	cr_assert_eq(nt_fh_get(nt, f.f_id, &g), 0);
	cr_assert_eq(g.f_node, NT_ROOT_ID);
	cr_assert_eq(g.f_owner, 4);
	cr_assert_eq(g.f_flags, 02);
	cr_assert_eq(g.f_isdir, 1);
	cr_assert_eq(nt_fh_free(nt, f.f_id), 0);
	cr_assert_eq(nt_fh_get(nt, f.f_id, &g), -EBADF);
	cr_assert_eq(nt_fh_free(nt, f.f_id), -EBADF);
	cr_assert_eq(nt_fh_alloc(nt, NT_ROOT_ID, 4, 0, false, &h), 0);
	cr_assert_eq(nt_slot(h.f_id), nt_slot(f.f_id));
	cr_assert_neq(h.f_id, f.f_id);
	cr_assert_eq(nt_fh_get(nt, f.f_id, &g), -EBADF);
	cr_assert_eq(nt_fh_get(nt, 0, &g), -EBADF);
	cr_assert_eq(nt_fh_get(nt, NT_MAX_FHS, &g), -EBADF);
	cr_assert_eq(nt_fh_get(nt, UINT64_MAX, &g), -EBADF);
}

Test(node_table, full_fh_table_returns_enfile_until_one_is_freed)
{
	struct nt_fh f, last = {0};
	unsigned n = 0;
	int r;

	while ((r = nt_fh_alloc(nt, NT_ROOT_ID, 1, 0, false, &f)) == 0) {
		last = f;
		n++;
	}
	cr_assert_eq(r, -ENFILE);
	cr_assert_eq(n, NT_MAX_FHS - 1); /* slot 0 is never used */
	cr_assert_eq(nt_fh_free(nt, last.f_id), 0);
	cr_assert_eq(nt_fh_alloc(nt, NT_ROOT_ID, 1, 0, false, &f), 0);
	cr_assert_eq(nt_fh_alloc(nt, NT_ROOT_ID, 1, 0, false, &f), -ENFILE);
}

/* ---- the lock ---- */

static uint32_t lock_word(void)
{
	return __atomic_load_n(&nt->t_hdr->h_lock, __ATOMIC_RELAXED);
}

/* What the parent does (daemon/workers.c): it learns of the death, sees the
 * dead worker's tag in the word, and releases it. */
Test(node_table, lock_held_by_a_dead_worker_is_released_by_the_parents_watch)
{
	struct nt_lockwatch *lw = nt_lockwatch_map(memfd);
	uint32_t word, acq;
	struct nt_node n;
	bool created;
	pid_t pid;
	int st;

	cr_assert_not_null(lw);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct nt_table *c = nt_map(memfd);
		if (!c)
			_exit(2);
		nt_set_self(c, 5);
		nt_test_lock(c);
		_exit(0); /* dies holding it */
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	nt_lockwatch_sample(lw, &word, &acq);
	cr_assert_eq(nt_lock_holder(word), 5, "the word names worker 5: %#x", word);
	cr_assert_not(nt_lockwatch_release(lw, NT_LOCK_TAG(4)), "released another holder's lock");
	cr_assert(nt_lockwatch_release(lw, word));
	cr_assert_not(nt_lockwatch_release(lw, word), "released twice");
	cr_assert_eq(nt_node_ref(nt, 5, 6, S_IFDIR, 2, &n, &created), 0);
	cr_assert(created);
	cr_assert_eq(nt_node_get(nt, n.n_id, &n), 0);
	nt_lockwatch_unmap(lw);
}

/* Four processes add lookups to one node at once: the lookup count is a
 * plain read-modify-write under the lock, so a single lost update shows. */
Test(node_table, lock_excludes_across_processes_under_contention, .timeout = 60)
{
	enum { PROCS = 4, REFS = 20000 };
	struct nt_lockwatch *lw = nt_lockwatch_map(memfd);
	pid_t pids[PROCS];
	uint32_t word, acq0, acq1;
	struct nt_node n;
	bool created;
	int st;

	cr_assert_not_null(lw);
	cr_assert_eq(nt_node_ref(nt, 77, 78, S_IFREG, 1, &n, &created), 0);
	nt_lockwatch_sample(lw, &word, &acq0);
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		cr_assert_geq(pids[p], 0);
		if (pids[p] == 0) {
			struct nt_table *c = nt_map(memfd);
			struct nt_node cn;
			bool cc;
			if (!c)
				_exit(2);
			nt_set_self(c, (uint32_t)p + 1);
			for (int i = 0; i < REFS; i++)
				if (nt_node_ref(c, 77, 78, S_IFREG, 1, &cn, &cc) < 0 || cc)
					_exit(3);
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		cr_assert_eq(waitpid(pids[p], &st, 0), pids[p]);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d: status %#x", p, st);
	}
	cr_assert_eq(nt_node_get(nt, n.n_id, &n), 0);
	cr_assert_eq(n.n_nlookup, 1 + PROCS * REFS, "lost updates: %llu",
		     (unsigned long long)n.n_nlookup);
	nt_lockwatch_sample(lw, &word, &acq1);
	cr_assert_eq(word, 0, "the lock is left taken: %#x", word);
	cr_assert_geq(acq1 - acq0, PROCS * REFS + 1, "acquisitions are not counted");
	nt_lockwatch_unmap(lw);
}

/* A child that takes the lock as worker 'self' and keeps it hold_us
 * microseconds (< 0: until killed); returns once it holds it. */
static pid_t fork_holder(uint32_t self, long hold_us)
{
	int go[2];
	pid_t pid;
	char c;

	cr_assert_eq(pipe(go), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct nt_table *h = nt_map(memfd);
		if (!h)
			_exit(2);
		nt_set_self(h, self);
		nt_test_lock(h);
		if (write(go[1], "x", 1) != 1)
			_exit(3);
		if (hold_us < 0)
			for (;;)
				pause();
		usleep((useconds_t)hold_us);
		nt_test_unlock(h);
		_exit(0);
	}
	cr_assert_eq(read(go[0], &c, 1), 1);
	close(go[0]);
	close(go[1]);
	return pid;
}

static uint32_t stall_word;
static int stall_calls;
static struct nt_lockwatch *stall_lw;

/* As the worker's report does, and the parent's kill: here the releaser is
 * the test itself. */
static void stall_report(void *arg, uint32_t word)
{
	stall_word = word;
	stall_calls++;
	nt_lockwatch_release(stall_lw, word);
}

/* A holder that keeps the lock: the waiter sleeps (no spinning through
 * the bound), reports once it has waited NT_LOCK_HOLD_MAX_MS, and gets the
 * lock when the word is released. */
Test(node_table, waiter_reports_a_holder_past_the_bound, .timeout = 30)
{
	uint64_t t0, ms;
	struct nt_node n;
	struct rusage ru;
	pid_t pid;
	int st;

	cr_assert_not_null(stall_lw = nt_lockwatch_map(memfd));
	pid = fork_holder(3, -1);
	nt_set_self(nt, 1);
	nt_set_stall_report(nt, stall_report, NULL);
	t0 = bh_now_ns();
	cr_assert_eq(nt_node_get(nt, NT_ROOT_ID, &n), 0);
	ms = (bh_now_ns() - t0) / 1000000;
	cr_assert_eq(stall_calls, 1);
	cr_assert_eq(nt_lock_holder(stall_word), 3, "reported word %#x", stall_word);
	cr_assert(ms >= NT_LOCK_HOLD_MAX_MS && ms < NT_LOCK_HOLD_MAX_MS + 1000,
		  "got the lock after %llu ms", (unsigned long long)ms);
	cr_assert_eq(lock_word(), 0);
	cr_assert_eq(getrusage(RUSAGE_SELF, &ru), 0);
	cr_assert_lt(ru.ru_utime.tv_sec, 1, "the waiter spun instead of sleeping");
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	nt_lockwatch_unmap(stall_lw);
}

/* A short hold: the waiter sleeps on the word and is woken by the release,
 * long before the bound. */
Test(node_table, waiter_is_woken_by_the_release, .timeout = 30)
{
	uint64_t t0, ms;
	struct nt_node n;
	pid_t pid;
	int st;

	/* timed from before the hold begins: at least the whole hold */
	t0 = bh_now_ns();
	pid = fork_holder(3, 300000);
	cr_assert_eq(nt_node_get(nt, NT_ROOT_ID, &n), 0);
	ms = (bh_now_ns() - t0) / 1000000;
	cr_assert(ms >= 300 && ms < 1000, "got the lock after %llu ms", (unsigned long long)ms);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A word of nonsense names no worker: the parent's watch releases it, and
 * the table works again. A word that names a holder is released only for
 * that holder. */
Test(node_table, corrupted_lock_word_is_released_and_the_table_works_again)
{
	static const uint32_t words[] = {UINT32_MAX, NT_LOCK_WAITERS, NT_LOCK_TAG_MASK,
					 NT_LOCK_TAG(NT_MAX_WORKERS), 0x12345678u};
	struct nt_lockwatch *lw = nt_lockwatch_map(memfd);
	uint32_t *w = &nt->t_hdr->h_lock;
	struct nt_node n;

	cr_assert_not_null(lw);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		__atomic_store_n(w, words[i], __ATOMIC_RELAXED);
		cr_assert_eq(nt_lock_holder(words[i]), -1, "word %#x names a worker", words[i]);
		cr_assert_not(nt_lockwatch_release(lw, NT_LOCK_TAG(2)));
		cr_assert_eq(lock_word(), words[i]);
		cr_assert(nt_lockwatch_release(lw, words[i]), "word %#x", words[i]);
		cr_assert_eq(nt_node_get(nt, NT_ROOT_ID, &n), 0);
	}
	/* the waiters bit does not make it another holder */
	__atomic_store_n(w, NT_LOCK_TAG(4) | NT_LOCK_WAITERS, __ATOMIC_RELAXED);
	cr_assert(nt_lockwatch_release(lw, NT_LOCK_TAG(4)));
	cr_assert_eq(lock_word(), 0);
	cr_assert_not(nt_lockwatch_release(lw, 0), "a free lock is never released");
	nt_lockwatch_unmap(lw);
}

Test(node_table, two_processes_see_each_others_refs)
{
	int pfd[2], st;
	uint64_t child_id = 0;
	struct nt_node n;
	bool created;
	pid_t pid;

	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct nt_table *c = nt_map(memfd);
		struct nt_node cn;
		bool cc;
		if (!c || nt_node_ref(c, 11, 12, S_IFREG, 5, &cn, &cc) < 0 || !cc)
			_exit(2);
		if (write(pfd[1], &cn.n_id, sizeof(cn.n_id)) != sizeof(cn.n_id))
			_exit(3);
		nt_unmap(c);
		_exit(0);
	}
	cr_assert_eq(read(pfd[0], &child_id, sizeof(child_id)), sizeof(child_id));
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_eq(nt_node_ref(nt, 11, 12, S_IFREG, 1, &n, &created), 0);
	cr_assert_not(created);
	cr_assert_eq(n.n_id, child_id);
	cr_assert_eq(n.n_nlookup, 2);
	cr_assert_eq(n.n_owner, 5, "the creator stays the owner");
	close(pfd[0]);
	close(pfd[1]);
}

Test(node_table, map_rejects_wrong_size_and_missing_magic)
{
	off_t size = lseek(memfd, 0, SEEK_END);
	int fd;

	cr_assert_gt(size, 0);
	fd = memfd_create("not-a-table", MFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 4096), 0);
	errno = 0;
	cr_assert_null(nt_map(fd));
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(ftruncate(fd, size), 0); /* right size, zeroes */
	errno = 0;
	cr_assert_null(nt_map(fd));
	cr_assert_eq(errno, EINVAL);
	close(fd);
}

Test(node_table, memfd_is_sealed_against_resizing)
{
	cr_assert_eq(ftruncate(memfd, 4096), -1);
	cr_assert_eq(errno, EPERM);
}

/* ---- reopen names (fdtable.c reopens evicted descriptors from them) ---- */

static uint64_t ref_named(uint64_t dev, uint64_t ino, uint64_t parent, const char *name)
{
	struct nt_node n;
	bool created;

	cr_assert_eq(nt_node_ref_named(nt, dev, ino, S_IFREG, 3, parent, name, &n, &created), 0);
	return n.n_id;
}

Test(node_table, lookup_name_is_recorded_and_read_back)
{
	char name[NT_NAME_MAX + 1];
	uint64_t parent = 0, id = ref_named(1, 100, NT_ROOT_ID, "file-a");

	cr_assert_eq(nt_node_name(nt, id, &parent, name), 0);
	cr_assert_eq(parent, NT_ROOT_ID);
	cr_assert_str_eq(name, "file-a");
}

Test(node_table, later_lookup_by_another_name_replaces_the_name)
{
	char name[NT_NAME_MAX + 1];
	uint64_t parent = 0, dir = ref_named(1, 7, NT_ROOT_ID, "d");
	uint64_t id = ref_named(1, 100, NT_ROOT_ID, "first");

	cr_assert_eq(ref_named(1, 100, dir, "hardlink"), id);
	cr_assert_eq(nt_node_name(nt, id, &parent, name), 0);
	cr_assert_eq(parent, dir);
	cr_assert_str_eq(name, "hardlink");
}

Test(node_table, dot_dotdot_and_slash_names_are_not_recorded)
{
	char name[NT_NAME_MAX + 1];
	uint64_t parent, id = ref_named(1, 100, NT_ROOT_ID, "..");

	cr_assert_eq(nt_node_name(nt, id, &parent, name), -ENOENT);
	ref_named(1, 100, NT_ROOT_ID, ".");
	ref_named(1, 100, NT_ROOT_ID, "a/b");
	cr_assert_eq(nt_node_name(nt, id, &parent, name), -ENOENT);
	ref_named(1, 100, NT_ROOT_ID, "ok");
	cr_assert_eq(nt_node_name(nt, id, &parent, name), 0);
	cr_assert_str_eq(name, "ok");
}

Test(node_table, name_of_255_bytes_roundtrips_and_256_is_refused)
{
	char longest[NT_NAME_MAX + 1], toolong[NT_NAME_MAX + 2], name[NT_NAME_MAX + 1];
	uint64_t parent, id;

	memset(longest, 'x', NT_NAME_MAX);
	longest[NT_NAME_MAX] = '\0';
	memset(toolong, 'y', NT_NAME_MAX + 1);
	toolong[NT_NAME_MAX + 1] = '\0';
	id = ref_named(1, 100, NT_ROOT_ID, longest);
	cr_assert_eq(nt_node_name(nt, id, &parent, name), 0);
	cr_assert_str_eq(name, longest);
	cr_assert_eq(nt_node_set_name(nt, id, NT_ROOT_ID, toolong), -ENAMETOOLONG);
	cr_assert_eq(nt_node_name(nt, id, &parent, name), 0);
	cr_assert_str_eq(name, longest);
}

Test(node_table, rename_repoints_the_name)
{
	char name[NT_NAME_MAX + 1];
	uint64_t parent, dir = ref_named(1, 7, NT_ROOT_ID, "d");
	uint64_t id = ref_named(1, 100, NT_ROOT_ID, "old");
	struct nt_node n;

	cr_assert_eq(nt_node_find(nt, 1, 100, &n), 0);
	cr_assert_eq(n.n_id, id);
	cr_assert_eq(nt_node_set_name(nt, id, dir, "new"), 0);
	cr_assert_eq(nt_node_name(nt, id, &parent, name), 0);
	cr_assert_eq(parent, dir);
	cr_assert_str_eq(name, "new");
}

Test(node_table, reused_slot_does_not_inherit_the_old_name)
{
	char name[NT_NAME_MAX + 1];
	uint64_t parent, id = ref_named(1, 100, NT_ROOT_ID, "gone"), id2;
	uint32_t owner;
	bool dead;

	cr_assert_eq(nt_node_forget(nt, id, 1, &dead, &owner), 0);
	cr_assert(dead);
	nt_node_free(nt, id);
	cr_assert_eq(nt_node_name(nt, id, &parent, name), -ESTALE);
	id2 = ref(1, 200, true);
	cr_assert_eq(nt_slot(id2), nt_slot(id));
	cr_assert_eq(nt_node_name(nt, id2, &parent, name), -ENOENT);
}

Test(node_table, root_and_unknown_nodes_have_no_name)
{
	char name[NT_NAME_MAX + 1];
	uint64_t parent;
	struct nt_node n;

	cr_assert_eq(nt_node_name(nt, NT_ROOT_ID, &parent, name), -ESTALE);
	cr_assert_eq(nt_node_name(nt, (5ull << NT_SLOT_BITS) | 3, &parent, name), -ESTALE);
	cr_assert_eq(nt_node_set_name(nt, (5ull << NT_SLOT_BITS) | 3, 1, "x"), -ESTALE);
	cr_assert_eq(nt_node_find(nt, 9, 9, &n), -ENOENT);
}

/* Lock descriptions: one per (node, lock owner, kind), device-wide. */
Test(node_table, lock_descriptions_publish_once_per_key)
{
	struct nt_fh a, b, w, f, h;

	cr_assert_eq(nt_lock_alloc(nt, 5, 0xabc, NT_FH_POSIX, 1, &a), 0);
	cr_assert_eq(nt_lock_alloc(nt, 5, 0xabc, NT_FH_POSIX, 2, &b), 0);
	cr_assert_neq(a.f_id, b.f_id);
	/* unpublished: nobody finds either */
	cr_assert_eq(nt_lock_find(nt, 5, 0xabc, NT_FH_POSIX, &f), -ENOENT);
	cr_assert_eq(nt_lock_publish(nt, a.f_id, &w), 0);
	cr_assert_eq(w.f_id, a.f_id);
	/* the second worker loses the race and is told whose to use */
	cr_assert_eq(nt_lock_publish(nt, b.f_id, &w), 1);
	cr_assert_eq(w.f_id, a.f_id);
	cr_assert_eq(w.f_owner, 1);
	cr_assert_eq(nt_lock_free(nt, b.f_id), 0);
	cr_assert_eq(nt_lock_find(nt, 5, 0xabc, NT_FH_POSIX, &f), 0);
	cr_assert_eq(f.f_id, a.f_id);
	cr_assert_eq(f.f_lock_owner, 0xabc);
	cr_assert_eq(f.f_kind, NT_FH_POSIX);
	/* other kind, owner or node: other keys */
	cr_assert_eq(nt_lock_find(nt, 5, 0xabc, NT_FH_FLOCK, &f), -ENOENT);
	cr_assert_eq(nt_lock_find(nt, 5, 0xabd, NT_FH_POSIX, &f), -ENOENT);
	cr_assert_eq(nt_lock_find(nt, 6, 0xabc, NT_FH_POSIX, &f), -ENOENT);
	/* a description is never a file handle for the guest */
	cr_assert_eq(nt_fh_get(nt, a.f_id, &h), -EBADF);
	cr_assert_eq(nt_fh_free(nt, a.f_id), -EBADF);
	cr_assert_eq(nt_lock_free(nt, a.f_id), 0);
	cr_assert_eq(nt_lock_free(nt, a.f_id), -EBADF);
	cr_assert_eq(nt_lock_find(nt, 5, 0xabc, NT_FH_POSIX, &f), -ENOENT);
	/* nor is a file handle a description */
	cr_assert_eq(nt_fh_alloc(nt, 5, 1, O_RDWR, false, &h), 0);
	cr_assert_eq(nt_lock_free(nt, h.f_id), -EBADF);
	cr_assert_eq(nt_lock_publish(nt, h.f_id, &w), -EBADF);
	cr_assert_eq(nt_lock_alloc(nt, 5, 1, NT_FH_OPEN, 1, &a), -EINVAL);
}

Test(node_table, many_lock_descriptions_share_buckets_and_reset_drops_them)
{
	struct nt_fh a, f;

	for (uint64_t owner = 0; owner < 10000; owner++) {
		cr_assert_eq(nt_lock_alloc(nt, 7, owner, NT_FH_FLOCK, 1, &a), 0);
		cr_assert_eq(nt_lock_publish(nt, a.f_id, &f), 0);
	}
	for (uint64_t owner = 0; owner < 10000; owner += 2) {
		cr_assert_eq(nt_lock_find(nt, 7, owner, NT_FH_FLOCK, &f), 0);
		cr_assert_eq(nt_lock_free(nt, f.f_id), 0);
	}
	for (uint64_t owner = 0; owner < 10000; owner++)
		cr_assert_eq(nt_lock_find(nt, 7, owner, NT_FH_FLOCK, &f), owner % 2 ? 0 : -ENOENT,
			     "owner %llu", (unsigned long long)owner);
	nt_reset(nt);
	cr_assert_eq(nt_lock_find(nt, 7, 1, NT_FH_FLOCK, &f), -ENOENT);
}

/* Borrowers of a handle are recorded until it is freed, and handed to the
 * releaser so that it can tell each of them. */
Test(node_table, handle_borrowers_are_recorded_and_returned_on_free)
{
	struct nt_fh h, was;

	cr_assert_eq(nt_fh_alloc(nt, 5, 1, O_RDWR, false, &h), 0);
	cr_assert_eq(h.f_dups, 0);
	cr_assert_eq(nt_fh_note_dup(nt, h.f_id, 2), 0);
	cr_assert_eq(nt_fh_note_dup(nt, h.f_id, 16), 0);
	cr_assert_eq(nt_fh_note_dup(nt, h.f_id, 32), -EINVAL);
	cr_assert_eq(nt_fh_free_get(nt, h.f_id, &was), 0);
	cr_assert_eq(was.f_owner, 1);
	cr_assert_eq(was.f_dups, (1u << 2) | (1u << 16));
	cr_assert_eq(nt_fh_note_dup(nt, h.f_id, 3), -EBADF, "a released handle takes no borrower");
	/* a reused slot starts with none */
	cr_assert_eq(nt_fh_alloc(nt, 5, 1, O_RDWR, false, &h), 0);
	cr_assert_eq(h.f_dups, 0);
}

/* ---- a table full of garbage ---- */

/* Every call of the interface on a corrupted table, with ids from the
 * table's own answers and from the range the garbage favours. Each must
 * return (Criterion's timeout catches an endless walk) without an index out
 * of range (NT_BOUND aborts). Which answers come back does not matter. */
static void use_everything(struct nt_table *t, uint32_t round)
{
	/* slots around the ends, and generation 1 of slot 2 */
	static const uint64_t ids[] = {
	    0, 1, 2, 3, 63, 4095, NT_MAX_NODES - 1, NT_MAX_NODES, UINT64_MAX, NT_MAX_NODES | 2};
	char name[NT_NAME_MAX + 1];
	struct nt_session ss;
	struct nt_node n;
	struct nt_fh f, w;
	uint64_t parent;
	uint32_t owner;
	bool b;

	nt_session_get(t, &ss);
	(void)nt_epoch(t);
	for (uint64_t i = 0; i < 64; i++) {
		uint64_t id = i < 10 ? ids[i] : (i << NT_SLOT_BITS) | i;

		(void)nt_node_ref(t, i, i + round, S_IFREG, 1, &n, &b);
		(void)nt_node_ref_named(t, i + 1, i, S_IFDIR, 2, NT_ROOT_ID, "n", &n, &b);
		(void)nt_node_get(t, n.n_id, &n);
		(void)nt_node_get(t, id, &n);
		(void)nt_node_find(t, i, i, &n);
		(void)nt_node_name(t, id, &parent, name);
		(void)nt_node_set_name(t, id, NT_ROOT_ID, "m");
		(void)nt_node_forget(t, id, 1, &b, &owner);
		cr_assert(!b || owner < NT_MAX_WORKERS, "owner %u", owner);
		nt_node_free(t, id);
		if (nt_fh_alloc(t, id, 1, O_RDONLY, false, &f) == 0) {
			(void)nt_fh_note_dup(t, f.f_id, 2);
			(void)nt_fh_get(t, f.f_id, &f);
			(void)nt_fh_free_get(t, f.f_id, &f);
		}
		(void)nt_fh_get(t, id, &f);
		cr_assert(f.f_owner < NT_MAX_WORKERS);
		(void)nt_fh_note_dup(t, id, 3);
		(void)nt_fh_free(t, id);
		if (nt_lock_alloc(t, id, i, NT_FH_POSIX, 1, &f) == 0 &&
		    nt_lock_publish(t, f.f_id, &w) >= 0)
			(void)nt_lock_free(t, f.f_id);
		(void)nt_lock_find(t, id, i, NT_FH_FLOCK, &f);
		(void)nt_lock_free(t, id);
	}
	nt_session_set(t, &ss);
}

/* Names read back from a corrupted table are still names a reopen can use:
 * no '/', no "." or "..", NUL-terminated within NT_NAME_MAX. */
static void names_stay_usable(struct nt_table *t)
{
	char name[NT_NAME_MAX + 1];
	uint64_t parent;

	for (uint64_t slot = 2; slot < 4096; slot++)
		for (uint64_t gen = 0; gen < 4; gen++) {
			memset(name, 'x', sizeof(name));
			if (nt_node_name(t, gen << NT_SLOT_BITS | slot, &parent, name) < 0)
				continue;
			cr_assert_leq(strnlen(name, sizeof(name)), NT_NAME_MAX);
			cr_assert_null(strchr(name, '/'), "name '%s'", name);
			cr_assert(strcmp(name, ".") && strcmp(name, ".."), "name '%s'", name);
			cr_assert_neq(parent, 0);
		}
}

Test(node_table, table_full_of_garbage_gives_answers_and_reset_repairs_it, .timeout = 120)
{
	struct nt_lockwatch *lw = nt_lockwatch_map(memfd);
	struct nt_node n;
	uint32_t word, acq;
	bool created;

	cr_assert_not_null(lw);
	for (uint32_t round = 1; round <= 8; round++) {
		/* something real to corrupt first */
		for (uint64_t i = 0; i < 200; i++)
			cr_assert_eq(
			    nt_node_ref_named(nt, 9, i, S_IFREG, 1, NT_ROOT_ID, "f", &n, &created),
			    0);
		nt_test_scribble(nt, round * 0x9e3779b9u);
		/* the scribbler leaves the lock word naming nobody: the parent's
		 * watch releases it */
		nt_lockwatch_sample(lw, &word, &acq);
		cr_assert_neq(word, 0);
		cr_assert_eq(nt_lock_holder(word), -1, "round %u: word %#x", round, word);
		cr_assert(nt_lockwatch_release(lw, word));
		use_everything(nt, round);
		names_stay_usable(nt);
		/* a DESTROY or re-INIT puts it right */
		nt_reset(nt);
		cr_assert_eq(nt_node_get(nt, NT_ROOT_ID, &n), 0, "round %u: no root", round);
		cr_assert_eq(nt_node_ref(nt, 1234, round, S_IFREG, 1, &n, &created), 0);
		cr_assert(created);
		cr_assert_eq(nt_node_get(nt, n.n_id, &n), 0);
		cr_assert_eq(n.n_nlookup, 1);
	}
	nt_lockwatch_unmap(lw);
}

/* The garbage arrives while we use the table, without the lock, as a
 * compromised worker would write it: every value is read once and checked,
 * so nothing can change between the check and the use. */
Test(node_table, garbage_written_during_use_never_makes_an_access_stray, .timeout = 120)
{
	uint64_t end = bh_now_ns() + 3000000000ull;
	uint32_t round = 0;
	pid_t pid;
	int st;

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct nt_table *c = nt_map(memfd);
		struct nt_lockwatch *lw = nt_lockwatch_map(memfd);
		uint32_t word, acq;
		if (!c || !lw)
			_exit(2);
		for (uint32_t r = 1; bh_now_ns() < end; r++) {
			nt_test_scribble(c, r);
			/* as the parent would, sooner */
			nt_lockwatch_sample(lw, &word, &acq);
			nt_lockwatch_release(lw, word);
		}
		_exit(0);
	}
	while (bh_now_ns() < end)
		use_everything(nt, ++round);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_log_info("%u rounds of calls against a scribbler", round);
	cr_assert_gt(round, 0);
}
