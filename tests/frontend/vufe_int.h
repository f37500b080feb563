/*
 * vufe_int.h - state shared by the front end's files (vufe.c, vufe_ring.c,
 * vufe_fuse.c). Runs in: test and bench programs only.
 */
#ifndef BH_VUFE_INT_H
#define BH_VUFE_INT_H

#include <stdint.h>

#include <linux/virtio_ring.h>

#include "vufe.h"

#define VUFE_PAGE 4096u

struct vufe_region {
	uint64_t r_gpa;
	uint64_t r_size;
	uint8_t *r_host; /* our pointer to gpa r_gpa (= the uaddr we announce) */
	uint64_t r_mmap_offset;
	int r_fd;	/* memfd backing it (shared by regions 0 and 1) */
	uint8_t *r_map; /* base of the mapping we own, NULL if another region owns it */
	size_t r_map_len;
	uint8_t *r_used; /* one byte per page: 1 = allocated */
	size_t r_npages;
	size_t r_hint;
};

struct vufe_slot {
	int s_busy;
	unsigned s_ndesc;   /* descriptors taken from the table */
	uint64_t s_ind_gpa; /* indirect table kept for reuse (0 = none) */
	uint32_t s_ind_cap; /* its capacity in entries */
	void *s_cookie;
};

struct vufe_queue {
	unsigned q_num;
	uint8_t *q_mem; /* ring memory (desc, avail, used) */
	uint64_t q_mem_gpa;
	size_t q_mem_len;
	struct vring_desc *q_desc;
	struct vring_avail *q_avail;
	struct vring_used *q_used;
	uint64_t q_desc_gpa, q_avail_gpa, q_used_gpa;
	uint16_t q_avail_idx;  /* next avail index we publish */
	uint16_t q_kicked_idx; /* avail idx at the last kick decision */
	uint16_t q_last_used;  /* next used entry we read */
	unsigned q_base;       /* sent by SET_VRING_BASE */
	uint16_t *q_free_next;
	int q_free_head;
	unsigned q_nfree;
	unsigned q_inflight;
	struct vufe_slot *q_slots;
	int q_kick_fd, q_call_fd, q_err_fd, q_masked_call_fd;
};

struct vufe {
	struct vufe_opts fe_opts;
	int fe_sock;
	int fe_memfd;
	struct vufe_region fe_regions[VUFE_MAX_REGIONS];
	unsigned fe_nregions;
	struct vufe_queue fe_q[VUFE_MAX_QUEUES];
	unsigned fe_nqueues;
	uint64_t fe_offered, fe_offered_pf, fe_acked, fe_acked_pf, fe_queue_num;
	int fe_need_reply_all;
	uint64_t fe_skip; /* requests the sequences leave out */
	uint64_t fe_last_ack;
	uint64_t fe_unique;
};

int vufe_ring_init(struct vufe *fe, unsigned q);
void vufe_ring_fini(struct vufe *fe, unsigned q);
int vufe_region_of(struct vufe *fe, uint64_t gpa);

#endif
