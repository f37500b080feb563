/*
 * workers.c - spawning, feeding and supervising the per-queue workers
 * (the conversation written down at the top of common/ipc.h).
 * Runs in: the parent. Workers handle guest data and may be compromised, so
 * everything they send is checked: a malformed or unexpected message gets the
 * worker killed and its queue marked dead; the parent and the other queues
 * carry on. Waits for replies are synchronous (poll with a timeout) because
 * the front end must not hear back before the workers are done.
 *
 * A worker cannot stall us or its peers either: NOTICEs between requests
 * are rate-limited (over the limit, the worker is killed), a wait for a
 * reply ends at its deadline however many NOTICEs arrive meanwhile, the
 * lines a worker makes us log are rate-limited, and we watch the shared
 * node table's lock word (only that word and its counter: a mapping of
 * the header page, node_table_lock.c) to kill a worker that keeps the lock
 * and to release the lock of one that died.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <seccomp.h>

#include "bulkhead.h"
#include "backends.h"
#include "bulkheadd.h"
#include "ipc.h"
#include "log.h"
#include "node_table.h"
#include "util.h"

enum wk_state { WK_NONE = 0, WK_LIVE, WK_DEAD };

struct wk {
	enum wk_state w_state;
	pid_t w_pid; /* 0 once reaped */
	int w_fd;    /* IPC channel, -1 when closed */
	uint32_t w_seq;
	struct event *w_ev; /* watches the channel between front-end messages */
	struct bh_bucket w_notices; /* NOTICEs between requests */
	struct bh_bucket w_lines;   /* lines of the log they cause */
	uint32_t w_lines_dropped;   /* not logged since the last one that was */
};

/*
 * The watch over the node table's lock word. A sample every
 * PARENT_NT_CHECK_MS; a word that stays the same, with the same number of
 * acquisitions, for NT_LOCK_HOLD_MAX_MS is a holder that keeps the lock. A
 * holder that fakes progress by bumping the counter is caught by its
 * victims: a worker that has waited that long says so (IPC_NOTICE_NT_STALL),
 * and if our samples saw the same holder all that time, it goes too.
 */
struct wk_ntwatch {
	struct nt_lockwatch *nw_lw; /* NULL while there is no table */
	struct event *nw_ev;
	uint32_t nw_word, nw_acq; /* the last sample */
	uint64_t nw_still;	  /* since when neither holder nor counter changed */
	uint64_t nw_same;	  /* since when the word names the same holder */
};

static struct parent_env *wk_env;
static struct wk wk_table[BH_MAX_QUEUES];
static int wk_nt_fd = -1; /* node table of the current front end */
static int wk_share_fd = -1; /* its mount of the share (namespace mode) */
static struct wk_ntwatch wk_nt;
static bool wk_test_hook_used; /* --test-forbidden-syscall: first worker only */

static void wk_dispatch_worker(evutil_socket_t fd, short ev, void *arg);
static void wk_nt_check(evutil_socket_t fd, short ev, void *arg);

void workers_init(struct parent_env *env)
{
	wk_env = env;
	for (uint32_t i = 0; i < BH_MAX_QUEUES; i++) {
		wk_table[i].w_fd = -1;
		wk_table[i].w_state = WK_NONE;
	}
	wl_init(env->pe_base);
	wk_nt.nw_ev = event_new(env->pe_base, -1, EV_PERSIST, wk_nt_check, NULL);
	if (!wk_nt.nw_ev)
		fatalx("cannot create the node table watch");
}

bool workers_live(uint32_t q)
{
	return q < BH_MAX_QUEUES && wk_table[q].w_state == WK_LIVE;
}

unsigned workers_count(void)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < BH_MAX_QUEUES; i++)
		n += wk_table[i].w_state == WK_LIVE;
	return n;
}

bool workers_dead(uint32_t q)
{
	return q < BH_MAX_QUEUES && wk_table[q].w_state == WK_DEAD;
}

static void wk_close_channel(struct wk *w)
{
	if (w->w_ev) {
		event_free(w->w_ev);
		w->w_ev = NULL;
	}
	if (w->w_fd >= 0) {
		close(w->w_fd);
		w->w_fd = -1;
	}
}

/* The queue is dead for the rest of this connection; SIGCHLD reaps it. */
static void wk_kill(uint32_t q)
{
	struct wk *w = &wk_table[q];

	if (w->w_pid > 0)
		kill(w->w_pid, SIGKILL);
	wk_close_channel(w);
	seclog_forget(q);
	w->w_state = WK_DEAD;
	if (w->w_lines_dropped)
		log_warnx("worker q%u: %u more of its lines were not logged", q,
			  w->w_lines_dropped);
	w->w_lines_dropped = 0;
}

/* May we log one more line on behalf of worker q? A worker must not fill
 * the log through us; what is left out is counted and said later. */
static bool wk_line_ok(uint32_t q)
{
	struct wk *w = &wk_table[q];

	if (!bh_bucket_take(&w->w_lines, PARENT_WK_LOG_BURST, PARENT_WK_LOG_RATE)) {
		w->w_lines_dropped++;
		return false;
	}
	if (w->w_lines_dropped) {
		log_warnx("worker q%u: %u of its lines were not logged (more than %d a second)", q,
			  w->w_lines_dropped, PARENT_WK_LOG_RATE);
		w->w_lines_dropped = 0;
	}
	return true;
}

/* ---- the node table's lock ---- */

static void wk_nt_sample(uint64_t now)
{
	struct wk_ntwatch *nw = &wk_nt;
	uint32_t word, acq;

	nt_lockwatch_sample(nw->nw_lw, &word, &acq);
	if (word == 0 || nw->nw_word == 0 ||
	    (word & NT_LOCK_TAG_MASK) != (nw->nw_word & NT_LOCK_TAG_MASK)) {
		nw->nw_same = now;
		nw->nw_still = now;
	} else if (acq != nw->nw_acq) {
		nw->nw_still = now;
	}
	nw->nw_word = word;
	nw->nw_acq = acq;
}

/*
 * The lock has been held past the bound. Kill the holder its word names if
 * that is a live worker of ours (workers_reap then releases the word), or
 * release a word that names none. The word is anyone's to write: a worker
 * can put a peer's tag there and have us kill that peer, a denial of service
 * of its own device, which it can cause anyway. The tag is only ever an
 * index into wk_table: nothing but this device's workers can be killed.
 */
static void wk_nt_stuck(uint64_t now, int waiter)
{
	struct wk_ntwatch *nw = &wk_nt;
	int h = nt_lock_holder(nw->nw_word);
	char why[48] = "";

	if (waiter >= 0)
		snprintf(why, sizeof(why), " (worker q%d waited for it)", waiter);
	if (h >= 0 && h < BH_MAX_QUEUES && wk_table[h].w_state == WK_LIVE) {
		log_warnx("worker q%d held the node table lock for more than %u ms, killing it%s",
			  h, NT_LOCK_HOLD_MAX_MS, why);
		wk_kill((uint32_t)h);
	} else if (h >= 0 && h < BH_MAX_QUEUES && wk_table[h].w_pid > 0) {
		/* dead but not reaped yet: workers_reap releases it */
	} else if (nt_lockwatch_release(nw->nw_lw, nw->nw_word)) {
		log_warnx("node table lock word %#x names no worker of this device; released it "
			  "after %u ms",
			  nw->nw_word, NT_LOCK_HOLD_MAX_MS);
	}
	nw->nw_still = nw->nw_same = now; /* a full period before acting again */
}

/* One look at the lock, every PARENT_NT_CHECK_MS while there is a table:
 * from the loop's timer, and from wk_recv while we wait for a reply (the
 * bound holds then too). */
static void wk_nt_tick(void)
{
	uint64_t now = bh_now_ns();

	if (!wk_nt.nw_lw)
		return;
	wk_nt_sample(now);
	if (wk_nt.nw_word != 0 && now - wk_nt.nw_still >= NT_LOCK_HOLD_MAX_MS * 1000000ull)
		wk_nt_stuck(now, -1);
}

static void wk_nt_check(evutil_socket_t fd, short ev, void *arg)
{
	wk_nt_tick();
}

/* Inside a wait: a worker we killed is reaped here rather than by the loop,
 * so that the lock it held is released without waiting for us. */
static void wk_nt_tick_waiting(void)
{
	wk_nt_tick();
	for (uint32_t q = 0; q < BH_MAX_QUEUES; q++)
		if (wk_table[q].w_state == WK_DEAD && wk_table[q].w_pid > 0) {
			workers_reap();
			break;
		}
}

/* Worker q has waited NT_LOCK_HOLD_MAX_MS for the lock, which it saw as
 * 'seen'. Believed only if our own samples have seen that holder, at every
 * sample, for half the bound at least: a waiter may be slow to tell, or
 * lying. (Not the whole bound: our first sample of a new holder may come a
 * period late, or later on a loaded machine.) */
static void wk_nt_stalled(uint32_t q, uint32_t seen)
{
	struct wk_ntwatch *nw = &wk_nt;
	uint64_t now = bh_now_ns();

	if (!nw->nw_lw)
		return;
	wk_nt_sample(now);
	if (nw->nw_word == 0 || (nw->nw_word & NT_LOCK_TAG_MASK) != (seen & NT_LOCK_TAG_MASK) ||
	    now - nw->nw_same < NT_LOCK_HOLD_MAX_MS / 2 * 1000000ull)
		return;
	wk_nt_stuck(now, (int)q);
}

/* Worker q is gone for good (reaped): a lock it held is released. */
static void wk_nt_reaped(uint32_t q)
{
	uint32_t word, acq;

	if (!wk_nt.nw_lw)
		return;
	nt_lockwatch_sample(wk_nt.nw_lw, &word, &acq);
	if (nt_lock_holder(word) == (int)q && nt_lockwatch_release(wk_nt.nw_lw, word))
		log_warnx("worker q%u died holding the node table lock; lock recovered", q);
}

static int wk_nt_start(void)
{
	struct timeval tv = {0, PARENT_NT_CHECK_MS * 1000};
	int fd, r;

	fd = nt_create();
	if (fd < 0)
		return fd;
	if (!(wk_nt.nw_lw = nt_lockwatch_map(fd))) {
		r = -errno;
		close(fd);
		return r;
	}
	wk_nt.nw_word = 0;
	wk_nt.nw_acq = 0;
	wk_nt.nw_still = wk_nt.nw_same = bh_now_ns();
	if (event_add(wk_nt.nw_ev, &tv) < 0) {
		nt_lockwatch_unmap(wk_nt.nw_lw);
		wk_nt.nw_lw = NULL;
		close(fd);
		return -ENOMEM;
	}
	wk_nt_fd = fd;
	return 0;
}

static void wk_nt_stop(void)
{
	event_del(wk_nt.nw_ev);
	nt_lockwatch_unmap(wk_nt.nw_lw);
	wk_nt.nw_lw = NULL;
	if (wk_nt_fd >= 0) {
		close(wk_nt_fd);
		wk_nt_fd = -1;
	}
}

static void wk_malformed(uint32_t q, const char *what)
{
	log_warnx("worker q%u sent a malformed message (%s), killing it", q, what);
	wk_kill(q);
}

/*
 * SIGBUS in worker q (worker/guest_fault.c). In guest memory it is the front
 * end's doing (it shrank a memory file the worker maps): the worker, which
 * waits for it, is killed and the connection dropped, 1. Anywhere else it
 * is a bug of the worker, which dies of it by itself: 0.
 */
static int wk_guest_memory(uint32_t q, const struct ipc_notice *n)
{
	char why[64];

	if (n->in_pad == IPC_GUEST_FAULT_OUTSIDE) {
		if (wk_line_ok(q))
			log_warnx("worker q%u (pid %d): %s: a bug, the worker dies of it", q,
				  (int)wk_table[q].w_pid, n->in_text);
		return 0;
	}
	log_warnx("front end shrank guest memory region %u (%s) under worker q%u: dropping the "
		  "connection",
		  n->in_pad, n->in_text, q);
	wk_kill(q);
	snprintf(why, sizeof(why), "its guest memory shrank under worker q%u", q);
	vu_server_drop(why);
	return 1;
}

/*
 * Log a worker's NOTICE (rate-limited), or act on it. A forbidden system
 * call (from the worker's SIGSYS reporter) or SIGBUS in guest memory gets
 * the worker killed, and so may a stall report (when it holds the lock
 * itself): 1 then, else 0.
 */
static int wk_log_notice(uint32_t q, const struct ipc_msg *m)
{
	struct ipc_notice n;
	char *name;

	memcpy(&n, m->im_data, sizeof(n));
	n.in_text[sizeof(n.in_text) - 1] = '\0';
	for (char *p = n.in_text; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?'; /* no control characters from a worker in our log */
	switch (n.in_kind) {
	case IPC_NOTICE_SECCOMP:
		name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, (int)n.in_pad);
		if (wk_line_ok(q))
			log_warnx("worker q%u (pid %d) made a forbidden system call: %s (%u); "
				  "allow it in %s if it is legitimate",
				  q, (int)wk_table[q].w_pid, name ? name : "unknown", n.in_pad,
				  priv_policy_for(wk_env, (int)n.in_pad));
		free(name);
		/* kill: ours to do (a PID namespace's init cannot SIGKILL itself);
		 * trap: it dies by SIGSYS on its own, and we reap it. */
		if (wk_env->pe_conf->pc_seccomp == IPC_SECCOMP_TRAP)
			return 0;
		wk_kill(q);
		return 1;
	case IPC_NOTICE_SANDBOX:
		if (wk_line_ok(q))
			log_warnx("worker q%u refused to serve: %s", q, n.in_text);
		return 0;
	case IPC_NOTICE_NT_STALL:
		wk_nt_stalled(q, n.in_pad);
		return workers_live(q) ? 0 : 1; /* it may have been the holder */
	case IPC_NOTICE_GUEST_MEMORY:
		return wk_guest_memory(q, &n);
	default:
		if (wk_line_ok(q))
			log_warnx("worker q%u: %s%s", q,
				  n.in_kind == IPC_NOTICE_QUEUE_BROKEN ? "queue broken: " : "",
				  n.in_text);
		return 0;
	}
}

/*
 * Receive one message from worker q, waiting up to timeout_ms. NOTICEs are
 * logged and skipped; they do not move the deadline. 0, or -errno after the
 * worker was killed.
 */
static int wk_recv(uint32_t q, struct ipc_msg *m, int timeout_ms, const char *waiting_for)
{
	struct wk *w = &wk_table[q];
	uint64_t deadline = bh_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	uint64_t tick = bh_now_ns() + PARENT_NT_CHECK_MS * 1000000ull;
	struct pollfd pfd[1 + 2 * BH_MAX_QUEUES];
	int lfd[BH_MAX_QUEUES], gfd[BH_MAX_QUEUES];
	uint32_t lq[BH_MAX_QUEUES], gq[BH_MAX_QUEUES];
	int r, nl, ng;

	for (;;) {
		uint64_t now = bh_now_ns();
		int left;

		if (now >= tick) {
			wk_nt_tick_waiting();
			tick = now + PARENT_NT_CHECK_MS * 1000000ull;
			if (w->w_state != WK_LIVE)
				return -EHOSTDOWN; /* it held the lock, or it died */
		}

		/* Checked on every message: a worker that streams NOTICEs
		 * instead of answering still meets the deadline. */
		if (now >= deadline) {
			log_warnx("worker q%u did not send %s within %d ms, killing it", q,
				  waiting_for, timeout_ms);
			wk_kill(q);
			return -ETIMEDOUT;
		}
		left = (int)(((deadline < tick ? deadline : tick) - now + 999999) / 1000000ull);

		/* --seccomp=log: a worker (this one, or a peer it waits for) may be
		 * blocked on a notification only we can answer. */
		nl = seclog_fds(lfd, lq, BH_MAX_QUEUES);
		/* and the workers' logs, lest a full pipe lose their lines */
		ng = wl_fds(gfd, gq, BH_MAX_QUEUES);
		pfd[0].fd = w->w_fd;
		pfd[0].events = POLLIN;
		for (int i = 0; i < nl; i++) {
			pfd[1 + i].fd = lfd[i];
			pfd[1 + i].events = POLLIN;
		}
		for (int i = 0; i < ng; i++) {
			pfd[1 + nl + i].fd = gfd[i];
			pfd[1 + nl + i].events = POLLIN;
		}
		r = poll(pfd, (nfds_t)(1 + nl + ng), left);
		if (r == 0 || (r < 0 && errno == EINTR))
			continue; /* the deadline, above */
		if (r < 0) {
			r = -errno;
			log_warn("worker q%u: poll", q);
			wk_kill(q);
			return r;
		}
		for (int i = 0; i < nl; i++)
			if (pfd[1 + i].revents)
				seclog_service(lq[i]);
		for (int i = 0; i < ng; i++)
			if (pfd[1 + nl + i].revents)
				wl_service(gq[i]);
		if (!pfd[0].revents)
			continue;
		r = ipc_recv(w->w_fd, m);
		if (r == -EAGAIN)
			continue;
		if (r == -EPIPE) {
			log_warnx("worker q%u closed its channel while we waited for %s", q,
				  waiting_for);
			wk_kill(q);
			return -EPIPE;
		}
		if (r == -EBADMSG) {
			wk_malformed(q, "bad framing");
			return -EBADMSG;
		}
		if (r < 0) {
			log_warnx("worker q%u: receive failed: %s, killing it", q, strerror(-r));
			wk_kill(q);
			return r;
		}
		if (m->im_hdr.ih_type != IPC_NOTICE)
			return 0;
		if (ipc_check(m, sizeof(struct ipc_notice), 0) < 0) {
			ipc_close_fds(m);
			wk_malformed(q, "NOTICE of the wrong size");
			return -EBADMSG;
		}
		if (wk_log_notice(q, m))
			return -ECONNABORTED;
	}
}

/* Send a request; its sequence number in *seq. 0 or -errno (the worker is killed). */
static int wk_send(uint32_t q, uint32_t type, const void *data, size_t len, const int *fds,
		   size_t nfds, uint32_t *seq)
{
	struct wk *w = &wk_table[q];
	int r;

	if (w->w_state != WK_LIVE)
		return -EHOSTDOWN;
	*seq = ++w->w_seq;
	r = ipc_send(w->w_fd, type, *seq, data, len, fds, nfds);
	if (r < 0) {
		log_warnx("cannot send %s to worker q%u: %s, killing it", ipc_type_name(type), q,
			  strerror(-r));
		wk_kill(q);
	}
	return r;
}

/* Wait for the ACK of request seq: the worker's 0 / -errno, or -errno of our own. */
static int wk_wait_ack(uint32_t q, uint32_t type, uint32_t seq)
{
	struct ipc_msg m;
	struct ipc_ack ack;
	int r;

	r = wk_recv(q, &m, PARENT_ACK_TIMEOUT_MS, "an ACK");
	if (r < 0)
		return r;
	if (m.im_hdr.ih_type != IPC_ACK || ipc_check(&m, sizeof(ack), 0) < 0) {
		char what[80];
		if (m.im_hdr.ih_type == IPC_ACK)
			snprintf(what, sizeof(what), "ACK for %s with %u bytes and %u fds",
				 ipc_type_name(type), m.im_hdr.ih_len, m.im_hdr.ih_nfds);
		else
			snprintf(what, sizeof(what), "%s instead of ACK for %s",
				 ipc_type_name(m.im_hdr.ih_type), ipc_type_name(type));
		ipc_close_fds(&m);
		wk_malformed(q, what);
		return -EBADMSG;
	}
	memcpy(&ack, m.im_data, sizeof(ack));
	if (m.im_hdr.ih_seq != seq || ack.ia_seq != seq) {
		wk_malformed(q, "ACK with the wrong sequence number");
		return -EBADMSG;
	}
	if (ack.ia_error > 0 || ack.ia_error < -4095) {
		wk_malformed(q, "ACK with an impossible error code");
		return -EBADMSG;
	}
	if (ack.ia_error < 0)
		log_warnx("worker q%u refused %s: %s", q, ipc_type_name(type),
			  strerror(-ack.ia_error));
	return ack.ia_error;
}

/* Send a request and wait for its ACK. */
static int wk_request(uint32_t q, uint32_t type, const void *data, size_t len, const int *fds,
		      size_t nfds)
{
	uint32_t seq;
	int r = wk_send(q, type, data, len, fds, nfds, &seq);

	return r < 0 ? r : wk_wait_ack(q, type, seq);
}

/* In the child: become the worker. Never returns. */
static void __attribute__((noreturn)) wk_exec(int chan, pid_t parent, bool new_pidns, int syncfd,
					     int logfd)
{
	char *const argv[] = {"bulkhead-worker", NULL};
	char *const envp[] = {NULL};
	int exe = wk_env->pe_exe_fd, r, null;
	sigset_t all;

	/* A new user namespace: nothing runs before the parent wrote our maps.
	 * Before PDEATHSIG, which a change of ids clears. */
	if (syncfd >= 0 && (r = uns_child_enter(wk_env, syncfd)) < 0) {
		dprintf(STDERR_FILENO, "bulkheadd: worker: entering its user namespace: %s\n",
			strerror(-r));
		_exit(127);
	}
	/* In a new PID namespace our parent has no pid we could see (getppid
	 * is 0); if it died already, the worker's first send fails and it exits. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || (!new_pidns && getppid() != parent))
		_exit(127);
	/* Standard input and output: nothing; standard error: our log pipe
	 * (worker_log.c). Not our terminal, log file or journal: a worker
	 * could reopen those through its procfs, or write anything to them. */
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0 ||
	    dup2(logfd, STDERR_FILENO) < 0)
		_exit(127);
	/* Keep the binary's fd clear of the channel slot and of the range we close. */
	if (exe <= BH_WORKER_IPC_FD) {
		exe = fcntl(exe, F_DUPFD_CLOEXEC, BH_WORKER_IPC_FD + 1);
		if (exe < 0)
			_exit(127);
	}
	if (chan != BH_WORKER_IPC_FD) {
		if (dup2(chan, BH_WORKER_IPC_FD) < 0) /* dup2 clears FD_CLOEXEC */
			_exit(127);
	} else if (bh_set_cloexec(chan, 0) < 0) {
		_exit(127);
	}
	if (exe > BH_WORKER_IPC_FD + 1)
		close_range(BH_WORKER_IPC_FD + 1, (unsigned)exe - 1, 0);
	close_range((unsigned)exe + 1, ~0u, 0);

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);

	execveat(exe, "", argv, envp, AT_EMPTY_PATH);
	dprintf(STDERR_FILENO, "bulkheadd: cannot execute the worker %s: %s\n", wk_env->pe_exe_path,
		strerror(errno));
	_exit(127);
}

/*
 * fork, or with --sandbox=namespace a fork-like clone into new mount, PID,
 * IPC, UTS and network namespaces (but the S3 back end's, BE_SBX_NETWORK,
 * whose workers talk to the gateway themselves), and a
 * user namespace when we are unprivileged or maps were asked for. Around
 * the clone our working directory is the share: the kernel translates it
 * into the child's copy of the mount tree, which is how the worker finds
 * the share there (a descriptor would still name our tree, which mount
 * calls in the child's namespace refuse).
 */
static pid_t wk_clone(bool ns)
{
	const struct be_desc *be = be_desc_find(wk_env->pe_conf->pc_backend);
	unsigned long flags = SIGCHLD;
	pid_t pid;
	int err;

	if (!ns)
		return fork();
	flags |= CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
	if (!(be->bd_sandbox & BE_SBX_NETWORK))
		flags |= CLONE_NEWNET;
	if (wk_env->pe_userns)
		flags |= CLONE_NEWUSER;
	/* A share that is no host directory (the memory back end's file
	 * system, the S3 back end's staging directory) is in no tree: the
	 * child gets it from us (wk_sandbox) and pivots from "/" */
	if ((be->bd_sandbox & BE_SBX_HOST_DIR) ? fchdir(wk_env->pe_root_fd) < 0 : chdir("/") < 0)
		return -1;
	pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
	if (pid != 0) {
		err = errno;
		if (fchdir(wk_env->pe_cwd_fd) < 0)
			fatal("cannot return to the working directory");
		errno = err;
	}
	return pid;
}

static int wk_fork(uint32_t q)
{
	struct wk *w = &wk_table[q];
	bool ns = wk_env->pe_conf->pc_sandbox == IPC_SBX_NAMESPACE;
	pid_t parent = getpid(), pid;
	int sv[2], sync[2] = {-1, -1}, lp[2], r;
	char why[900];

	r = ipc_socketpair(sv);
	if (r < 0) {
		log_warnx("worker q%u: socketpair: %s", q, strerror(-r));
		return r;
	}
	/* Its standard error: non-blocking at both ends, so that a worker that
	 * logs faster than we relay loses lines, never time. */
	if (pipe2(lp, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = -errno;
		log_warn("worker q%u: log pipe", q);
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	/* The child waits on sync[0] until its user namespace has maps. */
	if (ns && wk_env->pe_userns && pipe2(sync, O_CLOEXEC) < 0) {
		r = -errno;
		log_warn("worker q%u: pipe", q);
		close(sv[0]);
		close(sv[1]);
		close(lp[0]);
		close(lp[1]);
		return r;
	}
	pid = wk_clone(ns);
	if (pid < 0) {
		r = -errno;
		if (ns && wk_env->pe_userns)
			log_warn("worker q%u: clone into new user and other namespaces (are "
				 "user namespaces enabled? see user.max_user_namespaces)",
				 q);
		else if (ns)
			log_warn("worker q%u: clone into new namespaces (without the rights, "
				 "try --sandbox=chroot)",
				 q);
		else
			log_warn("worker q%u: fork", q);
		close(sv[0]);
		close(sv[1]);
		close(lp[0]);
		close(lp[1]);
		if (sync[0] >= 0) {
			close(sync[0]);
			close(sync[1]);
		}
		return r;
	}
	if (pid == 0) {
		close(sv[0]);
		close(lp[0]);
		if (sync[1] >= 0)
			close(sync[1]);
		wk_exec(sv[1], parent, ns, sync[0], lp[1]);
	}
	close(sv[1]);
	close(lp[1]);
	if ((r = wl_watch(q, lp[0])) < 0)
		log_warnx("worker q%u: cannot watch its log: %s", q, strerror(-r));
	if (sync[0] >= 0) {
		close(sync[0]);
		r = uns_write_maps(wk_env, pid, why, sizeof(why));
		/* No byte (EOF) tells the child to give up. */
		if (r == 0 && write(sync[1], "", 1) != 1) {
			r = -errno;
			snprintf(why, sizeof(why), "%s", strerror(-r));
		}
		close(sync[1]);
		if (r < 0) {
			log_warnx("worker q%u: cannot give it its user namespace maps: %s", q, why);
			kill(pid, SIGKILL);
			close(sv[0]);
			/* SIGCHLD reaps it (an unknown child by then). */
			return r;
		}
	}
	w->w_pid = pid;
	w->w_fd = sv[0];
	w->w_seq = 0;
	memset(&w->w_notices, 0, sizeof(w->w_notices));
	memset(&w->w_lines, 0, sizeof(w->w_lines));
	w->w_lines_dropped = 0;
	w->w_state = WK_LIVE;
	log_info("worker q%u started (pid %d)", q, (int)pid);
	return 0;
}

static int wk_hello(uint32_t q)
{
	struct ipc_msg m;
	struct ipc_hello h;
	int r;

	r = wk_recv(q, &m, PARENT_HELLO_TIMEOUT_MS, "HELLO");
	if (r < 0)
		return r;
	if (m.im_hdr.ih_type != IPC_HELLO || ipc_check(&m, sizeof(h), 0) < 0) {
		ipc_close_fds(&m);
		wk_malformed(q, "expected HELLO");
		return -EBADMSG;
	}
	memcpy(&h, m.im_data, sizeof(h));
	if (!memchr(h.ih_build_id, '\0', sizeof(h.ih_build_id))) {
		wk_malformed(q, "unterminated build id");
		return -EBADMSG;
	}
	if (strcmp(h.ih_build_id, bh_build_id) != 0) {
		for (char *p = h.ih_build_id; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				*p = '?';
		log_warnx("worker build id %s does not match parent %s", h.ih_build_id,
			  bh_build_id);
		wk_kill(q);
		return -EPROTO;
	}
	return 0;
}

static int wk_config(uint32_t q)
{
	const struct parent_conf *c = wk_env->pe_conf;
	struct ipc_config cfg = {0};
	int fds[2] = {wk_env->pe_root_fd, wk_nt_fd};

	snprintf(cfg.ic_build_id, sizeof(cfg.ic_build_id), "%s", bh_build_id);
	cfg.ic_queue = q;
	cfg.ic_max_queues = BH_MAX_QUEUES;
	cfg.ic_backend = wk_env->pe_conf->pc_backend;
	cfg.ic_thread_pool = c->pc_thread_pool;
	cfg.ic_poll_us = c->pc_poll_us;
	cfg.ic_log_level = (uint32_t)c->pc_log_level;
	cfg.ic_use_syslog = (uint32_t)c->pc_syslog;
	cfg.ic_sandbox = c->pc_sandbox;
	cfg.ic_cache = c->pc_cache;
	cfg.ic_readonly = c->pc_readonly;
	if (c->pc_xattr)
		cfg.ic_flags |= IPC_CFG_XATTR;
	if (c->pc_writeback)
		cfg.ic_flags |= IPC_CFG_WRITEBACK;
	if (c->pc_devices)
		cfg.ic_flags |= IPC_CFG_DEVICES;
	if (c->pc_file_caps)
		cfg.ic_flags |= IPC_CFG_FILE_CAPS;
	if (c->pc_setid == PARENT_SETID_STRIP)
		cfg.ic_flags |= IPC_CFG_SETID_STRIP;
	else if (c->pc_setid == PARENT_SETID_ALLOW)
		cfg.ic_flags |= IPC_CFG_SETID_ALLOW;
	cfg.ic_drain_timeout_ms = PARENT_DRAIN_TIMEOUT_MS;
	if (c->pc_test_forbidden && !wk_test_hook_used) {
		cfg.ic_flags |= IPC_CFG_TEST_FORBIDDEN;
		wk_test_hook_used = true;
	}
	if (c->pc_test_die_nt_queue && c->pc_test_die_nt_queue == q)
		cfg.ic_flags |= IPC_CFG_TEST_DIE_NT_LOCK;
	if (c->pc_test_hold_nt_queue && c->pc_test_hold_nt_queue == q)
		cfg.ic_flags |= IPC_CFG_TEST_HOLD_NT_LOCK;
	if (c->pc_test_scribble_queue && c->pc_test_scribble_queue == q)
		cfg.ic_flags |= IPC_CFG_TEST_SCRIBBLE_NT;
	if (c->pc_test_flood_queue && c->pc_test_flood_queue == q)
		cfg.ic_flags |= IPC_CFG_TEST_FLOOD_NOTICES;
	if (c->pc_test_slow_borrow)
		cfg.ic_flags |= IPC_CFG_TEST_SLOW_BORROW;
	if (c->pc_test_escape_probe)
		cfg.ic_flags |= IPC_CFG_TEST_ESCAPE_PROBE;
	if (c->pc_test_sigbus_queue && c->pc_test_sigbus_queue == q)
		cfg.ic_flags |= IPC_CFG_TEST_SIGBUS;
	return wk_request(q, IPC_CONFIG, &cfg, sizeof(cfg), fds, 2);
}

/* An S3 worker's credentials: at its start, and when SIGHUP read them again. */
static int wk_s3_creds(uint32_t q)
{
	struct ipc_s3_creds cr;
	int r;

	s3_parent_creds(wk_env, &cr);
	r = wk_request(q, IPC_S3_CREDS, &cr, sizeof(cr), NULL, 0);
	explicit_bzero(&cr, sizeof(cr));
	return r;
}

/* S3 workers, right after CONFIG: the [s3] settings with the CA bundle (if
 * any), then the credentials, each ACKed, all before SANDBOX. */
static int wk_s3(uint32_t q)
{
	int ca = wk_env->pe_ca_fd;
	struct ipc_s3_config sc;
	int r;

	if (wk_env->pe_conf->pc_backend != IPC_BE_S3)
		return 0;
	s3_parent_config(wk_env, &sc);
	if ((r = wk_request(q, IPC_S3_CONFIG, &sc, sizeof(sc), &ca, ca >= 0 ? 1 : 0)) < 0)
		return r;
	return wk_s3_creds(q);
}

void workers_s3_creds(void)
{
	unsigned n = 0, ok = 0;

	for (uint32_t q = 0; q < BH_MAX_QUEUES; q++) {
		if (!workers_live(q))
			continue;
		n++;
		ok += wk_s3_creds(q) == 0;
	}
	if (n)
		log_info("%u of %u live workers took the new S3 credentials", ok, n);
}

/*
 * The device's mount of the share, from the first worker that sandboxed
 * itself (IPC_SHARE_MOUNT): kept for the later ones, so that all serve one
 * mount. The worker may lie; what it hands us must be the share, with the
 * flags we asked for, or it is killed.
 */
static int wk_take_share_mount(uint32_t q)
{
	unsigned long want = ST_NODEV | ST_NOSUID | ST_NOEXEC |
			     (wk_env->pe_conf->pc_readonly ? ST_RDONLY : 0);
	struct stat a, b;
	struct statvfs sv;
	struct ipc_msg m;
	int r;

	if ((r = wk_recv(q, &m, PARENT_ACK_TIMEOUT_MS, "its mount of the share")) < 0)
		return r;
	if (m.im_hdr.ih_type != IPC_SHARE_MOUNT || ipc_check(&m, 0, 1) < 0) {
		ipc_close_fds(&m);
		wk_malformed(q, "expected SHARE_MOUNT");
		return -EBADMSG;
	}
	if (fstat(m.im_fds[0], &a) < 0 || fstat(wk_env->pe_root_fd, &b) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino || !S_ISDIR(a.st_mode) ||
	    fstatvfs(m.im_fds[0], &sv) < 0 || (sv.f_flag & want) != want) {
		ipc_close_fds(&m);
		wk_malformed(q, "SHARE_MOUNT that is not the share, nodev, nosuid, noexec");
		return -EBADMSG;
	}
	wk_share_fd = m.im_fds[0];
	return 0;
}

/* SANDBOX: the worker confines itself; it hands us the device's mount of the
 * share if it made it, and with --seccomp=log its filter's listener, before
 * the ACK. */
static int wk_sandbox(uint32_t q)
{
	const struct parent_conf *c = wk_env->pe_conf;
	const struct be_desc *be = be_desc_find(c->pc_backend);
	struct ipc_sandbox_cfg sb = {.sb_seccomp = c->pc_seccomp};
	struct ipc_msg m;
	int fds[2];
	size_t nfds = 0;
	uint32_t seq;
	int r;

	if (c->pc_seccomp != IPC_SECCOMP_NONE) {
		sb.sb_ninsns = wk_env->pe_prog_ninsns;
		fds[nfds++] = wk_env->pe_prog_fd;
	}
	/* A mount the parent made (the memory back end's file system, the S3
	 * back end's staging directory) is the device's mount already. */
	if (c->pc_sandbox == IPC_SBX_NAMESPACE && !(be->bd_sandbox & BE_SBX_HOST_DIR) &&
	    wk_share_fd < 0 && (wk_share_fd = fcntl(wk_env->pe_root_fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		log_warn("worker q%u: duplicate the %s back end's mount", q, be->bd_name);
		return -errno;
	}
	if (c->pc_sandbox == IPC_SBX_NAMESPACE && wk_share_fd >= 0) {
		sb.sb_share = IPC_SBX_SHARE_GIVEN;
		fds[nfds++] = wk_share_fd;
	} else if (c->pc_sandbox == IPC_SBX_NAMESPACE) {
		sb.sb_share = IPC_SBX_SHARE_MAKE;
	}
	if ((r = wk_send(q, IPC_SANDBOX, &sb, sizeof(sb), fds, nfds, &seq)) < 0)
		return r;
	if (sb.sb_share == IPC_SBX_SHARE_MAKE && (r = wk_take_share_mount(q)) < 0)
		return r;
	if (c->pc_seccomp == IPC_SECCOMP_LOG) {
		if ((r = wk_recv(q, &m, PARENT_ACK_TIMEOUT_MS, "its seccomp listener")) < 0)
			return r;
		if (m.im_hdr.ih_type != IPC_SECCOMP_LISTENER || ipc_check(&m, 0, 1) < 0) {
			ipc_close_fds(&m);
			wk_malformed(q, "expected SECCOMP_LISTENER");
			return -EBADMSG;
		}
		if ((r = seclog_watch(q, m.im_fds[0])) < 0) {
			wk_kill(q);
			return r;
		}
	}
	return wk_wait_ack(q, IPC_SANDBOX, seq);
}

/* Give q and o one channel in each direction (worker/peer.h). */
static int wk_peer_pair(uint32_t q, uint32_t o)
{
	for (int dir = 0; dir < 2; dir++) {
		struct ipc_peer to_q = {.pe_id = o,
					.pe_role = dir ? IPC_PEER_SERVER : IPC_PEER_CLIENT};
		struct ipc_peer to_o = {.pe_id = q,
					.pe_role = dir ? IPC_PEER_CLIENT : IPC_PEER_SERVER};
		int sv[2], r;

		r = ipc_socketpair(sv);
		if (r < 0)
			return r;
		r = wk_request(q, IPC_PEER, &to_q, sizeof(to_q), &sv[0], 1);
		if (r == 0) {
			r = wk_request(o, IPC_PEER, &to_o, sizeof(to_o), &sv[1], 1);
			/* The new worker's side matters; an old one failing is its own loss. */
			if (r < 0)
				log_warnx("worker q%u did not take its channel to q%u", o, q);
			r = workers_live(q) ? 0 : -EHOSTDOWN;
		}
		close(sv[0]);
		close(sv[1]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int wk_send_mem_table(uint32_t q, const struct ipc_region *regions, const int *fds,
			     uint32_t n)
{
	union {
		struct ipc_mem_table t;
		uint8_t raw[sizeof(struct ipc_mem_table) +
			    BH_MAX_MEM_REGIONS * sizeof(struct ipc_region)];
	} u;

	if (n > BH_MAX_MEM_REGIONS)
		return -EINVAL;
	memset(&u, 0, sizeof(u));
	u.t.mt_nregions = n;
	memcpy(u.t.mt_regions, regions, n * sizeof(*regions));
	return wk_request(q, IPC_MEM_TABLE, &u,
			  sizeof(struct ipc_mem_table) + n * sizeof(struct ipc_region), fds, n);
}

/*
 * Start the worker of queue q and bring it to the point where it can take a
 * ring: HELLO, CONFIG, S3_CONFIG and S3_CREDS (S3 workers), SANDBOX, peer
 * channels, memory table. 0 or -errno (the worker is then killed and the
 * queue dead).
 */
int workers_spawn(uint32_t q, const struct ipc_region *regions, const int *fds, uint32_t n)
{
	struct wk *w = &wk_table[q];
	int r;

	if (w->w_state != WK_NONE)
		return w->w_state == WK_LIVE ? 0 : -EHOSTDOWN;
	if (wk_nt_fd < 0 && (r = wk_nt_start()) < 0) {
		log_warnx("cannot create the node table: %s", strerror(-r));
		return r;
	}
	r = wk_fork(q);
	if (r < 0)
		return r;
	if ((r = wk_hello(q)) < 0 || (r = wk_config(q)) < 0 || (r = wk_s3(q)) < 0 ||
	    (r = wk_sandbox(q)) < 0)
		goto fail;
	for (uint32_t o = 0; o < BH_MAX_QUEUES; o++) {
		if (o == q || !workers_live(o))
			continue;
		if ((r = wk_peer_pair(q, o)) < 0)
			goto fail;
	}
	if ((r = wk_send_mem_table(q, regions, fds, n)) < 0)
		goto fail;
	w->w_ev = event_new(wk_env->pe_base, w->w_fd, EV_READ | EV_PERSIST, wk_dispatch_worker,
			    (void *)(uintptr_t)q);
	if (!w->w_ev || event_add(w->w_ev, NULL) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	return 0;
fail:
	log_warnx("worker q%u failed to start: %s", q, strerror(-r));
	if (w->w_state == WK_LIVE)
		wk_kill(q);
	return r;
}

int workers_mem_table(const struct ipc_region *regions, const int *fds, uint32_t n)
{
	int err = 0;

	for (uint32_t q = 0; q < BH_MAX_QUEUES; q++)
		if (workers_live(q) && wk_send_mem_table(q, regions, fds, n) < 0)
			err = -EIO;
	return err;
}

int workers_ring_start(uint32_t q, const struct ipc_ring_start *rs, const int *fds, size_t nfds)
{
	return wk_request(q, IPC_RING_START, rs, sizeof(*rs), fds, nfds);
}

int workers_ring_enable(uint32_t q, bool enabled)
{
	struct ipc_ring_enable re = {.re_enabled = enabled};

	return wk_request(q, IPC_RING_ENABLE, &re, sizeof(re), NULL, 0);
}

int workers_ring_fd(uint32_t q, uint32_t which, int fd)
{
	struct ipc_ring_fd rf = {.rf_which = which, .rf_has_fd = fd >= 0};

	return wk_request(q, IPC_RING_FD, &rf, sizeof(rf), &fd, fd >= 0 ? 1 : 0);
}

/* RING_STOP: the worker drains and answers with the next avail index. */
int workers_ring_stop(uint32_t q, uint32_t *last_avail)
{
	struct wk *w = &wk_table[q];
	struct ipc_ring_stopped st;
	struct ipc_msg m;
	uint32_t seq;
	int r;

	if (w->w_state != WK_LIVE)
		return -EHOSTDOWN;
	seq = ++w->w_seq;
	r = ipc_send(w->w_fd, IPC_RING_STOP, seq, NULL, 0, NULL, 0);
	if (r < 0) {
		log_warnx("cannot send RING_STOP to worker q%u: %s, killing it", q, strerror(-r));
		wk_kill(q);
		return r;
	}
	r = wk_recv(q, &m, PARENT_STOP_TIMEOUT_MS, "RING_STOPPED");
	if (r < 0)
		return r;
	if (m.im_hdr.ih_type != IPC_RING_STOPPED || ipc_check(&m, sizeof(st), 0) < 0) {
		ipc_close_fds(&m);
		wk_malformed(q, "expected RING_STOPPED");
		return -EBADMSG;
	}
	memcpy(&st, m.im_data, sizeof(st));
	if (m.im_hdr.ih_seq != seq || st.st_seq != seq) {
		wk_malformed(q, "RING_STOPPED with the wrong sequence number");
		return -EBADMSG;
	}
	if (st.st_last_avail > 0xffff) {
		wk_malformed(q, "RING_STOPPED with an avail index beyond 16 bits");
		return -EBADMSG;
	}
	if (st.st_inflight_failed)
		log_warnx("worker q%u: %u requests failed with EIO after the drain timeout", q,
			  st.st_inflight_failed);
	*last_avail = st.st_last_avail;
	return 0;
}

/* Between front-end messages: anything but a NOTICE is a protocol violation. */
static void wk_dispatch_worker(evutil_socket_t fd, short ev, void *arg)
{
	uint32_t q = (uint32_t)(uintptr_t)arg;
	struct ipc_msg m;
	int r;

	r = ipc_try_recv(fd, &m); /* wk_request may have read it meanwhile */
	if (r == -EAGAIN)
		return;
	if (r == -EPIPE) {
		log_warnx("worker q%u closed its channel", q);
		wk_kill(q);
		return;
	}
	if (r < 0) {
		wk_malformed(q, r == -EBADMSG ? "bad framing" : strerror(-r));
		return;
	}
	if (m.im_hdr.ih_type == IPC_NOTICE && ipc_check(&m, sizeof(struct ipc_notice), 0) == 0) {
		if (!bh_bucket_take(&wk_table[q].w_notices, PARENT_NOTICE_BURST,
				    PARENT_NOTICE_RATE)) {
			log_warnx("worker q%u sent more than %d notices at once, or more than %d a "
				  "second, killing it",
				  q, PARENT_NOTICE_BURST, PARENT_NOTICE_RATE);
			wk_kill(q);
			return;
		}
		(void)wk_log_notice(q, &m);
		return;
	}
	ipc_close_fds(&m);
	wk_malformed(q, ipc_type_name(m.im_hdr.ih_type));
}

static void wk_log_exit(const char *who, pid_t pid, int status)
{
	if (WIFEXITED(status))
		log_info("%s (pid %d) exited with status %d", who, (int)pid, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		log_warnx("%s (pid %d) was killed by signal %d (%s)", who, (int)pid,
			  WTERMSIG(status), strsignal(WTERMSIG(status)));
}

/* Reap every exited child (SIGCHLD) and say which queue it served. */
void workers_reap(void)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		char who[32] = "unknown child";
		int found = -1;

		if (mapper_reaped(pid))
			snprintf(who, sizeof(who), "the id-map helper");

		for (uint32_t q = 0; q < BH_MAX_QUEUES; q++) {
			struct wk *w = &wk_table[q];
			if (w->w_pid != pid)
				continue;
			snprintf(who, sizeof(who), "worker q%u", q);
			w->w_pid = 0;
			seclog_forget(q);
			wl_forget(q); /* its last words before its exit status */
			if (w->w_state == WK_LIVE) {
				wk_close_channel(w);
				w->w_state = WK_DEAD;
			}
			found = (int)q;
		}
		wk_log_exit(who, pid, status);
		/* Gone with every thread: nothing of it can be inside the lock. */
		if (found >= 0)
			wk_nt_reaped((uint32_t)found);
	}
}

/*
 * End of a front-end connection: close every channel (workers exit on EOF),
 * give them a short grace period, then SIGKILL and reap the rest. The node
 * table goes with them.
 */
void workers_stop_all(void)
{
	uint64_t deadline = bh_now_ns() + PARENT_KILL_GRACE_MS * 1000000ull;
	bool waiting;

	for (uint32_t q = 0; q < BH_MAX_QUEUES; q++)
		wk_close_channel(&wk_table[q]);
	do {
		workers_reap();
		waiting = false;
		for (uint32_t q = 0; q < BH_MAX_QUEUES; q++)
			waiting |= wk_table[q].w_pid > 0;
		if (waiting)
			usleep(10000);
	} while (waiting && bh_now_ns() < deadline);
	for (uint32_t q = 0; q < BH_MAX_QUEUES; q++) {
		struct wk *w = &wk_table[q];
		int status;

		if (w->w_pid > 0) {
			char who[32];

			log_warnx("worker q%u (pid %d) did not exit; killing it", q, (int)w->w_pid);
			kill(w->w_pid, SIGKILL);
			snprintf(who, sizeof(who), "worker q%u", q);
			if (waitpid(w->w_pid, &status, 0) == w->w_pid)
				wk_log_exit(who, w->w_pid, status);
		}
		memset(w, 0, sizeof(*w));
		w->w_fd = -1;
		w->w_state = WK_NONE;
		seclog_forget(q);
		wl_forget(q);
	}
	wk_nt_stop();
	if (wk_share_fd >= 0) {
		close(wk_share_fd);
		wk_share_fd = -1;
	}
}
