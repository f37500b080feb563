/*
 * backend.h - the interface between the FUSE dispatcher and a storage back
 * end (worker/backends/NAME/: passthrough, which the memory back end also
 * uses; S3 to come).
 * Runs in: the worker (sandboxed).
 *
 * Shaped like nbdkit's plugin table: a back end fills a struct be_ops with
 * one callback per operation. The dispatcher has already copied and checked
 * every argument (ids are still the guest's: the back end resolves them
 * through the node table / fdtable, which check range and generation).
 *
 * Asynchronous: a callback starts the operation and returns at once. It
 * must finish the request exactly once, later or before returning, from any
 * thread, by calling one be_reply_* helper. The helper writes the reply into
 * the request's writable guest buffers and hands the request back to the
 * worker's loop, which publishes it on the used ring. Blocking work belongs
 * on the worker's thread pool (tp_submit, env->tp) or in an event-driven
 * client on env->base (e.g. libcurl multi).
 *
 * A NULL callback makes the dispatcher answer -ENOSYS. FORGET, INIT and
 * DESTROY are handled by the dispatcher (node table); a back end that keeps
 * per-node state hooks session_reset.
 *
 * Lookup counting (docs/protocol.md §F.5): lookup and readdirplus add one lookup
 * per node id they return (nt_node_ref does it), the dispatcher subtracts on
 * FORGET.
 */
#ifndef BH_BACKEND_H
#define BH_BACKEND_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct fuse_req;
struct nt_table;
struct peer;
struct tp;
struct event_base;
struct ipc_s3_config;
struct ipc_s3_creds;

/* What a back end gets at start-up. Pointers stay valid until destroy. */
struct be_env {
	struct nt_table *nt;
	/* The channels to the other workers; a back end whose objects other
	 * workers may need (descriptors) answers them with peer_set_provider
	 * in init. */
	struct peer *peer;
	struct tp *tp;
	struct event_base *base;
	uint32_t self;	/* this worker's id (queue index) */
	int root_fd;	/* the share the sandbox prepared (O_PATH|O_DIRECTORY),
			   owned by the worker; -1 for a back end with none */
	int proc_fd;	/* our procfs's "fd" directory for reopening, -1: none */
	uint32_t cache; /* enum ipc_cache */
	bool readonly;
	bool writeback; /* the guest caches writes (FUSE_WRITEBACK_CACHE) */
	bool xattr;	/* --xattr: serve extended attributes */
	bool test_escape_probe; /* test hooks only: IPC_CFG_TEST_ESCAPE_PROBE */
	bool test_slow_borrow;	/* test hooks only: IPC_CFG_TEST_SLOW_BORROW */
	/* Loop thread: do more requests wait on the ring right now? (NULL:
	 * never.) A back end can leave work to its pool while the loop
	 * takes the next ones. */
	bool (*more_waiting)(void);
	/* Loop thread: a count that moves each time the loop starts a pass over
	 * the ring, after it may have slept (NULL: unknown). */
	const uint64_t *ring_passes;
	/* The S3 back end's configuration and credentials (IPC_S3_CONFIG,
	 * IPC_S3_CREDS), the CA bundle's PEM text (NULL: none named) and the
	 * endpoint's addresses as libcurl takes them pinned ("HOST:PORT:ADDR"),
	 * all read before the sandbox; NULL for other back ends. */
	const struct ipc_s3_config *s3_cfg;
	const struct ipc_s3_creds *s3_creds;
	const char *s3_ca;
	size_t s3_ca_len;
	const char *s3_resolve;
	void *s3_multi; /* libcurl's multi handle, made before the sandbox */
};

/*
 * Who asks: the guest's caller, as the dispatcher decoded it once (ids as
 * the guest sent them, which the worker's user namespace, if any, maps),
 * passed to every request callback as `who` (valid until the reply). A
 * back end that acts as the caller takes the identity from there and from
 * nowhere else, never from the request's raw header.
 */
struct be_caller {
	uint32_t bc_uid;
	uint32_t bc_gid;
	uint32_t bc_pid;
	/* the caller's supplementary group the guest names for a creation
	 * (FUSE_EXT_GROUPS: the group of the parent directory) */
	bool bc_has_supp_gid;
	uint32_t bc_supp_gid;
};

struct be_ops {
	const char *name;
	/* Start-up / shutdown, on the loop thread. init returns 0 or -errno. */
	int (*init)(const struct be_env *env, void **ctx);
	void (*destroy)(void *ctx);
	/* The FUSE session was dropped (DESTROY or a new INIT, here or on
	 * another worker); the node table has already been reset. */
	void (*session_reset)(void *ctx);
	/* FORGET took node id's last lookup (on this worker, before its owner
	 * is told): drop what is kept for it here. May be NULL. */
	void (*forget)(void *ctx, uint64_t id);
	/* The queue is stopping (RING_STOP), before its in-flight requests are
	 * drained: requests that wait on something other than a pool thread
	 * (a SETLKW's timer) must be answered now. May be NULL. */
	void (*ring_stop)(void *ctx);
	/* New credentials from the parent (IPC_S3_CREDS after SIGHUP), on the
	 * loop thread: 0 or -errno. May be NULL. */
	int (*set_creds)(void *ctx, const struct ipc_s3_creds *creds);

	/* Reply: be_reply_entry (+1 lookup) or an error. */
	void (*lookup)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
		       const char *name);
	/* fh valid only when has_fh. Reply: be_reply_attr. */
	void (*getattr)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
			bool has_fh, uint64_t fh);
	/* Reply: be_reply_buf with the target (no NUL). */
	void (*readlink)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node);
	/* flags: the guest's O_* flags. Reply: be_reply_open. */
	void (*open)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		     uint32_t flags);
	/* size already clamped to what the guest can receive and to max_pages
	 * (fuse_max_payload). Reply: be_reply_data
	 * after filling be_req_data_iov, or be_reply_buf. */
	void (*read)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
		     uint64_t off, uint32_t size);
	void (*release)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh);
	void (*flush)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh);
	void (*opendir)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
			uint32_t flags);
	/* off = cookie (0 = start); size already clamped as for read. Reply: be_reply_buf with
	 * packed fuse_dirent / fuse_direntplus records (an empty reply = end). */
	void (*readdir)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
			uint64_t off, uint32_t size, bool plus);
	void (*releasedir)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh);
	/* Reply: be_reply_statfs. */
	void (*statfs)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node);

	/* ---- write side (who: the caller to act as) ---- */
	/* INIT: extra FUSE_* flags this back end wants (e.g. WRITEBACK_CACHE). */
	uint32_t (*init_flags)(void *ctx);
	/* in: the request's copy (valid until the reply). Reply: be_reply_attr. */
	void (*setattr)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
			const struct fuse_setattr_in *in);
	/* size == the data bytes after write_in, <= FUSE_MAX_WRITE (checked):
	 * be_req_write_iov gives them in place. Reply: be_reply_write. */
	void (*write)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
		      uint64_t off, uint32_t size, uint32_t write_flags);
	/* FSYNC and FSYNCDIR. */
	void (*fsync)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
		      bool datasync);
	/* CREATE (name) and TMPFILE (name NULL). Reply: be_reply_create (+1 lookup). */
	void (*create)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
		       const char *name, const struct fuse_create_in *in);
	/* MKNOD (S_IFMT in mode), MKDIR (mode without S_IFMT: S_IFDIR is implied)
	 * and SYMLINK (target != NULL). Reply: be_reply_entry (+1 lookup). */
	void (*mknod)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
		      const char *name, uint32_t mode, uint32_t rdev, const char *target);
	/* Reply: be_reply_entry (+1 lookup). */
	void (*link)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		     uint64_t newparent, const char *name);
	/* UNLINK and RMDIR (dir). */
	void (*unlink)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
		       const char *name, bool dir);
	/* flags: RENAME_* (0 for RENAME). */
	void (*rename)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t olddir,
		       const char *oldname, uint64_t newdir, const char *newname, uint32_t flags);
	void (*access)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		       uint32_t mask);
	void (*fallocate)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
			  uint64_t off, uint64_t len, uint32_t mode);
	/* Reply: be_reply_lseek. */
	void (*lseek)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
		      uint64_t off, uint32_t whence);
	/* Reply: be_reply_write with the bytes copied. */
	void (*copy_file_range)(void *ctx, struct fuse_req *r, const struct be_caller *who,
				const struct fuse_copy_file_range_in *in);
	void (*syncfs)(void *ctx, struct fuse_req *r, const struct be_caller *who);

	/* ---- locks and extended attributes ---- */
	/* in: the request's copy, range checked (start <= end <= INT64_MAX; end
	 * INT64_MAX = to EOF). GETLK replies be_reply_lk; SETLK/SETLKW
	 * (sleep) reply be_reply_err. */
	void (*getlk)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		      const struct fuse_lk_in *in);
	void (*setlk)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		      const struct fuse_lk_in *in, bool sleep);
	/* name: NUL-terminated, 1..255 bytes. size: already clamped to what the
	 * guest can receive and to XATTR_SIZE_MAX; 0 = reply be_reply_xattr_size
	 * with the size needed,
	 * otherwise be_reply_buf (or -ERANGE when it does not fit). */
	void (*getxattr)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
			 const char *name, uint32_t size);
	void (*listxattr)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
			  uint32_t size);
	/* The value is size bytes (checked) at be_req_write_iov. flags: XATTR_*. */
	void (*setxattr)(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
			 const char *name, uint32_t size, uint32_t flags);
	void (*removexattr)(void *ctx, struct fuse_req *r, const struct be_caller *who,
			    uint64_t node, const char *name);
};

extern const struct be_ops be_passthrough_ops;
extern const struct be_ops be_s3_ops;

/* ---- request accessors (any thread, while the request is not finished) ---- */

const struct fuse_in_header *be_req_header(const struct fuse_req *r);
/* The request's decoded fixed arguments (struct fuse_*_in of its opcode),
 * a private copy valid until the reply. */
const void *be_req_args(const struct fuse_req *r);
/* 128 bytes of per-request scratch for the back end (e.g. arguments for a
 * pool job), aligned for pointers and u64. */
#define BE_REQ_PRIV_SIZE 128
void *be_req_priv(struct fuse_req *r);

/*
 * Zero-copy data reply (READ): the writable guest buffers after the
 * out_header, at most size bytes, as iovecs kept in the request (valid
 * until it is answered, whatever else the thread does meanwhile: many
 * requests may be in progress on one thread). Returns the bytes covered;
 * the back end fills them (preadv) and then calls be_reply_data with what
 * it wrote. Out of memory: 0 with *iov NULL.
 */
size_t be_req_data_iov(struct fuse_req *r, size_t size, struct iovec **iov, unsigned *n);

/*
 * WRITE: the data bytes (already checked: in.len == 80 + size) as iovecs
 * (SETXATTR: the value bytes, likewise checked) pointing into guest
 * memory, kept in the request like be_req_data_iov's. Returns the bytes
 * covered (== size for a decoded WRITE); out of memory: 0 with *iov NULL.
 */
size_t be_req_write_iov(struct fuse_req *r, size_t size, struct iovec **iov, unsigned *n);

/* ---- finishing a request: exactly one of these per request ---- */

/* err: 0 (empty success reply) or a negative errno. */
void be_reply_err(struct fuse_req *r, int err);
void be_reply_entry(struct fuse_req *r, const struct fuse_entry_out *e);
void be_reply_attr(struct fuse_req *r, const struct fuse_attr_out *a);
void be_reply_open(struct fuse_req *r, uint64_t fh, uint32_t open_flags);
void be_reply_statfs(struct fuse_req *r, const struct fuse_kstatfs *st);
/* An arbitrary payload (READLINK target, directory records, small READs). */
void be_reply_buf(struct fuse_req *r, const void *buf, size_t len);
/* CREATE / TMPFILE: entry and open reply together. */
void be_reply_create(struct fuse_req *r, const struct fuse_entry_out *e, uint64_t fh,
		     uint32_t open_flags);
/* WRITE / COPY_FILE_RANGE: bytes written. */
void be_reply_write(struct fuse_req *r, uint32_t size);
void be_reply_lseek(struct fuse_req *r, uint64_t off);
/* GETLK: the conflicting lock, or type F_UNLCK. */
void be_reply_lk(struct fuse_req *r, const struct fuse_file_lock *lk);
/* GETXATTR / LISTXATTR with size 0: the size a full answer needs. */
void be_reply_xattr_size(struct fuse_req *r, uint32_t size);
/* len bytes were written through be_req_data_iov. */
void be_reply_data(struct fuse_req *r, size_t len);

/* Did the worker give up on this request (drain timeout at RING_STOP)?
 * A long operation may check it to stop early; it must still reply. */
bool be_req_abandoned(const struct fuse_req *r);

#endif
