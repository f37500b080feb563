/*
 * gw.c - the S3 tests' gateway: the one-node Ceph cluster of
 * tests/s3/ceph-cluster.sh, its address and keys, and a client of it on a
 * loop of the test's own (the back end's HTTP client, which
 * test_s3_gateway.c checks against the gateway).
 * Runs in: S3 test programs only, as root.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"

char gw_dir[64] = "/tmp/bh-ceph-XXXXXX";
char gw_endpoint[300], gw_key[300], gw_secret[300], gw_ca[300];
static char gw_script[4096];

/* The env file the script wrote in dir: 0, or -1 when it is missing. */
static int gw_read_env(const char *dir)
{
	char line[256];
	FILE *f;

	if (dir != gw_dir)
		snprintf(gw_dir, sizeof(gw_dir), "%s", dir);
	snprintf(line, sizeof(line), "%s/env", dir);
	if (!(f = fopen(line, "r")))
		return -1;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "S3_ENDPOINT=", 12))
			snprintf(gw_endpoint, sizeof(gw_endpoint), "%s", line + 12);
		else if (!strncmp(line, "S3_ACCESS_KEY=", 14))
			snprintf(gw_key, sizeof(gw_key), "%s", line + 14);
		else if (!strncmp(line, "S3_SECRET_KEY=", 14))
			snprintf(gw_secret, sizeof(gw_secret), "%s", line + 14);
		else if (!strncmp(line, "S3_CA=", 6))
			snprintf(gw_ca, sizeof(gw_ca), "%s", line + 6);
	}
	fclose(f);
	return gw_endpoint[0] && gw_key[0] && gw_secret[0] ? 0 : -1;
}

void gw_load_env(const char *dir)
{
	cr_assert_eq(gw_read_env(dir), 0, "no complete %s/env", dir);
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The cluster, BH_CEPH_TLS=tls for the script. */
static void gw_start_cluster(int tls)
{
	char cmd[8192];

	snprintf(gw_script, sizeof(gw_script), "%s/tests/s3/ceph-cluster.sh", BH_SRC_DIR);
	cr_assert_not_null(mkdtemp(gw_dir));
	snprintf(cmd, sizeof(cmd), "BH_CEPH_TLS=%d '%s' start '%s'", tls, gw_script, gw_dir);
	if (system(cmd) != 0 || gw_read_env(gw_dir) < 0) {
		gw_stop(); /* what did start: the test's end will not */
		cr_assert_fail("the Ceph cluster did not start (%s)", cmd);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void gw_start(void)
{
	gw_start_cluster(0);
}

void gw_start_tls(void)
{
	gw_start_cluster(1);
}

void gw_stop(void)
{
	char cmd[8192];

	snprintf(gw_script, sizeof(gw_script), "%s/tests/s3/ceph-cluster.sh", BH_SRC_DIR);
	snprintf(cmd, sizeof(cmd), "'%s' stop '%s' >/dev/null 2>&1", gw_script, gw_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "stopping the Ceph cluster in %s failed\n", gw_dir);
}

void gw_done(struct s3_req *r)
{
	struct gw_loop *l = r->arg;

	if (--l->pending == 0)
		event_base_loopbreak(l->base);
}

/* Submit n requests at once and run the loop until all are done. */
void gw_run(struct gw_loop *l, struct s3_req *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		r[i].done = gw_done;
		r[i].arg = l;
		if (!r[i].reply_max)
			r[i].reply_max = 1 << 20;
		cr_assert_eq(s3_submit(l->client, &r[i]), 0, "submit %u", i);
		l->pending++;
	}
	if (s3_inflight(l->client) > l->max_inflight)
		l->max_inflight = s3_inflight(l->client);
	cr_assert_eq(event_base_dispatch(l->base), 0);
	cr_assert_eq(l->pending, 0, "%u requests never ended", l->pending);
	cr_assert_eq(s3_inflight(l->client), 0);
}

/* A client of bucket on l's loop, signing with secret. */
struct s3_client *gw_client(struct gw_loop *l, const char *bucket, const char *secret)
{
	struct s3_client_conf conf = {.endpoint = gw_endpoint,
				      .bucket = bucket,
				      .region = "us-east-1",
				      .access_key = gw_key,
				      .secret_key = secret,
				      .ca_file = gw_ca[0] ? gw_ca : NULL};
	struct s3_client *c;
	char err[256];

	cr_assert_not_null(c = s3_client_new(l->base, &conf, err, sizeof(err)), "%s", err);
	return c;
}

void gw_expect(const struct s3_req *r, long want, const char *what)
{
	cr_expect_eq(r->status, want, "%s: HTTP %ld (err %d), wanted %ld: %s", what, r->status,
		     r->err, want, r->reply ? r->reply : "");
}

pid_t gw_proxy(int fails, int *port)
{
	char script[4200], up[300], n[16], line[32];
	int fd[2];
	pid_t pid;
	FILE *f;

	snprintf(script, sizeof(script), "%s/tests/s3/fault-proxy.py", BH_SRC_DIR);
	snprintf(up, sizeof(up), "%s", gw_endpoint + strlen("http://"));
	snprintf(n, sizeof(n), "%d", fails);
	cr_assert_eq(pipe(fd), 0);
	cr_assert_geq(pid = fork(), 0);
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execlp("python3", "python3", script, up, n, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	cr_assert_not_null(f = fdopen(fd[0], "r"));
	cr_assert_not_null(fgets(line, sizeof(line), f), "the fault proxy did not start");
	fclose(f);
	*port = atoi(line);
	cr_assert_gt(*port, 0);
	return pid;
}

double gw_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
