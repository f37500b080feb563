/*
 * guest_mem.c - map the front end's memory regions and translate guest
 * addresses into host pointers and iovecs; the registry of live mappings
 * the SIGBUS handler (guest_fault.c) reads.
 * Runs in: the worker (sandboxed). The region table comes from the parent,
 * which copied it from the front end without interpreting it, so its
 * geometry is checked here, and the files against it; every guest address
 * is checked against it. The front end keeps its files and may still
 * shrink one that is not sealed: the pages past the new end then fault
 * (SIGBUS), which guest_fault.c turns into the end of the connection.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "ipc.h"
#include "log.h"
#include "virtqueue.h"

/*
 * Descriptors of one request usually hit the same region; remember the last
 * hit per thread. It is only a hint, re-checked against whatever table the
 * caller passes, so a stale value after a table change is harmless.
 */
static __thread unsigned gm_hint;

/*
 * Every live mapping, for a signal handler on any thread: a sequence count
 * per slot (odd while the loop thread rewrites it) lets a reader tell a
 * torn copy from a stable one without a lock. A slot is cleared before its
 * mapping goes, and a mapping goes only once no request uses it, so the
 * slot of an address being faulted on is stable.
 */
struct gm_live {
	uint32_t l_seq;
	uintptr_t l_base; /* 0: free */
	uintptr_t l_host;
	size_t l_len;
	uint64_t l_gpa;
	uint64_t l_size;
	uint32_t l_index;
	uint32_t l_sealed;
};

static struct gm_live gm_live[GM_LIVE_MAX];

static void gm_live_set(struct gm_live *l, const struct vq_region *r, unsigned index)
{
	uint32_t seq = __atomic_load_n(&l->l_seq, __ATOMIC_RELAXED);

	__atomic_store_n(&l->l_seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&l->l_base, r ? (uintptr_t)r->map_base : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&l->l_host, r ? (uintptr_t)r->host : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&l->l_len, r ? r->map_len : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&l->l_gpa, r ? r->gpa : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&l->l_size, r ? r->size : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&l->l_index, index, __ATOMIC_RELAXED);
	__atomic_store_n(&l->l_sealed, r ? r->sealed : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&l->l_seq, seq + 2, __ATOMIC_RELEASE);
}

/* Loop thread: a free slot for region r, or -ENOSPC. */
static int gm_live_add(const struct vq_region *r, unsigned index)
{
	for (unsigned i = 0; i < GM_LIVE_MAX; i++) {
		if (__atomic_load_n(&gm_live[i].l_base, __ATOMIC_RELAXED) == 0) {
			gm_live_set(&gm_live[i], r, index);
			return 0;
		}
	}
	return -ENOSPC;
}

static void gm_live_del(const void *base)
{
	for (unsigned i = 0; i < GM_LIVE_MAX; i++)
		if (__atomic_load_n(&gm_live[i].l_base, __ATOMIC_RELAXED) == (uintptr_t)base)
			gm_live_set(&gm_live[i], NULL, 0);
}

int gm_fault_find(const void *addr, struct gm_fault *f)
{
	uintptr_t a = (uintptr_t)addr, base, host;
	uint32_t seq;
	size_t len;

	for (unsigned i = 0; i < GM_LIVE_MAX; i++) {
		struct gm_live *l = &gm_live[i];

		seq = __atomic_load_n(&l->l_seq, __ATOMIC_ACQUIRE);
		if (seq & 1)
			continue;
		base = __atomic_load_n(&l->l_base, __ATOMIC_RELAXED);
		len = __atomic_load_n(&l->l_len, __ATOMIC_RELAXED);
		host = __atomic_load_n(&l->l_host, __ATOMIC_RELAXED);
		f->f_index = __atomic_load_n(&l->l_index, __ATOMIC_RELAXED);
		f->f_region_gpa = __atomic_load_n(&l->l_gpa, __ATOMIC_RELAXED);
		f->f_region_size = __atomic_load_n(&l->l_size, __ATOMIC_RELAXED);
		f->f_sealed = __atomic_load_n(&l->l_sealed, __ATOMIC_RELAXED) != 0;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&l->l_seq, __ATOMIC_RELAXED) != seq)
			continue;
		if (base == 0 || a < base || a - base >= len)
			continue;
		f->f_file_off = a - base;
		f->f_gpa = f->f_region_gpa + (a >= host ? a - host : 0);
		return 1;
	}
	return 0;
}

static void gm_unmap_regions(struct vq_region *r, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (r[i].map_base != NULL) {
			gm_live_del(r[i].map_base);
			munmap(r[i].map_base, r[i].map_len);
		}
		r[i].map_base = NULL;
		r[i].host = NULL;
	}
}

/*
 * The file must hold the whole region: mmap maps past its end without a
 * word, and the first access there is SIGBUS. The parent checked this when
 * the table arrived, but the front end keeps the file and may have shrunk
 * it since. Whether it can shrink later is noted (QEMU's memfd backend
 * seals it by default). Other kinds (a DAX device) have no size to check.
 */
static int gm_check_file(int fd, const struct ipc_region *ir, unsigned i, bool *sealed)
{
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < ir->ir_mmap_offset + ir->ir_size) {
		log_warnx("memory region %u (gpa 0x%llx, 0x%llx bytes at file offset 0x%llx) "
			  "extends past the end of its file (0x%llx bytes): not mapped",
			  i, (unsigned long long)ir->ir_gpa, (unsigned long long)ir->ir_size,
			  (unsigned long long)ir->ir_mmap_offset, (unsigned long long)st.st_size);
		return -ENXIO;
	}
	seals = fcntl(fd, F_GET_SEALS);
	*sealed = seals >= 0 && (seals & F_SEAL_SHRINK);
	return 0;
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
		if ((rc = gm_check_file(fds[i], ir, i, &r->sealed)) < 0)
			goto fail;
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
		log_debug("memory region %u: gpa 0x%llx, 0x%llx bytes at file offset 0x%llx, %s", i,
			  (unsigned long long)r->gpa, (unsigned long long)r->size,
			  (unsigned long long)ir->ir_mmap_offset,
			  r->sealed ? "sealed against shrinking" : "can shrink (not sealed)");
		if ((rc = gm_live_add(r, i)) < 0) {
			log_warnx("memory region %u: %u regions are mapped already (older tables "
				  "are held by requests in flight)",
				  i, GM_LIVE_MAX);
			munmap(p, r->map_len);
			r->map_base = NULL;
			goto fail;
		}
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
