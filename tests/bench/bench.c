/*
 * bench.c - `make bench`: bulkheadd against QEMU's virtiofsd through the
 * same userspace front end (vufe), same share, same queue geometry
 * (hiprio + one request queue of 1024 entries). Each run starts each daemon
 * afresh (alternating which goes first), so nothing is cached in a session
 * across runs; rows report the median of the runs with min-max.
 * Runs in: the bench process; the daemons are children.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

enum bn_row { BN_GETATTR1, BN_GETATTR16, BN_LOOKUP, BN_READ4K, BN_READ1M, BN_NROWS };

static const struct {
	const char *name, *unit, *what;
} bn_rows[BN_NROWS] = {
    [BN_GETATTR1] = {"getattr_qd1", "ops/s", "GETATTR round trips, 1 in flight"},
    [BN_GETATTR16] = {"getattr_qd16", "ops/s", "GETATTR, 16 in flight"},
    [BN_LOOKUP] = {"lookup_10k", "names/s", "LOOKUP of 10,000 names, 16 in flight, fresh INIT"},
    [BN_READ4K] = {"read4k_qd16", "IOPS", "4 KiB random READ, 16 in flight, cached file"},
    [BN_READ1M] = {"read1m_qd4", "MiB/s",
		   "1 MiB sequential READ in 4 KiB descriptors, 4 in flight"},
};

static int bn_runs = 5;
/* The harness logs at debug for the tests; a benchmark logs like production.
 * --bulkhead-arg adds options (e.g. --thread-pool-size=N) for tuning runs. */
#define BN_MAX_ARGS 8
static const char *bn_bulkhead_args[BN_MAX_ARGS + 2] = {"--log-level=info", NULL};
static int bn_nargs = 1;
static double bn_seconds = 2.0;
static double bn_val[BN_NROWS][2][BN_MAX_RUNS];

struct bn_ctx {
	uint64_t nodeid;
	uint64_t fh;
	uint64_t many; /* node id of the directory with BN_FILES files */
	uint32_t size;
	uint32_t rnd;
	uint64_t seq;
};

typedef int (*bn_prep_fn)(struct vufe *, struct vufe_call *, uint64_t, struct bn_ctx *);

static void bn_die(const char *what, int r)
{
	fprintf(stderr, "bench: %s failed (%d)\n", what, r);
	exit(1);
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
		    (r = vufe_call_submit(fe, 1, calls[i], flags | VUFE_NO_KICK)))
			bn_die("submit", r);
	}
	vufe_kick(fe, 1);
	while (completed < submitted) {
		struct vufe_call *c = NULL;
		if ((r = vufe_call_wait_any(fe, 1, VUFE_TIMEOUT_MS, &c)) || !c)
			bn_die("wait for a completion", r);
		if ((r = vufe_call_result(c)))
			bn_die("request", r);
		completed++;
		if (submitted < max_ops && bh_now_ns() < deadline) {
			if ((r = prep(fe, c, submitted++, ctx)) ||
			    (r = vufe_call_submit(fe, 1, c, flags)))
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

static double bn_measure(struct vufe *fe, int depth, uint64_t max_ops, double seconds,
			 bn_prep_fn prep, struct bn_ctx *x, size_t out_cap, int flags,
			 uint64_t *ops_out)
{
	struct vufe_call *calls[BN_MAX_DEPTH];
	uint64_t ops;
	double secs;

	for (int i = 0; i < depth; i++)
		if (!(calls[i] = vufe_call_new(fe, 64, out_cap)))
			bn_die("allocate guest buffers", -ENOMEM);
	ops = bn_pipeline(fe, calls, depth, max_ops, seconds, prep, x, flags, &secs);
	for (int i = 0; i < depth; i++)
		vufe_call_free(fe, calls[i]);
	if (ops_out)
		*ops_out = ops;
	return (double)ops / secs;
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

/* One run against one daemon: every row once. */
static void bn_run(int which, int run, const char *share)
{
	static const char *names[2] = {"bulkhead", "peer"};
	struct hx_daemon d;
	struct vufe_opts o;
	struct vufe *fe;
	struct fuse_init_out io;
	struct fuse_entry_out e;
	struct bn_ctx x = {.rnd = 12345u + (uint32_t)run};
	uint64_t ops;
	int r;

	r = which == 0 ? hx_start_bulkheadd(&d, share, bn_bulkhead_args) : hx_start_virtiofsd(&d, share);
	if (r)
		bn_die(which == 0 ? "start bulkheadd" : "start virtiofsd", r);
	vufe_opts_default(&o);
	o.mem_size = 256u << 20;
	o.queue_size = BN_QSIZE;
	o.nqueues = 2;
	if (!(fe = vufe_new(&o)))
		bn_die("vufe_new", -ENOMEM);
	if ((r = vufe_connect(fe, d.hd_sock, 5000)) || (r = vufe_negotiate(fe)))
		bn_die("negotiate", r);
	/* hiprio + one request queue for both; the peer counts its queues */
	if (vufe_queue_num(fe) && vufe_queue_num(fe) < 2)
		bn_die("GET_QUEUE_NUM below 2", (int)vufe_queue_num(fe));
	if ((r = vufe_start(fe, 1)) || (r = vufe_fuse_init(fe, 1, &io)))
		bn_die("start", r);
	if (run == 0)
		bn_print_session(names[which], fe, &io);

	if ((r = vufe_fuse_lookup(fe, 1, 1, "many", &e)))
		bn_die("lookup many", r);
	x.many = e.nodeid;
	bn_val[BN_LOOKUP][which][run] =
	    bn_measure(fe, 16, BN_FILES, 1e9, bn_prep_lookup, &x, 256, 0, &ops);
	if (ops != BN_FILES)
		bn_die("lookup count", (int)ops);

	if ((r = vufe_fuse_lookup(fe, 1, 1, "big", &e)))
		bn_die("lookup big", r);
	x.nodeid = e.nodeid;
	bn_val[BN_GETATTR1][which][run] =
	    bn_measure(fe, 1, UINT64_MAX, bn_seconds, bn_prep_getattr, &x, 256, 0, NULL);
	bn_val[BN_GETATTR16][which][run] =
	    bn_measure(fe, 16, UINT64_MAX, bn_seconds, bn_prep_getattr, &x, 256, 0, NULL);

	if ((r = vufe_fuse_open(fe, 1, x.nodeid, O_RDONLY, &x.fh)))
		bn_die("open big", r);
	/* read the whole file once so both daemons serve it from the page cache */
	x.size = 1u << 20;
	x.seq = 0;
	bn_measure(fe, 4, BN_BIG >> 20, 1e9, bn_prep_read_seq, &x, x.size, VUFE_SPLIT_PAGES, NULL);
	x.size = 4096;
	bn_val[BN_READ4K][which][run] =
	    bn_measure(fe, 16, UINT64_MAX, bn_seconds, bn_prep_read_rand, &x, 4096, 0, NULL);
	x.size = 1u << 20;
	bn_val[BN_READ1M][which][run] = bn_measure(fe, 4, UINT64_MAX, bn_seconds, bn_prep_read_seq,
						   &x, x.size, VUFE_SPLIT_PAGES, NULL);

	vufe_free(fe);
	r = hx_stop(&d, 5000);
	if (which == 0 && r != 0)
		fprintf(stderr, "bench: bulkheadd exited with status %d\n", r);
	hx_cleanup(&d);
	printf("run %d %-9s", run + 1, names[which]);
	for (int i = 0; i < BN_NROWS; i++)
		printf(" %s=%.0f", bn_rows[i].name, bn_val[i][which][run]);
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
	int fd, r = 0;

	snprintf(p, sizeof(p), "%s/many", dir);
	if (mkdir(p, 0755))
		return -errno;
	for (int i = 0; i < BN_FILES; i++) {
		snprintf(p, sizeof(p), "%s/many/f%05d", dir, i);
		if ((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
			return -errno;
		r = bh_write_full(fd, "small file\n", 11);
		close(fd);
		if (r)
			return r;
	}
	snprintf(p, sizeof(p), "%s/big", dir);
	if ((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
		return -errno;
	if (!(buf = malloc(BN_BIG))) {
		close(fd);
		return -ENOMEM;
	}
	hx_big_content(buf, BN_BIG);
	r = bh_write_full(fd, buf, BN_BIG);
	free(buf);
	close(fd);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"runs", required_argument, NULL, 'r'},
	    {"seconds", required_argument, NULL, 's'},
	    {"bulkhead-arg", required_argument, NULL, 'a'},
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
		else
			return 2;
	}
	if (bn_runs < 1 || bn_runs > BN_MAX_RUNS || bn_seconds <= 0) {
		fprintf(stderr, "usage: bench [--runs=1..%d] [--seconds=S] [--bulkhead-arg=OPT]...\n",
			BN_MAX_RUNS);
		return 2;
	}
	if (access(HX_VIRTIOFSD, X_OK)) {
		fprintf(stderr, "bench: %s is missing (Debian package qemu-system-common)\n",
			HX_VIRTIOFSD);
		return 1;
	}
	if ((r = hx_mkdtemp(share, sizeof(share), "bench")) || (r = bn_make_share(share)))
		bn_die("create the share", r);
	printf("bench: share %s (%d small files, %u MiB file), queue size %d, hiprio + 1 request "
	       "queue, %d runs, %.1f s per timed row\n",
	       share, BN_FILES, BN_BIG >> 20, BN_QSIZE, bn_runs, bn_seconds);
	printf("bench: bulkhead = %s/daemon/bulkheadd", BH_BUILD_DIR);
	for (int i = 0; i < bn_nargs; i++)
		printf(" %s", bn_bulkhead_args[i]);
	printf(", peer = %s -o cache=auto\n", HX_VIRTIOFSD);
	for (int i = 0; i < BN_NROWS; i++)
		printf("bench: %-13s %s (%s)\n", bn_rows[i].name, bn_rows[i].what, bn_rows[i].unit);
	fflush(stdout);
	for (int run = 0; run < bn_runs; run++) {
		/* alternate who goes first so drift hits both sides alike */
		int first = run % 2;
		bn_run(first, run, share);
		bn_run(!first, run, share);
	}
	for (int i = 0; i < BN_NROWS; i++) {
		double bm, bl, bh, pm, pl, ph;
		bn_stats(bn_val[i][0], &bm, &bl, &bh);
		bn_stats(bn_val[i][1], &pm, &pl, &ph);
		printf("BENCH %s bulkhead=%.0f peer=%.0f unit=%s ratio=%.2f (bulkhead %.0f-%.0f, "
		       "peer %.0f-%.0f)\n",
		       bn_rows[i].name, bm, pm, bn_rows[i].unit, pm > 0 ? bm / pm : 0.0, bl, bh, pl,
		       ph);
	}
	hx_rmtree(share);
	return 0;
}
