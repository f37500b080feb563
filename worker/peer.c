/*
 * peer.c - worker-to-worker descriptor sharing over SOCK_SEQPACKET channels
 * set up by the parent (one CLIENT and one SERVER channel per other worker).
 * Runs in: the worker. Trust: another worker is a separate sandbox and may
 * be compromised; everything it sends is checked (exact size, descriptor
 * count, type, cookie). A peer that misbehaves loses its channel, never the
 * worker. Requests are answered by a dedicated thread, so a worker that is
 * busy or itself waiting on a peer still answers (no request cycle can
 * deadlock); our own requests are bounded by a timeout.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bulkhead.h"
#include "ipc.h"
#include "log.h"
#include "peer.h"
#include "util.h"

#define PEER_TIMEOUT_MS 5000
/* A requester always reads its replies; one that lets them pile up is
 * stuck or hostile and must not hold up the answers to everyone else. */
#define PEER_REPLY_TIMEOUT_MS 1000

struct peer_client {
	pthread_mutex_t pc_lock; /* one request at a time; guards pc_fd */
	int pc_fd;
	uint64_t pc_cookie;
};

struct peer {
	uint32_t p_self;
	struct peer_provider p_prov;
	struct peer_client p_client[BH_MAX_QUEUES];
	/* Server channels belong to the server thread; peer_add hands new
	 * ones over through p_pending under p_lock and wakes it (p_efd). */
	pthread_mutex_t p_lock;
	int p_pending[BH_MAX_QUEUES];
	int p_stop;
	int p_efd;
	int p_server[BH_MAX_QUEUES]; /* server thread only */
	pthread_t p_thread;
	bool p_started;
};

static int peer_poll_ms(uint64_t deadline_ns)
{
	uint64_t now = bh_now_ns();

	if (now >= deadline_ns)
		return 0;
	return (int)((deadline_ns - now + 999999) / 1000000);
}

/* Send on a non-blocking channel, waiting (bounded) for room. */
static int peer_send(int fd, uint32_t type, uint32_t seq, const void *data, size_t len,
		     const int *fds, size_t nfds, uint64_t deadline_ns)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	int r;

	for (;;) {
		r = ipc_send(fd, type, seq, data, len, fds, nfds);
		if (r != -EAGAIN)
			return r;
		r = poll(&pfd, 1, peer_poll_ms(deadline_ns));
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static void peer_server_close(struct peer *p, uint32_t other, const char *why)
{
	if (why)
		log_warnx("peer q%u: %s, channel closed", other, why);
	else
		log_debug("peer q%u: server channel closed", other);
	close(p->p_server[other]);
	p->p_server[other] = -1;
}

/* A release carries 1..IPC_PEER_RELEASE_MAX ids and gets no reply. */
static void peer_serve_release(struct peer *p, uint32_t other, struct ipc_msg *m)
{
	uint32_t len = m->im_hdr.ih_len;
	uint64_t id;

	if (m->im_hdr.ih_nfds != 0 || len == 0 || len % sizeof(id) != 0 ||
	    len / sizeof(id) > IPC_PEER_RELEASE_MAX) {
		ipc_close_fds(m);
		peer_server_close(p, other, "bad release size or descriptors");
		return;
	}
	for (uint32_t off = 0; off < len; off += sizeof(id)) {
		memcpy(&id, m->im_data + off, sizeof(id));
		if (m->im_hdr.ih_type == IPC_PEER_RELEASE_NODE)
			p->p_prov.release_node(p->p_prov.ctx, id);
		else
			p->p_prov.release_fh(p->p_prov.ctx, id);
	}
}

/* Serve one message from worker 'other'. */
static void peer_serve(struct peer *p, uint32_t other)
{
	struct ipc_peer_reply rep;
	struct ipc_peer_req req;
	struct ipc_msg *m;
	uint32_t type;
	int r, fd;

	if (!(m = malloc(sizeof(*m)))) {
		log_warnx("peer q%u: out of memory", other);
		return;
	}
	r = ipc_try_recv(p->p_server[other], m);
	if (r == -EAGAIN || r == -EINTR)
		goto out;
	if (r == -EPIPE || r == -ECONNRESET) {
		peer_server_close(p, other, NULL);
		goto out;
	}
	if (r < 0) {
		peer_server_close(p, other, "malformed message");
		goto out;
	}
	type = m->im_hdr.ih_type;
	if (type != IPC_PEER_GET_NODE_FD && type != IPC_PEER_GET_FH_FD &&
	    type != IPC_PEER_RELEASE_NODE && type != IPC_PEER_RELEASE_FH) {
		ipc_close_fds(m);
		peer_server_close(p, other, "unexpected message type");
		goto out;
	}
	if (type == IPC_PEER_RELEASE_NODE || type == IPC_PEER_RELEASE_FH) {
		peer_serve_release(p, other, m);
		goto out;
	}
	if (ipc_check(m, sizeof(req), 0) < 0) {
		ipc_close_fds(m);
		peer_server_close(p, other, "bad message size or descriptors");
		goto out;
	}
	memcpy(&req, m->im_data, sizeof(req));

	switch (type) {
	case IPC_PEER_GET_NODE_FD:
		fd = p->p_prov.node_fd(p->p_prov.ctx, req.pq_id);
		break;
	default:
		fd = p->p_prov.fh_fd(p->p_prov.ctx, req.pq_id);
		break;
	}
	memset(&rep, 0, sizeof(rep));
	rep.pr_cookie = req.pq_cookie;
	rep.pr_error = fd < 0 ? fd : 0;
	r = peer_send(p->p_server[other], IPC_PEER_FD, m->im_hdr.ih_seq, &rep, sizeof(rep),
		      fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0,
		      bh_now_ns() + PEER_REPLY_TIMEOUT_MS * 1000000ull);
	if (fd >= 0)
		close(fd);
	if (r < 0)
		peer_server_close(p, other, "cannot send the reply");
out:
	free(m);
}

/* Locked. Take over the channels peer_add queued for us. */
static void peer_adopt(struct peer *p)
{
	for (uint32_t i = 0; i < BH_MAX_QUEUES; i++) {
		if (p->p_pending[i] < 0)
			continue;
		if (p->p_server[i] >= 0)
			close(p->p_server[i]);
		p->p_server[i] = p->p_pending[i];
		p->p_pending[i] = -1;
	}
}

static void *peer_thread_main(void *arg)
{
	struct pollfd pfd[1 + BH_MAX_QUEUES];
	uint32_t who[1 + BH_MAX_QUEUES];
	struct peer *p = arg;
	nfds_t n, i;
	int stop;

	for (;;) {
		pthread_mutex_lock(&p->p_lock);
		stop = p->p_stop;
		peer_adopt(p);
		pthread_mutex_unlock(&p->p_lock);
		if (stop)
			break;

		pfd[0] = (struct pollfd){.fd = p->p_efd, .events = POLLIN};
		n = 1;
		for (uint32_t q = 0; q < BH_MAX_QUEUES; q++) {
			if (p->p_server[q] < 0)
				continue;
			pfd[n] = (struct pollfd){.fd = p->p_server[q], .events = POLLIN};
			who[n++] = q;
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			fatal("%s: poll", __func__);
		}
		if (pfd[0].revents & POLLIN)
			bh_eventfd_drain(p->p_efd);
		for (i = 1; i < n; i++) {
			if (pfd[i].revents & POLLIN)
				peer_serve(p, who[i]);
			else if (pfd[i].revents & (POLLHUP | POLLERR | POLLNVAL))
				peer_server_close(p, who[i], NULL);
		}
	}
	return NULL;
}

/* Until a back end says otherwise: nothing to lend, nothing to release. */
static int peer_no_fd(void *ctx, uint64_t id)
{
	return -EBADF;
}

static void peer_no_release(void *ctx, uint64_t id)
{
}

static const struct peer_provider peer_no_provider = {
    .node_fd = peer_no_fd,
    .fh_fd = peer_no_fd,
    .release_node = peer_no_release,
    .release_fh = peer_no_release,
};

static bool peer_provider_ok(const struct peer_provider *prov)
{
	return prov->node_fd && prov->fh_fd && prov->release_node && prov->release_fh;
}

void peer_set_provider(struct peer *p, const struct peer_provider *prov)
{
	if (peer_provider_ok(prov))
		p->p_prov = *prov;
}

struct peer *peer_create(uint32_t self, const struct peer_provider *prov)
{
	sigset_t all, old;
	struct peer *p;
	int r;

	if (prov && !peer_provider_ok(prov)) {
		errno = EINVAL;
		return NULL;
	}
	if (!(p = calloc(1, sizeof(*p))))
		return NULL;
	p->p_self = self;
	p->p_prov = prov ? *prov : peer_no_provider;
	pthread_mutex_init(&p->p_lock, NULL);
	for (uint32_t i = 0; i < BH_MAX_QUEUES; i++) {
		pthread_mutex_init(&p->p_client[i].pc_lock, NULL);
		p->p_client[i].pc_fd = -1;
		p->p_pending[i] = -1;
		p->p_server[i] = -1;
	}
	p->p_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->p_efd < 0) {
		r = errno;
		goto fail;
	}
	/* Signals belong to the worker's loop thread. */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&p->p_thread, NULL, peer_thread_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		goto fail;
	p->p_started = true;
	return p;

fail:
	peer_destroy(p);
	errno = r;
	return NULL;
}

void peer_destroy(struct peer *p)
{
	if (!p)
		return;
	if (p->p_started) {
		pthread_mutex_lock(&p->p_lock);
		p->p_stop = 1;
		pthread_mutex_unlock(&p->p_lock);
		bh_eventfd_signal(p->p_efd);
		pthread_join(p->p_thread, NULL);
	}
	for (uint32_t i = 0; i < BH_MAX_QUEUES; i++) {
		if (p->p_client[i].pc_fd >= 0)
			close(p->p_client[i].pc_fd);
		if (p->p_pending[i] >= 0)
			close(p->p_pending[i]);
		if (p->p_server[i] >= 0)
			close(p->p_server[i]);
		pthread_mutex_destroy(&p->p_client[i].pc_lock);
	}
	if (p->p_efd >= 0)
		close(p->p_efd);
	pthread_mutex_destroy(&p->p_lock);
	free(p);
}

int peer_add(struct peer *p, uint32_t other, uint32_t role, int fd)
{
	struct peer_client *c;
	int r;

	if (other >= BH_MAX_QUEUES || other == p->p_self ||
	    (role != IPC_PEER_CLIENT && role != IPC_PEER_SERVER)) {
		close(fd);
		return -EINVAL;
	}
	/* Both directions are non-blocking: waits are done with poll and a
	 * deadline, so a stuck peer cannot hold a thread forever. */
	if ((r = bh_set_nonblock(fd, 1)) < 0) {
		close(fd);
		return r;
	}
	if (role == IPC_PEER_CLIENT) {
		c = &p->p_client[other];
		pthread_mutex_lock(&c->pc_lock);
		if (c->pc_fd >= 0)
			close(c->pc_fd);
		c->pc_fd = fd;
		pthread_mutex_unlock(&c->pc_lock);
		return 0;
	}
	pthread_mutex_lock(&p->p_lock);
	if (p->p_pending[other] >= 0)
		close(p->p_pending[other]);
	p->p_pending[other] = fd;
	pthread_mutex_unlock(&p->p_lock);
	bh_eventfd_signal(p->p_efd);
	return 0;
}

/* Locked (pc_lock). A broken client channel is dropped for good: the
 * parent installs a new one if the worker comes back. */
static void peer_client_close(struct peer_client *c, uint32_t owner, const char *why)
{
	log_warnx("peer q%u: %s, channel closed", owner, why);
	close(c->pc_fd);
	c->pc_fd = -1;
}

/* Locked (pc_lock). Wait for the reply carrying 'cookie'. */
static int peer_wait_reply(struct peer_client *c, uint32_t owner, uint64_t cookie,
			   uint64_t deadline_ns, struct ipc_msg *m)
{
	struct pollfd pfd = {.fd = c->pc_fd, .events = POLLIN};
	struct ipc_peer_reply rep;
	uint32_t nfds;
	int r;

	for (;;) {
		r = poll(&pfd, 1, peer_poll_ms(deadline_ns));
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		r = ipc_recv(c->pc_fd, m);
		if (r == -EAGAIN || r == -EINTR)
			continue;
		if (r == -EPIPE || r == -ECONNRESET) {
			peer_client_close(c, owner, "peer gone");
			return -EHOSTUNREACH;
		}
		if (r < 0) {
			peer_client_close(c, owner, "malformed reply");
			return -EHOSTUNREACH;
		}
		if (m->im_hdr.ih_type != IPC_PEER_FD || m->im_hdr.ih_len != sizeof(rep) ||
		    m->im_hdr.ih_nfds > 1) {
			ipc_close_fds(m);
			peer_client_close(c, owner, "unexpected reply");
			return -EHOSTUNREACH;
		}
		memcpy(&rep, m->im_data, sizeof(rep));
		if (rep.pr_cookie != cookie) {
			/* The late answer to a request that timed out. */
			ipc_close_fds(m);
			continue;
		}
		if (rep.pr_error == 0 && m->im_hdr.ih_nfds == 1) {
			r = m->im_fds[0];
			m->im_fds[0] = -1;
			return r;
		}
		nfds = m->im_hdr.ih_nfds;
		ipc_close_fds(m);
		if (rep.pr_error < 0 && rep.pr_error > -4096 && nfds == 0)
			return rep.pr_error;
		peer_client_close(c, owner, "inconsistent reply");
		return -EHOSTUNREACH;
	}
}

static int peer_request(struct peer *p, uint32_t owner, uint32_t type, uint64_t id)
{
	uint64_t deadline = bh_now_ns() + PEER_TIMEOUT_MS * 1000000ull;
	struct ipc_peer_req req;
	struct peer_client *c;
	struct ipc_msg *m;
	int r;

	if (owner >= BH_MAX_QUEUES || owner == p->p_self)
		return -EHOSTUNREACH;
	c = &p->p_client[owner];
	if (!(m = malloc(sizeof(*m))))
		return -ENOMEM;
	pthread_mutex_lock(&c->pc_lock);
	if (c->pc_fd < 0) {
		r = -EHOSTUNREACH;
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.pq_id = id;
	req.pq_cookie = ++c->pc_cookie;
	r = peer_send(c->pc_fd, type, (uint32_t)req.pq_cookie, &req, sizeof(req), NULL, 0,
		      deadline);
	if (r == -EPIPE || r == -ECONNRESET) {
		peer_client_close(c, owner, "peer gone");
		r = -EHOSTUNREACH;
	}
	if (r < 0)
		goto out;
	r = peer_wait_reply(c, owner, req.pq_cookie, deadline, m);
out:
	pthread_mutex_unlock(&c->pc_lock);
	free(m);
	return r;
}

int peer_get_node_fd(struct peer *p, uint32_t owner, uint64_t nodeid)
{
	return peer_request(p, owner, IPC_PEER_GET_NODE_FD, nodeid);
}

int peer_get_fh_fd(struct peer *p, uint32_t owner, uint64_t fh)
{
	return peer_request(p, owner, IPC_PEER_GET_FH_FD, fh);
}

/* Fire and forget, IPC_PEER_RELEASE_MAX ids per message. */
static int peer_release(struct peer *p, uint32_t owner, uint32_t type, const uint64_t *ids,
			size_t n)
{
	uint64_t deadline = bh_now_ns() + PEER_TIMEOUT_MS * 1000000ull;
	struct peer_client *c;
	size_t k;
	int r = 0;

	if (owner >= BH_MAX_QUEUES || owner == p->p_self)
		return -EHOSTUNREACH;
	c = &p->p_client[owner];
	pthread_mutex_lock(&c->pc_lock);
	for (size_t i = 0; i < n && r == 0; i += k) {
		k = n - i < IPC_PEER_RELEASE_MAX ? n - i : IPC_PEER_RELEASE_MAX;
		if (c->pc_fd < 0) {
			r = -EHOSTUNREACH;
			break;
		}
		r = peer_send(c->pc_fd, type, (uint32_t)++c->pc_cookie, ids + i, k * sizeof(*ids),
			      NULL, 0, deadline);
		if (r == -EPIPE || r == -ECONNRESET) {
			peer_client_close(c, owner, "peer gone");
			r = -EHOSTUNREACH;
		}
	}
	pthread_mutex_unlock(&c->pc_lock);
	return r;
}

int peer_release_nodes(struct peer *p, uint32_t owner, const uint64_t *ids, size_t n)
{
	return peer_release(p, owner, IPC_PEER_RELEASE_NODE, ids, n);
}

int peer_release_node(struct peer *p, uint32_t owner, uint64_t nodeid)
{
	return peer_release(p, owner, IPC_PEER_RELEASE_NODE, &nodeid, 1);
}

int peer_release_fh(struct peer *p, uint32_t owner, uint64_t fh)
{
	return peer_release(p, owner, IPC_PEER_RELEASE_FH, &fh, 1);
}
