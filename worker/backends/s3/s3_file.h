/*
 * s3_file.h - what the S3 back end's open-file code shares among its
 * files: s3_file.c (open files, their work queue, WRITE, truncation and
 * the operations), s3_upload.c (multipart uploads, staging files filled
 * from the object, the commit that makes the changes the object) and
 * s3_cache.c (the read cache).
 * Runs in: the S3 worker, loop thread only.
 */
#ifndef BH_S3_FILE_H
#define BH_S3_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "s3_fs.h"

#define S3_MAX_PARTS  10000 /* S3's limit */
#define S3_OBJECT_MAX (5ull << 40)

enum s3_work_kind {
	S3_W_WRITE = 1,
	S3_W_READ,
	S3_W_COMMIT,
	S3_W_SETATTR,
	S3_W_RELEASE,
	S3_W_TRUNC
};

/* What a commit's end answers: its own request's error, or a RELEASE (which
 * is then carried out), or the attributes (a truncation without a handle). */
enum s3_after { S3_AFTER_ERR = 0, S3_AFTER_RELEASE, S3_AFTER_ATTR };

struct s3_work {
	enum s3_work_kind w_kind;
	enum s3_after w_after;
	struct fuse_req *w_r;
	uint64_t w_fh, w_off;
	uint32_t w_size;
	struct fuse_setattr_in w_set;
	struct s3_work *w_next;
};

struct s3_file {
	struct s3fs *f_fs;
	uint64_t f_node;
	unsigned f_refs; /* handles, and internal work */
	uint64_t f_size;
	struct s3_attr f_attr; /* what goes into the metadata */
	char f_etag[128];      /* the stored object's, for the cache */
	bool f_dirty;
	int f_err; /* an upload failed: the next FLUSH or FSYNC says so */
	/* staging */
	int f_stage;
	uint64_t f_staged; /* bytes accounted to s_staged */
	bool f_full;	   /* the staging file holds the whole content */
	/* streaming */
	bool f_stream;
	char *f_buf;
	uint64_t f_buf_off;
	size_t f_buf_len;
	char f_upload[512];
	char f_upload_key[S3_KEY_MAX + 2]; /* where it goes: fixed when it begins */
	bool f_creating;
	bool f_abandon; /* abort the upload being created as soon as it is */
	unsigned f_nparts, f_parts_busy;
	char **f_etags;
	struct s3_part *f_parked; /* parts waiting for the upload's id */
	/* staging-file upload and loading */
	uint64_t f_next_off; /* where the next part or range starts */
	unsigned f_loads;    /* ranged GETs in flight */
	bool f_loading, f_committing;
	int f_commit_err;
	struct s3_work *f_cur; /* the work that made us busy */
	/* queue */
	struct s3_work *f_q, **f_qtail;
	/* reading */
	uint64_t f_ra_next, f_ra_win;
	LIST_ENTRY(s3_file) f_link; /* s_dirty or s_open */
	bool f_listed_dirty;
	LIST_ENTRY(s3_file) f_all;
};

/* ---- s3_file.c ---- */

int s3_stage_open(struct s3_file *f);
void s3_stage_drop(struct s3_file *f);
int s3_stage_grow(struct s3_file *f, uint64_t end);
/* One reference less: the file goes when nothing holds it any more. */
void s3_file_unref(struct s3_file *f);
/* Run the queued work that can run now. */
void s3_file_kick(struct s3_file *f);
/* Put w back at the head of the queue (it waits for a load). */
void s3_work_again(struct s3_file *f, struct s3_work *w);
/* The end of w: its answer (or what it was waiting to do, w_after). */
void s3_work_finish(struct s3_file *f, struct s3_work *w, int err);

/* The part being filled, out of the file (NULL if none), or dropped. */
char *s3_buf_take(struct s3_file *f);
void s3_buf_drop(struct s3_file *f);

/* ---- s3_upload.c ---- */

void s3_parts_free(struct s3_file *f);
/* Abort the multipart upload under way, if any (retried until taken). */
void s3_upload_abort(struct s3_file *f);
/* The next part of f (data taken over); the upload begins with the first. */
int s3_part_send(struct s3_file *f, char *data, size_t len);
/* Fetch the object into a staging file, then run w again: 0 (w is kept),
 * or -errno (w is the caller's to answer). */
int s3_load(struct s3_file *f, struct s3_work *w);
/* FLUSH, FSYNC, a RELEASE's or a truncation's commit. */
void s3_do_commit(struct s3_file *f, struct s3_work *w);
/* Move a load or a commit on (again when there is room: s3_files_wake). */
void s3_load_more(struct s3_file *f);
void s3_commit_advance(struct s3_file *f);

/* ---- s3_cache.c ---- */

int s3_cache_init(struct s3fs *fs);
void s3_cache_free(struct s3fs *fs);
/* READ of a file without unstored changes, through the cache. */
void s3_read_cached(struct s3_file *f, struct fuse_req *r, uint64_t off, uint32_t size);

#endif
