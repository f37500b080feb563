/*
 * s3_file.c - open files of the S3 back end.
 * Runs in: the S3 worker, loop thread.
 *
 * Reading: ranged GETs of S3_CHUNK bytes into a cache bounded by
 * cache_size (least recently used chunks go first), each chunk tied to the
 * object's ETag (If-Match), with a read-ahead window that doubles up to
 * readahead while reads stay sequential.
 *
 * Writing: an object can only be stored whole, so changes collect here
 * and go to the store when the guest flushes, fsyncs or closes; until then
 * the old object stays as it was, and an upload that fails leaves it so
 * (the multipart upload is aborted) and fails that FLUSH or FSYNC.
 *   - A file written in order from its start (created, truncated, or
 *     empty) streams: each part_size of data goes out as a part of a
 *     multipart upload while the guest writes on (at most S3_PARTS_AHEAD
 *     parts in flight, then WRITE waits), the rest at the end; so a file
 *     of any size takes part_size x S3_PARTS_AHEAD of memory.
 *   - Any other write (at an earlier offset, into an existing object) goes
 *     into a staging file: an unnamed file (O_TMPFILE) in the staging
 *     directory the parent opened for us, holding the whole content
 *     (the object is fetched into it first), uploaded from there. A
 *     streaming file keeps a copy in one too while it fits, so that it
 *     can still be read back and rewritten anywhere before it is closed.
 *     Staging files of this worker take at most staging_limit bytes;
 *     beyond that a write that needs one fails with ENOSPC.
 * One state per node (struct s3_file) serves every handle this worker
 * opened on it, so a reader sees what a writer of this guest wrote before
 * it is stored. Requests on a file that must not overlap (writes, flushes,
 * truncation, reads of unstored data) run one after the other from its
 * queue.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "s3_fs.h"
#include "s3_xml.h"

#define S3_CHUNK_BUCKETS 4096
#define S3_MAX_PARTS	 10000 /* S3's limit */
#define S3_OBJECT_MAX	 (5ull << 40)
#define S3_LOAD_AHEAD	 4 /* ranged GETs in flight while a staging file fills */
#define S3_PUT_MAX	 (5ull << 30)

/* ---- the read cache ---- */

enum { S3_CH_FETCHING = 1, S3_CH_READY };

struct s3_rd;

struct s3_cwait {
	struct s3_rd *w_rd;
	struct s3_cwait *w_next;
};

struct s3_chunk {
	struct s3fs *c_fs;
	uint64_t c_node, c_index;
	char c_etag[128];
	char *c_data;
	size_t c_len;
	int c_state;
	unsigned c_pins;
	bool c_cached; /* in the hash and the LRU list */
	struct s3_cwait *c_waiters;
	struct s3_req c_q;
	char c_key[S3_KEY_MAX + 2];
	char c_range[64];
	char c_ifmatch[132];
	struct s3_chunk *c_hnext;
	TAILQ_ENTRY(s3_chunk) c_lru;
};

/* A READ waiting for chunks. */
struct s3_rd {
	struct fuse_req *rd_r;
	uint64_t rd_off;
	size_t rd_len;
	unsigned rd_missing;
	int rd_err;
	unsigned rd_nch;
	struct s3_chunk *rd_ch[];
};

/* ---- open files ---- */

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

struct s3_part {
	struct s3_file *p_file;
	unsigned p_no;
	char *p_data;
	size_t p_len;
	struct s3_req p_q;
	char p_key[S3_KEY_MAX + 2];
	char p_num[16];
	struct s3_part *p_next;
};

struct s3_load {
	struct s3_file *l_file;
	uint64_t l_off;
	size_t l_len;
	char *l_data;
	struct s3_req l_q;
	char l_key[S3_KEY_MAX + 2];
	char l_range[64];
};

static LIST_HEAD(, s3_file) s3_open_files = LIST_HEAD_INITIALIZER(s3_open_files);
static uint64_t *s3_fh_ids; /* by handle slot: the id s_files[slot] answers to */

static void s3_file_kick(struct s3_file *f);
static void s3_commit_advance(struct s3_file *f);
static void s3_work_finish(struct s3_file *f, struct s3_work *w, int err);

int s3_files_init(struct s3fs *fs)
{
	uint64_t chunks = fs->s_cfg.sc_cache_size / S3_CHUNK,
		 ahead = fs->s_cfg.sc_readahead / S3_CHUNK + 4;

	fs->s_files = calloc(NT_MAX_FHS, sizeof(*fs->s_files));
	fs->s_dirs = calloc(NT_MAX_FHS, sizeof(*fs->s_dirs));
	fs->s_chunk_hash = calloc(S3_CHUNK_BUCKETS, sizeof(*fs->s_chunk_hash));
	s3_fh_ids = calloc(NT_MAX_FHS, sizeof(*s3_fh_ids));
	/* never fewer chunks than one read-ahead window and the reads it serves */
	fs->s_max_chunks = chunks > ahead ? chunks : ahead;
	return fs->s_files && fs->s_dirs && fs->s_chunk_hash && s3_fh_ids ? 0 : -ENOMEM;
}

void s3_files_free(struct s3fs *fs)
{
	struct s3_chunk *c;

	while ((c = TAILQ_FIRST(&fs->s_lru))) {
		TAILQ_REMOVE(&fs->s_lru, c, c_lru);
		free(c->c_data);
		free(c);
	}
	free(fs->s_files);
	free(fs->s_chunk_hash);
	free(s3_fh_ids);
	fs->s_files = NULL;
	fs->s_chunk_hash = NULL;
	s3_fh_ids = NULL;
}

/* ---- the cache ---- */

static size_t s3_chunk_bucket(uint64_t node, uint64_t index)
{
	return (size_t)((node * 0x9e3779b97f4a7c15ull) ^ index) % S3_CHUNK_BUCKETS;
}

static void s3_chunk_unhash(struct s3fs *fs, struct s3_chunk *c)
{
	struct s3_chunk **pp = &fs->s_chunk_hash[s3_chunk_bucket(c->c_node, c->c_index)];

	if (!c->c_cached)
		return;
	while (*pp && *pp != c)
		pp = &(*pp)->c_hnext;
	if (*pp)
		*pp = c->c_hnext;
	TAILQ_REMOVE(&fs->s_lru, c, c_lru);
	c->c_cached = false;
	fs->s_nchunks--;
}

/* Free c if nothing holds it any more. */
static void s3_chunk_put(struct s3_chunk *c)
{
	if (c->c_cached || c->c_pins || c->c_state == S3_CH_FETCHING)
		return;
	s3_req_reset(&c->c_q);
	free(c->c_data);
	free(c);
}

static void s3_cache_trim(struct s3fs *fs)
{
	struct s3_chunk *c, *next;

	for (c = TAILQ_FIRST(&fs->s_lru); c && fs->s_nchunks > fs->s_max_chunks; c = next) {
		next = TAILQ_NEXT(c, c_lru);
		if (c->c_pins || c->c_state == S3_CH_FETCHING)
			continue;
		s3_chunk_unhash(fs, c);
		s3_chunk_put(c);
	}
}

void s3_cache_drop(struct s3fs *fs, uint64_t node)
{
	struct s3_chunk *c, *next;

	for (c = TAILQ_FIRST(&fs->s_lru); c; c = next) {
		next = TAILQ_NEXT(c, c_lru);
		if (c->c_node == node) {
			s3_chunk_unhash(fs, c);
			s3_chunk_put(c);
		}
	}
}

static struct s3_chunk *s3_chunk_find(struct s3fs *fs, uint64_t node, uint64_t index,
				      const char *etag)
{
	struct s3_chunk *c = fs->s_chunk_hash[s3_chunk_bucket(node, index)];

	for (; c; c = c->c_hnext)
		if (c->c_node == node && c->c_index == index) {
			if (strcmp(c->c_etag, etag) != 0) {
				/* an older version of the object */
				s3_chunk_unhash(fs, c);
				s3_chunk_put(c);
				return NULL;
			}
			TAILQ_REMOVE(&fs->s_lru, c, c_lru);
			TAILQ_INSERT_TAIL(&fs->s_lru, c, c_lru);
			return c;
		}
	return NULL;
}

static void s3_rd_finish(struct s3_rd *rd)
{
	struct iovec *iov;
	unsigned n;
	size_t want = rd->rd_len, got = 0, have;

	if (rd->rd_err == 0 && want) {
		have = be_req_data_iov(rd->rd_r, want, &iov, &n);
		if (!iov) {
			rd->rd_err = -ENOMEM;
		} else {
			uint64_t pos = rd->rd_off;
			unsigned vi = 0;
			size_t vo = 0;

			while (got < have) {
				struct s3_chunk *c =
				    rd->rd_ch[pos / S3_CHUNK - rd->rd_ch[0]->c_index];
				size_t co = (size_t)(pos % S3_CHUNK), take;

				if (co >= c->c_len)
					break; /* the object is shorter than it was said to be */
				take = c->c_len - co;
				if (take > have - got)
					take = have - got;
				if (take > iov[vi].iov_len - vo)
					take = iov[vi].iov_len - vo;
				memcpy((char *)iov[vi].iov_base + vo, c->c_data + co, take);
				got += take;
				pos += take;
				vo += take;
				if (vo == iov[vi].iov_len) {
					vi++;
					vo = 0;
				}
			}
		}
	}
	if (rd->rd_err < 0)
		be_reply_err(rd->rd_r, rd->rd_err);
	else
		be_reply_data(rd->rd_r, got);
	for (unsigned i = 0; i < rd->rd_nch; i++) {
		rd->rd_ch[i]->c_pins--;
		s3_chunk_put(rd->rd_ch[i]);
	}
	free(rd);
}

static void s3_chunk_done(struct s3_req *q)
{
	struct s3_chunk *c = q->arg;
	struct s3fs *fs = c->c_fs;
	struct s3_cwait *w;
	int err = s3_errno(q, "GET", c->c_key);

	if (err == 0 && q->reply_len != c->c_len && q->reply_len < c->c_len)
		c->c_len = q->reply_len; /* shorter than the size we knew: it changed */
	c->c_state = S3_CH_READY;
	if (err < 0)
		s3_chunk_unhash(fs, c);
	while ((w = c->c_waiters)) {
		c->c_waiters = w->w_next;
		if (err < 0 && w->w_rd->rd_err == 0)
			w->w_rd->rd_err = err;
		if (--w->w_rd->rd_missing == 0)
			s3_rd_finish(w->w_rd);
		free(w);
	}
	s3_chunk_put(c);
	s3_cache_trim(fs);
}

/* The chunk of node at index, cached or on its way: NULL when out of memory. */
static struct s3_chunk *s3_chunk_get(struct s3fs *fs, uint64_t node, const char *key,
				     const char *etag, uint64_t index, uint64_t size)
{
	struct s3_chunk *c = s3_chunk_find(fs, node, index, etag);
	uint64_t start = index * S3_CHUNK, end = start + S3_CHUNK;
	size_t b;
	int err;

	if (c)
		return c;
	if (end > size)
		end = size;
	if (!(c = calloc(1, sizeof(*c))) || !(c->c_data = malloc(S3_CHUNK))) {
		free(c);
		return NULL;
	}
	c->c_fs = fs;
	c->c_node = node;
	c->c_index = index;
	c->c_len = (size_t)(end - start);
	c->c_state = S3_CH_FETCHING;
	snprintf(c->c_etag, sizeof(c->c_etag), "%s", etag);
	snprintf(c->c_key, sizeof(c->c_key), "%s", key);
	snprintf(c->c_range, sizeof(c->c_range), "bytes=%" PRIu64 "-%" PRIu64, start, end - 1);
	c->c_q.method = "GET";
	c->c_q.key = c->c_key;
	c->c_q.headers[c->c_q.nheaders++] = (struct s3_pair){"range", c->c_range};
	if (etag[0]) {
		snprintf(c->c_ifmatch, sizeof(c->c_ifmatch), "%s", etag);
		c->c_q.headers[c->c_q.nheaders++] = (struct s3_pair){"if-match", c->c_ifmatch};
	}
	c->c_q.sink = c->c_data;
	c->c_q.sink_cap = S3_CHUNK;
	c->c_q.done = s3_chunk_done;
	c->c_q.arg = c;
	b = s3_chunk_bucket(node, index);
	c->c_hnext = fs->s_chunk_hash[b];
	fs->s_chunk_hash[b] = c;
	TAILQ_INSERT_TAIL(&fs->s_lru, c, c_lru);
	c->c_cached = true;
	fs->s_nchunks++;
	c->c_pins++; /* until submitted */
	if ((err = s3_submit(fs->s_cl, &c->c_q)) < 0) {
		c->c_q.err = err;
		c->c_pins--;
		s3_chunk_done(&c->c_q);
		/* the caller sees it failed through its state: unhashed */
		return NULL;
	}
	c->c_pins--;
	s3_cache_trim(fs);
	return c;
}

/* Read a clean file through the cache. */
static void s3_read_cached(struct s3_file *f, struct fuse_req *r, uint64_t off, uint32_t size)
{
	struct s3fs *fs = f->f_fs;
	char key[S3_KEY_MAX + 2];
	uint64_t end, first, last, ra_end;
	struct s3_rd *rd;
	int err;

	if (off >= f->f_size || size == 0) {
		be_reply_data(r, 0);
		return;
	}
	end = off + size < f->f_size ? off + size : f->f_size;
	if ((err = s3_node_key(fs, f->f_node, false, key, sizeof(key), NULL)) < 0) {
		be_reply_err(r, err);
		return;
	}
	first = off / S3_CHUNK;
	last = (end - 1) / S3_CHUNK;
	if (!(rd = calloc(1, sizeof(*rd) + (last - first + 1) * sizeof(rd->rd_ch[0])))) {
		be_reply_err(r, -ENOMEM);
		return;
	}
	rd->rd_r = r;
	rd->rd_off = off;
	rd->rd_len = (size_t)(end - off);
	rd->rd_missing = 1; /* ours, until every chunk is asked for */
	for (uint64_t i = first; i <= last; i++) {
		struct s3_chunk *c = s3_chunk_get(fs, f->f_node, key, f->f_etag, i, f->f_size);
		struct s3_cwait *w;

		if (!c) {
			rd->rd_err = rd->rd_err ? rd->rd_err : -EIO;
			break;
		}
		c->c_pins++;
		rd->rd_ch[rd->rd_nch++] = c;
		if (c->c_state == S3_CH_FETCHING) {
			if (!(w = calloc(1, sizeof(*w)))) {
				rd->rd_err = -ENOMEM;
				break;
			}
			w->w_rd = rd;
			w->w_next = c->c_waiters;
			c->c_waiters = w;
			rd->rd_missing++;
		}
	}
	/* read-ahead: sequential reads widen the window, others close it */
	if (off == f->f_ra_next && off != 0) {
		f->f_ra_win = f->f_ra_win ? f->f_ra_win * 2 : S3_CHUNK;
		if (f->f_ra_win > fs->s_cfg.sc_readahead)
			f->f_ra_win = fs->s_cfg.sc_readahead;
	} else if (off == 0) {
		f->f_ra_win = S3_CHUNK;
	} else {
		f->f_ra_win = 0;
	}
	f->f_ra_next = end;
	ra_end = end + f->f_ra_win < f->f_size ? end + f->f_ra_win : f->f_size;
	for (uint64_t i = last + 1; ra_end && i <= (ra_end - 1) / S3_CHUNK; i++)
		if (!s3_chunk_get(fs, f->f_node, key, f->f_etag, i, f->f_size))
			break;
	if (--rd->rd_missing == 0)
		s3_rd_finish(rd);
}

/* ---- files ---- */

static struct s3_file *s3_file_by_fh(struct s3fs *fs, uint64_t fh)
{
	size_t slot = fh & (NT_MAX_FHS - 1);

	return s3_fh_ids && s3_fh_ids[slot] == fh ? fs->s_files[slot] : NULL;
}

static struct s3_file *s3_file_by_node(uint64_t node)
{
	struct s3_file *f;

	LIST_FOREACH(f, &s3_open_files, f_all)
	if (f->f_node == node)
		return f;
	return NULL;
}

struct s3_file *s3_file_dirty(struct s3fs *fs, uint64_t node)
{
	struct s3_file *f = s3_file_by_node(node);

	(void)fs;
	return f && (f->f_dirty || f->f_committing) ? f : NULL;
}

bool s3_dirty_in(struct s3fs *fs, uint64_t dir)
{
	struct s3_file *f;
	uint64_t p;
	char name[NT_NAME_MAX + 1];

	LIST_FOREACH(f, &s3_open_files, f_all)
	if ((f->f_dirty || f->f_committing) && nt_node_name(fs->s_nt, f->f_node, &p, name) == 0 &&
	    p == dir)
		return true;
	return false;
}

void s3_file_attr(const struct s3_file *f, struct s3_attr *a)
{
	*a = f->f_attr;
	a->a_size = f->f_size;
}

static struct s3_file *s3_file_new(struct s3fs *fs, uint64_t node, const struct s3_attr *a)
{
	struct s3_file *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->f_fs = fs;
	f->f_node = node;
	f->f_attr = *a;
	f->f_size = a->a_size;
	snprintf(f->f_etag, sizeof(f->f_etag), "%s", a->a_etag);
	f->f_stage = -1;
	f->f_qtail = &f->f_q;
	/* an empty file is written from its start, like a new one */
	f->f_stream = f->f_size == 0;
	LIST_INSERT_HEAD(&s3_open_files, f, f_all);
	return f;
}

static void s3_stage_drop(struct s3_file *f)
{
	if (f->f_stage >= 0)
		close(f->f_stage);
	f->f_stage = -1;
	f->f_fs->s_staged -= f->f_staged;
	f->f_staged = 0;
	f->f_full = false;
}

/* Account growth of the staging file to end: 0 or -ENOSPC. */
static int s3_stage_grow(struct s3_file *f, uint64_t end)
{
	struct s3fs *fs = f->f_fs;

	if (end <= f->f_staged)
		return 0;
	if (fs->s_staged + (end - f->f_staged) > fs->s_cfg.sc_staging_limit)
		return -ENOSPC;
	fs->s_staged += end - f->f_staged;
	f->f_staged = end;
	return 0;
}

/* A staging file, empty: 0 or -errno. */
static int s3_stage_open(struct s3_file *f)
{
	struct s3fs *fs = f->f_fs;

	if (f->f_stage >= 0)
		return 0;
	if (fs->s_stage_fd < 0)
		return -ENOSPC;
	f->f_stage = openat(fs->s_stage_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (f->f_stage < 0) {
		int err = -errno;

		log_warnx("S3: a staging file: %s", strerror(-err));
		return err == -ENOSPC || err == -EDQUOT ? -ENOSPC : -EIO;
	}
	return 0;
}

static void s3_file_set_dirty(struct s3_file *f)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	f->f_attr.a_mtime = now.tv_sec;
	f->f_attr.a_mtime_ns = (uint32_t)now.tv_nsec;
	f->f_dirty = true;
}

static void s3_parts_free(struct s3_file *f)
{
	for (unsigned i = 0; i < f->f_nparts; i++)
		free(f->f_etags[i]);
	free(f->f_etags);
	f->f_etags = NULL;
	f->f_nparts = 0;
}

static void s3_upload_abort(struct s3_file *f);

static void s3_file_free(struct s3_file *f)
{
	struct s3_work *w;

	while ((w = f->f_q)) {
		f->f_q = w->w_next;
		be_reply_err(w->w_r, -EBADF);
		free(w);
	}
	s3_upload_abort(f);
	s3_stage_drop(f);
	s3_parts_free(f);
	free(f->f_buf);
	LIST_REMOVE(f, f_all);
	free(f);
}

/* Let the file go when no handle, work or exchange needs it any more. */
static void s3_file_unref(struct s3_file *f)
{
	if (--f->f_refs == 0 && f->f_parts_busy == 0 && f->f_loads == 0 && !f->f_creating &&
	    !f->f_committing)
		s3_file_free(f);
}

int s3_file_rekey(struct s3fs *fs, uint64_t node)
{
	struct s3_file *f = s3_file_by_node(node);

	(void)fs;
	if (!f || !f->f_stream || (!f->f_upload[0] && !f->f_creating))
		return 0;
	if (!f->f_full || f->f_committing)
		return -EBUSY; /* its parts are only in the upload under way */
	/* the staging copy is whole: it goes to the new key at the flush */
	if (f->f_creating)
		f->f_abandon = true;
	s3_upload_abort(f);
	free(f->f_buf);
	f->f_buf = NULL;
	f->f_buf_len = 0;
	f->f_buf_off = 0;
	f->f_stream = false;
	return 0;
}

int s3_files_rekey_under(struct s3fs *fs, const char *prefix)
{
	size_t plen = strlen(prefix);
	struct s3_file *f;
	int err;

	LIST_FOREACH(f, &s3_open_files, f_all) {
		if (!f->f_upload[0] && !f->f_creating)
			continue;
		if (strncmp(f->f_upload_key, prefix, plen) == 0 &&
		    (err = s3_file_rekey(fs, f->f_node)) < 0)
			return err;
	}
	return 0;
}

void s3_file_discard(struct s3fs *fs, uint64_t node)
{
	struct s3_file *f = s3_file_by_node(node);

	(void)fs;
	if (!f)
		return;
	if (f->f_creating)
		f->f_abandon = true;
	s3_upload_abort(f);
	f->f_dirty = false;
	f->f_err = 0;
}

/* ---- uploads ---- */

/*
 * Aborting a multipart upload: its parts take room in the bucket until it
 * is done, so an abort the gateway did not take (it was down) is tried
 * again, every S3_ABORT_RETRY_S, for as long as the worker lives.
 */
#define S3_ABORT_RETRY_S 5

struct s3_abort {
	struct s3fs *a_fs;
	struct s3_req a_q;
	struct event *a_timer;
	unsigned a_tries;
	char a_key[S3_KEY_MAX + 2];
	char a_id[512];
};

static void s3_abort_send(struct s3_abort *a);

static void s3_abort_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	s3_abort_send(arg);
}

static void s3_abort_done(struct s3_req *q)
{
	struct s3_abort *a = q->arg;
	struct timeval tv = {S3_ABORT_RETRY_S, 0};
	int err = s3_errno(q, "ABORT upload", a->a_key);

	s3_req_reset(q);
	if (err == 0 || err == -ENOENT || (a->a_timer && evtimer_add(a->a_timer, &tv) == 0)) {
		if (err == 0 || err == -ENOENT) {
			if (a->a_tries > 1)
				log_info("S3: multipart upload of %s aborted at last", a->a_key);
			if (a->a_timer)
				event_free(a->a_timer);
			free(a);
		} else if (a->a_tries == 1) {
			log_warnx("S3: multipart upload of %s still open; trying again every %d s",
				  a->a_key, S3_ABORT_RETRY_S);
		}
		return;
	}
	log_warnx("S3: multipart upload %s of %s left open", a->a_id, a->a_key);
	if (a->a_timer)
		event_free(a->a_timer);
	free(a);
}

static void s3_abort_send(struct s3_abort *a)
{
	int err;

	memset(&a->a_q, 0, sizeof(a->a_q));
	a->a_q.method = "DELETE";
	a->a_q.key = a->a_key;
	a->a_q.query[a->a_q.nquery++] = (struct s3_pair){"uploadId", a->a_id};
	a->a_q.reply_max = 64 << 10;
	a->a_q.done = s3_abort_done;
	a->a_q.arg = a;
	a->a_tries++;
	if ((err = s3_submit(a->a_fs->s_cl, &a->a_q)) < 0) {
		a->a_q.err = err;
		s3_abort_done(&a->a_q);
	}
}

/* Abort the multipart upload under way, if any (nothing of it stays). */
static void s3_upload_abort(struct s3_file *f)
{
	struct s3_abort *a;

	if (!f->f_upload[0])
		return;
	if (!(a = calloc(1, sizeof(*a)))) {
		log_warnx("S3: multipart upload %s of %s left open (out of memory)", f->f_upload,
			  f->f_upload_key);
	} else {
		a->a_fs = f->f_fs;
		a->a_timer = evtimer_new(f->f_fs->s_env.base, s3_abort_timer, a);
		snprintf(a->a_key, sizeof(a->a_key), "%s", f->f_upload_key);
		snprintf(a->a_id, sizeof(a->a_id), "%s", f->f_upload);
		s3_abort_send(a);
	}
	f->f_upload[0] = '\0';
	s3_parts_free(f);
}

/* An exchange of f's ended: let f go if nothing else holds it, else
 * move its commit on and run what waits. */
static void s3_file_exchanged(struct s3_file *f)
{
	if (f->f_refs == 0) {
		f->f_refs++;
		s3_file_unref(f);
		return;
	}
	if (f->f_committing)
		s3_commit_advance(f);
	s3_file_kick(f);
}

static void s3_part_free(struct s3_part *p)
{
	s3_req_reset(&p->p_q);
	free(p->p_data);
	free(p);
}

static void s3_part_done(struct s3_req *q)
{
	struct s3_part *p = q->arg;
	struct s3_file *f = p->p_file;
	int err = s3_errno(q, "PUT part", p->p_key);

	f->f_parts_busy--;
	if (err == 0 && !q->etag[0]) {
		log_warnx("S3 PUT part %u of %s: no ETag", p->p_no, p->p_key);
		err = -EIO;
	}
	if (err == 0 && f->f_upload[0] && p->p_no <= f->f_nparts && !f->f_etags[p->p_no - 1] &&
	    !(f->f_etags[p->p_no - 1] = strdup(q->etag)))
		err = -ENOMEM;
	if (err < 0 && f->f_err == 0)
		f->f_err = err;
	s3_part_free(p);
	s3_file_exchanged(f);
}

static void s3_part_submit(struct s3_part *p)
{
	struct s3_file *f = p->p_file;
	int err;

	snprintf(p->p_num, sizeof(p->p_num), "%u", p->p_no);
	memset(&p->p_q, 0, sizeof(p->p_q));
	p->p_q.method = "PUT";
	p->p_q.key = p->p_key;
	p->p_q.query[p->p_q.nquery++] = (struct s3_pair){"partNumber", p->p_num};
	p->p_q.query[p->p_q.nquery++] = (struct s3_pair){"uploadId", f->f_upload};
	p->p_q.body = p->p_data;
	p->p_q.body_len = p->p_len;
	p->p_q.reply_max = 64 << 10;
	p->p_q.done = s3_part_done;
	p->p_q.arg = p;
	if ((err = s3_submit(f->f_fs->s_cl, &p->p_q)) < 0) {
		p->p_q.err = err;
		s3_part_done(&p->p_q);
	}
}

struct s3_create_up {
	struct s3_op *u_op;
	struct s3_file *u_file;
};

static void s3_upload_created(struct s3_op *o)
{
	struct s3_file *f = o->o_arg;
	struct s3_req *q = &o->o_q[0];
	int err = s3_errno(q, "CREATE upload", o->o_key[0]);
	struct s3_part *p;

	f->f_creating = false;
	if (err == 0 && (!q->reply || s3_parse_upload_id(q->reply, q->reply_len, f->f_upload,
							 sizeof(f->f_upload)) < 0)) {
		log_warnx("S3 CREATE upload %s: no upload id in the answer", o->o_key[0]);
		err = -EIO;
	}
	if (err < 0) {
		f->f_upload[0] = '\0';
		if (f->f_err == 0)
			f->f_err = err;
	} else {
		log_debug("S3: multipart upload of %s begun", o->o_key[0]);
	}
	if (err == 0 && f->f_abandon) {
		f->f_abandon = false;
		s3_upload_abort(f);
		err = -ECANCELED; /* its parked parts go */
	}
	while ((p = f->f_parked)) {
		f->f_parked = p->p_next;
		if (err < 0) {
			f->f_parts_busy--;
			s3_part_free(p);
		} else {
			s3_part_submit(p);
		}
	}
	s3_op_free(o);
	s3_file_exchanged(f);
}

/* Send part p_no of f (data taken over). The upload is created first if
 * there is none yet; its parts wait for its id. */
static int s3_part_send(struct s3_file *f, char *data, size_t len)
{
	struct s3_part *p;
	struct s3_op *o;
	struct s3_req *q;
	char **e;
	int err;

	if (f->f_nparts == S3_MAX_PARTS) {
		free(data);
		return -EFBIG;
	}
	if (!(p = calloc(1, sizeof(*p))) ||
	    !(e = realloc(f->f_etags, (f->f_nparts + 1) * sizeof(*e)))) {
		free(p);
		free(data);
		return -ENOMEM;
	}
	f->f_etags = e;
	e[f->f_nparts] = NULL;
	p->p_file = f;
	p->p_no = ++f->f_nparts;
	p->p_data = data;
	p->p_len = len;
	if (f->f_upload[0] || f->f_creating)
		snprintf(p->p_key, sizeof(p->p_key), "%s", f->f_upload_key);
	else if ((err = s3_node_key(f->f_fs, f->f_node, false, p->p_key, sizeof(p->p_key),
				    NULL)) < 0) {
		s3_part_free(p);
		return err;
	}
	f->f_parts_busy++;
	log_debug("S3: part %u of %s, %zu bytes", p->p_no, p->p_key, len);
	if (f->f_upload[0]) {
		s3_part_submit(p);
		return 0;
	}
	p->p_next = f->f_parked;
	f->f_parked = p;
	if (f->f_creating)
		return 0;
	if (!(o = s3_op_new(f->f_fs, NULL))) {
		f->f_parked = p->p_next;
		f->f_parts_busy--;
		s3_part_free(p);
		return -ENOMEM;
	}
	o->o_arg = f;
	f->f_creating = true;
	snprintf(f->f_upload_key, sizeof(f->f_upload_key), "%s", p->p_key);
	s3_op_hold(o, s3_upload_created);
	q = s3_op_req(o, 0, "POST", p->p_key);
	q->query[q->nquery++] = (struct s3_pair){"uploads", ""};
	s3_attr_headers(o, q, 0, &f->f_attr);
	s3_op_send(o, 0);
	s3_op_release(o);
	return 0;
}

/* ---- the work queue ---- */

static void s3_work_run(struct s3_file *f, struct s3_work *w);

static bool s3_work_can(const struct s3_file *f, const struct s3_work *w)
{
	if (f->f_loading || f->f_committing)
		return false;
	if (w->w_kind == S3_W_WRITE && f->f_stream && f->f_parts_busy >= S3_PARTS_AHEAD)
		return false;
	return true;
}

static void s3_file_kick(struct s3_file *f)
{
	struct s3_work *w;

	while ((w = f->f_q) && s3_work_can(f, w)) {
		if (!(f->f_q = w->w_next))
			f->f_qtail = &f->f_q;
		s3_work_run(f, w);
	}
}

static void s3_work_add(struct s3_file *f, enum s3_work_kind kind, struct fuse_req *r, uint64_t fh,
			uint64_t off, uint32_t size, const struct fuse_setattr_in *set)
{
	struct s3_work *w = calloc(1, sizeof(*w));

	if (!w) {
		be_reply_err(r, -ENOMEM);
		return;
	}
	w->w_kind = kind;
	w->w_r = r;
	w->w_fh = fh;
	w->w_off = off;
	w->w_size = size;
	if (set)
		w->w_set = *set;
	*f->f_qtail = w;
	f->f_qtail = &w->w_next;
	s3_file_kick(f);
}

/* Put w back at the head of the queue (it waits for a load). */
static void s3_work_again(struct s3_file *f, struct s3_work *w)
{
	w->w_next = f->f_q;
	f->f_q = w;
	if (!w->w_next)
		f->f_qtail = &w->w_next;
}

/* ---- loading an object into a staging file ---- */

static void s3_load_more(struct s3_file *f);

static void s3_load_done(struct s3_req *q)
{
	struct s3_load *l = q->arg;
	struct s3_file *f = l->l_file;
	int err = s3_errno(q, "GET", l->l_key);

	f->f_loads--;
	if (err == 0 && q->reply_len != l->l_len)
		err = -EIO; /* the object changed under us */
	if (err == 0 &&
	    pwrite(f->f_stage, l->l_data, l->l_len, (off_t)l->l_off) != (ssize_t)l->l_len) {
		log_warn("S3: staging file of %s", l->l_key);
		err = -EIO;
	}
	if (err < 0 && f->f_commit_err == 0)
		f->f_commit_err = err;
	s3_req_reset(q);
	free(l->l_data);
	free(l);
	s3_load_more(f);
}

/* Ranged GETs of the object into the staging file, S3_LOAD_AHEAD at once;
 * when all are in, the work that waited runs. */
static void s3_load_more(struct s3_file *f)
{
	struct s3fs *fs = f->f_fs;
	uint64_t step = fs->s_cfg.sc_part_size;

	while (f->f_commit_err == 0 && f->f_next_off < f->f_size && f->f_loads < S3_LOAD_AHEAD) {
		struct s3_load *l = calloc(1, sizeof(*l));
		uint64_t len = f->f_size - f->f_next_off < step ? f->f_size - f->f_next_off : step;
		int err;

		if (!l || !(l->l_data = malloc(len)) ||
		    s3_node_key(fs, f->f_node, false, l->l_key, sizeof(l->l_key), NULL) < 0) {
			if (l)
				free(l->l_data);
			free(l);
			f->f_commit_err = -EIO;
			break;
		}
		l->l_file = f;
		l->l_off = f->f_next_off;
		l->l_len = (size_t)len;
		snprintf(l->l_range, sizeof(l->l_range), "bytes=%" PRIu64 "-%" PRIu64, l->l_off,
			 l->l_off + len - 1);
		l->l_q.method = "GET";
		l->l_q.key = l->l_key;
		l->l_q.headers[l->l_q.nheaders++] = (struct s3_pair){"range", l->l_range};
		l->l_q.sink = l->l_data;
		l->l_q.sink_cap = l->l_len;
		l->l_q.done = s3_load_done;
		l->l_q.arg = l;
		f->f_next_off += len;
		f->f_loads++;
		if ((err = s3_submit(fs->s_cl, &l->l_q)) < 0) {
			l->l_q.err = err;
			s3_load_done(&l->l_q);
			return;
		}
	}
	if (f->f_loads > 0)
		return;
	if (f->f_next_off < f->f_size && f->f_commit_err == 0)
		return;
	/* done, or failed */
	f->f_loading = false;
	if (f->f_commit_err < 0) {
		struct s3_work *w = f->f_cur;

		log_warnx("S3: cannot fetch the object of node %" PRIu64 " to change it: %s",
			  f->f_node, strerror(-f->f_commit_err));
		s3_stage_drop(f);
		f->f_cur = NULL;
		if (w) {
			be_reply_err(w->w_r, f->f_commit_err);
			free(w);
		}
		f->f_commit_err = 0;
	} else {
		f->f_full = true;
		if (f->f_cur)
			s3_work_again(f, f->f_cur);
		f->f_cur = NULL;
	}
	s3_file_exchanged(f);
}

/* Make the staging file hold the whole content, then run w again: 0 (w
 * is kept), or -errno (w is the caller's to answer). */
static int s3_load(struct s3_file *f, struct s3_work *w)
{
	int err;

	if ((err = s3_stage_open(f)) < 0)
		return err;
	if (ftruncate(f->f_stage, 0) < 0 || (err = s3_stage_grow(f, f->f_size)) < 0) {
		if (err == 0)
			err = -EIO;
		s3_stage_drop(f);
		return err;
	}
	f->f_loading = true;
	f->f_cur = w;
	f->f_next_off = 0;
	f->f_commit_err = 0;
	s3_load_more(f);
	return 0;
}

/* ---- WRITE ---- */

/* Copy len bytes of guest memory at iov (from byte skip) to dst. */
static void s3_iov_copy(char *dst, const struct iovec *iov, unsigned n, size_t skip, size_t len)
{
	for (unsigned i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len)
			l = len;
		memcpy(dst, (const char *)iov[i].iov_base + skip, l);
		dst += l;
		len -= l;
		skip = 0;
	}
}

/* The bytes into the staging file at off: 0 or -errno. */
static int s3_stage_write(struct s3_file *f, const struct iovec *iov, unsigned n, uint64_t off,
			  size_t len)
{
	ssize_t w;
	int err;

	if ((err = s3_stage_grow(f, off + len)) < 0)
		return err;
	w = pwritev(f->f_stage, iov, (int)n, (off_t)off);
	if (w != (ssize_t)len) {
		log_warn("S3: staging file");
		return -EIO;
	}
	return 0;
}

/* Data in order, into the part being filled (and the staging copy). */
static int s3_stream_write(struct s3_file *f, const struct iovec *iov, unsigned n, uint64_t off,
			   size_t size)
{
	struct s3fs *fs = f->f_fs;
	size_t part = (size_t)fs->s_cfg.sc_part_size, done = 0;
	int err;

	if (f->f_full && s3_stage_write(f, iov, n, off, size) < 0) {
		/* no room for the copy: the file streams on without it */
		s3_stage_drop(f);
	}
	while (done < size) {
		size_t at = (size_t)(off + done - f->f_buf_off), take;

		if (!f->f_buf && !(f->f_buf = malloc(part)))
			return -ENOMEM;
		if (at > f->f_buf_len)
			memset(f->f_buf + f->f_buf_len, 0, at - f->f_buf_len);
		take = part - at < size - done ? part - at : size - done;
		s3_iov_copy(f->f_buf + at, iov, n, done, take);
		if (at + take > f->f_buf_len)
			f->f_buf_len = at + take;
		done += take;
		if (f->f_buf_len == part) {
			char *data = f->f_buf;

			f->f_buf = NULL;
			f->f_buf_off += part;
			f->f_buf_len = 0;
			if ((err = s3_part_send(f, data, part)) < 0)
				return err;
		}
	}
	return 0;
}

static void s3_do_write(struct s3_file *f, struct s3_work *w)
{
	struct s3fs *fs = f->f_fs;
	uint64_t off = w->w_off, end = off + w->w_size;
	struct iovec *iov;
	unsigned n;
	int err = 0;

	if (f->f_err < 0) {
		err = -EIO; /* the FLUSH or FSYNC that comes says what went wrong */
		goto out;
	}
	if (end > S3_OBJECT_MAX || end < off) {
		err = -EFBIG;
		goto out;
	}
	if (be_req_write_iov(w->w_r, w->w_size, &iov, &n) != w->w_size || !iov) {
		err = -ENOMEM;
		goto out;
	}
	if (f->f_stream && f->f_size == 0 && f->f_nparts == 0 && f->f_buf_len == 0 &&
	    f->f_buf_off == 0 && f->f_stage < 0 && fs->s_stage_fd >= 0 && s3_stage_open(f) == 0)
		f->f_full = true; /* the copy for reading back, while it fits */
	if (f->f_stream) {
		uint64_t part = fs->s_cfg.sc_part_size;

		if (off >= f->f_buf_off && off <= f->f_buf_off + f->f_buf_len &&
		    end <= f->f_buf_off + part * (S3_MAX_PARTS)) {
			err = s3_stream_write(f, iov, n, off, w->w_size);
			goto done;
		}
		if (!f->f_full) {
			log_warnx("S3: node %" PRIu64 ": a write at %" PRIu64 " behind the part "
				  "being filled (%" PRIu64 ") of a file larger than the staging "
				  "limit",
				  f->f_node, off, f->f_buf_off);
			err = -EIO;
			goto out;
		}
		/* out of order: the staging copy becomes the file */
		s3_upload_abort(f);
		free(f->f_buf);
		f->f_buf = NULL;
		f->f_buf_len = 0;
		f->f_buf_off = 0;
		f->f_stream = false;
	}
	if (!f->f_full) {
		if ((err = s3_load(f, w)) < 0) {
			if (err == -ENOSPC)
				log_warnx("S3: node %" PRIu64 ": staging limit of %" PRIu64
					  " bytes reached",
					  f->f_node, fs->s_cfg.sc_staging_limit);
			goto out;
		}
		return; /* runs again once loaded */
	}
	err = s3_stage_write(f, iov, n, off, w->w_size);
	if (err == -ENOSPC)
		log_warnx("S3: node %" PRIu64 ": staging limit of %" PRIu64 " bytes reached",
			  f->f_node, fs->s_cfg.sc_staging_limit);
done:
	if (err == 0) {
		if (end > f->f_size)
			f->f_size = end;
		s3_file_set_dirty(f);
	}
out:
	if (err < 0)
		be_reply_err(w->w_r, err);
	else
		be_reply_write(w->w_r, w->w_size);
	free(w);
}

/* ---- commit: the changes become the object ---- */

static void s3_commit_end(struct s3_file *f, int err)
{
	struct s3_work *w = f->f_cur;

	f->f_committing = false;
	f->f_cur = NULL;
	free(f->f_buf);
	f->f_buf = NULL;
	f->f_buf_len = 0;
	f->f_buf_off = 0;
	if (err < 0)
		s3_upload_abort(f);
	f->f_upload[0] = '\0';
	s3_parts_free(f);
	f->f_err = 0;
	f->f_dirty = false;
	/* what follows is written through the staging copy if there is a
	 * whole one, else the object is fetched first */
	f->f_stream = f->f_size == 0;
	if (err < 0)
		s3_stage_drop(f);
	s3_cache_drop(f->f_fs, f->f_node);
	f->f_refs++; /* the work's end may let the file go */
	if (w)
		s3_work_finish(f, w, err);
	s3_file_kick(f);
	s3_file_unref(f);
}

static void s3_completed(struct s3_op *o)
{
	struct s3_file *f = o->o_arg;
	struct s3_req *q = &o->o_q[0];
	int err = s3_errno(q, q->method, o->o_key[0]);
	char code[64];

	if (err == 0 && strcmp(q->method, "POST") == 0 &&
	    (!q->reply || s3_parse_done(q->reply, q->reply_len, code, sizeof(code)) < 0)) {
		log_warnx("S3 COMPLETE upload %s: failed after its 200: %s", o->o_key[0],
			  q->reply ? code : "no body");
		err = -EIO;
	}
	if (err == 0 && strcmp(q->method, "PUT") == 0)
		snprintf(f->f_etag, sizeof(f->f_etag), "%s", q->etag);
	else if (err == 0)
		f->f_etag[0] = '\0'; /* unknown until the next HEAD (the gateway may send none) */
	if (err == 0)
		f->f_upload[0] = '\0'; /* complete: nothing to abort */
	s3_op_free(o);
	s3_commit_end(f, err);
}

/* The whole content in one PUT (data taken over). */
static void s3_put_whole(struct s3_file *f, char *data, size_t len)
{
	struct s3_op *o = s3_op_new(f->f_fs, NULL);
	char key[S3_KEY_MAX + 2];
	struct s3_req *q;
	int err;

	if (!o || (err = s3_node_key(f->f_fs, f->f_node, false, key, sizeof(key), NULL)) < 0) {
		free(data);
		s3_op_free(o);
		s3_commit_end(f, o ? err : -ENOMEM);
		return;
	}
	o->o_arg = f;
	o->o_body = data;
	s3_op_hold(o, s3_completed);
	q = s3_op_req(o, 0, "PUT", key);
	q->body = data ? data : "";
	q->body_len = len;
	s3_attr_headers(o, q, 0, &f->f_attr);
	s3_op_send(o, 0);
	s3_op_release(o);
}

static void s3_complete_upload(struct s3_file *f)
{
	struct s3_op *o = s3_op_new(f->f_fs, NULL);
	const char *key = f->f_upload_key;
	struct s3_req *q;
	char *body;

	if (!o) {
		s3_commit_end(f, -ENOMEM);
		return;
	}
	if (!(body = s3_complete_body((const char *const *)f->f_etags, f->f_nparts))) {
		s3_op_free(o);
		s3_commit_end(f, -ENOMEM);
		return;
	}
	o->o_arg = f;
	o->o_body = body;
	snprintf(o->o_hdr[5], sizeof(o->o_hdr[5]), "%s", f->f_upload);
	s3_op_hold(o, s3_completed);
	q = s3_op_req(o, 0, "POST", key);
	q->query[q->nquery++] = (struct s3_pair){"uploadId", o->o_hdr[5]};
	q->body = body;
	q->body_len = strlen(body);
	s3_op_send(o, 0);
	s3_op_release(o);
}

/* Read len bytes of the staging file at off into a new buffer: NULL on failure. */
static char *s3_stage_read(struct s3_file *f, uint64_t off, size_t len)
{
	char *data = malloc(len ? len : 1);

	if (data && len && pread(f->f_stage, data, len, (off_t)off) != (ssize_t)len) {
		log_warn("S3: read the staging file");
		free(data);
		return NULL;
	}
	return data;
}

/*
 * Move the commit on: parts from the staging file while there is room,
 * the last part of a stream, then the completion once every part is in.
 * Called again whenever a part or the upload's creation ends.
 */
static void s3_commit_advance(struct s3_file *f)
{
	uint64_t part = f->f_fs->s_cfg.sc_part_size;
	int err;

	if (f->f_err < 0) {
		if (f->f_parts_busy == 0 && !f->f_creating)
			s3_commit_end(f, f->f_err);
		return;
	}
	if (!f->f_stream) {
		/* from the staging file, part by part */
		while (f->f_next_off < f->f_size && f->f_parts_busy < S3_PARTS_AHEAD) {
			size_t len =
			    (size_t)(f->f_size - f->f_next_off < part ? f->f_size - f->f_next_off
								      : part);
			char *data = s3_stage_read(f, f->f_next_off, len);

			if (!data) {
				f->f_err = -EIO;
				break;
			}
			f->f_next_off += len;
			if ((err = s3_part_send(f, data, len)) < 0) {
				f->f_err = err;
				break;
			}
		}
		if (f->f_err < 0) {
			if (f->f_parts_busy == 0 && !f->f_creating)
				s3_commit_end(f, f->f_err);
			return;
		}
		if (f->f_next_off < f->f_size)
			return;
	}
	if (f->f_parts_busy == 0 && !f->f_creating)
		s3_complete_upload(f);
}

static void s3_do_commit(struct s3_file *f, struct s3_work *w)
{
	uint64_t part = f->f_fs->s_cfg.sc_part_size;
	int err;

	if (f->f_err < 0 && !f->f_dirty) {
		err = f->f_err;
		f->f_err = 0;
		s3_work_finish(f, w, err);
		return;
	}
	if (!f->f_dirty) {
		s3_work_finish(f, w, 0);
		return;
	}
	f->f_committing = true;
	f->f_cur = w;
	if (f->f_err < 0) {
		s3_commit_advance(f);
		return;
	}
	if (f->f_stream) {
		char *data = f->f_buf;
		size_t len = f->f_buf_len;

		f->f_buf = NULL;
		f->f_buf_len = 0;
		if (f->f_nparts == 0) {
			s3_put_whole(f, data, len);
			return;
		}
		if (len > 0 && (err = s3_part_send(f, data, len)) < 0)
			f->f_err = err;
		else if (len == 0)
			free(data);
		s3_commit_advance(f);
		return;
	}
	if (f->f_size <= part || f->f_size <= (8u << 20)) {
		char *data = s3_stage_read(f, 0, (size_t)f->f_size);

		if (!data) {
			s3_commit_end(f, -EIO);
			return;
		}
		s3_put_whole(f, data, (size_t)f->f_size);
		return;
	}
	f->f_next_off = 0;
	s3_commit_advance(f);
}

/* ---- truncation and attributes of a file with unstored changes ---- */

static int s3_file_truncate(struct s3_file *f, uint64_t size, struct s3_work *w, bool *waits)
{
	struct s3fs *fs = f->f_fs;
	int err;

	*waits = false;
	if (size == f->f_size)
		return 0;
	if (size == 0) {
		s3_upload_abort(f);
		free(f->f_buf);
		f->f_buf = NULL;
		f->f_buf_off = 0;
		f->f_buf_len = 0;
		f->f_stream = true;
		if (f->f_stage >= 0 && ftruncate(f->f_stage, 0) == 0) {
			fs->s_staged -= f->f_staged;
			f->f_staged = 0;
			f->f_full = true;
		} else {
			s3_stage_drop(f);
		}
	} else if (f->f_stream && size >= f->f_buf_off &&
		   size <= f->f_buf_off + fs->s_cfg.sc_part_size && !f->f_full) {
		size_t at = (size_t)(size - f->f_buf_off);

		if (!f->f_buf && !(f->f_buf = malloc(fs->s_cfg.sc_part_size)))
			return -ENOMEM;
		if (at > f->f_buf_len)
			memset(f->f_buf + f->f_buf_len, 0, at - f->f_buf_len);
		f->f_buf_len = at;
	} else {
		if (!f->f_full) {
			if (f->f_stream && f->f_dirty)
				return -EIO; /* its parts are in the store only */
			if ((err = s3_load(f, w)) < 0)
				return err;
			*waits = true;
			return 0;
		}
		if ((err = s3_stage_grow(f, size)) < 0)
			return err;
		if (ftruncate(f->f_stage, (off_t)size) < 0)
			return -EIO;
		if (f->f_stream) {
			s3_upload_abort(f);
			free(f->f_buf);
			f->f_buf = NULL;
			f->f_buf_len = 0;
			f->f_buf_off = 0;
			f->f_stream = false;
		}
	}
	f->f_size = size;
	s3_file_set_dirty(f);
	return 0;
}

static void s3_reply_file_attr(struct s3_file *f, struct fuse_req *r)
{
	struct fuse_attr_out ao;
	struct s3_attr a;

	s3_file_attr(f, &a);
	memset(&ao, 0, sizeof(ao));
	ao.attr_valid = f->f_fs->s_cfg.sc_attr_timeout_ms / 1000;
	ao.attr_valid_nsec = (f->f_fs->s_cfg.sc_attr_timeout_ms % 1000) * 1000000u;
	s3_fill_attr(f->f_fs, f->f_node, &a, &ao.attr);
	be_reply_attr(r, &ao);
}

static void s3_do_setattr(struct s3_file *f, struct s3_work *w)
{
	const struct fuse_setattr_in *in = &w->w_set;
	struct timespec now;
	bool waits = false;
	int err = 0;

	if ((in->valid & FATTR_SIZE) && (err = s3_file_truncate(f, in->size, w, &waits)) < 0) {
		if (w->w_kind == S3_W_TRUNC)
			w->w_after = S3_AFTER_ATTR;
		s3_work_finish(f, w, err);
		return;
	}
	if (waits)
		return; /* runs again once the object is in the staging file */
	clock_gettime(CLOCK_REALTIME, &now);
	if (in->valid & FATTR_MODE)
		f->f_attr.a_mode = (f->f_attr.a_mode & S_IFMT) | (in->mode & 07777);
	if (in->valid & FATTR_UID)
		f->f_attr.a_uid = in->uid;
	if (in->valid & FATTR_GID)
		f->f_attr.a_gid = in->gid;
	if (in->valid & FATTR_MTIME_NOW) {
		f->f_attr.a_mtime = now.tv_sec;
		f->f_attr.a_mtime_ns = (uint32_t)now.tv_nsec;
	} else if (in->valid & FATTR_MTIME) {
		f->f_attr.a_mtime = (int64_t)in->mtime;
		f->f_attr.a_mtime_ns = in->mtimensec < 1000000000u ? in->mtimensec : 0;
	}
	if (in->valid & (FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_MTIME | FATTR_MTIME_NOW))
		f->f_dirty = true;
	if (w->w_kind == S3_W_TRUNC) {
		/* a truncation without a handle: stored now, like truncate(2) */
		w->w_kind = S3_W_COMMIT;
		w->w_after = S3_AFTER_ATTR;
		s3_work_again(f, w);
		return;
	}
	if (w->w_r)
		s3_reply_file_attr(f, w->w_r);
	free(w);
}

/* ---- reading a file with unstored changes ---- */

static void s3_do_read_local(struct s3_file *f, struct s3_work *w)
{
	uint64_t off = w->w_off, end;
	struct iovec *iov;
	unsigned n;
	size_t len;
	ssize_t got;

	if (!f->f_dirty && !f->f_committing) {
		s3_read_cached(f, w->w_r, w->w_off, w->w_size);
		free(w);
		return;
	}
	if (off >= f->f_size || w->w_size == 0) {
		be_reply_data(w->w_r, 0);
		free(w);
		return;
	}
	end = off + w->w_size < f->f_size ? off + w->w_size : f->f_size;
	len = be_req_data_iov(w->w_r, (size_t)(end - off), &iov, &n);
	if (!iov) {
		be_reply_err(w->w_r, -ENOMEM);
	} else if (f->f_full) {
		got = preadv(f->f_stage, iov, (int)n, (off_t)off);
		if (got < 0)
			be_reply_err(w->w_r, -EIO);
		else {
			/* a hole at the end reads as zeros */
			size_t z = (size_t)got;

			for (unsigned i = 0; i < n && z < len; i++) {
				size_t skip = 0, l = iov[i].iov_len;

				for (unsigned j = 0; j < i; j++)
					skip += iov[j].iov_len;
				if (skip + l <= z)
					continue;
				memset((char *)iov[i].iov_base + (z > skip ? z - skip : 0), 0,
				       l - (z > skip ? z - skip : 0));
				z = skip + l;
			}
			be_reply_data(w->w_r, len);
		}
	} else if (off >= f->f_buf_off) {
		size_t at = (size_t)(off - f->f_buf_off), done = 0;

		for (unsigned i = 0; i < n; i++) {
			size_t l = iov[i].iov_len;

			for (size_t k = 0; k < l; k++, done++)
				((char *)iov[i].iov_base)[k] =
				    at + done < f->f_buf_len ? f->f_buf[at + done] : 0;
		}
		be_reply_data(w->w_r, len);
	} else {
		log_warnx("S3: node %" PRIu64 ": a read at %" PRIu64 " of parts already sent of a "
			  "file larger than the staging limit",
			  f->f_node, off);
		be_reply_err(w->w_r, -EIO);
	}
	free(w);
}

/* ---- RELEASE, and the end of every piece of work ---- */

static void s3_handle_free(struct s3_file *f, uint64_t fh)
{
	size_t slot = fh & (NT_MAX_FHS - 1);

	if (s3_fh_ids[slot] == fh) {
		f->f_fs->s_files[slot] = NULL;
		s3_fh_ids[slot] = 0;
		nt_fh_free(f->f_fs->s_nt, fh);
	}
}

static void s3_work_finish(struct s3_file *f, struct s3_work *w, int err)
{
	switch (w->w_after) {
	case S3_AFTER_RELEASE:
		if (err < 0)
			log_warnx("S3: node %" PRIu64 ": changes lost at close: %s", f->f_node,
				  strerror(-err));
		s3_handle_free(f, w->w_fh);
		be_reply_err(w->w_r, 0);
		free(w);
		s3_file_unref(f);
		return;
	case S3_AFTER_ATTR:
		if (err < 0 || !w->w_r)
			be_reply_err(w->w_r, err);
		else
			s3_reply_file_attr(f, w->w_r);
		free(w);
		s3_file_unref(f); /* the truncation's own reference */
		return;
	case S3_AFTER_ERR:
		break;
	}
	if (w->w_r)
		be_reply_err(w->w_r, err);
	else if (err < 0)
		log_warnx("S3: node %" PRIu64 ": %s", f->f_node, strerror(-err));
	free(w);
}

static void s3_do_release(struct s3_file *f, struct s3_work *w)
{
	w->w_after = S3_AFTER_RELEASE;
	if (f->f_dirty && f->f_refs == 1) {
		/* the last handle: what FLUSH did not store is stored now (an
		 * error can only be logged: no one waits for this answer) */
		w->w_kind = S3_W_COMMIT;
		s3_work_again(f, w);
		return;
	}
	s3_work_finish(f, w, 0);
}

static void s3_work_run(struct s3_file *f, struct s3_work *w)
{
	switch (w->w_kind) {
	case S3_W_WRITE:
		s3_do_write(f, w);
		break;
	case S3_W_READ:
		s3_do_read_local(f, w);
		break;
	case S3_W_COMMIT:
		s3_do_commit(f, w);
		break;
	case S3_W_SETATTR:
	case S3_W_TRUNC:
		s3_do_setattr(f, w);
		break;
	case S3_W_RELEASE:
		s3_do_release(f, w);
		break;
	}
}

/* ---- the operations ---- */

/* A handle on f for the guest: 0 with *fh, or -errno. */
static int s3_handle_new(struct s3_file *f, uint32_t flags, uint64_t *fh)
{
	struct nt_fh h;
	size_t slot;
	int err;

	if ((err = nt_fh_alloc(f->f_fs->s_nt, f->f_node, f->f_fs->s_env.self, flags, false, &h)) <
	    0)
		return err;
	slot = h.f_id & (NT_MAX_FHS - 1);
	f->f_fs->s_files[slot] = f;
	s3_fh_ids[slot] = h.f_id;
	f->f_refs++;
	*fh = h.f_id;
	return 0;
}

static bool s3_writable(uint32_t flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

/* Truncation at OPEN (O_TRUNC) of a file this worker has open already. */
static void s3_open_trunc(struct s3_file *f)
{
	struct fuse_setattr_in in;

	memset(&in, 0, sizeof(in));
	in.valid = FATTR_SIZE;
	in.size = 0;
	s3_work_add(f, S3_W_SETATTR, NULL, 0, 0, 0, &in);
}

static void s3_opened(struct s3_op *o)
{
	struct s3fs *fs = o->o_fs;
	int err = s3_errno(&o->o_q[0], "HEAD", o->o_key[0]);
	struct s3_file *f;
	struct s3_attr a;
	uint64_t fh;

	if (err < 0) {
		s3_op_fail(o, err);
		return;
	}
	s3_attr_from(fs, &o->o_q[0], false, &a);
	if ((f = s3_file_by_node(o->o_node))) {
		/* another OPEN got there first */
		if (s3_writable(o->o_flags) && (o->o_flags & O_TRUNC))
			s3_open_trunc(f);
	} else {
		if (!(f = s3_file_new(fs, o->o_node, &a))) {
			s3_op_fail(o, -ENOMEM);
			return;
		}
		if (s3_writable(o->o_flags) && (o->o_flags & O_TRUNC) && f->f_size > 0) {
			f->f_size = 0;
			f->f_stream = true;
			s3_file_set_dirty(f);
		}
	}
	if ((err = s3_handle_new(f, o->o_flags, &fh)) < 0) {
		if (f->f_refs == 0)
			s3_file_free(f);
		s3_op_fail(o, err);
		return;
	}
	be_reply_open(o->o_r, fh, 0);
	s3_op_free(o);
}

void s3_open(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
	     uint32_t flags)
{
	struct s3fs *fs = ctx;
	char key[S3_KEY_MAX + 2];
	struct s3_file *f;
	struct s3_op *o;
	uint32_t mode;
	uint64_t fh;
	int err;

	(void)who;
	if ((err = s3_node_key(fs, node, false, key, sizeof(key), &mode)) < 0) {
		be_reply_err(r, err);
		return;
	}
	if (S_ISDIR(mode)) {
		be_reply_err(r, -EISDIR);
		return;
	}
	if ((f = s3_file_by_node(node)) && f->f_dirty) {
		/* unstored changes here: they are the file */
		if (s3_writable(flags) && (flags & O_TRUNC))
			s3_open_trunc(f);
		if ((err = s3_handle_new(f, flags, &fh)) < 0)
			be_reply_err(r, err);
		else
			be_reply_open(r, fh, 0);
		return;
	}
	/* the object as it is now: size and version for reads, metadata to
	 * keep when it is written */
	if (!(o = s3_op_head(fs, r, key, s3_opened)))
		return;
	o->o_node = node;
	o->o_flags = flags;
	s3_op_release(o);
}

void s3_create(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
	       const char *name, const struct fuse_create_in *in)
{
	struct s3fs *fs = ctx;
	char key[S3_KEY_MAX + 2];
	struct fuse_entry_out e;
	struct timespec now;
	struct s3_file *f;
	struct s3_attr a;
	struct nt_node n;
	bool created;
	uint64_t fh;
	int err;

	if (!name) {
		be_reply_err(r, -EOPNOTSUPP); /* O_TMPFILE */
		return;
	}
	if (!s3_name_ok(name, strlen(name))) {
		be_reply_err(r, -EINVAL);
		return;
	}
	if ((err = s3_child_key(fs, parent, name, false, key, sizeof(key))) < 0) {
		be_reply_err(r, err);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	memset(&a, 0, sizeof(a));
	a.a_mode = S_IFREG | (in->mode & 07777);
	a.a_uid = who->bc_uid;
	a.a_gid = who->bc_has_supp_gid ? who->bc_supp_gid : who->bc_gid;
	a.a_mtime = now.tv_sec;
	a.a_mtime_ns = (uint32_t)now.tv_nsec;
	err = nt_node_ref_path(fs->s_nt, parent, name, s3_name_hash(name), S_IFREG, fs->s_env.self,
			       &n, &created);
	if (err < 0) {
		be_reply_err(r, err == -EEXIST ? -EIO : err);
		return;
	}
	if ((f = s3_file_by_node(n.n_id))) {
		s3_open_trunc(f);
		f->f_attr = a;
	} else if (!(f = s3_file_new(fs, n.n_id, &a))) {
		be_reply_err(r, -ENOMEM); /* the guest forgets the lookup it never got */
		return;
	} else {
		f->f_stream = true;
	}
	s3_file_set_dirty(f); /* a close stores it, empty or not */
	if ((err = s3_handle_new(f, in->flags, &fh)) < 0) {
		if (f->f_refs == 0)
			s3_file_free(f);
		be_reply_err(r, err);
		return;
	}
	s3_file_attr(f, &a);
	s3_entry_out(fs, &n, &a, &e);
	be_reply_create(r, &e, fh, 0);
}

void s3_read(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh, uint64_t off,
	     uint32_t size)
{
	struct s3_file *f = s3_file_by_fh(ctx, fh);

	(void)who;
	if (!f) {
		be_reply_err(r, -EBADF);
		return;
	}
	if (f->f_q || f->f_dirty || f->f_loading || f->f_committing)
		s3_work_add(f, S3_W_READ, r, fh, off, size, NULL);
	else
		s3_read_cached(f, r, off, size);
}

/* Queue work of kind on the file of handle fh (EBADF when there is none here). */
static void s3_fh_work(void *ctx, struct fuse_req *r, uint64_t fh, enum s3_work_kind kind,
		       uint64_t off, uint32_t size)
{
	struct s3_file *f = s3_file_by_fh(ctx, fh);

	if (!f) {
		be_reply_err(r, -EBADF);
		return;
	}
	s3_work_add(f, kind, r, fh, off, size, NULL);
}

void s3_write(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh, uint64_t off,
	      uint32_t size, uint32_t write_flags)
{
	(void)who;
	(void)write_flags;
	s3_fh_work(ctx, r, fh, S3_W_WRITE, off, size);
}

void s3_flush(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh)
{
	(void)who;
	s3_fh_work(ctx, r, fh, S3_W_COMMIT, 0, 0);
}

void s3_fsync(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
	      bool datasync)
{
	struct s3fs *fs = ctx;

	(void)datasync;
	if (!s3_file_by_fh(fs, fh) && fs->s_dirs[fh & (NT_MAX_FHS - 1)]) {
		be_reply_err(r, 0); /* FSYNCDIR: a listing has nothing to store */
		return;
	}
	s3_flush(ctx, r, who, fh);
}

void s3_release(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh)
{
	(void)who;
	s3_fh_work(ctx, r, fh, S3_W_RELEASE, 0, 0);
}

void s3_file_setattr(struct s3fs *fs, struct s3_file *f, struct fuse_req *r,
		     const struct fuse_setattr_in *in)
{
	(void)fs;
	s3_work_add(f, S3_W_SETATTR, r, 0, 0, 0, in);
}

static void s3_truncate_head(struct s3_op *o)
{
	struct s3fs *fs = o->o_fs;
	int err = s3_errno(&o->o_q[0], "HEAD", o->o_key[0]);
	struct fuse_setattr_in in;
	struct s3_file *f;
	struct s3_attr a;

	if (err < 0) {
		s3_op_fail(o, err);
		return;
	}
	s3_attr_from(fs, &o->o_q[0], false, &a);
	if (!(f = s3_file_by_node(o->o_node)) && !(f = s3_file_new(fs, o->o_node, &a))) {
		s3_op_fail(o, -ENOMEM);
		return;
	}
	f->f_refs++; /* the truncation's, until its commit ends */
	memset(&in, 0, sizeof(in));
	in.valid = FATTR_SIZE;
	in.size = o->o_set.size;
	s3_work_add(f, S3_W_TRUNC, o->o_r, 0, 0, 0, &in);
	s3_op_free(o);
}

void s3_truncate(struct s3fs *fs, struct fuse_req *r, uint64_t node, uint64_t size)
{
	char key[S3_KEY_MAX + 2];
	struct s3_op *o;
	int err;

	if ((err = s3_node_key(fs, node, false, key, sizeof(key), NULL)) < 0) {
		be_reply_err(r, err);
		return;
	}
	if (!(o = s3_op_head(fs, r, key, s3_truncate_head)))
		return;
	o->o_node = node;
	o->o_set.size = size;
	s3_op_release(o);
}
