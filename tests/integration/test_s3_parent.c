/*
 * test_s3_parent.c - the parent's side of the S3 back end, with neither a
 * front end nor a gateway: the build tree's bulkheadd started with the
 * example of bulkhead.conf(5), which keys it takes, what it leaves in its
 * own environment, and SIGHUP. No line of its log ever holds a key.
 * Runs in: integration test program only.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define FILE_SECRET  "fileSECRETwJalrXUtnFEMI/K7MDENG"
#define FILE_SECRET2 "secondSECRETbPxRfiCYEXAMPLEKEY"
#define ENV_SECRET   "envSECRETdoNotLogMe+/="
#define FILE_KEY_ID  "AKIDFILEEXAMPLE"
#define ENV_KEY_ID   "AKIDENVEXAMPLE"

static char s3_dir[256];
static char s3_conf[320], s3_creds[320];
static struct hx_daemon s3_d;

static void s3_setup(void)
{
	cr_assert_eq(hx_mkdtemp(s3_dir, sizeof(s3_dir), "s3-parent"), 0);
	snprintf(s3_conf, sizeof(s3_conf), "%s/bulkhead.conf", s3_dir);
	snprintf(s3_creds, sizeof(s3_creds), "%s/s3.credentials", s3_dir);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
}

static void s3_teardown(void)
{
	if (s3_d.hd_pid > 0 && !s3_d.hd_reaped)
		hx_stop(&s3_d, 5000);
	hx_cleanup(&s3_d);
	hx_rmtree(s3_dir);
}

TestSuite(s3parent, .init = s3_setup, .fini = s3_teardown, .timeout = 30);

static void s3_write(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s", path);
	cr_assert_geq(fputs(text, f), 0);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, mode), 0);
}

static void s3_write_creds(const char *secret)
{
	char text[256];

	snprintf(text, sizeof(text),
		 "[default]\naws_access_key_id = " FILE_KEY_ID "\naws_secret_access_key = %s\n",
		 secret);
	s3_write(s3_creds, text, 0600);
}

/* The example, its credentials file here (or none), staging here too. */
static void s3_write_conf(bool with_file)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "[share]\nbackend = s3\n\n[s3]\nendpoint = http://127.0.0.1:7480\n"
		 "bucket = data\nprefix = vm1/\nregion = us-east-1\naddressing = path\n"
		 "staging_dir = %s\n%s%s%s",
		 s3_dir, with_file ? "credentials_file = " : "", with_file ? s3_creds : "",
		 with_file ? "\n" : "");
	s3_write(s3_conf, text, 0644);
}

static void s3_start(void)
{
	char arg[400];
	const char *extra[] = {arg, NULL};

	snprintf(arg, sizeof(arg), "--config=%s", s3_conf);
	cr_assert_eq(hx_start_bulkheadd(&s3_d, NULL, extra), 0);
}

static bool s3_wait_log(const char *s)
{
	for (int i = 0; i < 250; i++) {
		if (hx_log_contains(&s3_d, s))
			return true;
		usleep(20000);
	}
	return false;
}

/* Does /proc/PID/environ, a process's first environment, hold s? */
static bool s3_environ_holds(pid_t pid, const char *s)
{
	char path[64], buf[65536];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s", path);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_geq(n, 0);
	return memmem(buf, (size_t)n, s, strlen(s)) != NULL;
}

static void s3_expect_no_key_logged(void)
{
	static const char *const keys[] = {FILE_SECRET, FILE_SECRET2, ENV_SECRET, FILE_KEY_ID,
					   ENV_KEY_ID};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		cr_expect(!hx_log_contains(&s3_d, keys[i]), "the log holds %s", keys[i]);
}

Test(s3parent, the_file_wins_sighup_rereads_it_and_no_key_is_logged)
{
	char want[600];

	setenv("AWS_ACCESS_KEY_ID", ENV_KEY_ID, 1);
	setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET, 1);
	s3_write_creds(FILE_SECRET);
	s3_write_conf(true);
	s3_start();
	cr_assert(s3_wait_log("serving bucket data, prefix vm1/ at http://127.0.0.1:7480"));
	snprintf(want, sizeof(want), "S3 credentials from %s, profile [default] (the file wins",
		 s3_creds);
	cr_expect(hx_log_contains(&s3_d, want), "no '%s'", want);
	cr_expect(!s3_environ_holds(s3_d.hd_pid, ENV_SECRET),
		  "the secret is still in /proc/PID/environ");

	s3_write_creds(FILE_SECRET2);
	cr_assert_eq(kill(s3_d.hd_pid, SIGHUP), 0);
	cr_expect(s3_wait_log("SIGHUP: S3 credentials read again from"));
	cr_assert_eq(chmod(s3_creds, 0644), 0);
	cr_assert_eq(kill(s3_d.hd_pid, SIGHUP), 0);
	cr_expect(s3_wait_log("other users may read it (mode 0644)"));
	cr_expect(s3_wait_log("keeping the S3 credentials read before"));
	cr_expect(hx_alive(&s3_d));

	cr_expect_eq(hx_stop(&s3_d, 5000), 0);
	s3_expect_no_key_logged();
}

Test(s3parent, without_a_file_the_environments_keys_are_taken_and_wiped)
{
	setenv("AWS_ACCESS_KEY_ID", ENV_KEY_ID, 1);
	setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET, 1);
	s3_write_conf(false);
	s3_start();
	cr_assert(s3_wait_log("serving bucket data"));
	cr_expect(hx_log_contains(&s3_d, "S3 credentials from the environment "
					 "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"));
	cr_expect(!s3_environ_holds(s3_d.hd_pid, ENV_SECRET),
		  "the secret is still in /proc/PID/environ");
	cr_expect(!s3_environ_holds(s3_d.hd_pid, ENV_KEY_ID));
	cr_assert_eq(kill(s3_d.hd_pid, SIGHUP), 0);
	cr_expect(s3_wait_log("came from the environment, which is read at start-up only"));
	cr_expect_eq(hx_stop(&s3_d, 5000), 0);
	s3_expect_no_key_logged();
}

Test(s3parent, no_keys_at_all_stop_start_up_naming_both_ways)
{
	char conf[400], out[8192];
	char *argv[] = {(char *)BH_BUILD_DIR "/daemon/bulkheadd", conf,
			(char *)"--socket-path=/nonexistent/s3.sock", NULL};

	s3_write_conf(false);
	snprintf(conf, sizeof(conf), "--config=%s", s3_conf);
	cr_expect_eq(hx_run_capture(argv, NULL, NULL, out, sizeof(out)), 1, "%s", out);
	cr_expect(strstr(out, "credentials_file = FILE in [s3]") &&
		      strstr(out, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
		  "%s", out);
}

Test(s3parent, a_bad_credentials_file_stops_start_up_with_its_line)
{
	char conf[400], out[8192], want[400];
	char *argv[] = {(char *)BH_BUILD_DIR "/daemon/bulkheadd", conf,
			(char *)"--socket-path=/nonexistent/s3.sock", NULL};

	s3_write(s3_creds, "[default]\naws_secret_access_key " FILE_SECRET "\n", 0600);
	s3_write_conf(true);
	snprintf(conf, sizeof(conf), "--config=%s", s3_conf);
	cr_expect_eq(hx_run_capture(argv, NULL, NULL, out, sizeof(out)), 1, "%s", out);
	snprintf(want, sizeof(want), "%s:2: a line that is not 'key = value'", s3_creds);
	cr_expect(strstr(out, want), "%s", out);
	cr_expect(!strstr(out, FILE_SECRET), "%s", out);
}
