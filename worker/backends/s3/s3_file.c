/*
 * s3_file.c - open files of the S3 back end (reading through s3_cache.c,
 * storing through s3_upload.c).
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
#include "s3_file.h"
#include "s3_xml.h"

static LIST_HEAD(, s3_file) s3_open_files = LIST_HEAD_INITIALIZER(s3_open_files);
static uint64_t *s3_fh_ids; /* by handle slot: the id s_files[slot] answers to */

int s3_files_init(struct s3fs *fs)
{
	fs->s_files = calloc(NT_MAX_FHS, sizeof(*fs->s_files));
	fs->s_dirs = calloc(NT_MAX_FHS, sizeof(*fs->s_dirs));
	s3_fh_ids = calloc(NT_MAX_FHS, sizeof(*s3_fh_ids));
	if (!fs->s_files || !fs->s_dirs || !s3_fh_ids)
		return -ENOMEM;
	return s3_cache_init(fs);
}

void s3_files_reset(struct s3fs *fs)
{
	for (size_t slot = 0; slot < NT_MAX_FHS; slot++) {
		struct s3_file *f = fs->s_files[slot];

		if (!f)
			continue;
		/* the node table forgot the handle already: only our reference */
		fs->s_files[slot] = NULL;
		s3_fh_ids[slot] = 0;
		s3_file_unref(f);
	}
}

void s3_files_free(struct s3fs *fs)
{
	s3_cache_free(fs);
	free(fs->s_files);
	free(s3_fh_ids);
	fs->s_files = NULL;
	s3_fh_ids = NULL;
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

void s3_stage_drop(struct s3_file *f)
{
	if (f->f_stage >= 0)
		close(f->f_stage);
	f->f_stage = -1;
	f->f_fs->s_staged -= f->f_staged;
	f->f_staged = 0;
	f->f_full = false;
}

/* Account growth of the staging file to end: 0 or -ENOSPC. */
int s3_stage_grow(struct s3_file *f, uint64_t end)
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
int s3_stage_open(struct s3_file *f)
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

/* The part being filled, in memory: NULL when S3_STREAMS files hold one
 * already (or none can be had). */
static char *s3_buf_get(struct s3_file *f)
{
	struct s3fs *fs = f->f_fs;

	if (!f->f_buf && fs->s_streams < S3_STREAMS &&
	    (f->f_buf = malloc((size_t)fs->s_cfg.sc_part_size)))
		fs->s_streams++;
	return f->f_buf;
}

char *s3_buf_take(struct s3_file *f)
{
	char *data = f->f_buf;

	if (data)
		f->f_fs->s_streams--;
	f->f_buf = NULL;
	f->f_buf_len = 0;
	return data;
}

void s3_buf_drop(struct s3_file *f)
{
	free(s3_buf_take(f));
	f->f_buf_off = 0;
}

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
	s3_buf_drop(f);
	LIST_REMOVE(f, f_all);
	free(f);
}

/* Let the file go when no handle, work or exchange needs it any more. */
void s3_file_unref(struct s3_file *f)
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
	s3_buf_drop(f);
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

/* ---- the work queue ---- */

void s3_files_wake(struct s3fs *fs)
{
	struct s3_file *f, *next;

	(void)fs;
	for (f = LIST_FIRST(&s3_open_files); f; f = next) {
		next = LIST_NEXT(f, f_all);
		if (f->f_loading)
			s3_load_more(f);
		else if (f->f_committing)
			s3_commit_advance(f);
		else
			s3_file_kick(f);
	}
}

static void s3_work_run(struct s3_file *f, struct s3_work *w);

static bool s3_work_can(const struct s3_file *f, const struct s3_work *w)
{
	if (f->f_loading || f->f_committing)
		return false;
	if (w->w_kind == S3_W_WRITE && f->f_stream &&
	    (f->f_parts_busy >= S3_PARTS_AHEAD || s3_mem_full(f->f_fs)))
		return false;
	return true;
}

void s3_file_kick(struct s3_file *f)
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
void s3_work_again(struct s3_file *f, struct s3_work *w)
{
	w->w_next = f->f_q;
	f->f_q = w;
	if (!w->w_next)
		f->f_qtail = &w->w_next;
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

		if (!s3_buf_get(f))
			return -EAGAIN; /* no room in memory: staging, or nothing */
		if (at > f->f_buf_len)
			memset(f->f_buf + f->f_buf_len, 0, at - f->f_buf_len);
		take = part - at < size - done ? part - at : size - done;
		s3_iov_copy(f->f_buf + at, iov, n, done, take);
		if (at + take > f->f_buf_len)
			f->f_buf_len = at + take;
		done += take;
		if (f->f_buf_len == part) {
			f->f_buf_off += part;
			if ((err = s3_part_send(f, s3_buf_take(f), part)) < 0)
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
			if (err != -EAGAIN)
				goto done;
			/* no memory to fill a part in (S3_STREAMS files do) */
			if (!f->f_full) {
				log_warnx("S3: node %" PRIu64 ": %u files fill parts in memory "
					  "already, and no staging room for this one",
					  f->f_node, S3_STREAMS);
				err = f->f_err = -ENOSPC; /* the object stays as it was */
				goto out;
			}
			/* the staging copy holds it all, this write too: it is the file now */
			s3_upload_abort(f);
			s3_buf_drop(f);
			f->f_stream = false;
			err = 0;
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
		s3_buf_drop(f);
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
		s3_buf_drop(f);
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

		if (!s3_buf_get(f))
			return -ENOSPC;
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
			s3_buf_drop(f);
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

void s3_work_finish(struct s3_file *f, struct s3_work *w, int err)
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
	if (!s3_file_by_fh(fs, fh) && s3_dir_is_open(fs, fh)) {
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
