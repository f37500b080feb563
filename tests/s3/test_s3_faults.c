/*
 * test_s3_faults.c - the S3 back end when the gateway fails: killed in the
 * middle of an upload, stopped and resumed, answering 503 SlowDown, or
 * refusing the daemon's keys. Each test has a Ceph cluster of its own (it
 * kills or stops its gateway), the real bulkheadd, and the test front end.
 * Runs in: the test process, as root.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fops.h"
#include "gw.h"
#include "itest.h"
#include "s3t.h"

/* Quick failures: 2 attempts of 2 s, so a dead gateway fails a request
 * after about 2 x 2 s + the wait between them. */
#define F_CONF	     "timeout = 2\nattempts = 2\n"
#define F_BOUND_S    10.0
#define F_OLD	     "the old object\n"

static void f_fini(void)
{
	s3t_fini();
	gw_stop();
}

TestSuite(s3faults, .init = gw_start, .fini = f_fini, .timeout = 240);

/* ceph-cluster.sh's gateway commands on our cluster. */
static void f_gateway(const char *what)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "'%s/tests/s3/ceph-cluster.sh' %s '%s'", BH_SRC_DIR, what,
		 gw_dir);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* The gateway's pid (the third in the cluster's pids file). */
static pid_t f_gateway_pid(void)
{
	char path[128];
	int pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/pids", gw_dir);
	cr_assert_not_null(f = fopen(path, "r"));
	for (int i = 0; i < 3; i++)
		cr_assert_eq(fscanf(f, "%d", &pid), 1);
	fclose(f);
	return pid;
}

Test(s3faults, a_gateway_killed_mid_upload_fails_the_close_and_keeps_the_old_object)
{
	unsigned char *data = malloc(1u << 20);
	struct fuse_entry_out e;
	uint32_t written = 0;
	double t0, took;
	uint64_t fh;
	size_t len;
	char *body;
	int r;

	cr_assert_not_null(data);
	s3t_start_at(NULL, F_CONF);
	cr_assert_eq(s3t_put("vm1/f", F_OLD, strlen(F_OLD)), 200);
	s3t_lookup(1, "f", &e);
	cr_assert_eq(vufe_fuse_open(it_fe, T_Q, e.nodeid, O_WRONLY | O_TRUNC, &fh), 0);
	for (unsigned i = 0; i < 12; i++) {
		s3t_pattern(data, 1u << 20, i);
		s3t_write(e.nodeid, fh, (uint64_t)i << 20, data, 1u << 20);
	}
	for (int i = 0; i < 50 && s3t_uploads() == 0; i++)
		usleep(100000);
	cr_assert_geq(s3t_uploads(), 1u, "the upload never began");
	f_gateway("kill-gateway");
	/* the worker may learn of it now or at the flush: both are fine */
	r = vufe_fuse_write(it_fe, T_Q, e.nodeid, fh, 12u << 20, data, 1u << 20, 0, &written);
	cr_assert(r == 0 || r == -EIO, "WRITE: %d", r);
	t0 = gw_now();
	r = vufe_fuse_flush(it_fe, T_Q, e.nodeid, fh);
	took = gw_now() - t0;
	cr_assert_eq(r, -EIO, "FLUSH with the gateway dead: %d", r);
	cr_assert_lt(took, F_BOUND_S, "FLUSH took %.1f s", took);
	cr_assert_eq(vufe_fuse_release(it_fe, T_Q, FUSE_RELEASE, e.nodeid, fh), 0);
	f_gateway("start-gateway");
	cr_assert_eq(s3t_get("vm1/f", &body, &len), 200);
	cr_assert_eq(len, strlen(F_OLD));
	cr_assert_eq(memcmp(body, F_OLD, len), 0, "the old object changed");
	free(body);
	/* the abort the dead gateway missed is made again until it is taken */
	for (int i = 0; i < 150 && s3t_uploads() > 0; i++)
		usleep(100000);
	cr_assert_eq(s3t_uploads(), 0u, "a multipart upload left open");
	cr_assert(hx_log_contains(&it_d, "aborted at last"));
	free(data);
	it_stop_ok();
}

Test(s3faults, a_stopped_gateway_fails_calls_in_bounded_time_and_serves_again_resumed)
{
	struct fuse_entry_out e;
	pid_t gw;
	double t0, took;
	int r;

	s3t_start_at(NULL, F_CONF);
	cr_assert_eq(s3t_put("vm1/x", "x", 1), 200);
	gw = f_gateway_pid();
	cr_assert_eq(kill(gw, SIGSTOP), 0);
	t0 = gw_now();
	r = vufe_fuse_lookup(it_fe, T_Q, 1, "x", &e);
	took = gw_now() - t0;
	kill(gw, SIGCONT);
	cr_assert_eq(r, -EIO, "LOOKUP with the gateway stopped: %d", r);
	cr_assert_lt(took, F_BOUND_S, "LOOKUP took %.1f s", took);
	cr_assert_gt(took, 3.0, "LOOKUP gave up before its attempts (%.1f s)", took);
	s3t_lookup(1, "x", &e);
	cr_assert_eq(e.attr.size, 1);
	it_stop_ok();
}

Test(s3faults, slowdown_answers_are_retried_until_the_call_succeeds)
{
	static const char text[] = "written through SlowDowns\n";
	char endpoint[64], *body;
	size_t len;
	pid_t proxy;
	int port, st;

	proxy = gw_proxy(2, &port);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
	s3t_start_at(endpoint, "attempts = 4\n");
	s3t_round_trip("slow.txt", text);
	cr_assert_eq(f_rename(1, "slow.txt", 1, "renamed.txt", 0), 0);
	cr_assert_eq(s3t_get("vm1/renamed.txt", &body, &len), 200);
	free(body);
	kill(proxy, SIGTERM);
	waitpid(proxy, &st, 0);
	it_stop_ok();
}

Test(s3faults, wrong_keys_are_said_at_start_fail_calls_with_eacces_and_sighup_mends_them)
{
	struct fuse_entry_out e;
	double t0;

	s3t_secret = "not-the-secret";
	s3t_start_at(NULL, F_CONF);
	cr_assert(hx_wait_log(&it_d, "access denied (403)", 5000),
		  "the workers did not say the gateway refuses their keys");
	t0 = gw_now();
	cr_assert_eq(vufe_fuse_lookup(it_fe, T_Q, 1, "anything", &e), -EACCES);
	cr_assert_lt(gw_now() - t0, 2.0, "a refusal is not retried");
	cr_assert_eq(hx_log_contains(&it_d, "not-the-secret"), 0, "the secret is in the log");
	/* the operator fixes the file and says so: the running workers take the
	 * keys from their next request on */
	cr_assert_eq(s3t_put("vm1/there", "1", 1), 200);
	s3t_write_creds(gw_secret);
	cr_assert_eq(kill(it_d.hd_pid, SIGHUP), 0);
	hx_wait_log(&it_d, "q1: S3 credentials replaced", 5000);
	s3t_lookup(1, "there", &e);
	cr_assert_eq(e.attr.size, 1);
	cr_assert_eq(hx_log_contains(&it_d, gw_secret), 0, "the secret is in the log");
	it_stop_ok();
}

/* ---- TLS: a gateway that speaks HTTPS with a certificate of a test CA ---- */

TestSuite(s3tls, .init = gw_start_tls, .fini = f_fini, .timeout = 240);

Test(s3tls, a_gateway_with_a_certificate_of_the_named_ca_is_served)
{
	static const char text[] = "over TLS\n";
	char conf[400];

	cr_assert_eq(strncmp(gw_endpoint, "https://", 8), 0);
	snprintf(conf, sizeof(conf), "ca_file = %s\n", gw_ca);
	s3t_start_at(NULL, conf);
	s3t_round_trip("tls.txt", text);
	it_stop_ok();
}

Test(s3tls, certificates_are_verified_unless_told_otherwise)
{
	struct fuse_entry_out e;
	double t0;

	/* no ca_file: the system's CAs, which do not know the test CA */
	s3t_start_at(NULL, F_CONF);
	t0 = gw_now();
	cr_assert_eq(vufe_fuse_lookup(it_fe, T_Q, 1, "anything", &e), -EIO);
	cr_assert_lt(gw_now() - t0, 2.0, "a refused certificate is not retried");
	cr_assert(hx_log_contains(&it_d, "its certificate is refused"));
	it_stop_ok();
}
