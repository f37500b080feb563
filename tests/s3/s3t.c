/*
 * s3t.c - the S3 back-end tests' fixture (s3t.h).
 * Runs in: S3 test programs only, as root.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fops.h"
#include "itest.h"
#include "s3_xml.h"
#include "s3t.h"

char s3t_bucket[64], s3t_conf[PATH_MAX], s3t_tmp[256];
static char s3t_creds[PATH_MAX];
struct gw_loop s3t_l;
const char *s3t_secret;

void s3t_req(struct s3_req *r, const char *method, const char *key)
{
	memset(r, 0, sizeof(*r));
	r->method = method;
	r->key = key;
}

long s3t_put(const char *key, const void *data, size_t len)
{
	struct s3_req r;

	s3t_req(&r, "PUT", key);
	r.body = data;
	r.body_len = len;
	gw_run(&s3t_l, &r, 1);
	s3_req_reset(&r);
	return r.status;
}

/* GET key into a malloc'ed buffer (*len): the status. */
long s3t_get(const char *key, char **out, size_t *len)
{
	struct s3_req r;

	s3t_req(&r, "GET", key);
	r.reply_max = 64u << 20;
	gw_run(&s3t_l, &r, 1);
	*out = r.reply;
	*len = r.reply_len;
	return r.status;
}

long s3t_head(const char *key, struct s3_req *r)
{
	s3t_req(r, "HEAD", key);
	gw_run(&s3t_l, r, 1);
	return r->status;
}

static int s3t_count(const struct s3_entry *e, void *arg)
{
	(void)e;
	(*(unsigned *)arg)++;
	return 0;
}

/* Keys under prefix (no delimiter), and open multipart uploads. */
unsigned s3t_keys(const char *prefix)
{
	struct s3_list_result res;
	unsigned n = 0;
	struct s3_req r;

	s3t_req(&r, "GET", "");
	r.query[r.nquery++] = (struct s3_pair){"list-type", "2"};
	r.query[r.nquery++] = (struct s3_pair){"prefix", prefix};
	r.query[r.nquery++] = (struct s3_pair){"encoding-type", "url"};
	gw_run(&s3t_l, &r, 1);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(s3_parse_list(r.reply, r.reply_len, s3t_count, &n, &res), 0);
	s3_req_reset(&r);
	return n;
}

unsigned s3t_uploads(void)
{
	struct s3_req r;
	unsigned n = 0;
	const char *p;

	s3t_req(&r, "GET", "");
	r.query[r.nquery++] = (struct s3_pair){"uploads", ""};
	gw_run(&s3t_l, &r, 1);
	cr_assert_eq(r.status, 200);
	for (p = r.reply; p && (p = strstr(p, "<UploadId>")); p++)
		n++;
	s3_req_reset(&r);
	return n;
}

/* ---- a daemon on a bucket of the test's own ---- */

void s3t_write_creds(const char *secret)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	/* whole or not at all, as an operator's editor would leave it */
	snprintf(tmp, sizeof(tmp), "%s.new", s3t_creds);
	cr_assert_not_null(f = fopen(tmp, "w"));
	fprintf(f, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", gw_key,
		secret);
	fclose(f);
	cr_assert_eq(chmod(tmp, 0600), 0);
	cr_assert_eq(rename(tmp, s3t_creds), 0);
}

void s3t_start_at(const char *endpoint, const char *extra_conf)
{
	const char *args[] = {NULL, getenv("BH_TEST_S3_ARG"), NULL};
	char arg[PATH_MAX + 16];
	struct s3_req r;
	FILE *f;

	snprintf(s3t_bucket, sizeof(s3t_bucket), "bh-fs-%d", (int)getpid());
	cr_assert_not_null(s3t_l.base = event_base_new());
	s3t_l.client = gw_client(&s3t_l, s3t_bucket, gw_secret);
	s3t_req(&r, "PUT", "");
	gw_run(&s3t_l, &r, 1);
	cr_assert_eq(r.status, 200, "create bucket %s: %ld", s3t_bucket, r.status);
	s3_req_reset(&r);

	cr_assert_eq(hx_mkdtemp(s3t_tmp, sizeof(s3t_tmp), "s3conf"), 0);
	snprintf(s3t_creds, sizeof(s3t_creds), "%s/credentials", s3t_tmp);
	s3t_write_creds(s3t_secret ? s3t_secret : gw_secret);
	snprintf(s3t_conf, sizeof(s3t_conf), "%s/bulkhead.conf", s3t_tmp);
	cr_assert_not_null(f = fopen(s3t_conf, "w"));
	/* the example of bulkhead.conf(5), as written, unless told otherwise */
	fprintf(f,
		"[share]\nbackend = s3\n\n[s3]\nendpoint = %s\nbucket = %s\nprefix = vm1/\n"
		"region = us-east-1\n%scredentials_file = %s\npart_size = 5M\n%s",
		endpoint ? endpoint : gw_endpoint, s3t_bucket,
		extra_conf && strstr(extra_conf, "addressing") ? "" : "addressing = path\n",
		s3t_creds, extra_conf ? extra_conf : "");
	fclose(f);
	snprintf(arg, sizeof(arg), "--config=%s", s3t_conf);
	args[0] = arg;
	cr_assert_eq(hx_start_bulkheadd(&it_d, NULL, args), 0, "bulkheadd did not start");
	it_connect_init(2);
}

void s3t_fini(void)
{
	if (getenv("BH_TEST_S3_LOG") && it_d.hd_pid > 0)
		hx_log_dump(&it_d); /* for a developer */
	it_teardown();
	if (s3t_l.client)
		s3_client_free(s3t_l.client);
	if (s3t_l.base)
		event_base_free(s3t_l.base);
	if (s3t_tmp[0])
		hx_rmtree(s3t_tmp);
}

/* ---- FUSE helpers ---- */

uint64_t s3t_lookup(uint64_t parent, const char *name, struct fuse_entry_out *e)
{
	struct fuse_entry_out tmp;
	int r = vufe_fuse_lookup(it_fe, T_Q, parent, name, e ? e : &tmp);

	cr_assert_eq(r, 0, "LOOKUP %s: %d", name, r);
	return (e ? e : &tmp)->nodeid;
}

void s3t_write(uint64_t node, uint64_t fh, uint64_t off, const void *buf, uint32_t len)
{
	uint32_t written = 0;
	int r = vufe_fuse_write(it_fe, T_Q, node, fh, off, buf, len, 0, &written);

	cr_assert_eq(r, 0, "WRITE at %llu: %d", (unsigned long long)off, r);
	cr_assert_eq(written, len);
}

size_t s3t_read(uint64_t node, uint64_t fh, uint64_t off, void *buf, uint32_t len)
{
	uint32_t got = 0;
	int r = vufe_fuse_read(it_fe, T_Q, node, fh, off, len, buf, &got, 0);

	cr_assert_eq(r, 0, "READ at %llu: %d", (unsigned long long)off, r);
	return got;
}

void s3t_pattern(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)((i * 131 + seed * 7 + (i >> 12)) & 0xff);
}


void s3t_round_trip(const char *name, const char *text)
{
	size_t n = strlen(text), len;
	struct fuse_entry_out e;
	char key[300], *body, *buf = malloc(n + 16);
	uint64_t fh;

	cr_assert_not_null(buf);
	snprintf(key, sizeof(key), "vm1/%s", name);
	cr_assert_eq(f_create(FUSE_CREATE, 1, name, O_RDWR, 0644, &e, &fh), 0);
	s3t_write(e.nodeid, fh, 0, text, (uint32_t)n);
	cr_assert_eq(vufe_fuse_flush(it_fe, T_Q, e.nodeid, fh), 0);
	cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	cr_assert_eq(s3t_get(key, &body, &len), 200);
	cr_assert_eq(len, n);
	cr_assert_eq(memcmp(body, text, n), 0);
	free(body);
	s3t_lookup(1, name, &e);
	cr_assert_eq(vufe_fuse_open(it_fe, T_Q, e.nodeid, O_RDONLY, &fh), 0);
	cr_assert_eq(s3t_read(e.nodeid, fh, 0, buf, (uint32_t)n + 16), n);
	cr_assert_eq(memcmp(buf, text, n), 0);
	cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	free(buf);
}
