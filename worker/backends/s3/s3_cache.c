/*
 * s3_cache.c - the S3 back end's read cache: ranged GETs of S3_CHUNK bytes,
 * each tied to the object's ETag (If-Match: a replaced object fails the
 * read with ESTALE instead of mixing versions), kept up to cache_size per
 * worker (least recently used first out, never a chunk a read waits on),
 * with a read-ahead window that doubles up to readahead while reads stay
 * sequential.
 * Runs in: the S3 worker, loop thread.
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
#include "s3_file.h"
#include "s3_xml.h"

#define S3_CHUNK_BUCKETS 4096

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

int s3_cache_init(struct s3fs *fs)
{
	uint64_t chunks = fs->s_cfg.sc_cache_size / S3_CHUNK,
		 ahead = fs->s_cfg.sc_readahead / S3_CHUNK + 4;

	/* never fewer chunks than one read-ahead window and the reads it serves */
	fs->s_max_chunks = chunks > ahead ? chunks : ahead;
	fs->s_chunk_hash = calloc(S3_CHUNK_BUCKETS, sizeof(*fs->s_chunk_hash));
	return fs->s_chunk_hash ? 0 : -ENOMEM;
}

void s3_cache_free(struct s3fs *fs)
{
	struct s3_chunk *c;

	while ((c = TAILQ_FIRST(&fs->s_lru))) {
		TAILQ_REMOVE(&fs->s_lru, c, c_lru);
		free(c->c_data);
		free(c);
	}
	free(fs->s_chunk_hash);
	fs->s_chunk_hash = NULL;
}

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
void s3_read_cached(struct s3_file *f, struct fuse_req *r, uint64_t off, uint32_t size)
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
	/* only while the cache has room: many readers at once must not make
	 * it grow past its bound with chunks nobody waits for yet */
	for (uint64_t i = last + 1; ra_end && i <= (ra_end - 1) / S3_CHUNK; i++)
		if (fs->s_nchunks >= fs->s_max_chunks ||
		    !s3_chunk_get(fs, f->f_node, key, f->f_etag, i, f->f_size))
			break;
	if (--rd->rd_missing == 0)
		s3_rd_finish(rd);
}
