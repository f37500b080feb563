/*
 * test_vhost_user.c - the vhost-user codec (common/vhost_user.c) over real
 * stream socketpairs: framing, per-request layout checks, descriptor
 * ownership on error, and the exact reply framing QEMU 7.2 insists on.
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

#include "vhost_user.h"

static int sp[2] = {-1, -1};

static void setup(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
}

static void teardown(void)
{
	if (sp[0] >= 0)
		close(sp[0]);
	if (sp[1] >= 0)
		close(sp[1]);
	sp[0] = sp[1] = -1;
}

TestSuite(vhost_user, .init = setup, .fini = teardown);

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
	return n - 1; /* the directory stream itself */
}

static void send_raw(const void *buf, size_t len)
{
	cr_assert_eq(write(sp[1], buf, len), (ssize_t)len);
}

static void send_hdr(uint32_t request, uint32_t flags, uint32_t size)
{
	struct vu_hdr h = {request, flags, size};
	send_raw(&h, sizeof(h));
}

static int recv_msg(struct vu_msg *m)
{
	memset(m, 0xa5, sizeof(*m));
	return vu_msg_recv(sp[0], m);
}

Test(vhost_user, recv_reads_payload_and_fds_of_mem_table)
{
	struct {
		uint32_t n, pad;
		struct vu_region r[2];
	} t = {
	    2, 0, {{0x0, 0xa0000, 0x7f0000000000, 0}, {0xc0000, 0x1000, 0x7f00000c0000, 0xc0000}}};
	int fds[2] = {eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC)};
	const char *why = NULL;
	struct vu_msg m;

	cr_assert_eq(vu_send_request(sp[1], VU_SET_MEM_TABLE, VU_VERSION | VU_FLAG_NEED_REPLY, &t,
				     sizeof(t), fds, 2),
		     0);
	cr_assert_eq(recv_msg(&m), 0);
	cr_expect_eq(m.hdr.request, VU_SET_MEM_TABLE);
	cr_expect_eq(m.hdr.flags, 0x9);
	cr_expect_eq(m.hdr.size, 72);
	cr_expect_eq(m.nfds, 2);
	cr_expect_eq(m.p.mem.nregions, 2);
	cr_expect_eq(m.p.mem.regions[1].gpa, 0xc0000);
	cr_expect_eq(m.p.mem.regions[1].mmap_offset, 0xc0000);
	cr_expect_eq(vu_msg_validate(&m, &why), 0, "why: %s", why);
	/* The received descriptors are new, working duplicates. */
	uint64_t one = 1, got = 0;
	cr_assert_eq(write(m.fds[1], &one, 8), 8);
	cr_assert_eq(read(fds[1], &got, 8), 8);
	cr_expect_eq(got, 1);
	vu_msg_close_fds(&m);
	close(fds[0]);
	close(fds[1]);
}

/* Payload size and descriptor count of every request the codec knows. */
struct layout_case {
	uint32_t req, size;
	size_t nfds;
	int ok;
};

static const struct layout_case layout_cases[] = {
    {VU_GET_FEATURES, 0, 0, 1},
    {VU_GET_FEATURES, 8, 0, 0},
    {VU_SET_FEATURES, 8, 0, 1},
    {VU_SET_FEATURES, 4, 0, 0},
    {VU_SET_FEATURES, 8, 1, 0},
    {VU_SET_OWNER, 0, 0, 1},
    {VU_SET_OWNER, 8, 0, 0},
    {VU_RESET_OWNER, 0, 0, 1},
    {VU_SET_LOG_BASE, 16, 1, 1},
    {VU_SET_LOG_BASE, 16, 0, 0},
    {VU_SET_LOG_FD, 0, 1, 1},
    {VU_SET_LOG_FD, 0, 0, 0},
    {VU_SET_VRING_NUM, 8, 0, 1},
    {VU_SET_VRING_NUM, 12, 0, 0},
    {VU_SET_VRING_ADDR, 40, 0, 1},
    {VU_SET_VRING_ADDR, 32, 0, 0},
    {VU_SET_VRING_BASE, 8, 0, 1},
    {VU_GET_VRING_BASE, 8, 0, 1},
    {VU_GET_VRING_BASE, 0, 0, 0},
    {VU_SET_VRING_KICK, 8, 1, 1},
    {VU_SET_VRING_CALL, 8, 1, 1},
    {VU_SET_VRING_ERR, 8, 1, 1},
    {VU_SET_VRING_CALL, 8, 2, 0},
    {VU_GET_PROTOCOL_FEATURES, 0, 0, 1},
    {VU_SET_PROTOCOL_FEATURES, 8, 0, 1},
    {VU_SET_PROTOCOL_FEATURES, 0, 0, 0},
    {VU_GET_QUEUE_NUM, 0, 0, 1},
    {VU_SET_VRING_ENABLE, 8, 0, 1},
    {VU_SET_VRING_ENABLE, 4, 0, 0},
    {VU_SET_BACKEND_REQ_FD, 0, 1, 1},
    {VU_SET_BACKEND_REQ_FD, 0, 0, 0},
    {VU_SET_VRING_ENDIAN, 8, 0, 1},
    {VU_RESET_DEVICE, 0, 0, 1},
    {VU_GET_MAX_MEM_SLOTS, 0, 0, 1},
    {VU_GET_MAX_MEM_SLOTS, 0, 1, 0},
    {VU_ADD_MEM_REG, 40, 1, 1},
    {VU_ADD_MEM_REG, 40, 0, 0},
    {VU_ADD_MEM_REG, 32, 1, 0},
    {VU_REM_MEM_REG, 40, 0, 1},
    {VU_REM_MEM_REG, 40, 1, 1},
    {VU_REM_MEM_REG, 40, 2, 0},
    {VU_SET_STATUS, 8, 0, 1},
    {VU_GET_STATUS, 0, 0, 1},
    {VU_IOTLB_MSG, 32, 0, 0},
    {VU_POSTCOPY_ADVISE, 0, 0, 0},
    {VU_GET_INFLIGHT_FD, 24, 0, 0},
    {VU_VRING_KICK, 8, 0, 0},
    {VU_CHECK_DEVICE_STATE, 0, 0, 0},
    {0, 0, 0, 0},
    {VU_REQUEST_MAX, 0, 0, 0},
    {1000, 0, 0, 0},
};

Test(vhost_user, validate_checks_size_and_fd_count_of_every_request)
{
	for (size_t i = 0; i < sizeof(layout_cases) / sizeof(layout_cases[0]); i++) {
		const struct layout_case *c = &layout_cases[i];
		struct vu_msg m;
		const char *why = NULL;

		memset(&m, 0, sizeof(m));
		m.hdr.request = c->req;
		m.hdr.flags = VU_VERSION;
		m.hdr.size = c->size;
		m.nfds = c->nfds;
		/* vring files: NOFD exactly when no descriptor comes with it */
		if (c->req == VU_SET_VRING_KICK || c->req == VU_SET_VRING_CALL ||
		    c->req == VU_SET_VRING_ERR)
			m.p.u64 = c->nfds ? 1 : VU_VRING_NOFD_MASK | 1;
		int r = vu_msg_validate(&m, &why);
		if (c->ok)
			cr_expect_eq(r, 0, "%s size %u fds %zu refused: %s",
				     vu_request_name(c->req), c->size, c->nfds, why);
		else
			cr_expect_eq(r, -EBADMSG, "%s (%u) size %u fds %zu accepted",
				     vu_request_name(c->req), c->req, c->size, c->nfds);
		if (!c->ok)
			cr_expect_not_null(why);
	}
}

Test(vhost_user, validate_rejects_reply_flag_on_request)
{
	struct vu_msg m = {.hdr = {VU_GET_FEATURES, VU_VERSION | VU_FLAG_REPLY, 0}};
	const char *why = NULL;

	cr_expect_eq(vu_msg_validate(&m, &why), -EBADMSG);
	cr_expect_not_null(why);
}

Test(vhost_user, recv_rejects_bad_version)
{
	struct vu_msg m;

	send_hdr(VU_GET_FEATURES, 0x2, 0);
	cr_expect_eq(recv_msg(&m), -EBADMSG);
}

Test(vhost_user, recv_rejects_reply_flag)
{
	struct vu_msg m;

	send_hdr(VU_GET_FEATURES, 0x5, 0);
	cr_expect_eq(recv_msg(&m), -EBADMSG);
}

Test(vhost_user, recv_rejects_unknown_flag_bits)
{
	struct vu_msg m;

	send_hdr(VU_GET_FEATURES, 0x11, 0);
	cr_expect_eq(recv_msg(&m), -EBADMSG);
}

Test(vhost_user, recv_rejects_oversized_payload)
{
	struct vu_msg m;

	send_hdr(VU_SET_MEM_TABLE, VU_VERSION, VU_MAX_PAYLOAD + 1);
	cr_expect_eq(recv_msg(&m), -EBADMSG);
}

Test(vhost_user, recv_rejects_short_payload)
{
	struct vu_msg m;
	uint32_t half = 7;

	send_hdr(VU_SET_FEATURES, VU_VERSION, 8);
	send_raw(&half, sizeof(half));
	close(sp[1]);
	sp[1] = -1;
	cr_expect_eq(recv_msg(&m), -EBADMSG);
}

Test(vhost_user, recv_rejects_truncated_header)
{
	struct vu_hdr h = {VU_GET_FEATURES, VU_VERSION, 0};
	struct vu_msg m;

	send_raw(&h, 6);
	close(sp[1]);
	sp[1] = -1;
	cr_expect_eq(recv_msg(&m), -EBADMSG);
}

Test(vhost_user, recv_returns_epipe_on_clean_eof)
{
	struct vu_msg m;

	close(sp[1]);
	sp[1] = -1;
	cr_expect_eq(recv_msg(&m), -EPIPE);
}

Test(vhost_user, recv_reads_back_to_back_messages)
{
	uint64_t v = 0x170000000ull;
	struct vu_msg m;

	cr_assert_eq(vu_send_request(sp[1], VU_SET_FEATURES, VU_VERSION, &v, 8, NULL, 0), 0);
	cr_assert_eq(vu_send_request(sp[1], VU_GET_FEATURES, VU_VERSION, NULL, 0, NULL, 0), 0);
	cr_assert_eq(recv_msg(&m), 0);
	cr_expect_eq(m.hdr.request, VU_SET_FEATURES);
	cr_expect_eq(m.p.u64, v);
	cr_expect_eq(m.nfds, 0);
	cr_assert_eq(recv_msg(&m), 0);
	cr_expect_eq(m.hdr.request, VU_GET_FEATURES);
	cr_expect_eq(m.hdr.size, 0);
}

Test(vhost_user, recv_closes_fds_when_the_header_is_bad)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t v = 1;
	struct vu_msg m;
	int before;

	cr_assert_geq(efd, 0);
	/* version 2: the message is refused after its descriptor arrived */
	cr_assert_eq(vu_send_request(sp[1], VU_SET_VRING_CALL, 0x2, &v, 8, &efd, 1), 0);
	before = count_open_fds();
	cr_expect_eq(recv_msg(&m), -EBADMSG);
	cr_expect_eq(count_open_fds(), before, "a received descriptor leaked");
	close(efd);
}

Test(vhost_user, recv_rejects_and_closes_more_than_eight_fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 9)];
		struct cmsghdr align;
	} u;
	struct vu_hdr h = {VU_SET_MEM_TABLE, VU_VERSION, 0};
	struct iovec iov = {&h, sizeof(h)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c;
	int fds[9], before;
	struct vu_msg m;

	for (int i = 0; i < 9; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	cr_assert_eq(sendmsg(sp[1], &mh, 0), (ssize_t)sizeof(h));
	before = count_open_fds();
	cr_expect_eq(recv_msg(&m), -EBADMSG);
	cr_expect_eq(count_open_fds(), before, "a received descriptor leaked");
	for (int i = 0; i < 9; i++)
		close(fds[i]);
}

Test(vhost_user, validate_rejects_add_mem_reg_without_fd)
{
	struct vu_single_region r = {0, {0x0, 0x1000, 0x7f0000000000, 0}};
	const char *why = NULL;
	struct vu_msg m;

	cr_assert_eq(vu_send_request(sp[1], VU_ADD_MEM_REG, VU_VERSION, &r, sizeof(r), NULL, 0), 0);
	cr_assert_eq(recv_msg(&m), 0);
	cr_expect_eq(vu_msg_validate(&m, &why), -EBADMSG);
	cr_expect_str_eq(why, "wrong number of file descriptors");
}

Test(vhost_user, validate_rejects_nofd_flag_that_contradicts_the_fds)
{
	const char *why = NULL;
	struct vu_msg m = {.hdr = {VU_SET_VRING_KICK, VU_VERSION, 8}};

	m.p.u64 = VU_VRING_NOFD_MASK | 1; /* says "no fd" but one came */
	m.nfds = 1;
	cr_expect_eq(vu_msg_validate(&m, &why), -EBADMSG);
	m.p.u64 = 1; /* says "fd" but none came */
	m.nfds = 0;
	cr_expect_eq(vu_msg_validate(&m, &why), -EBADMSG);
	m.p.u64 = VU_VRING_NOFD_MASK | 1;
	cr_expect_eq(vu_msg_validate(&m, &why), 0);
}

Test(vhost_user, validate_rejects_reserved_bits_in_vring_file)
{
	const char *why = NULL;
	struct vu_msg m = {.hdr = {VU_SET_VRING_CALL, VU_VERSION, 8}};

	m.p.u64 = 0x200 | 1;
	m.nfds = 1;
	cr_expect_eq(vu_msg_validate(&m, &why), -EBADMSG);
}

Test(vhost_user, validate_rejects_mem_table_count_mismatch)
{
	const char *why = NULL;
	struct vu_msg m = {.hdr = {VU_SET_MEM_TABLE, VU_VERSION, 8 + 32 * 2}};

	m.p.mem.nregions = 2;
	m.nfds = 1; /* one fd short */
	cr_expect_eq(vu_msg_validate(&m, &why), -EBADMSG);
	m.p.mem.nregions = 3; /* more regions than the size holds */
	m.nfds = 2;
	cr_expect_eq(vu_msg_validate(&m, &why), -EBADMSG);
	m.p.mem.nregions = 0;
	m.nfds = 2;
	cr_expect_eq(vu_msg_validate(&m, &why), -EBADMSG);
	m.p.mem.nregions = 2;
	m.nfds = 2;
	cr_expect_eq(vu_msg_validate(&m, &why), 0, "why: %s", why);
}

Test(vhost_user, reply_has_flags_0x5_request_and_exact_size)
{
	unsigned char buf[VU_HDR_SIZE + 8];
	struct vu_hdr h;
	uint64_t v;

	cr_assert_eq(vu_send_reply_u64(sp[0], VU_GET_FEATURES, 0x170000000ull), 0);
	cr_assert_eq(read(sp[1], buf, sizeof(buf)), (ssize_t)sizeof(buf));
	memcpy(&h, buf, sizeof(h));
	memcpy(&v, buf + VU_HDR_SIZE, sizeof(v));
	cr_expect_eq(h.request, VU_GET_FEATURES);
	cr_expect_eq(h.flags, 0x5);
	cr_expect_eq(h.size, 8);
	cr_expect_eq(v, 0x170000000ull);
}

Test(vhost_user, recv_reply_rejects_wrong_request_or_flags)
{
	struct vu_vring_state st = {1, 213}, got = {0, 0};

	cr_assert_eq(vu_send_reply(sp[0], VU_GET_VRING_BASE, &st, sizeof(st)), 0);
	cr_expect_eq(vu_recv_reply(sp[1], VU_GET_VRING_BASE, &got, sizeof(got)), 0);
	cr_expect_eq(got.index, 1);
	cr_expect_eq(got.num, 213);

	cr_assert_eq(vu_send_reply_u64(sp[0], VU_GET_FEATURES, 1), 0);
	cr_expect_eq(vu_recv_reply(sp[1], VU_GET_PROTOCOL_FEATURES, &got, 8), -EBADMSG);
}

Test(vhost_user, request_names_cover_known_and_unknown_ids)
{
	cr_expect_str_eq(vu_request_name(VU_SET_BACKEND_REQ_FD), "SET_BACKEND_REQ_FD");
	cr_expect_str_eq(vu_request_name(VU_GET_MAX_MEM_SLOTS), "GET_MAX_MEM_SLOTS");
	cr_expect_str_eq(vu_request_name(0), "UNKNOWN");
	cr_expect_str_eq(vu_request_name(12345), "UNKNOWN");
}
