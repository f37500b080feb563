/*
 * s3_dir.c - directories of the S3 back end: each OPENDIR takes a snapshot
 * of the listing (ListObjectsV2 with a '/' delimiter, page by page as
 * READDIR needs them), so the offsets it hands out stay valid: the guest
 * may seek back to any of them and gets the same entries again.
 * Runs in: the S3 worker, loop thread. Listings are untrusted: a key that
 * cannot be a name is hidden (logged once), an object that has the name of
 * a directory is hidden behind it, a page that does not parse fails the
 * READDIR that waited for it.
 *
 * Offsets: 0 is ".", 1 is "..", 2 + i is the snapshot's i-th entry; the
 * offset a record carries is the one of the record after it.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "s3_fs.h"
#include "s3_xml.h"

#define S3_DIR_PAGE_MAX (8u << 20) /* the longest listing page taken */

struct s3_dent {
	char *e_name;
	uint32_t e_type; /* DT_DIR or DT_REG */
	uint64_t e_hash;
};

/* A READDIR that waits for the next page. */
struct s3_dwait {
	struct fuse_req *w_r;
	uint64_t w_off;
	uint32_t w_size;
	bool w_plus;
	struct s3_dwait *w_next;
};

struct s3_dirsnap {
	struct s3fs *d_fs;
	uint64_t d_fh, d_node;
	char d_prefix[S3_KEY_MAX + 2]; /* the directory's key with its '/' ("" for the root) */
	struct s3_dent *d_ents;
	size_t d_n, d_cap;
	uint32_t *d_set; /* open addressing: index + 1 into d_ents, by name hash */
	size_t d_setcap;
	char *d_token; /* continuation of the next page */
	bool d_done, d_fetching, d_released;
	int d_err;
	struct s3_dwait *d_waiting;
	struct s3_req d_q;
};

static struct s3_dirsnap *s3_dir_get(struct s3fs *fs, uint64_t fh)
{
	struct s3_dirsnap *d = fs->s_dirs[fh & (NT_MAX_FHS - 1)];

	return d && d->d_fh == fh && !d->d_released ? d : NULL;
}

static void s3_dir_free(struct s3_dirsnap *d)
{
	for (size_t i = 0; i < d->d_n; i++)
		free(d->d_ents[i].e_name);
	free(d->d_ents);
	free(d->d_set);
	free(d->d_token);
	s3_req_reset(&d->d_q);
	free(d);
}

/* The snapshot in fh's slot, if any, out of the table: freed now, or
 * when the page it waits for comes. */
static void s3_dir_drop(struct s3fs *fs, uint64_t fh)
{
	struct s3_dirsnap *d = fs->s_dirs[fh & (NT_MAX_FHS - 1)];

	if (!d)
		return;
	fs->s_dirs[fh & (NT_MAX_FHS - 1)] = NULL;
	if (d->d_fetching)
		d->d_released = true;
	else
		s3_dir_free(d);
}

void s3_dirs_free(struct s3fs *fs)
{
	if (!fs->s_dirs)
		return;
	for (size_t i = 0; i < NT_MAX_FHS; i++)
		if (fs->s_dirs[i] && !fs->s_dirs[i]->d_fetching)
			s3_dir_free(fs->s_dirs[i]);
	free(fs->s_dirs);
	fs->s_dirs = NULL;
}

/* ---- the snapshot's names ---- */

static int s3_set_grow(struct s3_dirsnap *d)
{
	size_t cap = d->d_setcap ? d->d_setcap * 2 : 1024;
	uint32_t *set = calloc(cap, sizeof(*set));

	if (!set)
		return -ENOMEM;
	for (size_t i = 0; i < d->d_n; i++) {
		size_t j = d->d_ents[i].e_hash & (cap - 1);

		while (set[j])
			j = (j + 1) & (cap - 1);
		set[j] = (uint32_t)i + 1;
	}
	free(d->d_set);
	d->d_set = set;
	d->d_setcap = cap;
	return 0;
}

/* The entry called name, or NULL; *slot where it would go. */
static struct s3_dent *s3_set_find(struct s3_dirsnap *d, const char *name, uint64_t h, size_t *slot)
{
	size_t j = h & (d->d_setcap - 1);

	while (d->d_set[j]) {
		struct s3_dent *e = &d->d_ents[d->d_set[j] - 1];

		if (e->e_hash == h && strcmp(e->e_name, name) == 0)
			return e;
		j = (j + 1) & (d->d_setcap - 1);
	}
	*slot = j;
	return NULL;
}

static int s3_dir_add(struct s3_dirsnap *d, const char *name, size_t len, uint32_t type,
		      const char *key)
{
	uint64_t h;
	size_t slot;
	struct s3_dent *e;
	char buf[NT_NAME_MAX + 1];

	if (!s3_name_ok(name, len)) {
		s3_hide(d->d_fs, key, "not a name a file can have");
		return 0;
	}
	memcpy(buf, name, len);
	buf[len] = '\0';
	h = s3_name_hash(buf);
	if ((d->d_n + 1) * 2 > d->d_setcap && s3_set_grow(d) < 0)
		return -ENOMEM;
	if ((e = s3_set_find(d, buf, h, &slot))) {
		/* an object and a directory of one name: the directory shows */
		if (type == DT_DIR)
			e->e_type = DT_DIR;
		s3_hide(d->d_fs, key, "a directory has the same name");
		return 0;
	}
	if (d->d_n == d->d_cap) {
		size_t cap = d->d_cap ? d->d_cap * 2 : 256;
		struct s3_dent *n = realloc(d->d_ents, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		d->d_ents = n;
		d->d_cap = cap;
	}
	if (!(d->d_ents[d->d_n].e_name = strdup(buf)))
		return -ENOMEM;
	d->d_ents[d->d_n].e_type = type;
	d->d_ents[d->d_n].e_hash = h;
	d->d_set[slot] = (uint32_t)++d->d_n;
	return 0;
}

static int s3_dir_entry(const struct s3_entry *e, void *arg)
{
	struct s3_dirsnap *d = arg;
	size_t plen = strlen(d->d_prefix), len = strlen(e->key);
	const char *rel = e->key + plen;

	if (len < plen || memcmp(e->key, d->d_prefix, plen) != 0)
		return 0; /* not below us: a gateway's mistake */
	len -= plen;
	if (e->is_prefix) {
		if (len == 0 || rel[len - 1] != '/')
			return 0;
		return s3_dir_add(d, rel, len - 1, DT_DIR, e->key);
	}
	if (len == 0)
		return 0; /* the directory's own marker */
	if (memchr(rel, '/', len)) {
		s3_hide(d->d_fs, e->key, "a name with a '/' inside");
		return 0;
	}
	return s3_dir_add(d, rel, len, DT_REG, e->key);
}

/* ---- pages ---- */

static void s3_dir_serve(struct s3_dirsnap *d, struct fuse_req *r, uint64_t off, uint32_t size,
			 bool plus);
static void s3_dir_fetch(struct s3_dirsnap *d);

static void s3_dir_page(struct s3_req *q)
{
	struct s3_dirsnap *d = q->arg;
	struct s3_list_result res;
	struct s3_dwait *w;
	int err;

	d->d_fetching = false;
	err = s3_errno(q, "LIST", d->d_prefix[0] ? d->d_prefix : "/");
	if (err == 0) {
		if (!q->reply) {
			err = -EIO;
		} else if ((err = s3_parse_list(q->reply, q->reply_len, s3_dir_entry, d, &res)) <
			   0) {
			if (err == -EPROTO)
				log_warnx("S3 LIST %s: the listing is malformed", d->d_prefix);
			err = err == -ENOMEM ? err : -EIO;
		}
	}
	s3_req_reset(q);
	if (d->d_released) {
		while ((w = d->d_waiting)) {
			d->d_waiting = w->w_next;
			be_reply_err(w->w_r, -EBADF);
			free(w);
		}
		s3_dir_free(d);
		return;
	}
	if (err == 0) {
		free(d->d_token);
		d->d_token = NULL;
		if (res.truncated && res.next_token[0]) {
			if (!(d->d_token = strdup(res.next_token)))
				err = -ENOMEM;
		} else {
			d->d_done = true;
		}
	}
	if (err < 0)
		d->d_err = err;
	/* each waiter again: served, or waiting for the next page */
	w = d->d_waiting;
	d->d_waiting = NULL;
	while (w) {
		struct s3_dwait *next = w->w_next;

		if (d->d_err < 0)
			be_reply_err(w->w_r, d->d_err);
		else
			s3_dir_serve(d, w->w_r, w->w_off, w->w_size, w->w_plus);
		free(w);
		w = next;
	}
	/* a failed page can be asked for again by the next READDIR */
	d->d_err = 0;
}

static void s3_dir_fetch(struct s3_dirsnap *d)
{
	struct s3_req *q = &d->d_q;
	int err;

	if (d->d_fetching)
		return;
	memset(q, 0, sizeof(*q));
	q->method = "GET";
	q->key = "";
	q->reply_max = S3_DIR_PAGE_MAX;
	q->query[q->nquery++] = (struct s3_pair){"list-type", "2"};
	q->query[q->nquery++] = (struct s3_pair){"prefix", d->d_prefix};
	q->query[q->nquery++] = (struct s3_pair){"delimiter", "/"};
	q->query[q->nquery++] = (struct s3_pair){"encoding-type", "url"};
	q->query[q->nquery++] = (struct s3_pair){"max-keys", S3_LIST_PAGE};
	if (d->d_token)
		q->query[q->nquery++] = (struct s3_pair){"continuation-token", d->d_token};
	q->done = s3_dir_page;
	q->arg = d;
	d->d_fetching = true;
	if ((err = s3_submit(d->d_fs->s_cl, q)) < 0) {
		q->err = err;
		s3_dir_page(q);
	}
}

/* ---- records ---- */

static size_t s3_rec_len(size_t namelen, bool plus)
{
	return FUSE_DIRENT_ALIGN((plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET) + namelen);
}

/* One record into buf at *used; false when it does not fit. READDIRPLUS
 * records carry no node (nodeid 0): the guest's kernel then treats them as
 * plain entries and looks up what it stats, which fetches the metadata a
 * listing does not hold. */
static bool s3_rec(char *buf, size_t cap, size_t *used, bool plus, const char *name, uint64_t ino,
		   uint32_t type, uint64_t next)
{
	size_t namelen = strlen(name), len = s3_rec_len(namelen, plus);
	struct fuse_dirent *fd;

	if (*used + len > cap)
		return false;
	memset(buf + *used, 0, len);
	if (plus) {
		struct fuse_direntplus *dp = (struct fuse_direntplus *)(buf + *used);

		fd = &dp->dirent;
	} else {
		fd = (struct fuse_dirent *)(buf + *used);
	}
	fd->ino = ino;
	fd->off = next;
	fd->namelen = (uint32_t)namelen;
	fd->type = type;
	memcpy(fd->name, name, namelen);
	*used += len;
	return true;
}

/* r waits for the next page, then is served from off again. */
static void s3_dir_wait(struct s3_dirsnap *d, struct fuse_req *r, uint64_t off, uint32_t size,
			bool plus)
{
	struct s3_dwait *w = calloc(1, sizeof(*w));

	if (!w) {
		be_reply_err(r, -ENOMEM);
		return;
	}
	*w = (struct s3_dwait){.w_r = r, .w_off = off, .w_size = size, .w_plus = plus};
	w->w_next = d->d_waiting;
	d->d_waiting = w;
	s3_dir_fetch(d);
}

static void s3_dir_serve(struct s3_dirsnap *d, struct fuse_req *r, uint64_t off, uint32_t size,
			 bool plus)
{
	uint64_t start = off;
	size_t used = 0;
	char *buf;

	if (!(buf = malloc(size ? size : 1))) {
		be_reply_err(r, -ENOMEM);
		return;
	}
	for (;;) {
		bool ok;

		if (off == 0)
			ok = s3_rec(buf, size, &used, plus, ".", d->d_node, DT_DIR, 1);
		else if (off == 1)
			ok = s3_rec(buf, size, &used, plus, "..", 1, DT_DIR, 2);
		else if (off - 2 < d->d_n)
			ok = s3_rec(buf, size, &used, plus, d->d_ents[off - 2].e_name,
				    d->d_ents[off - 2].e_hash | 1, d->d_ents[off - 2].e_type,
				    off + 1);
		else
			break;
		if (!ok)
			break;
		off++;
	}
	/* room left past what the snapshot holds: the next page first (a
	 * full reply saves the guest a round trip), unless the listing is
	 * complete */
	if (off >= 2 && off - 2 >= d->d_n && !d->d_done) {
		free(buf);
		s3_dir_wait(d, r, start, size, plus);
		return;
	}
	be_reply_buf(r, buf, used);
	free(buf);
}

/* ---- the operations ---- */

void s3_opendir(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node,
		uint32_t flags)
{
	struct s3fs *fs = ctx;
	struct s3_dirsnap *d;
	struct nt_fh fh;
	uint32_t mode;
	int err;

	(void)who;
	if (!(d = calloc(1, sizeof(*d)))) {
		be_reply_err(r, -ENOMEM);
		return;
	}
	if ((err = s3_node_key(fs, node, true, d->d_prefix, sizeof(d->d_prefix), &mode)) < 0 ||
	    (err = S_ISDIR(mode) ? 0 : -ENOTDIR) < 0 ||
	    (err = nt_fh_alloc(fs->s_nt, node, fs->s_env.self, flags, true, &fh)) < 0) {
		free(d);
		be_reply_err(r, err);
		return;
	}
	d->d_fs = fs;
	d->d_fh = fh.f_id;
	d->d_node = node;
	s3_dir_drop(fs, fh.f_id); /* what a dropped session left in the slot */
	fs->s_dirs[fh.f_id & (NT_MAX_FHS - 1)] = d;
	be_reply_open(r, fh.f_id, 0);
}

void s3_readdir(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
		uint64_t off, uint32_t size, bool plus)
{
	struct s3fs *fs = ctx;
	struct s3_dirsnap *d = s3_dir_get(fs, fh);

	(void)who;
	if (!d) {
		be_reply_err(r, -EBADF);
		return;
	}
	if (off > (uint64_t)d->d_n + 2) {
		/* a seek beyond the entries read so far: read on until there */
		if (!d->d_done) {
			struct s3_dwait *w = calloc(1, sizeof(*w));

			if (!w) {
				be_reply_err(r, -ENOMEM);
				return;
			}
			*w = (struct s3_dwait){
			    .w_r = r, .w_off = off, .w_size = size, .w_plus = plus};
			w->w_next = d->d_waiting;
			d->d_waiting = w;
			s3_dir_fetch(d);
			return;
		}
		be_reply_buf(r, NULL, 0);
		return;
	}
	s3_dir_serve(d, r, off, size, plus);
}

void s3_releasedir(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh)
{
	struct s3fs *fs = ctx;
	struct s3_dirsnap *d = s3_dir_get(fs, fh);

	(void)who;
	if (!d) {
		be_reply_err(r, -EBADF);
		return;
	}
	nt_fh_free(fs->s_nt, fh);
	s3_dir_drop(fs, fh);
	be_reply_err(r, 0);
}

bool s3_dir_is_open(struct s3fs *fs, uint64_t fh)
{
	return s3_dir_get(fs, fh) != NULL;
}

void s3_dirs_reset(struct s3fs *fs)
{
	for (uint64_t slot = 0; slot < NT_MAX_FHS; slot++)
		s3_dir_drop(fs, slot);
}
