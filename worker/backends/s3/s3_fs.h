/*
 * s3_fs.h - the S3 back end's own state and the helpers its files share:
 * nodes named by (parent, name), the keys they stand for, attributes kept
 * in object metadata, requests that wait on several HTTP exchanges.
 * Runs in: the S3 worker, on its loop thread only (libcurl multi on the
 * worker's libevent loop: no thread touches this state but the loop's).
 *
 * Files: s3_fs.c (start-up, nodes, keys, metadata, LOOKUP, GETATTR,
 * SETATTR, STATFS), s3_names.c (making and removing names), s3_rename.c
 * and s3_copy.c (RENAME), s3_dir.c (directory snapshots), s3_file.c (open files: reads
 * through a bounded cache, writes through multipart uploads and staging files). What reaches the
 * guest of the store's semantics is in bulkhead.conf(5), section "S3 SEMANTICS".
 */
#ifndef BH_S3_FS_H
#define BH_S3_FS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "backend.h"
#include "ipc.h"
#include "node_table.h"
#include "s3_http.h"
#include "s3_xml.h"

#define S3_KEY_MAX	1024	   /* S3's longest key, in bytes */
#define S3_CHUNK	(1u << 20) /* the read cache's unit, and one ranged GET */
#define S3_PARTS_AHEAD	4	   /* part uploads in flight per file before WRITE waits */
#define S3_LIST_PAGE	"1000"	   /* keys per ListObjectsV2 page */
#define S3_READLINK_MAX 4095	   /* longest symlink target */
#define S3_STREAMS	8	   /* files filling a part in memory at once, per worker */

/* Attributes of a node as the store says them (metadata, else defaults). */
struct s3_attr {
	uint64_t a_size;
	uint32_t a_mode; /* S_IFMT and permission bits */
	uint32_t a_uid, a_gid;
	int64_t a_mtime;
	uint32_t a_mtime_ns;
	char a_etag[128];
};

struct s3_file;
struct s3_chunk;
struct s3_dirsnap;

struct s3fs {
	struct be_env s_env;
	struct nt_table *s_nt;
	struct s3_client *s_cl;
	struct ipc_s3_config s_cfg;
	size_t s_prefix_len;
	int s_stage_fd;	   /* the staging directory (O_TMPFILE files), -1: none */
	uint64_t s_staged; /* bytes of staging files now */
	/* Memory for writes, bounded whatever the guest does: buffers that
	 * requests in flight carry (parts, fetches into staging files, whole
	 * PUTs) up to s_mem_max, then new ones wait for old ones to end; and
	 * at most S3_STREAMS files fill a part in memory at once, the others
	 * write through staging files. */
	uint64_t s_mem, s_mem_max;
	unsigned s_streams;
	bool s_wake_due;
	/* open files and directory snapshots by handle slot */
	struct s3_file **s_files;
	struct s3_dirsnap **s_dirs;
	LIST_HEAD(, s3_file) s_dirty; /* files with changes not yet in the store */
	/* the read cache */
	TAILQ_HEAD(, s3_chunk) s_lru;
	struct s3_chunk **s_chunk_hash;
	size_t s_nchunks, s_max_chunks;
	/* names hidden from listings, logged once each (a bounded set) */
	uint64_t *s_hidden;
	size_t s_nhidden;
};

/*
 * A FUSE request (or internal work) that waits on HTTP exchanges: up to
 * S3_OP_REQS at once; o_then runs on the loop when the last one ends.
 * o_hold keeps o_then from running while requests are still being sent.
 */
#define S3_OP_REQS 3
struct s3_op {
	struct s3fs *o_fs;
	struct fuse_req *o_r;
	unsigned o_pending;
	void (*o_then)(struct s3_op *o);
	struct s3_req o_q[S3_OP_REQS];
	char o_key[S3_OP_REQS][S3_KEY_MAX + 2];
	char o_hdr[6][S3_KEY_MAX * 3 + 64]; /* header values the requests point to */
	/* what the operation is about */
	uint64_t o_parent, o_node, o_fh, o_newparent;
	char o_name[NT_NAME_MAX + 1], o_newname[NT_NAME_MAX + 1];
	char o_old[S3_KEY_MAX + 2], o_new[S3_KEY_MAX + 2]; /* RENAME's keys */
	uint32_t o_mode, o_flags;
	struct s3_attr o_attr;
	struct fuse_setattr_in o_set;
	void *o_body; /* a body the requests send, freed with the op */
	size_t o_mem; /* its bytes counted in s_mem, given back with it */
	/* a walk over a listing (rmdir, rename of a directory) */
	char *o_token;
	char **o_keys;
	uint64_t *o_sizes; /* of o_keys, when a listing said them */
	size_t o_nkeys, o_next_key, o_done_keys;
	int o_err;
	void *o_arg;
};

/* ---- s3_fs.c ---- */

struct s3_op *s3_op_new(struct s3fs *fs, struct fuse_req *r);
void s3_op_free(struct s3_op *o);
/* Prepare o_q[i] for key (copied into o_key[i]) with method. */
struct s3_req *s3_op_req(struct s3_op *o, unsigned i, const char *method, const char *key);
/* Send o_q[i]; its end counts down o_pending. False if it could not go
 * (its err is then set and it counts as ended). */
bool s3_op_send(struct s3_op *o, unsigned i);
/* HEAD key; then runs when it ends, once s3_op_release(o) is called: o,
 * or NULL (ENOMEM answered). The caller sets o's fields in between. */
struct s3_op *s3_op_head(struct s3fs *fs, struct fuse_req *r, const char *key,
			 void (*then)(struct s3_op *o));
/* Begin sending (hold), then release: o_then runs once all have ended. */
void s3_op_hold(struct s3_op *o, void (*then)(struct s3_op *o));
void s3_op_release(struct s3_op *o);

/* The errno for an exchange that did not end in 2xx (0 for 2xx), logged
 * with what and key when it is the store's trouble rather than ENOENT. */
int s3_errno(const struct s3_req *q, const char *what, const char *key);
/* The full key of node id, with a '/' at its end for a directory when
 * dir_slash; *mode its S_IFMT (may be NULL). 0, -ESTALE (the node is
 * gone, or nameless: unlinked), -ENAMETOOLONG. */
int s3_node_key(struct s3fs *fs, uint64_t id, bool dir_slash, char *out, size_t cap,
		uint32_t *mode);
/* The key of name in directory node parent, dir_slash as above. */
int s3_child_key(struct s3fs *fs, uint64_t parent, const char *name, bool dir_slash, char *out,
		 size_t cap);
/* The index hash of a name (its identity is the name itself). */
uint64_t s3_name_hash(const char *name);
/* Can this key segment be a name? (".", "..", empty, too long: no) */
bool s3_name_ok(const char *name, size_t len);
/* Attributes from a HEAD or GET answer; dir: a directory's marker. */
void s3_attr_from(struct s3fs *fs, const struct s3_req *q, bool dir, struct s3_attr *a);
/* Defaults for a node without metadata. */
void s3_attr_default(struct s3fs *fs, uint32_t type, struct s3_attr *a);
/* The x-amz-meta-* headers of a into q (values kept in o_hdr[first..]). */
void s3_attr_headers(struct s3_op *o, struct s3_req *q, unsigned first, const struct s3_attr *a);
void s3_fill_attr(struct s3fs *fs, uint64_t id, const struct s3_attr *a, struct fuse_attr *out);
void s3_entry_out(struct s3fs *fs, const struct nt_node *n, const struct s3_attr *a,
		  struct fuse_entry_out *e);
/* Finish o's FUSE request with err (0: an empty success) and free o. */
void s3_op_fail(struct s3_op *o, int err);
void s3_reply_entry(struct s3fs *fs, struct fuse_req *r, const struct nt_node *n,
		    const struct s3_attr *a);
/* A name of the store that cannot be shown, logged once. */
void s3_hide(struct s3fs *fs, const char *key, const char *why);
/* x-amz-copy-source for key, into out. */
void s3_copy_source(struct s3fs *fs, const char *key, char *out, size_t cap);

/* One more lookup of (parent, name) as a node of a's type, and its entry
 * as the reply. */
void s3_entry_for(struct s3fs *fs, struct fuse_req *r, uint64_t parent, const char *name,
		  const struct s3_attr *a);
/* An op about name in directory parent; NULL (ENOMEM answered) when none. */
struct s3_op *s3_op_named(struct s3fs *fs, struct fuse_req *r, uint64_t parent, const char *name);
/* The entries of a listing answer: >= 0, or -EPROTO. */
int s3_list_count(const struct s3_req *q);
/* The node (parent, name) names now: its id, or 0. */
uint64_t s3_named(struct s3fs *fs, uint64_t parent, const char *name);
/* s3_parse_list's callback: 1 at the first key that is not arg (a
 * directory's marker), so "is there anything else below it?". */
int s3_list_one_other(const struct s3_entry *e, void *arg);

/* ---- s3_names.c ---- */

void s3_mknod(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
	      const char *name, uint32_t mode, uint32_t rdev, const char *target);
void s3_readlink(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node);
void s3_unlink(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
	       const char *name, bool dir);

/* ---- s3_rename.c ---- */

void s3_rename(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t olddir,
	       const char *oldname, uint64_t newdir, const char *newname, uint32_t flags);

/* ---- s3_copy.c ---- */

/* Copy object src to dst with its metadata, size bytes (UINT64_MAX: not
 * known, asked first); done(arg, 0 or -errno) on the loop. */
void s3_copy_key(struct s3fs *fs, const char *src, const char *dst, uint64_t size,
		 void (*done)(void *arg, int err), void *arg);

/* Buffers of requests in flight: count them in, give them back (which
 * wakes, on the next turn of the loop, what waited for room). */
void s3_mem_add(struct s3fs *fs, size_t n);
void s3_mem_sub(struct s3fs *fs, size_t n);
static inline bool s3_mem_full(const struct s3fs *fs)
{
	return fs->s_mem >= fs->s_mem_max;
}

/* ---- s3_dir.c ---- */

void s3_opendir(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		uint32_t flags);
void s3_readdir(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
		uint64_t off, uint32_t size, bool plus);
void s3_releasedir(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh);
void s3_dirs_free(struct s3fs *fs);
/* Is fh a directory handle open here (FSYNCDIR)? */
bool s3_dir_is_open(struct s3fs *fs, uint64_t fh);
/* A dropped FUSE session (DESTROY, a new INIT): its handles go. */
void s3_dirs_reset(struct s3fs *fs);

/* ---- s3_file.c ---- */

int s3_files_init(struct s3fs *fs);
/* A dropped FUSE session: its handles go (work under way still ends). */
void s3_files_reset(struct s3fs *fs);
/* Room for writes again: move on every file that waited for it. */
void s3_files_wake(struct s3fs *fs);
void s3_files_free(struct s3fs *fs);
void s3_open(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
	     uint32_t flags);
void s3_create(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
	       const char *name, const struct fuse_create_in *in);
void s3_read(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh, uint64_t off,
	     uint32_t size);
void s3_write(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh, uint64_t off,
	      uint32_t size, uint32_t write_flags);
void s3_flush(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh);
void s3_fsync(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
	      bool datasync);
void s3_release(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh);
/* A file with changes this worker has not stored yet, by node: its
 * attributes (size included) are the guest's truth. */
struct s3_file *s3_file_dirty(struct s3fs *fs, uint64_t node);
void s3_file_attr(const struct s3_file *f, struct s3_attr *a);
/* SETATTR on a file this worker has open and dirty (size, times, mode). */
void s3_file_setattr(struct s3fs *fs, struct s3_file *f, struct fuse_req *r,
		     const struct fuse_setattr_in *in);
/* SETATTR size without an open handle: a file of its own does the work. */
void s3_truncate(struct s3fs *fs, struct fuse_req *r, uint64_t node, uint64_t size);
/* The node's content changed or went: drop what the cache holds of it. */
void s3_cache_drop(struct s3fs *fs, uint64_t node);
/* Does a file this worker has not stored yet live in directory node dir? */
bool s3_dirty_in(struct s3fs *fs, uint64_t dir);
/* RENAME of a file with unstored changes: the upload under way (bound to
 * the old key) gives way to the staging copy; 0, or -EBUSY when there is
 * no whole copy to upload from (a file beyond staging_limit). */
int s3_file_rekey(struct s3fs *fs, uint64_t node);
/* The same for every file whose upload goes below prefix (a directory's
 * RENAME). */
int s3_files_rekey_under(struct s3fs *fs, const char *prefix);
/* UNLINK / RENAME over a file this worker has dirty: forget its changes. */
void s3_file_discard(struct s3fs *fs, uint64_t node);

#endif
