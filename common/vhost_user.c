/*
 * vhost_user.c - vhost-user message codec (docs/protocol.md §A).
 * Runs in: the parent, and the test front end. Reads one message at a time
 * from a stream socket: the header with its descriptors, then exactly the
 * payload. Every framing error is final for the connection: a byte stream
 * cannot be resynchronised.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util.h"
#include "vhost_user.h"

void vu_msg_close_fds(struct vu_msg *m)
{
	for (size_t i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

int vu_msg_recv(int fd, struct vu_msg *m)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {&m->hdr, VU_HDR_SIZE};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	ssize_t n;
	int err = 0;

	m->nfds = 0;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	{
		bool bad = false;

		m->nfds = bh_cmsg_take_fds(&mh, m->fds, VU_MAX_FDS, &bad);
		if (bad)
			err = -EBADMSG;
	}
	if (n == 0 && m->nfds == 0)
		return -EPIPE;
	if (mh.msg_flags & MSG_CTRUNC)
		err = -EBADMSG; /* descriptors were lost */
	if (!err && (size_t)n != VU_HDR_SIZE) {
		/* MSG_WAITALL may still return short on a signal or EOF */
		int r = bh_read_full(fd, (char *)&m->hdr + n, VU_HDR_SIZE - (size_t)n);
		err = r == -EPIPE ? -EBADMSG : r;
	}
	if (!err && (m->hdr.flags & VU_VERSION_MASK) != VU_VERSION)
		err = -EBADMSG;
	/* Requests only: a REPLY here means the peer has lost track of the stream. */
	if (!err && (m->hdr.flags & ~(VU_VERSION_MASK | VU_FLAG_NEED_REPLY)))
		err = -EBADMSG;
	if (!err && m->hdr.size > VU_MAX_PAYLOAD)
		err = -EBADMSG;
	if (!err && m->hdr.size) {
		int r = bh_read_full(fd, m->p.raw, m->hdr.size);
		err = r == -EPIPE ? -EBADMSG : r;
	}
	if (err) {
		vu_msg_close_fds(m);
		return err;
	}
	return 0;
}

/* Expected payload and descriptors per request (docs/protocol.md §A.4, §B.4). */
struct vu_layout {
	int known;
	uint32_t min, max;   /* payload size range */
	uint8_t fds_min, fds_max;
};

#define L(min_, max_, fmin, fmax) {1, min_, max_, fmin, fmax}
static const struct vu_layout vu_layouts[VU_REQUEST_MAX] = {
	[VU_GET_FEATURES] = L(0, 0, 0, 0),
	[VU_SET_FEATURES] = L(8, 8, 0, 0),
	[VU_SET_OWNER] = L(0, 0, 0, 0),
	[VU_RESET_OWNER] = L(0, 0, 0, 0),
	[VU_SET_MEM_TABLE] = L(8 + 32, 8 + 32 * VU_MEM_TABLE_MAX_REGIONS, 1, VU_MAX_FDS),
	[VU_SET_LOG_BASE] = L(16, 16, 1, 1),
	[VU_SET_LOG_FD] = L(0, 0, 1, 1),
	[VU_SET_VRING_NUM] = L(8, 8, 0, 0),
	[VU_SET_VRING_ADDR] = L(40, 40, 0, 0),
	[VU_SET_VRING_BASE] = L(8, 8, 0, 0),
	[VU_GET_VRING_BASE] = L(8, 8, 0, 0),
	[VU_SET_VRING_KICK] = L(8, 8, 0, 1),
	[VU_SET_VRING_CALL] = L(8, 8, 0, 1),
	[VU_SET_VRING_ERR] = L(8, 8, 0, 1),
	[VU_GET_PROTOCOL_FEATURES] = L(0, 0, 0, 0),
	[VU_SET_PROTOCOL_FEATURES] = L(8, 8, 0, 0),
	[VU_GET_QUEUE_NUM] = L(0, 0, 0, 0),
	[VU_SET_VRING_ENABLE] = L(8, 8, 0, 0),
	[VU_SET_BACKEND_REQ_FD] = L(0, 0, 1, 1),
	[VU_SET_VRING_ENDIAN] = L(8, 8, 0, 0),
	[VU_GET_CONFIG] = L(12, 12 + 256, 0, 0),
	[VU_SET_CONFIG] = L(12, 12 + 256, 0, 0),
	[VU_RESET_DEVICE] = L(0, 0, 0, 0),
	[VU_GET_MAX_MEM_SLOTS] = L(0, 0, 0, 0),
	[VU_ADD_MEM_REG] = L(40, 40, 1, 1),
	[VU_REM_MEM_REG] = L(40, 40, 0, 1), /* some front ends attach an fd: closed */
	[VU_SET_STATUS] = L(8, 8, 0, 0),
	[VU_GET_STATUS] = L(0, 0, 0, 0),
};
#undef L

int vu_msg_validate(const struct vu_msg *m, const char **why)
{
	const struct vu_layout *l;
	uint32_t req = m->hdr.request;

	if (m->hdr.flags & VU_FLAG_REPLY) {
		*why = "REPLY flag set on a request";
		return -EBADMSG;
	}
	if (req == 0 || req >= VU_REQUEST_MAX || !vu_layouts[req].known) {
		*why = "unsupported request";
		return -EBADMSG;
	}
	l = &vu_layouts[req];
	if (m->hdr.size < l->min || m->hdr.size > l->max) {
		*why = "payload size does not match the request";
		return -EBADMSG;
	}
	if (m->nfds < l->fds_min || m->nfds > l->fds_max) {
		*why = "wrong number of file descriptors";
		return -EBADMSG;
	}
	if (req == VU_SET_MEM_TABLE) {
		uint32_t n = m->p.mem.nregions;
		if (n == 0 || n > VU_MEM_TABLE_MAX_REGIONS || m->hdr.size != 8 + 32 * n ||
		    m->nfds != n) {
			*why = "memory table region count does not match size or fds";
			return -EBADMSG;
		}
	}
	if (req == VU_GET_CONFIG || req == VU_SET_CONFIG) {
		uint32_t sz;
		memcpy(&sz, m->p.raw + 4, sizeof(sz));
		if (sz > 256 || m->hdr.size != 12 + sz) {
			*why = "config size does not match payload";
			return -EBADMSG;
		}
	}
	if (req == VU_SET_VRING_KICK || req == VU_SET_VRING_CALL || req == VU_SET_VRING_ERR) {
		uint64_t v = m->p.u64;
		int nofd = (v & VU_VRING_NOFD_MASK) != 0;
		if (v & ~(uint64_t)(VU_VRING_NOFD_MASK | VU_VRING_IDX_MASK)) {
			*why = "reserved bits set in vring file payload";
			return -EBADMSG;
		}
		if (nofd != (m->nfds == 0)) {
			*why = "NOFD flag does not match the descriptors sent";
			return -EBADMSG;
		}
	}
	return 0;
}

static int vu_send(int fd, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
		   const int *fds, size_t nfds)
{
	struct vu_hdr h = {request, flags, size};
	struct iovec iov[2] = {{&h, VU_HDR_SIZE}, {(void *)payload, size}};
	size_t total = VU_HDR_SIZE + size, done;
	ssize_t n;

	if (size > VU_MAX_PAYLOAD || nfds > VU_MAX_FDS)
		return -EMSGSIZE;
	n = bh_sendmsg_fds(fd, iov, size ? 2 : 1, fds, nfds);
	if (n < 0)
		return (int)n;
	done = (size_t)n;
	if (done < total) {
		/* finish a short write without the descriptors (already sent) */
		char tmp[VU_HDR_SIZE + VU_MAX_PAYLOAD];
		memcpy(tmp, &h, VU_HDR_SIZE);
		if (size)
			memcpy(tmp + VU_HDR_SIZE, payload, size);
		return bh_write_full(fd, tmp + done, total - done);
	}
	return 0;
}

int vu_send_reply(int fd, uint32_t request, const void *payload, uint32_t size)
{
	return vu_send(fd, request, VU_VERSION | VU_FLAG_REPLY, payload, size, NULL, 0);
}

int vu_send_reply_u64(int fd, uint32_t request, uint64_t value)
{
	return vu_send_reply(fd, request, &value, sizeof(value));
}

int vu_send_request(int fd, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
		    const int *fds, size_t nfds)
{
	return vu_send(fd, request, flags, payload, size, fds, nfds);
}

int vu_recv_reply(int fd, uint32_t request, void *payload, uint32_t size)
{
	struct vu_hdr h;
	int r = bh_read_full(fd, &h, VU_HDR_SIZE);
	if (r)
		return r;
	if (h.flags != (VU_VERSION | VU_FLAG_REPLY) || h.request != request || h.size != size)
		return -EBADMSG;
	return size ? bh_read_full(fd, payload, size) : 0;
}

const char *vu_request_name(uint32_t request)
{
	static const char *names[VU_REQUEST_MAX] = {
		[VU_GET_FEATURES] = "GET_FEATURES",
		[VU_SET_FEATURES] = "SET_FEATURES",
		[VU_SET_OWNER] = "SET_OWNER",
		[VU_RESET_OWNER] = "RESET_OWNER",
		[VU_SET_MEM_TABLE] = "SET_MEM_TABLE",
		[VU_SET_LOG_BASE] = "SET_LOG_BASE",
		[VU_SET_LOG_FD] = "SET_LOG_FD",
		[VU_SET_VRING_NUM] = "SET_VRING_NUM",
		[VU_SET_VRING_ADDR] = "SET_VRING_ADDR",
		[VU_SET_VRING_BASE] = "SET_VRING_BASE",
		[VU_GET_VRING_BASE] = "GET_VRING_BASE",
		[VU_SET_VRING_KICK] = "SET_VRING_KICK",
		[VU_SET_VRING_CALL] = "SET_VRING_CALL",
		[VU_SET_VRING_ERR] = "SET_VRING_ERR",
		[VU_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
		[VU_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
		[VU_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
		[VU_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
		[VU_SEND_RARP] = "SEND_RARP",
		[VU_NET_SET_MTU] = "NET_SET_MTU",
		[VU_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
		[VU_IOTLB_MSG] = "IOTLB_MSG",
		[VU_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
		[VU_GET_CONFIG] = "GET_CONFIG",
		[VU_SET_CONFIG] = "SET_CONFIG",
		[VU_CREATE_CRYPTO_SESSION] = "CREATE_CRYPTO_SESSION",
		[VU_CLOSE_CRYPTO_SESSION] = "CLOSE_CRYPTO_SESSION",
		[VU_POSTCOPY_ADVISE] = "POSTCOPY_ADVISE",
		[VU_POSTCOPY_LISTEN] = "POSTCOPY_LISTEN",
		[VU_POSTCOPY_END] = "POSTCOPY_END",
		[VU_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
		[VU_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
		[VU_GPU_SET_SOCKET] = "GPU_SET_SOCKET",
		[VU_RESET_DEVICE] = "RESET_DEVICE",
		[VU_VRING_KICK] = "VRING_KICK",
		[VU_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
		[VU_ADD_MEM_REG] = "ADD_MEM_REG",
		[VU_REM_MEM_REG] = "REM_MEM_REG",
		[VU_SET_STATUS] = "SET_STATUS",
		[VU_GET_STATUS] = "GET_STATUS",
		[VU_GET_SHARED_OBJECT] = "GET_SHARED_OBJECT",
		[VU_SET_DEVICE_STATE_FD] = "SET_DEVICE_STATE_FD",
		[VU_CHECK_DEVICE_STATE] = "CHECK_DEVICE_STATE",
	};
	if (request < VU_REQUEST_MAX && names[request])
		return names[request];
	return "UNKNOWN";
}
