/*
 * test_hostile.c - bulkheadd under attack: corrupt rings (a descriptor loop,
 * an address outside guest memory, avail idx jumping past the queue size),
 * a worker sending garbage to the parent, and a stopped parent that must
 * not stall the data path. Runs in: the test process; bulkheadd is a child.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itest.h"

static void hostile_setup(void)
{
	it_setup_q3();
	cr_assert_eq(it_up_init(it_fe), 0, "INIT failed");
}

TestSuite(hostile, .init = hostile_setup, .fini = it_teardown, .timeout = 60);

/* q2 broke: ERR fired, nothing was completed, q1 and new sessions work. */
static void expect_queue_broken_others_fine(uint16_t used_before)
{
	struct pollfd p = {vufe_err_fd(it_fe, 2), POLLIN, 0};

	cr_expect_eq(poll(&p, 1, 5000), 1, "the ERR eventfd was not signalled");
	usleep(100000);
	cr_expect_eq(vufe_used_idx(it_fe, 2), used_before, "a corrupt chain got a used entry");
	cr_expect(hx_alive(&it_d), "the daemon died");
	cr_expect_neq(it_lookup(it_fe, 1, "small.txt"), 0, "queue 1 stopped working");
	vufe_disconnect(it_fe);
	it_next_front_end_served();
}

ITEST(hostile, descriptor_loop_gets_no_used_entry_and_signals_err)
{
	cr_assert_neq(it_lookup(it_fe, 2, "small.txt"), 0);
	cr_assert_geq(vufe_submit_loop(it_fe, 2), 0);
	expect_queue_broken_others_fine(1);
}

ITEST(hostile, address_outside_guest_memory_gets_no_used_entry_and_signals_err)
{
	cr_assert_neq(it_lookup(it_fe, 2, "small.txt"), 0);
	cr_assert_geq(vufe_submit_bad_addr(it_fe, 2), 0);
	expect_queue_broken_others_fine(1);
}

ITEST(hostile, avail_idx_jump_beyond_queue_size_signals_err)
{
	cr_assert_neq(it_lookup(it_fe, 2, "small.txt"), 0);
	vufe_avail_jump(it_fe, 2);
	expect_queue_broken_others_fine(1);
}

ITEST(hostile, worker_sending_garbage_is_killed_and_daemon_keeps_serving)
{
	static const char garbage[] = "\xff\xff\xff\x7fnot an ipc message";
	pid_t kids[32];
	int n = hx_children(it_d.hd_pid, kids, 32), pidfd, sock;
	char death[64];

	cr_assert_gt(n, 0, "no workers");
	/* whichever queue it serves, this worker and no other is killed */
	snprintf(death, sizeof(death), "(pid %d) " IT_KILLED, (int)kids[0]);
	it_expect_worker_death(-1, death);
	pidfd = pidfd_open(kids[0], 0);
	cr_assert_geq(pidfd, 0, "pidfd_open: %s", strerror(errno));
	sock = pidfd_getfd(pidfd, 3, 0);
	cr_assert_geq(sock, 0, "pidfd_getfd: %s", strerror(errno));
	cr_assert_eq(send(sock, garbage, sizeof(garbage), MSG_NOSIGNAL), (ssize_t)sizeof(garbage));
	close(sock);
	for (int i = 0; i < 250; i++) {
		char s = hx_proc_state(kids[0]);
		if (s == 0 || s == 'Z' || s == 'X')
			break;
		usleep(20000);
	}
	{
		char s = hx_proc_state(kids[0]);
		cr_expect(s == 0 || s == 'Z' || s == 'X', "the worker survived (state %c)", s);
	}
	close(pidfd);
	cr_expect(hx_alive(&it_d), "the daemon died");
	cr_expect(hx_log_contains(&it_d, "sent a malformed message (bad framing), killing it"),
		  "the parent did not say why it killed the worker");
	vufe_disconnect(it_fe);
	it_next_front_end_served();
}

/* The fixture itself: a worker killed behind the test's back fails the check
 * that ends every test, until the test declares exactly that death. */
Test(hostile, undeclared_worker_death_fails_the_fixture_check)
{
	pid_t kids[32];
	int n = hx_children(it_d.hd_pid, kids, 32);
	char death[64], why[1100];

	cr_assert_gt(n, 0, "no workers");
	snprintf(death, sizeof(death), "(pid %d) " IT_KILLED, (int)kids[0]);
	cr_assert_eq(kill(kids[0], SIGKILL), 0);
	cr_assert(hx_wait_log(&it_d, death, 5000), "the parent did not log the death");
	vufe_free(it_fe);
	it_fe = NULL;
	cr_assert_eq(hx_stop(&it_d, 5000), 0);
	cr_expect_eq(hx_check_workers(&it_d, why, sizeof(why)), -1, "an undeclared death passed");
	cr_expect(strstr(why, "unexpected: ") && strstr(why, death), "%s", why);
	/* declared, but another death that never came: still a failure */
	cr_assert_eq(hx_expect_worker_death(&it_d, -1, "exited with status 3"), 0);
	cr_assert_eq(hx_expect_worker_death(&it_d, -1, death), 0);
	cr_expect_eq(hx_check_workers(&it_d, why, sizeof(why)), -1, "an unmet declaration passed");
	cr_expect(strstr(why, "exited with status 3"), "%s", why);
	/* exactly what happened: the check passes */
	memset(it_d.hd_expect, 0, sizeof(it_d.hd_expect));
	it_d.hd_nexpect = 0;
	cr_assert_eq(hx_expect_worker_death(&it_d, -1, death), 0);
	cr_expect_eq(hx_check_workers(&it_d, why, sizeof(why)), 0, "%s", why);
}

ITEST(hostile, stopped_parent_does_not_stall_the_data_path)
{
	struct fuse_attr_out a;
	uint64_t nid, fh;
	char buf[32];
	uint32_t n;

	cr_assert_eq(kill(it_d.hd_pid, SIGSTOP), 0);
	for (int i = 0; i < 100 && hx_proc_state(it_d.hd_pid) != 'T'; i++)
		usleep(10000);
	cr_assert_eq(hx_proc_state(it_d.hd_pid), 'T');
	nid = it_lookup(it_fe, 1, "small.txt");
	cr_expect_neq(nid, 0);
	cr_expect_eq(vufe_fuse_getattr(it_fe, 1, nid, &a), 0);
	cr_expect_eq(vufe_fuse_open(it_fe, 1, nid, O_RDONLY, &fh), 0);
	cr_expect_eq(vufe_fuse_read(it_fe, 1, nid, fh, 0, sizeof(buf), buf, &n, 0), 0);
	cr_expect_eq(n, 15);
	kill(it_d.hd_pid, SIGCONT);
}
