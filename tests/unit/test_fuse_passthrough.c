/*
 * test_fuse_passthrough.c - the dispatcher and the passthrough back end
 * together, without a ring: requests are built in memory, run through
 * fuse_dispatch with an inline pool, and the replies read back. Pins the
 * session rules (INIT, DESTROY, order), lookup counting, and the read side
 * against a real temporary directory.
 * Runs in: the test process only. Finished requests go to a fuse_host of
 * doubles that record the completion.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "backends.h"
#include "fuse_dispatch.h"
#include "ipc.h"
#include "node_table.h"
#include "peer.h"
#include "threadpool.h"

/* ---- where finished requests go (worker.c in the worker) ---- */

static int completions;
static uint32_t last_used;

static bool t_on_loop(void)
{
	return true;
}

static void t_complete(void *arg)
{
	struct fuse_req *r = arg;

	last_used = r->r_used;
	completions++;
}

static void t_complete_local(struct fuse_req *r)
{
	t_complete(r);
}

static const struct fuse_host t_host = {
    .fh_on_loop = t_on_loop,
    .fh_complete = t_complete,
    .fh_complete_local = t_complete_local,
};

/* ---- fixture ---- */

static char dir[] = "/tmp/bh-fuse-test-XXXXXX";
static struct fuse_sess sess;
static struct nt_table *nt;
static struct event_base *base;
static const char hello[] = "hello, virtio-fs\n";

static void put_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_not_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	struct be_env env = {0};
	char path[256];
	int memfd;

	cr_assert_not_null(mkdtemp(dir));
	put_file("hello.txt", hello);
	snprintf(path, sizeof(path), "%s/sub", dir);
	cr_assert_eq(mkdir(path, 0755), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(path, sizeof(path), "sub/file-%02d-with-a-longish-name", i);
		put_file(path, "x");
	}
	snprintf(path, sizeof(path), "%s/ln", dir);
	cr_assert_eq(symlink("hello.txt", path), 0);

	memfd = nt_create();
	cr_assert_geq(memfd, 0);
	cr_assert_not_null(nt = nt_map(memfd));
	close(memfd);
	base = event_base_new();
	env.nt = nt;
	env.self = 1;
	env.root_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	env.proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(env.root_fd, 0);
	env.tp = tp_create(0, base);
	env.peer = peer_create(1, NULL);
	cr_assert(env.tp && env.peer);
	env.cache = IPC_CACHE_AUTO;
	env.base = base;

	memset(&sess, 0, sizeof(sess));
	sess.fs_be = &be_passthrough_ops;
	cr_assert_eq(sess.fs_be->init(&env, &sess.fs_be_ctx), 0);
	sess.fs_host = &t_host;
	sess.fs_can = BE_CAN_ALL & ~BE_CAN_XATTR; /* as without --xattr */
	sess.fs_nt = nt;
	sess.fs_peer = env.peer;
	sess.fs_tp = env.tp;
	sess.fs_self = 1;
	sess.fs_queue_size = 128;
	fuse_sess_start(&sess);
}

static void teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

TestSuite(fuse_pt, .init = setup, .fini = teardown);

/* ---- request helper ---- */

struct reply {
	struct fuse_out_header oh;
	uint8_t data[65536];
	uint32_t used;
};

/*
 * Run one request: in_header + args (alen bytes) + optional name, with
 * wr_len writable bytes. The reply lands in *rep (header and payload).
 */
static void run(uint32_t op, uint64_t node, const void *args, size_t alen, const char *name,
		size_t wr_len, struct reply *rep)
{
	static uint8_t in[4096], out[sizeof(struct fuse_out_header) + 65536];
	static uint64_t unique = 2;
	struct fuse_in_header h = {.opcode = op, .nodeid = node, .unique = unique += 2};
	struct iovec iov[2];
	struct fuse_req *r = calloc(1, sizeof(*r));
	size_t len = sizeof(h);

	cr_assert_leq(wr_len, sizeof(out));
	memcpy(in + len, args, alen);
	len += alen;
	if (name) {
		memcpy(in + len, name, strlen(name) + 1);
		len += strlen(name) + 1;
	}
	h.len = (uint32_t)len;
	memcpy(in, &h, sizeof(h));
	memset(out, 0xcc, sizeof(out));
	iov[0] = (struct iovec){in, len};
	iov[1] = (struct iovec){out, wr_len};
	r->r_elem = (struct vq_elem){
	    .nrd = 1, .nwr = 1, .rd_len = len, .wr_len = wr_len, .rd = iov, .wr = iov + 1};
	completions = 0;
	fuse_dispatch(&sess, r);
	cr_assert_eq(completions, 1, "opcode %u completed %d times", op, completions);
	memset(rep, 0, sizeof(*rep));
	rep->used = last_used;
	if (last_used >= sizeof(rep->oh)) {
		memcpy(&rep->oh, out, sizeof(rep->oh));
		cr_assert_eq(rep->oh.len, last_used, "out.len and used length agree");
		cr_assert_eq(rep->oh.unique, h.unique);
		memcpy(rep->data, out + sizeof(rep->oh), last_used - sizeof(rep->oh));
	}
	free(r);
}

#define WR_BIG (sizeof(struct fuse_out_header) + 4096)

static void do_init(uint32_t minor, uint32_t flags, struct fuse_init_out *out)
{
	struct fuse_init_in ii = {
	    .major = 7, .minor = minor, .max_readahead = 0x20000, .flags = flags};
	struct reply rep;

	run(FUSE_INIT, 0, &ii, sizeof(ii), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, 0);
	cr_assert_eq(rep.used, 16 + sizeof(*out));
	if (out)
		memcpy(out, rep.data, sizeof(*out));
}

static uint64_t do_lookup(uint64_t parent, const char *name, struct fuse_entry_out *e)
{
	struct reply rep;

	run(FUSE_LOOKUP, parent, NULL, 0, name, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, 0, "lookup %s: %d", name, rep.oh.error);
	memcpy(e, rep.data, sizeof(*e));
	return e->nodeid;
}

static uint64_t do_open(uint32_t op, uint64_t node, uint32_t flags, int *err)
{
	struct fuse_open_in oi = {.flags = flags};
	struct fuse_open_out oo;
	struct reply rep;

	run(op, node, &oi, sizeof(oi), NULL, WR_BIG, &rep);
	*err = rep.oh.error;
	memcpy(&oo, rep.data, sizeof(oo));
	return oo.fh;
}

static uint64_t nlookup_of(uint64_t id)
{
	struct nt_node n;

	cr_assert_eq(nt_node_get(nt, id, &n), 0);
	return n.n_nlookup;
}

/* ---- session ---- */

Test(fuse_pt, requests_before_init_get_eio)
{
	struct fuse_getattr_in ga = {0};
	struct reply rep;

	run(FUSE_GETATTR, 1, &ga, sizeof(ga), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, -EIO);
	cr_assert_eq(rep.used, 16);
}

Test(fuse_pt, init_accepts_only_implemented_flags)
{
	struct fuse_init_out o;
	uint32_t offered = 0x7bfffffb;

	do_init(38, offered, &o);
	cr_assert_eq(o.major, 7);
	cr_assert_eq(o.minor, 38);
	cr_assert_eq(o.flags & ~offered, 0, "reply flags must be a subset");
	cr_assert(o.flags & FUSE_ASYNC_READ);
	cr_assert(o.flags & FUSE_DO_READDIRPLUS);
	cr_assert(o.flags & FUSE_MAX_PAGES);
	cr_assert(o.flags & FUSE_ATOMIC_O_TRUNC);
	cr_assert(o.flags & FUSE_HANDLE_KILLPRIV_V2);
	cr_assert(o.flags & FUSE_BIG_WRITES);
	/* locks always; writeback only with --writeback, SETXATTR_EXT only with --xattr */
	cr_assert(o.flags & FUSE_POSIX_LOCKS);
	cr_assert(o.flags & FUSE_FLOCK_LOCKS);
	cr_assert_eq(o.flags & (FUSE_WRITEBACK_CACHE | FUSE_EXPORT_SUPPORT | FUSE_SETXATTR_EXT |
				FUSE_POSIX_ACL | FUSE_INIT_EXT),
		     0);
	cr_assert_eq(o.max_pages, 124, "queue 128 - 4");
	cr_assert_eq(o.max_write, 1u << 20);
	cr_assert_eq(o.time_gran, 1);
	cr_assert_eq(o.max_readahead, 0x20000);
}

Test(fuse_pt, init_minor_is_the_smaller_one)
{
	struct fuse_init_out o;

	do_init(31, FUSE_ASYNC_READ, &o);
	cr_assert_eq(o.minor, 31);
	cr_assert_eq(o.flags, FUSE_ASYNC_READ);
}

Test(fuse_pt, init_with_another_major_is_refused)
{
	struct fuse_init_in ii = {.major = 8, .minor = 0};
	struct reply rep;

	run(FUSE_INIT, 0, &ii, sizeof(ii), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, -EPROTO);
	/* ... and the session stays closed. */
	run(FUSE_STATFS, 1, NULL, 0, NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, -EIO);
}

Test(fuse_pt, second_init_drops_every_node)
{
	struct fuse_entry_out e;
	struct nt_node n;
	uint64_t id;

	do_init(38, 0, NULL);
	id = do_lookup(1, "hello.txt", &e);
	do_init(38, 0, NULL);
	cr_assert_eq(nt_node_get(nt, id, &n), -ESTALE);
}

Test(fuse_pt, destroy_drops_nodes_and_closes_the_session)
{
	struct fuse_entry_out e;
	struct nt_node n;
	struct reply rep;
	uint64_t id;

	do_init(38, 0, NULL);
	id = do_lookup(1, "hello.txt", &e);
	run(FUSE_DESTROY, 0, NULL, 0, NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, 0);
	cr_assert_eq(rep.used, 16);
	cr_assert_eq(nt_node_get(nt, id, &n), -ESTALE);
	run(FUSE_STATFS, 1, NULL, 0, NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, -EIO);
}

Test(fuse_pt, unknown_and_unimplemented_opcodes_get_enosys)
{
	struct fuse_poll_in po = {0};
	struct fuse_ioctl_in io = {0};
	struct reply rep;

	do_init(38, 0, NULL);
	run(4000, 1, NULL, 0, NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, -ENOSYS);
	run(FUSE_POLL, 1, &po, sizeof(po), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, -ENOSYS, "POLL is deliberately ENOSYS");
	run(FUSE_IOCTL, 1, &io, sizeof(io), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, -ENOSYS, "IOCTL is deliberately ENOSYS");
}

Test(fuse_pt, no_writable_space_completes_with_length_zero)
{
	struct reply rep;

	do_init(38, 0, NULL);
	run(FUSE_STATFS, 1, NULL, 0, NULL, 15, &rep);
	cr_assert_eq(rep.used, 0);
}

Test(fuse_pt, reply_larger_than_writable_space_gets_eio)
{
	struct fuse_getattr_in ga = {0};
	struct reply rep;

	do_init(38, 0, NULL);
	run(FUSE_GETATTR, 1, &ga, sizeof(ga), NULL, 16 + 50, &rep);
	cr_assert_eq(rep.oh.error, -EIO);
	cr_assert_eq(rep.used, 16);
}

Test(fuse_pt, malformed_name_is_refused_before_the_back_end)
{
	struct reply rep;

	do_init(38, 0, NULL);
	run(FUSE_LOOKUP, 1, NULL, 0, "a/b", WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, -EINVAL);
}

/* ---- lookups and forgets ---- */

Test(fuse_pt, lookup_returns_attributes_and_counts_one_reference)
{
	struct fuse_entry_out e, e2;
	struct stat st;
	char path[256];
	uint64_t id;

	do_init(38, 0, NULL);
	id = do_lookup(1, "hello.txt", &e);
	snprintf(path, sizeof(path), "%s/hello.txt", dir);
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert_neq(id, 0);
	cr_assert_neq(id, 1);
	cr_assert_eq(e.generation, id >> NT_SLOT_BITS);
	cr_assert_eq(e.attr.ino, st.st_ino);
	cr_assert_eq(e.attr.size, sizeof(hello) - 1);
	cr_assert_eq(e.attr.mode, st.st_mode);
	cr_assert_eq(e.attr.mtimensec, (uint32_t)st.st_mtim.tv_nsec);
	cr_assert_eq(e.entry_valid, 1, "cache=auto: 1 s");
	cr_assert_eq(nlookup_of(id), 1);
	cr_assert_eq(do_lookup(1, "hello.txt", &e2), id);
	cr_assert_eq(nlookup_of(id), 2);
}

Test(fuse_pt, lookup_of_missing_name_gets_enoent)
{
	struct reply rep;

	do_init(38, 0, NULL);
	run(FUSE_LOOKUP, 1, NULL, 0, "nope", WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, -ENOENT);
}

Test(fuse_pt, dotdot_of_root_is_the_root)
{
	struct fuse_entry_out e;
	uint64_t sub;

	do_init(38, 0, NULL);
	cr_assert_eq(do_lookup(1, "..", &e), 1);
	cr_assert_eq(e.generation, 0);
	cr_assert_eq(do_lookup(1, ".", &e), 1);
	sub = do_lookup(1, "sub", &e);
	cr_assert_eq(do_lookup(sub, "..", &e), 1);
	cr_assert_eq(do_lookup(sub, ".", &e), sub);
}

Test(fuse_pt, lookup_does_not_follow_symlinks)
{
	struct fuse_entry_out e;
	struct reply rep;
	uint64_t id;

	do_init(38, 0, NULL);
	id = do_lookup(1, "ln", &e);
	cr_assert(S_ISLNK(e.attr.mode));
	run(FUSE_READLINK, id, NULL, 0, NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, 0);
	cr_assert_eq(rep.used, 16 + strlen("hello.txt"));
	cr_assert_eq(memcmp(rep.data, "hello.txt", 9), 0);
}

Test(fuse_pt, forget_to_zero_frees_the_node)
{
	struct fuse_forget_in fi = {.nlookup = 1};
	struct fuse_entry_out e;
	struct nt_node n;
	struct reply rep;
	uint64_t id;

	do_init(38, 0, NULL);
	id = do_lookup(1, "hello.txt", &e);
	do_lookup(1, "hello.txt", &e);
	run(FUSE_FORGET, id, &fi, sizeof(fi), NULL, 0, &rep);
	cr_assert_eq(rep.used, 0);
	cr_assert_eq(nlookup_of(id), 1);
	run(FUSE_FORGET, id, &fi, sizeof(fi), NULL, 0, &rep);
	cr_assert_eq(nt_node_get(nt, id, &n), -ESTALE);
	/* A new lookup makes a new node id. */
	cr_assert_neq(do_lookup(1, "hello.txt", &e), id);
}

Test(fuse_pt, batch_forget_releases_each_entry)
{
	struct {
		struct fuse_batch_forget_in b;
		struct fuse_forget_one one[2];
	} bf = {{.count = 2}, {{0, 1}, {0, 1}}};
	struct fuse_entry_out e;
	struct nt_node n;
	struct reply rep;

	do_init(38, 0, NULL);
	bf.one[0].nodeid = do_lookup(1, "hello.txt", &e);
	bf.one[1].nodeid = do_lookup(1, "sub", &e);
	run(FUSE_BATCH_FORGET, 0, &bf, sizeof(bf), NULL, 0, &rep);
	cr_assert_eq(rep.used, 0);
	cr_assert_eq(nt_node_get(nt, bf.one[0].nodeid, &n), -ESTALE);
	cr_assert_eq(nt_node_get(nt, bf.one[1].nodeid, &n), -ESTALE);
}

/* ---- files ---- */

Test(fuse_pt, getattr_of_root_uses_the_share)
{
	struct fuse_getattr_in ga = {0};
	struct fuse_attr_out a;
	struct reply rep;
	struct stat st;

	do_init(38, 0, NULL);
	run(FUSE_GETATTR, 1, &ga, sizeof(ga), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, 0);
	memcpy(&a, rep.data, sizeof(a));
	cr_assert_eq(stat(dir, &st), 0);
	cr_assert_eq(a.attr.ino, st.st_ino);
	cr_assert(S_ISDIR(a.attr.mode));
}

Test(fuse_pt, getattr_of_stale_node_gets_estale)
{
	struct fuse_getattr_in ga = {0};
	struct reply rep;

	do_init(38, 0, NULL);
	run(FUSE_GETATTR, (5ull << NT_SLOT_BITS) | 7, &ga, sizeof(ga), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, -ESTALE);
}

Test(fuse_pt, open_of_directory_or_symlink_is_refused)
{
	struct fuse_entry_out e;
	uint64_t id;
	int err;

	do_init(38, 0, NULL);
	do_open(FUSE_OPEN, 1, O_RDONLY, &err);
	cr_assert_eq(err, -EISDIR);
	id = do_lookup(1, "ln", &e);
	do_open(FUSE_OPEN, id, O_RDWR, &err);
	cr_assert_eq(err, -ELOOP);
}

/*
 * A WRITE whose readable stream is cut into pieces at odd offsets: the data
 * goes from the pieces to the file in order. wr: bytes of data; cut: the
 * piece size for the data part (the 80 header bytes are one piece).
 */
static void run_write(uint64_t id, uint64_t fh, uint64_t off, const char *data, uint32_t size,
		      uint32_t len_delta, size_t cut, uint64_t rd_trim, struct reply *rep)
{
	static uint8_t in[80 + 8192], out[64];
	struct fuse_in_header h = {.opcode = FUSE_WRITE, .nodeid = id, .unique = 77};
	struct fuse_write_in wi = {.fh = fh, .offset = off, .size = size};
	struct iovec iov[80];
	struct fuse_req *r = calloc(1, sizeof(*r));
	size_t len = 80 + size, n = 0;

	cr_assert_leq(size, 8192);
	h.len = (uint32_t)len + len_delta;
	memcpy(in, &h, sizeof(h));
	memcpy(in + 40, &wi, sizeof(wi));
	memcpy(in + 80, data, size);
	len -= rd_trim;
	iov[n++] = (struct iovec){in, 80};
	for (size_t p = 80; p < len; p += cut)
		iov[n++] = (struct iovec){in + p, len - p < cut ? len - p : cut};
	iov[n] = (struct iovec){out, sizeof(out)};
	r->r_elem = (struct vq_elem){.nrd = (unsigned)n,
				     .nwr = 1,
				     .rd_len = len,
				     .wr_len = sizeof(out),
				     .rd = iov,
				     .wr = iov + n};
	completions = 0;
	fuse_dispatch(&sess, r);
	cr_assert_eq(completions, 1);
	memset(rep, 0, sizeof(*rep));
	rep->used = last_used;
	memcpy(&rep->oh, out, sizeof(rep->oh));
	memcpy(rep->data, out + sizeof(rep->oh), sizeof(out) - sizeof(rep->oh));
	free(r);
}

static void read_host(const char *name, char *buf, size_t cap, size_t *got)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_not_null(f = fopen(path, "r"));
	*got = fread(buf, 1, cap, f);
	fclose(f);
}

Test(fuse_pt, write_lands_from_split_guest_buffers)
{
	static char data[5000], back[6000];
	struct fuse_write_out wo;
	struct fuse_entry_out e;
	struct reply rep;
	uint64_t id, fh;
	size_t got;
	int err;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 23);
	do_init(38, 0, NULL);
	id = do_lookup(1, "hello.txt", &e);
	fh = do_open(FUSE_OPEN, id, O_RDWR | O_TRUNC, &err);
	cr_assert_eq(err, 0);
	run_write(id, fh, 0, data, sizeof(data), 0, 333, 0, &rep);
	cr_assert_eq(rep.oh.error, 0);
	cr_assert_eq(rep.used, 16 + sizeof(wo));
	memcpy(&wo, rep.data, sizeof(wo));
	cr_assert_eq(wo.size, sizeof(data));
	read_host("hello.txt", back, sizeof(back), &got);
	cr_assert_eq(got, sizeof(data));
	cr_assert_eq(memcmp(back, data, sizeof(data)), 0);
}

Test(fuse_pt, write_with_len_other_than_80_plus_size_is_refused)
{
	struct fuse_entry_out e;
	struct reply rep;
	uint64_t id, fh;
	size_t got;
	char back[64];
	int err;

	do_init(38, 0, NULL);
	id = do_lookup(1, "hello.txt", &e);
	fh = do_open(FUSE_OPEN, id, O_RDWR, &err);
	cr_assert_eq(err, 0);
	/* in.len one short of 80 + size: the size claims a byte that is not there */
	run_write(id, fh, 0, "XXXXXXXX", 8, (uint32_t)-1, 4, 1, &rep);
	cr_assert_eq(rep.oh.error, -EINVAL);
	/* in.len one more than 80 + size */
	run_write(id, fh, 0, "XXXXXXXX", 8, 1, 4, 0, &rep);
	cr_assert_eq(rep.oh.error, -EIO, "in.len beyond the readable bytes");
	/* size larger than what is readable after the 80 bytes */
	run_write(id, fh, 0, "XXXXXXXX", 8, 0, 4, 3, &rep);
	cr_assert_eq(rep.oh.error, -EIO);
	read_host("hello.txt", back, sizeof(back), &got);
	cr_assert_eq(got, sizeof(hello) - 1);
	cr_assert_eq(memcmp(back, hello, got), 0, "nothing was written");
}

Test(fuse_pt, mkdir_and_rename_and_unlink_change_the_directory)
{
	struct fuse_mkdir_in mi = {.mode = 0700};
	struct fuse_rename_in ri = {.newdir = 1};
	struct fuse_entry_out e;
	struct reply rep;
	char names[16], path[256];
	struct stat st;

	do_init(38, 0, NULL);
	run(FUSE_MKDIR, 1, &mi, sizeof(mi), "made", WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, 0);
	memcpy(&e, rep.data, sizeof(e));
	cr_assert_eq(nlookup_of(e.nodeid), 1, "MKDIR counts one lookup");
	snprintf(path, sizeof(path), "%s/made", dir);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0700);
	cr_assert_eq(e.attr.ino, st.st_ino);
	memcpy(names, "made\0moved", 11);
	run(FUSE_RENAME, 1, &ri, sizeof(ri), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, -EINVAL, "RENAME without names");
	{
		char args[sizeof(ri) + 11];

		memcpy(args, &ri, sizeof(ri));
		memcpy(args + sizeof(ri), names, 11);
		run(FUSE_RENAME, 1, args, sizeof(args), NULL, WR_BIG, &rep);
	}
	cr_assert_eq(rep.oh.error, 0);
	snprintf(path, sizeof(path), "%s/moved", dir);
	cr_assert_eq(stat(path, &st), 0);
	run(FUSE_RMDIR, 1, NULL, 0, "moved", WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, 0);
	cr_assert_neq(stat(path, &st), 0);
	run(FUSE_UNLINK, 1, NULL, 0, "ln", WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, 0);
}

Test(fuse_pt, read_returns_exactly_the_file_bytes)
{
	struct fuse_release_in rel = {0};
	struct fuse_read_in ri = {0};
	struct fuse_entry_out e;
	struct reply rep;
	uint64_t id, fh;
	int err;

	do_init(38, 0, NULL);
	id = do_lookup(1, "hello.txt", &e);
	fh = do_open(FUSE_OPEN, id, O_RDONLY, &err);
	cr_assert_eq(err, 0);
	ri.fh = fh;
	ri.size = 4096;
	run(FUSE_READ, id, &ri, sizeof(ri), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, 0);
	cr_assert_eq(rep.used, 16 + sizeof(hello) - 1, "out.len = 16 + bytes read");
	cr_assert_eq(memcmp(rep.data, hello, sizeof(hello) - 1), 0);
	/* Reading from the middle, with less room than asked for. */
	ri.offset = 7;
	run(FUSE_READ, id, &ri, sizeof(ri), NULL, 16 + 5, &rep);
	cr_assert_eq(rep.used, 16 + 5);
	cr_assert_eq(memcmp(rep.data, hello + 7, 5), 0);
	/* Past the end: an empty reply. */
	ri.offset = 4096;
	run(FUSE_READ, id, &ri, sizeof(ri), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, 0);
	cr_assert_eq(rep.used, 16);

	rel.fh = fh;
	run(FUSE_RELEASE, id, &rel, sizeof(rel), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, 0);
	ri.offset = 0;
	run(FUSE_READ, id, &ri, sizeof(ri), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, -EBADF, "a released handle is gone");
}

Test(fuse_pt, statfs_reports_the_host_file_system)
{
	struct fuse_statfs_out so;
	struct reply rep;

	do_init(38, 0, NULL);
	run(FUSE_STATFS, 1, NULL, 0, NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, 0);
	cr_assert_eq(rep.used, 16 + sizeof(so));
	memcpy(&so, rep.data, sizeof(so));
	cr_assert_gt(so.st.bsize, 0);
	cr_assert_gt(so.st.namelen, 0);
}

/* ---- directories ---- */

/* The size attribute of each entry the last PLUS listing returned. */
static uint64_t listed_size[100];

/* List directory node with READDIR(PLUS) buffers of size bytes; returns the
 * number of entries and checks record layout on the way. */
static int list_dir(uint64_t node, bool plus, uint32_t size, char names[][64], uint64_t *ids)
{
	struct fuse_read_in ri = {.size = size};
	struct reply rep;
	int n = 0, err;

	ri.fh = do_open(FUSE_OPENDIR, node, O_RDONLY, &err);
	cr_assert_eq(err, 0);
	for (int rounds = 0; rounds < 1000; rounds++) {
		size_t pos = 0, len;

		run(plus ? FUSE_READDIRPLUS : FUSE_READDIR, node, &ri, sizeof(ri), NULL, 16 + size,
		    &rep);
		cr_assert_eq(rep.oh.error, 0);
		len = rep.used - 16;
		if (len == 0)
			return n;
		while (pos < len) {
			struct fuse_dirent *d;
			size_t rec;

			if (plus) {
				struct fuse_direntplus *dp = (void *)(rep.data + pos);

				d = &dp->dirent;
				ids[n] = dp->entry_out.nodeid;
				listed_size[n] = dp->entry_out.attr.size;
				rec = FUSE_DIRENTPLUS_SIZE(dp);
			} else {
				d = (void *)(rep.data + pos);
				rec = FUSE_DIRENT_SIZE(d);
			}
			cr_assert_leq(pos + rec, len, "record split at the size limit");
			cr_assert_lt(n, 100, "too many entries");
			cr_assert_leq(d->namelen, 63);
			for (size_t k =
				 (size_t)((uint8_t *)d->name - (rep.data + pos)) + d->namelen;
			     k < rec; k++)
				cr_assert_eq(rep.data[pos + k], 0, "padding is zero");
			memcpy(names[n], d->name, d->namelen);
			names[n][d->namelen] = '\0';
			n++;
			ri.offset = d->off;
			pos += rec;
		}
	}
	cr_assert_fail("directory never ended");
	return -1;
}

static bool has_name(char names[][64], int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

Test(fuse_pt, readdir_resumes_from_cookies_and_lists_everything_once)
{
	static char names[100][64];
	static uint64_t ids[100];
	struct fuse_entry_out e;
	char want[64];
	uint64_t sub;
	int n;

	do_init(38, 0, NULL);
	sub = do_lookup(1, "sub", &e);
	/* 200 bytes hold 3 records: many requests, each resuming. */
	n = list_dir(sub, false, 200, names, ids);
	cr_assert_eq(n, 42, "40 files + . + ..");
	for (int i = 0; i < 40; i++) {
		snprintf(want, sizeof(want), "file-%02d-with-a-longish-name", i);
		cr_assert(has_name(names, n, want), "%s missing", want);
	}
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			cr_assert_str_neq(names[i], names[j], "listed twice");
}

Test(fuse_pt, readdirplus_counts_a_lookup_per_entry_but_not_dots)
{
	static char names[100][64];
	static uint64_t ids[100];
	int n;

	do_init(38, 0, NULL);
	n = list_dir(1, true, 4096, names, ids);
	cr_assert_eq(n, 5, ". .. hello.txt sub ln");
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i], ".") == 0 || strcmp(names[i], "..") == 0) {
			cr_assert_eq(ids[i], 0);
			continue;
		}
		cr_assert_neq(ids[i], 0);
		cr_assert_eq(nlookup_of(ids[i]), 1, "%s", names[i]);
	}
}

static int index_of(char names[][64], int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	cr_assert_fail("%s not listed", name);
	return -1;
}

/* A second listing finds the nodes the first one made (by one fstatat, see
 * pt_lookup_known) and counts them again; a name the host replaced in
 * between is the new file's node, with the new file's attributes. */
Test(fuse_pt, readdirplus_again_counts_again_and_a_replaced_name_is_its_new_file)
{
	static char names[100][64], names2[100][64];
	static uint64_t ids[100], ids2[100];
	char from[300], to[300];
	int n, i, k;

	do_init(38, 0, NULL);
	n = list_dir(1, true, 4096, names, ids);
	cr_assert_eq(n, 5);
	put_file("hello.new", "a longer text than the first hello.txt had\n");
	snprintf(from, sizeof(from), "%s/hello.new", dir);
	snprintf(to, sizeof(to), "%s/hello.txt", dir);
	cr_assert_eq(rename(from, to), 0);
	cr_assert_eq(list_dir(1, true, 4096, names2, ids2), n);
	for (const char *const *nm = (const char *const[]){"sub", "ln", NULL}; *nm; nm++) {
		i = index_of(names, n, *nm);
		k = index_of(names2, n, *nm);
		cr_assert_eq(ids2[k], ids[i], "%s: same node", *nm);
		cr_assert_eq(nlookup_of(ids[i]), 2, "%s: counted twice", *nm);
	}
	i = index_of(names, n, "hello.txt");
	k = index_of(names2, n, "hello.txt");
	cr_assert_neq(ids2[k], ids[i], "the replaced name is another node");
	cr_assert_eq(nlookup_of(ids2[k]), 1);
	cr_assert_eq(listed_size[k], strlen("a longer text than the first hello.txt had\n"));
	cr_assert_eq(nlookup_of(ids[i]), 1, "the old file's node keeps its one count");
}

#define BIG_N 1200

/* READDIR of handle fh from cookie off into names/offs (one reply of 4 KiB). */
static int read_dir_once(uint64_t node, uint64_t fh, uint64_t off, bool plus,
			 char names[][64], uint64_t *offs)
{
	struct fuse_read_in ri = {.fh = fh, .offset = off, .size = 4096};
	struct reply rep;
	size_t pos = 0, len;
	int n = 0;

	run(plus ? FUSE_READDIRPLUS : FUSE_READDIR, node, &ri, sizeof(ri), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, 0);
	len = rep.used - 16;
	while (pos < len) {
		struct fuse_dirent *d;

		if (plus) {
			struct fuse_direntplus *dp = (void *)(rep.data + pos);

			d = &dp->dirent;
			pos += FUSE_DIRENTPLUS_SIZE(dp);
		} else {
			d = (void *)(rep.data + pos);
			pos += FUSE_DIRENT_SIZE(d);
		}
		cr_assert_lt(d->namelen, 64);
		memcpy(names[n], d->name, d->namelen);
		names[n][d->namelen] = '\0';
		offs[n++] = d->off;
	}
	return n;
}

/* A directory whose host records fill several read-ahead buffers, read a
 * page at a time: every name once, in one order; then a READDIR that seeks
 * back to a cookie in the middle, and the ones that read on from it, give
 * exactly what followed that cookie the first time. */
static void list_big(bool plus)
{
	static char names[BIG_N + 2][64], again[BIG_N + 2][64];
	static uint64_t offs[BIG_N + 2], offs2[BIG_N + 2];
	struct fuse_entry_out e;
	char path[300];
	uint64_t node, fh;
	int n = 0, got, err, from;

	snprintf(path, sizeof(path), "%s/big", dir);
	cr_assert_eq(mkdir(path, 0755), 0);
	for (int i = 0; i < BIG_N; i++) {
		snprintf(path, sizeof(path), "big/entry-%04d-with-a-name-long-enough-for-big-records", i);
		put_file(path, "");
	}
	do_init(38, 0, NULL);
	node = do_lookup(1, "big", &e);
	fh = do_open(FUSE_OPENDIR, node, O_RDONLY, &err);
	cr_assert_eq(err, 0);
	while ((got = read_dir_once(node, fh, n ? offs[n - 1] : 0, plus, names + n, offs + n)) > 0) {
		n += got;
		cr_assert_leq(n, BIG_N + 2, "listed too many");
	}
	cr_assert_eq(n, BIG_N + 2, "every entry and the dots");
	for (int i = 0; i < BIG_N; i++) {
		snprintf(path, sizeof(path), "entry-%04d-with-a-name-long-enough-for-big-records", i);
		(void)index_of(names, n, path);
	}
	from = n / 2;
	for (int pass = 0, at = from; pass < 3; pass++) {
		got = read_dir_once(node, fh, offs[at - 1], plus, again, offs2);
		cr_assert_gt(got, 0);
		for (int i = 0; i < got; i++) {
			cr_assert_str_eq(again[i], names[at + i], "pass %d, entry %d", pass, at + i);
			cr_assert_eq(offs2[i], offs[at + i]);
		}
		at += got;
	}
	/* Cookies a hostile guest may send: one past the host's range is EINVAL;
	 * the largest in it lies past every entry (no entries, or an errno);
	 * neither leaves the handle reading on from the wrong place. */
	for (int k = 0; k < 2; k++) {
		struct fuse_read_in ri = {.fh = fh, .size = 4096};
		struct reply rep;

		ri.offset = k == 0 ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
		run(plus ? FUSE_READDIRPLUS : FUSE_READDIR, node, &ri, sizeof(ri), NULL, WR_BIG,
		    &rep);
		if (k == 0)
			cr_assert_eq(rep.oh.error, -EINVAL);
		else
			cr_assert(rep.oh.error < 0 || rep.used == 16,
				  "cookie INT64_MAX: error %d, %u bytes", rep.oh.error, rep.used);
		got = read_dir_once(node, fh, offs[from - 1], plus, again, offs2);
		cr_assert_gt(got, 0);
		for (int i = 0; i < got; i++)
			cr_assert_str_eq(again[i], names[from + i], "after cookie %d, entry %d", k,
					 from + i);
	}
}

Test(fuse_pt, readdir_of_a_big_directory_reads_on_and_seeks_back)
{
	list_big(false);
}

Test(fuse_pt, readdirplus_of_a_big_directory_reads_on_and_seeks_back)
{
	list_big(true);
}

Test(fuse_pt, readdir_buffer_too_small_for_one_record_gets_einval)
{
	struct fuse_read_in ri = {.size = 100};
	struct reply rep;
	int err;

	do_init(38, 0, NULL);
	ri.fh = do_open(FUSE_OPENDIR, 1, O_RDONLY, &err);
	cr_assert_eq(err, 0);
	run(FUSE_READDIRPLUS, 1, &ri, sizeof(ri), NULL, WR_BIG, &rep);
	cr_assert_eq(rep.oh.error, -EINVAL);
}

/*
 * The iovecs a back end gets for a request's data stay the request's own
 * until it is answered, however many other requests the same thread
 * slices meanwhile (a back end finishing reads on the loop thread holds
 * several at once), and a chain of many descriptors gets all of them.
 */
Test(fuse_pt, data_iovecs_belong_to_their_request)
{
	enum { NSEG = 40 };
	static uint8_t buf[2][16 + NSEG * 64];
	struct iovec wr[2][NSEG + 1], *iov[2];
	struct fuse_req *r[2];
	unsigned n[2];
	size_t got[2];

	for (int k = 0; k < 2; k++) {
		cr_assert_not_null(r[k] = calloc(1, sizeof(*r[k])));
		/* the out header, then NSEG pieces of 64 bytes */
		wr[k][0] = (struct iovec){buf[k], 16};
		for (int i = 0; i < NSEG; i++)
			wr[k][1 + i] = (struct iovec){buf[k] + 16 + i * 64, 64};
		r[k]->r_elem.wr = wr[k];
		r[k]->r_elem.nwr = NSEG + 1;
		r[k]->r_elem.wr_len = sizeof(buf[k]);
	}
	got[0] = be_req_data_iov(r[0], 100, &iov[0], &n[0]);
	got[1] = be_req_data_iov(r[1], NSEG * 64, &iov[1], &n[1]);
	cr_assert_eq(got[0], 100);
	cr_assert_eq(n[0], 2);
	cr_assert_eq(got[1], NSEG * 64);
	cr_assert_eq(n[1], NSEG);
	/* the first request's slice still names its own buffers */
	cr_expect_eq(iov[0][0].iov_base, buf[0] + 16);
	cr_expect_eq(iov[0][0].iov_len, 64);
	cr_expect_eq(iov[0][1].iov_base, buf[0] + 16 + 64);
	cr_expect_eq(iov[0][1].iov_len, 36);
	cr_expect_eq(iov[1][NSEG - 1].iov_base, buf[1] + 16 + (NSEG - 1) * 64);
	for (int k = 0; k < 2; k++) {
		fuse_req_slice_free(r[k]);
		free(r[k]);
	}
}

/*
 * What a back end cannot do is answered by the dispatcher, before the back
 * end runs, with what a local file system without the feature says: LINK
 * EPERM, O_TMPFILE EOPNOTSUPP, locks and xattrs ENOSYS (the guest's kernel
 * then keeps locks to itself and stops asking for xattrs). A back end that
 * can is asked (the same calls succeed or fail on their own merits).
 */
Test(fuse_pt, what_a_back_end_cannot_do_is_answered_for_it)
{
	struct fuse_link_in li;
	struct fuse_create_in ci = {.flags = O_RDWR, .mode = S_IFREG | 0600};
	struct fuse_lk_in lk = {.lk = {.start = 0, .end = 10, .type = F_RDLCK}};
	struct fuse_getxattr_in gx = {.size = 0};
	struct fuse_fallocate_in fa = {.fh = 1, .offset = 0, .length = 1 << 20, .mode = 0};
	struct fuse_copy_file_range_in cf = {.fh_in = 1, .nodeid_out = 0, .fh_out = 1, .len = 10};
	struct fuse_entry_out e;
	struct reply rep;
	char path[300];
	struct stat st;
	off_t size0;
	uint64_t node;

	do_init(38, 0, NULL);
	node = do_lookup(1, "hello.txt", &e);
	cf.nodeid_out = node;
	snprintf(path, sizeof(path), "%s/hello.txt", dir);
	cr_assert_eq(stat(path, &st), 0);
	size0 = st.st_size;
	li.oldnodeid = node;
	sess.fs_can = 0;
	run(FUSE_LINK, 1, &li, sizeof(li), "hard", WR_BIG, &rep);
	cr_expect_eq(rep.oh.error, -EPERM);
	run(FUSE_TMPFILE, 1, &ci, sizeof(ci), "t", WR_BIG, &rep);
	cr_expect_eq(rep.oh.error, -EOPNOTSUPP);
	run(FUSE_GETLK, node, &lk, sizeof(lk), NULL, WR_BIG, &rep);
	cr_expect_eq(rep.oh.error, -ENOSYS);
	run(FUSE_GETXATTR, node, &gx, sizeof(gx), "user.x", WR_BIG, &rep);
	cr_expect_eq(rep.oh.error, -ENOSYS);
	run(FUSE_FALLOCATE, node, &fa, sizeof(fa), NULL, WR_BIG, &rep);
	cr_expect_eq(rep.oh.error, -EOPNOTSUPP, "FALLOCATE without random writes: %d",
		     rep.oh.error);
	run(FUSE_COPY_FILE_RANGE, node, &cf, sizeof(cf), NULL, WR_BIG, &rep);
	cr_expect_eq(rep.oh.error, -ENOSYS, "COPY_FILE_RANGE without random writes: %d",
		     rep.oh.error);
	snprintf(path, sizeof(path), "%s/hello.txt", dir);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_size, size0, "a refused FALLOCATE changed the file");
	snprintf(path, sizeof(path), "%s/hard", dir);
	cr_expect_eq(access(path, F_OK), -1, "LINK refused, yet the link exists");

	sess.fs_can = BE_CAN_ALL;
	run(FUSE_LINK, 1, &li, sizeof(li), "hard", WR_BIG, &rep);
	cr_expect_eq(rep.oh.error, 0, "LINK with BE_CAN_LINK: %d", rep.oh.error);
	run(FUSE_GETXATTR, node, &gx, sizeof(gx), "user.x", WR_BIG, &rep);
	cr_expect_neq(rep.oh.error, -ENOSYS, "GETXATTR with BE_CAN_XATTR reached the back end");
}
