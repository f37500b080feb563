/*
 * passthrough.h - what the files of the passthrough back end share: the
 * context, the pool job, and the helpers, grouped by the file that defines
 * them. Layers, each calling only those below it: passthrough_open.c
 * (reopening, acting as the caller), passthrough_core.c (jobs, the
 * loop-thread gate, entries, lookups), the operations (passthrough_read.c,
 * _write.c, _dir.c, _locks.c, _xattr.c), and passthrough.c (the ops table,
 * start and end, what other workers are lent).
 * Runs in: the worker (sandboxed). Not an interface for other back ends.
 */
#ifndef BH_PASSTHROUGH_H
#define BH_PASSTHROUGH_H

#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "backend.h"
#include "threadpool.h"

#define PT_NO_NOWAIT_MEMO 16

/* A regular file as an OPEN found it: an unchanged one may keep the
 * guest's cached pages. */
#define PT_OPENED_MEMO 16384 /* calloc: only the slots in use are resident */
struct pt_opened {
	uint64_t o_node;
	dev_t o_dev;
	ino_t o_ino;
	off_t o_size;
	struct timespec o_mtime;
	struct timespec o_ctime;
};

/* A directory handle's host records read ahead (passthrough_dir.c). */
#define PT_DIRSTREAMS	  32
#define PT_DIRSTREAM_BUF (32u << 10)
struct pt_dirstream {
	uint64_t ds_fh;	  /* the handle, 0 = a free slot */
	uint64_t ds_next; /* the cookie of a READDIR that reads on from ds_pos */
	uint64_t ds_tick; /* last use, for eviction */
	char *ds_buf;	  /* PT_DIRSTREAM_BUF bytes of getdents64 records */
	size_t ds_len;
	size_t ds_pos;
};

/* Descriptors of other workers' nodes kept as duplicates: 0, bounded by
 * RLIMIT_NOFILE only (fdtable.c evicts when it is reached). */
#define PT_FDT_CACHE 0

struct pt {
	struct be_env pt_env;
	struct fdt *pt_fdt; /* the host descriptors of nodes and open files */
	dev_t pt_root_dev; /* the share root's identity: its lookups give node 1 */
	ino_t pt_root_ino;
	uint64_t pt_valid;	/* entry/attr cache lifetime, seconds */
	uint32_t pt_keep_cache; /* FOPEN_* for files */
	uint32_t pt_dir_cache;	/* FOPEN_* for directories */
	bool pt_setcreds;	/* running as root: act as the guest's caller */
	/* loop thread only, see pt_meta */
	uint64_t pt_meta_until; /* metadata calls go to the pool until then */
	bool pt_meta_declined;	/* the inline call declined: the pool runs it */
	uint64_t pt_pass_seen;	/* the ring pass pt_slept_base was read in */
	long pt_slept_base;	/* voluntary context switches then */
	/* handles whose reads refused RWF_NOWAIT (tmpfs): not asked again */
	uint64_t pt_no_nowait[PT_NO_NOWAIT_MEMO];
	/* cache=auto: each file as its last OPEN here found it (pt_keep_pages) */
	pthread_mutex_t pt_opened_mu;
	struct pt_opened pt_opened[PT_OPENED_MEMO];
	/* directory handles read ahead, for the READDIR that continues them */
	pthread_mutex_t pt_dirs_mu;
	uint64_t pt_dirs_tick;
	struct pt_dirstream pt_dirs[PT_DIRSTREAMS];
};

/* Reads and writes up to this size may run on the loop thread (pt_read,
 * pt_write); larger reads only while the pool is busy, larger writes never. */
#define PT_INLINE_IO_MAX (128u << 10)

/* A pool job's arguments, kept in the request's back-end scratch. Strings
 * and argument structs live in the request until it is replied. */
struct pt_job {
	struct pt *j_pt;
	struct fuse_req *j_req;
	const struct be_caller *j_who; /* who asks (in the request: valid until the reply) */
	const char *j_name;
	const char *j_name2; /* RENAME's new name, SYMLINK's target */
	const void *j_arg;   /* SETATTR, CREATE, COPY_FILE_RANGE arguments */
	uint64_t j_id;	     /* node id or file handle */
	uint64_t j_id2;	     /* second node (RENAME's new directory, LINK's target) */
	uint64_t j_off;
	uint64_t j_len;
	uint32_t j_size;
	uint32_t j_flags;
	uint32_t j_mode;
	uint32_t j_rdev;
	bool j_plus;
	bool j_dir;
	bool j_inline; /* running on the loop thread (pt_meta) */
};

_Static_assert(sizeof(struct pt_job) <= BE_REQ_PRIV_SIZE, "pt_job too big");

/* Loop thread: more requests wait on the ring (be_env.more_waiting). */
static inline bool pt_more_waiting(const struct pt *pt)
{
	return pt->pt_env.more_waiting && pt->pt_env.more_waiting();
}

/* passthrough_core.c */
/* A pool job's arguments copied into the request's scratch. */
struct pt_job *pt_prepare(struct pt *pt, struct fuse_req *r, const struct be_caller *who,
			  const struct pt_job *args);
/* The fast path (passthrough_core.c): body(j, true) runs on the loop
 * thread and returns PT_DEFER when it would block; slow then runs it on the
 * pool. */
#define PT_DEFER 1
void pt_fast(struct pt *pt, struct fuse_req *r, const struct be_caller *who,
	     int (*body)(struct pt_job *, bool), tp_fn slow, const struct pt_job *args);
/* The loop-thread gate for calls that could block: open now?, the sleep
 * count before a call, and the verdict on one that ran. */
bool pt_meta_open(const struct pt *pt, uint64_t now);
long pt_slept_before(struct pt *pt);
void pt_meta_took(struct pt *pt, uint64_t start, long slept0, uint32_t opcode);
/* Node id's descriptor (nowait: only if it is here already): 0 or -errno. */
int pt_node_fd(struct pt *pt, uint64_t id, bool nowait, int *fd);
void pt_submit(struct pt *pt, struct fuse_req *r, const struct be_caller *who, tp_fn fn,
	       const struct pt_job *args);
void pt_meta(struct pt *pt, struct fuse_req *r, const struct be_caller *who, tp_fn fn,
	     const struct pt_job *args, uint64_t node);
void pt_meta_fh(struct pt *pt, struct fuse_req *r, const struct be_caller *who, tp_fn fn,
		const struct pt_job *args, uint64_t fh);
/* An inline metadata call that must not run on the loop thread after all:
 * true when it was inline (the pool runs it again; do not reply). */
bool pt_meta_decline(struct pt_job *j);
struct pt_job *pt_job_of(void *arg);
void pt_fill_attr(struct fuse_attr *a, const struct stat *st);
void pt_fill_entry(const struct pt *pt, struct fuse_entry_out *e, uint64_t id,
		   const struct stat *st);
/* Take one lookup reference on the node behind fd (O_PATH, consumed in
 * every case) and fill *e. */
int pt_node_entry(struct pt *pt, int fd, struct fuse_entry_out *e);
/* The same for the link 'name' in directory node 'parent': recorded in the
 * node table so an evicted descriptor can be reopened. */
int pt_node_entry_named(struct pt *pt, int fd, uint64_t parent, const char *name,
			struct fuse_entry_out *e);
/* Give back a reference pt_node_entry took (a later step failed). */
void pt_node_unref(struct pt *pt, uint64_t id);
/* FOPEN_* flags for a regular file under the cache mode. */
uint32_t pt_file_open_flags(const struct pt *pt);
/* A regular file's open flags on the host: with --writeback the guest's
 * page cache reads what it writes, and appends itself. */
int pt_file_oflags(const struct pt *pt, int oflags);
/* A guest handle for the open file fd of node: *id, or -errno (fd is the
 * caller's to close then). */
int pt_fh_new(struct pt *pt, uint64_t node, int fd, int oflags, bool dir, uint64_t *id);

/* Resolve name in dirfd (node parent) with one lookup reference on the
 * result; nowait: only from the dentry cache (-EWOULDBLOCK otherwise). */
int pt_lookup_at(struct pt *pt, int dirfd, uint64_t parent, const char *name, bool nowait,
		 struct fuse_entry_out *e);

/* The device node id lives on (the share root's for node 1), or PT_NO_DEV
 * when the node is not live. */
#define PT_NO_DEV UINT64_MAX
uint64_t pt_node_dev(struct pt *pt, uint64_t id);

/* READDIRPLUS: the same for a name whose node (dev dirdev, inode d_ino in
 * the listing) this worker holds, by one fstatat; -EAGAIN: use pt_lookup_at. */
int pt_lookup_known(struct pt *pt, int dirfd, uint64_t dirdev, uint64_t parent, const char *name,
		    uint64_t d_ino, struct fuse_entry_out *e);

/* passthrough_dir.c: a released directory handle's read-ahead goes; all
 * of it when the back end goes. */
void pt_dirstream_drop(struct pt *pt, uint64_t fh);
void pt_dirstreams_free(struct pt *pt);

/* passthrough_open.c */
int pt_stat_fd(int fd, struct stat *st);
/* "N" for descriptor fd, relative to env.proc_fd (only when it is >= 0). */
void pt_proc_name(char *buf, size_t len, int fd);
/* openat as the request's caller (O_CLOEXEC added): the descriptor or -errno. */
int pt_openat_as_caller(const struct pt *pt, const struct be_caller *who, int dirfd,
			const char *path, int oflags, mode_t mode);
/* Act as the request's caller on this thread (raw setresuid/setresgid:
 * per thread, unlike glibc's wrappers): 0 or -errno. pt_creds_leave
 * returns to the worker's own ids; both are no-ops unless pt_setcreds. */
int pt_creds_enter(const struct pt *pt, const struct be_caller *who);
void pt_creds_leave(const struct pt *pt);
#define PT_REOPEN_FILE 0x1 /* regular files may be opened */
#define PT_REOPEN_DIR  0x2 /* directories may be opened */
/* The errno for opening an inode of this type when only 'allow' may be
 * opened: 0 when it may; EISDIR, ENOTDIR, ELOOP (symlink), EACCES (device
 * node), ENXIO (FIFO, socket). */
int pt_open_type_err(mode_t mode, unsigned allow);
/* A new open file for the inode behind fd (O_PATH node descriptor or an
 * open handle of node), with oflags (never creating), as r's caller when r
 * is not NULL. Never opens anything but what 'allow' names, checked on fd
 * before anything is opened. The descriptor, or -errno (ESTALE: the inode
 * cannot be reached again). */
int pt_reopen(struct pt *pt, const struct be_caller *who, uint64_t node, int fd, int oflags,
	      unsigned allow);
/* The same for the regular file behind fd (O_PATH), which dirfd/name led
 * to (CREATE of an existing name). */
int pt_reopen_named(struct pt *pt, const struct be_caller *who, int dirfd, const char *name, int fd,
		    int oflags);
/* The directory behind fd is the share root or below it: 0, else -ENOENT. */
int pt_inside_share(struct pt *pt, int fd);
/* chmod and utimensat of a node held by an O_PATH descriptor. */
int pt_node_chmod(struct pt *pt, int nfd, mode_t mode);
int pt_node_utimens(struct pt *pt, int nfd, const struct timespec ts[2]);

/* passthrough_dir.c */
void pt_readdir(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
		uint64_t off, uint32_t size, bool plus);

/* passthrough_read.c: the read side's operations (be_ops) */
void pt_lookup(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
	       const char *name);
void pt_getattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		bool has_fh, uint64_t fh);
void pt_readlink(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node);
void pt_open(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
	     uint32_t flags);
void pt_opendir(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		uint32_t flags);
void pt_read(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh, uint64_t off,
	     uint32_t size);
void pt_release(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh);
void pt_flush(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh);
void pt_statfs(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node);

/* passthrough_write.c */
/* Clear setuid, and setgid when group-executable, on an open descriptor
 * (HANDLE_KILLPRIV_V2: the guest asks for it). */
void pt_kill_suidgid(int fd);

void pt_setattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		const struct fuse_setattr_in *in);
void pt_write(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh, uint64_t off,
	      uint32_t size, uint32_t write_flags);
void pt_fsync(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
	      bool datasync);
void pt_create(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
	       const char *name, const struct fuse_create_in *in);
void pt_mknod(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
	      const char *name, uint32_t mode, uint32_t rdev, const char *target);
void pt_link(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
	     uint64_t newparent, const char *name);
void pt_unlink(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
	       const char *name, bool dir);
void pt_rename(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t olddir,
	       const char *oldname, uint64_t newdir, const char *newname, uint32_t flags);
void pt_access(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
	       uint32_t mask);
void pt_fallocate(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
		  uint64_t off, uint64_t len, uint32_t mode);
void pt_lseek(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh, uint64_t off,
	      uint32_t whence);
void pt_copy_file_range(void *ctx, struct fuse_req *r, const struct be_caller *who,
			const struct fuse_copy_file_range_in *in);
void pt_syncfs(void *ctx, struct fuse_req *r, const struct be_caller *who);
uint32_t pt_init_flags(void *ctx);

/* passthrough_locks.c */
void pt_getlk(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
	      const struct fuse_lk_in *in);
void pt_setlk(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
	      const struct fuse_lk_in *in, bool sleep);
/* FLUSH (close in the guest) drops the POSIX owner's locks on the node;
 * RELEASE with FUSE_RELEASE_FLOCK_UNLOCK the flock owner's. */
void pt_locks_flush(uint64_t node, uint64_t lock_owner);
/* The same when the owner's description is absent or ours (true, done);
 * false when another worker holds it: call pt_locks_flush off the loop. */
bool pt_locks_flush_local(uint64_t node, uint64_t lock_owner);
void pt_locks_release(uint64_t node, const struct fuse_release_in *in);
/* Session reset (loop thread): all locks go, waiting SETLKWs end with EIO. */
void pt_locks_reset(void);
/* Start-up: the node table (lock index), the peer channels, our id. */
void pt_locks_init(struct nt_table *nt, struct peer *peer, uint32_t self);
/* For peer.c (another worker borrows or drops one of our descriptions). */
int pt_locks_provide_fd(uint64_t id);
void pt_locks_release_id(uint64_t id);
/* RING_STOP: end every waiting SETLKW with EIO now. */
void pt_locks_ring_stop(void);

/* passthrough_xattr.c */
void pt_getxattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		 const char *name, uint32_t size);
void pt_listxattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		  uint32_t size);
void pt_setxattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		 const char *name, uint32_t size, uint32_t flags);
void pt_removexattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		    const char *name);

#endif
