/*
 * passthrough_dir.c - READDIR and READDIRPLUS of the host-directory back
 * end: host getdents64 records turned into FUSE dirent records, with a
 * counted lookup for each entry of a PLUS listing.
 * Runs in: the worker (sandboxed), listings on the loop thread or a pool
 * thread; a large READDIRPLUS page shares its lookups between both. The handle
 * and offset come from the guest: the handle is checked by the node table
 * (a directory handle, live), the offset is the host's own d_off cookie
 * (<= INT64_MAX) and the reply never exceeds the guest's size, which the
 * dispatcher clamped to max_pages (fuse_max_payload): the reply buffer is
 * at most that size, the host records read ahead PT_DIRSTREAM_BUF for each
 * of at most PT_DIRSTREAMS handles.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "fdtable.h"
#include "node_table.h"
#include "passthrough.h"

struct pt_dirent64 { /* the kernel's linux_dirent64 */
	uint64_t d_ino;
	int64_t d_off;
	uint16_t d_reclen;
	uint8_t d_type;
	char d_name[];
};

/*
 * One host record of a reply: its size there (0: the name is too long for
 * FUSE, skipped) and, for READDIRPLUS, the entry its lookup found (s_ok
 * false: it vanished before the lookup, skipped).
 */
struct pt_dir_slot {
	const struct pt_dirent64 *s_d;
	size_t s_rec;
	bool s_ok;
	struct fuse_entry_out s_e;
};

static size_t pt_dir_rec(const struct pt_dirent64 *d, bool plus)
{
	size_t namelen = strlen(d->d_name);

	if (namelen > NAME_MAX)
		return 0;
	return FUSE_DIRENT_ALIGN((plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET) + namelen);
}

/* READDIRPLUS: the counted lookup of slot s's name in directory dirfd. */
static void pt_dir_lookup(struct pt *pt, int dirfd, uint64_t dirnode, uint64_t dirdev,
			  struct pt_dir_slot *s)
{
	const struct pt_dirent64 *d = s->s_d;
	struct stat st;

	s->s_ok = false;
	if (s->s_rec == 0)
		return;
	if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) {
		/* No node id and no reference for the dots (the kernel skips them). */
		const char *name = dirnode == NT_ROOT_ID ? "." : d->d_name;

		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return;
		pt_fill_entry(pt, &s->s_e, 0, &st);
		s->s_e.entry_valid = s->s_e.attr_valid = 0;
	} else if (pt_lookup_known(pt, dirfd, dirdev, dirnode, d->d_name, d->d_ino, &s->s_e) < 0 &&
		   pt_lookup_at(pt, dirfd, dirnode, d->d_name, false, &s->s_e) < 0) {
		return;
	}
	s->s_ok = true;
}

/* Slot s's record at buf + used (room checked when it was gathered). */
static size_t pt_dir_emit(const struct pt_dir_slot *s, bool plus, char *buf, size_t used)
{
	const struct pt_dirent64 *d = s->s_d;
	size_t namelen = strlen(d->d_name);
	struct fuse_dirent *fd;
	uint32_t type = d->d_type;
	uint64_t ino = d->d_ino;

	memset(buf + used, 0, s->s_rec); /* record padding is zero */
	if (plus) {
		struct fuse_direntplus *dp = (struct fuse_direntplus *)(buf + used);

		dp->entry_out = s->s_e;
		type = (s->s_e.attr.mode & S_IFMT) >> 12;
		ino = s->s_e.attr.ino;
		fd = &dp->dirent;
	} else {
		fd = (struct fuse_dirent *)(buf + used);
	}
	fd->ino = ino;
	fd->off = (uint64_t)d->d_off;
	fd->namelen = (uint32_t)namelen;
	fd->type = type;
	memcpy(fd->name, d->d_name, namelen);
	return used + s->s_rec;
}

/*
 * The lookups of a READDIRPLUS reply are most of its cost (an O_PATH open
 * and an fstat each: about 4 us, 25 to a page), and one page is one
 * request at a time from a guest's `ls -l`. So the loop thread, when it
 * serves the listing and the pool is idle, calls a pool thread in to help:
 * both take the next name not yet taken until none is left, so however late
 * the pool thread wakes, neither waits for the other longer than one
 * lookup, and one that never comes (the pool was busy after all) costs
 * nothing but the loop doing them all. Measured with `make bench`
 * (readdirplus_3k, 3 runs): 1.06x virtiofsd with the loop alone, 1.24x
 * with a fixed half given to the pool, 1.33x and 1.41x with the names
 * shared this way (1.26x on a memory share).
 */
#define PT_DIR_BATCH	 128 /* records gathered before their lookups run */
#define PT_DIR_SHARE_MIN 8   /* fewer names are not worth calling the pool */

struct pt_dir_work {
	struct pt *w_pt;
	int w_dirfd;
	uint64_t w_node, w_dev;
	struct pt_dir_slot *w_slots;
	unsigned w_n;
	unsigned w_next; /* the next slot to take, atomic */
	unsigned w_done; /* slots looked up, atomic */
	int w_refs;	 /* the loop's and the pool job's, atomic */
};

/* Take and look up slots until none is left. */
static void pt_dir_work_run(struct pt_dir_work *w)
{
	unsigned i;

	while ((i = __atomic_fetch_add(&w->w_next, 1, __ATOMIC_RELAXED)) < w->w_n) {
		pt_dir_lookup(w->w_pt, w->w_dirfd, w->w_node, w->w_dev, &w->w_slots[i]);
		__atomic_fetch_add(&w->w_done, 1, __ATOMIC_RELEASE);
	}
}

static void pt_dir_work_put(struct pt_dir_work *w)
{
	if (__atomic_sub_fetch(&w->w_refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(w);
}

/* Pool thread. */
static void pt_dir_work_job(void *arg)
{
	pt_dir_work_run(arg);
	pt_dir_work_put(arg);
}

static void pt_dir_lookups(struct pt_job *j, int dirfd, uint64_t dirnode, uint64_t dirdev,
			   struct pt_dir_slot *slots, unsigned n)
{
	struct pt *pt = j->j_pt;
	struct pt_dir_work one, *w = &one;

	if (j->j_inline && n >= PT_DIR_SHARE_MIN && !tp_busy(pt->pt_env.tp) &&
	    (w = malloc(sizeof(*w))) == NULL)
		w = &one;
	*w = (struct pt_dir_work){.w_pt = pt,
				  .w_dirfd = dirfd,
				  .w_node = dirnode,
				  .w_dev = dirdev,
				  .w_slots = slots,
				  .w_n = n,
				  .w_refs = w == &one ? 1 : 2};
	if (w != &one)
		tp_submit(pt->pt_env.tp, pt_dir_work_job, w);
	pt_dir_work_run(w);
	/* at most the one the pool thread is looking up now */
	while (__atomic_load_n(&w->w_done, __ATOMIC_ACQUIRE) < n)
		sched_yield();
	if (w != &one)
		pt_dir_work_put(w);
}

/*
 * Read-ahead per directory handle. One getdents64 fills a buffer with more
 * host records than a guest's READDIR(PLUS) takes (a PLUS reply of one page
 * holds about 25 entries); what is left waits here with the cookie the
 * guest's next READDIR of that handle will send. That READDIR reads on from
 * the buffer, and then from the descriptor where the buffer ended, with no
 * lseek: on an ext4 directory with an index an lseek makes the next
 * getdents64 start its walk in hash order over (measured: 75 us a READDIR
 * in a guest's ls -l, against a few when reading on). Only for a handle
 * this worker opened and lent to no other (a borrowed duplicate shares the
 * descriptor's position); any other cookie seeks as before.
 */

/* Locked (pt_dirs_mu). Handle fh's read-ahead, or NULL. */
static struct pt_dirstream *pt_dirstream_of(struct pt *pt, uint64_t fh)
{
	for (unsigned i = 0; i < PT_DIRSTREAMS; i++)
		if (pt->pt_dirs[i].ds_fh == fh && pt->pt_dirs[i].ds_buf)
			return &pt->pt_dirs[i];
	return NULL;
}

/* The read-ahead of handle fh, taken out of the table (no other READDIR can
 * use it meanwhile), or a new empty buffer; true when it continues at off. */
static bool pt_dirstream_take(struct pt *pt, uint64_t fh, uint64_t off, bool mine,
			      struct pt_dirstream *ds)
{
	struct pt_dirstream *s;
	bool cont = false;

	memset(ds, 0, sizeof(*ds));
	pthread_mutex_lock(&pt->pt_dirs_mu);
	if ((s = pt_dirstream_of(pt, fh)) != NULL) {
		*ds = *s;
		cont = mine && s->ds_next == off;
		memset(s, 0, sizeof(*s));
	}
	pthread_mutex_unlock(&pt->pt_dirs_mu);
	if (!ds->ds_buf)
		ds->ds_buf = malloc(PT_DIRSTREAM_BUF);
	if (!cont)
		ds->ds_len = ds->ds_pos = 0;
	return cont;
}

/* Keep ds for handle fh (the slot used longest ago goes), or free it. */
static void pt_dirstream_put(struct pt *pt, uint64_t fh, struct pt_dirstream *ds, bool keep)
{
	struct pt_dirstream *slot = NULL;
	char *gone = NULL;

	if (!keep || !ds->ds_buf) {
		free(ds->ds_buf);
		return;
	}
	pthread_mutex_lock(&pt->pt_dirs_mu);
	for (unsigned i = 0; i < PT_DIRSTREAMS; i++) {
		struct pt_dirstream *s = &pt->pt_dirs[i];

		if (!s->ds_buf) {
			slot = s;
			break;
		}
		if (!slot || s->ds_tick < slot->ds_tick)
			slot = s;
	}
	gone = slot->ds_buf;
	*slot = *ds;
	slot->ds_fh = fh;
	slot->ds_tick = ++pt->pt_dirs_tick;
	pthread_mutex_unlock(&pt->pt_dirs_mu);
	free(gone);
}

void pt_dirstream_drop(struct pt *pt, uint64_t fh)
{
	struct pt_dirstream *s;
	char *gone = NULL;

	pthread_mutex_lock(&pt->pt_dirs_mu);
	if ((s = pt_dirstream_of(pt, fh)) != NULL) {
		gone = s->ds_buf;
		memset(s, 0, sizeof(*s));
	}
	pthread_mutex_unlock(&pt->pt_dirs_mu);
	free(gone);
}

void pt_dirstreams_free(struct pt *pt)
{
	for (unsigned i = 0; i < PT_DIRSTREAMS; i++)
		free(pt->pt_dirs[i].ds_buf);
	memset(pt->pt_dirs, 0, sizeof(pt->pt_dirs));
}

static void pt_do_readdir(void *arg)
{
	struct pt_job *j = pt_job_of(arg);
	struct pt *pt = j->j_pt;
	size_t size = j->j_size, used = 0, ret_pos;
	uint64_t ret_off = j->j_off, dirdev = 0;
	struct pt_dirstream ds;
	struct pt_dir_slot *slots = NULL;
	char *buf = NULL;
	bool full = false, eof = false, mine;
	struct nt_fh fh;
	int fd, err = 0;

	if ((err = nt_fh_get(pt->pt_env.nt, j->j_id, &fh)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	if (!fh.f_isdir) {
		be_reply_err(arg, -ENOTDIR);
		return;
	}
	if ((err = fdt_fh_get(pt->pt_fdt, j->j_id, &fd)) < 0) {
		be_reply_err(arg, err);
		return;
	}
	mine = fh.f_owner == pt->pt_env.self && !fh.f_dups;
	if (j->j_plus)
		dirdev = pt_node_dev(pt, fh.f_node);
	buf = malloc(size ? size : 1);
	slots = malloc(PT_DIR_BATCH * sizeof(*slots));
	if (!pt_dirstream_take(pt, j->j_id, j->j_off, mine, &ds) && ds.ds_buf && buf) {
		/* The cookie is the previous entry's d_off; 0 is the start. */
		if (lseek(fd, (off_t)j->j_off, SEEK_SET) < 0)
			err = -errno;
	}
	if (!buf || !slots || !ds.ds_buf)
		err = -ENOMEM;
	/* Where the records after the last one replied begin in ds, if there. */
	ret_pos = ds.ds_pos;
	while (!full && err == 0) {
		size_t need = used, p;
		unsigned n = 0;
		bool skipped = false;

		if (ds.ds_pos >= ds.ds_len) {
			ssize_t got = getdents64(fd, ds.ds_buf, PT_DIRSTREAM_BUF);

			if (got < 0) {
				err = -errno;
				break;
			}
			if (got == 0) {
				eof = true;
				break;
			}
			/* The descriptor went on from the end of the old records. */
			ret_pos = ret_pos == ds.ds_len ? 0 : SIZE_MAX;
			ds.ds_len = (size_t)got;
			ds.ds_pos = 0;
		}
		/* The records of this buffer that fit, checked before any lookup
		 * is counted. */
		for (p = ds.ds_pos; p < ds.ds_len && n < PT_DIR_BATCH; n++) {
			const struct pt_dirent64 *d = (const struct pt_dirent64 *)(ds.ds_buf + p);
			size_t rec = pt_dir_rec(d, j->j_plus);

			if (need + rec > size) {
				full = true;
				break;
			}
			slots[n] = (struct pt_dir_slot){.s_d = d, .s_rec = rec, .s_ok = rec > 0};
			need += rec;
			p += d->d_reclen;
		}
		if (j->j_plus)
			pt_dir_lookups(j, fd, fh.f_node, dirdev, slots, n);
		for (unsigned i = 0; i < n; i++) {
			ds.ds_pos += slots[i].s_d->d_reclen;
			if (!slots[i].s_ok) {
				skipped = true;
				continue;
			}
			used = pt_dir_emit(&slots[i], j->j_plus, buf, used);
			ret_pos = ds.ds_pos;
			ret_off = (uint64_t)slots[i].s_d->d_off;
		}
		/* a skipped record left room: look at the one that did not fit again */
		if (full && skipped)
			full = false;
	}
	if (used == 0 && full)
		err = -EINVAL; /* not even one record fits the guest's buffer */
	ds.ds_pos = ret_pos;
	ds.ds_next = ret_off;
	/* After the end, a READDIR seeks again: an indexed ext4 directory's
	 * descriptor stays at its end marker, where a seek to the cookie would
	 * find names created since. */
	pt_dirstream_put(pt, j->j_id, &ds, mine && err == 0 && !eof && ret_pos != SIZE_MAX);
	fdt_put(pt->pt_fdt, fd);
	if (used > 0 || err == 0)
		be_reply_buf(arg, buf, used);
	else
		be_reply_err(arg, err);
	free(slots);
	free(buf);
}

void pt_readdir(void *ctx, struct fuse_req *r, const struct be_caller *who, uint64_t fh,
		uint64_t off, uint32_t size, bool plus)
{
	pt_meta_fh(ctx, r, who, pt_do_readdir,
		   &(struct pt_job){.j_id = fh, .j_off = off, .j_size = size, .j_plus = plus}, fh);
}
