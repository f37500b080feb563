/*
 * s3_fs.c - the S3 back end: start-up, nodes and their keys, attributes in
 * object metadata, requests that wait on exchanges, and LOOKUP, GETATTR,
 * SETATTR and STATFS (making and removing names: s3_names.c; RENAME:
 * s3_rename.c).
 * Runs in: the S3 worker, loop thread. Every byte the store sends is
 * untrusted too (another client may have written anything): keys that
 * cannot be names are hidden, metadata is range-checked, bodies are bounded.
 *
 * A node is (parent node, name), never a full key: the key of a node is
 * made when a request needs it, by walking the names up to the root, so a
 * renamed directory takes its descendants along without touching them.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "peer.h"
#include "s3_fs.h"
#include "s3_xml.h"

#define S3_DEPTH_MAX  512 /* names on the way up from a node to the root */
#define S3_HIDDEN_MAX 4096

/* ---- requests that wait on exchanges ---- */

struct s3_op *s3_op_new(struct s3fs *fs, struct fuse_req *r)
{
	struct s3_op *o = calloc(1, sizeof(*o));

	if (o) {
		o->o_fs = fs;
		o->o_r = r;
	}
	return o;
}

void s3_op_free(struct s3_op *o)
{
	if (!o)
		return;
	if (o->o_mem)
		s3_mem_sub(o->o_fs, o->o_mem);
	for (unsigned i = 0; i < S3_OP_REQS; i++)
		s3_req_reset(&o->o_q[i]);
	for (size_t i = 0; i < o->o_nkeys; i++)
		free(o->o_keys[i]);
	free(o->o_keys);
	free(o->o_sizes);
	free(o->o_token);
	free(o->o_body);
	free(o);
}

static void s3_mem_wake(evutil_socket_t fd, short what, void *arg)
{
	struct s3fs *fs = arg;

	(void)fd;
	(void)what;
	fs->s_wake_due = false;
	s3_files_wake(fs);
}

void s3_mem_add(struct s3fs *fs, size_t n)
{
	fs->s_mem += n;
}

void s3_mem_sub(struct s3fs *fs, size_t n)
{
	bool was_full = s3_mem_full(fs);
	struct timeval now = {0, 0};

	fs->s_mem -= n < fs->s_mem ? n : fs->s_mem;
	/* not from here: this may run inside a piece of work of a file */
	if (was_full && !s3_mem_full(fs) && !fs->s_wake_due &&
	    event_base_once(fs->s_env.base, -1, EV_TIMEOUT, s3_mem_wake, fs, &now) == 0)
		fs->s_wake_due = true;
}

struct s3_req *s3_op_req(struct s3_op *o, unsigned i, const char *method, const char *key)
{
	struct s3_req *q = &o->o_q[i];

	size_t len = strnlen(key, sizeof(o->o_key[i]) - 1);

	s3_req_reset(q);
	memset(q, 0, sizeof(*q));
	memmove(o->o_key[i], key, len); /* keys are at most S3_KEY_MAX + 1 bytes */
	o->o_key[i][len] = '\0';
	q->method = method;
	q->key = o->o_key[i];
	q->reply_max = 64 << 10;
	return q;
}

static void s3_op_done(struct s3_req *q)
{
	struct s3_op *o = q->arg;

	if (--o->o_pending == 0)
		o->o_then(o);
}

bool s3_op_send(struct s3_op *o, unsigned i)
{
	struct s3_req *q = &o->o_q[i];
	int err;

	q->done = s3_op_done;
	q->arg = o;
	o->o_pending++;
	if ((err = s3_submit(o->o_fs->s_cl, q)) < 0) {
		q->err = err;
		o->o_pending--;
		return false;
	}
	return true;
}

void s3_op_hold(struct s3_op *o, void (*then)(struct s3_op *o))
{
	o->o_then = then;
	o->o_pending++;
}

void s3_op_release(struct s3_op *o)
{
	if (--o->o_pending == 0)
		o->o_then(o);
}

void s3_op_fail(struct s3_op *o, int err)
{
	be_reply_err(o->o_r, err);
	s3_op_free(o);
}

int s3_errno(const struct s3_req *q, const char *what, const char *key)
{
	char code[64] = "", msg[128] = "";

	if (q->err < 0) {
		log_warnx("S3 %s %s: no answer after %u attempt%s: %s", what, key, q->attempts,
			  q->attempts == 1 ? "" : "s",
			  q->errmsg[0] ? q->errmsg : strerror(-q->err));
		return -EIO;
	}
	if (q->status >= 200 && q->status < 300)
		return 0;
	if (q->status == 404)
		return -ENOENT;
	if (q->reply)
		(void)s3_parse_error(q->reply, q->reply_len, code, sizeof(code), msg, sizeof(msg));
	log_warnx("S3 %s %s: status %ld%s%s", what, key, q->status, code[0] ? " " : "", code);
	switch (q->status) {
	case 403:
		return -EACCES;
	case 409:
		return -EBUSY;
	case 412:
		return -ESTALE;
	case 400:
		return strcmp(code, "EntityTooLarge") == 0 ? -EFBIG : -EIO;
	default:
		return -EIO;
	}
}

/* ---- names and keys ---- */

uint64_t s3_name_hash(const char *name)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	uint64_t h;

	SHA256((const unsigned char *)name, strlen(name), md);
	memcpy(&h, md, sizeof(h));
	return h;
}

bool s3_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > NT_NAME_MAX || memchr(name, '/', len) || memchr(name, '\0', len))
		return false;
	return !(name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')));
}

int s3_node_key(struct s3fs *fs, uint64_t id, bool dir_slash, char *out, size_t cap, uint32_t *mode)
{
	static char names[S3_DEPTH_MAX][NT_NAME_MAX + 1];
	struct nt_node n;
	uint64_t cur = id, parent;
	size_t depth = 0, len;
	int err;

	if ((err = nt_node_get(fs->s_nt, id, &n)) < 0)
		return err;
	if (mode)
		*mode = n.n_mode & S_IFMT;
	while (cur != NT_ROOT_ID) {
		if (depth == S3_DEPTH_MAX)
			return -ENAMETOOLONG;
		if ((err = nt_node_name(fs->s_nt, cur, &parent, names[depth])) < 0)
			return -ESTALE; /* unlinked, or an ancestor forgotten */
		depth++;
		cur = parent;
	}
	len = fs->s_prefix_len;
	if (len >= cap)
		return -ENAMETOOLONG;
	memcpy(out, fs->s_cfg.sc_prefix, len);
	while (depth-- > 0) {
		size_t l = strlen(names[depth]);

		if (len + l + 2 > cap || len + l + 1 > S3_KEY_MAX)
			return -ENAMETOOLONG;
		memcpy(out + len, names[depth], l);
		len += l;
		if (depth > 0)
			out[len++] = '/';
	}
	if (dir_slash && S_ISDIR(n.n_mode) && len > 0 && out[len - 1] != '/')
		out[len++] = '/';
	out[len] = '\0';
	return 0;
}

int s3_child_key(struct s3fs *fs, uint64_t parent, const char *name, bool dir_slash, char *out,
		 size_t cap)
{
	uint32_t mode;
	size_t len, l = strlen(name);
	int err;

	if ((err = s3_node_key(fs, parent, true, out, cap, &mode)) < 0)
		return err;
	if (!S_ISDIR(mode))
		return -ENOTDIR;
	len = strlen(out);
	if (len + l + 2 > cap || len + l + (dir_slash ? 1 : 0) > S3_KEY_MAX)
		return -ENAMETOOLONG;
	memcpy(out + len, name, l);
	len += l;
	if (dir_slash)
		out[len++] = '/';
	out[len] = '\0';
	return 0;
}

void s3_hide(struct s3fs *fs, const char *key, const char *why)
{
	uint64_t h = s3_name_hash(key);

	for (size_t i = 0; i < fs->s_nhidden; i++)
		if (fs->s_hidden[i] == h)
			return;
	if (fs->s_nhidden < S3_HIDDEN_MAX)
		fs->s_hidden[fs->s_nhidden++] = h;
	log_warnx("S3 key %.200s is not shown: %s", key, why);
}

void s3_copy_source(struct s3fs *fs, const char *key, char *out, size_t cap)
{
	int n = snprintf(out, cap, "/%s/", fs->s_cfg.sc_bucket);

	if (n < 0 || (size_t)n >= cap ||
	    s3_uri_encode(key, strlen(key), true, out + n, cap - (size_t)n) < 0)
		out[0] = '\0';
}

/* ---- attributes ---- */

void s3_attr_default(struct s3fs *fs, uint32_t type, struct s3_attr *a)
{
	(void)fs;
	memset(a, 0, sizeof(*a));
	a->a_mode = type | (S_ISDIR(type) ? 0755 : S_ISLNK(type) ? 0777 : 0644);
}

static bool s3_meta_num(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || (*end && *end != '.') || v > max)
		return false;
	*out = v;
	return true;
}

/* "SECONDS[.NANOSECONDS]" (what s3fs and rclone read as well). */
static bool s3_meta_time(const char *s, int64_t *sec, uint32_t *nsec)
{
	uint64_t v, ns = 0;
	const char *dot = strchr(s, '.');
	size_t digits;

	if (!s3_meta_num(s, INT64_MAX, &v))
		return false;
	if (dot) {
		digits = strspn(dot + 1, "0123456789");
		if (digits == 0 || dot[1 + digits] != '\0')
			return false;
		for (size_t i = 0; i < 9; i++)
			ns = ns * 10 + (i < digits ? (uint64_t)(dot[1 + i] - '0') : 0);
	}
	*sec = (int64_t)v;
	*nsec = (uint32_t)ns;
	return true;
}

void s3_attr_from(struct s3fs *fs, const struct s3_req *q, bool dir, struct s3_attr *a)
{
	uint64_t v;
	struct tm tm;

	s3_attr_default(fs, dir ? S_IFDIR : S_IFREG, a);
	a->a_size = dir ? 0 : q->content_length;
	snprintf(a->a_etag, sizeof(a->a_etag), "%s", q->etag);
	memset(&tm, 0, sizeof(tm));
	if (q->last_modified[0] && strptime(q->last_modified, "%a, %d %b %Y %H:%M:%S GMT", &tm))
		a->a_mtime = (int64_t)timegm(&tm);
	if (s3_meta_num(q->meta.mode, 0177777, &v)) {
		uint32_t type = (uint32_t)v & S_IFMT;

		/* An object is a file or a symlink, a marker a directory;
		 * set-id bits from the store are not trusted. */
		if (dir)
			type = S_IFDIR;
		else if (type != S_IFLNK)
			type = S_IFREG;
		a->a_mode = type | ((uint32_t)v & 01777);
	}
	if (s3_meta_num(q->meta.uid, UINT32_MAX - 1, &v))
		a->a_uid = (uint32_t)v;
	if (s3_meta_num(q->meta.gid, UINT32_MAX - 1, &v))
		a->a_gid = (uint32_t)v;
	if (q->meta.mtime[0])
		(void)s3_meta_time(q->meta.mtime, &a->a_mtime, &a->a_mtime_ns);
}

void s3_attr_headers(struct s3_op *o, struct s3_req *q, unsigned first, const struct s3_attr *a)
{
	static const char *const names[4] = {"x-amz-meta-mode", "x-amz-meta-uid", "x-amz-meta-gid",
					     "x-amz-meta-mtime"};

	snprintf(o->o_hdr[first], sizeof(o->o_hdr[0]), "%u", a->a_mode);
	snprintf(o->o_hdr[first + 1], sizeof(o->o_hdr[0]), "%u", a->a_uid);
	snprintf(o->o_hdr[first + 2], sizeof(o->o_hdr[0]), "%u", a->a_gid);
	snprintf(o->o_hdr[first + 3], sizeof(o->o_hdr[0]), "%" PRId64 ".%09u", a->a_mtime,
		 a->a_mtime_ns);
	for (unsigned i = 0; i < 4; i++)
		q->headers[q->nheaders++] = (struct s3_pair){names[i], o->o_hdr[first + i]};
}

void s3_fill_attr(struct s3fs *fs, uint64_t id, const struct s3_attr *a, struct fuse_attr *out)
{
	memset(out, 0, sizeof(*out));
	out->ino = id;
	out->size = a->a_size;
	out->blocks = (a->a_size + 511) / 512;
	out->blksize =
	    (uint32_t)(fs->s_cfg.sc_part_size > (1u << 30) ? 1u << 30 : fs->s_cfg.sc_part_size);
	out->mtime = out->atime = out->ctime = (uint64_t)a->a_mtime;
	out->mtimensec = out->atimensec = out->ctimensec = a->a_mtime_ns;
	out->mode = a->a_mode;
	out->nlink = S_ISDIR(a->a_mode) ? 2 : 1;
	out->uid = a->a_uid;
	out->gid = a->a_gid;
}

static void s3_valid(struct s3fs *fs, uint64_t *sec, uint32_t *nsec)
{
	*sec = fs->s_cfg.sc_attr_timeout_ms / 1000;
	*nsec = (fs->s_cfg.sc_attr_timeout_ms % 1000) * 1000000u;
}

void s3_entry_out(struct s3fs *fs, const struct nt_node *n, const struct s3_attr *a,
		  struct fuse_entry_out *e)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = n->n_id;
	s3_valid(fs, &e->entry_valid, &e->entry_valid_nsec);
	s3_valid(fs, &e->attr_valid, &e->attr_valid_nsec);
	s3_fill_attr(fs, n->n_id, a, &e->attr);
}

void s3_reply_entry(struct s3fs *fs, struct fuse_req *r, const struct nt_node *n,
		    const struct s3_attr *a)
{
	struct fuse_entry_out e;

	s3_entry_out(fs, n, a, &e);
	be_reply_entry(r, &e);
}

static void s3_reply_attr(struct s3fs *fs, struct fuse_req *r, uint64_t id, const struct s3_attr *a)
{
	struct fuse_attr_out ao;

	memset(&ao, 0, sizeof(ao));
	s3_valid(fs, &ao.attr_valid, &ao.attr_valid_nsec);
	s3_fill_attr(fs, id, a, &ao.attr);
	be_reply_attr(r, &ao);
}

/* One more lookup of (parent, name) as a node of a's type, and its entry. */
void s3_entry_for(struct s3fs *fs, struct fuse_req *r, uint64_t parent, const char *name,
		  const struct s3_attr *a)
{
	struct nt_node n;
	bool created;
	int err;

	err = nt_node_ref_path(fs->s_nt, parent, name, s3_name_hash(name), a->a_mode & S_IFMT,
			       fs->s_env.self, &n, &created);
	if (err == -EEXIST) {
		log_warnx("S3: name %.200s shares its index hash with another of its directory",
			  name);
		err = -EIO;
	}
	if (err < 0) {
		be_reply_err(r, err);
		return;
	}
	s3_reply_entry(fs, r, &n, a);
}

/* An op about name in directory parent; NULL (ENOMEM answered) when none. */
struct s3_op *s3_op_named(struct s3fs *fs, struct fuse_req *r, uint64_t parent, const char *name)
{
	struct s3_op *o = s3_op_new(fs, r);

	if (!o) {
		be_reply_err(r, -ENOMEM);
		return NULL;
	}
	o->o_parent = parent;
	snprintf(o->o_name, sizeof(o->o_name), "%s", name);
	return o;
}

struct s3_op *s3_op_head(struct s3fs *fs, struct fuse_req *r, const char *key,
			 void (*then)(struct s3_op *o))
{
	struct s3_op *o = s3_op_new(fs, r);

	if (!o) {
		if (r)
			be_reply_err(r, -ENOMEM);
		return NULL;
	}
	s3_op_hold(o, then);
	s3_op_req(o, 0, "HEAD", key);
	s3_op_send(o, 0);
	return o;
}

/* ---- LOOKUP: the object, the directory marker and a one-key listing, at once ---- */

static int s3_count_entry(const struct s3_entry *e, void *arg)
{
	(void)e;
	(*(unsigned *)arg)++;
	return 0;
}

/* Entries of a listing body: >= 0, or -EPROTO. */
int s3_list_count(const struct s3_req *q)
{
	struct s3_list_result res;
	unsigned n = 0;
	int err;

	if (!q->reply)
		return -EPROTO;
	if ((err = s3_parse_list(q->reply, q->reply_len, s3_count_entry, &n, &res)) < 0)
		return err;
	return (int)n;
}

/* Probe o_key[0] (file), o_key[0]/ (marker) and the listing under it. */
static void s3_probe_send(struct s3_op *o, const char *key)
{
	struct s3_req *q;

	s3_op_hold(o, o->o_then);
	s3_op_req(o, 0, "HEAD", key);
	snprintf(o->o_hdr[5], sizeof(o->o_hdr[5]), "%s/", key);
	s3_op_req(o, 1, "HEAD", o->o_hdr[5]);
	q = s3_op_req(o, 2, "GET", "");
	q->query[q->nquery++] = (struct s3_pair){"list-type", "2"};
	q->query[q->nquery++] = (struct s3_pair){"prefix", o->o_hdr[5]};
	q->query[q->nquery++] = (struct s3_pair){"max-keys", "1"};
	q->query[q->nquery++] = (struct s3_pair){"encoding-type", "url"};
	for (unsigned i = 0; i < 3; i++)
		s3_op_send(o, i);
	s3_op_release(o);
}

/*
 * What the probe found: 0 with *a filled (a directory wins over an object
 * of the same name, which is then hidden), -ENOENT, or another -errno.
 */
static int s3_probe_result(struct s3_op *o, struct s3_attr *a)
{
	struct s3_req *file = &o->o_q[0], *marker = &o->o_q[1], *list = &o->o_q[2];
	int ef = s3_errno(file, "HEAD", o->o_key[0]), em = s3_errno(marker, "HEAD", o->o_hdr[5]),
	    el = s3_errno(list, "LIST", o->o_hdr[5]), n = 0;
	bool dir;

	if (ef < 0 && ef != -ENOENT)
		return ef;
	if (em < 0 && em != -ENOENT)
		return em;
	if (el < 0)
		return el;
	if ((n = s3_list_count(list)) < 0) {
		log_warnx("S3 LIST %s: the listing is malformed", o->o_hdr[5]);
		return -EIO;
	}
	dir = em == 0 || n > 0;
	if (dir) {
		if (em == 0)
			s3_attr_from(o->o_fs, marker, true, a);
		else
			s3_attr_default(o->o_fs, S_IFDIR, a);
		if (ef == 0)
			s3_hide(o->o_fs, o->o_key[0], "a directory has the same name");
		return 0;
	}
	if (ef < 0)
		return ef;
	s3_attr_from(o->o_fs, file, false, a);
	return 0;
}

static void s3_lookup_done(struct s3_op *o)
{
	struct s3_attr a;
	int err;

	if ((err = s3_probe_result(o, &a)) < 0)
		s3_op_fail(o, err);
	else {
		s3_entry_for(o->o_fs, o->o_r, o->o_parent, o->o_name, &a);
		s3_op_free(o);
	}
}

/* A file this worker created or changed and has not stored yet. */
static struct s3_file *s3_local(struct s3fs *fs, uint64_t parent, const char *name)
{
	struct nt_node n;
	uint64_t p;
	char cur[NT_NAME_MAX + 1];

	if (nt_node_find(fs->s_nt, parent, s3_name_hash(name), &n) < 0 ||
	    nt_node_name(fs->s_nt, n.n_id, &p, cur) < 0 || p != parent || strcmp(cur, name) != 0)
		return NULL;
	return s3_file_dirty(fs, n.n_id);
}

static void s3_lookup(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
		      const char *name)
{
	struct s3fs *fs = ctx;
	struct s3_file *f;
	struct s3_attr a;
	struct s3_op *o;
	char key[S3_KEY_MAX + 2];
	int err;

	(void)who;
	if (!s3_name_ok(name, strlen(name))) {
		be_reply_err(r, -ENOENT);
		return;
	}
	if ((err = s3_child_key(fs, parent, name, false, key, sizeof(key))) < 0) {
		be_reply_err(r, err);
		return;
	}
	if ((f = s3_local(fs, parent, name))) {
		s3_file_attr(f, &a);
		s3_entry_for(fs, r, parent, name, &a);
		return;
	}
	if (!(o = s3_op_named(fs, r, parent, name)))
		return;
	o->o_then = s3_lookup_done;
	s3_probe_send(o, key);
}

/* ---- GETATTR ---- */

static void s3_getattr_done(struct s3_op *o)
{
	struct s3_attr a;
	bool dir = S_ISDIR(o->o_mode);
	int err = s3_errno(&o->o_q[0], "HEAD", o->o_key[0]);

	if (err == -ENOENT && dir)
		s3_attr_default(o->o_fs, S_IFDIR, &a); /* a directory without a marker */
	else if (err < 0) {
		s3_op_fail(o, err);
		return;
	} else
		s3_attr_from(o->o_fs, &o->o_q[0], dir, &a);
	s3_reply_attr(o->o_fs, o->o_r, o->o_node, &a);
	s3_op_free(o);
}

/*
 * HEAD node's object (or marker); then runs when it ends, once the caller
 * has set what it needs in the op and called s3_op_release: the op, or
 * NULL (the request answered with the error).
 */
static struct s3_op *s3_head_node(struct s3fs *fs, struct fuse_req *r, uint64_t node,
				  void (*then)(struct s3_op *))
{
	char key[S3_KEY_MAX + 2];
	struct s3_op *o;
	uint32_t mode;
	int err;

	if ((err = s3_node_key(fs, node, true, key, sizeof(key), &mode)) < 0) {
		be_reply_err(r, err);
		return NULL;
	}
	if (key[0] == '\0') {
		/* the bucket's root: no marker can exist */
		if (!(o = s3_op_new(fs, r))) {
			be_reply_err(r, -ENOMEM);
			return NULL;
		}
		s3_op_hold(o, then);
		s3_op_req(o, 0, "HEAD", "")->status = 404;
	} else if (!(o = s3_op_head(fs, r, key, then))) {
		return NULL;
	}
	o->o_node = node;
	o->o_mode = mode;
	return o;
}

static void s3_getattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		       bool has_fh, uint64_t fh)
{
	struct s3fs *fs = ctx;
	struct s3_file *f;
	struct s3_attr a;
	struct s3_op *o;

	(void)who;
	(void)has_fh;
	(void)fh;
	if ((f = s3_file_dirty(fs, node))) {
		s3_file_attr(f, &a);
		s3_reply_attr(fs, r, node, &a);
		return;
	}
	if ((o = s3_head_node(fs, r, node, s3_getattr_done)))
		s3_op_release(o);
}

/* ---- SETATTR: metadata by copying the object onto itself ---- */

static void s3_setattr_stored(struct s3_op *o)
{
	int err = s3_errno(&o->o_q[1], "PUT", o->o_key[1]);
	char code[64];

	if (err == 0 && o->o_q[1].reply && o->o_q[1].reply_len &&
	    s3_parse_done(o->o_q[1].reply, o->o_q[1].reply_len, code, sizeof(code)) < 0) {
		log_warnx("S3 COPY %s: failed after its 200: %s", o->o_key[1], code);
		err = -EIO;
	}
	if (err < 0) {
		s3_op_fail(o, err);
		return;
	}
	s3_cache_drop(o->o_fs, o->o_node);
	s3_reply_attr(o->o_fs, o->o_r, o->o_node, &o->o_attr);
	s3_op_free(o);
}

static void s3_apply_set(const struct fuse_setattr_in *in, const struct be_caller *who,
			 struct s3_attr *a)
{
	struct timespec now;

	(void)who;
	clock_gettime(CLOCK_REALTIME, &now);
	if (in->valid & FATTR_MODE)
		a->a_mode = (a->a_mode & S_IFMT) | (in->mode & 07777);
	if (in->valid & FATTR_UID)
		a->a_uid = in->uid;
	if (in->valid & FATTR_GID)
		a->a_gid = in->gid;
	if (in->valid & FATTR_MTIME_NOW) {
		a->a_mtime = now.tv_sec;
		a->a_mtime_ns = (uint32_t)now.tv_nsec;
	} else if (in->valid & FATTR_MTIME) {
		a->a_mtime = (int64_t)in->mtime;
		a->a_mtime_ns = in->mtimensec < 1000000000u ? in->mtimensec : 0;
	}
}

static void s3_setattr_head(struct s3_op *o)
{
	struct s3fs *fs = o->o_fs;
	bool dir = S_ISDIR(o->o_mode);
	int err = s3_errno(&o->o_q[0], "HEAD", o->o_key[0]);
	struct s3_req *q;

	if (err == -ENOENT && dir)
		s3_attr_default(fs, S_IFDIR, &o->o_attr);
	else if (err < 0) {
		s3_op_fail(o, err);
		return;
	} else
		s3_attr_from(fs, &o->o_q[0], dir, &o->o_attr);
	s3_apply_set(&o->o_set, NULL, &o->o_attr);
	if (o->o_key[0][0] == '\0') {
		/* the bucket's root has nowhere to keep metadata */
		s3_reply_attr(fs, o->o_r, o->o_node, &o->o_attr);
		s3_op_free(o);
		return;
	}
	s3_op_hold(o, s3_setattr_stored);
	q = s3_op_req(o, 1, "PUT", o->o_key[0]);
	if (!dir) {
		/* the object onto itself, with the new metadata */
		s3_copy_source(fs, o->o_key[0], o->o_hdr[4], sizeof(o->o_hdr[4]));
		q->headers[q->nheaders++] = (struct s3_pair){"x-amz-copy-source", o->o_hdr[4]};
		q->headers[q->nheaders++] = (struct s3_pair){"x-amz-metadata-directive", "REPLACE"};
	}
	s3_attr_headers(o, q, 0, &o->o_attr);
	s3_op_send(o, 1);
	s3_op_release(o);
}

static void s3_setattr(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		       const struct fuse_setattr_in *in)
{
	struct s3fs *fs = ctx;
	struct s3_file *f;
	struct s3_op *o;
	struct nt_node n;

	(void)who;
	if ((f = s3_file_dirty(fs, node))) {
		s3_file_setattr(fs, f, r, in);
		return;
	}
	if (in->valid & FATTR_SIZE) {
		if (nt_node_get(fs->s_nt, node, &n) < 0) {
			be_reply_err(r, -ESTALE);
			return;
		}
		if (S_ISDIR(n.n_mode)) {
			be_reply_err(r, -EISDIR);
			return;
		}
		s3_truncate(fs, r, node, in->size);
		return;
	}
	if (!(in->valid & (FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_MTIME | FATTR_MTIME_NOW))) {
		/* atime and ctime alone: nothing the store keeps */
		if ((o = s3_head_node(fs, r, node, s3_getattr_done)))
			s3_op_release(o);
		return;
	}
	if ((o = s3_head_node(fs, r, node, s3_setattr_head))) {
		o->o_set = *in;
		s3_op_release(o);
	}
}

/* ---- STATFS: a bucket has no fixed size; say a large, honest-looking one ---- */

static void s3_statfs(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node)
{
	struct fuse_kstatfs st;

	(void)ctx;
	(void)who;
	(void)node;
	memset(&st, 0, sizeof(st));
	st.bsize = st.frsize = 4096;
	st.blocks = st.bfree = st.bavail = 1ull << 40; /* 4 PiB */
	st.files = st.ffree = 1ull << 32;
	st.namelen = NT_NAME_MAX;
	be_reply_statfs(r, &st);
}

/* ---- start-up ---- */

/* The first exchange with the gateway: what the operator must hear of at
 * once (wrong keys, no bucket, no gateway) rather than from a guest's
 * failing calls. */
static void s3_bucket_checked(struct s3_op *o)
{
	struct s3_req *q = &o->o_q[0];
	const char *bucket = o->o_fs->s_cfg.sc_bucket;

	if (q->err == -ECONNABORTED)
		log_warnx("S3: gateway %s: its certificate is refused (%s); the share fails with "
			  "EIO",
			  o->o_fs->s_cfg.sc_endpoint, q->errmsg);
	else if (q->err < 0)
		log_warnx("S3: gateway %s does not answer (%s): the share fails with EIO until it "
			  "does",
			  o->o_fs->s_cfg.sc_endpoint, q->errmsg[0] ? q->errmsg : strerror(-q->err));
	else if (q->status == 403)
		log_warnx("S3: bucket %s: access denied (403): check the credentials and their "
			  "rights; the share fails with EACCES",
			  bucket);
	else if (q->status == 404)
		log_warnx("S3: bucket %s does not exist (404)", bucket);
	else if (q->status < 200 || q->status >= 300)
		log_warnx("S3: bucket %s: status %ld", bucket, q->status);
	else
		log_debug("S3: bucket %s answers", bucket);
	s3_op_free(o);
}

static void s3_release_node(void *ctx, uint64_t id)
{
	struct s3fs *fs = ctx;

	/* another worker's FORGET: nothing of ours but the slot (the cache
	 * is the loop's, and keyed by id: a later node never meets it) */
	nt_node_free(fs->s_nt, id);
}

static int s3_init(const struct be_env *env, void **ctx)
{
	static struct peer_provider prov;
	const struct ipc_s3_config *c = env->s3_cfg;
	const struct ipc_s3_creds *k = env->s3_creds;
	struct s3_client_conf cc;
	struct s3_op *o;
	struct s3fs *fs;
	char why[256];

	if (!c || !k)
		return -EINVAL;
	if (!(fs = calloc(1, sizeof(*fs))))
		return -ENOMEM;
	fs->s_env = *env;
	fs->s_nt = env->nt;
	fs->s_cfg = *c;
	fs->s_prefix_len = strlen(c->sc_prefix);
	fs->s_stage_fd = env->root_fd;
	fs->s_mem_max = 4 * S3_PARTS_AHEAD * c->sc_part_size;
	LIST_INIT(&fs->s_dirty);
	TAILQ_INIT(&fs->s_lru);
	memset(&cc, 0, sizeof(cc));
	cc.endpoint = c->sc_endpoint;
	cc.bucket = c->sc_bucket;
	cc.region = c->sc_region;
	cc.virtual_host = c->sc_virtual != 0;
	cc.access_key = k->cr_access_key;
	cc.secret_key = k->cr_secret_key;
	cc.session_token = k->cr_session_token;
	cc.timeout_ms = (long)c->sc_timeout_ms;
	cc.max_attempts = c->sc_attempts;
	cc.ca_blob = env->s3_ca;
	cc.ca_blob_len = env->s3_ca_len;
	cc.resolve = env->s3_resolve;
	cc.max_inflight = c->sc_concurrency;
	cc.multi = env->s3_multi;
	if (!(fs->s_hidden = calloc(S3_HIDDEN_MAX, sizeof(*fs->s_hidden))) ||
	    s3_files_init(fs) < 0) {
		s3_files_free(fs);
		free(fs->s_hidden);
		free(fs);
		return -ENOMEM;
	}
	if (!(fs->s_cl = s3_client_new(env->base, &cc, why, sizeof(why)))) {
		log_warnx("S3 client: %s", why);
		s3_files_free(fs);
		free(fs->s_hidden);
		free(fs);
		return -EINVAL;
	}
	if ((o = s3_op_head(fs, NULL, "", s3_bucket_checked)))
		s3_op_release(o);
	prov.ctx = fs;
	prov.release_node = s3_release_node;
	peer_set_provider(env->peer, &prov);
	log_info("S3 bucket %s%s%s at %s (%s addressing)", c->sc_bucket, c->sc_prefix[0] ? "/" : "",
		 c->sc_prefix, c->sc_endpoint, c->sc_virtual ? "virtual" : "path");
	log_debug("S3 parts of %" PRIu64 " bytes, cache %" PRIu64 ", read-ahead %" PRIu64
		  ", staging up to %" PRIu64 ", %u requests at once",
		  c->sc_part_size, c->sc_cache_size, c->sc_readahead, c->sc_staging_limit,
		  c->sc_concurrency);
	*ctx = fs;
	return 0;
}

static void s3_destroy(void *ctx)
{
	struct s3fs *fs = ctx;

	s3_client_free(fs->s_cl);
	s3_dirs_free(fs);
	s3_files_free(fs);
	free(fs->s_hidden);
	free(fs);
}

static int s3_set_creds(void *ctx, const struct ipc_s3_creds *k)
{
	struct s3fs *fs = ctx;

	return s3_client_set_keys(fs->s_cl, k->cr_access_key, k->cr_secret_key,
				  k->cr_session_token);
}

/* The old session's node ids never match again; its handles would stay
 * in their slots, holding files, until a new handle took the slot. */
static void s3_session_reset(void *ctx)
{
	s3_files_reset(ctx);
	s3_dirs_reset(ctx);
}

const struct be_ops be_s3_ops = {
    .name = "s3",
    .init = s3_init,
    .destroy = s3_destroy,
    .session_reset = s3_session_reset,
    .set_creds = s3_set_creds,
    .lookup = s3_lookup,
    .getattr = s3_getattr,
    .readlink = s3_readlink,
    .open = s3_open,
    .read = s3_read,
    .release = s3_release,
    .flush = s3_flush,
    .opendir = s3_opendir,
    .readdir = s3_readdir,
    .releasedir = s3_releasedir,
    .statfs = s3_statfs,
    .setattr = s3_setattr,
    .write = s3_write,
    .fsync = s3_fsync,
    .create = s3_create,
    .mknod = s3_mknod,
    .unlink = s3_unlink,
    .rename = s3_rename,
};
