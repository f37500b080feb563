/*
 * virtqueue.h - guest memory and the split virtqueue, device side.
 * Runs in: the worker (sandboxed). Everything read from guest memory is
 * hostile: indices, descriptors and addresses are checked here, once, and
 * the rest of the worker trusts a struct vq_elem.
 */
#ifndef BH_VIRTQUEUE_H
#define BH_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "bulkhead.h"

/* ---- guest memory (worker/guest_mem.c) ---- */

struct vq_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
	uint8_t *host;      /* mapping base + mmap_offset */
	void *map_base;     /* what mmap returned (offset 0 of the fd) */
	size_t map_len;     /* mmap_offset + size */
	bool sealed;	    /* the file cannot shrink (F_SEAL_SHRINK) */
};

struct vq_mem {
	unsigned nregions;
	struct vq_region regions[BH_MAX_MEM_REGIONS];
};

/*
 * Map regions (fds[i] for regions[i]; mmap from offset 0 with length
 * mmap_offset + size, MAP_SHARED). The fds are not closed. On failure
 * nothing stays mapped. 0 or -errno: -EINVAL for overflowing geometry,
 * -ENXIO for a region past the end of its (regular) file, which mmap would
 * take and the first access would turn into SIGBUS, -ENOSPC when more than
 * GM_LIVE_MAX regions would be mapped at once (tables still held by
 * requests in flight). Each mapped region is registered for the SIGBUS
 * handler (gm_fault_find) until vq_mem_unmap.
 */
struct ipc_region;
int vq_mem_map(struct vq_mem *mem, const struct ipc_region *regions, unsigned n,
	       const int *fds);
void vq_mem_unmap(struct vq_mem *mem);

/*
 * Translate the guest-physical range [gpa, gpa+len) into iovecs, splitting
 * at region boundaries. Appends at iov[*niov], never beyond max. 0, or
 * -EFAULT if any byte is outside the regions (or gpa+len overflows), or
 * -E2BIG if more than max iovecs would be needed.
 */
int vq_mem_gpa_iov(const struct vq_mem *mem, uint64_t gpa, uint64_t len, struct iovec *iov,
		   unsigned *niov, unsigned max);

/* Host pointer for a contiguous guest-physical range inside one region, or NULL. */
void *vq_mem_gpa_ptr(const struct vq_mem *mem, uint64_t gpa, uint64_t len);

/* Host pointer for a front-end virtual address range (ring addresses)
 * contained in one region, or NULL. */
void *vq_mem_uaddr_ptr(const struct vq_mem *mem, uint64_t uaddr, uint64_t len);

/* Regions mapped at once, over every table still in use. */
#define GM_LIVE_MAX (8 * BH_MAX_MEM_REGIONS)

/* Where a host address lies in guest memory (gm_fault_find). */
struct gm_fault {
	uint32_t f_index;      /* the region's index in its table */
	uint64_t f_region_gpa; /* the region */
	uint64_t f_region_size;
	uint64_t f_file_off; /* offset of the address in the region's file */
	uint64_t f_gpa;	     /* guest-physical address (f_region_gpa if before it) */
	bool f_sealed;
};

/*
 * Is addr inside a live guest mapping? 1 and *f, or 0. Async-signal-safe
 * and lock-free, for the SIGBUS handler on any thread; the registry
 * changes only on the loop thread (vq_mem_map, vq_mem_unmap).
 */
int gm_fault_find(const void *addr, struct gm_fault *f);

/* ---- split virtqueue (worker/virtqueue.c) ---- */

/* Hard cap on descriptors in one chain (direct + indirect), as QEMU's 1024. */
#define VQ_MAX_CHAIN 1024
/* Hard cap on iovecs per direction for one element. */
#define VQ_MAX_IOV 2048

struct vq {
	uint16_t num;             /* queue size */
	uint16_t last_avail;      /* next avail index to pop */
	uint16_t used_idx;        /* next used index to publish (shadow) */
	uint16_t signalled_used;  /* used index at the last call */
	uint16_t inuse;		  /* popped, not yet pushed: at most num */
	bool signalled_valid;
	bool event_idx;           /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;            /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool broken;              /* structural corruption seen: stop */
	/* raw front-end addresses (kept to re-translate after a memory change) */
	uint64_t desc_uaddr, avail_uaddr, used_uaddr;
	/* host pointers into guest memory */
	volatile struct vring_desc *desc;
	volatile struct vring_avail *avail;
	volatile struct vring_used *used;
	int call_fd;              /* -1: do not signal */
	int err_fd;               /* -1: none */
	struct iovec *scratch;    /* 2 * VQ_MAX_IOV entries, used while walking */
};

/* Free what vq_init allocated (not the fds). */
void vq_fini(struct vq *vq);

/* One popped request: device-readable then device-writable iovecs. The
 * iovec array (rd, then wr) is the element's own when it fits, else
 * allocated by vq_pop to the exact size; vq_elem_release frees it. An
 * element must not be copied by value while it holds iovecs. */
/* Small requests (every metadata operation, 4 KiB I/O) fit in the element
 * itself, so the common case allocates nothing. */
#define VQ_INLINE_IOV 8

struct vq_elem {
	uint16_t head;
	unsigned nrd, nwr;
	uint64_t rd_len, wr_len;  /* total bytes per direction */
	struct iovec *rd;         /* e_inline or an allocated array */
	struct iovec *wr;         /* == rd + nrd */
	struct iovec e_inline[VQ_INLINE_IOV];
};

void vq_elem_release(struct vq_elem *e);

/*
 * Set up the ring: num must be a power of two <= BH_MAX_QUEUE_SIZE and each
 * area (desc 16*num, avail 6+2*num, used 6+8*num) must lie in one region.
 * used_idx is read from used->idx. 0 or -EINVAL/-EFAULT.
 */
int vq_init(struct vq *vq, const struct vq_mem *mem, uint16_t num, uint16_t base,
	    uint64_t desc, uint64_t avail, uint64_t used, uint64_t features);

/* Re-translate the ring areas after a memory table change. 0 or -EFAULT. */
int vq_retranslate(struct vq *vq, const struct vq_mem *mem);

/*
 * Pop the next available chain. Returns 1 with *e filled (-ENOMEM if the
 * iovec array cannot be allocated; the entry is then not consumed), 0 when nothing is
 * available, or a negative errno when the ring is structurally corrupt
 * (too many new entries, head/next out of range, loop, over-long chain,
 * nested or malformed indirect table, readable after writable, bad or
 * overflowing address, zero-length descriptor): vq->broken is set and the
 * caller stops the queue (and signals err_fd) - no used entry is written.
 * -EOVERFLOW is the same for a chain offered while num chains are in flight
 * already (popped, not pushed): a guest that offers a head again before its
 * used entry would make the worker hold requests without bound.
 */
int vq_pop(struct vq *vq, const struct vq_mem *mem, struct vq_elem *e);

/* Publish one used entry {head, len} (release ordering). */
void vq_push(struct vq *vq, uint16_t head, uint32_t len);

/* Signal call_fd if the guest wants it (EVENT_IDX / NO_INTERRUPT). */
void vq_notify(struct vq *vq);

/* Re-arm guest kicks (avail_event or NO_NOTIFY cleared) and report whether
 * more entries arrived meanwhile (full fence + re-read). */
bool vq_enable_notify(struct vq *vq);
/* Suppress kicks while busy. */
void vq_disable_notify(struct vq *vq);

/* Number of entries the guest has made available beyond last_avail (0 if corrupt). */
unsigned vq_avail_count(struct vq *vq);

/* Has the guest left used entries it may not know about? With EVENT_IDX:
 * it has not re-armed its interrupt at our used index (it is still taking
 * them, or it missed the interrupt); without: whenever we published any.
 * For the worker's quiet-ring check. */
bool vq_guest_behind(struct vq *vq);
/* Signal call_fd whatever the guest asked for (a spurious interrupt costs
 * the guest a look at the used ring, nothing more). */
void vq_notify_force(struct vq *vq);

/* ---- byte streams over iovecs (for FUSE framing) ---- */

/* Copy up to len bytes starting at byte offset off of the iovec stream into
 * dst; returns bytes copied. */
size_t vq_iov_read(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len);
/* Copy into the stream at offset off; returns bytes written (never past the end). */
size_t vq_iov_write(const struct iovec *iov, unsigned n, size_t off, const void *src, size_t len);
/* Build a sub-range [off, off+len) of an iovec stream into out (max entries). Returns
 * entries used; the bytes covered may be fewer than len if the stream is shorter. */
unsigned vq_iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len,
		      struct iovec *out, unsigned max);

#endif
