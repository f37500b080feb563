/*
 * test_node_table.c - the shared node table: id scheme, generation checks,
 * reset, file handles, the robust lock and sharing across processes.
 * Built with NT_TEST_HOOKS (a lock accessor for the robust-lock test).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node_table.h"

void nt_test_lock(struct nt_table *t);
void nt_test_unlock(struct nt_table *t);

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

Test(node_table, lock_held_by_a_dead_process_is_recovered)
{
	struct nt_node n;
	bool created;
	pid_t pid;
	int st;

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct nt_table *c = nt_map(memfd);
		if (!c)
			_exit(2);
		nt_test_lock(c);
		_exit(0); /* dies holding it */
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_eq(nt_node_ref(nt, 5, 6, S_IFDIR, 2, &n, &created), 0);
	cr_assert(created);
	cr_assert_eq(nt_node_get(nt, n.n_id, &n), 0);
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
