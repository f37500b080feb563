/*
 * s3_upload.c - how an S3 file's changes become the object: parts of a
 * multipart upload sent while the guest writes (streaming) or read from
 * the staging file, the completion (or one PUT for a small file), the
 * abort of an upload that failed (retried until the gateway takes it),
 * and the fetch of an object into a staging file before a write into it.
 * Runs in: the S3 worker, loop thread. Until the completion the old
 * object is untouched; a failure reaches the guest at FLUSH or FSYNC.
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

#include <event2/event.h>

#include "log.h"
#include "s3_file.h"
#include "s3_xml.h"

#define S3_LOAD_AHEAD 4 /* ranged GETs in flight while a staging file fills */

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

/* ---- uploads ---- */

void s3_parts_free(struct s3_file *f)
{
	for (unsigned i = 0; i < f->f_nparts; i++)
		free(f->f_etags[i]);
	free(f->f_etags);
	f->f_etags = NULL;
	f->f_nparts = 0;
}

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
void s3_upload_abort(struct s3_file *f)
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
	s3_mem_sub(p->p_file->f_fs, p->p_len);
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
int s3_part_send(struct s3_file *f, char *data, size_t len)
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
	s3_mem_add(f->f_fs, len);
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

/* ---- loading an object into a staging file ---- */

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
	s3_mem_sub(f->f_fs, l->l_len);
	free(l->l_data);
	free(l);
	s3_load_more(f);
}

/* Ranged GETs of the object into the staging file, S3_LOAD_AHEAD at once;
 * when all are in, the work that waited runs. */
void s3_load_more(struct s3_file *f)
{
	struct s3fs *fs = f->f_fs;
	uint64_t step = fs->s_cfg.sc_part_size;

	while (f->f_commit_err == 0 && f->f_next_off < f->f_size && f->f_loads < S3_LOAD_AHEAD &&
	       !s3_mem_full(fs)) {
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
		s3_mem_add(fs, l->l_len);
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
int s3_load(struct s3_file *f, struct s3_work *w)
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

/* ---- commit: the changes become the object ---- */

static void s3_commit_end(struct s3_file *f, int err)
{
	struct s3_work *w = f->f_cur;

	f->f_committing = false;
	f->f_cur = NULL;
	s3_buf_drop(f);
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
	o->o_mem = len;
	s3_mem_add(f->f_fs, len);
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
void s3_commit_advance(struct s3_file *f)
{
	uint64_t part = f->f_fs->s_cfg.sc_part_size;
	int err;

	if (f->f_err < 0) {
		if (f->f_parts_busy == 0 && !f->f_creating)
			s3_commit_end(f, f->f_err);
		return;
	}
	if (!f->f_stream && f->f_size <= part && f->f_nparts == 0 && !f->f_upload[0] &&
	    !f->f_creating) {
		/* from the staging file, whole, once there is room for it */
		char *data;

		if (s3_mem_full(f->f_fs))
			return; /* s3_files_wake calls again */
		if (!(data = s3_stage_read(f, 0, (size_t)f->f_size)))
			s3_commit_end(f, -EIO);
		else
			s3_put_whole(f, data, (size_t)f->f_size);
		return;
	}
	if (!f->f_stream) {
		/* from the staging file, part by part */
		while (f->f_next_off < f->f_size && f->f_parts_busy < S3_PARTS_AHEAD &&
		       !s3_mem_full(f->f_fs)) {
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

void s3_do_commit(struct s3_file *f, struct s3_work *w)
{
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
		size_t len = f->f_buf_len;
		char *data = s3_buf_take(f);

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
	f->f_next_off = 0;
	s3_commit_advance(f);
}
