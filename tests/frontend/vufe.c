/*
 * vufe.c - the test front end's control side: guest memory, the connection,
 * one function per vhost-user request and the QEMU 7.2 sequences
 * (docs/protocol.md §B.3). Runs in: test and bench programs only; whatever the
 * back end answers is checked before use.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "vhost_user.h"
#include "vufe_int.h"

void vufe_opts_default(struct vufe_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mem_size = 64u << 20;
	o->queue_size = 128;
	o->nqueues = 2;
	o->features = VU_OFFERED_FEATURES;
	o->protocol_features = VU_OFFERED_PROTOCOL_FEATURES;
}

static int vufe_region_setup(struct vufe_region *r, uint64_t gpa, uint64_t size, uint8_t *host,
			     uint64_t mmap_offset, int fd)
{
	memset(r, 0, sizeof(*r));
	r->r_gpa = gpa;
	r->r_size = size;
	r->r_host = host;
	r->r_mmap_offset = mmap_offset;
	r->r_fd = fd;
	r->r_npages = size / VUFE_PAGE;
	r->r_used = calloc(r->r_npages ? r->r_npages : 1, 1);
	return r->r_used ? 0 : -ENOMEM;
}

struct vufe *vufe_new(const struct vufe_opts *o)
{
	struct vufe *fe = calloc(1, sizeof(*fe));
	struct vufe_opts def;
	uint8_t *mem;

	if (!fe)
		return NULL;
	if (!o) {
		vufe_opts_default(&def);
		o = &def;
	}
	fe->fe_opts = *o;
	if (fe->fe_opts.mem_size < 2 * VUFE_HOLE_END)
		fe->fe_opts.mem_size = 2 * VUFE_HOLE_END;
	fe->fe_opts.mem_size &= ~(size_t)(VUFE_PAGE - 1);
	if (!fe->fe_opts.queue_size)
		fe->fe_opts.queue_size = 128;
	if (!fe->fe_opts.nqueues || fe->fe_opts.nqueues > VUFE_MAX_QUEUES)
		fe->fe_opts.nqueues = 2;
	fe->fe_nqueues = fe->fe_opts.nqueues;
	fe->fe_sock = -1;
	fe->fe_unique = 0;
	for (unsigned q = 0; q < VUFE_MAX_QUEUES; q++) {
		fe->fe_q[q].q_kick_fd = fe->fe_q[q].q_call_fd = -1;
		fe->fe_q[q].q_err_fd = fe->fe_q[q].q_masked_call_fd = -1;
	}

	fe->fe_memfd = memfd_create(
	    "vufe-guest-ram", MFD_CLOEXEC | (fe->fe_opts.seal_memory ? MFD_ALLOW_SEALING : 0));
	if (fe->fe_memfd < 0 || ftruncate(fe->fe_memfd, (off_t)fe->fe_opts.mem_size) < 0)
		goto fail;
	if (fe->fe_opts.seal_memory &&
	    fcntl(fe->fe_memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	mem = mmap(NULL, fe->fe_opts.mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, fe->fe_memfd, 0);
	if (mem == MAP_FAILED)
		goto fail;
	/* Two regions with the VGA hole between them, both from one memfd with
	 * mmap_offset = gpa, as QEMU's pc machine presents them. */
	if (vufe_region_setup(&fe->fe_regions[0], 0, VUFE_HOLE_START, mem, 0, fe->fe_memfd) ||
	    vufe_region_setup(&fe->fe_regions[1], VUFE_HOLE_END,
			      fe->fe_opts.mem_size - VUFE_HOLE_END, mem + VUFE_HOLE_END,
			      VUFE_HOLE_END, fe->fe_memfd))
		goto fail;
	fe->fe_regions[0].r_map = mem;
	fe->fe_regions[0].r_map_len = fe->fe_opts.mem_size;
	fe->fe_regions[0].r_used[0] = 1; /* keep gpa 0 unused: a zero address is a bug */
	fe->fe_nregions = 2;

	for (unsigned q = 0; q < fe->fe_nqueues; q++)
		if (vufe_ring_init(fe, q) < 0)
			goto fail;
	return fe;
fail:
	vufe_free(fe);
	return NULL;
}

void vufe_free(struct vufe *fe)
{
	if (!fe)
		return;
	vufe_disconnect(fe);
	for (unsigned q = 0; q < VUFE_MAX_QUEUES; q++) {
		struct vufe_queue *vq = &fe->fe_q[q];
		vufe_ring_fini(fe, q);
		if (vq->q_kick_fd >= 0)
			close(vq->q_kick_fd);
		if (vq->q_call_fd >= 0)
			close(vq->q_call_fd);
		if (vq->q_err_fd >= 0)
			close(vq->q_err_fd);
		if (vq->q_masked_call_fd >= 0)
			close(vq->q_masked_call_fd);
	}
	for (unsigned i = 0; i < fe->fe_nregions; i++) {
		struct vufe_region *r = &fe->fe_regions[i];
		if (r->r_map)
			munmap(r->r_map, r->r_map_len);
		if (r->r_fd >= 0 && r->r_fd != fe->fe_memfd)
			close(r->r_fd);
		free(r->r_used);
	}
	if (fe->fe_memfd >= 0)
		close(fe->fe_memfd);
	free(fe);
}

int vufe_connect(struct vufe *fe, const char *path, int timeout_ms)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	uint64_t deadline = bh_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	vufe_disconnect(fe);
	for (;;) {
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0)
			return -errno;
		if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			/* a back end that never answers must fail the test, not hang it */
			struct timeval tv = {VUFE_TIMEOUT_MS / 1000, 0};
			setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			fe->fe_sock = s;
			return 0;
		}
		int err = errno;
		close(s);
		if (bh_now_ns() >= deadline)
			return -err;
		usleep(20000);
	}
}

void vufe_disconnect(struct vufe *fe)
{
	if (fe->fe_sock >= 0)
		close(fe->fe_sock);
	fe->fe_sock = -1;
}

int vufe_sock(struct vufe *fe)
{
	return fe->fe_sock;
}

unsigned vufe_nqueues(struct vufe *fe)
{
	return fe->fe_nqueues;
}

void vufe_set_nqueues(struct vufe *fe, unsigned n)
{
	if (n == 0 || n > VUFE_MAX_QUEUES)
		return;
	for (unsigned q = fe->fe_nqueues; q < n; q++)
		vufe_ring_init(fe, q);
	fe->fe_nqueues = n;
}

/* ---- guest memory ---- */

int vufe_region_of(struct vufe *fe, uint64_t gpa)
{
	for (unsigned i = 0; i < fe->fe_nregions; i++) {
		struct vufe_region *r = &fe->fe_regions[i];
		if (gpa >= r->r_gpa && gpa - r->r_gpa < r->r_size)
			return (int)i;
	}
	return -1;
}

void *vufe_gpa_ptr(struct vufe *fe, uint64_t gpa, size_t len)
{
	int i = vufe_region_of(fe, gpa);
	struct vufe_region *r;

	if (i < 0)
		return NULL;
	r = &fe->fe_regions[i];
	if (len > r->r_size - (gpa - r->r_gpa))
		return NULL;
	return r->r_host + (gpa - r->r_gpa);
}

static void *vufe_alloc_pages(struct vufe *fe, int region, size_t len, uint64_t *gpa, int zero)
{
	struct vufe_region *r;
	size_t n, start, run = 0;

	if (region < 0 || (unsigned)region >= fe->fe_nregions || len == 0)
		return NULL;
	r = &fe->fe_regions[region];
	n = (len + VUFE_PAGE - 1) / VUFE_PAGE;
	if (n > r->r_npages)
		return NULL;
	/* first fit from a rotating hint, then from the start */
	for (int pass = 0; pass < 2; pass++) {
		size_t from = pass ? 0 : r->r_hint;
		run = 0;
		for (size_t p = from; p < r->r_npages; p++) {
			if (r->r_used[p]) {
				run = 0;
				continue;
			}
			if (++run == n) {
				start = p + 1 - n;
				memset(r->r_used + start, 1, n);
				r->r_hint = p + 1;
				*gpa = r->r_gpa + start * VUFE_PAGE;
				if (zero)
					memset(r->r_host + start * VUFE_PAGE, 0, n * VUFE_PAGE);
				return r->r_host + start * VUFE_PAGE;
			}
		}
	}
	return NULL;
}

void *vufe_alloc_in(struct vufe *fe, int region, size_t len, uint64_t *gpa)
{
	return vufe_alloc_pages(fe, region, len, gpa, 1);
}

void *vufe_reserve(struct vufe *fe, size_t len, uint64_t *gpa)
{
	void *p = vufe_alloc_pages(fe, 1, len, gpa, 0);
	return p ? p : vufe_alloc_pages(fe, 0, len, gpa, 0);
}

void *vufe_alloc(struct vufe *fe, size_t len, uint64_t *gpa)
{
	void *p = vufe_alloc_in(fe, 1, len, gpa);
	return p ? p : vufe_alloc_in(fe, 0, len, gpa);
}

void vufe_release(struct vufe *fe, uint64_t gpa, size_t len)
{
	int i = vufe_region_of(fe, gpa);
	struct vufe_region *r;
	size_t start, n;

	if (i < 0 || len == 0)
		return;
	r = &fe->fe_regions[i];
	start = (gpa - r->r_gpa) / VUFE_PAGE;
	n = (len + VUFE_PAGE - 1) / VUFE_PAGE;
	if (start + n > r->r_npages)
		n = r->r_npages - start;
	memset(r->r_used + start, 0, n);
	if (start < r->r_hint)
		r->r_hint = start;
}

int vufe_region_new(struct vufe *fe, uint64_t gpa, size_t size)
{
	struct vufe_region *r;
	uint8_t *mem;
	int fd;

	if (fe->fe_nregions >= VUFE_MAX_REGIONS)
		return -ENOSPC;
	size = (size + VUFE_PAGE - 1) & ~(size_t)(VUFE_PAGE - 1);
	fd = memfd_create("vufe-hotplug", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    (mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		int err = -errno;
		close(fd);
		return err;
	}
	r = &fe->fe_regions[fe->fe_nregions];
	if (vufe_region_setup(r, gpa, size, mem, 0, fd) < 0) {
		munmap(mem, size);
		close(fd);
		return -ENOMEM;
	}
	r->r_map = mem;
	r->r_map_len = size;
	return (int)fe->fe_nregions++;
}

unsigned vufe_nregions(struct vufe *fe)
{
	return fe->fe_nregions;
}

int vufe_mem_fd(struct vufe *fe)
{
	return fe->fe_memfd;
}

/* ---- control messages ---- */

static int vufe_has_own_reply(uint32_t req)
{
	switch (req) {
	case VU_GET_FEATURES:
	case VU_GET_PROTOCOL_FEATURES:
	case VU_GET_QUEUE_NUM:
	case VU_GET_MAX_MEM_SLOTS:
	case VU_GET_VRING_BASE:
	case VU_GET_CONFIG:
	case VU_GET_STATUS:
		return 1;
	}
	return 0;
}

void vufe_skip(struct vufe *fe, uint32_t req, int on)
{
	if (req >= 64)
		return;
	if (on)
		fe->fe_skip |= 1ull << req;
	else
		fe->fe_skip &= ~(1ull << req);
}

/* Is req left out of the sequences (vufe_negotiate/start/stop)? */
static int vufe_skipped(struct vufe *fe, uint32_t req)
{
	return req < 64 && (fe->fe_skip & (1ull << req));
}

void vufe_set_need_reply_all(struct vufe *fe, int on)
{
	fe->fe_need_reply_all = on;
}

uint64_t vufe_last_ack(struct vufe *fe)
{
	return fe->fe_last_ack;
}

int vufe_request(struct vufe *fe, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
		 const int *fds, size_t nfds, void *reply, uint32_t reply_size)
{
	int r;

	if (fe->fe_sock < 0)
		return -ENOTCONN;
	if (fe->fe_need_reply_all)
		flags |= VU_FLAG_NEED_REPLY;
	r = vu_send_request(fe->fe_sock, req, flags, payload, size, fds, nfds);
	if (r)
		return r;
	if (vufe_has_own_reply(req))
		return vu_recv_reply(fe->fe_sock, req, reply, reply_size);
	if (flags & VU_FLAG_NEED_REPLY) {
		r = vu_recv_reply(fe->fe_sock, req, &fe->fe_last_ack, sizeof(fe->fe_last_ack));
		if (r)
			return r;
		return fe->fe_last_ack ? -EIO : 0;
	}
	return 0;
}

int vufe_send_raw(struct vufe *fe, const void *buf, size_t len, const int *fds, size_t nfds)
{
	struct iovec iov = {(void *)buf, len};
	ssize_t n;

	if (nfds > VU_MAX_FDS)
		return -EINVAL;
	n = bh_sendmsg_fds(fe->fe_sock, &iov, 1, fds, nfds);
	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

int vufe_expect_silence(struct vufe *fe, int ms)
{
	struct pollfd p = {fe->fe_sock, POLLIN, 0};
	char c;

	if (poll(&p, 1, ms) == 0)
		return 0;
	if (recv(fe->fe_sock, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
		return -EPIPE;
	return -EBADMSG;
}

int vufe_expect_eof(struct vufe *fe, int ms)
{
	uint64_t deadline = bh_now_ns() + (uint64_t)ms * 1000000ull;
	char buf[256];

	for (;;) {
		uint64_t now = bh_now_ns();
		struct pollfd p = {fe->fe_sock, POLLIN, 0};
		int left = now >= deadline ? 0 : (int)((deadline - now) / 1000000ull);
		ssize_t n;

		if (poll(&p, 1, left) <= 0)
			return -ETIMEDOUT;
		n = recv(fe->fe_sock, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return 0;
		/* stray bytes (e.g. an ack) before the close are skipped */
	}
}

static int vufe_simple(struct vufe *fe, uint32_t req, const void *p, uint32_t size)
{
	return vufe_request(fe, req, VU_VERSION, p, size, NULL, 0, NULL, 0);
}

static int vufe_get_u64(struct vufe *fe, uint32_t req, uint64_t *v)
{
	return vufe_request(fe, req, VU_VERSION, NULL, 0, NULL, 0, v, sizeof(*v));
}

int vufe_get_features(struct vufe *fe, uint64_t *f)
{
	int r = vufe_get_u64(fe, VU_GET_FEATURES, f);
	if (!r)
		fe->fe_offered = *f;
	return r;
}

int vufe_set_features(struct vufe *fe, uint64_t f)
{
	int r = vufe_simple(fe, VU_SET_FEATURES, &f, sizeof(f));
	if (!r)
		fe->fe_acked = f;
	return r;
}

int vufe_get_protocol_features(struct vufe *fe, uint64_t *pf)
{
	int r = vufe_get_u64(fe, VU_GET_PROTOCOL_FEATURES, pf);
	if (!r)
		fe->fe_offered_pf = *pf;
	return r;
}

int vufe_set_protocol_features(struct vufe *fe, uint64_t pf)
{
	int r = vufe_simple(fe, VU_SET_PROTOCOL_FEATURES, &pf, sizeof(pf));
	if (!r)
		fe->fe_acked_pf = pf;
	return r;
}

int vufe_get_queue_num(struct vufe *fe, uint64_t *n)
{
	int r = vufe_get_u64(fe, VU_GET_QUEUE_NUM, n);
	if (!r)
		fe->fe_queue_num = *n;
	return r;
}

int vufe_get_max_mem_slots(struct vufe *fe, uint64_t *n)
{
	return vufe_get_u64(fe, VU_GET_MAX_MEM_SLOTS, n);
}

int vufe_set_owner(struct vufe *fe)
{
	return vufe_simple(fe, VU_SET_OWNER, NULL, 0);
}

static int vufe_vring_file(struct vufe *fe, uint32_t req, unsigned q, int fd)
{
	uint64_t v = q & VU_VRING_IDX_MASK;

	if (fd < 0)
		v |= VU_VRING_NOFD_MASK;
	return vufe_request(fe, req, VU_VERSION, &v, sizeof(v), fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1,
			    NULL, 0);
}

int vufe_set_vring_call(struct vufe *fe, unsigned q, int fd)
{
	return vufe_vring_file(fe, VU_SET_VRING_CALL, q, fd);
}

int vufe_set_vring_err(struct vufe *fe, unsigned q, int fd)
{
	return vufe_vring_file(fe, VU_SET_VRING_ERR, q, fd);
}

int vufe_set_vring_kick(struct vufe *fe, unsigned q, int fd)
{
	return vufe_vring_file(fe, VU_SET_VRING_KICK, q, fd);
}

static int vufe_vring_state(struct vufe *fe, uint32_t req, unsigned q, unsigned num)
{
	struct vu_vring_state s = {q, num};
	return vufe_simple(fe, req, &s, sizeof(s));
}

int vufe_set_vring_num(struct vufe *fe, unsigned q, unsigned num)
{
	return vufe_vring_state(fe, VU_SET_VRING_NUM, q, num);
}

int vufe_set_vring_base(struct vufe *fe, unsigned q, unsigned base)
{
	return vufe_vring_state(fe, VU_SET_VRING_BASE, q, base);
}

int vufe_set_vring_enable(struct vufe *fe, unsigned q, int on)
{
	return vufe_vring_state(fe, VU_SET_VRING_ENABLE, q, on ? 1 : 0);
}

int vufe_set_vring_addr(struct vufe *fe, unsigned q)
{
	struct vufe_queue *vq = &fe->fe_q[q % VUFE_MAX_QUEUES];
	/* ring addresses are front-end virtual addresses: our own pointers */
	struct vu_vring_addr a = {
	    .index = q,
	    .desc = (uint64_t)(uintptr_t)vq->q_desc,
	    .used = (uint64_t)(uintptr_t)vq->q_used,
	    .avail = (uint64_t)(uintptr_t)vq->q_avail,
	    .log = vq->q_used_gpa,
	};
	return vufe_simple(fe, VU_SET_VRING_ADDR, &a, sizeof(a));
}

int vufe_get_vring_base(struct vufe *fe, unsigned q, uint32_t *base)
{
	struct vu_vring_state s = {q, 0}, out;
	int r = vufe_request(fe, VU_GET_VRING_BASE, VU_VERSION, &s, sizeof(s), NULL, 0, &out,
			     sizeof(out));
	if (r)
		return r;
	if (out.index != q)
		return -EBADMSG;
	*base = out.num;
	return 0;
}

static void vufe_region_wire(struct vufe_region *r, struct vu_region *w)
{
	w->gpa = r->r_gpa;
	w->size = r->r_size;
	w->uaddr = (uint64_t)(uintptr_t)r->r_host;
	w->mmap_offset = r->r_mmap_offset;
}

static int vufe_ack_flags(struct vufe *fe)
{
	return VU_VERSION |
	       ((fe->fe_acked_pf & (1ull << VU_PF_REPLY_ACK)) ? VU_FLAG_NEED_REPLY : 0);
}

int vufe_add_mem_reg(struct vufe *fe, unsigned region)
{
	struct vu_single_region s = {0};
	struct vufe_region *r;

	if (region >= fe->fe_nregions)
		return -EINVAL;
	r = &fe->fe_regions[region];
	vufe_region_wire(r, &s.region);
	return vufe_request(fe, VU_ADD_MEM_REG, vufe_ack_flags(fe), &s, sizeof(s), &r->r_fd, 1,
			    NULL, 0);
}

int vufe_set_mem_table(struct vufe *fe)
{
	struct vu_mem_table t = {0};
	int fds[VU_MEM_TABLE_MAX_REGIONS];

	if (fe->fe_nregions > VU_MEM_TABLE_MAX_REGIONS)
		return -E2BIG;
	t.nregions = fe->fe_nregions;
	for (unsigned i = 0; i < fe->fe_nregions; i++) {
		vufe_region_wire(&fe->fe_regions[i], &t.regions[i]);
		fds[i] = fe->fe_regions[i].r_fd;
	}
	return vufe_request(fe, VU_SET_MEM_TABLE, vufe_ack_flags(fe), &t, 8 + 32 * t.nregions, fds,
			    t.nregions, NULL, 0);
}

/* ---- QEMU 7.2 sequences ---- */

static int vufe_eventfd(int *fd)
{
	if (*fd >= 0)
		return 0;
	*fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

int vufe_negotiate(struct vufe *fe)
{
	uint64_t f, pf, n;
	int r;

	if ((r = vufe_get_features(fe, &f)))
		return r;
	if (!(f & (1ull << VU_F_PROTOCOL_FEATURES)))
		return -ENOTSUP;
	if (vufe_skipped(fe, VU_GET_PROTOCOL_FEATURES))
		pf = fe->fe_opts.protocol_features; /* a front end restored from saved state */
	else if ((r = vufe_get_protocol_features(fe, &pf)))
		return r;
	if ((r = vufe_set_protocol_features(fe, pf & fe->fe_opts.protocol_features)))
		return r;
	if (fe->fe_acked_pf & (1ull << VU_PF_MQ)) {
		if ((r = vufe_get_queue_num(fe, &n)))
			return r;
	}
	if (fe->fe_acked_pf & (1ull << VU_PF_CONFIGURE_MEM_SLOTS)) {
		if ((r = vufe_get_max_mem_slots(fe, &n)))
			return r;
		if (n < fe->fe_nregions)
			return -ENOSPC;
	}
	if ((r = vufe_set_owner(fe)))
		return r;
	if ((r = vufe_get_features(fe, &f)))
		return r;
	for (unsigned q = 0; q < fe->fe_nqueues; q++) {
		struct vufe_queue *vq = &fe->fe_q[q];
		if ((r = vufe_eventfd(&vq->q_masked_call_fd)) || (r = vufe_eventfd(&vq->q_err_fd)))
			return r;
		if ((r = vufe_set_vring_call(fe, q, vq->q_masked_call_fd)) ||
		    (r = vufe_set_vring_err(fe, q, vq->q_err_fd)))
			return r;
	}
	return 0;
}

int vufe_start(struct vufe *fe, int send_mem)
{
	int r;

	for (unsigned q = 0; q < fe->fe_nqueues; q++) {
		struct vufe_queue *vq = &fe->fe_q[q];
		if ((r = vufe_eventfd(&vq->q_call_fd)) || (r = vufe_eventfd(&vq->q_kick_fd)))
			return r;
		if (!vufe_skipped(fe, VU_SET_VRING_CALL) &&
		    (r = vufe_set_vring_call(fe, q, vq->q_call_fd)))
			return r;
	}
	if ((r = vufe_set_features(fe, fe->fe_offered & fe->fe_opts.features)))
		return r;
	if (send_mem) {
		if (fe->fe_acked_pf & (1ull << VU_PF_CONFIGURE_MEM_SLOTS)) {
			for (unsigned i = 0; i < fe->fe_nregions; i++)
				if ((r = vufe_add_mem_reg(fe, i)))
					return r;
		} else if ((r = vufe_set_mem_table(fe))) {
			return r;
		}
	}
	for (unsigned q = 0; q < fe->fe_nqueues; q++) {
		struct vufe_queue *vq = &fe->fe_q[q];
		uint64_t one = 1;
		if ((r = vufe_set_vring_num(fe, q, vq->q_num)))
			return r;
		if (!vufe_skipped(fe, VU_SET_VRING_BASE) &&
		    (r = vufe_set_vring_base(fe, q, vq->q_base)))
			return r;
		if ((r = vufe_set_vring_addr(fe, q)))
			return r;
		/* QEMU creates the kick eventfd already signalled */
		if (write(vq->q_kick_fd, &one, sizeof(one)) < 0)
			return -errno;
		if ((r = vufe_set_vring_kick(fe, q, vq->q_kick_fd)))
			return r;
	}
	for (unsigned q = 0; q < fe->fe_nqueues; q++)
		if ((r = vufe_set_vring_enable(fe, q, 1)))
			return r;
	for (unsigned q = 0; q < fe->fe_nqueues && !vufe_skipped(fe, VU_SET_VRING_CALL); q++)
		if ((r = vufe_set_vring_call(fe, q, fe->fe_q[q].q_call_fd)))
			return r;
	return 0;
}

int vufe_stop(struct vufe *fe, uint32_t *bases)
{
	int r;

	for (unsigned q = 0; q < fe->fe_nqueues; q++)
		if ((r = vufe_set_vring_enable(fe, q, 0)))
			return r;
	for (unsigned q = 0; q < fe->fe_nqueues; q++) {
		uint32_t b;
		if ((r = vufe_get_vring_base(fe, q, &b)))
			return r;
		fe->fe_q[q].q_base = b;
		if (bases)
			bases[q] = b;
	}
	for (unsigned q = 0; q < fe->fe_nqueues; q++)
		if ((r = vufe_set_vring_call(fe, q, fe->fe_q[q].q_masked_call_fd)))
			return r;
	return 0;
}

int vufe_up(struct vufe *fe)
{
	int r = vufe_negotiate(fe);
	return r ? r : vufe_start(fe, 1);
}

uint64_t vufe_offered_features(struct vufe *fe)
{
	return fe->fe_offered;
}

uint64_t vufe_offered_protocol_features(struct vufe *fe)
{
	return fe->fe_offered_pf;
}

uint64_t vufe_acked_features(struct vufe *fe)
{
	return fe->fe_acked;
}

uint64_t vufe_acked_protocol_features(struct vufe *fe)
{
	return fe->fe_acked_pf;
}

uint64_t vufe_queue_num(struct vufe *fe)
{
	return fe->fe_queue_num;
}

int vufe_call_fd(struct vufe *fe, unsigned q)
{
	return fe->fe_q[q % VUFE_MAX_QUEUES].q_call_fd;
}

int vufe_err_fd(struct vufe *fe, unsigned q)
{
	return fe->fe_q[q % VUFE_MAX_QUEUES].q_err_fd;
}

int vufe_kick_fd(struct vufe *fe, unsigned q)
{
	return fe->fe_q[q % VUFE_MAX_QUEUES].q_kick_fd;
}

int vufe_replace_call(struct vufe *fe, unsigned q, int *old)
{
	struct vufe_queue *vq = &fe->fe_q[q % VUFE_MAX_QUEUES];
	int nfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), r;

	if (nfd < 0)
		return -errno;
	r = vufe_set_vring_call(fe, q, nfd);
	if (r) {
		close(nfd);
		return r;
	}
	*old = vq->q_call_fd;
	vq->q_call_fd = nfd;
	return 0;
}
