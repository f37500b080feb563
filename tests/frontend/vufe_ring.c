/*
 * vufe_ring.c - the test front end's split rings, driver side (docs/protocol.md
 * §D): lay rings out in guest memory, post scatter lists as plain chains or
 * one indirect table (the Linux form), kick and wait like a Linux driver with
 * EVENT_IDX, and corrupt a ring on purpose for hostile tests. Runs in: test
 * and bench programs only; used entries from the back end are checked.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "vhost_user.h"
#include "vufe_int.h"

#define VUFE_USED_ALIGN 64

static uint16_t *vufe_used_event(struct vufe_queue *vq)
{
	return &vq->q_avail->ring[vq->q_num];
}

static uint16_t *vufe_avail_event(struct vufe_queue *vq)
{
	return (uint16_t *)&vq->q_used->ring[vq->q_num];
}

static int vufe_event_idx(struct vufe *fe)
{
	return (fe->fe_acked & (1ull << VU_F_RING_EVENT_IDX)) != 0;
}

static void vufe_ring_free_mem(struct vufe *fe, struct vufe_queue *vq)
{
	if (vq->q_slots) {
		for (unsigned i = 0; i < vq->q_num; i++)
			if (vq->q_slots[i].s_ind_gpa)
				vufe_release(fe, vq->q_slots[i].s_ind_gpa,
					     vq->q_slots[i].s_ind_cap * sizeof(struct vring_desc));
	}
	if (vq->q_mem)
		vufe_release(fe, vq->q_mem_gpa, vq->q_mem_len);
	free(vq->q_slots);
	free(vq->q_free_next);
	vq->q_slots = NULL;
	vq->q_free_next = NULL;
	vq->q_mem = NULL;
}

int vufe_ring_init(struct vufe *fe, unsigned q)
{
	struct vufe_queue *vq = &fe->fe_q[q];
	unsigned num = fe->fe_opts.queue_size;
	size_t desc_len = 16u * num, avail_len = 6u + 2u * num, used_off, used_len = 6u + 8u * num;

	vufe_ring_free_mem(fe, vq);
	used_off = (desc_len + avail_len + VUFE_USED_ALIGN - 1) & ~(size_t)(VUFE_USED_ALIGN - 1);
	vq->q_num = num;
	vq->q_mem_len = used_off + used_len;
	vq->q_mem = vufe_alloc(fe, vq->q_mem_len, &vq->q_mem_gpa);
	vq->q_slots = calloc(num, sizeof(*vq->q_slots));
	vq->q_free_next = calloc(num, sizeof(*vq->q_free_next));
	if (!vq->q_mem || !vq->q_slots || !vq->q_free_next) {
		vufe_ring_free_mem(fe, vq);
		return -ENOMEM;
	}
	vq->q_desc = (struct vring_desc *)vq->q_mem;
	vq->q_avail = (struct vring_avail *)(vq->q_mem + desc_len);
	vq->q_used = (struct vring_used *)(vq->q_mem + used_off);
	vq->q_desc_gpa = vq->q_mem_gpa;
	vq->q_avail_gpa = vq->q_mem_gpa + desc_len;
	vq->q_used_gpa = vq->q_mem_gpa + used_off;
	for (unsigned i = 0; i < num; i++)
		vq->q_free_next[i] = (uint16_t)(i + 1);
	vq->q_free_head = 0;
	vq->q_nfree = num;
	vq->q_inflight = 0;
	vq->q_avail_idx = vq->q_kicked_idx = vq->q_last_used = 0;
	vq->q_base = 0;
	return 0;
}

void vufe_ring_fini(struct vufe *fe, unsigned q)
{
	vufe_ring_free_mem(fe, &fe->fe_q[q]);
}

int vufe_ring_relayout(struct vufe *fe, unsigned q)
{
	struct vufe_queue *vq = &fe->fe_q[q];
	uint8_t *old = vq->q_mem;
	uint64_t old_gpa = vq->q_mem_gpa;
	size_t old_len = vq->q_mem_len;
	int r;

	/* allocate the new ring before freeing the old so the addresses differ */
	vq->q_mem = NULL;
	for (unsigned i = 0; vq->q_slots && i < vq->q_num; i++)
		if (vq->q_slots[i].s_ind_gpa)
			vufe_release(fe, vq->q_slots[i].s_ind_gpa,
				     vq->q_slots[i].s_ind_cap * sizeof(struct vring_desc));
	free(vq->q_slots);
	free(vq->q_free_next);
	vq->q_slots = NULL;
	vq->q_free_next = NULL;
	r = vufe_ring_init(fe, q);
	if (old)
		vufe_release(fe, old_gpa, old_len);
	return r;
}

void vufe_ring_set_base(struct vufe *fe, unsigned q, unsigned base)
{
	fe->fe_q[q].q_base = base;
}

unsigned vufe_inflight(struct vufe *fe, unsigned q)
{
	return fe->fe_q[q].q_inflight;
}

void vufe_set_used_event_raw(struct vufe *fe, unsigned q, uint16_t v)
{
	__atomic_store_n(vufe_used_event(&fe->fe_q[q]), v, __ATOMIC_SEQ_CST);
}

uint16_t vufe_used_idx(struct vufe *fe, unsigned q)
{
	return __atomic_load_n(&fe->fe_q[q].q_used->idx, __ATOMIC_ACQUIRE);
}

uint16_t vufe_avail_idx(struct vufe *fe, unsigned q)
{
	return fe->fe_q[q].q_avail_idx;
}

static int vufe_desc_get(struct vufe_queue *vq)
{
	int d = vq->q_free_head;

	if (vq->q_nfree == 0)
		return -ENOSPC;
	vq->q_free_head = vq->q_free_next[d];
	vq->q_nfree--;
	return d;
}

static void vufe_desc_put(struct vufe_queue *vq, int d)
{
	vq->q_free_next[d] = (uint16_t)vq->q_free_head;
	vq->q_free_head = d;
	vq->q_nfree++;
}

static void vufe_publish(struct vufe_queue *vq, uint16_t head)
{
	vq->q_avail->ring[vq->q_avail_idx & (vq->q_num - 1)] = head;
	vq->q_avail_idx++;
	__atomic_store_n(&vq->q_avail->idx, vq->q_avail_idx, __ATOMIC_RELEASE);
}

void vufe_kick(struct vufe *fe, unsigned q)
{
	struct vufe_queue *vq = &fe->fe_q[q];
	uint16_t old = vq->q_kicked_idx, new = vq->q_avail_idx;
	uint64_t one = 1;
	int need;

	/* the avail idx store must be visible before we read the suppression state */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vq->q_kicked_idx = new;
	if (fe->fe_opts.always_kick)
		need = 1;
	else if (vufe_event_idx(fe))
		need = vring_need_event(__atomic_load_n(vufe_avail_event(vq), __ATOMIC_RELAXED),
					new, old);
	else
		need = !(__atomic_load_n(&vq->q_used->flags, __ATOMIC_RELAXED) &
			 VRING_USED_F_NO_NOTIFY);
	if (need && vq->q_kick_fd >= 0)
		(void)!write(vq->q_kick_fd, &one, sizeof(one));
}

int vufe_submit(struct vufe *fe, unsigned q, const struct vufe_sg *sg, unsigned n, int mode,
		void *cookie, int kick)
{
	struct vufe_queue *vq;
	struct vufe_slot *s;
	int head, indirect;

	if (q >= VUFE_MAX_QUEUES || n == 0)
		return -EINVAL;
	vq = &fe->fe_q[q];
	if (!vq->q_mem)
		return -ENXIO;
	indirect = mode == VUFE_INDIRECT || (mode == VUFE_AUTO && n > 1 &&
					     (fe->fe_acked & (1ull << VU_F_RING_INDIRECT_DESC)));
	if (indirect) {
		struct vring_desc *t;
		if ((head = vufe_desc_get(vq)) < 0)
			return head;
		s = &vq->q_slots[head];
		if (s->s_ind_cap < n) {
			uint32_t cap = (uint32_t)((n * sizeof(*t) + VUFE_PAGE - 1) / VUFE_PAGE *
						  VUFE_PAGE / sizeof(*t));
			if (s->s_ind_gpa)
				vufe_release(fe, s->s_ind_gpa, s->s_ind_cap * sizeof(*t));
			s->s_ind_gpa = 0;
			s->s_ind_cap = 0;
			if (!vufe_alloc(fe, cap * sizeof(*t), &s->s_ind_gpa)) {
				vufe_desc_put(vq, head);
				return -ENOMEM;
			}
			s->s_ind_cap = cap;
		}
		t = vufe_gpa_ptr(fe, s->s_ind_gpa, n * sizeof(*t));
		for (unsigned i = 0; i < n; i++) {
			t[i].addr = sg[i].gpa;
			t[i].len = sg[i].len;
			t[i].flags = (uint16_t)((sg[i].write ? VRING_DESC_F_WRITE : 0) |
						(i + 1 < n ? VRING_DESC_F_NEXT : 0));
			t[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
		}
		vq->q_desc[head].addr = s->s_ind_gpa;
		vq->q_desc[head].len = (uint32_t)(n * sizeof(*t));
		vq->q_desc[head].flags = VRING_DESC_F_INDIRECT;
		vq->q_desc[head].next = 0;
		s->s_ndesc = 1;
	} else {
		int prev = -1;
		if (n > vq->q_nfree)
			return -ENOSPC;
		head = -1;
		for (unsigned i = 0; i < n; i++) {
			int d = vufe_desc_get(vq);
			vq->q_desc[d].addr = sg[i].gpa;
			vq->q_desc[d].len = sg[i].len;
			vq->q_desc[d].flags = sg[i].write ? VRING_DESC_F_WRITE : 0;
			vq->q_desc[d].next = 0;
			if (prev >= 0) {
				vq->q_desc[prev].flags |= VRING_DESC_F_NEXT;
				vq->q_desc[prev].next = (uint16_t)d;
				vq->q_free_next[prev] = (uint16_t)d; /* our private copy */
			} else {
				head = d;
			}
			prev = d;
		}
		s = &vq->q_slots[head];
		s->s_ndesc = n;
	}
	s->s_busy = 1;
	s->s_cookie = cookie;
	vq->q_inflight++;
	vufe_publish(vq, (uint16_t)head);
	if (kick)
		vufe_kick(fe, q);
	return head;
}

static int vufe_reap(struct vufe *fe, struct vufe_queue *vq, int *head, uint32_t *len,
		     void **cookie)
{
	struct vring_used_elem e = vq->q_used->ring[vq->q_last_used & (vq->q_num - 1)];
	struct vufe_slot *s;
	int d;

	vq->q_last_used++;
	/* like Linux's get_buf: ask for an interrupt at the next entry */
	if (vufe_event_idx(fe))
		__atomic_store_n(vufe_used_event(vq), vq->q_last_used, __ATOMIC_SEQ_CST);
	if (e.id >= vq->q_num || !vq->q_slots[e.id].s_busy)
		return -EPROTO;
	s = &vq->q_slots[e.id];
	/* give the chain's descriptors back, walking our own copy of the links */
	d = (int)e.id;
	for (unsigned i = 0; i < s->s_ndesc; i++) {
		int next = vq->q_free_next[d];
		vufe_desc_put(vq, d);
		d = next;
	}
	s->s_busy = 0;
	vq->q_inflight--;
	if (head)
		*head = (int)e.id;
	if (len)
		*len = e.len;
	if (cookie)
		*cookie = s->s_cookie;
	return 0;
}

int vufe_wait(struct vufe *fe, unsigned q, int timeout_ms, int *head, uint32_t *len, void **cookie)
{
	struct vufe_queue *vq = &fe->fe_q[q];
	uint64_t deadline = bh_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		uint16_t used = __atomic_load_n(&vq->q_used->idx, __ATOMIC_ACQUIRE);
		struct pollfd p = {vq->q_call_fd, POLLIN, 0};
		uint64_t now, v;

		if (used != vq->q_last_used) {
			if ((uint16_t)(used - vq->q_last_used) > vq->q_num)
				return -EPROTO;
			return vufe_reap(fe, vq, head, len, cookie);
		}
		/* ask for an interrupt at the next used entry, then look again so
		 * a completion published meanwhile is not missed */
		if (vufe_event_idx(fe))
			__atomic_store_n(vufe_used_event(vq), vq->q_last_used, __ATOMIC_RELAXED);
		else
			__atomic_store_n(&vq->q_avail->flags, 0, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&vq->q_used->idx, __ATOMIC_ACQUIRE) != vq->q_last_used)
			continue;
		now = bh_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		if (vq->q_call_fd < 0) {
			usleep(1000);
			continue;
		}
		if (poll(&p, 1, (int)((deadline - now + 999999) / 1000000)) < 0 && errno != EINTR)
			return -errno;
		if (p.revents & POLLIN)
			(void)!read(vq->q_call_fd, &v, sizeof(v));
	}
}

/* ---- hostile helpers ---- */

struct vring_desc *vufe_ring_desc(struct vufe *fe, unsigned q)
{
	return fe->fe_q[q].q_desc;
}

void vufe_publish_raw(struct vufe *fe, unsigned q, uint16_t head)
{
	vufe_publish(&fe->fe_q[q], head);
}

void vufe_set_avail_idx_raw(struct vufe *fe, unsigned q, uint16_t idx)
{
	__atomic_store_n(&fe->fe_q[q].q_avail->idx, idx, __ATOMIC_RELEASE);
}

int vufe_submit_loop(struct vufe *fe, unsigned q)
{
	struct vufe_queue *vq = &fe->fe_q[q];
	uint64_t gpa;
	int a, b;

	if (!vufe_alloc(fe, VUFE_PAGE, &gpa))
		return -ENOMEM;
	/* the two descriptors stay taken: the back end must never complete them */
	if ((a = vufe_desc_get(vq)) < 0 || (b = vufe_desc_get(vq)) < 0)
		return -ENOSPC;
	vq->q_desc[a] = (struct vring_desc){gpa, 64, VRING_DESC_F_NEXT, (uint16_t)b};
	vq->q_desc[b] = (struct vring_desc){gpa + 64, 64, VRING_DESC_F_NEXT, (uint16_t)a};
	vufe_publish(vq, (uint16_t)a);
	vufe_kick(fe, q);
	return a;
}

int vufe_submit_bad_addr(struct vufe *fe, unsigned q)
{
	struct vufe_queue *vq = &fe->fe_q[q];
	int a;

	if ((a = vufe_desc_get(vq)) < 0)
		return -ENOSPC;
	/* far above every region */
	vq->q_desc[a] = (struct vring_desc){1ull << 40, 4096, 0, 0};
	vufe_publish(vq, (uint16_t)a);
	vufe_kick(fe, q);
	return a;
}

void vufe_avail_jump(struct vufe *fe, unsigned q)
{
	struct vufe_queue *vq = &fe->fe_q[q];
	uint64_t one = 1;

	__atomic_store_n(&vq->q_avail->idx, (uint16_t)(vq->q_avail_idx + vq->q_num + 5),
			 __ATOMIC_RELEASE);
	(void)!write(vq->q_kick_fd, &one, sizeof(one));
}
