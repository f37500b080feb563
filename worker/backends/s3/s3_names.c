/*
 * s3_names.c - the S3 back end's operations that make or remove a name:
 * MKDIR (a "dir/" marker object holding the directory's metadata), MKNOD
 * of a regular file (an empty object), SYMLINK (a small object whose mode
 * says S_IFLNK), READLINK, UNLINK and RMDIR (ENOTEMPTY while anything but
 * its marker is below it, here or in the bucket).
 * Runs in: the S3 worker, loop thread.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "s3_fs.h"
#include "s3_xml.h"

/* ---- MKDIR, MKNOD, SYMLINK: a marker, an empty object, a small object ---- */

static void s3_made(struct s3_op *o)
{
	int err = s3_errno(&o->o_q[0], "PUT", o->o_key[0]);

	if (err < 0) {
		s3_op_fail(o, err);
		return;
	}
	snprintf(o->o_attr.a_etag, sizeof(o->o_attr.a_etag), "%s", o->o_q[0].etag);
	s3_entry_for(o->o_fs, o->o_r, o->o_parent, o->o_name, &o->o_attr);
	s3_op_free(o);
}

void s3_mknod(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
		     const char *name, uint32_t mode, uint32_t rdev, const char *target)
{
	struct s3fs *fs = ctx;
	uint32_t type = target ? S_IFLNK : (mode & S_IFMT) ? mode & S_IFMT : S_IFDIR;
	char key[S3_KEY_MAX + 2];
	struct timespec now;
	struct s3_req *q;
	struct s3_op *o;
	int err;

	(void)rdev;
	if (type != S_IFDIR && type != S_IFREG && type != S_IFLNK) {
		be_reply_err(r, -EPERM); /* no device nodes, FIFOs or sockets in a bucket */
		return;
	}
	if (!s3_name_ok(name, strlen(name))) {
		be_reply_err(r, -EINVAL);
		return;
	}
	if (target && strlen(target) > S3_READLINK_MAX) {
		be_reply_err(r, -ENAMETOOLONG);
		return;
	}
	if ((err = s3_child_key(fs, parent, name, type == S_IFDIR, key, sizeof(key))) < 0) {
		be_reply_err(r, err);
		return;
	}
	if (!(o = s3_op_new(fs, r)) || (target && !(o->o_body = strdup(target)))) {
		s3_op_free(o);
		be_reply_err(r, -ENOMEM);
		return;
	}
	o->o_parent = parent;
	snprintf(o->o_name, sizeof(o->o_name), "%s", name);
	clock_gettime(CLOCK_REALTIME, &now);
	o->o_attr.a_mode = type | (type == S_IFLNK ? 0777 : mode & 07777);
	o->o_attr.a_uid = who->bc_uid;
	o->o_attr.a_gid = who->bc_has_supp_gid ? who->bc_supp_gid : who->bc_gid;
	o->o_attr.a_mtime = now.tv_sec;
	o->o_attr.a_mtime_ns = (uint32_t)now.tv_nsec;
	o->o_attr.a_size = target ? strlen(target) : 0;
	s3_op_hold(o, s3_made);
	q = s3_op_req(o, 0, "PUT", key);
	if (target) {
		q->body = o->o_body;
		q->body_len = strlen(target);
	}
	s3_attr_headers(o, q, 0, &o->o_attr);
	s3_op_send(o, 0);
	s3_op_release(o);
}

/* ---- READLINK ---- */

static void s3_readlink_done(struct s3_op *o)
{
	struct s3_req *q = &o->o_q[0];
	int err = s3_errno(q, "GET", o->o_key[0]);

	if (err < 0)
		s3_op_fail(o, err);
	else if (!q->reply || q->reply_len == 0 || memchr(q->reply, '\0', q->reply_len))
		s3_op_fail(o, -EIO); /* not a target a symlink can have */
	else {
		be_reply_buf(o->o_r, q->reply, q->reply_len);
		s3_op_free(o);
	}
}

void s3_readlink(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t node)
{
	struct s3fs *fs = ctx;
	char key[S3_KEY_MAX + 2];
	struct s3_op *o;
	uint32_t mode;
	int err;

	(void)who;
	if ((err = s3_node_key(fs, node, false, key, sizeof(key), &mode)) < 0) {
		be_reply_err(r, err);
		return;
	}
	if (!S_ISLNK(mode)) {
		be_reply_err(r, -EINVAL);
		return;
	}
	if (!(o = s3_op_new(fs, r))) {
		be_reply_err(r, -ENOMEM);
		return;
	}
	s3_op_hold(o, s3_readlink_done);
	s3_op_req(o, 0, "GET", key)->reply_max = S3_READLINK_MAX;
	s3_op_send(o, 0);
	s3_op_release(o);
}

/* ---- UNLINK, RMDIR ---- */

/* The node (parent, name) names now, if any: its id, or 0. */
uint64_t s3_named(struct s3fs *fs, uint64_t parent, const char *name)
{
	struct nt_node n;
	uint64_t p;
	char cur[NT_NAME_MAX + 1];

	if (nt_node_find(fs->s_nt, parent, s3_name_hash(name), &n) < 0 ||
	    nt_node_name(fs->s_nt, n.n_id, &p, cur) < 0 || p != parent || strcmp(cur, name) != 0)
		return 0;
	return n.n_id;
}

static void s3_unlinked(struct s3_op *o)
{
	int err = s3_errno(&o->o_q[1], "DELETE", o->o_key[1]);
	uint64_t id;

	if (err < 0 && err != -ENOENT) {
		s3_op_fail(o, err);
		return;
	}
	if ((id = s3_named(o->o_fs, o->o_parent, o->o_name)) != 0) {
		s3_file_discard(o->o_fs, id);
		s3_cache_drop(o->o_fs, id);
		nt_node_detach(o->o_fs->s_nt, id);
	}
	s3_op_fail(o, 0);
}

/* The listing under a directory's key: is there anything but its marker? */
int s3_list_one_other(const struct s3_entry *e, void *arg)
{
	const char *marker = arg;

	return strcmp(e->key, marker) != 0 ? 1 : 0;
}

static void s3_rmdir_check(struct s3_op *o)
{
	struct s3_list_result res;
	int err = s3_errno(&o->o_q[0], "LIST", o->o_old), r;
	uint64_t id;

	if (err < 0) {
		s3_op_fail(o, err);
		return;
	}
	if (!o->o_q[0].reply || (r = s3_parse_list(o->o_q[0].reply, o->o_q[0].reply_len,
						   s3_list_one_other, o->o_old, &res)) < 0) {
		s3_op_fail(o, -EIO);
		return;
	}
	id = s3_named(o->o_fs, o->o_parent, o->o_name);
	if (r == 1 || (id && s3_dirty_in(o->o_fs, id))) {
		s3_op_fail(o, -ENOTEMPTY);
		return;
	}
	s3_op_hold(o, s3_unlinked);
	s3_op_req(o, 1, "DELETE", o->o_old);
	s3_op_send(o, 1);
	s3_op_release(o);
}

void s3_unlink(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t parent,
		      const char *name, bool dir)
{
	struct s3fs *fs = ctx;
	char key[S3_KEY_MAX + 2];
	struct s3_req *q;
	struct s3_op *o;
	int err;

	(void)who;
	if (!s3_name_ok(name, strlen(name))) {
		be_reply_err(r, dir ? -EINVAL : -ENOENT);
		return;
	}
	if ((err = s3_child_key(fs, parent, name, dir, key, sizeof(key))) < 0) {
		be_reply_err(r, err);
		return;
	}
	if (!(o = s3_op_named(fs, r, parent, name)))
		return;
	if (!dir) {
		s3_op_hold(o, s3_unlinked);
		s3_op_req(o, 1, "DELETE", key);
		s3_op_send(o, 1);
		s3_op_release(o);
		return;
	}
	/* RMDIR: two keys under it, to tell an empty directory (its marker at
	 * most) from one that is not */
	snprintf(o->o_old, sizeof(o->o_old), "%s", key);
	s3_op_hold(o, s3_rmdir_check);
	q = s3_op_req(o, 0, "GET", "");
	q->query[q->nquery++] = (struct s3_pair){"list-type", "2"};
	q->query[q->nquery++] = (struct s3_pair){"prefix", o->o_old};
	q->query[q->nquery++] = (struct s3_pair){"max-keys", "2"};
	q->query[q->nquery++] = (struct s3_pair){"encoding-type", "url"};
	s3_op_send(o, 0);
	s3_op_release(o);
}
