/*
 * s3_copy.c - copying one object to another key inside the bucket, for
 * RENAME: CopyObject up to copy_threshold (S3 copies at most 5 GiB in one
 * request), above it a multipart upload whose parts are copied by the
 * gateway (UploadPartCopy with a source range), the source's metadata
 * given to the new object. Either way the bytes never pass through here.
 * Runs in: the S3 worker, loop thread. A copy that fails after its 200
 * (an <Error> body) fails; a multipart copy that fails is aborted.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "s3_fs.h"
#include "s3_xml.h"

#define S3_COPY_AHEAD 4 /* part copies in flight */

struct s3_copy {
	struct s3fs *c_fs;
	void (*c_done)(void *arg, int err);
	void *c_arg;
	char c_src[S3_KEY_MAX + 2], c_dst[S3_KEY_MAX + 2];
	char c_source[S3_KEY_MAX * 3 + 64]; /* x-amz-copy-source */
	uint64_t c_size;
	struct s3_meta c_meta;
	char c_upload[512];
	unsigned c_parts, c_next, c_busy, c_ended;
	char **c_etags;
	int c_err;
	struct s3_op *c_op; /* for the metadata headers and one request at a time */
};

struct s3_copy_part {
	struct s3_copy *p_copy;
	unsigned p_no;
	struct s3_req p_q;
	char p_num[16], p_range[64];
};

static void s3_copy_end(struct s3_copy *c, int err)
{
	if (err < 0 && c->c_upload[0]) {
		struct s3_req *q = s3_op_req(c->c_op, 0, "DELETE", c->c_dst);

		/* fire and forget: a part copy left behind is the gateway's to
		 * clear when the upload is gone */
		q->query[q->nquery++] = (struct s3_pair){"uploadId", c->c_upload};
		s3_op_hold(c->c_op, s3_op_free);
		s3_op_send(c->c_op, 0);
		s3_op_release(c->c_op);
		c->c_op = NULL;
	}
	for (unsigned i = 0; i < c->c_parts && c->c_etags; i++)
		free(c->c_etags[i]);
	free(c->c_etags);
	s3_op_free(c->c_op);
	c->c_done(c->c_arg, err);
	free(c);
}

static void s3_copy_completed(struct s3_op *o)
{
	struct s3_copy *c = o->o_arg;
	struct s3_req *q = &o->o_q[0];
	int err = s3_errno(q, "COMPLETE copy", c->c_dst);
	char code[64];

	if (err == 0 && (!q->reply || s3_parse_done(q->reply, q->reply_len, code, sizeof(code)) < 0)) {
		log_warnx("S3 COMPLETE copy to %s: failed after its 200", c->c_dst);
		err = -EIO;
	}
	if (err == 0)
		c->c_upload[0] = '\0';
	s3_copy_end(c, err);
}

static void s3_copy_parts(struct s3_copy *c);

static void s3_copy_part_done(struct s3_req *q)
{
	struct s3_copy_part *p = q->arg;
	struct s3_copy *c = p->p_copy;
	char etag[130];
	int err = s3_errno(q, "COPY part", c->c_dst);

	if (err == 0 && (!q->reply || s3_parse_copy_part(q->reply, q->reply_len, etag,
							  sizeof(etag)) < 0)) {
		log_warnx("S3 COPY part %u to %s: no ETag in the answer", p->p_no, c->c_dst);
		err = -EIO;
	}
	if (err == 0 && !(c->c_etags[p->p_no - 1] = strdup(etag)))
		err = -ENOMEM;
	if (err < 0 && c->c_err == 0)
		c->c_err = err;
	s3_req_reset(q);
	free(p);
	c->c_busy--;
	c->c_ended++;
	s3_copy_parts(c);
}

/* Part copies, S3_COPY_AHEAD at once; the completion after the last. */
static void s3_copy_parts(struct s3_copy *c)
{
	uint64_t step = c->c_fs->s_cfg.sc_copy_threshold;
	char *body;
	struct s3_req *q;

	while (c->c_err == 0 && c->c_next < c->c_parts && c->c_busy < S3_COPY_AHEAD) {
		struct s3_copy_part *p = calloc(1, sizeof(*p));
		uint64_t from = (uint64_t)c->c_next * step,
			 to = from + step < c->c_size ? from + step : c->c_size;
		int err;

		if (!p) {
			c->c_err = -ENOMEM;
			break;
		}
		p->p_copy = c;
		p->p_no = ++c->c_next;
		snprintf(p->p_num, sizeof(p->p_num), "%u", p->p_no);
		snprintf(p->p_range, sizeof(p->p_range), "bytes=%" PRIu64 "-%" PRIu64, from, to - 1);
		p->p_q.method = "PUT";
		p->p_q.key = c->c_dst;
		p->p_q.query[p->p_q.nquery++] = (struct s3_pair){"partNumber", p->p_num};
		p->p_q.query[p->p_q.nquery++] = (struct s3_pair){"uploadId", c->c_upload};
		p->p_q.headers[p->p_q.nheaders++] = (struct s3_pair){"x-amz-copy-source", c->c_source};
		p->p_q.headers[p->p_q.nheaders++] =
		    (struct s3_pair){"x-amz-copy-source-range", p->p_range};
		p->p_q.reply_max = 64 << 10;
		p->p_q.done = s3_copy_part_done;
		p->p_q.arg = p;
		c->c_busy++;
		if ((err = s3_submit(c->c_fs->s_cl, &p->p_q)) < 0) {
			p->p_q.err = err;
			s3_copy_part_done(&p->p_q);
			return;
		}
	}
	if (c->c_busy > 0)
		return;
	if (c->c_err < 0 || c->c_ended < c->c_parts) {
		s3_copy_end(c, c->c_err < 0 ? c->c_err : -EIO);
		return;
	}
	if (!(body = s3_complete_body((const char *const *)c->c_etags, c->c_parts))) {
		s3_copy_end(c, -ENOMEM);
		return;
	}
	free(c->c_op->o_body);
	c->c_op->o_body = body;
	s3_op_hold(c->c_op, s3_copy_completed);
	q = s3_op_req(c->c_op, 0, "POST", c->c_dst);
	q->query[q->nquery++] = (struct s3_pair){"uploadId", c->c_upload};
	q->body = body;
	q->body_len = strlen(body);
	s3_op_send(c->c_op, 0);
	s3_op_release(c->c_op);
}

static void s3_copy_created(struct s3_op *o)
{
	struct s3_copy *c = o->o_arg;
	struct s3_req *q = &o->o_q[0];
	int err = s3_errno(q, "CREATE copy upload", c->c_dst);

	if (err == 0 && (!q->reply || s3_parse_upload_id(q->reply, q->reply_len, c->c_upload,
							 sizeof(c->c_upload)) < 0))
		err = -EIO;
	if (err < 0) {
		c->c_upload[0] = '\0';
		s3_copy_end(c, err);
		return;
	}
	c->c_parts = (unsigned)((c->c_size + c->c_fs->s_cfg.sc_copy_threshold - 1) /
				c->c_fs->s_cfg.sc_copy_threshold);
	if (!(c->c_etags = calloc(c->c_parts, sizeof(*c->c_etags)))) {
		s3_copy_end(c, -ENOMEM);
		return;
	}
	s3_copy_parts(c);
}

static void s3_copied(struct s3_op *o)
{
	struct s3_copy *c = o->o_arg;
	struct s3_req *q = &o->o_q[0];
	int err = s3_errno(q, "COPY", c->c_dst);
	char code[64];

	if (err == 0 && q->reply && q->reply_len &&
	    s3_parse_done(q->reply, q->reply_len, code, sizeof(code)) < 0) {
		log_warnx("S3 COPY to %s: failed after its 200: %s", c->c_dst, code);
		err = -EIO;
	}
	s3_copy_end(c, err);
}

/* One CopyObject of the whole source (metadata copied with it). */
static void s3_copy_whole(struct s3_copy *c, struct s3_op *o)
{
	struct s3_req *q;

	s3_op_hold(o, s3_copied);
	q = s3_op_req(o, 0, "PUT", c->c_dst);
	q->headers[q->nheaders++] = (struct s3_pair){"x-amz-copy-source", c->c_source};
	s3_op_send(o, 0);
	s3_op_release(o);
}

/* What the source is: its size and metadata (for a copy in parts). */
static void s3_copy_headed(struct s3_op *o)
{
	struct s3_copy *c = o->o_arg;
	struct s3_req *q = &o->o_q[0];
	struct s3_attr a;
	int err = s3_errno(q, "HEAD", c->c_src);

	if (err < 0) {
		s3_copy_end(c, err);
		return;
	}
	c->c_size = q->content_length;
	if (c->c_size <= c->c_fs->s_cfg.sc_copy_threshold) {
		s3_copy_whole(c, o);
		return;
	}
	/* the metadata goes with the upload: S3 copies none in parts */
	s3_attr_from(c->c_fs, q, false, &a);
	s3_op_hold(o, s3_copy_created);
	q = s3_op_req(o, 0, "POST", c->c_dst);
	q->query[q->nquery++] = (struct s3_pair){"uploads", ""};
	s3_attr_headers(o, q, 0, &a);
	s3_op_send(o, 0);
	s3_op_release(o);
}

void s3_copy_key(struct s3fs *fs, const char *src, const char *dst, uint64_t size,
		 void (*done)(void *arg, int err), void *arg)
{
	struct s3_copy *c = calloc(1, sizeof(*c));
	struct s3_op *o = s3_op_new(fs, NULL);

	if (!c || !o) {
		free(c);
		s3_op_free(o);
		done(arg, -ENOMEM);
		return;
	}
	c->c_fs = fs;
	c->c_done = done;
	c->c_arg = arg;
	c->c_op = o;
	c->c_size = size;
	o->o_arg = c;
	snprintf(c->c_src, sizeof(c->c_src), "%s", src);
	snprintf(c->c_dst, sizeof(c->c_dst), "%s", dst);
	s3_copy_source(fs, src, c->c_source, sizeof(c->c_source));
	if (size != UINT64_MAX && size <= fs->s_cfg.sc_copy_threshold) {
		s3_copy_whole(c, o);
		return;
	}
	/* too large, or not known: the source first */
	s3_op_hold(o, s3_copy_headed);
	s3_op_req(o, 0, "HEAD", src);
	s3_op_send(o, 0);
	s3_op_release(o);
}
