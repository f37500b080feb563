/*
 * test_virtqueue.c - guest memory translation and the split virtqueue
 * against hand-built rings, including the hostile shapes of docs/protocol.md §D.6.
 * Guest memory is one memfd mapped through vq_mem_map as QEMU lays it out:
 * RAM below the 0xa0000 hole, then RAM from 0xc0000 split into two regions
 * adjacent in guest-physical space but not in host memory, and a sparse
 * 4 GiB region above 4 GiB for length-overflow cases.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/virtio_ring.h>

#include "ipc.h"
#include "virtqueue.h"

#define U_BASE	  0x7f0000000000ULL /* front-end VA of guest-physical 0 */
#define R1_GPA	  0xc0000ULL
#define R2_GPA	  0x2c0000ULL /* == end of region 1 */
#define R2_END	  0x4c0000ULL
#define R3_GPA	  0x100000000ULL
#define R3_SIZE	  0x100000000ULL
#define DESC_GPA  0x100000ULL
#define AVAIL_GPA 0x140000ULL
#define USED_GPA  0x150000ULL
#define DATA_GPA  0x200000ULL
#define TABLE_GPA 0x1c0000ULL

#define F_INDIRECT (1ULL << VIRTIO_RING_F_INDIRECT_DESC)
#define F_EVENT	   (1ULL << VIRTIO_RING_F_EVENT_IDX)

static const struct ipc_region layout[] = {
    {.ir_gpa = 0, .ir_size = 0xa0000, .ir_uaddr = U_BASE, .ir_mmap_offset = 0},
    {.ir_gpa = R1_GPA,
     .ir_size = R2_GPA - R1_GPA,
     .ir_uaddr = U_BASE + R1_GPA,
     .ir_mmap_offset = 0x100000},
    {.ir_gpa = R2_GPA,
     .ir_size = R2_END - R2_GPA,
     .ir_uaddr = U_BASE + R2_GPA,
     .ir_mmap_offset = 0x400000},
    {.ir_gpa = R3_GPA, .ir_size = R3_SIZE, .ir_uaddr = U_BASE + R3_GPA, .ir_mmap_offset = 0x800000},
};
#define NREG 4

static int memfd = -1;
static struct vq_mem mem;
static struct vq q;
static uint16_t qnum;
static struct vring_desc *D;
static struct vring_avail *A;
static struct vring_used *U;
static uint8_t used_snap[6 + 8 * 2048];

static void *g2h(uint64_t gpa)
{
	void *p = vq_mem_gpa_ptr(&mem, gpa, 1);
	cr_assert_not_null(p, "test bug: gpa %#llx unmapped", (unsigned long long)gpa);
	return p;
}

static void mem_setup(void)
{
	int fds[NREG];
	unsigned i;

	memfd = memfd_create("guest", MFD_CLOEXEC);
	cr_assert(memfd >= 0);
	cr_assert(ftruncate(memfd, (off_t)(0x800000 + R3_SIZE)) == 0);
	for (i = 0; i < NREG; i++)
		fds[i] = memfd;
	cr_assert_eq(vq_mem_map(&mem, layout, NREG, fds), 0);
}

static void mem_teardown(void)
{
	if (q.scratch != NULL)
		vq_fini(&q);
	vq_mem_unmap(&mem);
	if (memfd >= 0)
		close(memfd);
	memfd = -1;
}

/* Rings in region 1 at fixed addresses; avail->idx = used->idx = base. */
static void ring_setup(uint16_t num, uint64_t features, uint16_t base)
{
	qnum = num;
	D = g2h(DESC_GPA);
	A = g2h(AVAIL_GPA);
	U = g2h(USED_GPA);
	A->idx = base;
	U->idx = base;
	memset(&q, 0, sizeof(q));
	q.call_fd = -1;
	q.err_fd = -1;
	cr_assert_eq(vq_init(&q, &mem, num, base, U_BASE + DESC_GPA, U_BASE + AVAIL_GPA,
			     U_BASE + USED_GPA, features),
		     0);
}

static void desc_set(struct vring_desc *t, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	t[i].addr = addr;
	t[i].len = len;
	t[i].flags = flags;
	t[i].next = next;
}

static void avail_add(uint16_t head)
{
	A->ring[A->idx & (qnum - 1)] = head;
	A->idx++;
}

static volatile uint16_t *avail_event_ptr(void)
{
	return (volatile uint16_t *)((uint8_t *)U + 4 + 8 * (size_t)qnum);
}

static void snap_used(void)
{
	memcpy(used_snap, U, 6 + 8 * (size_t)qnum);
}

/* A structural error: the queue is broken, nothing was consumed and the used
 * ring (entries, idx, flags, avail_event) is exactly as before. */
static void assert_broken(int rc, uint16_t last_avail)
{
	struct vq_elem e;

	cr_assert(rc < 0, "pop returned %d", rc);
	cr_assert(q.broken);
	cr_assert_eq(q.last_avail, last_avail);
	cr_assert_eq(memcmp(used_snap, U, 6 + 8 * (size_t)qnum), 0, "used ring written");
	cr_assert(vq_pop(&q, &mem, &e) < 0, "a broken queue keeps popping");
}

/* Pop one chain expected to be malformed. */
static void pop_expect_broken(void)
{
	struct vq_elem e;
	uint16_t last = q.last_avail;

	snap_used();
	assert_broken(vq_pop(&q, &mem, &e), last);
}

TestSuite(ring, .init = mem_setup, .fini = mem_teardown);
TestSuite(mem, .init = mem_setup, .fini = mem_teardown);
TestSuite(iov);

Test(ring, ring_pops_direct_chain_as_readable_then_writable_iovecs)
{
	struct vq_elem e, e2;

	ring_setup(256, 0, 0);
	desc_set(D, 5, DATA_GPA, 100, VRING_DESC_F_NEXT, 9);
	desc_set(D, 9, DATA_GPA + 0x1000, 50, VRING_DESC_F_NEXT, 3);
	desc_set(D, 3, DATA_GPA + 0x2000, 200, VRING_DESC_F_WRITE, 0);
	avail_add(5);
	cr_assert_eq(vq_avail_count(&q), 1);
	cr_assert_eq(vq_pop(&q, &mem, &e), 1);
	cr_assert_eq(e.head, 5);
	cr_assert_eq(e.nrd, 2);
	cr_assert_eq(e.nwr, 1);
	cr_assert_eq(e.rd_len, 150);
	cr_assert_eq(e.wr_len, 200);
	cr_assert_eq(e.wr, e.rd + 2);
	cr_assert_eq(e.rd[0].iov_base, g2h(DATA_GPA));
	cr_assert_eq(e.rd[0].iov_len, 100);
	cr_assert_eq(e.rd[1].iov_base, g2h(DATA_GPA + 0x1000));
	cr_assert_eq(e.rd[1].iov_len, 50);
	cr_assert_eq(e.wr[0].iov_base, g2h(DATA_GPA + 0x2000));
	cr_assert_eq(e.wr[0].iov_len, 200);
	cr_assert_eq(q.last_avail, 1);
	cr_assert_eq(vq_pop(&q, &mem, &e2), 0, "nothing more available");
	cr_assert_eq(vq_avail_count(&q), 0);
	vq_elem_release(&e);
	cr_assert_null(e.rd);
}

Test(ring, ring_pops_lone_indirect_head)
{
	struct vring_desc *t = g2h(TABLE_GPA);
	struct vq_elem e;

	ring_setup(256, F_INDIRECT, 0);
	/* Entries chain out of order, relative to the table. */
	desc_set(t, 0, DATA_GPA, 40, VRING_DESC_F_NEXT, 2);
	desc_set(t, 2, DATA_GPA + 0x100, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc_set(t, 1, DATA_GPA + 0x200, 4096, VRING_DESC_F_WRITE, 0);
	desc_set(D, 7, TABLE_GPA, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(7);
	cr_assert_eq(vq_pop(&q, &mem, &e), 1);
	cr_assert_eq(e.head, 7);
	cr_assert_eq(e.nrd, 1);
	cr_assert_eq(e.nwr, 2);
	cr_assert_eq(e.rd_len, 40);
	cr_assert_eq(e.wr_len, 16 + 4096);
	cr_assert_eq(e.rd[0].iov_base, g2h(DATA_GPA));
	cr_assert_eq(e.wr[0].iov_base, g2h(DATA_GPA + 0x100));
	cr_assert_eq(e.wr[1].iov_base, g2h(DATA_GPA + 0x200));
	cr_assert_eq(e.wr[1].iov_len, 4096);
	vq_elem_release(&e);
}

Test(ring, ring_pops_direct_descriptors_followed_by_indirect)
{
	struct vring_desc *t = g2h(TABLE_GPA);
	struct vq_elem e;

	ring_setup(256, F_INDIRECT, 0);
	desc_set(D, 0, DATA_GPA, 40, VRING_DESC_F_NEXT, 1);
	desc_set(D, 1, TABLE_GPA, 2 * 16, VRING_DESC_F_INDIRECT, 0);
	desc_set(t, 0, DATA_GPA + 0x100, 8, VRING_DESC_F_NEXT, 1);
	desc_set(t, 1, DATA_GPA + 0x200, 64, VRING_DESC_F_WRITE, 0);
	avail_add(0);
	cr_assert_eq(vq_pop(&q, &mem, &e), 1);
	cr_assert_eq(e.nrd, 2);
	cr_assert_eq(e.nwr, 1);
	cr_assert_eq(e.rd[0].iov_base, g2h(DATA_GPA));
	cr_assert_eq(e.rd[1].iov_base, g2h(DATA_GPA + 0x100));
	cr_assert_eq(e.wr[0].iov_base, g2h(DATA_GPA + 0x200));
	cr_assert_eq(e.rd_len, 48);
	cr_assert_eq(e.wr_len, 64);
	vq_elem_release(&e);
}

Test(ring, ring_splits_buffer_spanning_adjacent_regions)
{
	struct vq_elem e;

	ring_setup(256, 0, 0);
	desc_set(D, 0, R2_GPA - 0x100, 0x300, VRING_DESC_F_WRITE, 0);
	avail_add(0);
	cr_assert_eq(vq_pop(&q, &mem, &e), 1);
	cr_assert_eq(e.nwr, 2);
	cr_assert_eq(e.wr[0].iov_base, g2h(R2_GPA - 0x100));
	cr_assert_eq(e.wr[0].iov_len, 0x100);
	cr_assert_eq(e.wr[1].iov_base, g2h(R2_GPA));
	cr_assert_eq(e.wr[1].iov_len, 0x200);
	cr_assert_neq((uint8_t *)e.wr[0].iov_base + 0x100, e.wr[1].iov_base,
		      "test bug: regions must not be host-contiguous");
	cr_assert_eq(e.wr_len, 0x300);
	vq_elem_release(&e);
}

Test(ring, ring_reads_indirect_table_spanning_adjacent_regions)
{
	uint64_t tgpa = R2_GPA - 24; /* entry 1 straddles the boundary */
	struct vring_desc raw[3];
	struct vq_elem e;
	struct iovec iov[4];
	unsigned n = 0;

	ring_setup(256, F_INDIRECT, 0);
	memset(raw, 0, sizeof(raw));
	desc_set(raw, 0, DATA_GPA, 10, VRING_DESC_F_NEXT, 1);
	desc_set(raw, 1, DATA_GPA + 0x100, 20, VRING_DESC_F_NEXT, 2);
	desc_set(raw, 2, DATA_GPA + 0x200, 30, VRING_DESC_F_WRITE, 0);
	cr_assert_eq(vq_mem_gpa_iov(&mem, tgpa, sizeof(raw), iov, &n, 4), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(vq_iov_write(iov, n, 0, raw, sizeof(raw)), sizeof(raw));
	desc_set(D, 0, tgpa, sizeof(raw), VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	cr_assert_eq(vq_pop(&q, &mem, &e), 1);
	cr_assert_eq(e.nrd, 2);
	cr_assert_eq(e.nwr, 1);
	cr_assert_eq(e.rd[1].iov_base, g2h(DATA_GPA + 0x100));
	cr_assert_eq(e.rd[1].iov_len, 20);
	cr_assert_eq(e.wr_len, 30);
	vq_elem_release(&e);
}

Test(ring, ring_rejects_buffer_touching_the_hole)
{
	ring_setup(256, 0, 0);
	desc_set(D, 0, 0xa0000 - 0x10, 0x20, VRING_DESC_F_WRITE, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_rejects_buffer_inside_the_hole_and_past_ram)
{
	ring_setup(256, 0, 0);
	desc_set(D, 0, 0xb0000, 1, 0, 0);
	avail_add(0);
	pop_expect_broken();
	mem_teardown();
	mem_setup();
	ring_setup(256, 0, 0);
	desc_set(D, 0, R2_END - 1, 2, 0, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_rejects_addr_len_overflow)
{
	ring_setup(256, 0, 0);
	desc_set(D, 0, UINT64_MAX - 10, 100, 0, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_rejects_total_length_above_u32)
{
	ring_setup(256, 0, 0);
	/* Both lie in the sparse region; only their sum is too long. */
	desc_set(D, 0, R3_GPA, 0x80000000u, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc_set(D, 1, R3_GPA + 0x80000000u, 0x80000000u, VRING_DESC_F_WRITE, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_accepts_total_length_of_u32_max)
{
	struct vq_elem e;

	ring_setup(256, 0, 0);
	desc_set(D, 0, R3_GPA, 0x80000000u, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc_set(D, 1, R3_GPA + 0x80000000u, 0x7fffffffu, VRING_DESC_F_WRITE, 0);
	avail_add(0);
	cr_assert_eq(vq_pop(&q, &mem, &e), 1);
	cr_assert_eq(e.wr_len, UINT32_MAX);
	vq_elem_release(&e);
}

Test(ring, ring_rejects_head_out_of_range)
{
	ring_setup(256, 0, 0);
	/* A valid descriptor right past the table: only the bound rejects it. */
	desc_set(D, 256, DATA_GPA, 1, 0, 0);
	avail_add(256);
	pop_expect_broken();
}

Test(ring, ring_rejects_next_out_of_range)
{
	ring_setup(256, 0, 0);
	desc_set(D, 0, DATA_GPA, 1, VRING_DESC_F_NEXT, 256);
	desc_set(D, 256, DATA_GPA, 1, 0, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_rejects_descriptor_loop)
{
	ring_setup(256, 0, 0);
	desc_set(D, 0, DATA_GPA, 1, VRING_DESC_F_NEXT, 1);
	desc_set(D, 1, DATA_GPA, 1, VRING_DESC_F_NEXT, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_rejects_loop_inside_indirect_table)
{
	struct vring_desc *t = g2h(TABLE_GPA);

	ring_setup(256, F_INDIRECT, 0);
	desc_set(t, 0, DATA_GPA, 1, VRING_DESC_F_NEXT, 1);
	desc_set(t, 1, DATA_GPA, 1, VRING_DESC_F_NEXT, 0);
	desc_set(D, 0, TABLE_GPA, 2 * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	pop_expect_broken();
}

/* A linear chain of n one-byte descriptors starting at entry 0 of t. */
static void chain_linear(struct vring_desc *t, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		desc_set(t, i, DATA_GPA + i, 1, i + 1 < n ? VRING_DESC_F_NEXT : 0, i + 1);
}

Test(ring, ring_accepts_direct_chain_of_max_length)
{
	struct vq_elem e;

	ring_setup(2048, 0, 0);
	chain_linear(D, VQ_MAX_CHAIN);
	avail_add(0);
	cr_assert_eq(vq_pop(&q, &mem, &e), 1);
	cr_assert_eq(e.nrd, VQ_MAX_CHAIN);
	cr_assert_eq(e.rd_len, VQ_MAX_CHAIN);
	vq_elem_release(&e);
}

Test(ring, ring_rejects_direct_chain_over_max_length)
{
	ring_setup(2048, 0, 0);
	chain_linear(D, VQ_MAX_CHAIN + 1);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_accepts_indirect_table_of_max_length)
{
	struct vring_desc *t = g2h(TABLE_GPA);
	struct vq_elem e;

	ring_setup(256, F_INDIRECT, 0);
	chain_linear(t, VQ_MAX_CHAIN);
	desc_set(D, 0, TABLE_GPA, VQ_MAX_CHAIN * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	cr_assert_eq(vq_pop(&q, &mem, &e), 1);
	cr_assert_eq(e.nrd, VQ_MAX_CHAIN);
	vq_elem_release(&e);
}

Test(ring, ring_rejects_indirect_chain_over_max_length)
{
	struct vring_desc *t = g2h(TABLE_GPA);

	ring_setup(256, F_INDIRECT, 0);
	chain_linear(t, VQ_MAX_CHAIN + 1);
	desc_set(D, 0, TABLE_GPA, (VQ_MAX_CHAIN + 1) * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_rejects_chain_over_max_length_across_direct_and_indirect)
{
	struct vring_desc *t = g2h(TABLE_GPA);

	ring_setup(256, F_INDIRECT, 0);
	chain_linear(t, VQ_MAX_CHAIN);
	desc_set(D, 0, DATA_GPA, 1, VRING_DESC_F_NEXT, 1);
	desc_set(D, 1, TABLE_GPA, VQ_MAX_CHAIN * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_rejects_indirect_next_out_of_table)
{
	struct vring_desc *t = g2h(TABLE_GPA);

	ring_setup(256, F_INDIRECT, 0);
	desc_set(t, 0, DATA_GPA, 1, VRING_DESC_F_NEXT, 2);
	desc_set(t, 1, DATA_GPA, 1, 0, 0);
	/* Valid, but past the table's declared length. */
	desc_set(t, 2, DATA_GPA, 1, 0, 0);
	desc_set(D, 0, TABLE_GPA, 2 * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_accepts_indirect_table_larger_than_queue)
{
	struct vring_desc *t = g2h(TABLE_GPA);
	struct vq_elem e;

	ring_setup(16, F_INDIRECT, 0);
	chain_linear(t, 260);
	desc_set(D, 0, TABLE_GPA, 260 * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	cr_assert_eq(vq_pop(&q, &mem, &e), 1);
	cr_assert_eq(e.nrd, 260);
	vq_elem_release(&e);
}

Test(ring, ring_rejects_nested_indirect)
{
	struct vring_desc *t = g2h(TABLE_GPA);

	ring_setup(256, F_INDIRECT, 0);
	desc_set(t, 0, DATA_GPA, 1, VRING_DESC_F_NEXT, 1);
	desc_set(t, 1, TABLE_GPA + 0x1000, 16, VRING_DESC_F_INDIRECT, 0);
	desc_set(D, 0, TABLE_GPA, 2 * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_rejects_indirect_with_next)
{
	struct vring_desc *t = g2h(TABLE_GPA);

	ring_setup(256, F_INDIRECT, 0);
	desc_set(t, 0, DATA_GPA, 1, 0, 0);
	desc_set(D, 0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	desc_set(D, 1, DATA_GPA, 1, VRING_DESC_F_WRITE, 0);
	avail_add(0);
	pop_expect_broken();
}

static void indirect_bad(uint64_t addr, uint32_t len)
{
	struct vring_desc *t = g2h(TABLE_GPA);

	ring_setup(256, F_INDIRECT, 0);
	desc_set(t, 0, DATA_GPA, 1, 0, 0);
	desc_set(D, 0, addr, len, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_rejects_indirect_of_length_zero)
{
	indirect_bad(TABLE_GPA, 0);
}

Test(ring, ring_rejects_indirect_length_not_multiple_of_16)
{
	indirect_bad(TABLE_GPA, 20);
}

Test(ring, ring_rejects_indirect_table_in_the_hole)
{
	indirect_bad(0xa0000, 16);
}

Test(ring, ring_rejects_indirect_table_running_out_of_ram)
{
	indirect_bad(0xa0000 - 16, 32);
}

Test(ring, ring_rejects_indirect_table_with_overflowing_address)
{
	indirect_bad(UINT64_MAX - 15, 32);
}

Test(ring, ring_rejects_indirect_when_not_negotiated)
{
	struct vring_desc *t = g2h(TABLE_GPA);

	ring_setup(256, 0, 0);
	desc_set(t, 0, DATA_GPA, 1, 0, 0);
	desc_set(D, 0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_rejects_zero_length_descriptor)
{
	ring_setup(256, 0, 0);
	desc_set(D, 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 1);
	desc_set(D, 1, DATA_GPA, 0, VRING_DESC_F_WRITE, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_rejects_readable_after_writable)
{
	ring_setup(256, 0, 0);
	desc_set(D, 0, DATA_GPA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc_set(D, 1, DATA_GPA + 8, 8, 0, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_rejects_readable_after_writable_in_indirect_table)
{
	struct vring_desc *t = g2h(TABLE_GPA);

	ring_setup(256, F_INDIRECT, 0);
	desc_set(D, 0, DATA_GPA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc_set(D, 1, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	desc_set(t, 0, DATA_GPA + 8, 8, 0, 0);
	avail_add(0);
	pop_expect_broken();
}

Test(ring, ring_rejects_avail_idx_more_than_num_ahead)
{
	struct vq_elem e;

	ring_setup(16, 0, 0);
	desc_set(D, 0, DATA_GPA, 8, 0, 0);
	A->idx = 16; /* exactly num ahead is fine */
	cr_assert_eq(vq_avail_count(&q), 16);
	A->idx = 17;
	cr_assert_eq(vq_avail_count(&q), 0);
	snap_used();
	assert_broken(vq_pop(&q, &mem, &e), 0);
}

/* A head offered again while it is in flight: the guest's ring holds only
 * indices, so it can offer more chains than the queue has descriptors. */
Test(ring, ring_rejects_more_chains_in_flight_than_queue_size)
{
	struct vq_elem e[5];
	uint16_t last;
	unsigned i;

	ring_setup(4, 0, 0);
	for (i = 0; i < 4; i++)
		desc_set(D, i, DATA_GPA + 0x100 * i, 16, VRING_DESC_F_WRITE, 0);
	for (i = 0; i < 4; i++) {
		avail_add((uint16_t)i);
		cr_assert_eq(vq_pop(&q, &mem, &e[i]), 1);
	}
	/* one used entry back: room for exactly one more */
	vq_push(&q, e[0].head, 0);
	avail_add(0);
	cr_assert_eq(vq_pop(&q, &mem, &e[4]), 1);
	cr_assert_eq(e[4].head, 0);
	avail_add(1); /* head 1 is still in flight */
	last = q.last_avail;
	snap_used();
	cr_assert_eq(vq_pop(&q, &mem, &e[0]), -EOVERFLOW);
	assert_broken(-EOVERFLOW, last);
	for (i = 1; i < 5; i++)
		vq_elem_release(&e[i]);
}

Test(ring, ring_wraps_avail_and_used_indices)
{
	volatile uint16_t *avail_event;
	struct vq_elem e;
	uint16_t expect;
	unsigned i;

	ring_setup(4, F_EVENT, 65534);
	avail_event = avail_event_ptr();
	for (i = 0; i < 4; i++)
		desc_set(D, i, DATA_GPA + 0x100 * i, 16, VRING_DESC_F_WRITE, 0);
	for (i = 0; i < 4; i++) {
		avail_add((uint16_t)(3 - i));
		cr_assert_eq(vq_pop(&q, &mem, &e), 1);
		cr_assert_eq(e.head, 3 - i);
		cr_assert_eq(e.wr[0].iov_base, g2h(DATA_GPA + 0x100 * (3 - i)));
		expect = (uint16_t)(65534 + i + 1);
		cr_assert_eq(q.last_avail, expect);
		cr_assert_eq(*avail_event, expect, "avail_event follows last_avail");
		vq_push(&q, e.head, 7 + i);
		cr_assert_eq(U->idx, expect);
		/* 65534 & 3 == 2: slots 2, 3, 0, 1 */
		cr_assert_eq(U->ring[(2 + i) & 3].id, 3 - i);
		cr_assert_eq(U->ring[(2 + i) & 3].len, 7 + i);
		vq_elem_release(&e);
	}
	cr_assert_eq(U->idx, 2);
	cr_assert_eq(vq_pop(&q, &mem, &e), 0);
}

Test(ring, ring_push_publishes_used_entry_and_idx)
{
	ring_setup(8, 0, 3);
	cr_assert_eq(q.used_idx, 3);
	vq_push(&q, 6, 1234);
	cr_assert_eq(U->idx, 4);
	cr_assert_eq(U->ring[3].id, 6);
	cr_assert_eq(U->ring[3].len, 1234);
	vq_push(&q, 2, 0);
	cr_assert_eq(U->idx, 5);
	cr_assert_eq(U->ring[4].id, 2);
	cr_assert_eq(U->ring[4].len, 0);
}

Test(ring, ring_pop_writes_only_avail_event)
{
	struct vring_desc *t = g2h(TABLE_GPA);
	static uint8_t dsnap[16 * 256], asnap[6 + 2 * 256], tsnap[64];
	struct vq_elem e;

	ring_setup(256, F_EVENT | F_INDIRECT, 0);
	desc_set(t, 0, DATA_GPA, 8, VRING_DESC_F_WRITE, 0);
	desc_set(D, 0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	memcpy(dsnap, D, sizeof(dsnap));
	memcpy(asnap, A, sizeof(asnap));
	memcpy(tsnap, t, sizeof(tsnap));
	snap_used();
	cr_assert_eq(vq_pop(&q, &mem, &e), 1);
	cr_assert_eq(memcmp(dsnap, D, sizeof(dsnap)), 0);
	cr_assert_eq(memcmp(asnap, A, sizeof(asnap)), 0);
	cr_assert_eq(memcmp(tsnap, t, sizeof(tsnap)), 0);
	cr_assert_eq(memcmp(used_snap, U, 4 + 8 * 256), 0);
	cr_assert_eq(*avail_event_ptr(), 1);
	vq_elem_release(&e);
}

static int efd_make(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	cr_assert(fd >= 0);
	return fd;
}

/* Counter value of the eventfd (0 if not signalled), reset to 0. */
static uint64_t efd_take(int fd)
{
	uint64_t v = 0;
	if (read(fd, &v, sizeof(v)) != sizeof(v)) {
		cr_assert_eq(errno, EAGAIN);
		return 0;
	}
	return v;
}

/* An 8-entry EVENT_IDX ring whose call fd is a fresh eventfd; *used_event
 * points at the guest's used_event word. Returns the eventfd. */
static int ring_event_setup(volatile uint16_t **used_event)
{
	int fd = efd_make();

	ring_setup(8, F_EVENT, 0);
	q.call_fd = fd;
	*used_event = &A->ring[8];
	return fd;
}

Test(ring, ring_event_idx_signals_first_then_per_used_event)
{
	volatile uint16_t *used_event;
	int fd = ring_event_setup(&used_event);

	*used_event = 100; /* "do not call" - ignored the first time */
	vq_push(&q, 0, 0);
	vq_notify(&q);
	cr_assert_eq(efd_take(fd), 1, "first completion after start always signals");
	vq_push(&q, 1, 0);
	vq_notify(&q);
	cr_assert_eq(efd_take(fd), 0, "used_event 100 not crossed");
	*used_event = 2; /* guest wants a call once used->idx passes 2 */
	vq_push(&q, 2, 0);
	vq_notify(&q);
	cr_assert_eq(efd_take(fd), 1, "used idx 2 -> 3 crosses used_event 2");
	vq_push(&q, 3, 0);
	vq_notify(&q);
	cr_assert_eq(efd_take(fd), 0, "already past used_event");
	*used_event = 4;
	vq_push(&q, 4, 0);
	vq_push(&q, 5, 0);
	vq_notify(&q);
	cr_assert_eq(efd_take(fd), 1, "batch 4 -> 6 crosses used_event 4");
	vq_notify(&q);
	cr_assert_eq(efd_take(fd), 0, "nothing new since the last call");
	close(fd);
}

/* The quiet-ring check's question: has the guest re-armed its interrupt at
 * our used index? A guest whose used_event store we missed (its barrier not
 * honoured) looks "behind" until it does; vq_notify_force then signals
 * whatever used_event says. */
Test(ring, ring_guest_behind_until_it_rearms_at_our_used_index)
{
	volatile uint16_t *used_event;
	int fd = ring_event_setup(&used_event);

	*used_event = 0;
	cr_assert(!vq_guest_behind(&q), "nothing published yet");
	vq_push(&q, 0, 0);
	vq_push(&q, 1, 0);
	cr_assert(vq_guest_behind(&q), "two replies the guest has not re-armed for");
	*used_event = 2; /* the guest took both and waits for the third */
	cr_assert(!vq_guest_behind(&q));
	*used_event = 1; /* the missed-store case: stale used_event */
	cr_assert(vq_guest_behind(&q));
	vq_notify_force(&q);
	cr_assert_eq(efd_take(fd), 1, "forced interrupt");
	close(fd);
	/* Without EVENT_IDX the guest's progress cannot be seen: always behind. */
	ring_setup(8, 0, 0);
	cr_assert(vq_guest_behind(&q));
}

Test(ring, ring_no_interrupt_suppresses_call_without_event_idx)
{
	int fd = efd_make();

	ring_setup(8, 0, 0);
	q.call_fd = fd;
	A->flags = VRING_AVAIL_F_NO_INTERRUPT;
	vq_push(&q, 0, 0);
	vq_notify(&q);
	cr_assert_eq(efd_take(fd), 0);
	A->flags = 0;
	vq_push(&q, 1, 0);
	vq_notify(&q);
	cr_assert_eq(efd_take(fd), 1);
	close(fd);
}

Test(ring, ring_enable_notify_clears_no_notify_and_reports_new_entries)
{
	ring_setup(8, 0, 0);
	vq_disable_notify(&q);
	cr_assert_eq(U->flags, VRING_USED_F_NO_NOTIFY);
	cr_assert_not(vq_enable_notify(&q));
	cr_assert_eq(U->flags, 0);
	desc_set(D, 0, DATA_GPA, 8, 0, 0);
	avail_add(0);
	cr_assert(vq_enable_notify(&q));
}

Test(ring, ring_enable_notify_with_event_idx_sets_avail_event)
{
	volatile uint16_t *avail_event;

	ring_setup(8, F_EVENT, 10);
	avail_event = avail_event_ptr();
	cr_assert_not(vq_enable_notify(&q));
	cr_assert_eq(*avail_event, 10);
	cr_assert_eq(U->flags, 0, "NO_NOTIFY is not used with EVENT_IDX");
	desc_set(D, 0, DATA_GPA, 8, 0, 0);
	avail_add(0);
	cr_assert(vq_enable_notify(&q));
	cr_assert_eq(*avail_event, 11);
}

/* While the worker polls, the driver's next index must not cross avail_event
 * (vring_need_event false): the value sits one behind our position. */
Test(ring, ring_disable_notify_with_event_idx_stops_kicks)
{
	volatile uint16_t *avail_event;
	uint16_t old;

	ring_setup(8, F_EVENT, 0xffff);
	avail_event = avail_event_ptr();
	vq_disable_notify(&q);
	cr_assert_eq(*avail_event, 0xfffe);
	old = A->idx;
	desc_set(D, 0, DATA_GPA, 8, 0, 0);
	avail_add(0);
	cr_assert_not(vring_need_event(*avail_event, A->idx, old));
	cr_assert(vq_enable_notify(&q));
	cr_assert_eq(*avail_event, A->idx);
}

Test(ring, ring_init_rejects_bad_queue_sizes)
{
	memset(&q, 0, sizeof(q));
	cr_assert_eq(
	    vq_init(&q, &mem, 100, 0, U_BASE + DESC_GPA, U_BASE + AVAIL_GPA, U_BASE + USED_GPA, 0),
	    -EINVAL);
	cr_assert_eq(
	    vq_init(&q, &mem, 0, 0, U_BASE + DESC_GPA, U_BASE + AVAIL_GPA, U_BASE + USED_GPA, 0),
	    -EINVAL);
	cr_assert_eq(
	    vq_init(&q, &mem, 32768, 0, U_BASE + DESC_GPA, U_BASE + 0x180000, U_BASE + 0x1a0000, 0),
	    0, "32768 is the largest size");
}

Test(ring, ring_init_rejects_rings_outside_regions)
{
	memset(&q, 0, sizeof(q));
	/* desc table in the hole */
	cr_assert_eq(
	    vq_init(&q, &mem, 256, 0, U_BASE + 0xa0000, U_BASE + AVAIL_GPA, U_BASE + USED_GPA, 0),
	    -EFAULT);
	/* used ring (6 + 8 * 256 bytes) running past the end of RAM */
	cr_assert_eq(vq_init(&q, &mem, 256, 0, U_BASE + DESC_GPA, U_BASE + AVAIL_GPA,
			     U_BASE + R2_END - 0x800, 0),
		     -EFAULT);
	/* avail ring at a front-end address no region covers */
	cr_assert_eq(vq_init(&q, &mem, 256, 0, U_BASE + DESC_GPA, AVAIL_GPA + 0x1000000,
			     U_BASE + USED_GPA, 0),
		     -EFAULT);
	/* avail ring straddling two regions */
	cr_assert_eq(vq_init(&q, &mem, 256, 0, U_BASE + DESC_GPA, U_BASE + R2_GPA - 0x100,
			     U_BASE + USED_GPA, 0),
		     -EFAULT);
	cr_assert(q.broken, "a failed init leaves the queue unusable");
}

Test(ring, ring_retranslate_follows_new_mapping)
{
	struct vq_mem mem2;
	struct vq_elem e;
	int fds[NREG] = {memfd, memfd, memfd, memfd};

	ring_setup(8, 0, 0);
	cr_assert_eq(vq_mem_map(&mem2, layout, NREG, fds), 0);
	cr_assert_eq(vq_retranslate(&q, &mem2), 0);
	cr_assert_neq((void *)q.avail, (void *)A);
	desc_set(D, 0, DATA_GPA, 8, 0, 0);
	avail_add(0);
	cr_assert_eq(vq_pop(&q, &mem2, &e), 1);
	cr_assert_eq(e.rd[0].iov_base, vq_mem_gpa_ptr(&mem2, DATA_GPA, 8));
	vq_elem_release(&e);
	vq_mem_unmap(&mem2);
	/* A table without the rings breaks the queue instead of keeping stale pointers. */
	cr_assert_eq(vq_mem_map(&mem2, layout, 1, fds), 0);
	cr_assert_eq(vq_retranslate(&q, &mem2), -EFAULT);
	cr_assert(q.broken);
	cr_assert(vq_pop(&q, &mem2, &e) < 0);
	vq_mem_unmap(&mem2);
}

Test(mem, mem_map_rejects_overflowing_geometry)
{
	struct ipc_region r = {.ir_gpa = UINT64_MAX - 10, .ir_size = 100};
	struct vq_mem m;
	int fds[BH_MAX_MEM_REGIONS + 1];
	struct ipc_region many[BH_MAX_MEM_REGIONS + 1];
	unsigned i;

	cr_assert_eq(vq_mem_map(&m, &r, 1, &memfd), -EINVAL);
	r = (struct ipc_region){.ir_uaddr = UINT64_MAX - 10, .ir_size = 100};
	cr_assert_eq(vq_mem_map(&m, &r, 1, &memfd), -EINVAL);
	r = (struct ipc_region){.ir_mmap_offset = UINT64_MAX - 10, .ir_size = 100};
	cr_assert_eq(vq_mem_map(&m, &r, 1, &memfd), -EINVAL);
	for (i = 0; i <= BH_MAX_MEM_REGIONS; i++) {
		fds[i] = memfd;
		many[i] = (struct ipc_region){.ir_gpa = i * 4096ULL, .ir_size = 4096};
	}
	cr_assert_eq(vq_mem_map(&m, many, BH_MAX_MEM_REGIONS + 1, fds), -EINVAL);
	cr_assert_eq(vq_mem_map(&m, many, BH_MAX_MEM_REGIONS, fds), 0);
	cr_assert_eq(m.nregions, BH_MAX_MEM_REGIONS);
	vq_mem_unmap(&m);
	cr_assert_eq(m.nregions, 0);
}

/* Mappings of the test memfd in /proc/self/maps. */
static unsigned guest_mappings(void)
{
	char line[512];
	unsigned n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "memfd:guest") != NULL)
			n++;
	fclose(f);
	return n;
}

Test(mem, mem_map_failure_leaves_nothing_mapped)
{
	struct ipc_region r[3] = {{.ir_gpa = 0, .ir_size = 4096},
				  {.ir_gpa = 4096, .ir_size = 4096},
				  {.ir_gpa = 8192, .ir_size = 4096}};
	int fds[3] = {memfd, memfd, 9999};
	unsigned before = guest_mappings();
	struct vq_mem m;

	cr_assert_eq(before, NREG);
	cr_assert_eq(vq_mem_map(&m, r, 3, fds), -EBADF);
	cr_assert_eq(m.nregions, 0);
	cr_assert_eq(guest_mappings(), before);
	fds[2] = -1;
	cr_assert_eq(vq_mem_map(&m, r, 3, fds), -EINVAL);
	cr_assert_eq(guest_mappings(), before);
}

/* A memfd of len bytes, with seals when asked. */
static int file_of(size_t len, unsigned seals)
{
	int fd = memfd_create("short", MFD_CLOEXEC | (seals ? MFD_ALLOW_SEALING : 0));

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)len), 0);
	if (seals)
		cr_assert_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

/* mmap takes a region past the end of its file; the first access would be
 * SIGBUS. Refused before anything is mapped. */
Test(mem, mem_map_refuses_region_past_the_end_of_its_file)
{
	struct ipc_region r[2] = {
	    {.ir_gpa = 0, .ir_size = 0x10000},
	    {.ir_gpa = 0x100000, .ir_size = 0x10000, .ir_mmap_offset = 0x8000}};
	int fd = file_of(0x10000, 0), fds[2] = {memfd, fd};
	unsigned before = guest_mappings();
	struct vq_mem m;

	/* region 1 runs 0x8000 bytes past the file's end */
	cr_assert_eq(vq_mem_map(&m, r, 2, fds), -ENXIO);
	cr_assert_eq(m.nregions, 0);
	cr_assert_eq(guest_mappings(), before, "region 0 stayed mapped");
	r[1].ir_size = 0x8001;
	cr_assert_eq(vq_mem_map(&m, r, 2, fds), -ENXIO);
	/* ending exactly at the end of the file is fine */
	r[1].ir_size = 0x8000;
	cr_assert_eq(vq_mem_map(&m, r, 2, fds), 0);
	cr_assert_not_null(vq_mem_gpa_ptr(&m, 0x100000 + 0x7fff, 1));
	vq_mem_unmap(&m);
	close(fd);
}

Test(mem, mem_map_notes_whether_the_file_can_shrink)
{
	struct ipc_region r = {.ir_size = 0x1000};
	int fds[3] = {file_of(0x1000, 0), file_of(0x1000, F_SEAL_GROW),
		      file_of(0x1000, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)};
	bool want[3] = {false, false, true};
	struct vq_mem m;

	for (int i = 0; i < 3; i++) {
		cr_assert_eq(vq_mem_map(&m, &r, 1, &fds[i]), 0);
		cr_assert_eq(m.regions[0].sealed, want[i], "file %d", i);
		vq_mem_unmap(&m);
		close(fds[i]);
	}
}

/* What the SIGBUS handler looks addresses up in. */
Test(mem, mem_fault_registry_knows_live_mappings_only)
{
	uint8_t *h2 = mem.regions[2].host;
	struct gm_fault f;
	struct vq_mem m;
	int ok;

	cr_assert_eq(gm_fault_find(h2 + 0x1234, &f), 1);
	cr_assert_eq(f.f_index, 2);
	cr_assert_eq(f.f_region_gpa, R2_GPA);
	cr_assert_eq(f.f_region_size, R2_END - R2_GPA);
	cr_assert_eq(f.f_gpa, R2_GPA + 0x1234);
	cr_assert_eq(f.f_file_off, 0x400000 + 0x1234, "mapped from offset 0 of the file");
	cr_assert(!f.f_sealed);
	ok = gm_fault_find(&f, &f);
	cr_assert_eq(ok, 0, "a stack address is not guest memory");
	/* a second table: both are found; once unmapped, neither */
	cr_assert_eq(vq_mem_map(&m, layout, 2, (int[]){memfd, memfd}), 0);
	cr_assert_eq(gm_fault_find(m.regions[1].host, &f), 1);
	cr_assert_eq(f.f_index, 1);
	cr_assert_eq(f.f_gpa, R1_GPA);
	vq_mem_unmap(&m);
	cr_assert_eq(gm_fault_find(h2, &f), 1);
	vq_mem_unmap(&mem);
	cr_assert_eq(gm_fault_find(h2, &f), 0);
}

Test(mem, mem_translates_by_gpa_and_by_uaddr)
{
	struct iovec iov[2];
	unsigned n = 0;
	uint8_t b = 0;

	cr_assert_eq(vq_mem_uaddr_ptr(&mem, U_BASE + DATA_GPA, 16),
		     vq_mem_gpa_ptr(&mem, DATA_GPA, 16));
	cr_assert_null(vq_mem_gpa_ptr(&mem, R2_GPA - 8, 16), "pointer needs one region");
	cr_assert_null(vq_mem_gpa_ptr(&mem, 0x9fff0, 0x20));
	cr_assert_eq(vq_mem_gpa_iov(&mem, R2_GPA - 8, 16, iov, &n, 1), -E2BIG);
	cr_assert_eq(vq_mem_gpa_iov(&mem, R2_GPA - 8, 16, iov, &n, 2), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(vq_mem_gpa_iov(&mem, UINT64_MAX, 2, iov, &n, 2), -EFAULT);
	/* The file offsets really differ: writes land where the layout says. */
	*(uint8_t *)vq_mem_gpa_ptr(&mem, R1_GPA, 1) = 0x5a;
	cr_assert_eq(pread(memfd, &b, 1, 0x100000), 1);
	cr_assert_eq(b, 0x5a);
}

/* ---- byte streams ---- */

static uint8_t s0[1], s1[3], s2[5], s3[7];
static const struct iovec stream[] = {
    {s0, sizeof(s0)}, {s1, 0}, {s1, sizeof(s1)}, {s2, sizeof(s2)}, {s3, sizeof(s3)}};
#define SLEN 16u
#define SN   5u

static void stream_fill(void)
{
	uint8_t v = 0;
	unsigned i, j;

	for (i = 0; i < SN; i++)
		for (j = 0; j < stream[i].iov_len; j++)
			((uint8_t *)stream[i].iov_base)[j] = v++;
}

Test(iov, iov_read_returns_bytes_at_every_offset)
{
	uint8_t buf[SLEN + 4];
	size_t off, len, want, i;

	stream_fill();
	for (off = 0; off <= SLEN + 1; off++)
		for (len = 0; len <= SLEN + 1; len++) {
			memset(buf, 0xee, sizeof(buf));
			want = off >= SLEN ? 0 : (len < SLEN - off ? len : SLEN - off);
			cr_assert_eq(vq_iov_read(stream, SN, off, buf, len), want,
				     "off %zu len %zu", off, len);
			for (i = 0; i < want; i++)
				cr_assert_eq(buf[i], off + i);
			cr_assert_eq(buf[want], 0xee, "read past the count");
		}
}

Test(iov, iov_write_stores_bytes_at_every_offset)
{
	uint8_t src[SLEN + 2], back[SLEN];
	size_t off, len, want, i;

	for (i = 0; i < sizeof(src); i++)
		src[i] = 0x80 + i;
	for (off = 0; off <= SLEN + 1; off++)
		for (len = 0; len <= SLEN + 1; len++) {
			stream_fill();
			want = off >= SLEN ? 0 : (len < SLEN - off ? len : SLEN - off);
			cr_assert_eq(vq_iov_write(stream, SN, off, src, len), want);
			cr_assert_eq(vq_iov_read(stream, SN, 0, back, SLEN), SLEN);
			for (i = 0; i < SLEN; i++)
				cr_assert_eq(back[i],
					     i >= off && i < off + want ? 0x80 + i - off : i,
					     "off %zu len %zu byte %zu", off, len, i);
		}
}

Test(iov, iov_slice_covers_exactly_the_range_at_every_offset)
{
	struct iovec out[SN];
	size_t off, len, want, got, i;
	unsigned k, n;
	uint8_t b;

	stream_fill();
	for (off = 0; off <= SLEN + 1; off++)
		for (len = 0; len <= SLEN + 1; len++) {
			want = off >= SLEN ? 0 : (len < SLEN - off ? len : SLEN - off);
			n = vq_iov_slice(stream, SN, off, len, out, SN);
			got = 0;
			for (k = 0; k < n; k++) {
				cr_assert_gt(out[k].iov_len, 0, "no empty entries");
				for (i = 0; i < out[k].iov_len; i++) {
					b = ((uint8_t *)out[k].iov_base)[i];
					cr_assert_eq(b, off + got + i);
				}
				got += out[k].iov_len;
			}
			cr_assert_eq(got, want, "off %zu len %zu", off, len);
		}
	/* max bounds the entries */
	cr_assert_eq(vq_iov_slice(stream, SN, 0, SLEN, out, 2), 2);
	cr_assert_eq(out[1].iov_len, 3);
}
