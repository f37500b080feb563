/*
 * test_compat.c - bulkheadd started as libvirt and Kata start virtiofsd:
 * the socket made by the caller and inherited (--fd), the legacy -o form
 * with libvirt's lock options and its ",," comma escape, libvirt's
 * separate options (which --print-capabilities invites), Kata's options,
 * and the options it cannot honour refused by name.
 * Runs in: the test process, as root; the real bulkheadd from the build
 * tree, served through the test front end.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"

static char c_share[PATH_MAX];

/* A seeded share whose name has a comma in it, as a path may. */
static void c_seed(void)
{
	char dir[256];

	cr_assert_eq(hx_mkdtemp(dir, sizeof(dir), "compat"), 0);
	snprintf(c_share, sizeof(c_share), "%s/sh,are", dir);
	cr_assert_eq(mkdir(c_share, 0755), 0);
	cr_assert_eq(hx_seed_share(c_share), 0);
	snprintf(it_share, sizeof(it_share), "%s", dir); /* it_teardown removes it */
}

/* Started with args and --fd: it serves the share. */
static void c_serves(const char *const *args)
{
	cr_assert_eq(hx_start_bulkheadd_fd(&it_d, args), 0, "bulkheadd did not start");
	it_connect_init(2);
	cr_assert_neq(it_lookup(it_fe, 1, "small.txt"), 0, "the share is not served");
	cr_assert(hx_log_contains(&it_d, "Waiting for vhost-user socket connection..."),
		  "no start-up line for Kata's runtime");
}

/* Is want, whole, one of the arguments in the daemon's /proc/PID/cmdline
 * (what ps shows, and what a test of libvirt reads)? */
static int c_cmdline_has(pid_t pid, const char *want)
{
	char path[64], buf[8192];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (!(f = fopen(path, "r")))
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
		if (strcmp(buf + i, want) == 0)
			return 1;
	return 0;
}

TestSuite(compat, .fini = it_teardown, .timeout = 60);

ITEST(compat, libvirt_9s_legacy_form_with_locks_and_an_escaped_comma_is_served)
{
	char source[PATH_MAX * 2 + 64], *w;

	c_seed();
	/* -o source=/…/sh,,are,cache=always,xattr,flock,posix_lock */
	w = source + snprintf(source, sizeof(source), "source=");
	for (const char *r = c_share; *r; r++) {
		*w++ = *r;
		if (*r == ',')
			*w++ = ',';
	}
	snprintf(w, sizeof(source) - (size_t)(w - source), ",cache=always,xattr,flock,posix_lock");
	{
		const char *args[] = {"-o", source, "--thread-pool-size=4", "-d", NULL};

		c_serves(args);
	}
	cr_assert(hx_log_contains(&it_d, "cache always"));
	/* parsed in a copy: the command line still reads as libvirt wrote it */
	cr_assert(c_cmdline_has(it_d.hd_pid, source), "-o %s is not in /proc/%d/cmdline", source,
		  (int)it_d.hd_pid);
}

ITEST(compat, libvirt_separate_options_are_served)
{
	c_seed();
	{
		const char *args[] = {"--shared-dir", c_share,	"--cache", "always", "--sandbox",
				      "namespace",    "--xattr", "--thread-pool-size=2",
				      "--rlimit-nofile=4096", "--log-level", "debug", NULL};

		c_serves(args);
	}
	cr_assert(hx_log_contains(&it_d, "sandbox namespace"));
}

ITEST(compat, katas_options_are_served)
{
	char shared[PATH_MAX + 16];

	c_seed();
	snprintf(shared, sizeof(shared), "--shared-dir=%s", c_share);
	{
		/* the Go runtime's, with the stock extra arguments of either
		 * kind, and the Rust runtime's -f */
		const char *args[] = {"--cache=auto",	       shared, "--thread-pool-size=1",
				      "-o",		       "announce_submounts",
				      "--announce-submounts", "-f", "--inode-file-handles=never",
				      NULL};

		c_serves(args);
	}
}

Test(compat, print_capabilities_offers_separate_options_and_no_migration)
{
	char *const argv[] = {(char *)BH_BUILD_DIR "/daemon/bulkheadd", "--print-capabilities",
			      NULL};
	char out[512];

	cr_assert_eq(hx_run_capture(argv, NULL, NULL, out, sizeof(out)), 0);
	cr_assert_not_null(strstr(out, "\"type\": \"fs\""), "%s", out);
	cr_assert_not_null(strstr(out, "\"separate-options\""), "%s", out);
	cr_assert_null(strstr(out, "migrate"), "%s", out);
}

Test(compat, options_bulkhead_cannot_honour_are_refused_by_name)
{
	static const char *const cases[][3] = {
	    {"-o", "source=/tmp,modcaps=+sys_admin", "modcaps"},
	    {"-o", "source=/tmp,xattrmap=:map::user.:", "xattrmap"},
	    {"-o", "source=/tmp,no_such_option", "no_such_option"},
	    {"--shared-dir=/tmp", "--inode-file-handles=mandatory", "inode-file-handles"},
	};
	char out[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *const argv[] = {(char *)BH_BUILD_DIR "/daemon/bulkheadd",
				      "--socket-path=/nonexistent/s", (char *)cases[i][0],
				      (char *)cases[i][1], NULL};

		cr_assert_eq(hx_run_capture(argv, NULL, NULL, out, sizeof(out)), 1, "case %zu", i);
		cr_assert_not_null(strstr(out, cases[i][2]), "case %zu: %s", i, out);
	}
}

ITEST(compat, a_pid_file_names_the_daemon_and_goes_with_it)
{
	char pidfile[PATH_MAX], arg[PATH_MAX + 16], buf[32];
	const char *args[] = {arg, NULL};
	FILE *f;

	cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "share"), 0);
	cr_assert_eq(hx_seed_share(it_share), 0);
	snprintf(pidfile, sizeof(pidfile), "%s/../bh-compat-%d.pid", it_share, (int)getpid());
	snprintf(arg, sizeof(arg), "--pid-file=%s", pidfile);
	cr_assert_eq(hx_start_bulkheadd(&it_d, it_share, args), 0);
	cr_assert_not_null(f = fopen(pidfile, "r"), "no pid file");
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_assert_eq(atoi(buf), (int)it_d.hd_pid);
	it_connect_init(2);
	it_stop_ok();
	cr_assert_neq(access(pidfile, F_OK), 0, "the pid file outlived the daemon");
}

Test(compat, exit_on_disconnect_ends_the_daemon_with_its_front_end, .fini = it_teardown)
{
	const char *args[] = {"--exit-on-disconnect", NULL};

	cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "share"), 0);
	cr_assert_eq(hx_seed_share(it_share), 0);
	cr_assert_eq(hx_start_bulkheadd(&it_d, it_share, args), 0);
	it_connect_init(2);
	cr_assert_neq(it_lookup(it_fe, 1, "small.txt"), 0);
	vufe_free(it_fe);
	it_fe = NULL;
	for (int i = 0; i < 50 && hx_alive(&it_d); i++)
		usleep(100000);
	cr_assert_eq(hx_alive(&it_d), 0, "the daemon outlived its front end");
	cr_assert_eq(hx_stop(&it_d, 1000), 0, "exit status");
	cr_assert(hx_log_contains(&it_d, "exiting (--exit-on-disconnect)"));
}

/* Its lines on standard error, run with JOURNAL_STREAM set by spec (a
 * shell expression): what it printed before exiting on a missing share. */
static void c_journal_run(const char *spec, char *out, size_t cap)
{
	char cmd[1024];
	char *const argv[] = {(char *)"/bin/sh", (char *)"-c", cmd, NULL};

	snprintf(cmd, sizeof(cmd),
		 "export JOURNAL_STREAM=%s; exec '%s/daemon/bulkheadd' "
		 "--socket-path=/nonexistent/s --shared-dir=/nonexistent/share",
		 spec, BH_BUILD_DIR);
	cr_assert_eq(hx_run_capture(argv, NULL, NULL, out, cap), 1, "%s", out);
}

Test(compat, lines_carry_their_priority_when_stderr_is_the_journal)
{
	char out[2048];

	/* systemd's way: the device and inode of the stream it connected */
	c_journal_run("$(stat -L -c %d:%i /proc/self/fd/2)", out, sizeof(out));
	cr_assert_eq(strncmp(out, "<4>bulkheadd[", 13), 0, "%s", out);
	/* an inherited variable that names another stream changes nothing */
	c_journal_run("1:1", out, sizeof(out));
	cr_assert_eq(strncmp(out, "bulkheadd[", 10), 0, "%s", out);
}
