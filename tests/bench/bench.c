/*
 * bench.c - `make bench`: bulkheadd against QEMU's virtiofsd through the
 * same userspace front end (vufe), same share, same queue geometry
 * (hiprio + one request queue of 1024 entries). Each run starts both
 * daemons afresh, so nothing is cached in a session across runs, and they
 * take turns at each row (bn_run); rows report the median of the runs with
 * min-max, and the median of the runs' ratios. The write rows write into a preallocated file and a directory the create row
 * leaves empty again, so every run sees the same share. The scaling row
 * (GETATTR on 1, 2 and 4 request queues) has no peer: QEMU 7.2's virtiofsd
 * serves one request queue.
 * Runs in: the bench process; the daemons are children.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"
#include "vhost_user.h"
#include "vufe.h"

#define BN_FILES     10000
#define BN_BIG	     (64u << 20)
#define BN_QSIZE     1024
#define BN_MAX_RUNS  15
#define BN_MAX_DEPTH 64

enum bn_row {
	BN_GETATTR1,
	BN_GETATTR16,
	BN_LOOKUP,
	BN_READ4K,
	BN_READ1M,
	BN_WRITE4K,
	BN_WRITE1M,
	BN_CREATE,
	BN_SMALLREAD,
	BN_READDIRPLUS,
	BN_NROWS
};

static const struct {
	const char *name, *unit, *what;
} bn_rows[BN_NROWS] = {
    [BN_GETATTR1] = {"getattr_qd1", "ops/s", "GETATTR round trips, 1 in flight"},
    [BN_GETATTR16] = {"getattr_qd16", "ops/s", "GETATTR, 16 in flight"},
    [BN_LOOKUP] = {"lookup_10k", "names/s",
		   "LOOKUP of 10,000 names the daemon does not know, 16 in flight, then FORGET "
		   "(not timed), repeated"},
    [BN_READ4K] = {"read4k_qd16", "IOPS", "4 KiB random READ, 16 in flight, cached file"},
    [BN_READ1M] = {"read1m_qd4", "MiB/s",
		   "1 MiB sequential READ in 4 KiB descriptors, 4 in flight"},
    [BN_WRITE4K] = {"write4k_qd16", "IOPS", "4 KiB random WRITE, 16 in flight, preallocated file"},
    [BN_WRITE1M] = {"write1m_qd4", "MiB/s",
		    "1 MiB sequential WRITE, data in 4 KiB descriptors, 4 in flight"},
    [BN_CREATE] = {"create_10k", "files/s",
		   "CREATE+GETATTR+RELEASE+UNLINK of 10,000 files, 16 files in flight, "
		   "FORGETs batched on hiprio"},
    [BN_SMALLREAD] = {"smallfile_read", "files/s",
		      "LOOKUP+OPEN+READ 4 KiB+FLUSH+RELEASE of each of 10,000 4 KiB files, 16 "
		      "files in flight, FORGETs batched on hiprio"},
    [BN_READDIRPLUS] = {"readdirplus_3k", "entries/s",
			"OPENDIR, READDIRPLUS of 4 KiB pages to the end, RELEASEDIR of a "
			"3,000-entry directory, one request at a time; FORGETs not timed"},
};

/* The scaling row: bulkhead alone, GETATTR with 1, 2 and 4 request queues. */
#define BN_SCALE_N     3
#define BN_SCALE_DEPTH 16
static const unsigned bn_scale_queues[BN_SCALE_N] = {1, 2, 4};
static double bn_scale[BN_SCALE_N][BN_MAX_RUNS];

static int bn_runs = 5;
/* --backend=memory: bulkhead serves a new in-memory file system of this
 * size (made afresh with every daemon, its files through the daemon's
 * descriptor of it), virtiofsd a directory on tmpfs. */
static bool bn_memory;
#define BN_MEMORY_BYTES (1ull << 30)
#define BN_DIR3K	3000
/* The harness logs at debug for the tests; a benchmark logs like production.
 * --bulkhead-arg adds options (e.g. --thread-pool-size=N) for tuning runs. */
#define BN_MAX_ARGS 8
static const char *bn_bulkhead_args[BN_MAX_ARGS + 2] = {"--log-level=info", NULL};
static int bn_nargs = 1;
static double bn_seconds = 2.0;
static double bn_val[BN_NROWS][2][BN_MAX_RUNS];
/* --rows: the rows to time (bit per enum bn_row, plus the scaling row);
 * a row left out is not run and prints no BENCH line. */
#define BN_SCALE_BIT (1u << BN_NROWS)
static unsigned bn_want = ~0u;
/* --turns: print each turn's start and end on CLOCK_MONOTONIC, the clock of
 * `perf record -k mono`, so a profile of the run can be cut to one daemon's
 * turn (perf report --time START,END). */
static bool bn_turns;

struct bn_ctx {
	uint64_t nodeid;
	uint64_t fh;
	uint64_t many; /* node id of the directory with BN_FILES files */
	uint64_t cdirs; /* node id of the directory of create directories */
	uint32_t size;
	uint32_t rnd;
	uint64_t seq;
	uint64_t cdir; /* node id of the fresh directory a create turn fills */
	uint64_t wnode, wfh; /* the file the write rows write */
	/* optional: called with each completed call (bn_pipeline) */
	void (*done)(struct vufe_call *c, struct bn_ctx *x);
	/* READ and WRITE rows: the rate comes from the bytes the replies say
	 * were moved (bn_count_read, bn_count_write), in requests of size */
	bool count_bytes;
	uint64_t bytes;
	uint64_t *nodes; /* the LOOKUP row's answers, to forget */
	unsigned nnodes;
	uint64_t dir3k;	   /* node id of the 3,000-entry directory */
	const char *share; /* this side's share as the host reaches it */
};

/* bn_pipeline flag: WRITE data in one readable descriptor per 4 KiB page,
 * as a Linux guest lays it out (the in part is in_header, write_in, data). */
#define BN_DATA_PAGES 0x10000
#define BN_PAGE	      4096u
#define BN_MAX_SG     (4 + (1u << 20) / BN_PAGE)

typedef int (*bn_prep_fn)(struct vufe *, struct vufe_call *, uint64_t, struct bn_ctx *);

static void bn_die(const char *what, int r)
{
	fprintf(stderr, "bench: %s failed (%d)\n", what, r);
	exit(1);
}

static int bn_submit(struct vufe *fe, unsigned q, struct vufe_call *c, int flags)
{
	static struct vufe_sg sg[BN_MAX_SG];
	const size_t hl = sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in);
	unsigned n = 0;
	int head;

	if (!(flags & BN_DATA_PAGES))
		return vufe_call_submit(fe, q, c, flags);
	sg[n++] = (struct vufe_sg){c->c_in_gpa, sizeof(struct fuse_in_header), 0};
	sg[n++] = (struct vufe_sg){c->c_in_gpa + sizeof(struct fuse_in_header),
				   sizeof(struct fuse_write_in), 0};
	for (size_t pos = hl; pos < c->c_in_len && n < BN_MAX_SG - 2; pos += BN_PAGE) {
		size_t piece = c->c_in_len - pos > BN_PAGE ? BN_PAGE : c->c_in_len - pos;
		sg[n++] = (struct vufe_sg){c->c_in_gpa + pos, (uint32_t)piece, 0};
	}
	sg[n++] = (struct vufe_sg){c->c_out_gpa, sizeof(struct fuse_out_header), 1};
	sg[n++] = (struct vufe_sg){c->c_out_gpa + BN_PAGE, (uint32_t)(c->c_out_len - 16), 1};
	head = vufe_submit(fe, q, sg, n, VUFE_AUTO, c, !(flags & VUFE_NO_KICK));
	if (head < 0)
		return head;
	c->c_queue = q;
	c->c_head = head;
	c->c_done = 0;
	return 0;
}

/* Keep depth requests in flight until max_ops are done or time runs out.
 * Returns completed operations; *secs gets the elapsed time. */
static uint64_t bn_pipeline(struct vufe *fe, struct vufe_call **calls, int depth, uint64_t max_ops,
			    double seconds, bn_prep_fn prep, struct bn_ctx *ctx, int flags,
			    double *secs)
{
	uint64_t start = bh_now_ns(), deadline = start + (uint64_t)(seconds * 1e9);
	uint64_t submitted = 0, completed = 0;
	int r;

	for (int i = 0; i < depth && submitted < max_ops; i++) {
		if ((r = prep(fe, calls[i], submitted++, ctx)) ||
		    (r = bn_submit(fe, 1, calls[i], flags | VUFE_NO_KICK)))
			bn_die("submit", r);
	}
	vufe_kick(fe, 1);
	while (completed < submitted) {
		struct vufe_call *c = NULL;
		if ((r = vufe_call_wait_any(fe, 1, VUFE_TIMEOUT_MS, &c)) || !c)
			bn_die("wait for a completion", r);
		if ((r = vufe_call_result(c)))
			bn_die("request", r);
		if (ctx->done)
			ctx->done(c, ctx);
		completed++;
		if (submitted < max_ops && bh_now_ns() < deadline) {
			if ((r = prep(fe, c, submitted++, ctx)) || (r = bn_submit(fe, 1, c, flags)))
				bn_die("resubmit", r);
		}
	}
	*secs = (double)(bh_now_ns() - start) / 1e9;
	return completed;
}

static int bn_prep_getattr(struct vufe *fe, struct vufe_call *c, uint64_t i, struct bn_ctx *x)
{
	struct fuse_getattr_in in = {0};
	(void)i;
	return vufe_call_prep(fe, c, FUSE_GETATTR, x->nodeid, &in, sizeof(in), NULL, 0,
			      16 + sizeof(struct fuse_attr_out));
}

static int bn_prep_lookup(struct vufe *fe, struct vufe_call *c, uint64_t i, struct bn_ctx *x)
{
	char name[16];
	int n = snprintf(name, sizeof(name), "f%05u", (unsigned)i);
	return vufe_call_prep(fe, c, FUSE_LOOKUP, x->many, name, (size_t)n + 1, NULL, 0,
			      16 + sizeof(struct fuse_entry_out));
}

static void bn_lookup_done(struct vufe_call *c, struct bn_ctx *x)
{
	const struct fuse_entry_out *e = vufe_call_data(c);

	if (vufe_call_data_len(c) < sizeof(*e) || x->nnodes >= BN_FILES)
		bn_die("LOOKUP reply", (int)vufe_call_data_len(c));
	x->nodes[x->nnodes++] = e->nodeid;
}

/* FORGET every name the LOOKUP row learnt, on hiprio as a guest would. */
static void bn_forget_all(struct vufe *fe, struct bn_ctx *x)
{
	enum { BATCH = 256 };
	struct fuse_forget_one f[BATCH];
	unsigned n = 0;
	int r;

	for (unsigned i = 0; i < x->nnodes; i++) {
		f[n++] = (struct fuse_forget_one){.nodeid = x->nodes[i], .nlookup = 1};
		if ((n == BATCH || i + 1 == x->nnodes) &&
		    (r = vufe_fuse_batch_forget(fe, 0, f, n)))
			bn_die("BATCH_FORGET", r);
		if (n == BATCH)
			n = 0;
	}
	x->nnodes = 0;
}

static int bn_prep_read_rand(struct vufe *fe, struct vufe_call *c, uint64_t i, struct bn_ctx *x)
{
	struct fuse_read_in in = {.fh = x->fh, .size = x->size};
	(void)i;
	x->rnd = x->rnd * 1103515245u + 12345u;
	in.offset = (uint64_t)((x->rnd >> 8) % (BN_BIG / x->size)) * x->size;
	return vufe_call_prep(fe, c, FUSE_READ, x->nodeid, &in, sizeof(in), NULL, 0, 16 + x->size);
}

static int bn_prep_read_seq(struct vufe *fe, struct vufe_call *c, uint64_t i, struct bn_ctx *x)
{
	struct fuse_read_in in = {.fh = x->fh, .size = x->size};
	(void)i;
	in.offset = x->seq;
	x->seq = (x->seq + x->size) % BN_BIG;
	return vufe_call_prep(fe, c, FUSE_READ, x->nodeid, &in, sizeof(in), NULL, 0, 16 + x->size);
}

/* What a READ really returned, not what it asked for: a short reply must
 * not pass for a full one. */
static void bn_count_read(struct vufe_call *c, struct bn_ctx *x)
{
	x->bytes += vufe_call_data_len(c);
}

/* What a WRITE's reply says was written. */
static void bn_count_write(struct vufe_call *c, struct bn_ctx *x)
{
	const struct fuse_write_out *wo = vufe_call_data(c);

	if (vufe_call_data_len(c) < sizeof(*wo))
		bn_die("WRITE reply size", (int)vufe_call_data_len(c));
	x->bytes += wo->size;
}

/* WRITE: the data is copied into the guest buffer once per call; later
 * submissions only move the offset (a guest does not copy either). */
static int bn_prep_write(struct vufe *fe, struct vufe_call *c, uint64_t i, struct bn_ctx *x,
			 uint64_t off)
{
	struct fuse_write_in in = {.fh = x->fh, .offset = off, .size = x->size};
	const size_t hl = sizeof(struct fuse_in_header);
	int r;

	(void)i;
	if (c->c_in_len == hl + sizeof(in) + x->size &&
	    ((struct fuse_in_header *)c->c_in)->opcode == FUSE_WRITE) {
		memcpy(c->c_in + hl, &in, sizeof(in));
		c->c_done = 0;
		c->c_used_len = 0;
		memset(c->c_out, 0xa5, sizeof(struct fuse_out_header));
		return 0;
	}
	if (hl + sizeof(in) + x->size > c->c_in_cap)
		return -EMSGSIZE;
	if ((r = vufe_call_prep(fe, c, FUSE_WRITE, x->nodeid, &in, sizeof(in), NULL, 0,
				16 + sizeof(struct fuse_write_out))))
		return r;
	hx_big_content(c->c_in + hl + sizeof(in), x->size);
	c->c_in_len = hl + sizeof(in) + x->size;
	((struct fuse_in_header *)c->c_in)->len = (uint32_t)c->c_in_len;
	return 0;
}

static int bn_prep_write_rand(struct vufe *fe, struct vufe_call *c, uint64_t i, struct bn_ctx *x)
{
	x->rnd = x->rnd * 1103515245u + 12345u;
	return bn_prep_write(fe, c, i, x, (uint64_t)((x->rnd >> 8) % (BN_BIG / x->size)) * x->size);
}

static int bn_prep_write_seq(struct vufe *fe, struct vufe_call *c, uint64_t i, struct bn_ctx *x)
{
	uint64_t off = x->seq;

	x->seq = (x->seq + x->size) % BN_BIG;
	return bn_prep_write(fe, c, i, x, off);
}

static double bn_measure(struct vufe *fe, int depth, uint64_t max_ops, double seconds,
			 bn_prep_fn prep, struct bn_ctx *x, size_t out_cap, int flags,
			 uint64_t *ops_out)
{
	struct vufe_call *calls[BN_MAX_DEPTH];
	uint64_t ops;
	double secs;

	size_t in_cap = 128 + ((flags & BN_DATA_PAGES) ? x->size : 0);

	for (int i = 0; i < depth; i++)
		if (!(calls[i] = vufe_call_new(fe, in_cap, out_cap)))
			bn_die("allocate guest buffers", -ENOMEM);
	x->bytes = 0;
	ops = bn_pipeline(fe, calls, depth, max_ops, seconds, prep, x, flags, &secs);
	for (int i = 0; i < depth; i++)
		vufe_call_free(fe, calls[i]);
	if (ops_out)
		*ops_out = ops;
	if (!x->count_bytes)
		return (double)ops / secs;
	if (x->bytes != ops * x->size)
		fprintf(stderr, "bench: %llu calls of %u bytes moved %llu bytes\n",
			(unsigned long long)ops, x->size, (unsigned long long)x->bytes);
	return (double)x->bytes / x->size / secs;
}

/* Write back what earlier rows (of either daemon) left dirty, so that the
 * create row does not pay for someone else's writeback. Not timed. */
static void bn_settle(const char *share)
{
	int fd = open(share, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)syncfs(fd);
		close(fd);
	}
}

/*
 * Each create turn fills a directory of its own, made here (not timed) in
 * "cdirs", which carries ext4's top-directory flag, so that ext4 puts it in
 * a block group of its own. Without that every turn would allocate inodes
 * where earlier turns freed thousands: ext4 without a journal (this
 * machine's root) skips inodes freed in the last minute, block by block, and
 * the row would time that scan (3,000 files/s with no daemon at all, against
 * 75,000 in a fresh group) rather than the daemons.
 */
static void bn_create_dir(struct vufe *fe, struct bn_ctx *x)
{
	const char *share = x->share;
	static unsigned seq;
	struct fuse_entry_out e;
	char p[512], name[32];
	int r;

	bn_settle(share);
	snprintf(name, sizeof(name), "t%u", seq++);
	snprintf(p, sizeof(p), "%s/cdirs/%s", share, name);
	if (mkdir(p, 0755))
		bn_die("mkdir a create directory", -errno);
	if ((r = vufe_fuse_lookup(fe, 1, x->cdirs, name, &e)))
		bn_die("lookup a create directory", r);
	x->cdir = e.nodeid;
}

/*
 * The rows that take many files through a few requests each, 16 files in
 * flight: a file's stages are requests in order, and its node is forgotten
 * (batched on hiprio, as a guest does) after its last one.
 */
struct bn_file {
	struct vufe_call *f_call;
	unsigned f_stage;
	unsigned f_idx;
	uint64_t f_node, f_fh;
};

struct bn_file_row {
	unsigned fr_stages;
	/* prepare f's request for its stage */
	int (*fr_prep)(struct vufe *fe, struct bn_file *f, struct bn_ctx *x);
	/* a stage's reply arrived: keep what later stages need */
	void (*fr_done)(struct bn_file *f, struct vufe_call *c);
};

/* One file's life as a guest's `touch f; stat f; rm f` sends it. */
enum bn_stage { BN_ST_CREATE, BN_ST_GETATTR, BN_ST_RELEASE, BN_ST_UNLINK };

static int bn_create_prep(struct vufe *fe, struct bn_file *f, struct bn_ctx *x)
{
	struct fuse_create_in ci = {
	    .flags = O_RDWR | O_CREAT | O_EXCL, .mode = S_IFREG | 0644, .umask = 022};
	struct fuse_getattr_in gi = {0};
	struct fuse_release_in ri = {.fh = f->f_fh, .flags = O_RDWR};
	char name[16];
	int n = snprintf(name, sizeof(name), "c%05u", f->f_idx);

	switch (f->f_stage) {
	case BN_ST_CREATE:
		return vufe_call_prep(
		    fe, f->f_call, FUSE_CREATE, x->cdir, &ci, sizeof(ci), name, (size_t)n + 1,
		    16 + sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out));
	case BN_ST_GETATTR:
		return vufe_call_prep(fe, f->f_call, FUSE_GETATTR, f->f_node, &gi, sizeof(gi), NULL,
				      0, 16 + sizeof(struct fuse_attr_out));
	case BN_ST_RELEASE:
		return vufe_call_prep(fe, f->f_call, FUSE_RELEASE, f->f_node, &ri, sizeof(ri), NULL,
				      0, 16);
	case BN_ST_UNLINK:
		return vufe_call_prep(fe, f->f_call, FUSE_UNLINK, x->cdir, name, (size_t)n + 1,
				      NULL, 0, 16);
	}
	return -EINVAL;
}

static void bn_create_done(struct bn_file *f, struct vufe_call *c)
{
	const struct fuse_entry_out *e = vufe_call_data(c);
	const struct fuse_open_out *oo = (const void *)(e + 1);

	if (f->f_stage != BN_ST_CREATE)
		return;
	if (vufe_call_data_len(c) < sizeof(*e) + sizeof(*oo))
		bn_die("CREATE reply size", (int)vufe_call_data_len(c));
	f->f_node = e->nodeid;
	f->f_fh = oo->fh;
}

static const struct bn_file_row bn_create_stages = {4, bn_create_prep, bn_create_done};

/* One small file read as a guest's `cat f` sends it (warm: no GETATTR). */
enum bn_rstage { BN_RS_LOOKUP, BN_RS_OPEN, BN_RS_READ, BN_RS_FLUSH, BN_RS_RELEASE };

static int bn_smallread_prep(struct vufe *fe, struct bn_file *f, struct bn_ctx *x)
{
	struct fuse_open_in oi = {.flags = O_RDONLY};
	struct fuse_read_in ri = {.fh = f->f_fh, .size = BN_PAGE, .flags = O_RDONLY};
	struct fuse_flush_in fl = {.fh = f->f_fh};
	struct fuse_release_in rl = {.fh = f->f_fh, .flags = O_RDONLY};
	char name[16];
	int n = snprintf(name, sizeof(name), "f%05u", f->f_idx % BN_FILES);

	switch (f->f_stage) {
	case BN_RS_LOOKUP:
		return vufe_call_prep(fe, f->f_call, FUSE_LOOKUP, x->many, name, (size_t)n + 1,
				      NULL, 0, 16 + sizeof(struct fuse_entry_out));
	case BN_RS_OPEN:
		return vufe_call_prep(fe, f->f_call, FUSE_OPEN, f->f_node, &oi, sizeof(oi), NULL, 0,
				      16 + sizeof(struct fuse_open_out));
	case BN_RS_READ:
		return vufe_call_prep(fe, f->f_call, FUSE_READ, f->f_node, &ri, sizeof(ri), NULL, 0,
				      16 + BN_PAGE);
	case BN_RS_FLUSH:
		return vufe_call_prep(fe, f->f_call, FUSE_FLUSH, f->f_node, &fl, sizeof(fl), NULL,
				      0, 16);
	case BN_RS_RELEASE:
		return vufe_call_prep(fe, f->f_call, FUSE_RELEASE, f->f_node, &rl, sizeof(rl), NULL,
				      0, 16);
	}
	return -EINVAL;
}

static void bn_smallread_done(struct bn_file *f, struct vufe_call *c)
{
	if (f->f_stage == BN_RS_LOOKUP) {
		if (vufe_call_data_len(c) < sizeof(struct fuse_entry_out))
			bn_die("LOOKUP reply size", (int)vufe_call_data_len(c));
		f->f_node = ((const struct fuse_entry_out *)vufe_call_data(c))->nodeid;
	} else if (f->f_stage == BN_RS_OPEN) {
		if (vufe_call_data_len(c) < sizeof(struct fuse_open_out))
			bn_die("OPEN reply size", (int)vufe_call_data_len(c));
		f->f_fh = ((const struct fuse_open_out *)vufe_call_data(c))->fh;
	} else if (f->f_stage == BN_RS_READ && vufe_call_data_len(c) != BN_PAGE) {
		bn_die("READ of a 4 KiB file", (int)vufe_call_data_len(c));
	}
}

static const struct bn_file_row bn_smallread_stages = {5, bn_smallread_prep, bn_smallread_done};

/*
 * The create row's FORGETs, sent as a guest's kernel sends them: in
 * batches on hiprio, without waiting for their completion. A call is
 * waited for only when its slot comes round again (BN_FORGET_SLOTS
 * batches later) and at the end of the row, after the clock stops. The
 * daemon need not interrupt the front end for a completion that carries
 * no reply (bulkheadd signals those on hiprio up to 10 ms late), so a row
 * that waited for each batch would time that delay, not the daemon.
 */
enum { BN_FORGET_BATCH = 256, BN_FORGET_SLOTS = 4 };

struct bn_forgets {
	struct fuse_forget_one f_one[BN_FORGET_BATCH];
	unsigned f_n;
	struct vufe_call *f_call[BN_FORGET_SLOTS];
	bool f_busy[BN_FORGET_SLOTS];
	unsigned f_sent;
};

static void bn_forgets_wait(struct vufe *fe, struct bn_forgets *g, unsigned slot)
{
	int r;

	if (!g->f_busy[slot])
		return;
	if ((r = vufe_call_wait(fe, g->f_call[slot], VUFE_TIMEOUT_MS)) ||
	    (r = vufe_call_result(g->f_call[slot])))
		bn_die("BATCH_FORGET", r);
	g->f_busy[slot] = false;
}

static void bn_forgets_send(struct vufe *fe, struct bn_forgets *g)
{
	struct fuse_batch_forget_in in = {.count = g->f_n};
	unsigned slot = g->f_sent++ % BN_FORGET_SLOTS;
	struct vufe_call *c;
	int r;

	if (g->f_n == 0)
		return;
	bn_forgets_wait(fe, g, slot);
	if (!(c = g->f_call[slot]) &&
	    !(c = g->f_call[slot] = vufe_call_new(fe, sizeof(in) + sizeof(g->f_one), 1)))
		bn_die("allocate guest buffers", -ENOMEM);
	if ((r = vufe_call_prep(fe, c, FUSE_BATCH_FORGET, 0, &in, sizeof(in), g->f_one,
				g->f_n * sizeof(g->f_one[0]), 0)) ||
	    (r = vufe_call_submit(fe, 0, c, 0)))
		bn_die("BATCH_FORGET", r);
	g->f_busy[slot] = true;
	g->f_n = 0;
}

static void bn_forget(struct vufe *fe, struct bn_forgets *g, uint64_t node)
{
	g->f_one[g->f_n++] = (struct fuse_forget_one){.nodeid = node, .nlookup = 1};
	if (g->f_n == BN_FORGET_BATCH)
		bn_forgets_send(fe, g);
}

/* Every batch sent has completed; the calls are freed. */
static void bn_forgets_end(struct vufe *fe, struct bn_forgets *g)
{
	for (unsigned i = 0; i < BN_FORGET_SLOTS; i++) {
		bn_forgets_wait(fe, g, i);
		if (g->f_call[i])
			vufe_call_free(fe, g->f_call[i]);
	}
}

/*
 * Files through the row's stages, 16 in flight, each file's node forgotten
 * after its last stage (above): up to max files, or until secs have passed
 * (files in flight then finish). Files per second.
 */
static double bn_files_row(struct vufe *fe, struct bn_ctx *x, const struct bn_file_row *row,
			   unsigned max, double secs)
{
	enum { DEPTH = 16 };
	struct bn_file files[DEPTH];
	struct bn_forgets forgets = {.f_n = 0};
	uint64_t start = bh_now_ns(), deadline = start + (uint64_t)(secs * 1e9);
	unsigned next = 0, done = 0, busy = 0;
	double took;
	int r;

	for (int i = 0; i < DEPTH; i++) {
		if (!(files[i].f_call = vufe_call_new(fe, 256, 16 + BN_PAGE)))
			bn_die("allocate guest buffers", -ENOMEM);
		files[i] = (struct bn_file){.f_call = files[i].f_call, .f_idx = next++};
		if ((r = row->fr_prep(fe, &files[i], x)) ||
		    (r = vufe_call_submit(fe, 1, files[i].f_call, VUFE_NO_KICK)))
			bn_die("submit", r);
		busy++;
	}
	vufe_kick(fe, 1);
	while (busy > 0) {
		struct vufe_call *c = NULL;
		struct bn_file *f = NULL;
		if ((r = vufe_call_wait_any(fe, 1, VUFE_TIMEOUT_MS, &c)) || !c)
			bn_die("wait for a completion", r);
		for (int i = 0; i < DEPTH; i++)
			if (files[i].f_call == c)
				f = &files[i];
		if (!f)
			bn_die("completion of an unknown call", -EPROTO);
		if ((r = vufe_call_result(c)))
			bn_die("file row request", r);
		row->fr_done(f, c);
		if (++f->f_stage == row->fr_stages) {
			bn_forget(fe, &forgets, f->f_node);
			done++;
			if (next >= max || bh_now_ns() >= deadline) {
				busy--;
				continue;
			}
			*f = (struct bn_file){.f_call = c, .f_idx = next++};
		}
		if ((r = row->fr_prep(fe, f, x)) || (r = vufe_call_submit(fe, 1, c, 0)))
			bn_die("resubmit", r);
	}
	bn_forgets_send(fe, &forgets);
	took = (double)(bh_now_ns() - start) / 1e9;
	bn_forgets_end(fe, &forgets);
	for (int i = 0; i < DEPTH; i++)
		vufe_call_free(fe, files[i].f_call);
	return done / took;
}

/*
 * A guest's `ls -l` of the 3,000-entry directory, from the daemon's side:
 * OPENDIR, READDIRPLUS one 4 KiB page at a time (as Linux asks) until an
 * empty reply, RELEASEDIR; then, not timed, a FORGET of every entry it
 * returned, so that the next pass meets the names unknown again. Passes
 * until secs have passed; entries per second.
 */
static double bn_readdirplus_row(struct vufe *fe, struct bn_ctx *x, double secs)
{
	static uint64_t nodes[BN_DIR3K + 16];
	static uint8_t page[BN_PAGE];
	struct bn_forgets forgets = {.f_n = 0};
	double t = 0;
	uint64_t entries = 0;
	int r;

	do {
		uint64_t start = bh_now_ns(), fh, off = 0;
		unsigned n = 0;
		uint32_t len;

		if ((r = vufe_fuse_opendir(fe, 1, x->dir3k, &fh)))
			bn_die("OPENDIR", r);
		for (;;) {
			if ((r = vufe_fuse_readdir(fe, 1, FUSE_READDIRPLUS, x->dir3k, fh, off,
						   BN_PAGE, page, &len)))
				bn_die("READDIRPLUS", r);
			if (len == 0)
				break;
			for (uint32_t at = 0; at + FUSE_NAME_OFFSET_DIRENTPLUS <= len;) {
				const struct fuse_direntplus *d = (const void *)(page + at);
				if (d->entry_out.nodeid && n < BN_DIR3K + 16)
					nodes[n++] = d->entry_out.nodeid;
				off = d->dirent.off;
				at += FUSE_DIRENTPLUS_SIZE(d);
			}
		}
		if ((r = vufe_fuse_release(fe, 1, FUSE_RELEASEDIR, x->dir3k, fh)))
			bn_die("RELEASEDIR", r);
		t += (double)(bh_now_ns() - start) / 1e9;
		if (n < BN_DIR3K)
			bn_die("READDIRPLUS entries", (int)n);
		entries += n;
		for (unsigned i = 0; i < n; i++)
			bn_forget(fe, &forgets, nodes[i]);
		bn_forgets_send(fe, &forgets);
	} while (t < secs);
	bn_forgets_end(fe, &forgets);
	return (double)entries / t;
}

static void bn_print_session(const char *who, struct vufe *fe, const struct fuse_init_out *io)
{
	printf("%-9s virtio features offered %#llx acked %#llx; protocol features offered %#llx "
	       "acked %#llx; GET_QUEUE_NUM %llu\n",
	       who, (unsigned long long)vufe_offered_features(fe),
	       (unsigned long long)vufe_acked_features(fe),
	       (unsigned long long)vufe_offered_protocol_features(fe),
	       (unsigned long long)vufe_acked_protocol_features(fe),
	       (unsigned long long)vufe_queue_num(fe));
	printf("%-9s FUSE INIT %u.%u flags %#x max_pages %u max_write %u max_readahead %u\n", who,
	       io->major, io->minor, io->flags, io->max_pages, io->max_write, io->max_readahead);
}

static const char *bn_names[2] = {"bulkhead", "peer"};

/* One daemon with a front end on hiprio + one request queue, INIT done. */
struct bn_side {
	struct hx_daemon s_d;
	struct vufe *s_fe;
	char s_share[256]; /* its share as the host reaches it */
	int s_mem_fd;	   /* --backend=memory, bulkhead: our duplicate of its file system */
};

static int bn_make_share(const char *dir);

/* bulkheadd on share, or with --backend=memory on a new in-memory file
 * system; then s_share names what it serves, with the bench's files. */
static int bn_start_bulkhead(struct hx_daemon *d, const char *share, char *served, size_t len,
			     int *mem_fd)
{
	const char *args[BN_MAX_ARGS + 3];
	char size[64];
	int n = 0, r;

	*mem_fd = -1;
	if (!bn_memory) {
		snprintf(served, len, "%s", share);
		return hx_start_bulkheadd(d, share, bn_bulkhead_args);
	}
	for (; bn_bulkhead_args[n]; n++)
		args[n] = bn_bulkhead_args[n];
	snprintf(size, sizeof(size), "--memory-size=%llu", (unsigned long long)BN_MEMORY_BYTES);
	args[n++] = size;
	args[n] = NULL;
	if ((r = hx_start_bulkheadd(d, NULL, args)))
		return r;
	if ((*mem_fd = hx_memory_share_fd(d->hd_pid, BN_MEMORY_BYTES)) < 0)
		return -ENOENT;
	snprintf(served, len, "/proc/self/fd/%d", *mem_fd);
	return bn_make_share(served);
}

static void bn_side_up(struct bn_side *s, int which, bool print, const char *share)
{
	struct vufe_opts o;
	struct fuse_init_out io;
	int r;

	if (which == 0) {
		r = bn_start_bulkhead(&s->s_d, share, s->s_share, sizeof(s->s_share), &s->s_mem_fd);
	} else {
		s->s_mem_fd = -1;
		snprintf(s->s_share, sizeof(s->s_share), "%s", share);
		r = hx_start_virtiofsd(&s->s_d, share);
	}
	if (r)
		bn_die(which == 0 ? "start bulkheadd" : "start virtiofsd", r);
	vufe_opts_default(&o);
	o.mem_size = 256u << 20;
	o.queue_size = BN_QSIZE;
	o.nqueues = 2;
	if (!(s->s_fe = vufe_new(&o)))
		bn_die("vufe_new", -ENOMEM);
	if ((r = vufe_connect(s->s_fe, s->s_d.hd_sock, 5000)) || (r = vufe_negotiate(s->s_fe)))
		bn_die("negotiate", r);
	/* hiprio + one request queue for both; the peer counts its queues */
	if (vufe_queue_num(s->s_fe) && vufe_queue_num(s->s_fe) < 2)
		bn_die("GET_QUEUE_NUM below 2", (int)vufe_queue_num(s->s_fe));
	if ((r = vufe_start(s->s_fe, 1)) || (r = vufe_fuse_init(s->s_fe, 1, &io)))
		bn_die("start", r);
	if (print)
		bn_print_session(bn_names[which], s->s_fe, &io);
}

static void bn_side_down(struct bn_side *s, int which)
{
	int r;

	vufe_free(s->s_fe);
	if (s->s_mem_fd >= 0)
		close(s->s_mem_fd);
	r = hx_stop(&s->s_d, 5000);
	if (which == 0 && r != 0)
		fprintf(stderr, "bench: bulkheadd exited with status %d\n", r);
	hx_cleanup(&s->s_d);
}

/* A side's files: node ids and handles the rows use. */
static void bn_side_files(struct bn_side *s, struct bn_ctx *x)
{
	struct fuse_entry_out e;
	int r;

	if ((r = vufe_fuse_lookup(s->s_fe, 1, 1, "big", &e)))
		bn_die("lookup big", r);
	x->nodeid = e.nodeid;
	if ((r = vufe_fuse_open(s->s_fe, 1, x->nodeid, O_RDONLY, &x->fh)))
		bn_die("open big", r);
	if ((r = vufe_fuse_lookup(s->s_fe, 1, 1, "wfile", &e)))
		bn_die("lookup wfile", r);
	x->wnode = e.nodeid;
	if ((r = vufe_fuse_open(s->s_fe, 1, x->wnode, O_WRONLY, &x->wfh)))
		bn_die("open wfile", r);
	/* read the whole file once so both daemons serve it from the page cache */
	x->size = 1u << 20;
	x->seq = 0;
	bn_measure(s->s_fe, 4, BN_BIG >> 20, 1e9, bn_prep_read_seq, x, x->size, VUFE_SPLIT_PAGES,
		   NULL);
}

/* One turn of one row on one side: its rate in the row's unit. */
static double bn_turn(enum bn_row row, struct bn_side *s, struct bn_ctx *x, double secs)
{
	uint64_t ops;
	double v;
	int r;

	switch (row) {
	case BN_LOOKUP: {
		double t = 0;
		unsigned passes = 0;

		x->done = bn_lookup_done;
		do {
			v = bn_measure(s->s_fe, 16, BN_FILES, 1e9, bn_prep_lookup, x, 256, 0, &ops);
			if (ops != BN_FILES)
				bn_die("lookup count", (int)ops);
			t += BN_FILES / v;
			passes++;
			bn_forget_all(s->s_fe, x);
		} while (t < secs);
		x->done = NULL;
		return passes * BN_FILES / t;
	}
	case BN_GETATTR1:
	case BN_GETATTR16:
		return bn_measure(s->s_fe, row == BN_GETATTR1 ? 1 : 16, UINT64_MAX, secs,
				  bn_prep_getattr, x, 256, 0, NULL);
	case BN_READ4K:
	case BN_READ1M: {
		struct bn_ctx rd = *x;
		rd.done = bn_count_read;
		rd.count_bytes = true;
		if (row == BN_READ4K) {
			rd.size = 4096;
			v = bn_measure(s->s_fe, 16, UINT64_MAX, secs, bn_prep_read_rand, &rd, 4096,
				       0, NULL);
		} else {
			rd.size = 1u << 20;
			v = bn_measure(s->s_fe, 4, UINT64_MAX, secs, bn_prep_read_seq, &rd, rd.size,
				       VUFE_SPLIT_PAGES, NULL);
		}
		x->rnd = rd.rnd;
		x->seq = rd.seq;
		return v;
	}
	case BN_WRITE4K:
	case BN_WRITE1M: {
		struct bn_ctx w = *x;
		w.nodeid = x->wnode;
		w.fh = x->wfh;
		w.size = row == BN_WRITE4K ? 4096 : 1u << 20;
		w.seq = 0;
		w.done = bn_count_write;
		w.count_bytes = true;
		v = bn_measure(s->s_fe, row == BN_WRITE4K ? 16 : 4, UINT64_MAX, secs,
			       row == BN_WRITE4K ? bn_prep_write_rand : bn_prep_write_seq, &w, 256,
			       BN_DATA_PAGES, NULL);
		x->rnd = w.rnd;
		return v;
	}
	case BN_CREATE:
		bn_create_dir(s->s_fe, x);
		v = bn_files_row(s->s_fe, x, &bn_create_stages, BN_FILES, 1e9);
		if ((r = vufe_fuse_forget(s->s_fe, 0, x->cdir, 1)))
			bn_die("FORGET", r);
		return v;
	case BN_SMALLREAD:
		return bn_files_row(s->s_fe, x, &bn_smallread_stages, ~0u, secs);
	case BN_READDIRPLUS:
		return bn_readdirplus_row(s->s_fe, x, secs);
	case BN_NROWS:
		break;
	}
	bn_die("unknown row", -EINVAL);
	return 0;
}

/*
 * One run: both daemons up at once, fresh, and for each row they take
 * turns, A B B A (A = bulkhead in even runs), each turn half the row's
 * time. This machine's speed swings by 2-4x within seconds (other guests on
 * the host, and ext4 without a journal scanning recently deleted inodes on
 * every create); turns a second apart see the same weather where daemons
 * started a minute apart do not. Each side's value is the mean of its turns;
 * bn_pair the run's ratio. A LOOKUP turn forgets what it looked up, so the
 * next one finds the names unknown again.
 */
static double bn_pair[BN_NROWS][BN_MAX_RUNS];
/* Per row and side, over every turn: CPU seconds of the daemon's processes
 * (hx_tree_cpu) and the units done meanwhile (rate x the turn's wall time,
 * so untimed parts of a turn, a LOOKUP turn's FORGETs, count as cost). */
static double bn_cpu[BN_NROWS][2], bn_amount[BN_NROWS][2];

/* CPU milliseconds per MiB (MiB/s rows) or per thousand units. */
static double bn_cpu_per(int row, int side)
{
	double per = bn_amount[row][side];

	if (strcmp(bn_rows[row].unit, "MiB/s") != 0)
		per /= 1000.0;
	return per > 0 ? bn_cpu[row][side] * 1000.0 / per : 0.0;
}

static void bn_run(int run, const char *share)
{
	static uint64_t nodes[2][BN_FILES];
	struct bn_side side[2];
	struct bn_ctx x[2];

	for (int w = 0; w < 2; w++) {
		struct fuse_entry_out e;
		int r;
		bn_side_up(&side[w], w, run == 0, share);
		x[w] = (struct bn_ctx){
		    .rnd = 12345u + (uint32_t)run, .nodes = nodes[w], .share = side[w].s_share};
		if ((r = vufe_fuse_lookup(side[w].s_fe, 1, 1, "many", &e)))
			bn_die("lookup many", r);
		x[w].many = e.nodeid;
		if ((r = vufe_fuse_lookup(side[w].s_fe, 1, 1, "cdirs", &e)))
			bn_die("lookup cdirs", r);
		x[w].cdirs = e.nodeid;
		if ((r = vufe_fuse_lookup(side[w].s_fe, 1, 1, "dir3k", &e)))
			bn_die("lookup dir3k", r);
		x[w].dir3k = e.nodeid;
	}
	for (int w = 0; w < 2; w++)
		bn_side_files(&side[w], &x[w]);
	for (int i = 0; i < BN_NROWS; i++) {
		if (!(bn_want & (1u << i)))
			continue;
		for (int t = 0; t < 4; t++) {
			int w = ((t + 1) / 2 + run) % 2;
			double cpu = hx_tree_cpu(side[w].s_d.hd_pid);
			uint64_t t0 = bh_now_ns();
			double v = bn_turn((enum bn_row)i, &side[w], &x[w], bn_seconds / 2);

			bn_val[i][w][run] += v / 2;
			bn_amount[i][w] += v * (double)(bh_now_ns() - t0) / 1e9;
			bn_cpu[i][w] += hx_tree_cpu(side[w].s_d.hd_pid) - cpu;
			if (bn_turns)
				printf("turn %s %s %.6f-%.6f\n", bn_rows[i].name, bn_names[w],
				       (double)t0 / 1e9, (double)bh_now_ns() / 1e9);
		}
	}
	for (int w = 0; w < 2; w++)
		bn_side_down(&side[w], w);
	printf("run %d", run + 1);
	for (int i = 0; i < BN_NROWS; i++) {
		if (!(bn_want & (1u << i)))
			continue;
		bn_pair[i][run] = bn_val[i][1][run] > 0 ? bn_val[i][0][run] / bn_val[i][1][run] : 0;
		printf(" %s=%.0f/%.0f", bn_rows[i].name, bn_val[i][0][run], bn_val[i][1][run]);
	}
	printf("\n");
	fflush(stdout);
}

/* GETATTR on nq request queues at once, BN_SCALE_DEPTH in flight on each,
 * driven from this one thread: wait on every call eventfd, then drain. */
static double bn_scale_measure(struct vufe *fe, unsigned nq, uint64_t nodeid)
{
	struct vufe_call *calls[4][BN_SCALE_DEPTH];
	struct pollfd pfd[4];
	struct bn_ctx x = {.nodeid = nodeid};
	uint64_t start = bh_now_ns(), deadline = start + (uint64_t)(bn_seconds * 1e9);
	uint64_t inflight = 0, completed = 0;
	int r;

	for (unsigned q = 0; q < nq; q++) {
		pfd[q] = (struct pollfd){.fd = vufe_call_fd(fe, 1 + q), .events = POLLIN};
		for (int i = 0; i < BN_SCALE_DEPTH; i++) {
			if (!(calls[q][i] = vufe_call_new(fe, 64, 256)))
				bn_die("allocate guest buffers", -ENOMEM);
			if ((r = bn_prep_getattr(fe, calls[q][i], 0, &x)) ||
			    (r = vufe_call_submit(fe, 1 + q, calls[q][i], 0)))
				bn_die("submit", r);
			inflight++;
		}
	}
	while (inflight > 0) {
		bool more = bh_now_ns() < deadline;
		if (poll(pfd, nq, VUFE_TIMEOUT_MS) <= 0)
			bn_die("wait for a completion", -ETIMEDOUT);
		for (unsigned q = 0; q < nq; q++) {
			struct vufe_call *c;
			uint64_t v;
			if (pfd[q].revents & POLLIN)
				(void)!read(pfd[q].fd, &v, sizeof(v));
			while (vufe_call_wait_any(fe, 1 + q, 0, &c) == 0 && c) {
				if ((r = vufe_call_result(c)))
					bn_die("GETATTR", r);
				completed++;
				inflight--;
				if (!more)
					continue;
				if ((r = bn_prep_getattr(fe, c, 0, &x)) ||
				    (r = vufe_call_submit(fe, 1 + q, c, 0)))
					bn_die("resubmit", r);
				inflight++;
			}
		}
	}
	for (unsigned q = 0; q < nq; q++)
		for (int i = 0; i < BN_SCALE_DEPTH; i++)
			vufe_call_free(fe, calls[q][i]);
	return (double)completed / ((double)(bh_now_ns() - start) / 1e9);
}

/* The scaling row, one run: a fresh bulkheadd per queue count. */
static void bn_scale_run(int run, const char *share)
{
	printf("run %d %-9s", run + 1, "scale");
	for (int k = 0; k < BN_SCALE_N; k++) {
		unsigned nq = bn_scale_queues[k];
		struct hx_daemon d;
		struct vufe_opts o;
		struct vufe *fe;
		struct fuse_init_out io;
		struct fuse_entry_out e;
		int r;

		char served[256];
		int mem_fd;

		if ((r = bn_start_bulkhead(&d, share, served, sizeof(served), &mem_fd)))
			bn_die("start bulkheadd", r);
		vufe_opts_default(&o);
		o.mem_size = 64u << 20;
		o.queue_size = BN_QSIZE;
		o.nqueues = 1 + nq;
		if (!(fe = vufe_new(&o)))
			bn_die("vufe_new", -ENOMEM);
		if ((r = vufe_connect(fe, d.hd_sock, 5000)) || (r = vufe_up(fe)) ||
		    (r = vufe_fuse_init(fe, 1, &io)))
			bn_die("start with several queues", r);
		if ((r = vufe_fuse_lookup(fe, 1, 1, "big", &e)))
			bn_die("lookup big", r);
		bn_scale[k][run] = bn_scale_measure(fe, nq, e.nodeid);
		vufe_free(fe);
		if (mem_fd >= 0)
			close(mem_fd);
		if ((r = hx_stop(&d, 5000)) != 0)
			fprintf(stderr, "bench: bulkheadd exited with status %d\n", r);
		hx_cleanup(&d);
		printf(" q%u=%.0f", nq, bn_scale[k][run]);
	}
	printf("\n");
	fflush(stdout);
}

static int bn_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void bn_stats(const double *v, double *med, double *min, double *max)
{
	double s[BN_MAX_RUNS];

	memcpy(s, v, sizeof(double) * (size_t)bn_runs);
	qsort(s, (size_t)bn_runs, sizeof(double), bn_cmp);
	*min = s[0];
	*max = s[bn_runs - 1];
	*med = bn_runs % 2 ? s[bn_runs / 2] : (s[bn_runs / 2 - 1] + s[bn_runs / 2]) / 2;
}

static int bn_make_share(const char *dir)
{
	char p[512];
	unsigned char *buf;
	int fd, flags, r = 0;

	char small[BN_PAGE];

	memset(small, 's', sizeof(small));
	snprintf(p, sizeof(p), "%s/many", dir);
	if (mkdir(p, 0755))
		return -errno;
	for (int i = 0; i < BN_FILES; i++) {
		snprintf(p, sizeof(p), "%s/many/f%05d", dir, i);
		if ((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
			return -errno;
		r = bh_write_full(fd, small, sizeof(small));
		close(fd);
		if (r)
			return r;
	}
	snprintf(p, sizeof(p), "%s/dir3k", dir);
	if (mkdir(p, 0755))
		return -errno;
	for (int i = 0; i < BN_DIR3K; i++) {
		snprintf(p, sizeof(p), "%s/dir3k/entry-%04d", dir, i);
		if ((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
			return -errno;
		close(fd);
	}
	snprintf(p, sizeof(p), "%s/cdirs", dir);
	if (mkdir(p, 0755))
		return -errno;
	if ((fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	/* ext4's Orlov allocator spreads this one's subdirectories over block
	 * groups (see bn_create_dir); other file systems refuse the flag */
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
		flags |= FS_TOPDIR_FL;
		(void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	close(fd);
	snprintf(p, sizeof(p), "%s/big", dir);
	if ((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
		return -errno;
	if (!(buf = malloc(BN_BIG))) {
		close(fd);
		return -ENOMEM;
	}
	hx_big_content(buf, BN_BIG);
	r = bh_write_full(fd, buf, BN_BIG);
	close(fd);
	/* the write rows overwrite blocks that already exist */
	snprintf(p, sizeof(p), "%s/wfile", dir);
	if (!r && (fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
		r = -errno;
	if (!r) {
		r = bh_write_full(fd, buf, BN_BIG);
		if (!r && fsync(fd))
			r = -errno;
		close(fd);
	}
	free(buf);
	return r;
}

/* "--rows=getattr_qd16,read4k_qd16": time only those rows. */
static int bn_parse_rows(const char *list)
{
	char buf[256], *save = NULL;

	if (strlen(list) >= sizeof(buf))
		return -1;
	strcpy(buf, list);
	bn_want = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned bit = 0;
		for (int i = 0; i < BN_NROWS; i++)
			if (strcmp(t, bn_rows[i].name) == 0)
				bit = 1u << i;
		if (strcmp(t, "getattr_scale") == 0)
			bit = BN_SCALE_BIT;
		if (!bit) {
			fprintf(stderr, "bench: unknown row \"%s\"\n", t);
			return -1;
		}
		bn_want |= bit;
	}
	return bn_want ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"runs", required_argument, NULL, 'r'},
	    {"seconds", required_argument, NULL, 's'},
	    {"bulkhead-arg", required_argument, NULL, 'a'},
	    {"rows", required_argument, NULL, 'w'},
	    {"backend", required_argument, NULL, 'b'},
	    {"turns", no_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	char share[256];
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'r')
			bn_runs = atoi(optarg);
		else if (c == 's')
			bn_seconds = atof(optarg);
		else if (c == 'a' && bn_nargs < BN_MAX_ARGS)
			bn_bulkhead_args[bn_nargs++] = optarg;
		else if (c == 'w' && bn_parse_rows(optarg) == 0)
			;
		else if (c == 't')
			bn_turns = true;
		else if (c == 'b' &&
			 (strcmp(optarg, "memory") == 0 || strcmp(optarg, "passthrough") == 0))
			bn_memory = strcmp(optarg, "memory") == 0;
		else
			return 2;
	}
	if (bn_runs < 1 || bn_runs > BN_MAX_RUNS || bn_seconds <= 0) {
		fprintf(stderr,
			"usage: bench [--runs=1..%d] [--seconds=S] [--rows=ROW,...] "
			"[--backend=passthrough|memory] [--turns] [--bulkhead-arg=OPT]...\n",
			BN_MAX_RUNS);
		return 2;
	}
	if (access(HX_VIRTIOFSD, X_OK)) {
		fprintf(stderr, "bench: %s is missing (Debian package qemu-system-common)\n",
			HX_VIRTIOFSD);
		return 1;
	}
	/* --backend=memory: the peer's share on tmpfs, as bulkhead's is */
	if (bn_memory) {
		snprintf(share, sizeof(share), "/dev/shm/bh-bench-XXXXXX");
		r = mkdtemp(share) ? 0 : -errno;
	} else {
		r = hx_mkdtemp(share, sizeof(share), "bench");
	}
	if (r || (r = bn_make_share(share)))
		bn_die("create the share", r);
	printf("bench: %s (%d files of 4 KiB, a %d-entry directory, a %u MiB file), queue size "
	       "%d, hiprio + 1 request queue, %d runs, %.1f s per timed row\n",
	       bn_memory ? "bulkhead's share in memory, virtiofsd's" : "share", BN_FILES, BN_DIR3K,
	       BN_BIG >> 20, BN_QSIZE, bn_runs, bn_seconds);
	printf("bench: %s\n", share);
	printf("bench: bulkhead = %s/daemon/bulkheadd", BH_BUILD_DIR);
	for (int i = 0; i < bn_nargs; i++)
		printf(" %s", bn_bulkhead_args[i]);
	if (bn_memory)
		printf(" --memory-size=%llu", (unsigned long long)BN_MEMORY_BYTES);
	printf(", peer = %s -o cache=auto\n", HX_VIRTIOFSD);
	for (int i = 0; i < BN_NROWS; i++)
		if (bn_want & (1u << i))
			printf("bench: %-13s %s (%s)\n", bn_rows[i].name, bn_rows[i].what,
			       bn_rows[i].unit);
	if (bn_want & BN_SCALE_BIT)
		printf("bench: %-13s GETATTR, %d in flight on each of 1, 2, 4 request queues, "
		       "bulkhead only (ops/s)\n",
		       "getattr_scale", BN_SCALE_DEPTH);
	fflush(stdout);
	for (int run = 0; run < bn_runs; run++) {
		if (bn_want & (BN_SCALE_BIT - 1))
			bn_run(run, share);
		if (bn_want & BN_SCALE_BIT)
			bn_scale_run(run, share);
	}
	for (int i = 0; i < BN_NROWS; i++) {
		double bm, bl, bh, pm, pl, ph, ratio, rl, rh;
		if (!(bn_want & (1u << i)))
			continue;
		bn_stats(bn_val[i][0], &bm, &bl, &bh);
		bn_stats(bn_val[i][1], &pm, &pl, &ph);
		bn_stats(bn_pair[i], &ratio, &rl, &rh);
		printf("BENCH %s bulkhead=%.0f peer=%.0f unit=%s ratio=%.2f (bulkhead %.0f-%.0f, "
		       "peer %.0f-%.0f, run ratios %.2f-%.2f) cpu bulkhead=%.3f peer=%.3f %s%s\n",
		       bn_rows[i].name, bm, pm, bn_rows[i].unit, ratio, bl, bh, pl, ph, rl, rh,
		       bn_cpu_per(i, 0), bn_cpu_per(i, 1),
		       strcmp(bn_rows[i].unit, "MiB/s") ? "ms/1k" : "ms/MiB",
		       bn_cpu_per(i, 0) > bn_cpu_per(i, 1) ? " (bulkhead uses more CPU)" : "");
	}
	if (bn_want & BN_SCALE_BIT) {
		double m[BN_SCALE_N], lo[BN_SCALE_N], hi[BN_SCALE_N];
		for (int k = 0; k < BN_SCALE_N; k++)
			bn_stats(bn_scale[k], &m[k], &lo[k], &hi[k]);
		printf("BENCH getattr_scale bulkhead_q1=%.0f q2=%.0f q4=%.0f unit=ops/s "
		       "q2/q1=%.2f q4/q1=%.2f (q1 %.0f-%.0f, q2 %.0f-%.0f, q4 %.0f-%.0f)\n",
		       m[0], m[1], m[2], m[0] > 0 ? m[1] / m[0] : 0.0, m[0] > 0 ? m[2] / m[0] : 0.0,
		       lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]);
	}
	hx_rmtree(share);
	return 0;
}
