/*
 * vu_server.c - the vhost-user state machine for the one connected front end
 * (docs/protocol.md §B).
 * Runs in: the parent. The front end is checked strictly: vu_msg_recv and
 * vu_msg_validate check framing and layout, then one table (vs_table, in the
 * shape of OpenSSH's monitor table) says which requests are accepted in which
 * state and who answers them. Any violation drops the connection with a log
 * line saying why. The parent keeps ring configuration and the memory table
 * (geometry and descriptors, never mapped) and forwards them to workers.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "bulkhead.h"
#include "bulkheadd.h"
#include "log.h"
#include "util.h"
#include "vhost_user.h"

struct vs_ring {
	uint32_t vr_num;  /* 0 until SET_VRING_NUM */
	uint32_t vr_base; /* next avail index: SET_VRING_BASE or last stop */
	uint64_t vr_desc, vr_avail, vr_used;
	bool vr_has_addr;
	int vr_kick_fd, vr_call_fd, vr_err_fd; /* -1: none */
	bool vr_poll;			       /* kick with NOFD: the worker polls */
	bool vr_started;		       /* a worker is running it (RING_START acked) */
	bool vr_enabled;
};

struct vs_session {
	int s_fd;
	struct event *s_ev;
	uint64_t s_features;
	bool s_features_set;
	uint64_t s_pfeatures;
	bool s_owner;
	struct vs_ring s_rings[BH_MAX_QUEUES];
	struct ipc_region s_regions[BH_MAX_MEM_REGIONS];
	int s_region_fds[BH_MAX_MEM_REGIONS];
	uint32_t s_nregions;
	pid_t s_peer; /* the front end's pid (SO_PEERCRED), 0: unknown */
};

static struct parent_env *vs_env;
static struct vs_session vs;
static bool vs_active;
/* Connections so far: a deferred drop (vu_server_drop) names its own. */
static uint64_t vs_gen;
static uint64_t vs_drop_gen;
static char vs_drop_why[256];
/* Why a handler refused a message (set by vs_fail, logged by the dispatcher). */
static char vs_why[256];

/* Flags of a table entry. */
#define VS_REPLY      0x01 /* the handler sends the request's own reply: never an extra ack */
#define VS_OWNER      0x02 /* only after SET_OWNER */
#define VS_RING_STATE 0x04 /* payload starts with a u32 queue index */
#define VS_RING_FILE  0x08 /* payload is a vring file: index in bits 0-7 */
#define VS_PF_MQ      0x10 /* only once MQ is negotiated */
#define VS_PF_SLOTS   0x20 /* only once CONFIGURE_MEM_SLOTS is negotiated */

typedef int (*vs_handler)(struct vu_msg *m, uint32_t q);

static void vs_end(void);
static void vs_after_front_end(void);

static int vs_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* systemd's STATUS= line: who is served and how many queues run. */
static void vs_status(void)
{
	uint32_t started = 0;
	unsigned workers = workers_count();

	for (uint32_t i = 0; i < BH_MAX_QUEUES; i++)
		started += vs.s_rings[i].vr_started;
	parent_notify("STATUS=Serving the front end (pid %d): %u queue%s running, %u worker%s",
		      (int)vs.s_peer, started, started == 1 ? "" : "s", workers,
		      workers == 1 ? "" : "s");
}

/* Record why a message is refused; returns err (-EPROTO drops the front end). */
static int vs_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vs_why, sizeof(vs_why), fmt, ap);
	va_end(ap);
	return err;
}

static void vs_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Take ownership of the message's first descriptor (or -1 if none). */
static int vs_take_fd(struct vu_msg *m)
{
	int fd;

	if (m->nfds == 0)
		return -1;
	fd = m->fds[0];
	m->fds[0] = -1;
	return fd;
}

static void vs_ring_reset(struct vs_ring *r)
{
	vs_close(&r->vr_kick_fd);
	vs_close(&r->vr_call_fd);
	vs_close(&r->vr_err_fd);
	memset(r, 0, sizeof(*r));
	r->vr_kick_fd = r->vr_call_fd = r->vr_err_fd = -1;
}

static void vs_mem_clear(void)
{
	for (uint32_t i = 0; i < vs.s_nregions; i++)
		vs_close(&vs.s_region_fds[i]);
	vs.s_nregions = 0;
}

static int vs_reply_u64(uint32_t request, uint64_t v)
{
	int r = vu_send_reply_u64(vs.s_fd, request, v);
	if (r < 0)
		return vs_fail(-EPROTO, "cannot send the reply: %s", strerror(-r));
	return 0;
}

/* ---- negotiation ---- */

static int vs_get_features(struct vu_msg *m, uint32_t q)
{
	return vs_reply_u64(VU_GET_FEATURES, VU_OFFERED_FEATURES);
}

static int vs_set_features(struct vu_msg *m, uint32_t q)
{
	uint64_t f = m->p.u64;

	if (f & ~VU_OFFERED_FEATURES)
		return vs_fail(-EPROTO, "features 0x%llx were not offered (offer 0x%llx)",
			       (unsigned long long)(f & ~VU_OFFERED_FEATURES),
			       (unsigned long long)VU_OFFERED_FEATURES);
	if (!(f & (1ull << VU_F_VERSION_1)))
		return vs_fail(-EPROTO,
			       "features 0x%llx lack VERSION_1 (legacy devices are "
			       "not supported)",
			       (unsigned long long)f);
	/* Without bit 30 rings are enabled from the start; a later SET_FEATURES
	 * (LOG_ALL toggles) must never disable running rings. */
	if (!(f & (1ull << VU_F_PROTOCOL_FEATURES)))
		for (uint32_t i = 0; i < BH_MAX_QUEUES; i++)
			vs.s_rings[i].vr_enabled = true;
	vs.s_features = f;
	vs.s_features_set = true;
	log_debug("features 0x%llx", (unsigned long long)f);
	return 0;
}

static int vs_get_protocol_features(struct vu_msg *m, uint32_t q)
{
	return vs_reply_u64(VU_GET_PROTOCOL_FEATURES, VU_OFFERED_PROTOCOL_FEATURES);
}

static int vs_set_protocol_features(struct vu_msg *m, uint32_t q)
{
	uint64_t f = m->p.u64;

	if (f & ~VU_OFFERED_PROTOCOL_FEATURES)
		return vs_fail(-EPROTO, "protocol features 0x%llx were not offered (offer 0x%llx)",
			       (unsigned long long)(f & ~VU_OFFERED_PROTOCOL_FEATURES),
			       (unsigned long long)VU_OFFERED_PROTOCOL_FEATURES);
	vs.s_pfeatures = f;
	log_debug("protocol features 0x%llx", (unsigned long long)f);
	return 0;
}

static int vs_get_queue_num(struct vu_msg *m, uint32_t q)
{
	return vs_reply_u64(VU_GET_QUEUE_NUM, BH_MAX_QUEUES);
}

static int vs_get_max_mem_slots(struct vu_msg *m, uint32_t q)
{
	return vs_reply_u64(VU_GET_MAX_MEM_SLOTS, BH_MAX_MEM_REGIONS);
}

static int vs_set_owner(struct vu_msg *m, uint32_t q)
{
	vs.s_owner = true;
	return 0;
}

/* ---- rings ---- */

/* Stop a started ring; its base becomes the worker's next avail index. */
static int vs_ring_stop(uint32_t q)
{
	struct vs_ring *r = &vs.s_rings[q];
	uint32_t last = r->vr_base;
	int err = 0;

	if (!r->vr_started)
		return 0;
	r->vr_started = false;
	if (!workers_live(q))
		return -EIO;
	err = workers_ring_stop(q, &last);
	if (err == 0)
		r->vr_base = last;
	vs_status();
	return err;
}

static int vs_reset_owner(struct vu_msg *m, uint32_t q)
{
	int err = 0;

	/* Deprecated; treated as "stop every ring", the session survives. */
	for (uint32_t i = 0; i < BH_MAX_QUEUES; i++)
		if (vs_ring_stop(i) < 0)
			err = -EIO;
	return err ? vs_fail(-EIO, "a worker did not stop its ring") : 0;
}

static int vs_set_vring_num(struct vu_msg *m, uint32_t q)
{
	uint32_t num = m->p.state.num;

	if (num == 0 || num > BH_MAX_QUEUE_SIZE || (num & (num - 1)))
		return vs_fail(-EPROTO, "queue %u: size %u is not a power of two <= %u", q, num,
			       BH_MAX_QUEUE_SIZE);
	vs.s_rings[q].vr_num = num;
	return 0;
}

static int vs_set_vring_base(struct vu_msg *m, uint32_t q)
{
	uint32_t base = m->p.state.num;

	/* Split rings only: the next avail index is a u16. */
	if (base > 0xffff)
		return vs_fail(-EPROTO, "queue %u: base 0x%x does not fit a split ring", q, base);
	if (vs.s_rings[q].vr_started)
		return vs_fail(-EPROTO, "queue %u: SET_VRING_BASE while the ring runs", q);
	vs.s_rings[q].vr_base = base;
	return 0;
}

static int vs_set_vring_addr(struct vu_msg *m, uint32_t q)
{
	const struct vu_vring_addr *a = &m->p.addr;
	struct vs_ring *r = &vs.s_rings[q];

	if (a->flags & VU_VRING_F_LOG)
		return vs_fail(-EPROTO,
			       "queue %u: dirty logging requested but LOG_ALL was not "
			       "offered",
			       q);
	if (a->flags)
		return vs_fail(-EPROTO, "queue %u: unknown ring address flags 0x%x", q, a->flags);
	if (r->vr_started)
		return vs_fail(-EPROTO, "queue %u: SET_VRING_ADDR while the ring runs", q);
	r->vr_desc = a->desc;
	r->vr_avail = a->avail;
	r->vr_used = a->used;
	r->vr_has_addr = true;
	return 0;
}

/* The ring becomes started: spawn its worker if needed and hand it the ring. */
static int vs_ring_start(uint32_t q)
{
	struct vs_ring *r = &vs.s_rings[q];
	struct ipc_ring_start rs = {0};
	int fds[3];
	size_t nfds = 0;
	int err;

	if (workers_dead(q))
		return vs_fail(-EIO, "queue %u: its worker died; the ring stays stopped", q);
	if (!workers_live(q)) {
		err = workers_spawn(q, vs.s_regions, vs.s_region_fds, vs.s_nregions);
		if (err < 0)
			return vs_fail(-EIO, "queue %u: cannot start its worker: %s", q,
				       strerror(-err));
	}
	rs.rs_num = r->vr_num;
	rs.rs_base = r->vr_base;
	rs.rs_desc = r->vr_desc;
	rs.rs_avail = r->vr_avail;
	rs.rs_used = r->vr_used;
	rs.rs_features = vs.s_features;
	rs.rs_enabled = r->vr_enabled;
	if (r->vr_poll) {
		rs.rs_fdmask |= IPC_RING_POLL;
	} else {
		rs.rs_fdmask |= IPC_RING_HAS_KICK;
		fds[nfds++] = r->vr_kick_fd;
	}
	if (r->vr_call_fd >= 0) {
		rs.rs_fdmask |= IPC_RING_HAS_CALL;
		fds[nfds++] = r->vr_call_fd;
	}
	if (r->vr_err_fd >= 0) {
		rs.rs_fdmask |= IPC_RING_HAS_ERR;
		fds[nfds++] = r->vr_err_fd;
	}
	err = workers_ring_start(q, &rs, fds, nfds);
	if (err < 0)
		return vs_fail(-EIO, "queue %u: the worker refused the ring: %s", q,
			       strerror(-err));
	r->vr_started = true;
	vs_status();
	log_debug("queue %u started: size %u, base %u, %s", q, r->vr_num, r->vr_base,
		  r->vr_enabled ? "enabled" : "disabled");
	return 0;
}

static int vs_set_vring_kick(struct vu_msg *m, uint32_t q)
{
	struct vs_ring *r = &vs.s_rings[q];

	if (!vs.s_features_set)
		return vs_fail(-EPROTO, "queue %u: SET_VRING_KICK before SET_FEATURES", q);
	if (r->vr_num == 0 || !r->vr_has_addr)
		return vs_fail(-EPROTO, "queue %u: SET_VRING_KICK before SET_VRING_NUM/ADDR", q);
	if (vs.s_nregions == 0)
		return vs_fail(-EPROTO, "queue %u: SET_VRING_KICK before any memory table", q);
	/* A new kick on a running ring restarts it from where it stopped. */
	if (r->vr_started && vs_ring_stop(q) < 0)
		return vs_fail(-EIO, "queue %u: cannot restart the ring", q);
	vs_close(&r->vr_kick_fd);
	r->vr_kick_fd = vs_take_fd(m);
	r->vr_poll = r->vr_kick_fd < 0;
	return vs_ring_start(q);
}

static int vs_set_vring_notifier(struct vu_msg *m, uint32_t q, int *slot, uint32_t which)
{
	struct vs_ring *r = &vs.s_rings[q];
	int err;

	vs_close(slot);
	*slot = vs_take_fd(m);
	if (!r->vr_started)
		return 0;
	if (!workers_live(q))
		return vs_fail(-EIO, "queue %u: its worker is dead", q);
	err = workers_ring_fd(q, which, *slot);
	if (err < 0)
		return vs_fail(-EIO, "queue %u: the worker did not take the new %s fd: %s", q,
			       which == IPC_RING_FD_CALL ? "call" : "error", strerror(-err));
	return 0;
}

static int vs_set_vring_call(struct vu_msg *m, uint32_t q)
{
	return vs_set_vring_notifier(m, q, &vs.s_rings[q].vr_call_fd, IPC_RING_FD_CALL);
}

static int vs_set_vring_err(struct vu_msg *m, uint32_t q)
{
	return vs_set_vring_notifier(m, q, &vs.s_rings[q].vr_err_fd, IPC_RING_FD_ERR);
}

static int vs_set_vring_enable(struct vu_msg *m, uint32_t q)
{
	struct vs_ring *r = &vs.s_rings[q];
	uint32_t on = m->p.state.num;
	int err;

	if (on > 1)
		return vs_fail(-EPROTO, "queue %u: SET_VRING_ENABLE with %u", q, on);
	r->vr_enabled = on;
	if (!r->vr_started)
		return 0;
	if (!workers_live(q))
		return vs_fail(-EIO, "queue %u: its worker is dead", q);
	err = workers_ring_enable(q, on);
	if (err < 0)
		return vs_fail(-EIO, "queue %u: the worker did not %s the ring: %s", q,
			       on ? "enable" : "disable", strerror(-err));
	return 0;
}

static int vs_get_vring_base(struct vu_msg *m, uint32_t q)
{
	struct vs_ring *r = &vs.s_rings[q];
	struct vu_vring_state st = {.index = q};
	int err;

	if (r->vr_started) {
		err = vs_ring_stop(q);
		if (err < 0)
			log_warnx("queue %u: the worker did not stop cleanly (%s); answering "
				  "with base %u",
				  q, strerror(-err), r->vr_base);
	}
	/* Stopped: the kick fd is no longer watched by anyone. */
	vs_close(&r->vr_kick_fd);
	r->vr_poll = false;
	st.num = r->vr_base;
	err = vu_send_reply(vs.s_fd, VU_GET_VRING_BASE, &st, sizeof(st));
	if (err < 0)
		return vs_fail(-EPROTO, "cannot send the reply: %s", strerror(-err));
	log_debug("queue %u stopped at %u", q, st.num);
	return 0;
}

/* ---- memory table ---- */

/* One region from the front end: bounded, no wrap-around, no overlap. */
static int vs_region_check(const struct vu_region *g, int fd, uint32_t skip)
{
	struct stat st;

	if (g->size == 0)
		return vs_fail(-EPROTO, "memory region of size 0");
	if (g->gpa + g->size < g->gpa || g->uaddr + g->size < g->uaddr ||
	    g->mmap_offset + g->size < g->mmap_offset)
		return vs_fail(-EPROTO, "memory region gpa 0x%llx size 0x%llx overflows",
			       (unsigned long long)g->gpa, (unsigned long long)g->size);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size < g->mmap_offset + g->size)
		return vs_fail(-EPROTO, "memory region gpa 0x%llx extends past the end of its file",
			       (unsigned long long)g->gpa);
	for (uint32_t i = 0; i < vs.s_nregions; i++) {
		const struct ipc_region *o = &vs.s_regions[i];
		if (i == skip)
			continue;
		if (g->gpa < o->ir_gpa + o->ir_size && o->ir_gpa < g->gpa + g->size)
			return vs_fail(-EPROTO, "memory region gpa 0x%llx overlaps another",
				       (unsigned long long)g->gpa);
		if (g->uaddr < o->ir_uaddr + o->ir_size && o->ir_uaddr < g->uaddr + g->size)
			return vs_fail(-EPROTO, "memory region uaddr 0x%llx overlaps another",
				       (unsigned long long)g->uaddr);
	}
	return 0;
}

static void vs_region_store(uint32_t i, const struct vu_region *g, int fd)
{
	vs.s_regions[i] = (struct ipc_region){.ir_gpa = g->gpa,
					      .ir_size = g->size,
					      .ir_uaddr = g->uaddr,
					      .ir_mmap_offset = g->mmap_offset};
	vs.s_region_fds[i] = fd;
}

/* Every live worker maps the new table before the front end hears back. */
static int vs_mem_publish(void)
{
	int err = workers_mem_table(vs.s_regions, vs.s_region_fds, vs.s_nregions);
	if (err < 0)
		return vs_fail(-EIO, "a worker did not take the new memory table");
	return 0;
}

static int vs_set_mem_table(struct vu_msg *m, uint32_t q)
{
	const struct vu_mem_table *t = &m->p.mem;
	uint32_t n = t->nregions;

	/* The old table goes first so that the overlap checks see only the new
	 * regions; a bad table drops the connection, so nothing else is lost. */
	vs_mem_clear();
	for (uint32_t i = 0; i < n; i++) {
		int err = vs_region_check(&t->regions[i], m->fds[i], UINT32_MAX);
		if (err < 0)
			return err;
		vs_region_store(i, &t->regions[i], m->fds[i]);
		m->fds[i] = -1;
		vs.s_nregions = i + 1;
	}
	log_debug("memory table: %u regions", n);
	return vs_mem_publish();
}

static int vs_add_mem_reg(struct vu_msg *m, uint32_t q)
{
	const struct vu_region *g = &m->p.reg.region;
	int err;

	if (vs.s_nregions >= BH_MAX_MEM_REGIONS)
		return vs_fail(-EPROTO, "more than %u memory regions", BH_MAX_MEM_REGIONS);
	err = vs_region_check(g, m->fds[0], UINT32_MAX);
	if (err < 0)
		return err;
	vs_region_store(vs.s_nregions++, g, vs_take_fd(m));
	log_debug("memory region added: gpa 0x%llx size 0x%llx", (unsigned long long)g->gpa,
		  (unsigned long long)g->size);
	return vs_mem_publish();
}

static int vs_rem_mem_reg(struct vu_msg *m, uint32_t q)
{
	const struct vu_region *g = &m->p.reg.region;
	uint32_t i;

	for (i = 0; i < vs.s_nregions; i++)
		if (vs.s_regions[i].ir_gpa == g->gpa && vs.s_regions[i].ir_size == g->size &&
		    vs.s_regions[i].ir_uaddr == g->uaddr)
			break;
	if (i == vs.s_nregions)
		return vs_fail(-ENOENT, "no region gpa 0x%llx size 0x%llx",
			       (unsigned long long)g->gpa, (unsigned long long)g->size);
	vs_close(&vs.s_region_fds[i]);
	for (; i + 1 < vs.s_nregions; i++) {
		vs.s_regions[i] = vs.s_regions[i + 1];
		vs.s_region_fds[i] = vs.s_region_fds[i + 1];
	}
	vs.s_nregions--;
	log_debug("memory region removed: gpa 0x%llx", (unsigned long long)g->gpa);
	return vs_mem_publish();
}

/*
 * Which requests the parent accepts, when, and who answers. Anything not
 * listed was never offered (SET_BACKEND_REQ_FD, logging, config, status,
 * ...) and drops the front end.
 */
static const struct vs_dispatch {
	uint32_t d_request;
	vs_handler d_handler;
	uint32_t d_flags;
} vs_table[] = {
    {VU_GET_FEATURES, vs_get_features, VS_REPLY},
    {VU_SET_FEATURES, vs_set_features, 0},
    {VU_GET_PROTOCOL_FEATURES, vs_get_protocol_features, VS_REPLY},
    {VU_SET_PROTOCOL_FEATURES, vs_set_protocol_features, 0},
    {VU_GET_QUEUE_NUM, vs_get_queue_num, VS_REPLY | VS_PF_MQ},
    {VU_GET_MAX_MEM_SLOTS, vs_get_max_mem_slots, VS_REPLY | VS_PF_SLOTS},
    {VU_SET_OWNER, vs_set_owner, 0},
    {VU_RESET_OWNER, vs_reset_owner, VS_OWNER},
    {VU_SET_MEM_TABLE, vs_set_mem_table, VS_OWNER},
    {VU_ADD_MEM_REG, vs_add_mem_reg, VS_OWNER | VS_PF_SLOTS},
    {VU_REM_MEM_REG, vs_rem_mem_reg, VS_OWNER | VS_PF_SLOTS},
    {VU_SET_VRING_NUM, vs_set_vring_num, VS_OWNER | VS_RING_STATE},
    {VU_SET_VRING_BASE, vs_set_vring_base, VS_OWNER | VS_RING_STATE},
    {VU_SET_VRING_ADDR, vs_set_vring_addr, VS_OWNER | VS_RING_STATE},
    {VU_SET_VRING_KICK, vs_set_vring_kick, VS_OWNER | VS_RING_FILE},
    {VU_SET_VRING_CALL, vs_set_vring_call, VS_OWNER | VS_RING_FILE},
    {VU_SET_VRING_ERR, vs_set_vring_err, VS_OWNER | VS_RING_FILE},
    {VU_SET_VRING_ENABLE, vs_set_vring_enable, VS_OWNER | VS_RING_STATE},
    {VU_GET_VRING_BASE, vs_get_vring_base, VS_OWNER | VS_RING_STATE | VS_REPLY},
};

static const struct vs_dispatch *vs_lookup(uint32_t request)
{
	for (size_t i = 0; i < BH_ARRAY_SIZE(vs_table); i++)
		if (vs_table[i].d_request == request)
			return &vs_table[i];
	return NULL;
}

/* State checks of the table; the queue index is checked here, once. */
static int vs_admit(const struct vs_dispatch *d, const struct vu_msg *m, uint32_t *q)
{
	*q = 0;
	if ((d->d_flags & VS_OWNER) && !vs.s_owner)
		return vs_fail(-EPROTO, "sent before SET_OWNER");
	if ((d->d_flags & VS_PF_MQ) && !(vs.s_pfeatures & (1ull << VU_PF_MQ)))
		return vs_fail(-EPROTO, "sent although MQ was not negotiated");
	if ((d->d_flags & VS_PF_SLOTS) && !(vs.s_pfeatures & (1ull << VU_PF_CONFIGURE_MEM_SLOTS)))
		return vs_fail(-EPROTO, "sent although CONFIGURE_MEM_SLOTS was not negotiated");
	if (d->d_flags & VS_RING_STATE)
		*q = m->p.state.index;
	else if (d->d_flags & VS_RING_FILE)
		*q = (uint32_t)(m->p.u64 & VU_VRING_IDX_MASK);
	if (*q >= BH_MAX_QUEUES)
		return vs_fail(-EPROTO, "queue index %u >= %u", *q, BH_MAX_QUEUES);
	return 0;
}

static void vs_dispatch_frontend(evutil_socket_t fd, short ev, void *arg)
{
	const struct vs_dispatch *d;
	const char *why = NULL, *name;
	struct vu_msg m;
	uint32_t q;
	int err;

	err = vu_msg_recv(fd, &m);
	if (err == -EPIPE) {
		log_info("the front end closed the connection");
		vs_end();
		vs_after_front_end();
		return;
	}
	if (err < 0) {
		snprintf(vs_why, sizeof(vs_why), "cannot read a message: %s%s", strerror(-err),
			 err == -EAGAIN ? " (stalled in the middle of a message)" : "");
		vu_server_end(vs_why);
		return;
	}
	name = vu_request_name(m.hdr.request);
	log_debug("<- %s (%u) flags 0x%x size %u fds %zu", name, m.hdr.request, m.hdr.flags,
		  m.hdr.size, m.nfds);
	if (vu_msg_validate(&m, &why) < 0) {
		snprintf(vs_why, sizeof(vs_why), "%s (%u): %s", name, m.hdr.request, why);
		goto drop;
	}
	d = vs_lookup(m.hdr.request);
	if (!d) {
		snprintf(vs_why, sizeof(vs_why),
			 "%s is not supported (its feature was not offered)", name);
		goto drop;
	}
	vs_why[0] = '\0';
	err = vs_admit(d, &m, &q);
	if (err == 0)
		err = d->d_handler(&m, q);
	vu_msg_close_fds(&m);
	if (err == -EPROTO || (err < 0 && (d->d_flags & VS_REPLY))) {
		char tmp[sizeof(vs_why)];
		snprintf(tmp, sizeof(tmp), "%s: %s", name, vs_why);
		snprintf(vs_why, sizeof(vs_why), "%s", tmp);
		vu_server_end(vs_why);
		return;
	}
	if (err < 0)
		log_warnx("%s failed: %s", name, vs_why);
	/* Ack every NEED_REPLY, negotiated or not: whoever set it is waiting. */
	if ((m.hdr.flags & VU_FLAG_NEED_REPLY) && !(d->d_flags & VS_REPLY)) {
		err = vu_send_reply_u64(vs.s_fd, m.hdr.request, err < 0 ? 1 : 0);
		if (err < 0) {
			snprintf(vs_why, sizeof(vs_why), "cannot send the ack for %s: %s", name,
				 strerror(-err));
			vu_server_end(vs_why);
		}
	}
	return;
drop:
	vu_msg_close_fds(&m);
	vu_server_end(vs_why);
}

void vu_server_init(struct parent_env *env)
{
	vs_env = env;
}

/* The front end is gone: serve the next one, or (--exit-on-disconnect)
 * end the loop, which stops the daemon as SIGTERM does. */
static void vs_after_front_end(void)
{
	if (vs_env && vs_env->pe_conf->pc_exit_on_disconnect) {
		log_info("the front end is gone: exiting (--exit-on-disconnect)");
		event_base_loopbreak(vs_env->pe_base);
		return;
	}
	parent_next_front_end(vs_env);
	parent_notify("STATUS=Waiting for the next front end");
	log_info("waiting for the next front end");
}

/*
 * A front end that hung up may still be queued behind a new connection in
 * the same loop iteration (a VMM restarting quickly): its end of file is
 * final, so finish it first instead of refusing the newcomer.
 */
bool vu_server_busy(void)
{
	struct pollfd p;

	if (!vs_active)
		return false;
	p = (struct pollfd){.fd = vs.s_fd, .events = POLLRDHUP};
	if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
		log_info("front end closed the connection");
		vs_end();
		vs_after_front_end();
	}
	return vs_active;
}

bool vu_server_active(void)
{
	return vs_active;
}

int vu_server_start(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	vs_gen++;
	memset(&vs, 0, sizeof(vs));
	vs.s_fd = fd;
	for (uint32_t i = 0; i < BH_MAX_QUEUES; i++) {
		vs.s_rings[i].vr_kick_fd = vs.s_rings[i].vr_call_fd = -1;
		vs.s_rings[i].vr_err_fd = -1;
	}
	for (uint32_t i = 0; i < BH_MAX_MEM_REGIONS; i++)
		vs.s_region_fds[i] = -1;
	vs.s_ev = event_new(vs_env->pe_base, fd, EV_READ | EV_PERSIST, vs_dispatch_frontend, NULL);
	if (!vs.s_ev || event_add(vs.s_ev, NULL) < 0) {
		log_warnx("cannot watch the front-end connection");
		if (vs.s_ev)
			event_free(vs.s_ev);
		close(fd);
		return -ENOMEM;
	}
	vs_active = true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		vs.s_peer = cred.pid;
	vs_status();
	return 0;
}

/* Forget the front end: workers, descriptors, node table. */
static void vs_end(void)
{
	if (!vs_active)
		return;
	workers_stop_all();
	event_free(vs.s_ev);
	close(vs.s_fd);
	for (uint32_t i = 0; i < BH_MAX_QUEUES; i++)
		vs_ring_reset(&vs.s_rings[i]);
	vs_mem_clear();
	memset(&vs, 0, sizeof(vs));
	vs.s_fd = -1;
	vs_active = false;
}

static void vs_drop_now(evutil_socket_t fd, short ev, void *arg)
{
	if (vs_drop_gen == vs_gen)
		vu_server_end(vs_drop_why);
	vs_drop_gen = 0;
}

/*
 * A worker's report can arrive while a front-end request waits on that
 * worker (workers.c's synchronous waits), deep inside this file's state
 * machine: the connection is dropped from the loop instead, at its next
 * turn, and only if it is still the same one.
 */
void vu_server_drop(const char *why)
{
	static const struct timeval now = {0, 0};

	if (!vs_active || vs_drop_gen == vs_gen)
		return;
	snprintf(vs_drop_why, sizeof(vs_drop_why), "%s", why);
	vs_drop_gen = vs_gen;
	if (event_base_once(vs_env->pe_base, -1, EV_TIMEOUT, vs_drop_now, NULL, &now) < 0) {
		vs_drop_gen = 0;
		log_warnx("cannot schedule dropping the front end (%s): dropping it now", why);
		vu_server_end(why);
	}
}

void vu_server_end(const char *why)
{
	if (!vs_active)
		return;
	if (why)
		log_warnx("dropping the front end: %s", why);
	else
		log_info("closing the front-end connection");
	vs_end();
	if (why)
		vs_after_front_end();
}
