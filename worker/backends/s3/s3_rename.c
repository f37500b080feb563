/*
 * s3_rename.c - RENAME in a bucket: every key of the file or directory
 * copied to its new name (s3_copy.c), then the old ones deleted, then the
 * node re-keyed in the node table, so that what the guest holds of the
 * tree (open files, known descendants) follows it.
 * Runs in: the S3 worker, loop thread. A directory's rename is not atomic:
 * the table in bulkhead.conf(5), S3 SEMANTICS, says what others may see.
 */
#include "config.h"

#include <errno.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "s3_fs.h"
#include "s3_xml.h"

static void s3_rename_step(struct s3_op *o);

static void s3_rename_finish(struct s3_op *o)
{
	struct s3fs *fs = o->o_fs;
	uint64_t target;
	int err;

	if (o->o_err < 0) {
		s3_op_fail(o, o->o_err);
		return;
	}
	if ((target = s3_named(fs, o->o_newparent, o->o_newname)) != 0 && target != o->o_node) {
		/* what the name held is gone, changes not stored yet with it */
		s3_file_discard(fs, target);
		s3_cache_drop(fs, target);
	}
	err = nt_node_move(fs->s_nt, o->o_node, o->o_newparent, o->o_newname,
			   s3_name_hash(o->o_newname));
	if (err < 0)
		log_warnx("S3 RENAME %s: the node: %s", o->o_name, strerror(-err));
	s3_cache_drop(fs, o->o_node);
	s3_op_fail(o, 0);
}

/* One key of the move has been copied or deleted. */
static void s3_rename_key_done(void *arg, int err)
{
	struct s3_op *o = arg;

	if (err < 0 && err != -ENOENT && o->o_err == 0)
		o->o_err = err;
	o->o_done_keys++;
	s3_rename_step(o);
}

static void s3_rename_deleted(struct s3_req *q)
{
	int err = s3_errno(q, "DELETE", q->key);

	s3_req_reset(q);
	free((void *)q->key);
	s3_rename_key_done(q->arg, err);
	free(q);
}

/*
 * Copy every key (o_keys, under the old key) to the new key, then delete
 * them all, keeping concurrency requests in flight; a failed copy stops
 * before any delete, so the old tree stays whole (the new one may be
 * partly there: a directory rename is not atomic in a bucket).
 */
static void s3_rename_step(struct s3_op *o)
{
	struct s3fs *fs = o->o_fs;
	size_t oldlen = strlen(o->o_old), n = o->o_nkeys;
	char dst[S3_KEY_MAX + 2];

	while (o->o_err == 0 && o->o_next_key < 2 * n &&
	       o->o_next_key - o->o_done_keys < fs->s_cfg.sc_concurrency) {
		size_t i = o->o_next_key % n;
		struct s3_req *q;

		if (o->o_next_key < n) {
			if ((size_t)snprintf(dst, sizeof(dst), "%s%s", o->o_new,
					     o->o_keys[i] + oldlen) >= S3_KEY_MAX + 1) {
				o->o_err = -ENAMETOOLONG;
				break;
			}
			o->o_next_key++;
			s3_copy_key(fs, o->o_keys[i], dst, o->o_sizes ? o->o_sizes[i] : UINT64_MAX,
				    s3_rename_key_done, o);
			continue;
		}
		if (o->o_done_keys < n)
			break; /* every copy first */
		if (!(q = calloc(1, sizeof(*q))) || !(q->key = strdup(o->o_keys[i]))) {
			free(q);
			o->o_err = -ENOMEM;
			break;
		}
		q->method = "DELETE";
		q->reply_max = 64 << 10;
		q->done = s3_rename_deleted;
		q->arg = o;
		o->o_next_key++;
		if (s3_submit(fs->s_cl, q) < 0) {
			q->err = -EIO;
			s3_rename_deleted(q);
			return;
		}
	}
	if (o->o_done_keys == o->o_next_key && (o->o_err < 0 || o->o_next_key == 2 * n))
		s3_rename_finish(o);
}

static int s3_collect_key(const struct s3_entry *e, void *arg)
{
	struct s3_op *o = arg;
	char **k;

	if (e->is_prefix)
		return 0;
	uint64_t *sz;

	if (!(k = realloc(o->o_keys, (o->o_nkeys + 1) * sizeof(*k))))
		return -ENOMEM;
	o->o_keys = k;
	if (!(sz = realloc(o->o_sizes, (o->o_nkeys + 1) * sizeof(*sz))))
		return -ENOMEM;
	o->o_sizes = sz;
	if (!(k[o->o_nkeys] = strdup(e->key)))
		return -ENOMEM;
	sz[o->o_nkeys++] = e->size;
	return 0;
}

static void s3_rename_list_page(struct s3_op *o);

static void s3_rename_listed(struct s3_op *o)
{
	struct s3_list_result res;
	struct s3_req *q = &o->o_q[2];
	int err = s3_errno(q, "LIST", o->o_old);

	if (err == 0 &&
	    (!q->reply || s3_parse_list(q->reply, q->reply_len, s3_collect_key, o, &res) < 0))
		err = -EIO;
	if (err < 0) {
		s3_op_fail(o, err);
		return;
	}
	if (res.truncated && res.next_token[0]) {
		free(o->o_token);
		o->o_token = strdup(res.next_token);
		if (!o->o_token) {
			s3_op_fail(o, -ENOMEM);
			return;
		}
		s3_rename_list_page(o);
		return;
	}
	if (o->o_nkeys == 0) {
		/* a directory of this worker's making only, nothing stored yet */
		s3_rename_finish(o);
		return;
	}
	s3_rename_step(o);
}

static void s3_rename_list_page(struct s3_op *o)
{
	struct s3_req *q;

	s3_op_hold(o, s3_rename_listed);
	q = s3_op_req(o, 2, "GET", "");
	q->reply_max = 4 << 20;
	q->query[q->nquery++] = (struct s3_pair){"list-type", "2"};
	q->query[q->nquery++] = (struct s3_pair){"prefix", o->o_old};
	q->query[q->nquery++] = (struct s3_pair){"encoding-type", "url"};
	if (o->o_token)
		q->query[q->nquery++] = (struct s3_pair){"continuation-token", o->o_token};
	s3_op_send(o, 2);
	s3_op_release(o);
}

/* The old key of a file with unstored changes is gone: move the node. */
static void s3_rename_old_deleted(struct s3_op *o)
{
	int err = s3_errno(&o->o_q[1], "DELETE", o->o_old);

	if (err < 0 && err != -ENOENT)
		o->o_err = err;
	s3_rename_finish(o);
}

/* The target: must not exist with RENAME_NOREPLACE; a directory over a
 * non-empty one is ENOTEMPTY. */
static void s3_rename_checked(struct s3_op *o)
{
	struct s3_list_result res;
	struct s3_req *q = &o->o_q[0];
	int err = s3_errno(q, q->method, o->o_new), r;

	if (err < 0 && err != -ENOENT) {
		s3_op_fail(o, err);
		return;
	}
	if (S_ISDIR(o->o_mode)) {
		if (!q->reply || (r = s3_parse_list(q->reply, q->reply_len, s3_list_one_other,
						    o->o_new, &res)) < 0) {
			s3_op_fail(o, -EIO);
			return;
		}
		if (r == 1) {
			s3_op_fail(o, (o->o_flags & RENAME_NOREPLACE) ? -EEXIST : -ENOTEMPTY);
			return;
		}
		if ((err = s3_files_rekey_under(o->o_fs, o->o_old)) < 0) {
			s3_op_fail(o, err);
			return;
		}
		s3_rename_list_page(o);
		return;
	}
	if (err == 0 && (o->o_flags & RENAME_NOREPLACE)) {
		s3_op_fail(o, -EEXIST);
		return;
	}
	if (s3_file_dirty(o->o_fs, o->o_node)) {
		/* changes not stored yet go to the new name when they are; what
		 * the store holds under the old one goes */
		if ((err = s3_file_rekey(o->o_fs, o->o_node)) < 0) {
			s3_op_fail(o, err);
			return;
		}
		s3_op_hold(o, s3_rename_old_deleted);
		s3_op_req(o, 1, "DELETE", o->o_old);
		s3_op_send(o, 1);
		s3_op_release(o);
		return;
	}
	if (!(o->o_keys = calloc(1, sizeof(char *))) || !(o->o_keys[0] = strdup(o->o_old))) {
		s3_op_fail(o, -ENOMEM);
		return;
	}
	o->o_nkeys = 1;
	s3_rename_step(o);
}

void s3_rename(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t olddir,
		      const char *oldname, uint64_t newdir, const char *newname, uint32_t flags)
{
	struct s3fs *fs = ctx;
	struct nt_node n;
	struct s3_req *q;
	struct s3_op *o;
	uint64_t id;
	int err;

	(void)who;
	if (flags & ~(uint32_t)RENAME_NOREPLACE) {
		be_reply_err(r, -EINVAL); /* no atomic exchange, no whiteouts in a bucket */
		return;
	}
	if (!s3_name_ok(oldname, strlen(oldname)) || !s3_name_ok(newname, strlen(newname))) {
		be_reply_err(r, -EINVAL);
		return;
	}
	if (!(id = s3_named(fs, olddir, oldname)) || nt_node_get(fs->s_nt, id, &n) < 0) {
		be_reply_err(r, -ENOENT); /* the guest renames what it looked up */
		return;
	}
	if (!(o = s3_op_new(fs, r))) {
		be_reply_err(r, -ENOMEM);
		return;
	}
	o->o_node = id;
	o->o_mode = n.n_mode & S_IFMT;
	o->o_flags = flags;
	o->o_parent = olddir;
	o->o_newparent = newdir;
	snprintf(o->o_name, sizeof(o->o_name), "%s", oldname);
	snprintf(o->o_newname, sizeof(o->o_newname), "%s", newname);
	if ((err = s3_child_key(fs, olddir, oldname, S_ISDIR(o->o_mode), o->o_old,
				sizeof(o->o_old))) < 0 ||
	    (err = s3_child_key(fs, newdir, newname, S_ISDIR(o->o_mode), o->o_new,
				sizeof(o->o_new))) < 0) {
		s3_op_fail(o, err);
		return;
	}
	if (S_ISDIR(o->o_mode) && strncmp(o->o_new, o->o_old, strlen(o->o_old)) == 0) {
		s3_op_fail(o, -EINVAL); /* into itself */
		return;
	}
	s3_op_hold(o, s3_rename_checked);
	if (S_ISDIR(o->o_mode)) {
		q = s3_op_req(o, 0, "GET", "");
		q->query[q->nquery++] = (struct s3_pair){"list-type", "2"};
		q->query[q->nquery++] = (struct s3_pair){"prefix", o->o_new};
		q->query[q->nquery++] = (struct s3_pair){"max-keys", "2"};
		q->query[q->nquery++] = (struct s3_pair){"encoding-type", "url"};
	} else {
		s3_op_req(o, 0, "HEAD", o->o_new);
	}
	s3_op_send(o, 0);
	s3_op_release(o);
}
