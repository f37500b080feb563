/*
 * bench_s3.c - `make bench-s3` (root): the S3 back end against a direct
 * client of the same gateway, in the same run. A one-node Ceph cluster
 * (tests/s3/ceph-cluster.sh) is started for the run; the real bulkheadd
 * serves its bucket to the test front end, and the direct side is the back
 * end's own HTTP client on a loop of ours, doing what a good S3 client does
 * for the same job:
 *   write   256 MiB in order: a multipart upload of 8 MiB parts, 4 at once,
 *           vs CREATE, 1 MiB WRITEs and the closing FLUSH
 *   read    256 MiB in order: one ranged GET of the whole object, vs
 *           OPEN and 256 KiB READs (the back end's read-ahead)
 *   list    5,000 keys: ListObjectsV2 pages, vs OPENDIR and READDIR
 *   rand4k  4 KiB reads at random offsets of a 32 MiB object the daemon
 *           has cached: IOPS (the direct side: ranged GETs of 4 KiB)
 * One line per row, medians of --runs (default 3): "BENCH-S3 row bulkhead
 * X unit direct Y unit ratio Z" (ratio > 1: bulkhead is faster).
 * Runs in: the benchmark process, as root; not a test.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "s3_http.h"
#include "s3_xml.h"
#include "util.h"
#include "vufe.h"

#define BS_BIG	     (256u << 20)
#define BS_PART	     (8u << 20)
#define BS_AHEAD     4
#define BS_READ	     (256u << 10)
#define BS_WRITE     (1u << 20)
#define BS_KEYS	     5000
#define BS_RAND	     (32u << 20)
#define BS_RAND_SECS 2.0
#define BS_MAX_RUNS  9
#define BS_Q	     1

enum { BS_WRITE_ROW, BS_READ_ROW, BS_LIST_ROW, BS_RAND_ROW, BS_NROWS };
static const struct {
	const char *name, *unit;
} bs_rows[BS_NROWS] = {{"write", "MiB/s"}, {"read", "MiB/s"}, {"list", "entries/s"},
		       {"rand4k", "IOPS"}};

static char bs_dir[64] = "/tmp/bh-bench-s3-XXXXXX", bs_endpoint[300], bs_key[300],
	    bs_secret[300];
static struct event_base *bs_base;
static struct s3_client *bs_cl;
static unsigned bs_pending;
static struct vufe *bs_fe;
static struct hx_daemon bs_d;
static double bs_val[BS_NROWS][2][BS_MAX_RUNS];

static void bs_die(const char *what, long r)
{
	fprintf(stderr, "bench-s3: %s failed (%ld)\n", what, r);
	hx_stop(&bs_d, 5000);
	exit(1);
}

static double bs_now(void)
{
	return (double)bh_now_ns() / 1e9;
}

/* ---- the direct client ---- */

static void bs_done(struct s3_req *r)
{
	(void)r;
	if (--bs_pending == 0)
		event_base_loopbreak(bs_base);
}

static void bs_send(struct s3_req *r)
{
	int err;

	r->done = bs_done;
	if (!r->reply_max)
		r->reply_max = 1 << 20;
	if ((err = s3_submit(bs_cl, r)) < 0)
		bs_die("submit", err);
	bs_pending++;
}

/* Until every request sent has ended; each must have had status want. */
static void bs_wait(struct s3_req *r, unsigned n, long want)
{
	if (bs_pending)
		event_base_dispatch(bs_base);
	for (unsigned i = 0; i < n; i++)
		if (r[i].status != want)
			bs_die(r[i].method, r[i].status ? r[i].status : r[i].err);
}

static void bs_req(struct s3_req *r, const char *method, const char *key)
{
	s3_req_reset(r);
	memset(r, 0, sizeof(*r));
	r->method = method;
	r->key = key;
}

/* A multipart upload of data (len bytes) to key, BS_AHEAD parts at once. */
static void bs_direct_put(const char *key, const char *data, size_t len)
{
	static struct s3_req r[BS_AHEAD + 1];
	static char num[BS_AHEAD][16], id[512];
	unsigned parts = (unsigned)((len + BS_PART - 1) / BS_PART);
	char **etags = calloc(parts, sizeof(*etags)), *body;

	bs_req(&r[0], "POST", key);
	r[0].query[r[0].nquery++] = (struct s3_pair){"uploads", ""};
	bs_send(&r[0]);
	bs_wait(r, 1, 200);
	if (s3_parse_upload_id(r[0].reply, r[0].reply_len, id, sizeof(id)) < 0)
		bs_die("upload id", 0);
	for (unsigned p = 0; p < parts; p += BS_AHEAD) {
		unsigned k = 0;

		for (; k < BS_AHEAD && p + k < parts; k++) {
			size_t off = (size_t)(p + k) * BS_PART;

			bs_req(&r[k], "PUT", key);
			snprintf(num[k], sizeof(num[k]), "%u", p + k + 1);
			r[k].query[r[k].nquery++] = (struct s3_pair){"partNumber", num[k]};
			r[k].query[r[k].nquery++] = (struct s3_pair){"uploadId", id};
			r[k].body = data + off;
			r[k].body_len = len - off < BS_PART ? len - off : BS_PART;
			bs_send(&r[k]);
		}
		bs_wait(r, k, 200);
		for (unsigned j = 0; j < k; j++)
			etags[p + j] = strdup(r[j].etag);
	}
	body = s3_complete_body((const char *const *)etags, parts);
	bs_req(&r[0], "POST", key);
	r[0].query[r[0].nquery++] = (struct s3_pair){"uploadId", id};
	r[0].body = body;
	r[0].body_len = strlen(body);
	bs_send(&r[0]);
	bs_wait(r, 1, 200);
	for (unsigned p = 0; p < parts; p++)
		free(etags[p]);
	free(etags);
	free(body);
}

/* ---- the daemon and its front end ---- */

static void bs_start_daemon(void)
{
	char conf[PATH_MAX], creds[PATH_MAX], arg[PATH_MAX + 16];
	const char *args[] = {arg, "--log-level=warn", NULL};
	struct vufe_opts o;
	struct fuse_init_out io;
	FILE *f;
	int r;

	snprintf(creds, sizeof(creds), "%s/credentials", bs_dir);
	snprintf(conf, sizeof(conf), "%s/bulkhead.conf", bs_dir);
	if (!(f = fopen(creds, "w")))
		bs_die("credentials file", errno);
	fprintf(f, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", bs_key,
		bs_secret);
	fclose(f);
	chmod(creds, 0600);
	if (!(f = fopen(conf, "w")))
		bs_die("configuration file", errno);
	fprintf(f,
		"[share]\nbackend = s3\n\n[s3]\nendpoint = %s\nbucket = bench\nprefix = vm1/\n"
		"credentials_file = %s\npart_size = 8M\nreadahead = 8M\ncache_size = 64M\n",
		bs_endpoint, creds);
	fclose(f);
	snprintf(arg, sizeof(arg), "--config=%s", conf);
	if ((r = hx_start_bulkheadd(&bs_d, NULL, args)))
		bs_die("start bulkheadd", r);
	vufe_opts_default(&o);
	o.nqueues = 2;
	if (!(bs_fe = vufe_new(&o)))
		bs_die("vufe_new", ENOMEM);
	if ((r = vufe_connect(bs_fe, bs_d.hd_sock, 5000)) || (r = vufe_up(bs_fe)) ||
	    (r = vufe_fuse_init(bs_fe, BS_Q, &io)))
		bs_die("front end", r);
}

static uint64_t bs_lookup(uint64_t parent, const char *name)
{
	struct fuse_entry_out e;
	int r;

	if ((r = vufe_fuse_lookup(bs_fe, BS_Q, parent, name, &e)))
		bs_die("LOOKUP", r);
	return e.nodeid;
}

/* ---- the rows ---- */

static void bs_write_row(int run, const char *data)
{
	struct fuse_create_in ci = {.flags = O_WRONLY, .mode = S_IFREG | 0644};
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out;
	char name[32], key[64];
	uint32_t len = 0, written;
	double t0;
	int r;

	snprintf(name, sizeof(name), "w%d.bin", run);
	t0 = bs_now();
	if ((r = vufe_fuse(bs_fe, BS_Q, FUSE_CREATE, 1, &ci, sizeof(ci), name, strlen(name) + 1,
			   &out, sizeof(out), &len, 0)))
		bs_die("CREATE", r);
	for (size_t off = 0; off < BS_BIG; off += BS_WRITE)
		if ((r = vufe_fuse_write(bs_fe, BS_Q, out.e.nodeid, out.o.fh, off, data + off,
					 BS_WRITE, 0, &written)))
			bs_die("WRITE", r);
	if ((r = vufe_fuse_flush(bs_fe, BS_Q, out.e.nodeid, out.o.fh)))
		bs_die("FLUSH", r);
	bs_val[BS_WRITE_ROW][0][run] = (BS_BIG >> 20) / (bs_now() - t0);
	vufe_fuse_release(bs_fe, BS_Q, FUSE_RELEASE, out.e.nodeid, out.o.fh);
	snprintf(key, sizeof(key), "direct/w%d.bin", run);
	t0 = bs_now();
	bs_direct_put(key, data, BS_BIG);
	bs_val[BS_WRITE_ROW][1][run] = (BS_BIG >> 20) / (bs_now() - t0);
}

static void bs_read_row(int run, char *buf)
{
	static struct s3_req r;
	char name[32], key[64];
	uint64_t node, fh;
	uint32_t got;
	double t0;
	int err;

	/* the object the write row made through the share, read both ways */
	snprintf(name, sizeof(name), "w%d.bin", run);
	snprintf(key, sizeof(key), "vm1/%s", name);
	node = bs_lookup(1, name);
	t0 = bs_now();
	if ((err = vufe_fuse_open(bs_fe, BS_Q, node, O_RDONLY, &fh)))
		bs_die("OPEN", err);
	for (size_t off = 0; off < BS_BIG; off += BS_READ)
		if ((err = vufe_fuse_read(bs_fe, BS_Q, node, fh, off, BS_READ, buf + off, &got, 0)) ||
		    got != BS_READ)
			bs_die("READ", err ? err : (long)got);
	bs_val[BS_READ_ROW][0][run] = (BS_BIG >> 20) / (bs_now() - t0);
	vufe_fuse_release(bs_fe, BS_Q, FUSE_RELEASE, node, fh);
	t0 = bs_now();
	bs_req(&r, "GET", key);
	r.headers[r.nheaders++] = (struct s3_pair){"range", "bytes=0-268435455"};
	r.sink = buf;
	r.sink_cap = BS_BIG;
	bs_send(&r);
	bs_wait(&r, 1, 206);
	bs_val[BS_READ_ROW][1][run] = (BS_BIG >> 20) / (bs_now() - t0);
}

static int bs_count(const struct s3_entry *e, void *arg)
{
	(void)e;
	(*(unsigned *)arg)++;
	return 0;
}

static void bs_list_row(int run)
{
	static char buf[64 << 10];
	static struct s3_req r;
	struct s3_list_result res;
	char token[S3_XML_VALUE_MAX] = "";
	unsigned n = 0;
	uint64_t dir = bs_lookup(1, "many"), fh, off = 0;
	uint32_t got;
	double t0 = bs_now();
	int err;

	if ((err = vufe_fuse_opendir(bs_fe, BS_Q, dir, &fh)))
		bs_die("OPENDIR", err);
	do {
		if ((err = vufe_fuse_readdir(bs_fe, BS_Q, FUSE_READDIR, dir, fh, off, sizeof(buf),
					     buf, &got)))
			bs_die("READDIR", err);
		for (size_t o = 0; o < got; n++) {
			const struct fuse_dirent *de = (const void *)(buf + o);

			off = de->off;
			o += FUSE_DIRENT_SIZE(de);
		}
	} while (got > 0);
	bs_val[BS_LIST_ROW][0][run] = (n - 2) / (bs_now() - t0);
	vufe_fuse_release(bs_fe, BS_Q, FUSE_RELEASEDIR, dir, fh);
	if (n - 2 != BS_KEYS)
		bs_die("listing through the share", n);
	t0 = bs_now();
	n = 0;
	do {
		bs_req(&r, "GET", "");
		r.reply_max = 8 << 20;
		r.query[r.nquery++] = (struct s3_pair){"list-type", "2"};
		r.query[r.nquery++] = (struct s3_pair){"prefix", "vm1/many/"};
		r.query[r.nquery++] = (struct s3_pair){"delimiter", "/"};
		r.query[r.nquery++] = (struct s3_pair){"encoding-type", "url"};
		if (token[0])
			r.query[r.nquery++] = (struct s3_pair){"continuation-token", token};
		bs_send(&r);
		bs_wait(&r, 1, 200);
		if (s3_parse_list(r.reply, r.reply_len, bs_count, &n, &res) < 0)
			bs_die("listing", 0);
		snprintf(token, sizeof(token), "%s", res.truncated ? res.next_token : "");
	} while (token[0]);
	bs_val[BS_LIST_ROW][1][run] = n / (bs_now() - t0);
}

static void bs_rand_row(int run, char *buf)
{
	static struct s3_req r;
	char range[64];
	uint64_t node = bs_lookup(1, "rand.bin"), fh, ops = 0;
	uint32_t got;
	double t0;
	int err;

	if ((err = vufe_fuse_open(bs_fe, BS_Q, node, O_RDONLY, &fh)))
		bs_die("OPEN", err);
	for (size_t off = 0; off < BS_RAND; off += BS_READ) /* into the cache */
		if ((err = vufe_fuse_read(bs_fe, BS_Q, node, fh, off, BS_READ, buf, &got, 0)))
			bs_die("READ", err);
	srandom((unsigned)run);
	t0 = bs_now();
	for (; bs_now() - t0 < BS_RAND_SECS; ops++)
		if ((err = vufe_fuse_read(bs_fe, BS_Q, node, fh,
					  (uint64_t)(random() % (BS_RAND / 4096)) * 4096, 4096, buf,
					  &got, 0)) ||
		    got != 4096)
			bs_die("READ 4k", err);
	bs_val[BS_RAND_ROW][0][run] = ops / (bs_now() - t0);
	vufe_fuse_release(bs_fe, BS_Q, FUSE_RELEASE, node, fh);
	t0 = bs_now();
	for (ops = 0; bs_now() - t0 < BS_RAND_SECS; ops++) {
		uint64_t off = (uint64_t)(random() % (BS_RAND / 4096)) * 4096;

		bs_req(&r, "GET", "vm1/rand.bin");
		snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off,
			 (unsigned long long)off + 4095);
		r.headers[r.nheaders++] = (struct s3_pair){"range", range};
		bs_send(&r);
		bs_wait(&r, 1, 206);
	}
	bs_val[BS_RAND_ROW][1][run] = ops / (bs_now() - t0);
}

/* ---- set-up and report ---- */

static void bs_seed(const char *data)
{
	static struct s3_req r[128];
	static char key[128][40];

	bs_req(&r[0], "PUT", "");
	bs_send(&r[0]);
	bs_wait(r, 1, 200);
	for (unsigned i = 0, k; i < BS_KEYS; i += k) {
		for (k = 0; k < 128 && i + k < BS_KEYS; k++) {
			snprintf(key[k], sizeof(key[k]), "vm1/many/k%05u", i + k);
			bs_req(&r[k], "PUT", key[k]);
			r[k].body = "";
			bs_send(&r[k]);
		}
		bs_wait(r, k, 200);
	}
	bs_direct_put("vm1/rand.bin", data, BS_RAND);
}

static int bs_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double bs_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bs_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void bs_cluster(const char *what)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "'%s/tests/s3/ceph-cluster.sh' %s '%s'%s", BH_SRC_DIR, what,
		 bs_dir, strcmp(what, "stop") == 0 ? " >/dev/null 2>&1" : "");
	if (system(cmd) != 0 && strcmp(what, "stop") != 0)
		bs_die(cmd, 0);
}

int main(int argc, char **argv)
{
	struct s3_client_conf cc = {.bucket = "bench", .region = "us-east-1"};
	char line[256], err[256], *data, *buf;
	int runs = 3;
	FILE *f;

	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--runs=", 7) == 0)
			runs = atoi(argv[i] + 7);
		else {
			fprintf(stderr, "usage: bench-s3 [--runs=N]  (1 to %d, default 3)\n",
				BS_MAX_RUNS);
			return 2;
		}
	}
	if (runs < 1 || runs > BS_MAX_RUNS)
		runs = 3;
	if (!(data = malloc(BS_BIG)) || !(buf = malloc(BS_BIG)))
		bs_die("malloc", ENOMEM);
	for (size_t i = 0; i < BS_BIG; i++)
		data[i] = (char)(i * 7 + (i >> 13));
	if (!mkdtemp(bs_dir))
		bs_die("mkdtemp", errno);
	rmdir(bs_dir); /* the script makes it */
	bs_cluster("start");
	snprintf(line, sizeof(line), "%s/env", bs_dir);
	if (!(f = fopen(line, "r")))
		bs_die("the cluster's env", errno);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "S3_ENDPOINT=", 12))
			snprintf(bs_endpoint, sizeof(bs_endpoint), "%s", line + 12);
		else if (!strncmp(line, "S3_ACCESS_KEY=", 14))
			snprintf(bs_key, sizeof(bs_key), "%s", line + 14);
		else if (!strncmp(line, "S3_SECRET_KEY=", 14))
			snprintf(bs_secret, sizeof(bs_secret), "%s", line + 14);
	}
	fclose(f);
	cc.endpoint = bs_endpoint;
	cc.access_key = bs_key;
	cc.secret_key = bs_secret;
	if (!(bs_base = event_base_new()) || !(bs_cl = s3_client_new(bs_base, &cc, err, sizeof(err))))
		bs_die(err, 0);
	bs_seed(data);
	bs_start_daemon();
	for (int run = 0; run < runs; run++) {
		bs_write_row(run, data);
		bs_read_row(run, buf);
		if (memcmp(buf, data, BS_BIG) != 0)
			bs_die("the object read back differs", run);
		bs_list_row(run);
		bs_rand_row(run, buf);
	}
	for (int row = 0; row < BS_NROWS; row++) {
		double b = bs_median(bs_val[row][0], runs), d = bs_median(bs_val[row][1], runs);

		printf("BENCH-S3 %-7s bulkhead %10.1f %-9s direct %10.1f %-9s ratio %.2f\n",
		       bs_rows[row].name, b, bs_rows[row].unit, d, bs_rows[row].unit, b / d);
	}
	vufe_free(bs_fe);
	if (hx_stop(&bs_d, 5000) != 0)
		bs_die("bulkheadd's exit", 0);
	s3_client_free(bs_cl);
	bs_cluster("stop");
	return 0;
}
