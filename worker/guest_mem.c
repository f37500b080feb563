/*
 * guest_mem.c - map the front end's memory regions and translate guest
 * addresses into host pointers and iovecs.
 * Runs in: the worker (sandboxed). The region table comes from the parent,
 * which copied it from the front end without interpreting it, so its
 * geometry is checked here; every guest address is checked against it.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "ipc.h"
#include "virtqueue.h"

/*
 * Descriptors of one request usually hit the same region; remember the last
 * hit per thread. It is only a hint, re-checked against whatever table the
 * caller passes, so a stale value after a table change is harmless.
 */
static __thread unsigned gm_hint;

static void gm_unmap_regions(struct vq_region *r, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (r[i].map_base != NULL)
			munmap(r[i].map_base, r[i].map_len);
		r[i].map_base = NULL;
		r[i].host = NULL;
	}
}

int vq_mem_map(struct vq_mem *mem, const struct ipc_region *regions, unsigned n, const int *fds)
{
	struct vq_region *r;
	const struct ipc_region *ir;
	void *p;
	unsigned i;
	int rc;

	memset(mem, 0, sizeof(*mem));
	if (n > BH_MAX_MEM_REGIONS)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		ir = &regions[i];
		r = &mem->regions[i];
		/* Every end address is computed later without re-checking. */
		if (ir->ir_size == 0 || ir->ir_gpa > UINT64_MAX - ir->ir_size ||
		    ir->ir_uaddr > UINT64_MAX - ir->ir_size ||
		    ir->ir_mmap_offset > UINT64_MAX - ir->ir_size ||
		    ir->ir_mmap_offset + ir->ir_size > SIZE_MAX || fds[i] < 0) {
			rc = -EINVAL;
			goto fail;
		}
		/* From offset 0: mmap_offset need not be a multiple of the
		 * backing page size (hugetlbfs). */
		p = mmap(NULL, ir->ir_mmap_offset + ir->ir_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_NORESERVE, fds[i], 0);
		if (p == MAP_FAILED) {
			rc = -errno;
			goto fail;
		}
		r->gpa = ir->ir_gpa;
		r->size = ir->ir_size;
		r->uaddr = ir->ir_uaddr;
		r->map_base = p;
		r->map_len = ir->ir_mmap_offset + ir->ir_size;
		r->host = (uint8_t *)p + ir->ir_mmap_offset;
	}
	mem->nregions = n;
	return 0;
fail:
	gm_unmap_regions(mem->regions, i);
	memset(mem, 0, sizeof(*mem));
	return rc;
}

void vq_mem_unmap(struct vq_mem *mem)
{
	gm_unmap_regions(mem->regions, mem->nregions);
	mem->nregions = 0;
}

/* Region holding guest-physical byte gpa, or NULL. */
static const struct vq_region *gm_find_gpa(const struct vq_mem *mem, uint64_t gpa)
{
	const struct vq_region *r;
	unsigned i, hint = gm_hint;

	if (hint < mem->nregions) {
		r = &mem->regions[hint];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	for (i = 0; i < mem->nregions; i++) {
		r = &mem->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size) {
			gm_hint = i;
			return r;
		}
	}
	return NULL;
}

int vq_mem_gpa_iov(const struct vq_mem *mem, uint64_t gpa, uint64_t len, struct iovec *iov,
		   unsigned *niov, unsigned max)
{
	const struct vq_region *r;
	uint64_t off, chunk;
	unsigned k = *niov;

	if (len > UINT64_MAX - gpa)
		return -EFAULT;
	while (len > 0) {
		r = gm_find_gpa(mem, gpa);
		if (r == NULL)
			return -EFAULT;
		if (k >= max)
			return -E2BIG;
		off = gpa - r->gpa;
		chunk = r->size - off;
		if (chunk > len)
			chunk = len;
		iov[k].iov_base = r->host + off;
		iov[k].iov_len = chunk;
		k++;
		gpa += chunk;
		len -= chunk;
	}
	*niov = k;
	return 0;
}

void *vq_mem_gpa_ptr(const struct vq_mem *mem, uint64_t gpa, uint64_t len)
{
	const struct vq_region *r;

	r = gm_find_gpa(mem, gpa);
	if (r == NULL || len > r->size - (gpa - r->gpa))
		return NULL;
	return r->host + (gpa - r->gpa);
}

void *vq_mem_uaddr_ptr(const struct vq_mem *mem, uint64_t uaddr, uint64_t len)
{
	const struct vq_region *r;
	unsigned i;

	/* Ring set-up only: not worth a hint. */
	for (i = 0; i < mem->nregions; i++) {
		r = &mem->regions[i];
		if (uaddr >= r->uaddr && uaddr - r->uaddr < r->size) {
			if (len > r->size - (uaddr - r->uaddr))
				return NULL;
			return r->host + (uaddr - r->uaddr);
		}
	}
	return NULL;
}
