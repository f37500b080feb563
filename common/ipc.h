/*
 * ipc.h - framed messages between bulkheadd and its workers, and between
 * workers (descriptor sharing).
 * Runs in: both. Channels are SOCK_SEQPACKET socketpairs: one datagram is one
 * message = struct ipc_hdr + payload, with up to IPC_MAX_FDS descriptors
 * attached through SCM_RIGHTS. Receive checks are strict and return errors;
 * the caller decides what a bad message means (a worker dies, the parent
 * kills the worker that sent it).
 */
#ifndef BH_IPC_H
#define BH_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "bulkhead.h"

#define IPC_MAX_PAYLOAD 8192
#define IPC_MAX_FDS     40 /* a full memory table (32 regions) + ring fds */

struct ipc_hdr {
	uint32_t ih_type;  /* enum ipc_type */
	uint32_t ih_len;   /* payload bytes after the header */
	uint32_t ih_nfds;  /* descriptors attached */
	uint32_t ih_seq;   /* echoed in replies */
};

struct ipc_msg {
	struct ipc_hdr im_hdr;
	uint8_t im_data[IPC_MAX_PAYLOAD];
	int im_fds[IPC_MAX_FDS];
};

/*
 * Conversation between the parent and one worker (seq numbers: the parent
 * numbers its requests; replies echo them):
 *
 *   spawn: socketpair; fork (or clone into new namespaces); child dup2s its end to BH_WORKER_IPC_FD
 * (3), closes everything else, execveat(worker binary fd, AT_EMPTY_PATH). W->P HELLO parent checks
 * the build id (mismatch: kill, log) P->W CONFIG + fds     worker checks the build id too, maps the
 * node table, opens nothing on the guest's behalf yet; replies ACK P->W S3_CONFIG [+ fd] S3 workers
 * only: the [s3] settings and the CA bundle; ACK. Then S3_CREDS (the keys); ACK. P->W SANDBOX [+
 * fd]   the worker confines itself (namespaces, root, capabilities, no_new_privs, limits, seccomp);
 *                         with --seccomp=log it first sends
 *                         SECCOMP_LISTENER + fd; ACK (or NOTICE and exit)
 *   P->W PEER + fd        two per other live worker (CLIENT and SERVER
 *                         roles), also sent to the existing workers for the
 *                         new one; each ACKed
 *   P->W MEM_TABLE + fds  the whole current table, whenever it changes and
 *                         before the first RING_START; ACK after mapping
 *                         (and re-translating a running ring)
 *   P->W RING_START + fds ring geometry and kick/call/err; ACK once the
 *                         ring is validated (error: ACK with -errno)
 *   P->W RING_ENABLE      ACK
 *   P->W RING_FD          CALL or ERR replaced while running; ACK
 *   P->W RING_STOP        stop watching kick, finish (or after
 *                         ic_drain_timeout_ms fail with EIO) every popped
 *                         request, stop touching the ring; RING_STOPPED
 *   P->W S3_CREDS         S3 workers, after SIGHUP re-read the keys; ACK
 *   W->P NOTICE           any time: something the parent should log (a
 *                         worker that sends them faster than the parent's
 *                         limit, between requests, is killed; each line it
 *                         makes the parent log is rate-limited)
 *
 * The worker survives RING_STOP (the FUSE session and its descriptors stay
 * for pause/resume) and exits on EOF of the channel or when its parent dies
 * (PR_SET_PDEATHSIG). Anything unexpected from the parent is fatal for the
 * worker; anything unexpected from a worker makes the parent kill it.
 *
 * Message types. P = parent, W = worker. Payload structs below; every
 * message has exactly the listed payload size and descriptor count.
 */
enum ipc_type {
	IPC_NONE = 0,
	/* W -> P, first message: struct ipc_hello, 0 fds */
	IPC_HELLO,
	/* P -> W: struct ipc_config, fds: [share dir (O_PATH|O_DIRECTORY), node table memfd] */
	IPC_CONFIG,
	/* P -> W: struct ipc_mem_table (variable: header + n regions), n fds */
	IPC_MEM_TABLE,
	/* P -> W: struct ipc_ring_start, fds per its ir_fdmask (kick, call, err) */
	IPC_RING_START,
	/* P -> W: struct ipc_ring_fd (which = CALL or ERR), 0 or 1 fd */
	IPC_RING_FD,
	/* P -> W: struct ipc_ring_enable, 0 fds */
	IPC_RING_ENABLE,
	/* P -> W: no payload; worker stops the ring, drains, replies IPC_RING_STOPPED */
	IPC_RING_STOP,
	/* P -> W: struct ipc_peer, 1 fd: a channel to another worker */
	IPC_PEER,
	/* W -> P: struct ipc_ack (reply to MEM_TABLE, RING_START, RING_FD, RING_ENABLE, PEER) */
	IPC_ACK,
	/* W -> P: struct ipc_ring_stopped (reply to RING_STOP) */
	IPC_RING_STOPPED,
	/* W -> P: struct ipc_notice: the worker reports a problem (queue broken, ...) */
	IPC_NOTICE,

	/* Worker <-> worker (peer channels), see worker/peer.c */
	IPC_PEER_GET_NODE_FD, /* struct ipc_peer_req, 0 fds */
	IPC_PEER_GET_FH_FD,   /* struct ipc_peer_req, 0 fds */
	IPC_PEER_FD,          /* struct ipc_peer_reply, 1 fd when pr_error == 0 */
	IPC_PEER_RELEASE_NODE,/* uint64_t ids[1..IPC_PEER_RELEASE_MAX], 0 fds, no reply */
	IPC_PEER_RELEASE_FH,  /* uint64_t ids[1..IPC_PEER_RELEASE_MAX], 0 fds, no reply */

	/* P -> W right after CONFIG's ACK: struct ipc_sandbox_cfg, and fds: a
	 * sealed memfd holding the compiled seccomp program (none with
	 * IPC_SECCOMP_NONE), then with IPC_SBX_SHARE_GIVEN the device's mount of
	 * the share. The worker confines itself (worker/sandbox.c) and ACKs; a
	 * step that fails is reported with IPC_NOTICE_SANDBOX and the worker
	 * exits. */
	IPC_SANDBOX,
	/* W -> P, --seccomp=log only, before the SANDBOX ACK: no payload, 1 fd:
	 * the filter's user-notification listener (daemon/seccomp_notify.c) */
	IPC_SECCOMP_LISTENER,
	/* W -> P, with IPC_SBX_SHARE_MAKE, before the SANDBOX ACK: no payload, 1
	 * fd: the mount of the share the worker made for its device (a detached
	 * clone, nodev, nosuid, noexec), which the parent gives every later
	 * worker of the device (IPC_SBX_SHARE_GIVEN) so that all serve one
	 * mount: a descriptor passed between them stays on it. */
	IPC_SHARE_MOUNT,

	/* P -> W, S3 workers only, right after CONFIG's ACK: struct
	 * ipc_s3_config, and 0 or 1 fd: the CA bundle the operator named
	 * (ca_file), opened by the parent; the worker reads it, resolves the
	 * endpoint's host and sets up its HTTP client before its sandbox. ACK. */
	IPC_S3_CONFIG,
	/* P -> W, S3 workers only: struct ipc_s3_creds, 0 fds; after S3_CONFIG's
	 * ACK, and again to every S3 worker each time SIGHUP re-reads them.
	 * The worker uses them from its next request on; ACK. */
	IPC_S3_CREDS,

	IPC_TYPE_MAX
};

struct ipc_hello {
	char ih_build_id[BH_BUILD_ID_MAX]; /* NUL-terminated */
	uint32_t ih_pid;
	uint32_t ih_pad;
};

enum ipc_backend { IPC_BE_PASSTHROUGH = 1, IPC_BE_MEMORY = 2, IPC_BE_S3 = 3 };
enum ipc_sandbox { IPC_SBX_NONE = 0, IPC_SBX_CHROOT, IPC_SBX_NAMESPACE };
enum ipc_cache { IPC_CACHE_NONE = 0, IPC_CACHE_AUTO, IPC_CACHE_ALWAYS };

struct ipc_config {
	char ic_build_id[BH_BUILD_ID_MAX];
	uint32_t ic_queue;        /* virtqueue index = worker id; 0 = hiprio */
	uint32_t ic_max_queues;   /* BH_MAX_QUEUES */
	uint32_t ic_backend;      /* enum ipc_backend */
	uint32_t ic_thread_pool;  /* 0 = run back-end calls inline */
	uint32_t ic_log_level;    /* enum log_level */
	uint32_t ic_use_syslog;
	uint32_t ic_sandbox;      /* enum ipc_sandbox */
	uint32_t ic_cache;        /* enum ipc_cache */
	uint32_t ic_readonly;
	uint32_t ic_flags;        /* IPC_CFG_* */
	uint32_t ic_poll_us;      /* longest ring polling window, 0 = never */
	uint64_t ic_drain_timeout_ms; /* bounded wait at RING_STOP */
};

struct ipc_region {
	uint64_t ir_gpa;
	uint64_t ir_size;
	uint64_t ir_uaddr;       /* front end's virtual address (for ring addresses) */
	uint64_t ir_mmap_offset; /* offset of the region inside its fd */
};

struct ipc_mem_table {
	uint32_t mt_nregions;    /* == ih_nfds, <= BH_MAX_MEM_REGIONS */
	uint32_t mt_pad;
	struct ipc_region mt_regions[];
};

#define IPC_RING_HAS_KICK 0x1
#define IPC_RING_HAS_CALL 0x2
#define IPC_RING_HAS_ERR  0x4
#define IPC_RING_POLL     0x8 /* no kick fd: the front end asked us to poll (NOFD) */

struct ipc_ring_start {
	uint32_t rs_num;         /* queue size, power of two <= 32768 */
	uint32_t rs_base;        /* next avail index (SET_VRING_BASE) */
	uint64_t rs_desc;        /* front-end virtual addresses (SET_VRING_ADDR) */
	uint64_t rs_avail;
	uint64_t rs_used;
	uint64_t rs_features;    /* negotiated virtio features */
	uint32_t rs_fdmask;      /* IPC_RING_*; fds attached in order kick, call, err */
	uint32_t rs_enabled;     /* 1 = process the ring now */
};

/* ic_flags. TEST_FORBIDDEN is honoured only by a --enable-test-hooks build:
 * the worker makes a forbidden system call once its sandbox is in place. */
#define IPC_CFG_TEST_FORBIDDEN 0x1
/* --writeback: the guest caches writes (FUSE_WRITEBACK_CACHE). */
#define IPC_CFG_WRITEBACK 0x2
/* --xattr: extended attributes are served (otherwise EOPNOTSUPP). */
#define IPC_CFG_XATTR 0x4
/* Privileged metadata the operator allows (worker/fuse_policy.c): device
 * nodes (--device-nodes=allow), file capabilities (--file-caps=allow), and
 * what happens to setuid/setgid bits on files (--setid=refuse|strip|allow:
 * neither flag is refuse). */
#define IPC_CFG_DEVICES	    0x8
#define IPC_CFG_FILE_CAPS   0x10
#define IPC_CFG_SETID_STRIP 0x20
#define IPC_CFG_SETID_ALLOW 0x40
/* Test hooks only: on its first request the worker takes the node-table
 * lock and kills itself (the parent must release the lock). */
#define IPC_CFG_TEST_DIE_NT_LOCK 0x100
/* Test hooks only: a borrowed handle's descriptor waits 200 ms between the
 * check that the handle is live and its install (RELEASE race test). */
#define IPC_CFG_TEST_SLOW_BORROW 0x200
/* Test hooks only, a compromised worker (tests/security/test_sec_workers.c):
 * before each request it serves, it writes garbage into every field of the
 * node table (node_table_hooks.c). */
#define IPC_CFG_TEST_SCRIBBLE_NT 0x400
/* Test hooks only: on its first request, or on a RING_ENABLE that disables
 * its ring, it sends NOTICEs as fast as it can and nothing else, for ever. */
#define IPC_CFG_TEST_FLOOD_NOTICES 0x800
/* Test hooks only: on its first request it takes the node-table lock and
 * keeps it (and stays alive) until it is killed. */
#define IPC_CFG_TEST_HOLD_NT_LOCK 0x1000
/* Test hooks only: on each request the worker touches a page whose file
 * it cut before its sandbox: SIGBUS outside guest memory. */
#define IPC_CFG_TEST_SIGBUS 0x2000
/* Test hooks only: a LOOKUP of SBX_TEST_PROBE_NAME makes the worker try to
 * escape through every descriptor it holds (worker/escape_probe.c). */
#define IPC_CFG_TEST_ESCAPE_PROBE 0x4000

enum ipc_seccomp { IPC_SECCOMP_NONE = 0, IPC_SECCOMP_KILL, IPC_SECCOMP_TRAP, IPC_SECCOMP_LOG };

/* sb_share, with --sandbox=namespace: make the device's mount of the share,
 * or take the one that follows the program's fd. Other modes: NONE. */
enum ipc_sbx_share { IPC_SBX_SHARE_NONE = 0, IPC_SBX_SHARE_MAKE, IPC_SBX_SHARE_GIVEN };

struct ipc_sandbox_cfg {
	uint32_t sb_seccomp;     /* enum ipc_seccomp */
	uint32_t sb_ninsns;      /* BPF instructions in the memfd, 0 with NONE */
	uint32_t sb_share;       /* enum ipc_sbx_share */
	uint32_t sb_pad;
};

/* The [s3] section of bulkhead.conf(5), as the parent checked it. Strings
 * are NUL-terminated (the worker checks that they are). */
#define IPC_S3_ENDPOINT_MAX 512
#define IPC_S3_BUCKET_MAX   64	 /* bucket names are 3..63 bytes */
#define IPC_S3_PREFIX_MAX   1024 /* a key is at most 1024 bytes */
#define IPC_S3_REGION_MAX   64
#define IPC_S3_SECRET_MAX   128
#define IPC_S3_TOKEN_MAX    4096

struct ipc_s3_config {
	char sc_endpoint[IPC_S3_ENDPOINT_MAX]; /* "http://host:port" or "https://..." */
	char sc_bucket[IPC_S3_BUCKET_MAX];
	char sc_prefix[IPC_S3_PREFIX_MAX];     /* "" or ending in '/' */
	char sc_region[IPC_S3_REGION_MAX];
	uint32_t sc_virtual;	      /* addressing = virtual */
	uint32_t sc_timeout_ms;	      /* one attempt */
	uint32_t sc_attempts;	      /* attempts per request */
	uint32_t sc_concurrency;      /* requests in flight per worker */
	uint32_t sc_attr_timeout_ms;  /* how long attributes and entries are trusted */
	uint32_t sc_pad;
	uint64_t sc_part_size;	      /* multipart upload part size */
	uint64_t sc_cache_size;	      /* read cache per worker, bytes */
	uint64_t sc_readahead;	      /* sequential read-ahead window, bytes */
	uint64_t sc_staging_limit;    /* bytes of staging files per worker */
	uint64_t sc_copy_threshold;   /* larger objects are copied in parts */
};

/* Credentials: never logged, never in an environment or a command line. */
struct ipc_s3_creds {
	char cr_access_key[IPC_S3_SECRET_MAX];
	char cr_secret_key[IPC_S3_SECRET_MAX];
	char cr_session_token[IPC_S3_TOKEN_MAX]; /* "" if none */
};

enum ipc_ring_fd_which { IPC_RING_FD_CALL = 1, IPC_RING_FD_ERR = 2 };

struct ipc_ring_fd {
	uint32_t rf_which;       /* enum ipc_ring_fd_which */
	uint32_t rf_has_fd;      /* 0: stop signalling (NOFD) */
};

struct ipc_ring_enable {
	uint32_t re_enabled;
	uint32_t re_pad;
};

enum ipc_peer_role {
	IPC_PEER_CLIENT = 1, /* we send requests on this fd to worker pe_id */
	IPC_PEER_SERVER = 2, /* worker pe_id sends requests to us on this fd */
};

struct ipc_peer {
	uint32_t pe_id;          /* the other worker's queue index */
	uint32_t pe_role;        /* enum ipc_peer_role */
};

struct ipc_ack {
	uint32_t ia_seq;         /* ih_seq of the request */
	int32_t ia_error;        /* 0 or -errno */
};

struct ipc_ring_stopped {
	uint32_t st_seq;
	uint32_t st_last_avail;  /* next avail index, the GET_VRING_BASE answer */
	uint32_t st_inflight_failed; /* requests completed with an error after the drain timeout */
	uint32_t st_pad;
};

enum ipc_notice_kind {
	IPC_NOTICE_QUEUE_BROKEN = 1,
	IPC_NOTICE_BACKEND = 2,
	IPC_NOTICE_SANDBOX = 3,	/* a sandbox step failed; the worker exits */
	IPC_NOTICE_SECCOMP = 4,	/* SIGSYS reporter: in_pad = syscall number, no text */
	/* A thread waited NT_LOCK_HOLD_MAX_MS for the node table's lock: in_pad =
	 * the lock word it saw. At most one per period per worker. */
	IPC_NOTICE_NT_STALL = 5,
	/* SIGBUS reporter (worker/guest_fault.c): in_pad = the index of the
	 * guest memory region that faulted (the front end shrank its file; the
	 * worker waits to be killed and the parent drops the front end), or
	 * IPC_GUEST_FAULT_OUTSIDE for a SIGBUS anywhere else (a bug: the worker
	 * dies of it). The text says where. */
	IPC_NOTICE_GUEST_MEMORY = 6,
};

#define IPC_GUEST_FAULT_OUTSIDE UINT32_MAX

struct ipc_notice {
	uint32_t in_kind;
	uint32_t in_pad; /* SECCOMP: the syscall number; NT_STALL: the lock word;
			  * GUEST_MEMORY: the region; else 0 */
	char in_text[256];       /* NUL-terminated, for the parent's log */
};

/* Ids one release message carries (a guest's BATCH_FORGET goes out in few). */
#define IPC_PEER_RELEASE_MAX 512

struct ipc_peer_req {
	uint64_t pq_id;          /* node id or file handle */
	uint64_t pq_cookie;      /* echoed */
};

struct ipc_peer_reply {
	uint64_t pr_cookie;
	int32_t pr_error;        /* 0 or -errno */
	uint32_t pr_pad;
};

/* Create a SOCK_SEQPACKET|SOCK_CLOEXEC socketpair. 0 or -errno. */
int ipc_socketpair(int sv[2]);

/* Send one message; fds are not closed. 0 or -errno (-EMSGSIZE if too big). */
int ipc_send(int fd, uint32_t type, uint32_t seq, const void *data, size_t len,
	     const int *fds, size_t nfds);

/*
 * Receive one message into *m (blocking unless the socket is non-blocking).
 * Returns 0, -EPIPE on end of file, -EAGAIN, or -EBADMSG for a malformed
 * message (truncated, oversized, header length or fd count not matching what
 * arrived, unknown type); received fds are closed on error.
 */
int ipc_recv(int fd, struct ipc_msg *m);
/* The same, never waiting: -EAGAIN when no message is queued. For event
 * callbacks, whose readiness may be stale (another path of the same loop
 * may have read the message since). */
int ipc_try_recv(int fd, struct ipc_msg *m);

/* Check that m carries exactly len payload bytes and nfds fds: 0 or -EBADMSG. */
int ipc_check(const struct ipc_msg *m, size_t len, size_t nfds);

/* Close every fd still held in m (those set to -1 are skipped). */
void ipc_close_fds(struct ipc_msg *m);

const char *ipc_type_name(uint32_t type);

#endif
