/*
 * fuse_dispatch.h - FUSE request decoding, session handling and dispatch to
 * the back end.
 * Runs in: the worker (sandboxed). The readable iovecs of a request are
 * guest memory the guest can still change: the decoder copies the header,
 * the fixed-size arguments and names into private memory (struct fuse_in)
 * first and validates the copy; nothing after the decoder reads the
 * request bytes again except bulk data (WRITE payload) used in place.
 *
 * The codec part (fuse_codec.c) is pure: functions on iovec streams, no
 * state, unit-tested without the loop. The dispatch part (fuse_dispatch.c)
 * owns the request objects, the session (INIT/DESTROY), FORGET and the
 * reply helpers declared in backend.h.
 */
#ifndef BH_FUSE_DISPATCH_H
#define BH_FUSE_DISPATCH_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "backend.h"
#include "virtqueue.h"

#define FUSE_NAME_MAX 255 /* longest accepted name, without its NUL */

/* What we answer INIT with (the header on this machine is 7.38). */
#define FUSE_OUR_MAJOR 7
#define FUSE_OUR_MINOR 38

/*
 * Size limits. Every buffer and every reply sized by the guest is bounded by
 * what INIT negotiated: the guest's kernel never builds a larger request, so
 * only a hostile guest meets these (man/bulkheadd.8, LIMITS).
 *
 * FUSE_MAX_WRITE is INIT's max_write: a WRITE with more data is refused
 * with EINVAL (fuse_decode), as a malformed request; a short write would
 * have to pretend the host stopped early.
 *
 * A READ or READDIR(PLUS) reply carries at most max_pages pages of
 * FUSE_PAGE_SIZE (fuse_max_payload): the kernel sizes both by max_pages,
 * and a short reply is legal for both (fewer bytes, fewer entries), so a
 * larger size is clamped, not refused. max_pages is counted in 4 KiB pages,
 * the page size of x86-64 guests; a guest with larger pages would see
 * reads above max_pages * 4 KiB come back short.
 *
 * GETXATTR and LISTXATTR are clamped to XATTR_SIZE_MAX (which is also
 * XATTR_LIST_MAX), as the host's getxattr(2) and listxattr(2) clamp; a
 * SETXATTR value above it is E2BIG, as setxattr(2) answers.
 */
#define FUSE_PAGE_SIZE	   4096u
#define FUSE_MAX_PAGES_CAP 256u
#define FUSE_MAX_WRITE	   (1u << 20)

/* The most data one READ or READDIR reply may carry for a session that
 * negotiated max_pages (a value from shared memory: never above
 * FUSE_MAX_PAGES_CAP, never below one page). */
uint32_t fuse_max_payload(uint32_t max_pages);

/* A reply size the guest asked for, clamped to the writable room behind the
 * out header and to cap. */
uint32_t fuse_clamp_reply(uint32_t size, uint64_t room, uint32_t cap);

/* Per-opcode decoding rules (fuse_codec.c). */
#define FUSE_OP_NOREPLY 0x1 /* FORGET, BATCH_FORGET: chain completed with len 0 */
#define FUSE_OP_NAME	0x2 /* a NUL-terminated name follows the fixed arguments */
#define FUSE_OP_NAME2	0x4 /* a second name follows the first (RENAME): in->name2 */
#define FUSE_OP_TARGET	0x8 /* a symlink target follows the name (SYMLINK): in->name2 */
#define FUSE_OP_NODOTS	0x10 /* "." and ".." are refused (-EINVAL): names that are created */

struct fuse_op_info {
	const char *oi_name;
	uint16_t oi_argsz;   /* fixed argument bytes after the in_header */
	uint16_t oi_replysz; /* fixed reply payload bytes (0: none or variable) */
	uint32_t oi_flags;   /* FUSE_OP_* */
};

/* Rules for an opcode, or NULL when we do not know it at all. */
const struct fuse_op_info *fuse_op_lookup(uint32_t opcode);

/* A request after decoding: private copies only. */
struct fuse_in {
	struct fuse_in_header h;
	union {
		struct fuse_init_in init;
		struct fuse_forget_in forget;
		struct fuse_batch_forget_in batch_forget;
		struct fuse_getattr_in getattr;
		struct fuse_open_in open;
		struct fuse_read_in read;
		struct fuse_release_in release;
		struct fuse_flush_in flush;
		struct fuse_setattr_in setattr;
		struct fuse_mknod_in mknod;
		struct fuse_mkdir_in mkdir;
		struct fuse_rename_in rename;
		struct fuse_rename2_in rename2;
		struct fuse_link_in link;
		struct fuse_write_in write;
		struct fuse_fsync_in fsync;
		struct fuse_access_in access;
		struct fuse_create_in create;
		struct fuse_fallocate_in fallocate;
		struct fuse_lseek_in lseek;
		struct fuse_copy_file_range_in copy;
		struct fuse_setxattr_in setxattr; /* size and flags; setxattr_flags with SETXATTR_EXT */
		struct fuse_getxattr_in getxattr; /* GETXATTR and LISTXATTR */
		struct fuse_lk_in lk;
		uint8_t raw[88];
	} a;
	const struct fuse_op_info *info; /* NULL: unknown opcode */
	uint32_t var_off;		 /* stream offset of the bytes after the fixed arguments */
	uint32_t var_len;		 /* those bytes, up to the extensions (total_extlen) */
	/* FUSE_EXT_GROUPS (with FUSE_CREATE_SUPP_GROUP): the one supplementary
	 * group of the caller the guest names (its parent directory's). */
	bool has_supp_gid;
	uint32_t supp_gid;
	uint16_t namelen;		 /* FUSE_OP_NAME: strlen(name) */
	char name[FUSE_NAME_MAX + 1];
	/* FUSE_OP_NAME2: the new name (checked like name); FUSE_OP_TARGET: the
	 * symlink target (non-empty, may hold '/', shorter than PATH_MAX). */
	uint16_t namelen2;
	char name2[PATH_MAX];
};

/*
 * Decode the readable stream (rd_len bytes in n iovecs) into *in.
 * 0 on success. Otherwise a negative errno to reply with:
 *   -EPROTO  the stream is shorter than an in_header (in->h is zeroed: no
 *            unique to echo, nothing is known about the request);
 *   -EIO     in.len larger than the stream, smaller than header + fixed
 *            arguments, extensions not fitting, batch-forget count
 *            larger than the payload;
 *   -EINVAL  name unterminated within in.len, empty, or holding '/';
 *   -ENAMETOOLONG  name longer than FUSE_NAME_MAX (a symlink target: PATH_MAX - 1);
 *   -EINVAL  also: "." or ".." for an opcode that creates the name
 *            (FUSE_OP_NODOTS), WRITE whose size is not exactly the bytes
 *            after write_in (in.len != 80 + size) or above FUSE_MAX_WRITE,
 *            and values the system calls bound whatever the back end: a
 *            lock range, a READ/READDIR/LSEEK/FALLOCATE/COPY_FILE_RANGE
 *            offset or length beyond INT64_MAX, an unknown LSEEK whence,
 *            ACCESS mask bit, RENAME2 or COPY_FILE_RANGE flag, TMPFILE
 *            without write access.
 * in->h is valid (copied) for every error but -EPROTO, so the caller can
 * echo the unique and tell whether the opcode wants a reply.
 */
int fuse_decode(const struct iovec *rd, unsigned n, uint64_t rd_len, struct fuse_in *in);

/*
 * Copy and check a name at stream offset off with at most avail bytes
 * available (request bytes, not the whole stream): 0 with buf holding the
 * NUL-terminated name (buf has FUSE_NAME_MAX + 1 bytes) and *len its
 * length, or -EINVAL / -ENAMETOOLONG as for fuse_decode. *consumed (if
 * not NULL) is len + 1.
 */
int fuse_decode_name(const struct iovec *rd, unsigned n, size_t off, size_t avail, char *buf,
		     uint16_t *len, size_t *consumed);

/*
 * The second step for the xattr opcodes, once the session is known:
 * SETXATTR's fixed arguments are 16 bytes when SETXATTR_EXT was negotiated
 * (ext), 8 otherwise. GETXATTR, SETXATTR and REMOVEXATTR: the attribute name
 * goes to in->name (any bytes but NUL, 1..XATTR_NAME_MAX: -EINVAL /
 * -ERANGE as setxattr(2) would say). SETXATTR: the value must be exactly the
 * remaining size bytes (-EINVAL) and at most XATTR_SIZE_MAX (-E2BIG); on
 * success in->var_off / var_len describe the value (be_req_write_iov).
 * LISTXATTR needs nothing more. SETXATTR flags other than XATTR_CREATE
 * and XATTR_REPLACE are -EINVAL. 0 or -errno.
 */
int fuse_decode_xattr(const struct iovec *rd, unsigned n, struct fuse_in *in, bool ext);

/* Entry i of a decoded BATCH_FORGET (count already checked), copied. */
void fuse_decode_forget_one(const struct iovec *rd, unsigned n, const struct fuse_in *in,
			    uint32_t i, struct fuse_forget_one *out);

/*
 * Write a reply {out_header, payload} into the writable stream (wr_len
 * bytes in n iovecs). error is 0 or a negative errno (then the payload is
 * ignored). Returns 0 with *used = out.len when it fits. When it does not
 * fit but an out_header does, writes an -EIO header, *used = 16 and returns
 * -EMSGSIZE. When not even 16 bytes fit, writes nothing, *used = 0 and
 * returns -ENOBUFS. Never writes past wr_len.
 */
int fuse_reply_write(const struct iovec *wr, unsigned n, uint64_t wr_len, uint64_t unique,
		     int error, const void *payload, size_t len, uint32_t *used);

/* Write only the out_header for a reply whose payload (dlen bytes) is
 * already in the stream at offset 16 (zero-copy READ). Same results. */
int fuse_reply_header(const struct iovec *wr, unsigned n, uint64_t wr_len, uint64_t unique,
		      size_t dlen, uint32_t *used);

/* ---- requests and dispatch (fuse_dispatch.c) ---- */

struct worker_mem;

enum fuse_req_state { FR_PENDING = 0, FR_REPLYING, FR_ABANDONED };

/* iovecs a request slices without allocating (a 32 KiB read in pages) */
#define FUSE_SLICE_INLINE 8

struct fuse_req {
	TAILQ_ENTRY(fuse_req) r_entry; /* worker's in-flight list (loop thread) */
	struct vq_elem r_elem;
	struct worker_mem *r_mem; /* the mapping r_elem points into, referenced */
	uint32_t r_ring_gen;	  /* ring start this request was popped from */
	uint32_t r_used;	  /* used-ring length once replied */
	int r_state;		  /* enum fuse_req_state, atomic */
	bool r_listed;		  /* on the in-flight list */
	struct fuse_in r_in;
	struct be_caller r_caller; /* who asks (each callback's who), set by fuse_dispatch */
	/* back-end private scratch (BE_REQ_PRIV_SIZE bytes), see backend.h */
	union {
		uint64_t u64[16];
		void *ptr[16];
	} r_priv;
	/* be_req_data_iov / be_req_write_iov: the request's own slice of its
	 * buffers, valid until it is answered, whatever else the thread does */
	struct iovec *r_slice; /* r_slice_inline, allocated, or NULL */
	unsigned r_slice_cap;
	struct iovec r_slice_inline[FUSE_SLICE_INLINE];
};

TAILQ_HEAD(fuse_req_list, fuse_req);

/* Per-worker FUSE state, set up once by the worker. */
struct nt_table;
struct peer;
struct tp;
struct be_ops;

struct event;
struct event_base;
struct fuse_releases;

/*
 * What the dispatcher needs of the program that runs it (worker.c; a unit
 * test's doubles): where a finished request goes. The dispatcher does not
 * know the ring.
 */
struct fuse_host {
	/* True on the thread running the event loop. */
	bool (*fh_on_loop)(void);
	/* Loop thread: publish a finished request and recycle it (tp_fn-shaped,
	 * so pool threads hand it to tp_complete). */
	void (*fh_complete)(void *req);
	/* Loop thread: the same for a request finished on the loop itself. */
	void (*fh_complete_local)(struct fuse_req *r);
};

struct fuse_sess {
	const struct fuse_host *fs_host;
	struct event_base *fs_base; /* for delayed releases; NULL: sent at once */
	struct event *fs_release_ev;
	struct fuse_releases *fs_rel; /* releases not sent yet (fuse_do_forget) */
	struct nt_table *fs_nt;
	struct peer *fs_peer;
	struct tp *fs_tp;
	uint32_t fs_self;
	uint16_t fs_queue_size; /* for max_pages */
	uint32_t fs_max_pages;	/* the session's, once initialized (fuse_max_payload) */
	const struct be_ops *fs_be;
	void *fs_be_ctx;
	uint64_t fs_epoch;   /* last node-table epoch seen */
	bool fs_initialized; /* cached: some worker answered INIT this epoch */
	uint32_t fs_policy;  /* FUSE_POL_*: privileged metadata the operator allows */
	uint32_t fs_can;     /* BE_CAN_*: what the session serves: the back end's
				capabilities (backends.h), less BE_CAN_XATTR without --xattr */
	bool fs_readonly;    /* --readonly: every change is EROFS */
};

/* Once, after filling *s: remember the pool for replies from its threads. */
void fuse_sess_start(struct fuse_sess *s);

/* Loop thread: check the node-table epoch before a batch of requests;
 * a reset elsewhere (DESTROY, re-INIT) drops our cached descriptors. */
void fuse_sess_sync(struct fuse_sess *s);

/* Free what be_req_data_iov / be_req_write_iov allocated for r (done when
 * it is answered). */
void fuse_req_slice_free(struct fuse_req *r);

/* Loop thread: decode and run one popped request. The request has been
 * put on the in-flight list by the caller; it is finished (pushed or
 * abandoned) through the host's fh_complete exactly once. */
void fuse_dispatch(struct fuse_sess *s, struct fuse_req *r);

/* ---- privileged metadata (fuse_policy.c) ---- */

#define FUSE_POL_DEVICES     0x1 /* MKNOD of character and block devices */
#define FUSE_POL_FILE_CAPS   0x2 /* SETXATTR security.capability */
#define FUSE_POL_SETID_STRIP 0x4 /* setuid/setgid on files: dropped, the call goes on */
#define FUSE_POL_SETID_ALLOW 0x8 /* setuid/setgid on files: kept (neither: EPERM) */

/* MKNOD, CREATE, TMPFILE, SETATTR under the policy: 0 (modes may have been
 * stripped in place) or -EPERM to answer. Loop thread. */
int fuse_policy_check(const struct fuse_sess *s, struct fuse_in *in);
/* SETXATTR, once its name is decoded: 0 or -EPERM. */
int fuse_policy_xattr(const struct fuse_sess *s, const struct fuse_in *in);

#endif
