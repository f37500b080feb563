/*
 * test_ipc.c - parent/worker IPC framing (common/ipc.c) over real
 * SOCK_SEQPACKET socketpairs: round trips with descriptors, and every way a
 * datagram can be malformed, with the descriptors it carried closed.
 * Runs in: the test process only.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc.h"
#include "util.h"

static int sp[2] = {-1, -1};
static struct ipc_msg msg;

static void setup(void)
{
	cr_assert_eq(ipc_socketpair(sp), 0);
}

static void teardown(void)
{
	for (int i = 0; i < 2; i++)
		if (sp[i] >= 0)
			close(sp[i]);
	sp[0] = sp[1] = -1;
}

TestSuite(ipc, .init = setup, .fini = teardown);

static int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* Send a hand-made datagram: a header that may lie, and any descriptors. */
static void send_raw(const struct ipc_hdr *h, const void *data, size_t len, const int *fds,
		     size_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} u;
	struct iovec iov[2] = {{(void *)h, h ? sizeof(*h) : 0}, {(void *)data, len}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};

	if (nfds) {
		struct cmsghdr *c;
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	cr_assert_geq(sendmsg(sp[1], &mh, MSG_NOSIGNAL), 0, "sendmsg: %s", strerror(errno));
}

Test(ipc, round_trip_carries_payload_seq_and_several_fds)
{
	struct {
		struct ipc_mem_table t;
		struct ipc_region r[3];
	} tbl = {{3, 0},
		 {{0, 0x1000, 0x7f00, 0}, {0x2000, 0x1000, 0x8f00, 0x2000}, {0x4000, 1, 2, 3}}};
	int efd[3];
	uint64_t one = 1, got = 0;

	for (int i = 0; i < 3; i++)
		efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cr_assert_eq(ipc_send(sp[1], IPC_MEM_TABLE, 42, &tbl, sizeof(tbl), efd, 3), 0);
	cr_assert_eq(ipc_recv(sp[0], &msg), 0);
	cr_expect_eq(msg.im_hdr.ih_type, IPC_MEM_TABLE);
	cr_expect_eq(msg.im_hdr.ih_seq, 42);
	cr_expect_eq(msg.im_hdr.ih_len, sizeof(tbl));
	cr_expect_eq(msg.im_hdr.ih_nfds, 3);
	cr_expect_eq(ipc_check(&msg, sizeof(tbl), 3), 0);
	cr_expect_eq(memcmp(msg.im_data, &tbl, sizeof(tbl)), 0);
	/* Descriptors arrive in order and refer to the same objects. */
	cr_assert_eq(write(msg.im_fds[2], &one, 8), 8);
	cr_assert_eq(read(efd[2], &got, 8), 8);
	cr_expect_eq(got, 1);
	cr_expect_eq(read(efd[0], &got, 8), -1, "fd order mixed up");
	ipc_close_fds(&msg);
	cr_expect_eq(msg.im_hdr.ih_nfds, 0);
	for (int i = 0; i < 3; i++)
		close(efd[i]);
}

Test(ipc, round_trip_without_payload)
{
	cr_assert_eq(ipc_send(sp[0], IPC_RING_STOP, 7, NULL, 0, NULL, 0), 0);
	cr_assert_eq(ipc_recv(sp[1], &msg), 0);
	cr_expect_eq(msg.im_hdr.ih_type, IPC_RING_STOP);
	cr_expect_eq(msg.im_hdr.ih_seq, 7);
	cr_expect_eq(ipc_check(&msg, 0, 0), 0);
}

/* An event callback whose readiness went stale must not block (the parent
 * once hung in a worker's callback after a request read the message). */
Test(ipc, try_recv_on_an_empty_blocking_socket_returns_eagain_at_once, .timeout = 5)
{
	cr_assert_eq(ipc_try_recv(sp[1], &msg), -EAGAIN);
	cr_assert_eq(ipc_send(sp[0], IPC_RING_STOP, 9, NULL, 0, NULL, 0), 0);
	cr_assert_eq(ipc_try_recv(sp[1], &msg), 0);
	cr_expect_eq(msg.im_hdr.ih_seq, 9);
	cr_assert_eq(ipc_try_recv(sp[1], &msg), -EAGAIN);
}

Test(ipc, recv_rejects_datagram_shorter_than_header)
{
	uint64_t half = 1;

	send_raw(NULL, &half, sizeof(half), NULL, 0);
	cr_expect_eq(ipc_recv(sp[0], &msg), -EBADMSG);
}

Test(ipc, recv_rejects_oversized_datagram)
{
	static uint8_t big[IPC_MAX_PAYLOAD + 1];
	struct ipc_hdr h = {IPC_NOTICE, sizeof(big), 0, 1};

	send_raw(&h, big, sizeof(big), NULL, 0);
	cr_expect_eq(ipc_recv(sp[0], &msg), -EBADMSG);
	/* The next datagram is read normally: the bad one is gone entirely. */
	cr_assert_eq(ipc_send(sp[1], IPC_RING_STOP, 2, NULL, 0, NULL, 0), 0);
	cr_expect_eq(ipc_recv(sp[0], &msg), 0);
	cr_expect_eq(msg.im_hdr.ih_seq, 2);
}

Test(ipc, recv_rejects_header_length_not_matching_datagram)
{
	struct ipc_hdr h = {IPC_ACK, 16, 0, 1};
	struct ipc_ack a = {1, 0};

	send_raw(&h, &a, sizeof(a), NULL, 0);
	cr_expect_eq(ipc_recv(sp[0], &msg), -EBADMSG);
}

Test(ipc, recv_rejects_wrong_fd_count_and_closes_them)
{
	struct ipc_hdr h = {IPC_PEER, sizeof(struct ipc_peer), 2, 1};
	struct ipc_peer p = {1, IPC_PEER_CLIENT};
	int efd = eventfd(0, EFD_CLOEXEC), before;

	send_raw(&h, &p, sizeof(p), &efd, 1); /* header claims 2 fds, 1 attached */
	before = count_open_fds();
	cr_expect_eq(ipc_recv(sp[0], &msg), -EBADMSG);
	cr_expect_eq(count_open_fds(), before, "the attached descriptor leaked");
	close(efd);
}

Test(ipc, recv_rejects_fds_on_a_header_claiming_none)
{
	struct ipc_hdr h = {IPC_RING_ENABLE, sizeof(struct ipc_ring_enable), 0, 1};
	struct ipc_ring_enable re = {1, 0};
	int efd[2] = {eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC)}, before;

	send_raw(&h, &re, sizeof(re), efd, 2);
	before = count_open_fds();
	cr_expect_eq(ipc_recv(sp[0], &msg), -EBADMSG);
	cr_expect_eq(count_open_fds(), before, "the attached descriptors leaked");
	close(efd[0]);
	close(efd[1]);
}

Test(ipc, recv_rejects_unknown_type)
{
	struct ipc_hdr h = {IPC_TYPE_MAX, 0, 0, 1};
	struct ipc_hdr none = {IPC_NONE, 0, 0, 1};
	struct ipc_hdr huge = {0xffffffffu, 0, 0, 1};

	send_raw(&h, NULL, 0, NULL, 0);
	cr_expect_eq(ipc_recv(sp[0], &msg), -EBADMSG);
	send_raw(&none, NULL, 0, NULL, 0);
	cr_expect_eq(ipc_recv(sp[0], &msg), -EBADMSG);
	send_raw(&huge, NULL, 0, NULL, 0);
	cr_expect_eq(ipc_recv(sp[0], &msg), -EBADMSG);
}

Test(ipc, recv_returns_epipe_on_eof)
{
	close(sp[1]);
	sp[1] = -1;
	cr_expect_eq(ipc_recv(sp[0], &msg), -EPIPE);
}

Test(ipc, recv_returns_eagain_when_nothing_is_queued)
{
	cr_assert_eq(bh_set_nonblock(sp[0], 1), 0);
	cr_expect_eq(ipc_recv(sp[0], &msg), -EAGAIN);
}

Test(ipc, send_refuses_oversized_payload_and_too_many_fds)
{
	static uint8_t big[IPC_MAX_PAYLOAD + 1];
	int fds[IPC_MAX_FDS + 1];

	for (int i = 0; i <= IPC_MAX_FDS; i++)
		fds[i] = 0;
	cr_expect_eq(ipc_send(sp[0], IPC_NOTICE, 1, big, sizeof(big), NULL, 0), -EMSGSIZE);
	cr_expect_eq(ipc_send(sp[0], IPC_MEM_TABLE, 1, NULL, 0, fds, IPC_MAX_FDS + 1), -EMSGSIZE);
}

Test(ipc, send_reports_a_closed_peer)
{
	close(sp[1]);
	sp[1] = -1;
	cr_expect_eq(ipc_send(sp[0], IPC_RING_STOP, 1, NULL, 0, NULL, 0), -EPIPE);
}

Test(ipc, check_requires_exact_length_and_fd_count)
{
	struct ipc_ack a = {5, 0};
	int efd = eventfd(0, EFD_CLOEXEC);

	cr_assert_eq(ipc_send(sp[1], IPC_ACK, 5, &a, sizeof(a), &efd, 1), 0);
	cr_assert_eq(ipc_recv(sp[0], &msg), 0);
	cr_expect_eq(ipc_check(&msg, sizeof(a), 0), -EBADMSG);
	cr_expect_eq(ipc_check(&msg, sizeof(a) + 1, 1), -EBADMSG);
	cr_expect_eq(ipc_check(&msg, sizeof(a), 1), 0);
	ipc_close_fds(&msg);
	close(efd);
}

Test(ipc, full_fd_table_fits_in_one_message)
{
	int efd = eventfd(0, EFD_CLOEXEC), fds[IPC_MAX_FDS];

	for (int i = 0; i < IPC_MAX_FDS; i++)
		fds[i] = efd;
	cr_assert_eq(ipc_send(sp[1], IPC_MEM_TABLE, 1, NULL, 0, fds, IPC_MAX_FDS), 0);
	cr_assert_eq(ipc_recv(sp[0], &msg), 0);
	cr_expect_eq(msg.im_hdr.ih_nfds, IPC_MAX_FDS);
	ipc_close_fds(&msg);
	close(efd);
}

Test(ipc, type_names_cover_known_and_unknown_types)
{
	cr_expect_str_eq(ipc_type_name(IPC_RING_STOPPED), "RING_STOPPED");
	cr_expect_str_eq(ipc_type_name(IPC_TYPE_MAX), "UNKNOWN");
}
