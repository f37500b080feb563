/*
 * virtqueue.c - the split virtqueue, device side: pop descriptor chains,
 * publish used entries, decide on notifications.
 * Runs in: the worker (sandboxed). The rings live in guest memory, which the
 * guest may rewrite at any moment: every descriptor is copied once into
 * private memory and validated there, every index is bounded before use,
 * and the only guest words ever written are the used ring, used->idx,
 * used->flags and avail_event. One thread drives a given struct vq.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_ring.h>

#include "util.h"
#include "virtqueue.h"

#define VQ_F_INDIRECT_DESC (1ULL << VIRTIO_RING_F_INDIRECT_DESC)
#define VQ_F_EVENT_IDX	   (1ULL << VIRTIO_RING_F_EVENT_IDX)
#define VQ_DESC_SIZE	   16u

/* Private copy of one descriptor, host byte order. */
struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Walk state of one chain; iovecs go to scratch (rd) and scratch+VQ_MAX_IOV (wr). */
struct vq_walk {
	struct iovec *rd, *wr;
	unsigned nrd, nwr;
	uint64_t rd_len, wr_len;
	unsigned ndesc; /* data descriptors seen, direct and indirect */
};

static inline uint16_t vq_load16(volatile uint16_t *p, int order)
{
	return le16toh(__atomic_load_n(p, order));
}

static inline void vq_store16(volatile uint16_t *p, uint16_t v, int order)
{
	__atomic_store_n(p, htole16(v), order);
}

static volatile uint16_t *vq_used_event(struct vq *vq)
{
	return (volatile uint16_t *)&vq->avail->ring[vq->num];
}

static volatile uint16_t *vq_avail_event(struct vq *vq)
{
	return (volatile uint16_t *)&vq->used->ring[vq->num];
}

/* One read of each field through a volatile pointer: the compiler may not
 * fetch them again later, so the guest cannot change what was validated. */
static void vq_desc_load(volatile const struct vring_desc *src, struct vq_desc *d)
{
	d->addr = le64toh(src->addr);
	d->len = le32toh(src->len);
	d->flags = le16toh(src->flags);
	d->next = le16toh(src->next);
}

static int vq_map_rings(struct vq *vq, const struct vq_mem *mem)
{
	size_t num = vq->num;
	void *d, *a, *u;

	d = vq_mem_uaddr_ptr(mem, vq->desc_uaddr, VQ_DESC_SIZE * num);
	a = vq_mem_uaddr_ptr(mem, vq->avail_uaddr, 6 + 2 * num);
	u = vq_mem_uaddr_ptr(mem, vq->used_uaddr, 6 + 8 * num);
	if (d == NULL || a == NULL || u == NULL)
		return -EFAULT;
	/* The spec's alignments; atomic 16-bit accesses need at least 2. */
	if (((uintptr_t)d & 15) != 0 || ((uintptr_t)a & 1) != 0 || ((uintptr_t)u & 3) != 0)
		return -EINVAL;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	return 0;
}

int vq_init(struct vq *vq, const struct vq_mem *mem, uint16_t num, uint16_t base, uint64_t desc,
	    uint64_t avail, uint64_t used, uint64_t features)
{
	int rc;

	/* call_fd and err_fd belong to the caller and are left alone. */
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->scratch = NULL;
	vq->broken = true;
	if (num == 0 || (num & (num - 1)) != 0 || num > BH_MAX_QUEUE_SIZE)
		return -EINVAL;
	vq->num = num;
	vq->desc_uaddr = desc;
	vq->avail_uaddr = avail;
	vq->used_uaddr = used;
	if ((rc = vq_map_rings(vq, mem)) != 0) {
		vq->desc = NULL;
		vq->avail = NULL;
		vq->used = NULL;
		return rc;
	}
	vq->scratch = calloc(2 * VQ_MAX_IOV, sizeof(*vq->scratch));
	if (vq->scratch == NULL)
		return -ENOMEM;
	vq->last_avail = base;
	vq->inuse = 0;
	vq->used_idx = vq_load16(&vq->used->idx, __ATOMIC_RELAXED);
	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = false;
	vq->event_idx = (features & VQ_F_EVENT_IDX) != 0;
	vq->indirect = (features & VQ_F_INDIRECT_DESC) != 0;
	vq->broken = false;
	return 0;
}

void vq_fini(struct vq *vq)
{
	free(vq->scratch);
	vq->scratch = NULL;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
}

int vq_retranslate(struct vq *vq, const struct vq_mem *mem)
{
	int rc;

	if ((rc = vq_map_rings(vq, mem)) != 0) {
		/* The old pointers are about to be unmapped: never use them again. */
		vq->desc = NULL;
		vq->avail = NULL;
		vq->used = NULL;
		vq->broken = true;
		return -EFAULT;
	}
	return 0;
}

void vq_elem_release(struct vq_elem *e)
{
	if (e->rd != e->e_inline)
		free(e->rd);
	e->rd = NULL;
	e->wr = NULL;
	e->nrd = 0;
	e->nwr = 0;
}

/* Add one data descriptor (already copied) to the walk. */
static int vq_walk_buf(const struct vq_mem *mem, const struct vq_desc *d, struct vq_walk *w)
{
	int rc;

	if (d->len == 0)
		return -EINVAL;
	if (d->flags & VRING_DESC_F_WRITE) {
		w->wr_len += d->len;
		if (w->wr_len > UINT32_MAX)
			return -EINVAL;
		rc = vq_mem_gpa_iov(mem, d->addr, d->len, w->wr, &w->nwr, VQ_MAX_IOV);
	} else {
		if (w->nwr > 0)
			return -EINVAL; /* readable after writable */
		w->rd_len += d->len;
		if (w->rd_len > UINT32_MAX)
			return -EINVAL;
		rc = vq_mem_gpa_iov(mem, d->addr, d->len, w->rd, &w->nrd, VQ_MAX_IOV);
	}
	return rc;
}

/*
 * Copy indirect entry i of the table at gpa when the table is not inside one
 * region: translate its 16 bytes alone (they may straddle two regions).
 */
static int vq_indirect_load_slow(const struct vq_mem *mem, uint64_t gpa, unsigned i,
				 struct vq_desc *d)
{
	struct iovec iov[VQ_DESC_SIZE];
	struct vring_desc raw;
	unsigned n = 0, k;
	size_t got = 0;
	int rc;

	rc = vq_mem_gpa_iov(mem, gpa + (uint64_t)i * VQ_DESC_SIZE, VQ_DESC_SIZE, iov, &n,
			    VQ_DESC_SIZE);
	if (rc != 0)
		return -EFAULT;
	for (k = 0; k < n; k++) {
		memcpy((uint8_t *)&raw + got, iov[k].iov_base, iov[k].iov_len);
		got += iov[k].iov_len;
	}
	/* Keep the compiler from re-reading guest memory instead of raw. */
	__asm__ __volatile__("" ::: "memory");
	vq_desc_load(&raw, d);
	return 0;
}

static int vq_walk_indirect(const struct vq_mem *mem, const struct vq_desc *ind, struct vq_walk *w)
{
	volatile const struct vring_desc *table;
	struct vq_desc d;
	unsigned n, i = 0, seen = 0;
	int rc;

	if (ind->len == 0 || ind->len % VQ_DESC_SIZE != 0)
		return -EINVAL;
	if (ind->addr > UINT64_MAX - ind->len)
		return -EFAULT;
	n = ind->len / VQ_DESC_SIZE;
	table = vq_mem_gpa_ptr(mem, ind->addr, ind->len);
	for (;;) {
		/* Both bounds also end loops inside the table. */
		if (++seen > n || ++w->ndesc > VQ_MAX_CHAIN)
			return -ELOOP;
		if (table != NULL)
			vq_desc_load(&table[i], &d);
		else if ((rc = vq_indirect_load_slow(mem, ind->addr, i, &d)) != 0)
			return rc;
		if (d.flags & VRING_DESC_F_INDIRECT)
			return -EINVAL; /* nested */
		if ((rc = vq_walk_buf(mem, &d, w)) != 0)
			return rc;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= n)
			return -EINVAL;
		i = d.next;
	}
}

static int vq_walk_chain(struct vq *vq, const struct vq_mem *mem, uint16_t head, struct vq_walk *w)
{
	struct vq_desc d;
	unsigned i = head, ndirect = 0;
	int rc;

	for (;;) {
		if (++ndirect > vq->num)
			return -ELOOP;
		vq_desc_load(&vq->desc[i], &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vq->indirect || (d.flags & VRING_DESC_F_NEXT))
				return -EINVAL;
			/* Ends the chain ("direct descriptors, then one indirect");
			 * it holds no data, so only the table's entries count. */
			return vq_walk_indirect(mem, &d, w);
		}
		if (++w->ndesc > VQ_MAX_CHAIN)
			return -ELOOP;
		if ((rc = vq_walk_buf(mem, &d, w)) != 0)
			return rc;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= vq->num)
			return -EINVAL;
		i = d.next;
	}
}

static int vq_fail(struct vq *vq, int rc)
{
	vq->broken = true;
	return rc;
}

int vq_pop(struct vq *vq, const struct vq_mem *mem, struct vq_elem *e)
{
	struct vq_walk w;
	struct iovec *iov;
	uint16_t avail_idx, head;
	int rc;

	if (vq->broken || vq->avail == NULL)
		return -EIO;
	/* Acquire: ring entries and descriptors are read after the index. */
	avail_idx = vq_load16(&vq->avail->idx, __ATOMIC_ACQUIRE);
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->num)
		return vq_fail(vq, -EINVAL);
	if (avail_idx == vq->last_avail)
		return 0;
	/* As QEMU's "Virtqueue size exceeded": every request holds memory. */
	if (vq->inuse >= vq->num)
		return vq_fail(vq, -EOVERFLOW);
	head = vq_load16(&vq->avail->ring[vq->last_avail & (vq->num - 1)], __ATOMIC_RELAXED);
	if (head >= vq->num)
		return vq_fail(vq, -EINVAL);

	memset(&w, 0, sizeof(w));
	w.rd = vq->scratch;
	w.wr = vq->scratch + VQ_MAX_IOV;
	if ((rc = vq_walk_chain(vq, mem, head, &w)) != 0)
		return vq_fail(vq, rc);

	if (w.nrd + w.nwr <= VQ_INLINE_IOV)
		iov = e->e_inline;
	else if ((iov = malloc((w.nrd + w.nwr) * sizeof(*iov))) == NULL)
		return -ENOMEM;
	memcpy(iov, w.rd, w.nrd * sizeof(*iov));
	memcpy(iov + w.nrd, w.wr, w.nwr * sizeof(*iov));
	e->head = head;
	e->nrd = w.nrd;
	e->nwr = w.nwr;
	e->rd_len = w.rd_len;
	e->wr_len = w.wr_len;
	e->rd = iov;
	e->wr = iov + w.nrd;

	vq->last_avail++;
	vq->inuse++;
	if (vq->event_idx)
		vq_store16(vq_avail_event(vq), vq->last_avail, __ATOMIC_RELAXED);
	return 1;
}

void vq_push(struct vq *vq, uint16_t head, uint32_t len)
{
	volatile struct vring_used_elem *ue;

	if (vq->used == NULL)
		return;
	if (vq->inuse > 0)
		vq->inuse--;
	ue = &vq->used->ring[vq->used_idx & (vq->num - 1)];
	ue->id = htole32(head);
	ue->len = htole32(len);
	vq->used_idx++;
	/* Release: reply bytes and the element are visible before the index. */
	vq_store16(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

void vq_notify(struct vq *vq)
{
	uint16_t old, new;
	bool valid;

	if (vq->used == NULL)
		return;
	/* Our used->idx store must be ordered before reading the guest's wishes. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->event_idx) {
		old = vq->signalled_used;
		new = vq->used_idx;
		valid = vq->signalled_valid;
		vq->signalled_used = new;
		vq->signalled_valid = true;
		/* After a (re)start the guest's used_event may predate us. */
		if (valid &&
		    !vring_need_event(vq_load16(vq_used_event(vq), __ATOMIC_RELAXED), new, old))
			return;
	} else if (vq_load16(&vq->avail->flags, __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT) {
		return;
	}
	if (vq->call_fd >= 0)
		bh_eventfd_signal(vq->call_fd);
}

bool vq_enable_notify(struct vq *vq)
{
	uint16_t avail_idx;

	if (vq->broken || vq->used == NULL)
		return false;
	if (vq->event_idx)
		vq_store16(vq_avail_event(vq), vq_load16(&vq->avail->idx, __ATOMIC_RELAXED),
			   __ATOMIC_RELAXED);
	else
		vq_store16(&vq->used->flags, 0, __ATOMIC_RELAXED);
	/* A kick sent before the guest saw the store above would be lost. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	avail_idx = vq_load16(&vq->avail->idx, __ATOMIC_ACQUIRE);
	/* Any difference, even a corrupt one: vq_pop reports it. */
	return avail_idx != vq->last_avail;
}

void vq_disable_notify(struct vq *vq)
{
	if (vq->broken || vq->used == NULL)
		return;
	/*
	 * With EVENT_IDX, an avail_event just behind our position is one the
	 * guest's next index cannot cross for 65535 entries: no kicks. vq_pop
	 * moves it back to last_avail after each pop, so this holds only
	 * while the worker polls the ring between pops, which is what it is
	 * for; vq_enable_notify ends it.
	 */
	if (vq->event_idx)
		vq_store16(vq_avail_event(vq), (uint16_t)(vq->last_avail - 1), __ATOMIC_RELAXED);
	else
		vq_store16(&vq->used->flags, VRING_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
}

bool vq_guest_behind(struct vq *vq)
{
	if (vq->broken || vq->used == NULL || vq->avail == NULL)
		return false;
	if (!vq->event_idx)
		return true;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vq_load16(vq_used_event(vq), __ATOMIC_RELAXED) != vq->used_idx;
}

void vq_notify_force(struct vq *vq)
{
	if (vq->used != NULL && vq->call_fd >= 0)
		bh_eventfd_signal(vq->call_fd);
}

unsigned vq_avail_count(struct vq *vq)
{
	uint16_t n;

	if (vq->broken || vq->avail == NULL)
		return 0;
	n = vq_load16(&vq->avail->idx, __ATOMIC_ACQUIRE) - vq->last_avail;
	return n > vq->num ? 0 : n;
}

/* Find the iovec holding stream offset off; *skip gets the offset inside it. */
static unsigned vq_iov_seek(const struct iovec *iov, unsigned n, size_t off, size_t *skip)
{
	unsigned i;

	for (i = 0; i < n && off >= iov[i].iov_len; i++)
		off -= iov[i].iov_len;
	*skip = off;
	return i;
}

size_t vq_iov_read(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len)
{
	size_t skip, chunk, done = 0;
	unsigned i;

	for (i = vq_iov_seek(iov, n, off, &skip); i < n && done < len; i++, skip = 0) {
		chunk = iov[i].iov_len - skip;
		if (chunk > len - done)
			chunk = len - done;
		memcpy((uint8_t *)dst + done, (const uint8_t *)iov[i].iov_base + skip, chunk);
		done += chunk;
	}
	return done;
}

size_t vq_iov_write(const struct iovec *iov, unsigned n, size_t off, const void *src, size_t len)
{
	size_t skip, chunk, done = 0;
	unsigned i;

	for (i = vq_iov_seek(iov, n, off, &skip); i < n && done < len; i++, skip = 0) {
		chunk = iov[i].iov_len - skip;
		if (chunk > len - done)
			chunk = len - done;
		memcpy((uint8_t *)iov[i].iov_base + skip, (const uint8_t *)src + done, chunk);
		done += chunk;
	}
	return done;
}

unsigned vq_iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len,
		      struct iovec *out, unsigned max)
{
	size_t skip, chunk, done = 0;
	unsigned i, k = 0;

	for (i = vq_iov_seek(iov, n, off, &skip); i < n && done < len && k < max; i++, skip = 0) {
		chunk = iov[i].iov_len - skip;
		if (chunk == 0)
			continue;
		if (chunk > len - done)
			chunk = len - done;
		out[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
		out[k].iov_len = chunk;
		k++;
		done += chunk;
	}
	return k;
}
