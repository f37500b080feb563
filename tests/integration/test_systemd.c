/*
 * test_systemd.c - bulkheadd as its systemd units run it, and the signals
 * an operator sends: the built bulkhead@.service's command line and
 * bulkhead@.socket's socket started by systemd-socket-activate, with the
 * notify messages (READY, STATUS, WATCHDOG, STOPPING) caught on a socket
 * of the test's, front ends served one after the other; SIGHUP reading the
 * configuration, the policy files and the log file again.
 * Runs in: the test process, as root; the real bulkheadd from the build
 * tree, served through the test front end.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fops.h"
#include "itest.h"

TestSuite(systemd, .fini = it_teardown, .timeout = 60);

/* A file's whole text (asserts it is readable). */
static char *sd_slurp(const char *path)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	size_t n;

	cr_assert_not_null(f, "cannot read %s", path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void sd_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "cannot write %s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

/* The value of the first "key=" line of a unit file. */
static void sd_unit_value(const char *unit, const char *key, char *out, size_t len)
{
	char path[PATH_MAX], *text, *p;
	size_t klen = strlen(key);

	snprintf(path, sizeof(path), "%s/contrib/systemd/%s", BH_BUILD_DIR, unit);
	text = sd_slurp(path);
	for (p = text; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			snprintf(out, len, "%.*s", (int)strcspn(p + klen + 1, "\n"), p + klen + 1);
			return;
		}
	cr_assert_fail("%s has no %s=", unit, key);
}

/* Wait until the daemon's log contains s (5 s). */
static void sd_log_wait(const char *s)
{
	if (!hx_wait_log(&it_d, s, 5000)) {
		hx_log_dump(&it_d);
		cr_assert_fail("the log never said: %s", s);
	}
}

/* Our end of NOTIFY_SOCKET and everything received on it so far. */
static int sd_nfd = -1;
static char sd_msgs[64 * 1024];
static size_t sd_nmsgs;

static void sd_notify_open(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	cr_assert_lt(strlen(path), sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	cr_assert_geq(sd_nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), 0);
	cr_assert_eq(bind(sd_nfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	sd_nmsgs = 0;
	sd_msgs[0] = '\0';
}

/* Take the messages that arrive within ms; each is stored as one line
 * ("READY=1|STATUS=..." for a datagram of several assignments). */
static void sd_notify_drain(int ms)
{
	struct pollfd p = {.fd = sd_nfd, .events = POLLIN};
	char buf[1024];
	ssize_t n;

	while (poll(&p, 1, ms) == 1) {
		n = recv(sd_nfd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			break;
		buf[n] = '\0';
		for (char *c = buf; *c; c++)
			if (*c == '\n')
				*c = '|';
		if (sd_nmsgs + (size_t)n + 2 < sizeof(sd_msgs)) {
			memcpy(sd_msgs + sd_nmsgs, buf, (size_t)n);
			sd_nmsgs += (size_t)n;
			sd_msgs[sd_nmsgs++] = '\n';
			sd_msgs[sd_nmsgs] = '\0';
		}
		ms = 0;
	}
}

/* Wait (5 s) until a message containing s arrived. */
static void sd_notify_wait(const char *s)
{
	for (int i = 0; i < 50 && !strstr(sd_msgs, s); i++)
		sd_notify_drain(100);
	cr_assert_not_null(strstr(sd_msgs, s), "no notify message with '%s' among:\n%s", s,
			   sd_msgs);
}

static unsigned sd_count(const char *s)
{
	unsigned n = 0;

	for (const char *p = sd_msgs; (p = strstr(p, s)) != NULL; p += strlen(s))
		n++;
	return n;
}

/* Is word one of the space-separated words of list? */
static bool sd_has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

/* Are the space-separated words of a and b the same set? */
static bool sd_same_words(const char *a, const char *b)
{
	char buf[512], *save;

	for (int pass = 0; pass < 2; pass++) {
		snprintf(buf, sizeof(buf), "%s", pass ? b : a);
		for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
			if (!sd_has_word(pass ? a : b, w))
				return false;
	}
	return true;
}

/*
 * The unit's CapabilityBoundingSet= is exactly what the parent keeps (its
 * "capabilities kept:" line at debug), and RestrictNamespaces= exactly the
 * namespaces its workers have apart from it.
 */
static void sd_unit_matches_the_daemon(void)
{
	static const char *const all_ns[] = {"mnt", "pid", "ipc", "uts", "net", "user", "cgroup"};
	char caps[512], kept[512], nss[128], mine[64], theirs[64], *w = caps, *p;
	pid_t kids[8];
	int n;

	/* "CAP_CHOWN CAP_SETUID" as libcap-ng names them: "chown setuid" */
	sd_unit_value("bulkhead@.service", "CapabilityBoundingSet", caps, sizeof(caps));
	for (p = caps; *p; p++) {
		if (strncmp(p, "CAP_", 4) == 0 && (p == caps || p[-1] == ' '))
			p += 4;
		*w++ = (char)tolower((unsigned char)*p);
	}
	*w = '\0';
	cr_assert_not_null(p = strstr(sd_slurp(it_d.hd_log), "capabilities kept: "),
			   "no capabilities line");
	snprintf(kept, sizeof(kept), "%.*s", (int)strcspn(p + 19, "\n"), p + 19);
	cr_assert(sd_same_words(caps, kept), "the unit allows %s, the parent keeps %s", caps, kept);

	sd_unit_value("bulkhead@.service", "RestrictNamespaces", nss, sizeof(nss));
	n = hx_children(it_d.hd_pid, kids, 8);
	cr_assert_geq(n, 2, "no workers");
	for (int k = 0; k < n; k++)
		for (size_t i = 0; i < sizeof(all_ns) / sizeof(all_ns[0]); i++) {
			it_ns_link(it_d.hd_pid, all_ns[i], mine, sizeof(mine));
			it_ns_link(kids[k], all_ns[i], theirs, sizeof(theirs));
			cr_assert_eq(strcmp(mine, theirs) != 0, sd_has_word(nss, all_ns[i]),
				     "worker %d, %s namespace: %s, the unit allows: %s",
				     (int)kids[k], all_ns[i],
				     strcmp(mine, theirs) ? "its own" : "the daemon's", nss);
		}
}

Test(systemd, the_units_command_line_under_socket_activation_notifies_and_serves_front_ends_in_turn)
{
	char exec[PATH_MAX], listen[PATH_MAX], want[PATH_MAX * 2], conf[PATH_MAX];
	char confarg[PATH_MAX + 16];
	char notify[PATH_MAX], text[PATH_MAX * 2], notify_env[PATH_MAX + 32];
	const char *sbindir = getenv("BH_SBINDIR");
	char *argv[16];
	int n = 0;

	/* what the units say: the instance's configuration file, the socket */
	cr_assert_not_null(sbindir, "BH_SBINDIR is not set (make check sets it)");
	sd_unit_value("bulkhead@.service", "ExecStart", exec, sizeof(exec));
	snprintf(want, sizeof(want), "%s/bulkheadd --config=%s/bulkhead/%%i.conf", sbindir,
		 BH_SYSCONFDIR);
	cr_assert_str_eq(exec, want);
	sd_unit_value("bulkhead@.socket", "ListenStream", listen, sizeof(listen));
	cr_assert_str_eq(listen, "/run/bulkhead/%i.sock");
	sd_unit_value("bulkhead@.service", "Type", text, sizeof(text));
	cr_assert_str_eq(text, "notify");

	/* instance "t": its configuration file and socket in our directory */
	cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "share"), 0);
	cr_assert_eq(hx_seed_share(it_share), 0);
	cr_assert_eq(hx_mkdtemp(it_d.hd_dir, sizeof(it_d.hd_dir), "sd"), 0);
	snprintf(it_d.hd_sock, sizeof(it_d.hd_sock), "%s/t.sock", it_d.hd_dir);
	snprintf(it_d.hd_log, sizeof(it_d.hd_log), "%s/stderr.log", it_d.hd_dir);
	snprintf(conf, sizeof(conf), "%s/t.conf", it_d.hd_dir);
	snprintf(text, sizeof(text),
		 "[share]\nbackend = passthrough\n[passthrough]\ndir = %s\n"
		 "[daemon]\nlog_level = debug\n",
		 it_share);
	sd_write(conf, text);
	snprintf(notify, sizeof(notify), "%s/notify", it_d.hd_dir);
	sd_notify_open(notify);
	snprintf(notify_env, sizeof(notify_env), "NOTIFY_SOCKET=%s", notify);
	snprintf(confarg, sizeof(confarg), "--config=%s", conf);

	argv[n++] = (char *)"/usr/bin/systemd-socket-activate";
	argv[n++] = (char *)"-l";
	argv[n++] = it_d.hd_sock;
	argv[n++] = (char *)"-E";
	argv[n++] = notify_env;
	argv[n++] = (char *)"-E";
	argv[n++] = (char *)"WATCHDOG_USEC=200000";
	argv[n++] = (char *)BH_BUILD_DIR "/daemon/bulkheadd";
	argv[n++] = confarg;
	argv[n] = NULL;
	cr_assert_eq(hx_spawn_as(&it_d, argv, NULL, NULL), 0, "systemd-socket-activate");

	/* the first connection starts it */
	it_connect_init(2);
	cr_assert_neq(it_lookup(it_fe, 1, "small.txt"), 0, "the share is not served");
	cr_assert_eq(f_mkdir(1, "from-the-first", 0755, NULL), 0);
	sd_notify_wait("STATUS=Serving the front end");
	sd_notify_wait("2 queues running, 2 workers");
	cr_assert_eq(strncmp(sd_msgs, "READY=1|STATUS=Waiting for a front end\n", 39), 0,
		     "READY=1 is not the first message:\n%s", sd_msgs);
	cr_assert(hx_log_contains(&it_d, "socket systemd"), "not the socket systemd passed");
	sd_unit_matches_the_daemon();

	/* the next front end, after the first has gone */
	vufe_free(it_fe);
	it_fe = NULL;
	sd_notify_wait("STATUS=Waiting for the next front end");
	it_connect_init(2);
	cr_assert_neq(it_lookup(it_fe, 1, "from-the-first"), 0, "the second front end");
	usleep(300000);
	sd_notify_drain(0);
	cr_assert_geq(sd_count("WATCHDOG=1"), 2, "WATCHDOG_USEC=200000 but:\n%s", sd_msgs);

	it_stop_ok();
	sd_notify_drain(200);
	cr_assert_not_null(strstr(sd_msgs, "STOPPING=1"), "no STOPPING=1 among:\n%s", sd_msgs);
	close(sd_nfd);
	sd_nfd = -1;
}

static const char *sd_conf_path(void)
{
	static char conf[PATH_MAX];

	snprintf(conf, sizeof(conf), "%s/../bh-sd-%d.conf", it_share, (int)getpid());
	return conf;
}

/* Write the configuration file: the share's settings, then its directory. */
static void sd_conf(const char *settings)
{
	char text[PATH_MAX * 2];

	snprintf(text, sizeof(text), "[share]\nbackend = passthrough\n%s[passthrough]\ndir = %s\n",
		 settings, it_share);
	sd_write(sd_conf_path(), text);
}

/* A seeded share, and the daemon with --config=FILE with these settings. */
static void sd_start_config(const char *settings)
{
	static char confarg[PATH_MAX + 16];
	const char *args[] = {confarg, NULL};

	cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "share"), 0);
	cr_assert_eq(hx_seed_share(it_share), 0);
	sd_conf(settings);
	snprintf(confarg, sizeof(confarg), "--config=%s", sd_conf_path());
	cr_assert_eq(hx_start_bulkheadd(&it_d, NULL, args), 0);
}

static void sd_hup(void)
{
	cr_assert_eq(kill(it_d.hd_pid, SIGHUP), 0);
}

/* LOOKUP's entry timeout for small.txt: 0 with cache = never. */
static uint64_t sd_entry_valid(void)
{
	struct fuse_entry_out e;

	cr_assert_eq(f_entry_op(FUSE_LOOKUP, 1, "small.txt", 10, NULL, 0, &e), 0);
	return e.entry_valid;
}

ITEST(systemd, sighup_reads_the_configuration_again_for_the_next_front_end)
{
	sd_start_config("cache = never\n");
	it_connect_init(2);
	cr_assert_eq(sd_entry_valid(), 0, "cache = never");

	/* a broken file: said with its line, nothing changes */
	sd_conf("cache = sometimes\n");
	sd_hup();
	sd_log_wait(":3: ");
	sd_log_wait("the settings in use stay");

	/* a good one: the running front end keeps what it started with; what
	 * only a restart can change stays and is said */
	sd_conf("cache = always\nreadonly = yes\n");
	sd_hup();
	sd_log_wait("SIGHUP: readonly changed: it takes effect when bulkheadd starts again");
	sd_log_wait("the front end connected keeps the ones it started with");
	cr_assert_eq(sd_entry_valid(), 0, "the connected front end's settings changed");
	cr_assert_eq(f_mkdir(1, "first", 0755, NULL), 0);

	vufe_free(it_fe);
	it_fe = NULL;
	sd_log_wait("read at SIGHUP in force: cache always");
	it_connect_init(2);
	cr_assert_gt(sd_entry_valid(), 0, "cache = always did not reach the next front end");
	cr_assert_eq(f_mkdir(1, "second", 0755, NULL), 0, "readonly = yes was taken at SIGHUP");
	unlink(sd_conf_path());
}

ITEST(systemd, sighup_reads_the_policy_files_again_for_the_next_front_end)
{
	char dir[256], cmd[PATH_MAX * 3], arg[300], files[300];

	cr_assert_eq(hx_mkdtemp(dir, sizeof(dir), "policy"), 0);
	snprintf(cmd, sizeof(cmd), "cp -r '%s/x86_64' '%s/'", BH_SRC_POLICY_DIR, dir);
	cr_assert_eq(system(cmd), 0);
	snprintf(files, sizeof(files), "%s/x86_64/files.policy", dir);
	snprintf(arg, sizeof(arg), "--policy-dir=%s", dir);
	{
		const char *args[] = {arg, NULL};

		cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "share"), 0);
		cr_assert_eq(hx_seed_share(it_share), 0);
		cr_assert_eq(hx_start_bulkheadd(&it_d, it_share, args), 0);
	}
	it_connect_init(2);
	cr_assert_eq(f_mkdir(1, "a", 0755, NULL), 0);

	/* an unknown system call: said with file and line, nothing changes */
	snprintf(cmd, sizeof(cmd), "echo 'no_such_call: 1' >> '%s'", files);
	cr_assert_eq(system(cmd), 0);
	sd_hup();
	sd_log_wait("files.policy:");
	sd_log_wait("SIGHUP: the policies in use stay");

	/* mkdirat now fails softly: not for this front end, for the next */
	snprintf(cmd, sizeof(cmd),
		 "sed -i -e '/^no_such_call/d' -e 's/^mkdirat: 1$/mkdirat: return EACCES/' '%s'",
		 files);
	cr_assert_eq(system(cmd), 0);
	sd_hup();
	sd_log_wait("the front end connected keeps the ones it started with");
	cr_assert_eq(f_mkdir(1, "b", 0755, NULL), 0, "the running workers' policy changed");
	vufe_free(it_fe);
	it_fe = NULL;
	sd_log_wait("settings and policies read at SIGHUP in force");
	it_connect_init(2);
	cr_assert_eq(f_mkdir(1, "c", 0755, NULL), -EACCES, "the new policy is not in force");
	hx_rmtree(dir);
}

ITEST(systemd, sighup_reopens_the_log_file)
{
	char log[PATH_MAX], old[PATH_MAX + 8], arg[PATH_MAX + 16];
	const char *args[] = {arg, NULL};

	cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "share"), 0);
	cr_assert_eq(hx_seed_share(it_share), 0);
	snprintf(log, sizeof(log), "%s/../bh-sd-%d.log", it_share, (int)getpid());
	snprintf(old, sizeof(old), "%s.1", log);
	snprintf(arg, sizeof(arg), "--log-file=%s", log);
	cr_assert_eq(hx_start_bulkheadd(&it_d, it_share, args), 0);
	it_connect_init(2);
	cr_assert_not_null(strstr(sd_slurp(log), "Waiting for vhost-user socket connection"));

	/* rotated away, as logrotate does, then SIGHUP */
	cr_assert_eq(rename(log, old), 0);
	sd_hup();
	cr_assert_eq(hx_wait_path(log, 5000), 0, "no new log file");
	for (int i = 0; i < 50 && !strstr(sd_slurp(log), "read at SIGHUP"); i++)
		usleep(100000);
	cr_assert_not_null(strstr(sd_slurp(log), "the front end connected keeps"),
			   "the new file:\n%s", sd_slurp(log));
	cr_assert_not_null(strstr(sd_slurp(old), "received SIGHUP"));
	cr_assert_null(strstr(sd_slurp(old), "the front end connected keeps"));
	cr_assert_eq(hx_log_contains(&it_d, "Waiting for vhost-user"), 0,
		     "standard error still got the lines");
	unlink(log);
	unlink(old);
}

/* Started with NOTIFY_SOCKET ours and the watchdog variables as given;
 * the notify messages of its first 600 ms after READY. */
static void sd_watchdog_run(const char *usec, const char *pid)
{
	char notify[PATH_MAX];

	cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "share"), 0);
	cr_assert_eq(hx_seed_share(it_share), 0);
	snprintf(notify, sizeof(notify), "%s/../bh-sd-%d.notify", it_share, (int)getpid());
	unlink(notify);
	sd_notify_open(notify);
	setenv("NOTIFY_SOCKET", notify, 1);
	setenv("WATCHDOG_USEC", usec, 1);
	if (pid)
		setenv("WATCHDOG_PID", pid, 1);
	cr_assert_eq(hx_start_bulkheadd(&it_d, it_share, NULL), 0);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	sd_notify_wait("READY=1");
	usleep(600000);
	sd_notify_drain(0);
	close(sd_nfd);
	sd_nfd = -1;
	unlink(notify);
}

ITEST(systemd, a_watchdog_period_that_is_no_number_is_said_and_never_pinged)
{
	sd_watchdog_run("soon", NULL);
	cr_assert_eq(sd_count("WATCHDOG=1"), 0, "pinged:\n%s", sd_msgs);
	cr_assert(hx_log_contains(&it_d, "WATCHDOG_USEC 'soon' is not a period: no watchdog"));
}

ITEST(systemd, a_watchdog_meant_for_another_process_is_left_alone)
{
	sd_watchdog_run("100000", "1");
	cr_assert_eq(sd_count("WATCHDOG=1"), 0, "pinged:\n%s", sd_msgs);
}

ITEST(systemd, a_watchdog_meant_for_the_daemon_is_pinged_at_half_its_period)
{
	sd_watchdog_run("200000", NULL);
	/* every 100 ms for 600 ms: allow a loaded machine to miss some */
	cr_assert_geq(sd_count("WATCHDOG=1"), 3, "pings:\n%s", sd_msgs);
}
