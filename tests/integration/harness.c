/*
 * harness.c - start, stop and inspect real back ends for the integration
 * tests and the bench. Runs in: test and bench programs only.
 */
#include "config.h"

#define _XOPEN_SOURCE_EXTRA 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"

#ifndef BH_BUILD_DIR
#error "BH_BUILD_DIR must name the build tree"
#endif

int hx_mkdtemp(char *out, size_t len, const char *tag)
{
	const char *t = getenv("TMPDIR");
	int n = snprintf(out, len, "%s/bh-%s-XXXXXX", t && *t ? t : "/tmp", tag);

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return mkdtemp(out) ? 0 : -errno;
}

static int hx_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_DP)
		rmdir(p);
	else
		unlink(p);
	return 0;
}

void hx_rmtree(const char *path)
{
	if (path && *path)
		nftw(path, hx_rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

void hx_big_content(unsigned char *buf, size_t len)
{
	uint32_t x = 0x12345678;

	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)(x >> 16);
	}
}

static int hx_write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char p[PATH_MAX];
	int fd, r;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	r = len ? bh_write_full(fd, data, len) : 0;
	close(fd);
	return r;
}

int hx_seed_share(const char *dir)
{
	char p[PATH_MAX], q[PATH_MAX];
	unsigned char *big;
	int r;
	struct timespec ts[2] = {{1600000000, 123456789}, {1600000001, 987654321}};

	if ((r = hx_write_file(dir, "small.txt", "hello bulkhead\n", 15)) ||
	    (r = hx_write_file(dir, "empty", NULL, 0)) ||
	    (r = hx_write_file(dir, "mode0640", "x", 1)))
		return r;
	big = malloc(HX_BIG_SIZE);
	if (!big)
		return -ENOMEM;
	hx_big_content(big, HX_BIG_SIZE);
	r = hx_write_file(dir, "big.bin", big, HX_BIG_SIZE);
	free(big);
	if (r)
		return r;
	snprintf(p, sizeof(p), "%s/mode0640", dir);
	if (chmod(p, 0640) || chown(p, 1234, 5678) || utimensat(AT_FDCWD, p, ts, 0))
		return -errno;
	snprintf(p, sizeof(p), "%s/link_small", dir);
	if (symlink("small.txt", p))
		return -errno;
	snprintf(p, sizeof(p), "%s/link_etc", dir);
	if (symlink("/etc", p))
		return -errno;
	snprintf(p, sizeof(p), "%s/link_passwd", dir);
	if (symlink("/etc/passwd", p))
		return -errno;
	snprintf(p, sizeof(p), "%s/dir", dir);
	if (mkdir(p, 0755))
		return -errno;
	snprintf(q, sizeof(q), "%s/dir/sub", dir);
	if (mkdir(q, 0755))
		return -errno;
	for (int i = 0; i < HX_DIR_FILES; i++) {
		char name[32], content[32];
		snprintf(name, sizeof(name), "f%03d", i);
		snprintf(content, sizeof(content), "file %d\n", i);
		if ((r = hx_write_file(p, name, content, strlen(content))))
			return r;
	}
	return 0;
}

int hx_find_fd(pid_t pid, int max, bool (*match)(int fd, const void *arg), const void *arg,
	       int *which)
{
	int pidfd = pidfd_open(pid, 0), found = -1;

	if (pidfd < 0)
		return -1;
	for (int fd = 0; fd < max && found < 0; fd++) {
		int got = pidfd_getfd(pidfd, fd, 0);

		if (got < 0)
			continue;
		if (match(got, arg)) {
			found = got;
			if (which)
				*which = fd;
		} else {
			close(got);
		}
	}
	close(pidfd);
	return found;
}

/* A tmpfs directory of *(const uint64_t *)bytes bytes. */
static bool hx_is_memory_share(int fd, const void *bytes)
{
	struct statfs sf;
	struct stat st;

	return fstatfs(fd, &sf) == 0 && sf.f_type == TMPFS_MAGIC &&
	       (uint64_t)sf.f_blocks * sf.f_bsize == *(const uint64_t *)bytes &&
	       fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

int hx_memory_share_fd(pid_t daemon, uint64_t bytes)
{
	return hx_find_fd(daemon, 1024, hx_is_memory_share, &bytes, NULL);
}

int hx_wait_path(const char *path, int timeout_ms)
{
	uint64_t deadline = bh_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct stat st;

	while (stat(path, &st) < 0) {
		if (bh_now_ns() > deadline)
			return -ETIMEDOUT;
		usleep(10000);
	}
	return 0;
}

/*
 * Child side of every program the tests start: stdin from /dev/null, stdout
 * and stderr into outfd, a process group of its own (a stray signal to ours
 * cannot reach it), optionally a directory and new credentials (as), and
 * death with the test: a test that dies, or fails in .init where Criterion
 * runs no .fini, takes its children along instead of leaking them. The
 * parent-death signal is set after the credentials change, which clears it.
 */
static void hx_child(int outfd, pid_t parent, const char *dir, void (*as)(void),
		     char *const argv[])
{
	int nul = open("/dev/null", O_RDWR);

	dup2(nul, 0);
	dup2(outfd, 1);
	dup2(outfd, 2);
	setpgid(0, 0);
	if (dir && chdir(dir) < 0)
		_exit(126);
	if (as)
		as();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	execv(argv[0], argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int hx_spawn_as(struct hx_daemon *d, char *const argv[], const char *dir, void (*as)(void))
{
	pid_t pid, self = getpid();
	int logfd;

	logfd = open(d->hd_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(logfd);
		return -errno;
	}
	if (pid == 0)
		hx_child(logfd, self, dir, as, argv);
	close(logfd);
	d->hd_pid = pid;
	d->hd_reaped = 0;
	if (hx_wait_path(d->hd_sock, 10000) < 0) {
		hx_stop(d, 1000);
		return -ETIMEDOUT;
	}
	return 0;
}

static int hx_spawn(struct hx_daemon *d, char *const argv[])
{
	return hx_spawn_as(d, argv, NULL, NULL);
}

static int hx_code(int st);

int hx_run_capture(char *const argv[], const char *dir, void (*as)(void), char *out, size_t cap)
{
	pid_t pid, self = getpid();
	size_t got = 0;
	int pfd[2], st;
	ssize_t n;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	if ((pid = fork()) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (pid == 0) {
		/* a program that wrongly keeps running must not hang the test */
		alarm(10);
		hx_child(pfd[1], self, dir, as, argv);
	}
	close(pfd[1]);
	while (got + 1 < cap && (n = read(pfd[0], out + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(pfd[0]);
	if (waitpid(pid, &st, 0) != pid)
		return -errno;
	return hx_code(st);
}

static int hx_prepare(struct hx_daemon *d, const char *share, const char *tag)
{
	int r;

	memset(d, 0, sizeof(*d));
	d->hd_pid = -1;
	if ((r = hx_mkdtemp(d->hd_dir, sizeof(d->hd_dir), tag)))
		return r;
	snprintf(d->hd_sock, sizeof(d->hd_sock), "%s/s", d->hd_dir);
	snprintf(d->hd_log, sizeof(d->hd_log), "%s/stderr.log", d->hd_dir);
	snprintf(d->hd_share, sizeof(d->hd_share), "%s", share ? share : "");
	return 0;
}

int hx_start_bulkheadd(struct hx_daemon *d, const char *share, const char *const *extra)
{
	char sockarg[PATH_MAX + 32], sharearg[PATH_MAX + 32];
	char *argv[32];
	int n = 0, r;

	if ((r = hx_prepare(d, share, "bulkheadd")))
		return r;
	snprintf(sockarg, sizeof(sockarg), "--socket-path=%s", d->hd_sock);
	snprintf(sharearg, sizeof(sharearg), "--shared-dir=%s", share);
	argv[n++] = (char *)BH_BUILD_DIR "/daemon/bulkheadd";
	argv[n++] = sockarg;
	if (share)
		argv[n++] = sharearg;
	argv[n++] = (char *)"--log-level=debug"; /* extra may override: the last one wins */
	for (int i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	return hx_spawn(d, argv);
}

int hx_start_bulkheadd_fd(struct hx_daemon *d, const char *const *args)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char fdarg[32], *argv[40];
	int fd, n = 0, r;

	if ((r = hx_prepare(d, NULL, "bulkheadd")))
		return r;
	/* as libvirt and Kata do: the socket ours, its descriptor inherited */
	if (strlen(d->hd_sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, d->hd_sock, strlen(d->hd_sock) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	snprintf(fdarg, sizeof(fdarg), "--fd=%d", fd);
	argv[n++] = (char *)BH_BUILD_DIR "/daemon/bulkheadd";
	argv[n++] = fdarg;
	for (int i = 0; args && args[i] && n < 39; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	r = hx_spawn(d, argv);
	close(fd);
	return r;
}

int hx_start_virtiofsd(struct hx_daemon *d, const char *share)
{
	char sockarg[PATH_MAX + 32], src[PATH_MAX + 32];
	char *argv[16];
	int n = 0, r;

	if ((r = hx_prepare(d, share, "virtiofsd")))
		return r;
	snprintf(sockarg, sizeof(sockarg), "--socket-path=%s", d->hd_sock);
	snprintf(src, sizeof(src), "source=%s", share);
	argv[n++] = (char *)HX_VIRTIOFSD;
	argv[n++] = sockarg;
	argv[n++] = (char *)"-o";
	argv[n++] = src;
	argv[n++] = (char *)"-o";
	argv[n++] = (char *)"cache=auto";
	argv[n] = NULL;
	return hx_spawn(d, argv);
}

static int hx_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -EINVAL;
}

int hx_stop(struct hx_daemon *d, int timeout_ms)
{
	uint64_t deadline = bh_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int st;

	if (d->hd_pid <= 0)
		return -ESRCH;
	if (d->hd_reaped)
		return hx_code(d->hd_status);
	kill(d->hd_pid, SIGCONT); /* a test may have left it stopped */
	kill(d->hd_pid, SIGTERM);
	for (;;) {
		pid_t w = waitpid(d->hd_pid, &st, WNOHANG);
		if (w == d->hd_pid) {
			d->hd_reaped = 1;
			d->hd_status = st;
			return hx_code(st);
		}
		if (w < 0)
			return -errno;
		if (bh_now_ns() > deadline) {
			kill(d->hd_pid, SIGKILL);
			waitpid(d->hd_pid, &st, 0);
			d->hd_reaped = 1;
			d->hd_status = st;
			return -ETIMEDOUT;
		}
		usleep(10000);
	}
}

void hx_cleanup(struct hx_daemon *d)
{
	if (d->hd_pid > 0 && !d->hd_reaped)
		hx_stop(d, 2000);
	if (d->hd_dir[0])
		hx_rmtree(d->hd_dir);
	d->hd_dir[0] = 0;
}

char hx_proc_state(pid_t pid)
{
	char p[64], buf[512], *rp;
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' ? rp[2] : 0;
}

int hx_alive(struct hx_daemon *d)
{
	char s;

	if (d->hd_pid <= 0 || d->hd_reaped)
		return 0;
	s = hx_proc_state(d->hd_pid);
	return s != 0 && s != 'Z' && s != 'X';
}

int hx_log_contains(struct hx_daemon *d, const char *s)
{
	FILE *f = fopen(d->hd_log, "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f)
		return 0;
	while (!found && getline(&line, &cap, f) >= 0)
		found = strstr(line, s) != NULL;
	free(line);
	fclose(f);
	return found;
}

int hx_wait_log(struct hx_daemon *d, const char *s, int timeout_ms)
{
	for (int waited = 0; !hx_log_contains(d, s); waited += 20) {
		if (waited >= timeout_ms)
			return 0;
		usleep(20000);
	}
	return 1;
}

void hx_log_dump(struct hx_daemon *d)
{
	FILE *f = fopen(d->hd_log, "re");
	char buf[4096];
	size_t n;

	if (!f)
		return;
	fprintf(stderr, "---- %s ----\n", d->hd_log);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fprintf(stderr, "---- end ----\n");
	fclose(f);
}

int hx_expect_worker_death(struct hx_daemon *d, int q, const char *what)
{
	struct hx_expect *e;

	if (d->hd_nexpect >= HX_MAX_EXPECT || strlen(what) >= sizeof(e->he_what))
		return -ENOSPC;
	e = &d->hd_expect[d->hd_nexpect++];
	e->he_queue = q;
	snprintf(e->he_what, sizeof(e->he_what), "%s", what);
	e->he_seen = 0;
	return 0;
}

/* The queue a daemon line is about ("worker q3 ..."), -1 if it names none. */
static int hx_line_queue(const char *line)
{
	const char *p = strstr(line, "worker q");

	if (!p || p[8] < '0' || p[8] > '9')
		return -1;
	return atoi(p + 8);
}

/* Does this daemon line say that a worker ended other than by an orderly
 * stop, or made (or under --seccomp=log would have made) a forbidden call? */
static int hx_bad_worker_line(const char *line)
{
	const char *p;

	if (strstr(line, "forbidden system call") || strstr(line, "would deny"))
		return 1;
	if (strstr(line, ") was killed by signal ") || strstr(line, " did not exit; killing it"))
		return 1;
	p = strstr(line, ") exited with status ");
	return p && atoi(p + strlen(") exited with status ")) != 0;
}

int hx_check_workers(struct hx_daemon *d, char *why, size_t len)
{
	FILE *f = fopen(d->hd_log, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int bad = 0;

	why[0] = '\0';
	if (!f) {
		snprintf(why, len, "cannot read %s: %s", d->hd_log, strerror(errno));
		return -1;
	}
	while (!bad && (n = getline(&line, &cap, f)) >= 0) {
		int q, i;

		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (!hx_bad_worker_line(line))
			continue;
		q = hx_line_queue(line);
		for (i = 0; i < d->hd_nexpect; i++) {
			struct hx_expect *e = &d->hd_expect[i];
			if (!e->he_seen && (e->he_queue < 0 || e->he_queue == q) &&
			    strstr(line, e->he_what))
				break;
		}
		if (i < d->hd_nexpect) {
			d->hd_expect[i].he_seen = 1;
			continue;
		}
		snprintf(why, len, "unexpected: %s", line);
		bad = 1;
	}
	free(line);
	fclose(f);
	for (int i = 0; !bad && i < d->hd_nexpect; i++) {
		struct hx_expect *e = &d->hd_expect[i];
		if (e->he_seen)
			continue;
		if (e->he_queue < 0)
			snprintf(why, len, "no worker's line says \"%s\"", e->he_what);
		else
			snprintf(why, len, "no line about worker q%d says \"%s\"", e->he_queue,
				 e->he_what);
		bad = 1;
	}
	return bad ? -1 : 0;
}

/* One line of /proc/PID/stat, what hx_children and hx_tree_cpu need. */
struct hx_proc {
	int hp_pid, hp_ppid;
	char hp_state;
	unsigned long long hp_ticks;  /* utime + stime, every thread */
	unsigned long long hp_cticks; /* cutime + cstime: reaped children */
};

#define HX_PROC_MAX 32768

/* Every process in /proc, into a malloc'ed array (*out); count or -errno. */
static int hx_proc_scan(struct hx_proc **out)
{
	DIR *dir = opendir("/proc");
	struct hx_proc *v;
	struct dirent *e;
	int n = 0;

	if (!dir)
		return -errno;
	if (!(v = calloc(HX_PROC_MAX, sizeof(*v)))) {
		closedir(dir);
		return -ENOMEM;
	}
	while ((e = readdir(dir)) && n < HX_PROC_MAX) {
		char p[300], buf[1024], *rp;
		unsigned long long ut, st, cut, cst;
		struct hx_proc *h = &v[n];
		FILE *f;
		size_t k;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(p, sizeof(p), "/proc/%s/stat", e->d_name);
		if (!(f = fopen(p, "re")))
			continue;
		k = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[k] = 0;
		/* the command name may hold anything: fields follow the last ')' */
		rp = strrchr(buf, ')');
		if (!rp || sscanf(rp + 1,
				  " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
				  &h->hp_state, &h->hp_ppid, &ut, &st, &cut, &cst) != 6)
			continue;
		h->hp_pid = atoi(e->d_name);
		h->hp_ticks = ut + st;
		h->hp_cticks = cut + cst;
		n++;
	}
	closedir(dir);
	*out = v;
	return n;
}

int hx_children(pid_t pid, pid_t *out, int max)
{
	struct hx_proc *v;
	int n = 0, all = hx_proc_scan(&v);

	if (all < 0)
		return all;
	for (int i = 0; i < all; i++) {
		if (v[i].hp_ppid != pid || v[i].hp_state == 'Z' || v[i].hp_state == 'X')
			continue;
		if (n < max && out)
			out[n] = v[i].hp_pid;
		n++;
	}
	free(v);
	return n;
}

double hx_tree_cpu(pid_t pid)
{
	unsigned long long ticks = 0;
	struct hx_proc *v;
	int all = hx_proc_scan(&v), todo[256], ntodo = 0;

	if (all < 0)
		return 0;
	for (int i = 0; i < all; i++)
		if (v[i].hp_pid == pid) {
			ticks += v[i].hp_cticks;
			todo[ntodo++] = pid;
		}
	while (ntodo > 0) {
		int p = todo[--ntodo];
		for (int i = 0; i < all; i++) {
			if (v[i].hp_pid == p)
				ticks += v[i].hp_ticks;
			else if (v[i].hp_ppid == p && ntodo < (int)(sizeof(todo) / sizeof(todo[0])))
				todo[ntodo++] = v[i].hp_pid;
		}
	}
	free(v);
	return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

int hx_wait_children(pid_t pid, int n, int timeout_ms)
{
	uint64_t deadline = bh_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	while (hx_children(pid, NULL, 0) != n) {
		if (bh_now_ns() > deadline)
			return -ETIMEDOUT;
		usleep(20000);
	}
	return 0;
}
