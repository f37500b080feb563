/*
 * vhost_user.h - vhost-user wire format (docs/protocol.md §A, §C).
 * Runs in: the parent (daemon/) and the test front end (tests/frontend/).
 * Never in a worker: workers do not speak vhost-user.
 */
#ifndef BH_VHOST_USER_H
#define BH_VHOST_USER_H

#include <stddef.h>
#include <stdint.h>

enum vu_request {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_SEND_RARP = 19,
	VU_NET_SET_MTU = 20,
	VU_SET_BACKEND_REQ_FD = 21,
	VU_IOTLB_MSG = 22,
	VU_SET_VRING_ENDIAN = 23,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
	VU_CREATE_CRYPTO_SESSION = 26,
	VU_CLOSE_CRYPTO_SESSION = 27,
	VU_POSTCOPY_ADVISE = 28,
	VU_POSTCOPY_LISTEN = 29,
	VU_POSTCOPY_END = 30,
	VU_GET_INFLIGHT_FD = 31,
	VU_SET_INFLIGHT_FD = 32,
	VU_GPU_SET_SOCKET = 33,
	VU_RESET_DEVICE = 34,
	VU_VRING_KICK = 35,
	VU_GET_MAX_MEM_SLOTS = 36,
	VU_ADD_MEM_REG = 37,
	VU_REM_MEM_REG = 38,
	VU_SET_STATUS = 39,
	VU_GET_STATUS = 40,
	VU_GET_SHARED_OBJECT = 41,
	VU_SET_DEVICE_STATE_FD = 42,
	VU_CHECK_DEVICE_STATE = 43,
	VU_REQUEST_MAX
};

/* Header flags */
#define VU_VERSION        0x1u
#define VU_VERSION_MASK   0x3u
#define VU_FLAG_REPLY     0x4u
#define VU_FLAG_NEED_REPLY 0x8u

/* Virtio feature bits */
#define VU_F_NOTIFY_ON_EMPTY   24
#define VU_F_LOG_ALL           26
#define VU_F_RING_INDIRECT_DESC 28
#define VU_F_RING_EVENT_IDX    29
#define VU_F_PROTOCOL_FEATURES 30
#define VU_F_VERSION_1         32

/* Protocol feature bits */
#define VU_PF_MQ                  0
#define VU_PF_LOG_SHMFD           1
#define VU_PF_REPLY_ACK           3
#define VU_PF_BACKEND_REQ         5
#define VU_PF_CONFIG              9
#define VU_PF_RESET_DEVICE        13
#define VU_PF_INBAND_NOTIFICATIONS 14
#define VU_PF_CONFIGURE_MEM_SLOTS 15
#define VU_PF_STATUS              16

/* What bulkhead offers: exactly what it implements. */
#define VU_OFFERED_FEATURES                                                          \
	((1ull << VU_F_VERSION_1) | (1ull << VU_F_PROTOCOL_FEATURES) |               \
	 (1ull << VU_F_RING_EVENT_IDX) | (1ull << VU_F_RING_INDIRECT_DESC))
#define VU_OFFERED_PROTOCOL_FEATURES                                                 \
	((1ull << VU_PF_MQ) | (1ull << VU_PF_REPLY_ACK) | (1ull << VU_PF_CONFIGURE_MEM_SLOTS))

#define VU_VRING_NOFD_MASK 0x100u
#define VU_VRING_IDX_MASK  0xffu
#define VU_VRING_F_LOG     0x1u

#define VU_HDR_SIZE    12
#define VU_MAX_PAYLOAD 4096
#define VU_MAX_FDS     8 /* QEMU sends at most 8 per message (SET_MEM_TABLE) */
#define VU_MEM_TABLE_MAX_REGIONS 8

struct vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vu_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
	uint64_t mmap_offset;
};

struct vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vu_region regions[VU_MEM_TABLE_MAX_REGIONS];
};

struct vu_single_region {
	uint64_t padding;
	struct vu_region region;
};

/* One message as read from the wire, with its descriptors. */
struct vu_msg {
	struct vu_hdr hdr;
	union {
		uint64_t u64;
		struct vu_vring_state state;
		struct vu_vring_addr addr;
		struct vu_mem_table mem;
		struct vu_single_region reg;
		uint8_t raw[VU_MAX_PAYLOAD];
	} p;
	int fds[VU_MAX_FDS];
	size_t nfds;
};

/*
 * Read one message: the 12-byte header with recvmsg (fds arrive with its
 * first byte), then exactly hdr.size payload bytes. Returns 0, -EPIPE on a
 * clean end of file before a header, or -EBADMSG / -errno when the stream is
 * unusable (bad version or flags, REPLY set, size > VU_MAX_PAYLOAD, truncated
 * control data, short payload). On error every received fd is closed.
 */
int vu_msg_recv(int fd, struct vu_msg *m);

/* Check payload size and fd count of a request against the table of
 * docs/protocol.md §A.4/§B.4: 0 or -EBADMSG with *why set to a short reason. */
int vu_msg_validate(const struct vu_msg *m, const char **why);

/* Write a reply: header {request, 0x5, size} + payload. 0 or -errno. */
int vu_send_reply(int fd, uint32_t request, const void *payload, uint32_t size);
int vu_send_reply_u64(int fd, uint32_t request, uint64_t value);

/* Write a request (front-end side, used by the tests): 0 or -errno. */
int vu_send_request(int fd, uint32_t request, uint32_t flags, const void *payload,
		    uint32_t size, const int *fds, size_t nfds);

/* Read a reply (front-end side): checks flags == 0x5 and the request code. */
int vu_recv_reply(int fd, uint32_t request, void *payload, uint32_t size);

void vu_msg_close_fds(struct vu_msg *m);
const char *vu_request_name(uint32_t request);

#endif
