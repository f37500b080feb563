/*
 * mapper.c - the id-map helper: an unprivileged parent may write a user
 * namespace's uid_map (gid_map) itself only as one line mapping its own id
 * with a count of 1. Any other map (libvirt's session form maps the user
 * as 0 and its subordinate range from /etc/subuid as 1 and up) is written
 * by the setuid helpers newuidmap(1)/newgidmap(1) of the uidmap package,
 * which check /etc/subuid and /etc/subgid, while the namespace's first
 * process waits for its maps.
 *
 * Why a process of its own: the parent cannot run them once it serves.
 * Loading its seccomp filter (priv_drop) sets no_new_privs, which the
 * kernel requires of an unprivileged process and which nothing clears;
 * every process the parent forks and execs from then on inherits it, and
 * no_new_privs voids a setuid bit and file capabilities alike, so
 * newuidmap would run without privilege and fail. (parent.policy itself,
 * a deny list, does not forbid execve: the filter is not the obstacle,
 * no_new_privs is.) So uns_plan forks this helper at start-up, before
 * anything exists and long before priv_drop, and every map the parent
 * cannot write goes through it.
 *
 * What it holds: its channel to the parent and /dev/null, nothing else (no
 * listening socket, share, guest memory, policy or log); no capability
 * (the parent is unprivileged). It takes requests from the parent only
 * (SOCK_SEQPACKET, fixed size: which map, which pid), the target must be a
 * child of the parent, and the tool's arguments are the maps fixed at
 * start-up, which no request can change. A worker never holds its channel.
 * It runs the tool with a fixed environment, returns the wait status and
 * the first bytes of the tool's output, and exits when the parent goes
 * (end of file on the channel, or PR_SET_PDEATHSIG).
 * Runs in: the parent (mapper_start, mapper_map, mapper_reaped,
 * mapper_stop) and the helper process (mapper_main).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkheadd.h"
#include "log.h"
#include "util.h"

#define MAPPER_TIMEOUT_MS 5000 /* one run of the tool, and the parent's wait */
#define MAPPER_OUT_MAX	  480  /* what is kept of the tool's output */
#define MAPPER_NAME	  "bulkhead-idmap"

static const char *const mapper_tools[2] = {"newuidmap", "newgidmap"};

struct mapper_req {
	uint32_t mq_kind; /* enum uns_kind */
	int32_t mq_pid;
};

struct mapper_rep {
	int32_t mr_err;	   /* 0: the tool ran (see mr_status); -errno: it could not */
	int32_t mr_status; /* its wait status */
	uint32_t mr_len;   /* bytes in mr_out */
	char mr_out[MAPPER_OUT_MAX];
};

static int mapper_fd = -1;
static pid_t mapper_pid = -1;

/* The tool's command line for pid: argv (NULL-terminated) pointing into
 * nums. Both sides build it from the maps fixed at start-up. */
static void mapper_argv(const struct parent_env *env, enum uns_kind k, pid_t pid,
			char nums[][12], char *argv[])
{
	const struct uns_map *m = k == UNS_UID ? &env->pe_uid_map : &env->pe_gid_map;
	int n = 0, a = 0;

	argv[a++] = (char *)env->pe_map_tool[k];
	snprintf(nums[n], 12, "%d", (int)pid);
	argv[a++] = nums[n++];
	for (unsigned i = 0; i < m->um_n; i++) {
		const uint32_t v[3] = {m->um_lines[i].ul_ns, m->um_lines[i].ul_host,
				       m->um_lines[i].ul_count};

		for (int j = 0; j < 3; j++) {
			snprintf(nums[n], 12, "%u", v[j]);
			argv[a++] = nums[n++];
		}
	}
	argv[a] = NULL;
}

/* ---- the helper process ---- */

/* Is pid a child of parent? (It cannot be reused meanwhile: the parent
 * holds it unreaped while it waits for us.) */
static bool mapper_parent_of(pid_t pid, pid_t parent)
{
	char path[64], line[128];
	bool yes = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "re")))
		return false;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "PPid:", 5) == 0) {
			yes = atoi(line + 5) == (int)parent;
			break;
		}
	fclose(f);
	return yes;
}

/* Run the tool for pid, its standard output and error into rp. */
static void mapper_run(const struct parent_env *env, enum uns_kind k, pid_t pid,
		       struct mapper_rep *rp)
{
	static char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
	char nums[2 + 3 * UNS_MAX_LINES][12], *argv[3 + 3 * UNS_MAX_LINES], junk[256];
	uint64_t deadline = bh_now_ns() + MAPPER_TIMEOUT_MS * 1000000ull;
	struct pollfd p;
	int out[2], st = 0, r;
	pid_t tool;
	ssize_t n;

	mapper_argv(env, k, pid, nums, argv);
	if (pipe2(out, O_CLOEXEC) < 0) {
		rp->mr_err = -errno;
		return;
	}
	if ((tool = fork()) < 0) {
		rp->mr_err = -errno;
		close(out[0]);
		close(out[1]);
		return;
	}
	if (tool == 0) {
		if (dup2(out[1], STDOUT_FILENO) < 0 || dup2(out[1], STDERR_FILENO) < 0)
			_exit(127);
		close_range(3, ~0u, 0);
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		execve(argv[0], argv, envp);
		dprintf(STDERR_FILENO, "cannot execute %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	close(out[1]);
	p = (struct pollfd){out[0], POLLIN, 0};
	for (;;) {
		uint64_t now = bh_now_ns();

		if (now >= deadline) {
			rp->mr_err = -ETIMEDOUT;
			kill(tool, SIGKILL);
			break;
		}
		r = poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		if (rp->mr_len < sizeof(rp->mr_out))
			n = read(out[0], rp->mr_out + rp->mr_len, sizeof(rp->mr_out) - rp->mr_len);
		else
			n = read(out[0], junk, sizeof(junk)); /* the rest is not kept */
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			break;
		if (n > 0 && rp->mr_len < sizeof(rp->mr_out))
			rp->mr_len += (uint32_t)n;
	}
	close(out[0]);
	while ((r = waitpid(tool, &st, 0)) < 0 && errno == EINTR)
		;
	if (r < 0 && !rp->mr_err)
		rp->mr_err = -errno;
	rp->mr_status = r < 0 ? 0 : st;
}

static void __attribute__((noreturn))
mapper_main(const struct parent_env *env, int chan, pid_t parent)
{
	struct mapper_req rq;
	struct mapper_rep rp;
	sigset_t none;
	int null;
	ssize_t n;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	(void)prctl(PR_SET_NAME, MAPPER_NAME, 0, 0, 0);
	/* nothing of the parent's but the channel: standard streams on
	 * /dev/null, the channel on 3, every other descriptor closed */
	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0 || dup2(null, STDIN_FILENO) < 0 ||
	    dup2(null, STDOUT_FILENO) < 0 || dup2(null, STDERR_FILENO) < 0 ||
	    (chan != 3 && dup3(chan, 3, O_CLOEXEC) < 0))
		_exit(1);
	close_range(4, ~0u, 0);
	/* It lives exactly as long as the parent: a terminal's ^C or a
	 * service manager's SIGTERM to the whole group is the parent's to
	 * act on, and its end reaches us as end of file. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	for (;;) {
		n = recv(3, &rq, sizeof(rq), 0);
		if (n == 0)
			_exit(0); /* the parent is gone */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		memset(&rp, 0, sizeof(rp));
		if (n != (ssize_t)sizeof(rq) || rq.mq_kind > UNS_GID ||
		    !env->pe_map_tool[rq.mq_kind][0] || rq.mq_pid <= 1)
			rp.mr_err = -EINVAL;
		else if (!mapper_parent_of(rq.mq_pid, parent))
			rp.mr_err = -ESRCH;
		else
			mapper_run(env, (enum uns_kind)rq.mq_kind, rq.mq_pid, &rp);
		if (send(3, &rp, sizeof(rp), MSG_NOSIGNAL) != (ssize_t)sizeof(rp))
			_exit(1);
	}
}

/* ---- the parent's side ---- */

static bool mapper_exe(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The tool in an absolute directory of PATH, else in /usr/bin: 0 or -ENOENT. */
static int mapper_find(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");

	for (const char *d = path; d && *d; d += strcspn(d, ":"), d += *d == ':') {
		size_t dl = strcspn(d, ":");

		/* a relative entry would depend on our working directory */
		if (dl == 0 || d[0] != '/' || (size_t)snprintf(out, len, "%.*s/%s", (int)dl, d, name) >= len)
			continue;
		if (mapper_exe(out))
			return 0;
	}
	snprintf(out, len, "/usr/bin/%s", name);
	return mapper_exe(out) ? 0 : -ENOENT;
}

/* "OPT (uid map 0->1000(1) 1->100000(65536))": the map, for messages. */
static void mapper_what(const struct parent_env *env, enum uns_kind k, char *buf, size_t len)
{
	const struct uns_map *m = k == UNS_UID ? &env->pe_uid_map : &env->pe_gid_map;
	char lines[300];

	uns_describe(m, lines, sizeof(lines));
	snprintf(buf, len, "%s (%s map %s)", m->um_opt ? m->um_opt : "the default map",
		 k == UNS_UID ? "uid" : "gid", lines);
}

int mapper_start(struct parent_env *env, const bool need[2])
{
	pid_t parent = getpid(), pid;
	char what[400];
	int sv[2];

	for (int k = UNS_UID; k <= UNS_GID; k++) {
		env->pe_map_tool[k][0] = '\0';
		if (!need[k])
			continue;
		mapper_what(env, (enum uns_kind)k, what, sizeof(what));
		/* the same as the NoNewPrivs line of /proc/self/status */
		if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1) {
			log_warnx("%s: an unprivileged bulkheadd writes this map through %s(1) "
				  "(it has more than one line, or ids other than our own with a "
				  "count of 1), and %s cannot work under no_new_privs "
				  "(NoNewPrivileges= of a systemd unit, setpriv --no-new-privs): "
				  "the kernel ignores its setuid bit; not starting",
				  what, mapper_tools[k], mapper_tools[k]);
			return -EPERM;
		}
		if (mapper_find(mapper_tools[k], env->pe_map_tool[k], sizeof(env->pe_map_tool[k])) <
		    0) {
			log_warnx("%s: an unprivileged bulkheadd writes this map through %s(1) "
				  "(it has more than one line, or ids other than our own with a "
				  "count of 1), which is not installed: no executable %s in PATH "
				  "or /usr/bin (Debian: apt-get install uidmap); not starting",
				  what, mapper_tools[k], mapper_tools[k]);
			env->pe_map_tool[k][0] = '\0';
			return -ENOENT;
		}
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_warn("the id-map helper: socketpair");
		return -errno;
	}
	if ((pid = fork()) < 0) {
		log_warn("the id-map helper: fork");
		close(sv[0]);
		close(sv[1]);
		return -EAGAIN;
	}
	if (pid == 0) {
		close(sv[0]);
		mapper_main(env, sv[1], parent);
	}
	close(sv[1]);
	mapper_fd = sv[0];
	mapper_pid = pid;
	log_debug("the id-map helper (pid %d) runs %s%s%s for the workers' namespaces", (int)pid,
		  env->pe_map_tool[UNS_UID], need[UNS_UID] && need[UNS_GID] ? " and " : "",
		  env->pe_map_tool[UNS_GID]);
	return 0;
}

/* The helper failed us: it is of no further use. */
static void mapper_broken(void)
{
	if (mapper_fd >= 0)
		close(mapper_fd);
	mapper_fd = -1;
	if (mapper_pid > 0)
		kill(mapper_pid, SIGKILL); /* reaped by workers_reap, or mapper_stop */
}

/* The tool's output on one line: control characters become '?', line
 * ends "; ", the last one dropped. */
static void mapper_clean(char *s, size_t n)
{
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		n--;
	s[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\n')
			s[i] = ';';
		else if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
}

int mapper_map(const struct parent_env *env, enum uns_kind k, pid_t pid, char *why, size_t len)
{
	char nums[2 + 3 * UNS_MAX_LINES][12], *argv[3 + 3 * UNS_MAX_LINES], cmd[400] = "";
	struct mapper_req rq = {(uint32_t)k, (int32_t)pid};
	uint64_t deadline = bh_now_ns() + (MAPPER_TIMEOUT_MS + 1000) * 1000000ull;
	struct mapper_rep rp;
	struct pollfd p;
	ssize_t n;
	int r;

	mapper_argv(env, k, pid, nums, argv);
	for (int i = 0; argv[i]; i++)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), "%s%s", i ? " " : "",
			 argv[i]);
	if (mapper_fd < 0) {
		snprintf(why, len, "%s: the id-map helper is gone", cmd);
		return -ECHILD;
	}
	if (send(mapper_fd, &rq, sizeof(rq), MSG_NOSIGNAL) != (ssize_t)sizeof(rq)) {
		snprintf(why, len, "%s: cannot reach the id-map helper: %s", cmd, strerror(errno));
		mapper_broken();
		return -EPIPE;
	}
	p = (struct pollfd){mapper_fd, POLLIN, 0};
	do {
		uint64_t now = bh_now_ns();

		r = now >= deadline ? 0 : poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1);
	} while (r < 0 && errno == EINTR);
	n = r == 1 ? recv(mapper_fd, &rp, sizeof(rp), 0) : -1;
	if (n != (ssize_t)sizeof(rp) || rp.mr_len > sizeof(rp.mr_out)) {
		snprintf(why, len, "%s: the id-map helper %s", cmd,
			 r == 1 ? "did not answer properly" : "did not answer in time");
		mapper_broken();
		return -EPROTO;
	}
	mapper_clean(rp.mr_out, rp.mr_len < sizeof(rp.mr_out) ? rp.mr_len : sizeof(rp.mr_out) - 1);
	if (rp.mr_err < 0) {
		snprintf(why, len, "%s: the id-map helper could not run it: %s", cmd,
			 strerror(-rp.mr_err));
		return rp.mr_err;
	}
	if (WIFEXITED(rp.mr_status) && WEXITSTATUS(rp.mr_status) == 0)
		return 0;
	if (WIFEXITED(rp.mr_status))
		snprintf(why, len, "%s failed (exit status %d): %s", cmd, WEXITSTATUS(rp.mr_status),
			 rp.mr_out[0] ? rp.mr_out : "(no output)");
	else
		snprintf(why, len, "%s failed (killed by signal %d): %s", cmd,
			 WTERMSIG(rp.mr_status), rp.mr_out[0] ? rp.mr_out : "(no output)");
	return -EPERM;
}

bool mapper_reaped(pid_t pid)
{
	if (pid <= 0 || pid != mapper_pid)
		return false;
	mapper_pid = -1;
	if (mapper_fd >= 0)
		close(mapper_fd);
	mapper_fd = -1;
	return true;
}

void mapper_stop(void)
{
	uint64_t deadline = bh_now_ns() + 1000 * 1000000ull;
	int st;

	if (mapper_pid <= 0)
		return;
	if (mapper_fd >= 0)
		close(mapper_fd); /* end of file: it exits */
	mapper_fd = -1;
	while (waitpid(mapper_pid, &st, WNOHANG) == 0) {
		if (bh_now_ns() >= deadline) {
			kill(mapper_pid, SIGKILL);
			deadline = UINT64_MAX;
		}
		usleep(2000);
	}
	mapper_pid = -1;
}
