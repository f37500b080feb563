/*
 * worker.c - bulkhead-worker: serves one virtqueue of one vhost-user-fs
 * device. Start-up (HELLO, CONFIG, SANDBOX, node table, pool, peers, back
 * end), then a libevent loop: messages from the parent (memory
 * table, ring start/stop/enable, call/err fds, peer channels) and kicks
 * from the guest (pop, decode, dispatch; completions come back from the
 * pool and go onto the used ring).
 * Runs in: the worker (sandboxed). The parent is trusted but checked
 * strictly: anything unexpected from it is fatal. Guest data is touched only
 * through virtqueue.c (ring) and fuse_dispatch.c (requests).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "backends.h"
#include "bulkhead.h"
#include "fuse_dispatch.h"
#include "guest_fault.h"
#include "ipc.h"
#include "log.h"
#include "node_table.h"
#include "peer.h"
#include "s3_setup.h"
#include "sandbox.h"
#include "threadpool.h"
#include "util.h"
#include "worker.h"

#define WORKER_FREE_REQS 1024 /* recycled request objects kept */
#define WORKER_POLL_USEC 1000 /* ring polling period without a kick fd */
#define WORKER_QUIET_MS	 10   /* the quiet-ring check, after the last reply */

struct worker {
	struct event_base *w_base;
	struct event *w_ipc_ev;
	struct ipc_config w_cfg;
	const struct be_desc *w_be; /* the back end CONFIG named */
	uint32_t w_self;
	struct nt_table *w_nt;
	struct tp *w_tp;
	struct peer *w_peer;
	int w_root_fd;
	int w_proc_fd;
	struct s3_setup *w_s3; /* the S3 back end's, NULL for others */
	struct fuse_sess w_sess;
	struct worker_mem *w_mem; /* current memory table, NULL before the first */

	/* the ring (loop thread only) */
	struct vq w_vq;
	bool w_running; /* between RING_START and RING_STOP */
	bool w_enabled;
	bool w_broken;	/* corrupt ring: nothing touches it until RING_STOP */
	bool w_need_notify;
	unsigned w_unsignalled; /* replies pushed since the last notify */
	bool w_in_pass;		/* worker_ring_process is dispatching */
	unsigned w_quiet_done; /* completions without a reply not signalled yet */
	uint64_t w_ring_passes; /* worker_ring_process calls (be_env.ring_passes) */
	uint64_t w_poll_max_ns; /* --poll-us; 0 = never poll */
	uint64_t w_poll_ns;	/* current window */
	uint64_t w_poll_slept;	/* when the loop last went to sleep on the ring */
	uint32_t w_ring_gen;
	uint16_t w_stopped_avail; /* next avail index of the stopped ring */
	int w_kick_fd;
	int w_call_fd;
	int w_err_fd;
	struct event *w_kick_ev;
	struct event *w_quiet_ev; /* worker_quiet_check, re-armed by every reply */

	struct fuse_req_list w_inflight; /* popped, not yet on the used ring */
	unsigned w_ninflight;
	struct fuse_req_list w_free;
	unsigned w_nfree;
};

static struct worker wk;
static __thread bool worker_loop_thread;

bool worker_on_loop(void)
{
	return worker_loop_thread;
}

/* ---- messages to the parent ---- */

static bool worker_more_waiting(void)
{
	return wk.w_running && !wk.w_broken && vq_avail_count(&wk.w_vq) > 0;
}

static void worker_send(uint32_t type, uint32_t seq, const void *data, size_t len)
{
	int err = ipc_send(BH_WORKER_IPC_FD, type, seq, data, len, NULL, 0);

	if (err == -EPIPE || err == -ECONNRESET)
		exit(0); /* the parent is gone; so are we */
	if (err < 0)
		fatalx("send %s to parent: %s", ipc_type_name(type), strerror(-err));
}

static void worker_ack(uint32_t seq, int error)
{
	struct ipc_ack a = {.ia_seq = seq, .ia_error = error};

	worker_send(IPC_ACK, seq, &a, sizeof(a));
}

static void worker_notice(uint32_t kind, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void worker_notice(uint32_t kind, const char *fmt, ...)
{
	struct ipc_notice n;
	va_list ap;

	memset(&n, 0, sizeof(n));
	n.in_kind = kind;
	va_start(ap, fmt);
	vsnprintf(n.in_text, sizeof(n.in_text), fmt, ap);
	va_end(ap);
	log_warnx("%s", n.in_text);
	worker_send(IPC_NOTICE, 0, &n, sizeof(n));
}

/*
 * A thread of ours has waited NT_LOCK_HOLD_MAX_MS for the node table lock:
 * tell the parent, which kills a holder that keeps it (the word and its
 * counter are writable by the holder; only a waiter knows it waits). Any
 * thread may get here; one report per period for the whole worker.
 */
static void worker_nt_stall(void *arg, uint32_t word)
{
	static uint64_t last;
	uint64_t now = bh_now_ns(), prev = __atomic_load_n(&last, __ATOMIC_RELAXED);
	struct ipc_notice n;

	if (prev && now - prev < NT_LOCK_HOLD_MAX_MS * 1000000ull)
		return;
	if (!__atomic_compare_exchange_n(&last, &prev, now, false, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED))
		return;
	memset(&n, 0, sizeof(n));
	n.in_kind = IPC_NOTICE_NT_STALL;
	n.in_pad = word;
	snprintf(n.in_text, sizeof(n.in_text), "waited %u ms for the node table lock (word %#x)",
		 NT_LOCK_HOLD_MAX_MS, word);
	log_warnx("%s", n.in_text);
	/* Not worker_send: this may be a pool thread, which must not exit the
	 * process; if the parent is gone, PR_SET_PDEATHSIG ends us anyway. */
	(void)ipc_send(BH_WORKER_IPC_FD, IPC_NOTICE, 0, &n, sizeof(n), NULL, 0);
}

/* ---- memory tables and request objects ---- */

static void worker_mem_unref(struct worker_mem *m)
{
	if (m && --m->wm_refs == 0) {
		vq_mem_unmap(&m->wm_mem);
		free(m);
	}
}

static struct fuse_req *worker_req_get(void)
{
	struct fuse_req *r = TAILQ_FIRST(&wk.w_free);

	if (r) {
		TAILQ_REMOVE(&wk.w_free, r, r_entry);
		wk.w_nfree--;
	} else if (!(r = malloc(sizeof(*r)))) {
		return NULL;
	}
	r->r_state = FR_PENDING;
	r->r_listed = false;
	r->r_used = 0;
	r->r_mem = NULL;
	r->r_slice = NULL;
	r->r_slice_cap = 0;
	return r;
}

static void worker_req_put(struct fuse_req *r)
{
	fuse_req_slice_free(r); /* answered already, unless it was abandoned */
	vq_elem_release(&r->r_elem);
	worker_mem_unref(r->r_mem);
	r->r_mem = NULL;
	if (wk.w_nfree < WORKER_FREE_REQS) {
		TAILQ_INSERT_HEAD(&wk.w_free, r, r_entry);
		wk.w_nfree++;
	} else {
		free(r);
	}
}

static void worker_unlist(struct fuse_req *r)
{
	if (r->r_listed) {
		TAILQ_REMOVE(&wk.w_inflight, r, r_entry);
		r->r_listed = false;
		wk.w_ninflight--;
	}
}

static bool worker_ring_usable(void)
{
	return wk.w_running && !wk.w_broken;
}

static void worker_flush_notify(void)
{
	static const struct timeval quiet = {0, WORKER_QUIET_MS * 1000};

	if (wk.w_need_notify && worker_ring_usable()) {
		vq_notify(&wk.w_vq);
		wk.w_quiet_done = 0;
		event_add(wk.w_quiet_ev, &quiet); /* WORKER_QUIET_MS after the last */
	} else if (wk.w_quiet_done > 0 && !evtimer_pending(wk.w_quiet_ev, NULL)) {
		event_add(wk.w_quiet_ev, &quiet); /* not postponed by more of them */
	}
	wk.w_need_notify = false;
	wk.w_unsignalled = 0;
}

/*
 * A completion that carries no reply (FORGET, BATCH_FORGET; a chain with
 * no room for one) is not signalled at once: nothing in the guest waits
 * for it but the memory of its buffers, and each interrupt costs the
 * guest an exit and a work item and QEMU a wake-up of its main loop. The
 * next reply's interrupt covers it, or the quiet-ring check does within
 * WORKER_QUIET_MS, or a quarter of the ring's worth of them, so the guest
 * never runs out of room for more. A guest unlinking files one by one
 * sends a FORGET for each: one interrupt in four per file. Only on the
 * hiprio queue, where Linux sends them and never waits for them: a driver
 * that sends a FORGET on a request queue may wait for it like any other
 * request, and would wait for the quiet-ring check.
 */
void worker_req_complete(void *arg)
{
	struct fuse_req *r = arg;

	/* An abandoned request was answered with EIO at RING_STOP already;
	 * its late result is dropped. */
	if (r->r_state != FR_ABANDONED) {
		worker_unlist(r);
		if (worker_ring_usable() && r->r_ring_gen == wk.w_ring_gen) {
			vq_push(&wk.w_vq, r->r_elem.head, r->r_used);
			if (r->r_used > 0 || wk.w_self != BH_HIPRIO_QUEUE ||
			    ++wk.w_quiet_done >= wk.w_vq.num / 4) {
				wk.w_need_notify = true;
				wk.w_unsignalled++;
			}
		}
	}
	worker_req_put(r);
}

/*
 * Replies answered on the loop thread are signalled together: at the end of
 * the pass over the ring that answered them (when the loop goes on to poll
 * or to sleep), or once WORKER_NOTIFY_BATCH of them wait, whichever comes
 * first, so a long pass still starts the front end early. Waking the front
 * end is the dearest part of a cheap request: its eventfd write costs the
 * worker about a third of its time when every reply is signalled (a waiter
 * is woken by an inter-processor interrupt), and the woken side pays a
 * wake-up for each. Measured with `make bench` against signalling each
 * reply at once: GETATTR, LOOKUP and 4 KiB READ with 16 in flight from
 * about 1.0x virtiofsd to 1.5-1.7x, one request at a time unchanged (its
 * pass holds one reply). A reply made outside a pass (a peer's answer, a
 * lock granted) is signalled at once.
 */
#define WORKER_NOTIFY_BATCH 32

void worker_req_complete_local(struct fuse_req *r)
{
	worker_req_complete(r);
	if (!wk.w_in_pass || wk.w_unsignalled >= WORKER_NOTIFY_BATCH)
		worker_flush_notify();
}

static void worker_batch_end(void *arg)
{
	worker_flush_notify();
}

/* ---- the ring ---- */

static void worker_queue_broken(int err, const char *what)
{
	if (wk.w_broken)
		return;
	wk.w_broken = true;
	if (wk.w_kick_ev)
		event_del(wk.w_kick_ev);
	/* Tell the front end (err eventfd) and the parent; keep serving IPC. */
	bh_eventfd_signal(wk.w_err_fd);
	worker_notice(IPC_NOTICE_QUEUE_BROKEN, "queue %u broken: %s: %s", wk.w_self, what,
		      strerror(-err));
}

#ifdef BH_TEST_HOOKS
/* Die inside a node-table critical section: the parent must release the
 * lock once it has reaped us. As a PID namespace's init we are immune to
 * our own SIGKILL, and the worker policy may not allow kill(2) at all;
 * either way the process ends here with the lock held. */
static void worker_test_die_holding_nt_lock(void)
{
	nt_test_hold_lock(wk.w_nt);
	(void)syscall(SYS_kill, getpid(), SIGKILL);
	_exit(128 + SIGKILL);
}

/* Keep the lock and stay alive: the parent must kill us. The loop thread
 * sleeps here; nothing else of ours runs the ring any more. */
static void __attribute__((noreturn)) worker_test_hold_nt_lock(void)
{
	nt_test_hold_lock(wk.w_nt);
	for (;;)
		poll(NULL, 0, -1);
}

/* Send NOTICEs as fast as the channel takes them, and nothing else: the
 * parent must kill us (rate limit, or its deadline when it waits for an
 * ACK) and keep serving. Not logged here: the parent's log is the test. */
static void __attribute__((noreturn)) worker_test_flood_notices(void)
{
	struct ipc_notice n;

	memset(&n, 0, sizeof(n));
	n.in_kind = IPC_NOTICE_BACKEND;
	snprintf(n.in_text, sizeof(n.in_text), "test flood of notices");
	for (;;) {
		int err = ipc_send(BH_WORKER_IPC_FD, IPC_NOTICE, 0, &n, sizeof(n), NULL, 0);
		if (err < 0)
			_exit(0); /* the parent closed the channel */
	}
}

/* Hooks that act when a request arrives, before it is served. */
static void worker_test_request_hooks(void)
{
	static uint32_t nreq;

	if (wk.w_cfg.ic_flags & IPC_CFG_TEST_DIE_NT_LOCK)
		worker_test_die_holding_nt_lock();
	if (wk.w_cfg.ic_flags & IPC_CFG_TEST_HOLD_NT_LOCK)
		worker_test_hold_nt_lock();
	if (wk.w_cfg.ic_flags & IPC_CFG_TEST_FLOOD_NOTICES)
		worker_test_flood_notices();
	if (wk.w_cfg.ic_flags & IPC_CFG_TEST_SCRIBBLE_NT) {
		log_warnx("test hook: writing garbage into the node table (round %u)", ++nreq);
		nt_test_scribble(wk.w_nt, nreq * 0x9e3779b9u);
	}
	if (wk.w_cfg.ic_flags & IPC_CFG_TEST_SIGBUS)
		gf_test_fault();
}
#endif

/*
 * Polling before sleeping. A front end that waits for each reply before
 * sending the next request (one in flight; a guest's synchronous stat())
 * pays two wake-ups per round trip, ours and its own; a worker that watches
 * the avail ring for a few microseconds after answering saves its half,
 * and with the kicks suppressed meanwhile (vq_disable_notify) the guest
 * saves its VM exit. Adaptive like QEMU's AioContext polling: the window
 * grows while the next request keeps arriving within --poll-us of going to
 * sleep, and halves when it does not, so an idle or slow guest costs no
 * spinning. Pool completions end the spin too: they are answered at once.
 */
static bool worker_poll_avail(void)
{
	bool found = false;
	uint64_t now, end;

	if (wk.w_poll_ns == 0) {
		wk.w_poll_slept = bh_now_ns();
		return false;
	}
	worker_flush_notify();
	vq_disable_notify(&wk.w_vq);
	tp_set_polling(wk.w_tp, true);
	now = bh_now_ns();
	end = now + wk.w_poll_ns;
	do {
		if (vq_avail_count(&wk.w_vq)) {
			found = true;
			break;
		}
		if (tp_has_completions(wk.w_tp))
			tp_run_completions(wk.w_tp);
		/* the other runnable threads (pool, front end) come first */
		sched_yield();
	} while ((now = bh_now_ns()) < end && worker_ring_usable());
	if (tp_set_polling(wk.w_tp, false))
		tp_run_completions(wk.w_tp);
	if (!found)
		wk.w_poll_slept = now;
	return found;
}

/* Woken by a kick: was the sleep short enough that polling would have
 * caught the request? Grow the window if so, shrink it if not. */
static void worker_poll_adapt(void)
{
	uint64_t slept;

	if (wk.w_poll_max_ns == 0 || wk.w_poll_slept == 0)
		return;
	slept = bh_now_ns() - wk.w_poll_slept;
	wk.w_poll_slept = 0;
	wk.w_poll_ns = bh_poll_window(wk.w_poll_ns, slept, wk.w_poll_max_ns);
}

static void worker_ring_process(void)
{
	unsigned budget;
	struct fuse_req *r;
	int rc;

	if (!worker_ring_usable() || !wk.w_enabled)
		return;
	wk.w_ring_passes++;
	fuse_sess_sync(&wk.w_sess);
	/* Bounded so that parent messages are not starved by a busy guest. */
	budget = 2u * wk.w_vq.num;
	wk.w_in_pass = true;
	for (;;) {
		vq_disable_notify(&wk.w_vq);
		while (budget > 0) {
			if (!(r = worker_req_get())) {
				log_warnx("out of memory for requests; retrying");
				event_active(wk.w_kick_ev, EV_READ, 0);
				goto out;
			}
			rc = vq_pop(&wk.w_vq, &wk.w_mem->wm_mem, &r->r_elem);
			if (rc <= 0) {
				/* r_elem is untouched: recycle without releasing it. */
				TAILQ_INSERT_HEAD(&wk.w_free, r, r_entry);
				wk.w_nfree++;
				if (rc == 0)
					break;
				if (rc == -ENOMEM) {
					log_warnx("out of memory for a chain; retrying");
					event_active(wk.w_kick_ev, EV_READ, 0);
					goto out;
				}
				worker_queue_broken(rc, rc == -EOVERFLOW
							    ? "more requests in flight than "
							      "the queue holds"
							    : "bad chain");
				goto out;
			}
			r->r_mem = wk.w_mem;
			wk.w_mem->wm_refs++;
			r->r_ring_gen = wk.w_ring_gen;
			TAILQ_INSERT_TAIL(&wk.w_inflight, r, r_entry);
			r->r_listed = true;
			wk.w_ninflight++;
#ifdef BH_TEST_HOOKS
			worker_test_request_hooks();
#endif
			fuse_dispatch(&wk.w_sess, r);
			budget--;
			if (!worker_ring_usable())
				goto out;
		}
		if (budget == 0) {
			/* Come back after the other events; kicks stay off meanwhile. */
			event_active(wk.w_kick_ev, EV_READ, 0);
			break;
		}
		if (worker_poll_avail())
			continue;
		if (!vq_enable_notify(&wk.w_vq))
			break;
	}
out:
	wk.w_in_pass = false;
	worker_flush_notify();
}

static void worker_on_kick(evutil_socket_t fd, short what, void *arg)
{
	if (fd >= 0) {
		bh_eventfd_drain(fd);
		worker_poll_adapt();
	}
	worker_ring_process();
}

/*
 * The quiet-ring check, WORKER_QUIET_MS after our last reply. Both sides
 * of the ring decide whether to wake the other by a store, a full barrier
 * and a load: the guest stores avail->idx (or used_event) and loads
 * avail_event (or used->idx), we the reverse. A guest run by an emulator
 * that does not turn its barriers into the host's (QEMU's TCG with one
 * vCPU thread: it assumes nothing else reads guest memory) may load before
 * its store is visible to us while we load its old value: then neither
 * side wakes the other, and the guest waits for replies we have published,
 * or we for a request it has made available. Seen with Debian's 6.1
 * guests under TCG as git or umount waiting for ever. So once the ring has
 * been quiet a while, look again: a request that came without a kick is
 * served, and used entries the guest has not re-armed for get one more
 * interrupt, spurious at worst. The same check signals the completions
 * without a reply that worker_req_complete left unsignalled.
 */
static void worker_quiet_check(evutil_socket_t fd, short what, void *arg)
{
	if (!worker_ring_usable() || !wk.w_enabled)
		return;
	if (vq_avail_count(&wk.w_vq)) {
		log_debug("quiet-ring check: requests came without a kick");
		worker_ring_process();
		return;
	}
	if (vq_guest_behind(&wk.w_vq)) {
		if (wk.w_quiet_done == 0)
			log_debug("quiet-ring check: the guest has not taken its replies: "
				  "interrupt");
		vq_notify_force(&wk.w_vq);
	}
	wk.w_quiet_done = 0;
}

static void worker_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void worker_ring_start(struct ipc_msg *m)
{
	struct ipc_ring_start rs;
	unsigned want = 0, i = 0;
	int kick = -1, call = -1, errfd = -1, err;

	if (m->im_hdr.ih_len != sizeof(rs))
		fatalx("%s: bad length %u", __func__, m->im_hdr.ih_len);
	memcpy(&rs, m->im_data, sizeof(rs));
	if (rs.rs_fdmask &
	    ~(uint32_t)(IPC_RING_HAS_KICK | IPC_RING_HAS_CALL | IPC_RING_HAS_ERR | IPC_RING_POLL))
		fatalx("%s: bad fd mask 0x%x", __func__, rs.rs_fdmask);
	want = !!(rs.rs_fdmask & IPC_RING_HAS_KICK) + !!(rs.rs_fdmask & IPC_RING_HAS_CALL) +
	       !!(rs.rs_fdmask & IPC_RING_HAS_ERR);
	if (m->im_hdr.ih_nfds != want)
		fatalx("%s: %u fds for mask 0x%x", __func__, m->im_hdr.ih_nfds, rs.rs_fdmask);
	if (wk.w_running)
		fatalx("%s: the ring is already running", __func__);
	if (rs.rs_fdmask & IPC_RING_HAS_KICK)
		kick = m->im_fds[i++];
	if (rs.rs_fdmask & IPC_RING_HAS_CALL)
		call = m->im_fds[i++];
	if (rs.rs_fdmask & IPC_RING_HAS_ERR)
		errfd = m->im_fds[i++];

	if (wk.w_mem == NULL || rs.rs_num == 0 || rs.rs_num > BH_MAX_QUEUE_SIZE ||
	    rs.rs_base > UINT16_MAX || (kick < 0 && !(rs.rs_fdmask & IPC_RING_POLL)))
		err = -EINVAL;
	else
		err =
		    vq_init(&wk.w_vq, &wk.w_mem->wm_mem, (uint16_t)rs.rs_num, (uint16_t)rs.rs_base,
			    rs.rs_desc, rs.rs_avail, rs.rs_used, rs.rs_features);
	if (err == 0 && kick >= 0 && (err = bh_set_nonblock(kick, 1)) < 0)
		vq_fini(&wk.w_vq);
	if (err == 0) {
		if (kick >= 0)
			wk.w_kick_ev =
			    event_new(wk.w_base, kick, EV_READ | EV_PERSIST, worker_on_kick, NULL);
		else
			wk.w_kick_ev = event_new(wk.w_base, -1, EV_PERSIST, worker_on_kick, NULL);
		if (wk.w_kick_ev == NULL) {
			vq_fini(&wk.w_vq);
			err = -ENOMEM;
		}
	}
	if (err < 0) {
		log_warnx("ring start (num %u, base %u): %s", rs.rs_num, rs.rs_base,
			  strerror(-err));
		ipc_close_fds(m);
		worker_ack(m->im_hdr.ih_seq, err);
		return;
	}
	if (kick >= 0) {
		event_add(wk.w_kick_ev, NULL);
	} else {
		struct timeval tv = {0, WORKER_POLL_USEC};

		event_add(wk.w_kick_ev, &tv);
	}
	wk.w_kick_fd = kick;
	wk.w_call_fd = call;
	wk.w_err_fd = errfd;
	wk.w_vq.call_fd = call;
	wk.w_vq.err_fd = errfd;
	wk.w_running = true;
	wk.w_quiet_done = 0;
	wk.w_broken = false;
	wk.w_enabled = rs.rs_enabled != 0;
	wk.w_ring_gen++;
	wk.w_sess.fs_queue_size = (uint16_t)rs.rs_num;
	log_debug("ring started: num %u base %u%s", rs.rs_num, rs.rs_base,
		  wk.w_enabled ? ", enabled" : "");
	worker_ack(m->im_hdr.ih_seq, 0);
	/* QEMU's kick eventfd starts signalled, but requests may predate it. */
	if (wk.w_enabled)
		worker_ring_process();
}

/*
 * RING_STOP: no new requests; wait (bounded) for the popped ones; answer
 * the rest with EIO. A pool thread still working on an abandoned request
 * may write its data into guest memory later: unavoidable without killing
 * it, and the mapping it writes to stays valid (the request holds it).
 */
static void worker_ring_stop(uint32_t seq)
{
	struct ipc_ring_stopped st = {.st_seq = seq};
	struct fuse_req *r, *next;
	uint64_t deadline;

	if (!wk.w_running) {
		st.st_last_avail = wk.w_stopped_avail;
		worker_send(IPC_RING_STOPPED, seq, &st, sizeof(st));
		return;
	}
	if (wk.w_kick_ev) {
		event_free(wk.w_kick_ev);
		wk.w_kick_ev = NULL;
	}
	deadline = bh_now_ns() + wk.w_cfg.ic_drain_timeout_ms * 1000000ull;
	while (wk.w_ninflight > 0) {
		tp_run_completions(wk.w_tp);
		/* each round: a pool job may have just turned into a lock wait */
		if (wk.w_sess.fs_be->ring_stop)
			wk.w_sess.fs_be->ring_stop(wk.w_sess.fs_be_ctx);
		if (wk.w_ninflight == 0 || bh_now_ns() >= deadline)
			break;
		poll(NULL, 0, 1);
	}
	for (r = TAILQ_FIRST(&wk.w_inflight); r; r = next) {
		int expect = FR_PENDING;

		next = TAILQ_NEXT(r, r_entry);
		if (!__atomic_compare_exchange_n(&r->r_state, &expect, FR_ABANDONED, false,
						 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			continue; /* its reply is being written right now */
		worker_unlist(r);
		(void)fuse_reply_write(r->r_elem.wr, r->r_elem.nwr, r->r_elem.wr_len,
				       r->r_in.h.unique, -EIO, NULL, 0, &r->r_used);
		if (worker_ring_usable()) {
			vq_push(&wk.w_vq, r->r_elem.head, r->r_used);
			wk.w_need_notify = true;
		}
		st.st_inflight_failed++;
	}
	/* Replies already claimed finish in moments: wait for them. */
	while (wk.w_ninflight > 0) {
		tp_run_completions(wk.w_tp);
		if (wk.w_ninflight > 0)
			poll(NULL, 0, 1);
	}
	worker_flush_notify();
	if (st.st_inflight_failed)
		log_warnx("ring stop: %u requests failed after %llu ms", st.st_inflight_failed,
			  (unsigned long long)wk.w_cfg.ic_drain_timeout_ms);
	st.st_last_avail = wk.w_vq.last_avail;
	wk.w_stopped_avail = wk.w_vq.last_avail;
	wk.w_running = false;
	wk.w_broken = false;
	vq_fini(&wk.w_vq);
	worker_close_fd(&wk.w_kick_fd);
	worker_close_fd(&wk.w_call_fd);
	worker_close_fd(&wk.w_err_fd);
	wk.w_vq.call_fd = wk.w_vq.err_fd = -1;
	log_debug("ring stopped at %u", st.st_last_avail);
	worker_send(IPC_RING_STOPPED, seq, &st, sizeof(st));
}

/* ---- parent messages ---- */

static void worker_mem_table(struct ipc_msg *m)
{
	struct ipc_region regions[BH_MAX_MEM_REGIONS];
	struct ipc_mem_table mt;
	struct worker_mem *nm, *old;
	int err;

	if (m->im_hdr.ih_len < sizeof(mt))
		fatalx("%s: bad length %u", __func__, m->im_hdr.ih_len);
	memcpy(&mt, m->im_data, sizeof(mt));
	if (mt.mt_nregions > BH_MAX_MEM_REGIONS ||
	    m->im_hdr.ih_len != sizeof(mt) + mt.mt_nregions * sizeof(struct ipc_region) ||
	    m->im_hdr.ih_nfds != mt.mt_nregions)
		fatalx("%s: %u regions, length %u, %u fds", __func__, mt.mt_nregions,
		       m->im_hdr.ih_len, m->im_hdr.ih_nfds);
	memcpy(regions, m->im_data + sizeof(mt), mt.mt_nregions * sizeof(struct ipc_region));
	if (!(nm = calloc(1, sizeof(*nm))))
		fatal("%s: calloc", __func__);
	err = vq_mem_map(&nm->wm_mem, regions, mt.mt_nregions, m->im_fds);
	/* The mappings hold the memory; the descriptors are not needed. */
	ipc_close_fds(m);
	if (err < 0) {
		log_warnx("memory table (%u regions): %s", mt.mt_nregions, strerror(-err));
		free(nm);
		worker_ack(m->im_hdr.ih_seq, err);
		return;
	}
	nm->wm_refs = 1;
	if (worker_ring_usable() && (err = vq_retranslate(&wk.w_vq, &nm->wm_mem)) < 0) {
		/* The old table stays mapped for the requests that use it. */
		worker_queue_broken(err, "ring outside the new memory table");
	}
	old = wk.w_mem;
	wk.w_mem = nm;
	worker_mem_unref(old);
	log_debug("memory table: %u regions", mt.mt_nregions);
	worker_ack(m->im_hdr.ih_seq, 0);
}

static void worker_ring_fd(struct ipc_msg *m)
{
	struct ipc_ring_fd rf;
	int fd;

	if (m->im_hdr.ih_len != sizeof(rf))
		fatalx("%s: bad length %u", __func__, m->im_hdr.ih_len);
	memcpy(&rf, m->im_data, sizeof(rf));
	if (rf.rf_has_fd > 1 || m->im_hdr.ih_nfds != rf.rf_has_fd ||
	    (rf.rf_which != IPC_RING_FD_CALL && rf.rf_which != IPC_RING_FD_ERR))
		fatalx("%s: which %u, has_fd %u, %u fds", __func__, rf.rf_which, rf.rf_has_fd,
		       m->im_hdr.ih_nfds);
	fd = rf.rf_has_fd ? m->im_fds[0] : -1;
	if (rf.rf_which == IPC_RING_FD_CALL) {
		worker_close_fd(&wk.w_call_fd);
		wk.w_call_fd = wk.w_vq.call_fd = fd;
	} else {
		worker_close_fd(&wk.w_err_fd);
		wk.w_err_fd = wk.w_vq.err_fd = fd;
	}
	worker_ack(m->im_hdr.ih_seq, 0);
}

/* New S3 credentials (the parent re-read them on SIGHUP). */
static void worker_s3_creds(struct ipc_msg *m)
{
	struct ipc_s3_creds k;
	int err;

	if (!wk.w_s3 || m->im_hdr.ih_nfds != 0 ||
	    s3_setup_creds(m->im_data, m->im_hdr.ih_len, &k) < 0)
		fatalx("%s: bad S3_CREDS", __func__);
	err = wk.w_sess.fs_be->set_creds ? wk.w_sess.fs_be->set_creds(wk.w_sess.fs_be_ctx, &k)
					 : -ENOSYS;
	explicit_bzero(&k, sizeof(k));
	if (err == 0)
		log_info("S3 credentials replaced");
	worker_ack(m->im_hdr.ih_seq, err);
}

static void worker_dispatch_parent(evutil_socket_t fd, short what, void *arg)
{
	static struct ipc_msg m;
	struct ipc_ring_enable re;
	struct ipc_peer pe;
	int err;

	err = ipc_try_recv(fd, &m);
	if (err == -EAGAIN)
		return;
	if (err == -EPIPE || err == -ECONNRESET) {
		log_debug("parent closed the channel");
		exit(0);
	}
	if (err < 0)
		fatalx("receive from parent: %s", strerror(-err));

	switch (m.im_hdr.ih_type) {
	case IPC_MEM_TABLE:
		worker_mem_table(&m);
		break;
	case IPC_RING_START:
		worker_ring_start(&m);
		break;
	case IPC_RING_ENABLE:
		if (ipc_check(&m, sizeof(re), 0) < 0)
			fatalx("%s: bad RING_ENABLE", __func__);
		memcpy(&re, m.im_data, sizeof(re));
#ifdef BH_TEST_HOOKS
		if (!re.re_enabled && (wk.w_cfg.ic_flags & IPC_CFG_TEST_FLOOD_NOTICES))
			worker_test_flood_notices(); /* instead of the ACK the parent waits for */
#endif
		wk.w_enabled = re.re_enabled != 0;
		worker_ack(m.im_hdr.ih_seq, 0);
		if (wk.w_enabled)
			worker_ring_process();
		break;
	case IPC_RING_FD:
		worker_ring_fd(&m);
		break;
	case IPC_PEER:
		if (ipc_check(&m, sizeof(pe), 1) < 0)
			fatalx("%s: bad PEER", __func__);
		memcpy(&pe, m.im_data, sizeof(pe));
		err = peer_add(wk.w_peer, pe.pe_id, pe.pe_role, m.im_fds[0]);
		if (err < 0)
			log_warnx("peer q%u (role %u): %s", pe.pe_id, pe.pe_role, strerror(-err));
		worker_ack(m.im_hdr.ih_seq, err);
		break;
	case IPC_RING_STOP:
		if (ipc_check(&m, 0, 0) < 0)
			fatalx("%s: bad RING_STOP", __func__);
		worker_ring_stop(m.im_hdr.ih_seq);
		break;
	case IPC_S3_CREDS:
		worker_s3_creds(&m);
		break;
	default:
		ipc_close_fds(&m);
		fatalx("unexpected %s from parent", ipc_type_name(m.im_hdr.ih_type));
	}
}

/* ---- start-up ---- */

static void worker_s3_configure(void);

static void worker_configure(void)
{
	static struct ipc_msg m;
	struct ipc_hello h;
	struct ipc_config *c = &wk.w_cfg;
	char tag[16];
	int err;

	memset(&h, 0, sizeof(h));
	if (strlen(bh_build_id) >= sizeof(h.ih_build_id))
		fatalx("build id too long");
	strcpy(h.ih_build_id, bh_build_id);
	h.ih_pid = (uint32_t)getpid();
	worker_send(IPC_HELLO, 0, &h, sizeof(h));

	err = ipc_recv(BH_WORKER_IPC_FD, &m);
	if (err == -EPIPE)
		exit(0);
	if (err < 0)
		fatalx("receive CONFIG: %s", strerror(-err));
	if (m.im_hdr.ih_type != IPC_CONFIG || ipc_check(&m, sizeof(*c), 2) < 0)
		fatalx("expected CONFIG with 2 fds, got %s (%u bytes, %u fds)",
		       ipc_type_name(m.im_hdr.ih_type), m.im_hdr.ih_len, m.im_hdr.ih_nfds);
	memcpy(c, m.im_data, sizeof(*c));
	if (memchr(c->ic_build_id, '\0', sizeof(c->ic_build_id)) == NULL)
		fatalx("CONFIG: unterminated build id");
	if (strcmp(c->ic_build_id, bh_build_id) != 0)
		fatalx("build id mismatch: parent %s, worker %s", c->ic_build_id, bh_build_id);
	if (c->ic_queue >= BH_MAX_QUEUES || !(wk.w_be = be_desc_find(c->ic_backend)) ||
	    c->ic_log_level > LOG_LVL_DEBUG || c->ic_cache > IPC_CACHE_ALWAYS ||
	    c->ic_thread_pool > 1024 || c->ic_poll_us > BH_MAX_POLL_US ||
	    (c->ic_flags & ~(uint32_t)(IPC_CFG_TEST_FORBIDDEN | IPC_CFG_WRITEBACK | IPC_CFG_XATTR |
				       IPC_CFG_DEVICES | IPC_CFG_FILE_CAPS | IPC_CFG_SETID_STRIP |
				       IPC_CFG_SETID_ALLOW | IPC_CFG_TEST_DIE_NT_LOCK |
				       IPC_CFG_TEST_SLOW_BORROW | IPC_CFG_TEST_SCRIBBLE_NT |
				       IPC_CFG_TEST_FLOOD_NOTICES | IPC_CFG_TEST_HOLD_NT_LOCK |
				       IPC_CFG_TEST_SIGBUS | IPC_CFG_TEST_ESCAPE_PROBE)) ||
	    (c->ic_flags & IPC_CFG_SETID_STRIP && c->ic_flags & IPC_CFG_SETID_ALLOW))
		fatalx("CONFIG: queue %u, back end %u, log level %u, cache %u, pool %u, poll %u us, "
		       "flags %#x",
		       c->ic_queue, c->ic_backend, c->ic_log_level, c->ic_cache, c->ic_thread_pool,
		       c->ic_poll_us, c->ic_flags);

	/* Our lines go to the parent (log_set_relay), which logs them where
	 * its own go, syslog or not. */
	log_init("bulkhead-worker", (enum log_level)c->ic_log_level, 0);
	snprintf(tag, sizeof(tag), "q%u", c->ic_queue);
	log_set_tag(tag);
	wk.w_self = c->ic_queue;
	wk.w_poll_max_ns = (uint64_t)c->ic_poll_us * 1000;
	wk.w_root_fd = m.im_fds[0];
	if (!(wk.w_nt = nt_map(m.im_fds[1])))
		fatal("map the node table");
	close(m.im_fds[1]);
	nt_set_self(wk.w_nt, wk.w_self);
	nt_set_stall_report(wk.w_nt, worker_nt_stall, NULL);
	worker_ack(m.im_hdr.ih_seq, 0);
	if (c->ic_backend == IPC_BE_S3)
		worker_s3_configure();
}

/*
 * S3 workers: S3_CONFIG (+ the CA bundle) and S3_CREDS, each ACKed, while
 * files and the resolver are still within reach (s3_setup.c).
 */
static void worker_s3_configure(void)
{
	static struct ipc_msg m;
	char why[200];
	int err;

	if (!(wk.w_s3 = calloc(1, sizeof(*wk.w_s3))))
		fatalx("out of memory");
	for (int i = 0; i < 2; i++) {
		err = ipc_recv(BH_WORKER_IPC_FD, &m);
		if (err == -EPIPE)
			exit(0);
		if (err < 0)
			fatalx("receive S3 set-up: %s", strerror(-err));
		if (m.im_hdr.ih_type != (i == 0 ? IPC_S3_CONFIG : IPC_S3_CREDS) ||
		    m.im_hdr.ih_nfds > (i == 0 ? 1u : 0u)) {
			ipc_close_fds(&m);
			fatalx("expected %s, got %s (%u fds)", i == 0 ? "S3_CONFIG" : "S3_CREDS",
			       ipc_type_name(m.im_hdr.ih_type), m.im_hdr.ih_nfds);
		}
		if (i == 0)
			err = s3_setup_config(m.im_data, m.im_hdr.ih_len,
					      m.im_hdr.ih_nfds ? m.im_fds[0] : -1, wk.w_s3, why,
					      sizeof(why));
		else if ((err = s3_setup_creds(m.im_data, m.im_hdr.ih_len, &wk.w_s3->ss_creds)) < 0)
			snprintf(why, sizeof(why), "malformed S3_CREDS");
		if (err < 0) {
			worker_notice(IPC_NOTICE_BACKEND, "S3 set-up: %s", why);
			fatalx("S3 set-up: %s", why);
		}
		worker_ack(m.im_hdr.ih_seq, 0);
	}
}

/*
 * SANDBOX: confine ourselves before the first memory table. A step that
 * fails is reported to the parent, and we refuse to serve.
 */
static void worker_sandbox(void)
{
	static struct ipc_msg m;
	struct ipc_sandbox_cfg sb;
	struct sbx_conf sc;
	char why[200];
	int err, root, listener, share;

	err = ipc_recv(BH_WORKER_IPC_FD, &m);
	if (err == -EPIPE)
		exit(0);
	if (err < 0)
		fatalx("receive SANDBOX: %s", strerror(-err));
	if (m.im_hdr.ih_type != IPC_SANDBOX || m.im_hdr.ih_len != sizeof(sb))
		fatalx("expected SANDBOX, got %s (%u bytes)", ipc_type_name(m.im_hdr.ih_type),
		       m.im_hdr.ih_len);
	memcpy(&sb, m.im_data, sizeof(sb));
	if (sb.sb_seccomp > IPC_SECCOMP_LOG || wk.w_cfg.ic_sandbox > IPC_SBX_NAMESPACE ||
	    sb.sb_share > IPC_SBX_SHARE_GIVEN ||
	    (sb.sb_share != IPC_SBX_SHARE_NONE) != (wk.w_cfg.ic_sandbox == IPC_SBX_NAMESPACE) ||
	    m.im_hdr.ih_nfds != (sb.sb_seccomp != IPC_SECCOMP_NONE ? 1u : 0u) +
				    (sb.sb_share == IPC_SBX_SHARE_GIVEN ? 1u : 0u))
		fatalx("SANDBOX: seccomp %u, sandbox %u, share %u, %u fds", sb.sb_seccomp,
		       wk.w_cfg.ic_sandbox, sb.sb_share, m.im_hdr.ih_nfds);

	sc.sc_mode = wk.w_cfg.ic_sandbox;
	sc.sc_seccomp = sb.sb_seccomp;
	sc.sc_root_fd = wk.w_root_fd;
	sc.sc_prog_fd = sb.sb_seccomp != IPC_SECCOMP_NONE ? m.im_fds[0] : -1;
	sc.sc_share_fd = sb.sb_share == IPC_SBX_SHARE_GIVEN ? m.im_fds[m.im_hdr.ih_nfds - 1] : -1;
	sc.sc_ninsns = sb.sb_ninsns;
	sc.sc_ipc_fd = BH_WORKER_IPC_FD;
	sc.sc_rdonly = wk.w_cfg.ic_readonly != 0;
	sc.sc_be = wk.w_be;
	sc.sc_drop = 0;
	if (!(wk.w_cfg.ic_flags & IPC_CFG_DEVICES))
		sc.sc_drop |= SBX_DROP_MKNOD;
	if (!(wk.w_cfg.ic_flags & IPC_CFG_FILE_CAPS) || !(wk.w_cfg.ic_flags & IPC_CFG_XATTR))
		sc.sc_drop |= SBX_DROP_SETFCAP;
	err = sbx_enter(&sc, &root, &wk.w_proc_fd, &share, &listener, why, sizeof(why));
	ipc_close_fds(&m);
	if (err < 0) {
		worker_notice(IPC_NOTICE_SANDBOX, "%s", why);
		exit(1);
	}
	wk.w_root_fd = root;
	if (share >= 0) {
		err = ipc_send(BH_WORKER_IPC_FD, IPC_SHARE_MOUNT, m.im_hdr.ih_seq, NULL, 0, &share,
			       1);
		close(share);
		if (err < 0)
			fatalx("send the share's mount: %s", strerror(-err));
	}
	if (listener >= 0) {
		err = ipc_send(BH_WORKER_IPC_FD, IPC_SECCOMP_LISTENER, m.im_hdr.ih_seq, NULL, 0,
			       &listener, 1);
		/* Only the parent may answer our filter's notifications. */
		close(listener);
		if (err < 0)
			fatalx("send the seccomp listener: %s", strerror(-err));
	}
#ifdef BH_TEST_HOOKS
	if (wk.w_cfg.ic_flags & IPC_CFG_TEST_FORBIDDEN)
		sbx_test_forbidden_call();
#endif
	log_debug("sandbox in place (mode %u, seccomp %u)", sc.sc_mode, sc.sc_seccomp);
	worker_ack(m.im_hdr.ih_seq, 0);
}

static const struct fuse_host worker_fuse_host = {
    .fh_on_loop = worker_on_loop,
    .fh_complete = worker_req_complete,
    .fh_complete_local = worker_req_complete_local,
};

int main(int argc, char *argv[])
{
	struct be_env env;
	int err;

	log_init("bulkhead-worker", LOG_LVL_INFO, 0);
	log_set_relay();
	worker_loop_thread = true;
	signal(SIGPIPE, SIG_IGN);
	/* Die with the parent. If it is gone already, the first send fails
	 * (EPIPE) and we exit: getppid() means nothing to a PID namespace's
	 * init, which is what a worker is with --sandbox=namespace. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		fatal("prctl(PR_SET_PDEATHSIG)");
	TAILQ_INIT(&wk.w_inflight);
	TAILQ_INIT(&wk.w_free);
	wk.w_kick_fd = wk.w_call_fd = wk.w_err_fd = -1;
	wk.w_vq.call_fd = wk.w_vq.err_fd = -1;

	worker_configure();
#ifdef BH_TEST_HOOKS
	if (wk.w_cfg.ic_flags & IPC_CFG_TEST_SIGBUS)
		gf_test_prepare(); /* memfd_create is not in the policy */
#endif
	worker_sandbox();
	/* Before the first memory table and before any thread. */
	if ((err = gf_install(BH_WORKER_IPC_FD)) < 0)
		fatalx("SIGBUS handler: %s", strerror(-err));

	if (!(wk.w_base = event_base_new()))
		fatalx("event_base_new failed");
	if (!(wk.w_quiet_ev = evtimer_new(wk.w_base, worker_quiet_check, NULL)))
		fatalx("cannot create the quiet-ring check");
	if (!(wk.w_tp = tp_create(wk.w_cfg.ic_thread_pool, wk.w_base)))
		fatal("thread pool of %u", wk.w_cfg.ic_thread_pool);
	tp_set_spin(wk.w_tp, wk.w_poll_max_ns);
	/* The back end answers the other workers once it is up (init). */
	if (!(wk.w_peer = peer_create(wk.w_self, NULL)))
		fatal("peer channels");

	memset(&env, 0, sizeof(env));
	env.nt = wk.w_nt;
	env.peer = wk.w_peer;
	env.tp = wk.w_tp;
	env.base = wk.w_base;
	env.self = wk.w_self;
	env.root_fd = wk.w_root_fd;
	env.proc_fd = wk.w_proc_fd;
	env.cache = wk.w_cfg.ic_cache;
	env.readonly = wk.w_cfg.ic_readonly != 0;
	env.writeback = (wk.w_cfg.ic_flags & IPC_CFG_WRITEBACK) != 0;
	env.xattr = (wk.w_cfg.ic_flags & IPC_CFG_XATTR) != 0;
	env.test_escape_probe = (wk.w_cfg.ic_flags & IPC_CFG_TEST_ESCAPE_PROBE) != 0;
	env.test_slow_borrow = (wk.w_cfg.ic_flags & IPC_CFG_TEST_SLOW_BORROW) != 0;
	env.more_waiting = worker_more_waiting;
	env.ring_passes = &wk.w_ring_passes;
	if (wk.w_s3) {
		env.s3_cfg = &wk.w_s3->ss_cfg;
		env.s3_creds = &wk.w_s3->ss_creds;
		env.s3_ca = wk.w_s3->ss_ca;
		env.s3_ca_len = wk.w_s3->ss_ca_len;
		env.s3_resolve = wk.w_s3->ss_resolve[0] ? wk.w_s3->ss_resolve : NULL;
		env.s3_multi = wk.w_s3->ss_multi;
	}
	/* The memory back end's share is a file system the parent made (a
	 * private tmpfs) rather than a host directory, which only the sandbox
	 * treats differently: it is served by the passthrough calls. */
	wk.w_sess.fs_be = wk.w_be->bd_id == IPC_BE_S3 ? &be_s3_ops : &be_passthrough_ops;
	if ((err = wk.w_sess.fs_be->init(&env, &wk.w_sess.fs_be_ctx)) < 0)
		fatalx("%s back end: %s", wk.w_sess.fs_be->name, strerror(-err));
	if (wk.w_s3)
		explicit_bzero(&wk.w_s3->ss_creds,
			       sizeof(wk.w_s3->ss_creds)); /* the client has its copy */
	wk.w_sess.fs_host = &worker_fuse_host;
	wk.w_sess.fs_can = wk.w_be->bd_can & ~(env.xattr ? 0u : (uint32_t)BE_CAN_XATTR);
	wk.w_sess.fs_readonly = env.readonly;
	wk.w_sess.fs_nt = wk.w_nt;
	wk.w_sess.fs_peer = wk.w_peer;
	wk.w_sess.fs_tp = wk.w_tp;
	wk.w_sess.fs_base = wk.w_base;
	wk.w_sess.fs_self = wk.w_self;
	wk.w_sess.fs_queue_size = 128;
	if (wk.w_cfg.ic_flags & IPC_CFG_DEVICES)
		wk.w_sess.fs_policy |= FUSE_POL_DEVICES;
	if (wk.w_cfg.ic_flags & IPC_CFG_FILE_CAPS)
		wk.w_sess.fs_policy |= FUSE_POL_FILE_CAPS;
	if (wk.w_cfg.ic_flags & IPC_CFG_SETID_STRIP)
		wk.w_sess.fs_policy |= FUSE_POL_SETID_STRIP;
	if (wk.w_cfg.ic_flags & IPC_CFG_SETID_ALLOW)
		wk.w_sess.fs_policy |= FUSE_POL_SETID_ALLOW;
	fuse_sess_start(&wk.w_sess);
	tp_set_batch_end(wk.w_tp, worker_batch_end, NULL);

	wk.w_ipc_ev = event_new(wk.w_base, BH_WORKER_IPC_FD, EV_READ | EV_PERSIST,
				worker_dispatch_parent, NULL);
	if (!wk.w_ipc_ev || event_add(wk.w_ipc_ev, NULL) < 0)
		fatalx("cannot watch the parent channel");
	log_debug("serving queue %u (%u threads, cache %u)", wk.w_self, wk.w_cfg.ic_thread_pool,
		  wk.w_cfg.ic_cache);
	event_base_dispatch(wk.w_base);
	return 0;
}
