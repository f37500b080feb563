/*
 * test_vhost_user.c - bulkheadd's vhost-user control plane seen from a front
 * end: the QEMU 7.2 sequence and its variants, strict rejection of
 * malformed messages (the connection drops, the next one is served), one
 * front end at a time, ring stop/start (reboot, pause/resume), front-end EOF
 * and memory hot-add. Runs in: the test process; bulkheadd is a child.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"
#include "vhost_user.h"

TestSuite(vu, .init = it_setup, .fini = it_teardown, .timeout = 60);

static int send_hdr(struct vufe *fe, uint32_t req, uint32_t flags, uint32_t size,
		    const void *payload, size_t plen, const int *fds, size_t nfds)
{
	uint8_t buf[VU_HDR_SIZE + 512];
	struct vu_hdr h = {req, flags, size};

	memcpy(buf, &h, VU_HDR_SIZE);
	if (plen)
		memcpy(buf + VU_HDR_SIZE, payload, plen);
	return vufe_send_raw(fe, buf, VU_HDR_SIZE + plen, fds, nfds);
}

static void expect_dropped(struct vufe *fe)
{
	cr_expect_eq(vufe_expect_eof(fe, 3000), 0, "the daemon kept a bad connection open");
	cr_expect(hx_alive(&it_d), "the daemon died");
	vufe_disconnect(fe);
	it_next_front_end_served();
}

ITEST(vu, qemu_sequence_with_add_mem_reg_and_reply_ack_serves_fuse)
{
	struct fuse_init_out io;
	uint32_t bases[2];

	cr_assert_eq(vufe_up(it_fe), 0);
	cr_expect_eq(vufe_acked_protocol_features(it_fe), 0x8009);
	cr_assert_eq(vufe_last_ack(it_fe), 0);
	cr_assert_eq(vufe_fuse_init(it_fe, 1, &io), 0);
	cr_assert_neq(it_lookup(it_fe, 1, "small.txt"), 0);
	cr_assert_eq(vufe_fuse_forget(it_fe, 0, 1, 0), 0);
	cr_assert_eq(vufe_stop(it_fe, bases), 0);
	/* GET_VRING_BASE = requests consumed: INIT + LOOKUP, and one FORGET */
	cr_expect_eq(bases[1], 2);
	cr_expect_eq(bases[0], 1);
}

ITEST(vu, set_mem_table_serves_when_mem_slots_not_acked)
{
	struct fuse_init_out io;
	struct vufe_opts o;
	struct vufe *fe;

	vufe_opts_default(&o);
	o.protocol_features = (1ull << VU_PF_MQ) | (1ull << VU_PF_REPLY_ACK);
	vufe_disconnect(it_fe);
	fe = it_connect(&o);
	cr_assert_eq(vufe_up(fe), 0);
	cr_expect_eq(vufe_last_ack(fe), 0);
	cr_assert_eq(vufe_fuse_init(fe, 1, &io), 0);
	cr_assert_neq(it_lookup(fe, 1, "small.txt"), 0);
	vufe_free(fe);
}

ITEST(vu, set_protocol_features_without_get_still_acks_need_reply)
{
	struct fuse_init_out io;

	vufe_skip(it_fe, VU_GET_PROTOCOL_FEATURES, 1);
	/* ADD_MEM_REG goes out with NEED_REPLY and waits for the ack */
	cr_assert_eq(vufe_up(it_fe), 0);
	cr_expect_eq(vufe_last_ack(it_fe), 0);
	cr_assert_eq(vufe_fuse_init(it_fe, 1, &io), 0);
}

ITEST(vu, missing_set_vring_base_starts_ring_at_zero)
{
	struct fuse_init_out io;

	vufe_skip(it_fe, VU_SET_VRING_BASE, 1);
	cr_assert_eq(vufe_up(it_fe), 0);
	cr_assert_eq(vufe_fuse_init(it_fe, 1, &io), 0);
	cr_assert_neq(it_lookup(it_fe, 1, "small.txt"), 0);
}

ITEST(vu, need_reply_on_every_message_gets_exactly_one_answer)
{
	struct fuse_init_out io;

	vufe_set_need_reply_all(it_fe, 1);
	cr_assert_eq(vufe_up(it_fe), 0);
	cr_assert_eq(vufe_fuse_init(it_fe, 1, &io), 0);
	cr_assert_eq(vufe_stop(it_fe, NULL), 0);
	/* an extra ack after a GET_* would still be sitting on the socket */
	cr_expect_eq(vufe_expect_silence(it_fe, 300), 0);
}

ITEST(vu, call_fd_swapped_while_running_signals_the_new_fd)
{
	struct vufe_call *c;
	struct pollfd p;
	int old = -1, old2 = -1;
	uint64_t v;

	cr_assert_eq(it_up_init(it_fe), 0);
	/* NEED_REPLY: the ack promises the new fd is installed, so a request
	 * submitted afterwards cannot race the swap */
	vufe_set_need_reply_all(it_fe, 1);
	cr_assert_eq(vufe_replace_call(it_fe, 1, &old), 0);
	vufe_set_need_reply_all(it_fe, 0);
	c = vufe_call_new(it_fe, 16, 256);
	cr_assert_eq(vufe_call_prep(it_fe, c, FUSE_GETATTR, 1, &(struct fuse_getattr_in){0},
				    sizeof(struct fuse_getattr_in), NULL, 0, 16 + 104),
		     0);
	/* drain whatever the old fd collected before the swap */
	(void)!read(old, &v, sizeof(v));
	cr_assert_eq(vufe_call_submit(it_fe, 1, c, 0), 0);
	p = (struct pollfd){vufe_call_fd(it_fe, 1), POLLIN, 0};
	cr_expect_eq(poll(&p, 1, 5000), 1, "no signal on the new call fd");
	p = (struct pollfd){old, POLLIN, 0};
	cr_expect_eq(poll(&p, 1, 0), 0, "the old call fd was signalled");
	cr_assert_eq(vufe_call_wait(it_fe, c, 5000), 0);
	cr_expect_eq(vufe_call_result(c), 0);

	/* swapped again while stopped; the restart does not resend it */
	cr_assert_eq(vufe_stop(it_fe, NULL), 0);
	vufe_set_need_reply_all(it_fe, 1);
	cr_assert_eq(vufe_replace_call(it_fe, 1, &old2), 0);
	vufe_set_need_reply_all(it_fe, 0);
	vufe_skip(it_fe, VU_SET_VRING_CALL, 1);
	cr_assert_eq(vufe_start(it_fe, 0), 0);
	(void)!read(vufe_call_fd(it_fe, 1), &v, sizeof(v));
	cr_assert_eq(vufe_call_prep(it_fe, c, FUSE_GETATTR, 1, &(struct fuse_getattr_in){0},
				    sizeof(struct fuse_getattr_in), NULL, 0, 16 + 104),
		     0);
	cr_assert_eq(vufe_call_submit(it_fe, 1, c, 0), 0);
	p = (struct pollfd){vufe_call_fd(it_fe, 1), POLLIN, 0};
	cr_expect_eq(poll(&p, 1, 5000), 1, "no signal on the fd set while stopped");
	cr_assert_eq(vufe_call_wait(it_fe, c, 5000), 0);
	cr_expect_eq(vufe_call_result(c), 0);
	vufe_call_free(it_fe, c);
	close(old);
	close(old2);
}

/*
 * A guest whose used_event store the worker did not see in time (under
 * QEMU's TCG with one vCPU thread the guest's barriers are not the host's):
 * by EVENT_IDX the reply needs no interrupt, and such a guest would wait for
 * it for ever. The worker's quiet-ring check sends one anyway a few
 * milliseconds after its last reply.
 */
ITEST(vu, guest_with_a_stale_used_event_still_gets_its_interrupt)
{
	struct vufe_call *c;
	struct pollfd p;
	uint16_t used;
	uint64_t v;
	int r;

	cr_assert_eq(it_up_init(it_fe), 0); /* the first reply always signals */
	c = vufe_call_new(it_fe, 16, 256);
	cr_assert_eq(vufe_call_prep(it_fe, c, FUSE_GETATTR, 1, &(struct fuse_getattr_in){0},
				    sizeof(struct fuse_getattr_in), NULL, 0, 16 + 104),
		     0);
	used = vufe_used_idx(it_fe, 1);
	/* "interrupt me after entry used - 2": long past, so no interrupt is due */
	vufe_set_used_event_raw(it_fe, 1, (uint16_t)(used - 2));
	(void)!read(vufe_call_fd(it_fe, 1), &v, sizeof(v));
	cr_assert_eq(vufe_call_submit(it_fe, 1, c, 0), 0);
	p = (struct pollfd){vufe_call_fd(it_fe, 1), POLLIN, 0};
	r = poll(&p, 1, 2000);
	cr_assert_eq(r, 1, "no interrupt for a reply the guest did not re-arm for");
	cr_assert_eq(vufe_used_idx(it_fe, 1), (uint16_t)(used + 1), "the reply is not published");
	cr_assert_eq(vufe_call_wait(it_fe, c, 5000), 0);
	cr_expect_eq(vufe_call_result(c), 0);
	vufe_call_free(it_fe, c);
}

ITEST(vu, get_features_repeated_gives_the_same_answer)
{
	uint64_t f1, f2, f3;

	cr_assert_eq(vufe_get_features(it_fe, &f1), 0);
	cr_assert_eq(vufe_get_features(it_fe, &f2), 0);
	cr_assert_eq(vufe_up(it_fe), 0);
	cr_assert_eq(vufe_get_features(it_fe, &f3), 0); /* QEMU's barrier while running */
	cr_expect_eq(f1, f2);
	cr_expect_eq(f1, f3);
}

ITEST(vu, offered_features_are_exactly_what_is_implemented)
{
	uint64_t f, pf;

	cr_assert_eq(vufe_get_features(it_fe, &f), 0);
	cr_assert_eq(vufe_get_protocol_features(it_fe, &pf), 0);
	cr_expect_eq(f, 0x170000000ull);
	cr_expect_eq(pf, 0x8009ull);
}

ITEST(vu, get_queue_num_reports_17_and_an_index_beyond_drops_connection)
{
	uint64_t n;

	cr_assert_eq(vufe_negotiate(it_fe), 0);
	cr_expect_eq(vufe_queue_num(it_fe), 17);
	cr_assert_eq(vufe_get_queue_num(it_fe, &n), 0);
	cr_assert_eq(vufe_set_vring_num(it_fe, 17, 128), 0);
	expect_dropped(it_fe);
}

/* ---- malformed messages ---- */

ITEST(vu, bad_version_flags_drop_connection)
{
	cr_assert_eq(send_hdr(it_fe, VU_GET_FEATURES, 0x2, 0, NULL, 0, NULL, 0), 0);
	expect_dropped(it_fe);
}

ITEST(vu, reply_bit_on_request_drops_connection)
{
	cr_assert_eq(send_hdr(it_fe, VU_GET_FEATURES, 0x5, 0, NULL, 0, NULL, 0), 0);
	expect_dropped(it_fe);
}

ITEST(vu, oversize_payload_drops_connection)
{
	cr_assert_eq(send_hdr(it_fe, VU_SET_FEATURES, 0x1, 1u << 20, NULL, 0, NULL, 0), 0);
	expect_dropped(it_fe);
}

ITEST(vu, truncated_payload_then_close_leaves_daemon_serving)
{
	uint32_t half = 0x70000000;

	cr_assert_eq(send_hdr(it_fe, VU_SET_FEATURES, 0x1, 8, &half, sizeof(half), NULL, 0), 0);
	vufe_disconnect(it_fe);
	cr_expect(hx_alive(&it_d));
	it_next_front_end_served();
}

ITEST(vu, set_mem_table_with_fd_count_mismatch_drops_connection)
{
	struct vu_mem_table t = {.nregions = 2};
	int fd = dup(0);

	cr_assert_eq(vufe_negotiate(it_fe), 0);
	t.regions[0] = (struct vu_region){0, 0xa0000, 0x10000000, 0};
	t.regions[1] = (struct vu_region){0xc0000, 0x100000, 0x100c0000, 0xc0000};
	cr_assert_eq(send_hdr(it_fe, VU_SET_MEM_TABLE, 0x9, 8 + 64, &t, 8 + 64, &fd, 1), 0);
	close(fd);
	expect_dropped(it_fe);
}

ITEST(vu, set_features_with_bits_not_offered_drops_connection)
{
	cr_assert_eq(vufe_negotiate(it_fe), 0);
	vufe_set_features(it_fe, 0x170000000ull | (1ull << 34));
	expect_dropped(it_fe);
}

ITEST(vu, set_protocol_features_with_bits_not_offered_drops_connection)
{
	uint64_t f;

	cr_assert_eq(vufe_get_features(it_fe, &f), 0);
	vufe_set_protocol_features(it_fe, 0x8009ull | (1ull << 14));
	expect_dropped(it_fe);
}

ITEST(vu, non_power_of_two_ring_drops_connection)
{
	cr_assert_eq(vufe_negotiate(it_fe), 0);
	vufe_set_vring_num(it_fe, 1, 100);
	expect_dropped(it_fe);
}

/* ---- sessions ---- */

ITEST(vu, second_connection_is_closed_while_first_is_served)
{
	struct vufe *fe2;

	cr_assert_eq(it_up_init(it_fe), 0);
	fe2 = it_connect(NULL);
	cr_expect_eq(vufe_expect_eof(fe2, 2000), 0, "second front end was not closed");
	vufe_free(fe2);
	cr_assert_neq(it_lookup(it_fe, 1, "small.txt"), 0, "first front end stopped working");
}

ITEST(vu, reboot_restarts_rings_and_second_init_makes_old_nodes_stale)
{
	struct fuse_init_out io;
	struct fuse_attr_out a;
	uint32_t bases[2];
	uint64_t nid;
	char buf[32];
	uint32_t n;
	uint64_t fh;
	int r;

	cr_assert_eq(it_up_init(it_fe), 0);
	nid = it_lookup(it_fe, 1, "small.txt");
	cr_assert_neq(nid, 0);
	cr_assert_eq(vufe_fuse_getattr(it_fe, 1, nid, &a), 0);
	cr_assert_eq(vufe_stop(it_fe, bases), 0);
	cr_expect_eq(bases[1], 3, "INIT, LOOKUP, GETATTR consumed, got %u", bases[1]);
	cr_expect_eq(bases[0], 0);

	/* new driver: fresh rings at new addresses, base 0, memory unchanged */
	cr_assert_eq(vufe_ring_relayout(it_fe, 0), 0);
	cr_assert_eq(vufe_ring_relayout(it_fe, 1), 0);
	cr_assert_eq(vufe_start(it_fe, 0), 0);
	cr_assert_eq(vufe_fuse_init(it_fe, 1, &io), 0);
	r = vufe_fuse_getattr(it_fe, 1, nid, &a);
	cr_expect_eq(r, -ESTALE, "old node id still usable after a new INIT (%d)", r);
	nid = it_lookup(it_fe, 1, "small.txt");
	cr_assert_neq(nid, 0);
	cr_assert_eq(vufe_fuse_open(it_fe, 1, nid, 0, &fh), 0);
	cr_assert_eq(vufe_fuse_read(it_fe, 1, nid, fh, 0, sizeof(buf), buf, &n, 0), 0);
	cr_expect_eq(n, 15);
}

ITEST(vu, pause_resume_keeps_nodes_and_open_files)
{
	struct fuse_attr_out a;
	uint32_t bases[2];
	uint64_t nid, fh;
	char buf[32];
	uint32_t n;

	cr_assert_eq(it_up_init(it_fe), 0);
	nid = it_lookup(it_fe, 1, "small.txt");
	cr_assert_neq(nid, 0);
	cr_assert_eq(vufe_fuse_open(it_fe, 1, nid, 0, &fh), 0);
	cr_assert_eq(vufe_stop(it_fe, bases), 0);
	cr_expect_eq(bases[1], 3);
	/* same rings, the old base, no new INIT */
	cr_assert_eq(vufe_start(it_fe, 0), 0);
	cr_assert_eq(vufe_fuse_getattr(it_fe, 1, nid, &a), 0);
	cr_expect_eq(a.attr.size, 15);
	cr_assert_eq(vufe_fuse_read(it_fe, 1, nid, fh, 6, sizeof(buf), buf, &n, 0), 0);
	cr_assert_eq(n, 9);
	cr_expect_eq(memcmp(buf, "bulkhead\n", 9), 0);
}

ITEST(vu, front_end_eof_ends_workers_and_next_front_end_is_served)
{
	cr_assert_eq(it_up_init(it_fe), 0);
	cr_assert_gt(hx_children(it_d.hd_pid, NULL, 0), 0, "no workers running");
	vufe_disconnect(it_fe);
	cr_expect_eq(hx_wait_children(it_d.hd_pid, 0, 5000), 0, "workers outlived the session");
	cr_expect(hx_alive(&it_d));
	it_next_front_end_served();
}

ITEST(vu, add_mem_reg_while_running_serves_buffers_in_new_region)
{
	struct vufe_call *c;
	struct fuse_entry_out e;
	int reg;

	cr_assert_eq(it_up_init(it_fe), 0);
	reg = vufe_region_new(it_fe, 0x100000000ull, 4u << 20);
	cr_assert_geq(reg, 0);
	cr_assert_eq(vufe_add_mem_reg(it_fe, (unsigned)reg), 0, "ADD_MEM_REG not acked with 0");
	c = vufe_call_new_in(it_fe, reg, 64, 256);
	cr_assert(c);
	cr_assert_eq(
	    vufe_call_prep(it_fe, c, FUSE_LOOKUP, 1, "small.txt", 10, NULL, 0, 16 + sizeof(e)), 0);
	cr_assert_eq(vufe_call_submit(it_fe, 1, c, 0), 0);
	cr_assert_eq(vufe_call_wait(it_fe, c, 5000), 0);
	cr_assert_eq(vufe_call_result(c), 0);
	memcpy(&e, vufe_call_data(c), sizeof(e));
	cr_expect_eq(e.attr.size, 15);
	vufe_call_free(it_fe, c);
}
