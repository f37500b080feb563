/*
 * test_s3_gateway.c - the S3 back end's HTTP client (s3_http.c, signing
 * with sigv4.c) against a real gateway: a one-node Ceph cluster with the
 * RADOS Gateway (tests/s3/ceph-cluster.sh), started for each test and
 * stopped after. The gateway checks every signature, so each request that
 * succeeds is a signature it accepted.
 * The replies are read with the back end's XML code (s3_xml.c): the
 * listing, the new upload's id and the error body come from the real
 * gateway.
 * Runs in: the test process, as root; the cluster's daemons are children
 * of the script.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"
#include "s3_http.h"
#include "s3_xml.h"
#include "sigv4.h"

TestSuite(s3gw, .init = gw_start, .fini = gw_stop, .timeout = 180);

#define GW_N 16

static int gw_keep_first(const struct s3_entry *e, void *arg)
{
	char *out = arg;

	if (!out[0])
		snprintf(out, 512, "%s%s", e->is_prefix ? "prefix:" : "", e->key);
	return 0;
}

Test(s3gw, the_gateway_accepts_what_the_back_end_signs)
{
	static const char key[] = "vm1/a b+c/\xc3\xbc~x.txt";
	static const char content[] = "bytes the gateway keeps\n";
	struct gw_loop l = {0};
	struct s3_req r;
	char id[256], first[512], code[64], msg[256];
	struct s3_list_result res;

	cr_assert_not_null(l.base = event_base_new());
	l.client = gw_client(&l, "bulkhead-test", gw_secret);

	r = (struct s3_req){.method = "PUT", .key = ""};
	gw_run(&l, &r, 1);
	gw_expect(&r, 200, "create the bucket");
	s3_req_reset(&r);

	r = (struct s3_req){
	    .method = "PUT", .key = key, .body = content, .body_len = strlen(content)};
	gw_run(&l, &r, 1);
	gw_expect(&r, 200, "PUT of a key with a space, a '+' and UTF-8");
	s3_req_reset(&r);

	r = (struct s3_req){.method = "GET", .key = key};
	gw_run(&l, &r, 1);
	gw_expect(&r, 200, "GET of it");
	cr_expect(r.reply && strcmp(r.reply, content) == 0, "GET gave '%s'", r.reply ? r.reply : "");
	s3_req_reset(&r);

	/* a listing with a '/' and a space in a value, url-encoded keys back */
	r = (struct s3_req){.method = "GET",
			    .key = "",
			    .query = {{"list-type", "2"},
				      {"prefix", "vm1/a b+c/"},
				      {"encoding-type", "url"},
				      {"max-keys", "10"}},
			    .nquery = 4};
	gw_run(&l, &r, 1);
	gw_expect(&r, 200, "ListObjectsV2");
	cr_expect(r.reply && strstr(r.reply, "<Key>vm1%2Fa%20b%2Bc%2F%C3%BC~x.txt</Key>"),
		  "the listing does not hold the key: %s", r.reply ? r.reply : "");
	first[0] = '\0';
	cr_expect_eq(s3_parse_list(r.reply ? r.reply : "", r.reply_len, gw_keep_first, first, &res),
		     0, "s3_parse_list refused the gateway's listing: %s", r.reply ? r.reply : "");
	cr_expect_str_eq(first, key);
	cr_expect_eq(res.objects, 1);
	cr_expect_not(res.truncated);
	s3_req_reset(&r);

	/* ?uploads: a parameter without a value, as a multipart upload begins */
	r = (struct s3_req){
	    .method = "POST", .key = "vm1/big", .query = {{"uploads", ""}}, .nquery = 1};
	gw_run(&l, &r, 1);
	gw_expect(&r, 200, "CreateMultipartUpload");
	cr_assert_eq(s3_parse_upload_id(r.reply ? r.reply : "", r.reply_len, id, sizeof(id)), 0,
		     "no UploadId: %s", r.reply ? r.reply : "");
	s3_req_reset(&r);
	r = (struct s3_req){
	    .method = "DELETE", .key = "vm1/big", .query = {{"uploadId", id}}, .nquery = 1};
	gw_run(&l, &r, 1);
	gw_expect(&r, 204, "AbortMultipartUpload");
	s3_req_reset(&r);

	/* the gateway really checks: the wrong secret is refused */
	s3_client_free(l.client);
	l.client = gw_client(&l, "bulkhead-test", "not-the-secret");
	r = (struct s3_req){.method = "GET", .key = key};
	gw_run(&l, &r, 1);
	gw_expect(&r, 403, "GET signed with the wrong secret");
	cr_expect_eq(s3_parse_error(r.reply ? r.reply : "", r.reply_len, code, sizeof(code), msg,
				    sizeof(msg)),
		     0, "%s", r.reply ? r.reply : "");
	cr_expect_str_eq(code, "SignatureDoesNotMatch");
	s3_req_reset(&r);
	s3_client_free(l.client);

	l.client = gw_client(&l, "bulkhead-test", gw_secret);
	r = (struct s3_req){.method = "DELETE", .key = key};
	gw_run(&l, &r, 1);
	gw_expect(&r, 204, "DELETE of the key");
	s3_req_reset(&r);
	s3_client_free(l.client);
	event_base_free(l.base);
}

/* ---- many requests at once on one loop ---- */

static int gw_count(const struct s3_entry *e, void *arg)
{
	(*(unsigned *)arg)++;
	return 0;
}

Test(s3gw, the_http_client_keeps_many_requests_in_flight_on_one_loop)
{
	static char bodies[GW_N][64], keys[GW_N][64];
	static struct s3_req r[GW_N];
	struct gw_loop l = {0};
	struct s3_list_result res;
	char code[64], msg[128];
	unsigned listed = 0;

	cr_assert_not_null(l.base = event_base_new());
	l.client = gw_client(&l, "bulkhead-loop", gw_secret);

	memset(r, 0, sizeof(r));
	r[0] = (struct s3_req){.method = "PUT", .key = ""};
	gw_run(&l, r, 1);
	cr_expect_eq(r[0].status, 200, "create the bucket: %ld %s", r[0].status,
		     r[0].reply ? r[0].reply : "");
	s3_req_reset(&r[0]);

	for (unsigned i = 0; i < GW_N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "dir/file %02u+\xc3\xa9", i);
		snprintf(bodies[i], sizeof(bodies[i]), "content of file %u", i);
		r[i] = (struct s3_req){.method = "PUT",
				       .key = keys[i],
				       .body = bodies[i],
				       .body_len = strlen(bodies[i])};
	}
	gw_run(&l, r, GW_N);
	cr_expect_geq(l.max_inflight, GW_N, "only %u in flight at once", l.max_inflight);
	for (unsigned i = 0; i < GW_N; i++) {
		cr_expect_eq(r[i].err, 0);
		cr_expect_eq(r[i].status, 200, "PUT %u: %ld", i, r[i].status);
		cr_expect_neq(r[i].etag[0], '\0', "PUT %u: no ETag", i);
		s3_req_reset(&r[i]);
		r[i] = (struct s3_req){.method = "GET", .key = keys[i]};
	}
	gw_run(&l, r, GW_N);
	for (unsigned i = 0; i < GW_N; i++) {
		cr_expect_eq(r[i].status, 200, "GET %u: %ld", i, r[i].status);
		cr_expect(r[i].reply && strcmp(r[i].reply, bodies[i]) == 0, "GET %u gave '%s'", i,
			  r[i].reply ? r[i].reply : "");
		s3_req_reset(&r[i]);
	}

	r[0] = (struct s3_req){.method = "HEAD", .key = keys[3]};
	r[1] = (struct s3_req){
	    .method = "GET",
	    .key = "",
	    .query = {{"list-type", "2"}, {"prefix", "dir/"}, {"encoding-type", "url"}},
	    .nquery = 3};
	r[2] = (struct s3_req){
	    .method = "GET", .key = keys[5], .headers = {{"Range", "bytes=11-14"}}, .nheaders = 1};
	gw_run(&l, r, 3);
	cr_expect_eq(r[0].status, 200);
	cr_expect_eq(r[0].content_length, strlen(bodies[3]));
	cr_expect_eq(r[1].status, 200);
	cr_expect_eq(
	    s3_parse_list(r[1].reply ? r[1].reply : "", r[1].reply_len, gw_count, &listed, &res),
	    0);
	cr_expect_eq(listed, GW_N, "listed %u of %d", listed, GW_N);
	cr_expect_eq(r[2].status, 206);
	cr_expect(r[2].reply && strcmp(r[2].reply, "file") == 0, "range gave '%s'",
		  r[2].reply ? r[2].reply : "");
	for (unsigned i = 0; i < 3; i++)
		s3_req_reset(&r[i]);

	for (unsigned i = 0; i < GW_N; i++)
		r[i] = (struct s3_req){.method = "DELETE", .key = keys[i]};
	gw_run(&l, r, GW_N);
	for (unsigned i = 0; i < GW_N; i++) {
		cr_expect_eq(r[i].status, 204, "DELETE %u: %ld", i, r[i].status);
		s3_req_reset(&r[i]);
	}
	r[0] = (struct s3_req){.method = "GET", .key = keys[0]};
	gw_run(&l, r, 1);
	cr_expect_eq(r[0].status, 404);
	cr_expect_eq(s3_parse_error(r[0].reply ? r[0].reply : "", r[0].reply_len, code,
				    sizeof(code), msg, sizeof(msg)),
		     0);
	cr_expect_str_eq(code, "NoSuchKey");
	s3_req_reset(&r[0]);

	/* a reply longer than the caller allows ends the request, never the loop */
	r[0] =
	    (struct s3_req){.method = "GET", .key = "", .query = {{"list-type", "2"}}, .nquery = 1};
	r[0].done = gw_done;
	r[0].arg = &l;
	r[0].reply_max = 16;
	cr_assert_eq(s3_submit(l.client, &r[0]), 0);
	l.pending++;
	cr_assert_eq(event_base_dispatch(l.base), 0);
	cr_expect_eq(r[0].err, -EMSGSIZE, "a long reply gave %d", r[0].err);
	s3_req_reset(&r[0]);

	s3_client_free(l.client);
	event_base_free(l.base);
}

/* ---- retries: a proxy that answers 503 SlowDown, a gateway that stops ---- */

/* Start tests/s3/fault-proxy.py in front of the gateway, failing each
 * request's first fails attempts; its port into *port. */
Test(s3gw, requests_are_retried_and_a_dead_gateway_ends_them_in_bounded_time)
{
	static const char body[] = "kept despite two SlowDowns\n";
	struct s3_client_conf conf = {.bucket = "bulkhead-retry",
				      .region = "us-east-1",
				      .access_key = gw_key,
				      .secret_key = gw_secret,
				      .timeout_ms = 5000,
				      .retry_base_ms = 10,
				      .retry_max_ms = 50};
	struct gw_loop l = {0};
	struct s3_req r[2];
	char err[256], endpoint[320], code[64], msg[128], rgw[32] = "";
	int port;
	pid_t proxy = gw_proxy(2, &port);
	double t0;
	FILE *f;

	cr_assert_not_null(l.base = event_base_new());
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
	conf.endpoint = endpoint;
	conf.max_attempts = 4;
	cr_assert_not_null(l.client = s3_client_new(l.base, &conf, err, sizeof(err)), "%s", err);

	/* each request meets two 503 SlowDown, then the gateway */
	memset(r, 0, sizeof(r));
	r[0] = (struct s3_req){.method = "PUT", .key = ""};
	gw_run(&l, r, 1);
	cr_expect_eq(r[0].status, 200, "bucket: %ld", r[0].status);
	cr_expect_eq(r[0].attempts, 3);
	s3_req_reset(&r[0]);
	r[0] = (struct s3_req){.method = "PUT", .key = "k", .body = body, .body_len = strlen(body)};
	r[1] = (struct s3_req){.method = "GET", .key = "k"};
	gw_run(&l, r, 1);
	cr_expect_eq(r[0].status, 200);
	cr_expect_eq(r[0].attempts, 3, "PUT took %u attempts", r[0].attempts);
	gw_run(&l, &r[1], 1);
	cr_expect_eq(r[1].status, 200);
	cr_expect_eq(r[1].attempts, 3);
	cr_expect(r[1].reply && strcmp(r[1].reply, body) == 0, "GET gave '%s'",
		  r[1].reply ? r[1].reply : "");
	s3_req_reset(&r[0]);
	s3_req_reset(&r[1]);
	s3_client_free(l.client);

	/* fewer attempts than failures: the last answer is the caller's */
	conf.max_attempts = 2;
	cr_assert_not_null(l.client = s3_client_new(l.base, &conf, err, sizeof(err)), "%s", err);
	r[0] = (struct s3_req){.method = "GET", .key = "other"};
	gw_run(&l, r, 1);
	cr_expect_eq(r[0].status, 503);
	cr_expect_eq(r[0].attempts, 2);
	cr_expect_eq(s3_parse_error(r[0].reply ? r[0].reply : "", r[0].reply_len, code,
				    sizeof(code), msg, sizeof(msg)),
		     0);
	cr_expect_str_eq(code, "SlowDown");
	s3_req_reset(&r[0]);
	s3_client_free(l.client);
	kill(proxy, SIGKILL);
	waitpid(proxy, NULL, 0);

	/* the gateway itself stops (SIGSTOP): the request ends with a timeout
	 * after max_attempts x timeout_ms and the waits, not never */
	snprintf(endpoint, sizeof(endpoint), "%s", gw_endpoint);
	snprintf(err, sizeof(err), "%s/pids", gw_dir);
	cr_assert_not_null(f = fopen(err, "r"));
	for (int i = 0; i < 3 && fgets(rgw, sizeof(rgw), f); i++)
		; /* the third pid is the gateway's (ceph-cluster.sh) */
	fclose(f);
	cr_assert_gt(atoi(rgw), 0);
	cr_assert_eq(kill(atoi(rgw), SIGSTOP), 0);
	conf.timeout_ms = 1000; /* the retries above had room for a loaded machine */
	cr_assert_not_null(l.client = s3_client_new(l.base, &conf, err, sizeof(err)), "%s", err);
	r[0] = (struct s3_req){.method = "GET", .key = "k"};
	t0 = gw_now();
	gw_run(&l, r, 1);
	cr_expect_eq(r[0].err, -ETIMEDOUT, "a stopped gateway gave %d", r[0].err);
	cr_expect_eq(r[0].attempts, 2);
	cr_expect_lt(gw_now() - t0, 4.0, "took %.1f s for 2 attempts of 1 s", gw_now() - t0);
	s3_req_reset(&r[0]);
	cr_assert_eq(kill(atoi(rgw), SIGCONT), 0);
	/* and once it runs again, the same client is served */
	r[0] = (struct s3_req){.method = "GET", .key = "k"};
	gw_run(&l, r, 1);
	cr_expect_eq(r[0].status, 200, "after SIGCONT: %ld (err %d)", r[0].status, r[0].err);
	s3_req_reset(&r[0]);
	s3_client_free(l.client);
	event_base_free(l.base);
}

/* ---- a multipart upload as the back end will make one ---- */

#define GW_PART (5u << 20) /* the smallest part S3 takes, but the last */

Test(s3gw, a_multipart_upload_completes_whole_and_an_aborted_one_leaves_nothing)
{
	static char parts[3][GW_PART];
	static char etags[3][128];
	const char *etag_of[3] = {etags[0], etags[1], etags[2]};
	struct gw_loop l = {0};
	struct s3_req r[3];
	char id[256], code[64], num[3][4], *body;

	for (unsigned p = 0; p < 3; p++)
		for (unsigned i = 0; i < GW_PART; i++)
			parts[p][i] = (char)('a' + (p * 7 + i / 4096) % 26);
	cr_assert_not_null(l.base = event_base_new());
	l.client = gw_client(&l, "bulkhead-mpu", gw_secret);
	memset(r, 0, sizeof(r));
	r[0] = (struct s3_req){.method = "PUT", .key = ""};
	gw_run(&l, r, 1);
	cr_expect_eq(r[0].status, 200);
	s3_req_reset(&r[0]);

	r[0] = (struct s3_req){
	    .method = "POST", .key = "big", .query = {{"uploads", ""}}, .nquery = 1};
	gw_run(&l, r, 1);
	cr_assert_eq(
	    s3_parse_upload_id(r[0].reply ? r[0].reply : "", r[0].reply_len, id, sizeof(id)), 0);
	s3_req_reset(&r[0]);
	/* the three parts in flight at once */
	for (unsigned p = 0; p < 3; p++) {
		snprintf(num[p], sizeof(num[p]), "%u", p + 1);
		r[p] = (struct s3_req){.method = "PUT",
				       .key = "big",
				       .query = {{"partNumber", num[p]}, {"uploadId", id}},
				       .nquery = 2,
				       .body = parts[p],
				       .body_len = GW_PART};
	}
	gw_run(&l, r, 3);
	for (unsigned p = 0; p < 3; p++) {
		cr_expect_eq(r[p].status, 200, "part %u: %ld", p + 1, r[p].status);
		snprintf(etags[p], sizeof(etags[p]), "%s", r[p].etag);
		cr_expect_neq(etags[p][0], '\0', "part %u: no ETag", p + 1);
		s3_req_reset(&r[p]);
	}
	cr_assert_not_null(body = s3_complete_body(etag_of, 3));
	r[0] = (struct s3_req){.method = "POST",
			       .key = "big",
			       .query = {{"uploadId", id}},
			       .nquery = 1,
			       .body = body,
			       .body_len = strlen(body)};
	gw_run(&l, r, 1);
	cr_expect_eq(r[0].status, 200);
	/* the gateway's reply carries an empty ETag: a result all the same */
	cr_expect_eq(
	    s3_parse_done(r[0].reply ? r[0].reply : "", r[0].reply_len, code, sizeof(code)), 0,
	    "%s", r[0].reply ? r[0].reply : "");
	s3_req_reset(&r[0]);
	free(body);

	r[0] = (struct s3_req){.method = "HEAD", .key = "big"};
	/* across the first part's end */
	r[1] = (struct s3_req){.method = "GET",
			       .key = "big",
			       .headers = {{"Range", "bytes=5242878-5242881"}},
			       .nheaders = 1};
	gw_run(&l, r, 2);
	cr_expect_eq(r[0].content_length, 3ull * GW_PART);
	cr_expect_not_null(strstr(r[0].etag, "-3\""), "the object's ETag: %s", r[0].etag);
	cr_expect_eq(r[1].status, 206);
	cr_expect(r[1].reply_len == 4 && memcmp(r[1].reply, parts[0] + GW_PART - 2, 2) == 0 &&
		      memcmp(r[1].reply + 2, parts[1], 2) == 0,
		  "the range across parts came back wrong");
	s3_req_reset(&r[0]);
	s3_req_reset(&r[1]);

	/* an upload begun and aborted leaves no upload open and no object */
	r[0] = (struct s3_req){
	    .method = "POST", .key = "gone", .query = {{"uploads", ""}}, .nquery = 1};
	gw_run(&l, r, 1);
	cr_assert_eq(
	    s3_parse_upload_id(r[0].reply ? r[0].reply : "", r[0].reply_len, id, sizeof(id)), 0);
	s3_req_reset(&r[0]);
	r[0] = (struct s3_req){.method = "PUT",
			       .key = "gone",
			       .query = {{"partNumber", "1"}, {"uploadId", id}},
			       .nquery = 2,
			       .body = parts[2],
			       .body_len = GW_PART};
	gw_run(&l, r, 1);
	cr_expect_eq(r[0].status, 200);
	s3_req_reset(&r[0]);
	r[0] = (struct s3_req){
	    .method = "DELETE", .key = "gone", .query = {{"uploadId", id}}, .nquery = 1};
	r[1] = (struct s3_req){.method = "GET", .key = "", .query = {{"uploads", ""}}, .nquery = 1};
	gw_run(&l, r, 1);
	cr_expect_eq(r[0].status, 204);
	gw_run(&l, &r[1], 1);
	cr_expect_eq(r[1].status, 200);
	cr_expect(r[1].reply && !strstr(r[1].reply, "<Upload>"), "an upload is still open: %s",
		  r[1].reply ? r[1].reply : "");
	s3_req_reset(&r[0]);
	s3_req_reset(&r[1]);
	r[0] = (struct s3_req){.method = "HEAD", .key = "gone"};
	gw_run(&l, r, 1);
	cr_expect_eq(r[0].status, 404);
	s3_req_reset(&r[0]);

	s3_client_free(l.client);
	event_base_free(l.base);
}
