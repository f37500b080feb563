/*
 * test_fuse_locks.c - GETLK/SETLK/SETLKW and flock through bulkheadd, from
 * the test front end against the real daemon (default sandbox,
 * --seccomp=kill): conflicts between guest lock owners, between two daemons
 * sharing a directory and against a host process (OFD locks taken in this
 * process), SETLKW waiting without blocking the queue, SETLKW ended by a
 * ring stop, release on FLUSH/RELEASE, and locks seen across request queues.
 * Runs in: the test process as root; bulkheadd is a child.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "itest.h"
#include "util.h"

#define Q1     1
#define Q2     2
#define LK_EOF ((uint64_t)INT64_MAX)

static uint64_t lk_node, lk_fh;

static void lk_setup(void)
{
	it_start(NULL, 3);
	lk_node = it_lookup(it_fe, Q1, "small.txt");
	cr_assert_neq(lk_node, 0);
	cr_assert_eq(vufe_fuse_open(it_fe, Q1, lk_node, O_RDWR, &lk_fh), 0);
}

TestSuite(flocks, .init = lk_setup, .fini = it_teardown, .timeout = 60);

static void lk_in(struct fuse_lk_in *in, uint64_t fh, uint64_t owner, uint32_t type, uint64_t start,
		  uint64_t end, bool flock)
{
	memset(in, 0, sizeof(*in));
	in->fh = fh;
	in->owner = owner;
	in->lk.type = type;
	in->lk.start = start;
	in->lk.end = end;
	in->lk_flags = flock ? FUSE_LK_FLOCK : 0;
}

static int setlk(struct vufe *fe, unsigned q, uint64_t node, uint64_t fh, uint64_t owner,
		 uint32_t type, uint64_t start, uint64_t end, bool flock)
{
	struct fuse_lk_in in;

	lk_in(&in, fh, owner, type, start, end, flock);
	return vufe_fuse(fe, q, FUSE_SETLK, node, &in, sizeof(in), NULL, 0, NULL, 0, NULL, 0);
}

static int getlk(unsigned q, uint64_t owner, uint32_t type, uint64_t start, uint64_t end,
		 struct fuse_file_lock *out)
{
	struct fuse_lk_in in;
	struct fuse_lk_out o;
	uint32_t n = 0;
	int r;

	lk_in(&in, lk_fh, owner, type, start, end, false);
	r = vufe_fuse(it_fe, q, FUSE_GETLK, lk_node, &in, sizeof(in), NULL, 0, &o, sizeof(o), &n,
		      0);
	if (r == 0) {
		cr_assert_eq(n, sizeof(o));
		*out = o.lk;
	}
	return r;
}

/* SETLKW submitted without waiting for its reply. */
static struct vufe_call *setlkw_start(unsigned q, uint64_t owner, uint32_t type)
{
	struct vufe_call *c = vufe_call_new(it_fe, sizeof(struct fuse_lk_in), 16);
	struct fuse_lk_in in;

	cr_assert(c);
	lk_in(&in, lk_fh, owner, type, 0, LK_EOF, false);
	cr_assert_eq(vufe_call_prep(it_fe, c, FUSE_SETLKW, lk_node, &in, sizeof(in), NULL, 0,
				    sizeof(struct fuse_out_header)),
		     0);
	cr_assert_eq(vufe_call_submit(it_fe, q, c, 0), 0);
	return c;
}

/* A host process's OFD lock on the shared file. */
static int host_lock(int fd, short type)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET};

	return fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

static int host_open(void)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/small.txt", it_share);
	fd = open(p, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	return fd;
}

ITEST(flocks, setlk_conflicts_between_two_guest_owners)
{
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_WRLCK, 0, 99, false), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 2, F_WRLCK, 50, 60, false), -EAGAIN);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 2, F_RDLCK, 50, 60, false), -EAGAIN);
	/* beyond the held range, and the holder's own re-lock */
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 2, F_WRLCK, 100, 200, false), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_RDLCK, 0, 99, false), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 2, F_RDLCK, 50, 60, false), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_UNLCK, 0, LK_EOF, false), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 2, F_WRLCK, 0, 60, false), 0);
}

ITEST(flocks, setlk_rejects_inverted_range_and_bad_type)
{
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_WRLCK, 10, 9, false), -EINVAL);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, 77, 0, 9, false), -EINVAL);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_WRLCK, 0, UINT64_MAX, false), -EINVAL);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh + 1000, 1, F_WRLCK, 0, 9, false), -EBADF);
}

ITEST(flocks, getlk_reports_the_conflicting_range)
{
	struct fuse_file_lock l;

	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_WRLCK, 10, 19, false), 0);
	cr_assert_eq(getlk(Q1, 2, F_RDLCK, 0, LK_EOF, &l), 0);
	cr_assert_eq(l.type, F_WRLCK);
	cr_assert_eq(l.start, 10);
	cr_assert_eq(l.end, 19);
	cr_assert_eq(l.pid, 0);
	/* the holder itself sees no conflict */
	cr_assert_eq(getlk(Q1, 1, F_WRLCK, 0, LK_EOF, &l), 0);
	cr_assert_eq(l.type, F_UNLCK);
	/* nor does anyone outside the range */
	cr_assert_eq(getlk(Q1, 2, F_WRLCK, 20, LK_EOF, &l), 0);
	cr_assert_eq(l.type, F_UNLCK);
}

ITEST(flocks, setlk_excludes_and_is_excluded_by_a_host_process)
{
	int fd = host_open();

	cr_assert_eq(host_lock(fd, F_WRLCK), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_RDLCK, 0, 0, false), -EAGAIN);
	cr_assert_eq(host_lock(fd, F_UNLCK), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_RDLCK, 0, 0, false), 0);
	cr_assert_eq(host_lock(fd, F_WRLCK), -EAGAIN);
	cr_assert_eq(host_lock(fd, F_RDLCK), 0, "shared locks coexist");
	close(fd);
}

ITEST(flocks, setlkw_waits_for_the_host_while_the_queue_keeps_serving)
{
	struct fuse_attr_out a;
	struct vufe_call *c;
	uint64_t t0;
	int fd = host_open();

	cr_assert_eq(host_lock(fd, F_WRLCK), 0);
	c = setlkw_start(Q1, 7, F_WRLCK);
	cr_assert_eq(vufe_call_wait(it_fe, c, 300), -ETIMEDOUT, "SETLKW did not wait");
	/* same queue, meanwhile */
	cr_assert_eq(vufe_fuse_getattr(it_fe, Q1, lk_node, &a), 0);
	cr_assert_eq(a.attr.size, 15);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 8, F_RDLCK, 0, 0, false), -EAGAIN);
	t0 = bh_now_ns();
	cr_assert_eq(host_lock(fd, F_UNLCK), 0);
	cr_assert_eq(vufe_call_wait(it_fe, c, 3000), 0);
	cr_assert_eq(vufe_call_result(c), 0);
	cr_assert_lt(bh_now_ns() - t0, 1000000000ull, "waiter slow to notice the release");
	vufe_call_free(it_fe, c);
	cr_assert_eq(host_lock(fd, F_RDLCK), -EAGAIN, "the guest holds the lock now");
	close(fd);
}

/* A SETLKW cannot hold up GET_VRING_BASE past the drain bound; the
 * waiter gets an error and the worker serves the restarted ring. */
ITEST(flocks, setlkw_is_ended_with_an_error_by_ring_stop)
{
	struct vufe_call *c;
	uint64_t t0, ms;
	int fd = host_open();

	cr_assert_eq(host_lock(fd, F_WRLCK), 0);
	c = setlkw_start(Q1, 7, F_WRLCK);
	cr_assert_eq(vufe_call_wait(it_fe, c, 200), -ETIMEDOUT);
	t0 = bh_now_ns();
	cr_assert_eq(vufe_stop(it_fe, NULL), 0);
	ms = (bh_now_ns() - t0) / 1000000;
	/* at once, not after the 5 s bound on draining in-flight requests */
	cr_assert_lt(ms, 1000, "stop took %llu ms", (unsigned long long)ms);
	cr_assert_eq(vufe_call_wait(it_fe, c, 1000), 0);
	cr_assert_eq(vufe_call_result(c), -EIO);
	vufe_call_free(it_fe, c);
	/* the lock was not taken behind the guest's back */
	cr_assert_eq(host_lock(fd, F_UNLCK), 0);
	usleep(300 * 1000);
	cr_assert_eq(host_lock(fd, F_WRLCK), 0);
	cr_assert_eq(vufe_start(it_fe, 0), 0);
	cr_assert_neq(it_lookup(it_fe, Q1, "empty"), 0, "worker serves after the restart");
	close(fd);
}

/* DESTROY (the guest unmounts, or reboots and INITs again) ends waits. */
ITEST(flocks, setlkw_is_ended_with_an_error_by_session_reset)
{
	struct vufe_call *c;
	int fd = host_open();

	cr_assert_eq(host_lock(fd, F_WRLCK), 0);
	c = setlkw_start(Q1, 7, F_WRLCK);
	cr_assert_eq(vufe_call_wait(it_fe, c, 200), -ETIMEDOUT);
	cr_assert_eq(vufe_fuse_destroy(it_fe, Q1), 0);
	cr_assert_eq(vufe_call_wait(it_fe, c, 1000), 0, "the waiter outlived the session");
	cr_assert_eq(vufe_call_result(c), -EIO);
	vufe_call_free(it_fe, c);
	cr_assert_eq(host_lock(fd, F_UNLCK), 0);
	usleep(300 * 1000);
	cr_assert_eq(host_lock(fd, F_WRLCK), 0, "the cancelled waiter took the lock");
	close(fd);
}

ITEST(flocks, flock_is_exclusive_or_shared)
{
	uint64_t fh2;

	cr_assert_eq(vufe_fuse_open(it_fe, Q1, lk_node, O_RDONLY, &fh2), 0);
	/* owners are open files for flock; a read-only one may still LOCK_EX */
	cr_assert_eq(setlk(it_fe, Q1, lk_node, fh2, 0xa, F_WRLCK, 0, LK_EOF, true), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 0xb, F_RDLCK, 0, LK_EOF, true), -EAGAIN);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, fh2, 0xa, F_RDLCK, 0, LK_EOF, true), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 0xb, F_RDLCK, 0, LK_EOF, true), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 0xb, F_WRLCK, 0, LK_EOF, true), -EAGAIN);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, fh2, 0xa, F_UNLCK, 0, LK_EOF, true), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 0xb, F_WRLCK, 0, LK_EOF, true), 0);
}

/* As on a local Linux file system, POSIX locks and flock()s live side by
 * side: a whole-file write lock of one kind does not stop the other, in the
 * guest or on the host. */
ITEST(flocks, posix_locks_and_flocks_do_not_see_each_other)
{
	int fd = host_open();

	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 0xa, F_WRLCK, 0, LK_EOF, false), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 0xb, F_WRLCK, 0, LK_EOF, true), 0);
	/* each still excludes its own kind */
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 0xc, F_RDLCK, 0, LK_EOF, false), -EAGAIN);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 0xc, F_RDLCK, 0, LK_EOF, true), -EAGAIN);
	/* a host process sees the guest's flock() as a flock() */
	cr_assert_eq(flock(fd, LOCK_SH | LOCK_NB), -1);
	cr_assert_eq(errno, EWOULDBLOCK);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 0xb, F_UNLCK, 0, LK_EOF, true), 0);
	cr_assert_eq(flock(fd, LOCK_SH | LOCK_NB), 0);
	close(fd);
}

ITEST(flocks, locks_go_on_flush_and_on_release_with_flock_unlock)
{
	struct fuse_flush_in fl = {.fh = lk_fh, .lock_owner = 1};
	struct fuse_release_in rl;
	uint64_t fh2;

	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_WRLCK, 0, LK_EOF, false), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 2, F_WRLCK, 0, 0, false), -EAGAIN);
	/* a FLUSH for another owner leaves it */
	fl.lock_owner = 3;
	cr_assert_eq(
	    vufe_fuse(it_fe, Q1, FUSE_FLUSH, lk_node, &fl, sizeof(fl), NULL, 0, NULL, 0, NULL, 0),
	    0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 2, F_WRLCK, 0, 0, false), -EAGAIN);
	fl.lock_owner = 1;
	cr_assert_eq(
	    vufe_fuse(it_fe, Q1, FUSE_FLUSH, lk_node, &fl, sizeof(fl), NULL, 0, NULL, 0, NULL, 0),
	    0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 2, F_WRLCK, 0, 0, false), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 2, F_UNLCK, 0, LK_EOF, false), 0);

	cr_assert_eq(vufe_fuse_open(it_fe, Q1, lk_node, O_RDWR, &fh2), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, fh2, 0xf2, F_WRLCK, 0, LK_EOF, true), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 0xf1, F_WRLCK, 0, LK_EOF, true), -EAGAIN);
	memset(&rl, 0, sizeof(rl));
	rl.fh = fh2;
	rl.flags = O_RDWR;
	rl.release_flags = FUSE_RELEASE_FLOCK_UNLOCK;
	rl.lock_owner = 0xf2;
	cr_assert_eq(
	    vufe_fuse(it_fe, Q1, FUSE_RELEASE, lk_node, &rl, sizeof(rl), NULL, 0, NULL, 0, NULL, 0),
	    0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 0xf1, F_WRLCK, 0, LK_EOF, true), 0);
}

ITEST(flocks, lock_taken_on_one_queue_is_seen_on_another)
{
	struct fuse_file_lock l;

	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_WRLCK, 5, 9, false), 0);
	cr_assert_eq(setlk(it_fe, Q2, lk_node, lk_fh, 2, F_WRLCK, 0, LK_EOF, false), -EAGAIN);
	cr_assert_eq(getlk(Q2, 2, F_WRLCK, 0, LK_EOF, &l), 0);
	cr_assert_eq(l.type, F_WRLCK);
	cr_assert_eq(l.start, 5);
	cr_assert_eq(l.end, 9);
	cr_assert_eq(setlk(it_fe, Q2, lk_node, lk_fh, 2, F_WRLCK, 10, 20, false), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_WRLCK, 15, 15, false), -EAGAIN);
}

/* One lock owner is one owner on every queue: what it locks on Q1 it
 * extends and unlocks on Q2 (a 6.11+ guest's process moved to another CPU),
 * never conflicting with itself, and the unlock really frees the range. */
ITEST(flocks, one_owner_locks_on_one_queue_and_unlocks_on_another)
{
	struct fuse_file_lock l;
	int fd = host_open();

	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_WRLCK, 0, 9, false), 0);
	/* the same owner on Q2: its own lock, no conflict; a read lock
	 * converts the range as it would locally */
	cr_assert_eq(setlk(it_fe, Q2, lk_node, lk_fh, 1, F_WRLCK, 5, 19, false), 0);
	cr_assert_eq(setlk(it_fe, Q2, lk_node, lk_fh, 2, F_RDLCK, 15, 15, false), -EAGAIN);
	cr_assert_eq(getlk(Q2, 1, F_WRLCK, 0, LK_EOF, &l), 0);
	cr_assert_eq(l.type, F_UNLCK, "an owner's own locks are no conflict");
	/* unlock everything on Q2: the description goes device-wide */
	cr_assert_eq(setlk(it_fe, Q2, lk_node, lk_fh, 1, F_UNLCK, 0, LK_EOF, false), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 2, F_WRLCK, 0, 19, false), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 2, F_UNLCK, 0, LK_EOF, false), 0);
	cr_assert_eq(host_lock(fd, F_WRLCK), 0, "a lock survived the unlock on the other queue");
	cr_assert_eq(host_lock(fd, F_UNLCK), 0);
	close(fd);
}

/* FLUSH (the guest's close()) and flock's RELEASE on another queue than
 * the lock's drop it; a SETLKW of a known owner waits on another queue. */
ITEST(flocks, flush_and_waits_reach_an_owners_lock_from_any_queue)
{
	struct fuse_flush_in fl = {.fh = lk_fh, .lock_owner = 1};
	struct fuse_file_lock l;
	struct vufe_call *c;
	int fd = host_open();

	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_WRLCK, 0, LK_EOF, false), 0);
	cr_assert_eq(host_lock(fd, F_RDLCK), -EAGAIN);
	cr_assert_eq(vufe_fuse(it_fe, Q2, FUSE_FLUSH, lk_node, &fl, sizeof(fl), NULL, 0, NULL, 0,
			       NULL, 0),
		     0);
	cr_assert_eq(host_lock(fd, F_WRLCK), 0, "FLUSH on Q2 left the Q1 lock");

	/* owner 7's description is made on Q1 (GETLK), its SETLKW waits on Q2 */
	cr_assert_eq(getlk(Q1, 7, F_WRLCK, 0, LK_EOF, &l), 0);
	cr_assert_eq(l.type, F_WRLCK, "the host's lock");
	c = setlkw_start(Q2, 7, F_WRLCK);
	cr_assert_eq(vufe_call_wait(it_fe, c, 200), -ETIMEDOUT);
	cr_assert_eq(host_lock(fd, F_UNLCK), 0);
	cr_assert_eq(vufe_call_wait(it_fe, c, 2000), 0, "the waiter on Q2 missed the unlock");
	cr_assert_eq(vufe_call_result(c), 0);
	vufe_call_free(it_fe, c);
	cr_assert_eq(host_lock(fd, F_RDLCK), -EAGAIN, "the lock taken on Q2 is not held");
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 7, F_UNLCK, 0, LK_EOF, false), 0);
	cr_assert_eq(host_lock(fd, F_WRLCK), 0);
	close(fd);
}

#ifndef IT_BACKEND_MEMORY
/* Passthrough only: two daemons share a host directory; a memory
 * share belongs to one daemon. */
ITEST(flocks, two_daemons_on_one_directory_exclude_each_other)
{
	struct hx_daemon d2;
	struct vufe_opts o;
	struct vufe *fe2;
	uint64_t node2, fh2;

	memset(&d2, 0, sizeof(d2));
	cr_assert_eq(hx_start_bulkheadd(&d2, it_share, NULL), 0, "second bulkheadd");
	vufe_opts_default(&o);
	fe2 = vufe_new(&o);
	cr_assert(fe2);
	cr_assert_eq(vufe_connect(fe2, d2.hd_sock, 5000), 0);
	cr_assert_eq(it_up_init(fe2), 0);
	node2 = it_lookup(fe2, Q1, "small.txt");
	cr_assert_neq(node2, 0);
	cr_assert_eq(vufe_fuse_open(fe2, Q1, node2, O_RDWR, &fh2), 0);

	/* the same owner number in two guests is two owners */
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_WRLCK, 0, 9, false), 0);
	cr_assert_eq(setlk(fe2, Q1, node2, fh2, 1, F_RDLCK, 0, 0, false), -EAGAIN);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_UNLCK, 0, LK_EOF, false), 0);
	cr_assert_eq(setlk(fe2, Q1, node2, fh2, 1, F_RDLCK, 0, 0, false), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 1, F_WRLCK, 0, 9, false), -EAGAIN);
	/* flock()s too */
	cr_assert_eq(setlk(fe2, Q1, node2, fh2, 2, F_WRLCK, 0, LK_EOF, true), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 2, F_RDLCK, 0, LK_EOF, true), -EAGAIN);
	cr_assert_eq(setlk(fe2, Q1, node2, fh2, 2, F_UNLCK, 0, LK_EOF, true), 0);
	cr_assert_eq(setlk(it_fe, Q1, lk_node, lk_fh, 2, F_RDLCK, 0, LK_EOF, true), 0);

	vufe_free(fe2);
	it_stop_daemon_ok(&d2);
	hx_cleanup(&d2);
}
#endif

/* The front end goes away (QEMU killed) while a SETLKW waits: the daemon
 * still stops cleanly and in time on SIGTERM. */
Test(flocks, daemon_stops_cleanly_with_a_setlkw_waiting)
{
	struct vufe_call *c;
	uint64_t t0;
	int fd = host_open(), fd2;

	cr_assert_eq(host_lock(fd, F_WRLCK), 0);
	c = setlkw_start(Q1, 7, F_WRLCK);
	cr_assert_eq(vufe_call_wait(it_fe, c, 200), -ETIMEDOUT);
	/* in flight: its buffers go with the front end; the host lock stays */
	t0 = bh_now_ns();
	it_stop_ok();
	cr_assert_lt(bh_now_ns() - t0, 5000000000ull);
	fd2 = host_open();
	cr_assert_eq(host_lock(fd2, F_RDLCK), -EAGAIN, "the host lock was kept throughout");
	close(fd2);
	close(fd);
}
