/*
 * passthrough_core.c - what every operation of the passthrough back end
 * is built on: pool jobs and the loop-thread gate (which calls may run
 * inline), attributes and entries, node references and lookups.
 * Runs in: the worker (sandboxed), on the loop thread and the pool
 * threads. Ids come from the guest and are resolved through the node table
 * / fdtable, which check range and generation. Below it only
 * passthrough_open.c; every operation file builds on it, and passthrough.c
 * (the ops table) on all of them, so no file calls back into one above.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "backend.h"
#include "fdtable.h"
#include "log.h"
#include "node_table.h"
#include "passthrough.h"
#include "util.h"
#include "threadpool.h"

struct pt_job *pt_prepare(struct pt *pt, struct fuse_req *r, const struct be_caller *who,
			  const struct pt_job *args)
{
	struct pt_job *j = be_req_priv(r);

	*j = *args;
	j->j_pt = pt;
	j->j_req = r;
	j->j_who = who;
	return j;
}

void pt_submit(struct pt *pt, struct fuse_req *r, const struct be_caller *who, tp_fn fn,
	       const struct pt_job *args)
{
	pt_prepare(pt, r, who, args);
	tp_submit(pt->pt_env.tp, fn, r);
}

/*
 * The fast path. A few operations can be finished on the loop thread when
 * the kernel promises not to block: the descriptor is already here (no
 * round trip to its owner), the name is in the dentry cache
 * (RESOLVE_CACHED), the data is in the page cache (RWF_NOWAIT). The body
 * then replies at once and returns 0; PT_DEFER means "would block": the
 * same body runs again, blocking, on the pool. This keeps small cached
 * requests free of two thread hand-offs while a slow disk still never
 * stalls the queue.
 */

void pt_fast(struct pt *pt, struct fuse_req *r, const struct be_caller *who,
	     int (*body)(struct pt_job *, bool), tp_fn slow, const struct pt_job *args)
{
	struct pt_job *j = pt_prepare(pt, r, who, args);

	if (body(j, true) == PT_DEFER)
		tp_submit(pt->pt_env.tp, slow, r);
}

/*
 * Metadata calls (CREATE, MKDIR, UNLINK, RELEASE and kin) have no "would
 * block" flag, but on a healthy local file system they take a few
 * microseconds: less than handing them to a pool thread and waking the loop
 * for the reply. So the loop runs them itself while they stay fast, and
 * times each; one slower than PT_META_SLOW_NS (a directory block read from
 * disk, an inode lock someone else holds) sends every metadata call to the
 * pool for the next PT_META_BACKOFF_NS, so a slow disk costs the queue one
 * stall a second at most. A call whose directory descriptor is not here
 * (reopen, or a round trip to its owner) goes to the pool at once, and a
 * body may decline (pt_meta_decline) when it finds it could wait after
 * all, before it has done anything.
 */
#define PT_META_SLOW_NS	   (2000ull * 1000)
#define PT_META_BACKOFF_NS (100ull * 1000 * 1000)

/* May the loop thread run a call that could block? Not while backing off. */
bool pt_meta_open(const struct pt *pt, uint64_t now)
{
	return now >= pt->pt_meta_until;
}

/* The loop thread's voluntary context switches so far: a call that slept
 * (waited for the disk or a lock) adds one, a preemption does not. */
static long pt_slept_count(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nvcsw : -1;
}

/* The count before an inline call, read once per pass over the ring (the
 * loop sleeps only between passes, in epoll_wait), not once per call: a
 * system call less on every call that runs inline. */
long pt_slept_before(struct pt *pt)
{
	const uint64_t *passes = pt->pt_env.ring_passes;

	if (!passes)
		return pt_slept_count();
	if (*passes != pt->pt_pass_seen) {
		pt->pt_pass_seen = *passes;
		pt->pt_slept_base = pt_slept_count();
	}
	return pt->pt_slept_base;
}

/* A call that could block ran on the loop thread from start until now,
 * with slept0 the count before it (or before an earlier call of the same
 * pass: a sleep of that one counts too): one that was slow because it slept
 * closes the gate for PT_META_BACKOFF_NS. One that was only preempted (a
 * host whose CPUs also run the guest's vCPUs does that all the time) is
 * not the disk's fault and leaves the gate open: measured, the wall time
 * alone sent a third of a guest's opens to the pool. */
void pt_meta_took(struct pt *pt, uint64_t start, long slept0, uint32_t opcode)
{
	uint64_t took = bh_now_ns() - start;

	if (took <= PT_META_SLOW_NS || (slept0 >= 0 && pt_slept_count() == slept0))
		return;
	pt->pt_meta_until = start + took + PT_META_BACKOFF_NS;
	log_debug("opcode %u took %llu us on the loop thread: calls that may block go to the "
		  "pool for %llu ms",
		  opcode, (unsigned long long)(took / 1000), PT_META_BACKOFF_NS / 1000000);
}

/* The loop thread runs fn if the gate is open and the descriptor it needs
 * (the node's, or the open file's with fh) is already here. */
static void pt_inline(struct pt *pt, struct fuse_req *r, const struct be_caller *who, tp_fn fn,
		      const struct pt_job *args, uint64_t id, bool fh)
{
	struct pt_job *j = pt_prepare(pt, r, who, args);
	uint64_t start = bh_now_ns();
	uint32_t opcode = be_req_header(r)->opcode;
	int fd = -1;
	long slept0;

	if (!pt_meta_open(pt, start) ||
	    (id && (fh ? fdt_fh_get_nowait(pt->pt_fdt, id, &fd)
		       : fdt_node_get_nowait(pt->pt_fdt, id, &fd)) < 0)) {
		tp_submit(pt->pt_env.tp, fn, r);
		return;
	}
	j->j_inline = true;
	slept0 = pt_slept_before(pt);
	fn(r); /* replies, and r may be gone, unless it declined */
	if (id)
		fdt_put(pt->pt_fdt, fd);
	if (pt->pt_meta_declined) {
		pt->pt_meta_declined = false;
		j->j_inline = false;
		tp_submit(pt->pt_env.tp, fn, r);
		return;
	}
	pt_meta_took(pt, start, slept0, opcode);
}

void pt_meta(struct pt *pt, struct fuse_req *r, const struct be_caller *who, tp_fn fn,
	     const struct pt_job *args, uint64_t node)
{
	pt_inline(pt, r, who, fn, args, node, false);
}

void pt_meta_fh(struct pt *pt, struct fuse_req *r, const struct be_caller *who, tp_fn fn,
		const struct pt_job *args, uint64_t fh)
{
	pt_inline(pt, r, who, fn, args, fh, true);
}

bool pt_meta_decline(struct pt_job *j)
{
	if (!j->j_inline)
		return false;
	j->j_pt->pt_meta_declined = true;
	return true;
}

int pt_node_fd(struct pt *pt, uint64_t id, bool nowait, int *fd)
{
	return nowait ? fdt_node_get_nowait(pt->pt_fdt, id, fd)
		      : fdt_node_get(pt->pt_fdt, id, fd);
}

struct pt_job *pt_job_of(void *arg)
{
	return be_req_priv(arg);
}

void pt_fill_attr(struct fuse_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = (uint32_t)st->st_rdev;
	a->blksize = (uint32_t)st->st_blksize;
}

void pt_fill_entry(const struct pt *pt, struct fuse_entry_out *e, uint64_t id,
		   const struct stat *st)
{
	e->nodeid = id;
	e->generation = id >> NT_SLOT_BITS;
	e->entry_valid = e->attr_valid = pt->pt_valid;
	e->entry_valid_nsec = e->attr_valid_nsec = 0;
	pt_fill_attr(&e->attr, st);
}



uint32_t pt_file_open_flags(const struct pt *pt)
{
	return pt->pt_keep_cache;
}

int pt_file_oflags(const struct pt *pt, int oflags)
{
	if (pt->pt_env.writeback) {
		if ((oflags & O_ACCMODE) == O_WRONLY)
			oflags = (oflags & ~O_ACCMODE) | O_RDWR;
		oflags &= ~O_APPEND;
	}
	return oflags;
}


int pt_fh_new(struct pt *pt, uint64_t node, int fd, int oflags, bool dir, uint64_t *id)
{
	struct nt_fh fh;
	int err;

	err = nt_fh_alloc(pt->pt_env.nt, node, pt->pt_env.self, (uint32_t)oflags, dir, &fh);
	if (err < 0)
		return err;
	if ((err = fdt_fh_install(pt->pt_fdt, fh.f_id, fd)) < 0) {
		nt_fh_free(pt->pt_env.nt, fh.f_id);
		return err;
	}
	*id = fh.f_id;
	return 0;
}

/* A bounded table is full: one line for the operator, at most a minute. */
static void pt_log_full(const char *what)
{
	static time_t last;

	if (!bh_ratelimit(&last, 60))
		return;
	log_warnx("%s full: the guest gets ENFILE", what);
}

/* Out of descriptors is the host's table being full, not the guest's
 * doing: ENFILE, and a line for the operator. */
static int pt_open_err(int e)
{
	if (e == EMFILE || e == ENFILE) {
		pt_log_full("descriptor table");
		return -ENFILE;
	}
	return -e;
}

void pt_node_unref(struct pt *pt, uint64_t id)
{
	uint32_t owner;
	bool dead;

	if (nt_node_forget(pt->pt_env.nt, id, 1, &dead, &owner) < 0 || !dead)
		return;
	/* Only a node this request created can die here, and we own it. */
	fdt_node_drop(pt->pt_fdt, id);
	nt_node_free(pt->pt_env.nt, id);
}

uint64_t pt_node_dev(struct pt *pt, uint64_t id)
{
	struct nt_node n;

	if (id == NT_ROOT_ID)
		return pt->pt_root_dev;
	return nt_node_get(pt->pt_env.nt, id, &n) == 0 ? n.n_dev : PT_NO_DEV;
}

/*
 * Host submounts are announced, as virtiofsd's --announce-submounts does:
 * a directory on another device than its parent is a mount point, and
 * with FUSE_SUBMOUNTS negotiated its entry carries FUSE_ATTR_SUBMOUNT, so
 * the guest mounts it as its own superblock with its own st_dev and equal
 * inode numbers on two host file systems never meet under one st_dev.
 * Remapping inode numbers instead would make them change whenever a node
 * is forgotten and looked up again. Only directories off the root's device
 * get here, so the share's common case pays nothing.
 */
static bool pt_is_submount(struct pt *pt, uint64_t parent, dev_t dev)
{
	struct nt_session ss;
	uint64_t pdev = pt_node_dev(pt, parent);

	if (pdev == PT_NO_DEV || pdev == (uint64_t)dev)
		return false;
	nt_session_get(pt->pt_env.nt, &ss);
	return (ss.s_flags & FUSE_SUBMOUNTS) != 0;
}

int pt_node_entry(struct pt *pt, int fd, struct fuse_entry_out *e)
{
	return pt_node_entry_named(pt, fd, 0, NULL, e);
}

/* The entry for node id with attributes st, reached by a name in parent:
 * a directory on another device than its parent is a submount. */
static void pt_fill_named(struct pt *pt, struct fuse_entry_out *e, uint64_t id, uint64_t parent,
			  const struct stat *st)
{
	pt_fill_entry(pt, e, id, st);
	if (S_ISDIR(st->st_mode) && st->st_dev != pt->pt_root_dev && parent &&
	    pt_is_submount(pt, parent, st->st_dev))
		e->attr.flags |= FUSE_ATTR_SUBMOUNT;
}

int pt_node_entry_named(struct pt *pt, int fd, uint64_t parent, const char *name,
			struct fuse_entry_out *e)
{
	struct nt_node n;
	struct stat st;
	bool created;
	int err;

	if ((err = pt_stat_fd(fd, &st)) < 0)
		goto fail;
	if (st.st_dev == pt->pt_root_dev && st.st_ino == pt->pt_root_ino) {
		close(fd);
		pt_fill_entry(pt, e, NT_ROOT_ID, &st);
		return 0;
	}
	/* "." and ".." name no link of this node under parent. */
	if (name && (strcmp(name, ".") == 0 || strcmp(name, "..") == 0))
		name = NULL;
	if (!name)
		parent = 0;
	err = nt_node_ref_named(pt->pt_env.nt, st.st_dev, st.st_ino, st.st_mode & S_IFMT,
				pt->pt_env.self, name ? parent : 0, name, &n, &created);
	if (err < 0)
		goto fail; /* -ENFILE: node_table.c told the operator */
	if (created) {
		err = name ? fdt_node_install_named(pt->pt_fdt, n.n_id, fd)
			   : fdt_node_install(pt->pt_fdt, n.n_id, fd);
		if (err < 0) {
			bool dead;
			uint32_t owner;

			if (nt_node_forget(pt->pt_env.nt, n.n_id, 1, &dead, &owner) == 0 && dead)
				nt_node_free(pt->pt_env.nt, n.n_id);
			goto fail;
		}
	} else {
		fdt_node_offer(pt->pt_fdt, n.n_id, fd);
	}
	pt_fill_named(pt, e, n.n_id, parent, &st);
	return 0;
fail:
	close(fd);
	return err;
}

/*
 * READDIRPLUS of a name whose node this worker already holds a descriptor
 * for (found by the listing's d_ino in directory device dirdev): one
 * fstatat instead of pt_lookup_at's O_PATH open, fstat and close (an ls -l
 * of a listed directory meets only such names). The name must still lead
 * to that node, which the descriptor held keeps from being reused.
 * -EAGAIN: ask pt_lookup_at.
 */
int pt_lookup_known(struct pt *pt, int dirfd, uint64_t dirdev, uint64_t parent, const char *name,
		    uint64_t d_ino, struct fuse_entry_out *e)
{
	struct nt_node n;
	struct stat st;

	if (nt_node_find(pt->pt_env.nt, dirdev, d_ino, &n) < 0 ||
	    !fdt_node_held(pt->pt_fdt, n.n_id))
		return -EAGAIN;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) < 0 ||
	    (uint64_t)st.st_dev != n.n_dev || (uint64_t)st.st_ino != n.n_ino)
		return -EAGAIN;
	if (nt_node_ref_known(pt->pt_env.nt, n.n_id, n.n_dev, n.n_ino, parent, name, &n) < 0)
		return -EAGAIN;
	pt_fill_named(pt, e, n.n_id, parent, &st);
	return 0;
}

/*
 * Resolve name in the directory dirfd (node parent) and take one lookup
 * reference on the result. "." is the directory itself and ".." of the
 * root is the root; any other ".." must lead to the share root or below it
 * (pt_inside_share: a directory moved out of the share by the host has a
 * parent outside), else ENOENT. The share root always answers as node 1
 * (not counted: the root is never forgotten).
 */
int pt_lookup_at(struct pt *pt, int dirfd, uint64_t parent, const char *name, bool nowait,
		 struct fuse_entry_out *e)
{
	bool dotdot = strcmp(name, "..") == 0;
	const char *path = name;
	int fd;

	if (strcmp(name, ".") == 0 || (parent == NT_ROOT_ID && dotdot))
		path = ".";
	else if (dotdot && nowait)
		return -EWOULDBLOCK; /* the walk up to the root is the pool's */
	if (nowait) {
		struct open_how how = {.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				       .resolve = RESOLVE_CACHED | RESOLVE_NO_MAGICLINKS};

		fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd < 0)
			return errno == EAGAIN || errno == ENOSYS || errno == EINVAL
				   ? -EWOULDBLOCK
				   : pt_open_err(errno);
	} else {
		fd = openat(dirfd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return pt_open_err(errno);
	}
	if (dotdot && path == name && pt_inside_share(pt, fd) < 0) {
		static time_t last;

		if (bh_ratelimit(&last, 60))
			log_warnx("LOOKUP \"..\" of node %llu leads outside the share (moved away "
				  "on the host?): ENOENT",
				  (unsigned long long)parent);
		close(fd);
		return -ENOENT;
	}
	return pt_node_entry_named(pt, fd, parent, name, e);
}

/* ---- jobs (pool threads) ---- */

