/*
 * ipc.c - framed messages over SOCK_SEQPACKET channels with SCM_RIGHTS.
 * Runs in: both. Everything received is checked here once (size, header
 * length, fd count, type); callers then check the per-type layout with
 * ipc_check().
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ipc.h"
#include "util.h"

int ipc_socketpair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	return 0;
}

int ipc_send(int fd, uint32_t type, uint32_t seq, const void *data, size_t len,
	     const int *fds, size_t nfds)
{
	struct ipc_hdr h = {.ih_type = type, .ih_len = (uint32_t)len,
			    .ih_nfds = (uint32_t)nfds, .ih_seq = seq};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)data, len}};
	ssize_t n;

	if (len > IPC_MAX_PAYLOAD || nfds > IPC_MAX_FDS)
		return -EMSGSIZE;
	n = bh_sendmsg_fds(fd, iov, len ? 2 : 1, fds, nfds);
	if (n < 0)
		return (int)n;
	if ((size_t)n != sizeof(h) + len)
		return -EIO; /* cannot happen on SOCK_SEQPACKET */
	return 0;
}

void ipc_close_fds(struct ipc_msg *m)
{
	for (uint32_t i = 0; i < m->im_hdr.ih_nfds && i < IPC_MAX_FDS; i++) {
		if (m->im_fds[i] >= 0)
			close(m->im_fds[i]);
		m->im_fds[i] = -1;
	}
	m->im_hdr.ih_nfds = 0;
}

static int ipc_recv_flags(int fd, struct ipc_msg *m, int flags);

int ipc_recv(int fd, struct ipc_msg *m)
{
	return ipc_recv_flags(fd, m, 0);
}

int ipc_try_recv(int fd, struct ipc_msg *m)
{
	return ipc_recv_flags(fd, m, MSG_DONTWAIT);
}

static int ipc_recv_flags(int fd, struct ipc_msg *m, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * IPC_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov[2] = {{&m->im_hdr, sizeof(m->im_hdr)},
			       {m->im_data, sizeof(m->im_data)}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2,
			    .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	size_t nfds;
	ssize_t n;
	bool bad = false;

	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;

	/* Collect every descriptor that arrived, whatever else is wrong. */
	nfds = bh_cmsg_take_fds(&mh, m->im_fds, IPC_MAX_FDS, &bad);
	for (size_t i = nfds; i < IPC_MAX_FDS; i++)
		m->im_fds[i] = -1;

	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		bad = true;
	else if ((size_t)n < sizeof(m->im_hdr))
		bad = true;
	else if (m->im_hdr.ih_len != (size_t)n - sizeof(m->im_hdr))
		bad = true;
	else if (m->im_hdr.ih_nfds != nfds)
		bad = true;
	else if (m->im_hdr.ih_type == IPC_NONE || m->im_hdr.ih_type >= IPC_TYPE_MAX)
		bad = true;
	if (bad) {
		m->im_hdr.ih_nfds = (uint32_t)nfds;
		ipc_close_fds(m);
		return -EBADMSG;
	}
	return 0;
}

int ipc_check(const struct ipc_msg *m, size_t len, size_t nfds)
{
	if (m->im_hdr.ih_len != len || m->im_hdr.ih_nfds != nfds)
		return -EBADMSG;
	return 0;
}

const char *ipc_type_name(uint32_t type)
{
	static const char *names[IPC_TYPE_MAX] = {
		[IPC_NONE] = "NONE",
		[IPC_HELLO] = "HELLO",
		[IPC_CONFIG] = "CONFIG",
		[IPC_MEM_TABLE] = "MEM_TABLE",
		[IPC_RING_START] = "RING_START",
		[IPC_RING_FD] = "RING_FD",
		[IPC_RING_ENABLE] = "RING_ENABLE",
		[IPC_RING_STOP] = "RING_STOP",
		[IPC_PEER] = "PEER",
		[IPC_ACK] = "ACK",
		[IPC_RING_STOPPED] = "RING_STOPPED",
		[IPC_NOTICE] = "NOTICE",
		[IPC_PEER_GET_NODE_FD] = "PEER_GET_NODE_FD",
		[IPC_PEER_GET_FH_FD] = "PEER_GET_FH_FD",
		[IPC_PEER_FD] = "PEER_FD",
		[IPC_PEER_RELEASE_NODE] = "PEER_RELEASE_NODE",
		[IPC_PEER_RELEASE_FH] = "PEER_RELEASE_FH",
		[IPC_SANDBOX] = "SANDBOX",
		[IPC_SECCOMP_LISTENER] = "SECCOMP_LISTENER",
		[IPC_SHARE_MOUNT] = "SHARE_MOUNT",
		[IPC_S3_CONFIG] = "S3_CONFIG",
		[IPC_S3_CREDS] = "S3_CREDS",
	};
	if (type < IPC_TYPE_MAX && names[type])
		return names[type];
	return "UNKNOWN";
}
