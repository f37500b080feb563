/*
 * userns.c - user namespaces for the workers: the --uid-map/--gid-map and
 * --translate-uid/--translate-gid options, the start-up decision of how we
 * run (root, or unprivileged with each worker root of its own user
 * namespace), and the two halves of giving a freshly cloned worker its
 * maps: the parent writes setgroups/uid_map/gid_map, the child waits for
 * them, takes its namespace ids and keeps what it needs across exec; and
 * a short-lived child of the same kind that makes a mount an
 * unprivileged parent may not make itself (uns_make_fd).
 * Runs in: the parent, and in a cloned child before it execs the worker
 * or while it makes that mount.
 * The options are the operator's; the kernel has the last word on a map,
 * but everything an unprivileged process cannot write is refused at
 * start-up with the option named.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <unistd.h>

#include <cap-ng.h>

#include "bulkheadd.h"
#include "log.h"
#include "util.h"

#define UNS_ID_LIMIT	      4294967295ull /* (uid_t)-1 is never an id */
#define UNS_HELPER_TIMEOUT_MS 5000

/* What a worker that is not uid 0 of its namespace carries across exec as
 * ambient capabilities: the namespace steps of sandbox.c and the passthrough
 * set (worker/sandbox.h), which sandbox.c then cuts down as usual. */
static const unsigned uns_ambient_caps[] = {
    CAP_SYS_ADMIN, CAP_SETPCAP, CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FOWNER,
    CAP_FSETID,	   CAP_SETGID,	CAP_SETUID, CAP_MKNOD,	      CAP_SETFCAP};

static int uns_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Add a line; the kernel refuses overlapping ranges on either side. */
static int uns_add(const char *opt, const char *arg, struct uns_map *m, uint32_t ns, uint32_t host,
		   uint32_t count)
{
	if (count == 0 || (uint64_t)ns + count > UNS_ID_LIMIT ||
	    (uint64_t)host + count > UNS_ID_LIMIT) {
		fprintf(stderr,
			"bulkheadd: invalid %s '%s': the count must be at least 1 and "
			"both ranges must end below 4294967295\n",
			opt, arg);
		return -EINVAL;
	}
	if (m->um_n == UNS_MAX_LINES) {
		fprintf(stderr, "bulkheadd: too many %s options (at most %d)\n", opt,
			UNS_MAX_LINES);
		return -EINVAL;
	}
	for (unsigned i = 0; i < m->um_n; i++) {
		const struct uns_line *l = &m->um_lines[i];
		int side_ns = uns_overlap(l->ul_ns, l->ul_count, ns, count);

		if (side_ns || uns_overlap(l->ul_host, l->ul_count, host, count)) {
			/* the earlier line in the option's own form */
			fprintf(stderr,
				"bulkheadd: invalid %s '%s': its %s ids overlap those of the "
				"earlier %s '%s%u:%u:%u%s'\n",
				opt, arg,
				side_ns ? (arg[0] == ':' ? "namespace" : "guest") : "host", opt,
				arg[0] == ':' ? ":" : "map:", l->ul_ns, l->ul_host, l->ul_count,
				arg[0] == ':' ? ":" : "");
			return -EINVAL;
		}
	}
	m->um_lines[m->um_n++] = (struct uns_line){ns, host, count};
	if (!m->um_opt) {
		m->um_opt = opt;
		m->um_arg = arg;
	}
	return 0;
}

/* Three unsigned numbers separated by ':' (s is modified). */
static int uns_three(char *s, uint32_t v[3])
{
	char *save = NULL, *f;
	uint64_t n;
	int i = 0;

	if (strstr(s, "::") || s[0] == ':' || s[strlen(s) - 1] == ':')
		return -EINVAL;
	for (f = strtok_r(s, ":", &save); f; f = strtok_r(NULL, ":", &save)) {
		if (i == 3 || bh_parse_u64(f, 0, UNS_ID_LIMIT, &n) < 0)
			return -EINVAL;
		v[i++] = (uint32_t)n;
	}
	return i == 3 ? 0 : -EINVAL;
}

/* libvirt's and virtiofsd's form: ":NS_ID:HOST_ID:COUNT:". */
int uns_parse_idmap(const char *opt, const char *arg, struct uns_map *m)
{
	char buf[96];
	size_t len = strlen(arg);
	uint32_t v[3];

	if (len < 7 || len >= sizeof(buf) || arg[0] != ':' || arg[len - 1] != ':') {
		fprintf(stderr, "bulkheadd: invalid %s '%s': expected :NS_ID:HOST_ID:COUNT:\n", opt,
			arg);
		return -EINVAL;
	}
	memcpy(buf, arg + 1, len - 2);
	buf[len - 2] = '\0';
	if (uns_three(buf, v) < 0) {
		fprintf(stderr,
			"bulkheadd: invalid %s '%s': expected :NS_ID:HOST_ID:COUNT: "
			"with decimal ids\n",
			opt, arg);
		return -EINVAL;
	}
	return uns_add(opt, arg, m, v[0], v[1], v[2]);
}

/*
 * virtiofsd's forms. Only map:GUEST:HOST:COUNT fits: our translation is the
 * workers' user namespace, one-to-one in both directions; an id outside it
 * shows as the overflow id (65534) and cannot be set by the guest.
 */
int uns_parse_translate(const char *opt, const char *arg, struct uns_map *m)
{
	static const char *const other[] = {
	    "guest:", "host:", "squash-guest:", "squash-host:", "forbid-guest:"};
	char buf[96];
	uint32_t v[3];

	if (strncmp(arg, "map:", 4) != 0) {
		for (size_t i = 0; i < BH_ARRAY_SIZE(other); i++)
			if (strncmp(arg, other[i], strlen(other[i])) == 0) {
				fprintf(
				    stderr,
				    "bulkheadd: %s '%s' is not supported: ids are translated "
				    "by the workers' user namespace, whose maps are one-to-one; "
				    "use map:GUEST:HOST:COUNT (ids outside every map appear as "
				    "65534 and cannot be set by the guest)\n",
				    opt, arg);
				return -EINVAL;
			}
		fprintf(stderr, "bulkheadd: invalid %s '%s': expected map:GUEST:HOST:COUNT\n", opt,
			arg);
		return -EINVAL;
	}
	if (strlen(arg + 4) >= sizeof(buf)) {
		fprintf(stderr, "bulkheadd: invalid %s '%s'\n", opt, arg);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", arg + 4);
	if (uns_three(buf, v) < 0) {
		fprintf(stderr,
			"bulkheadd: invalid %s '%s': expected map:GUEST:HOST:COUNT "
			"with decimal ids\n",
			opt, arg);
		return -EINVAL;
	}
	return uns_add(opt, arg, m, v[0], v[1], v[2]);
}

/*
 * guest -> ns (translate) followed by ns -> host (the namespace map), as
 * one map guest -> host: virtiofsd's two layers folded into the one the
 * kernel applies.
 */
static int uns_compose(const struct uns_map *tr, const struct uns_map *base, struct uns_map *out)
{
	out->um_n = 0;
	for (unsigned i = 0; i < tr->um_n; i++) {
		const struct uns_line *t = &tr->um_lines[i];
		unsigned hits = 0;

		for (unsigned j = 0; j < base->um_n; j++) {
			const struct uns_line *b = &base->um_lines[j];
			uint64_t lo = t->ul_host > b->ul_ns ? t->ul_host : b->ul_ns;
			uint64_t te = (uint64_t)t->ul_host + t->ul_count;
			uint64_t be = (uint64_t)b->ul_ns + b->ul_count;
			uint64_t hi = te < be ? te : be;

			if (lo >= hi)
				continue;
			if (out->um_n == UNS_MAX_LINES) {
				log_warnx("%s: the translated map needs more than %d lines",
					  tr->um_opt, UNS_MAX_LINES);
				return -EINVAL;
			}
			out->um_lines[out->um_n++] = (struct uns_line){
			    (uint32_t)(t->ul_ns + (lo - t->ul_host)),
			    (uint32_t)(b->ul_host + (lo - b->ul_ns)), (uint32_t)(hi - lo)};
			hits++;
		}
		if (!hits) {
			log_warnx("%s map:%u:%u:%u: no id of %u..%u exists in the workers' "
				  "namespace (see --uid-map/--gid-map)",
				  tr->um_opt, t->ul_ns, t->ul_host, t->ul_count, t->ul_host,
				  (unsigned)(t->ul_host + t->ul_count - 1));
			return -EINVAL;
		}
	}
	out->um_opt = tr->um_opt;
	out->um_arg = tr->um_arg;
	return 0;
}

/* The id a worker takes in its namespace: 0 if mapped, else the first one. */
static uint32_t uns_ns_id(const struct uns_map *m)
{
	for (unsigned i = 0; i < m->um_n; i++)
		if (m->um_lines[i].ul_ns == 0)
			return 0;
	return m->um_lines[0].ul_ns;
}

static int uns_final(struct parent_env *env, const struct uns_map *given, const struct uns_map *tr,
		     uint32_t self, struct uns_map *out)
{
	struct uns_map base;

	if (given->um_n) {
		base = *given;
	} else {
		/* Root: identity; unprivileged: our own id as the namespace's 0. */
		memset(&base, 0, sizeof(base));
		base.um_n = 1;
		base.um_lines[0] = env->pe_unpriv ? (struct uns_line){0, self, 1}
						  : (struct uns_line){0, 0, UNS_ID_LIMIT};
	}
	if (tr->um_n) {
		if (uns_compose(tr, &base, out) < 0)
			return -EINVAL;
	} else {
		*out = base;
	}
	if (!out->um_opt) {
		out->um_opt = given->um_opt;
		out->um_arg = given->um_arg;
	}
	return 0;
}

/* Can an unprivileged process write m itself? Only one line of its own id
 * with a count of 1 (user_namespaces(7)); anything else needs the tool. */
static bool uns_own_line(const struct uns_map *m, uint32_t self)
{
	return m->um_n == 1 && m->um_lines[0].ul_host == self && m->um_lines[0].ul_count == 1;
}

void uns_describe(const struct uns_map *m, char *buf, size_t len)
{
	buf[0] = '\0';
	for (unsigned i = 0; i < m->um_n; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%u->%u(%u)", i ? " " : "",
			 m->um_lines[i].ul_ns, m->um_lines[i].ul_host, m->um_lines[i].ul_count);
}

/* "allow" or "deny" of pid's namespace, for the log; "?" if unreadable. */
static void uns_setgroups_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	if (n <= 0)
		n = snprintf(buf, len, "?");
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* One write: the kernel takes a map file in a single write only. */
static int uns_write_file(pid_t pid, const char *file, const char *text)
{
	char path[64];
	int fd, r = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		r = errno ? -errno : -EIO;
	close(fd);
	return r;
}

static void uns_format(const struct uns_map *m, char *buf, size_t len)
{
	buf[0] = '\0';
	for (unsigned i = 0; i < m->um_n; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%u %u %u\n", m->um_lines[i].ul_ns,
			 m->um_lines[i].ul_host, m->um_lines[i].ul_count);
}

/* Does /proc/PID/<file> hold exactly the lines of m (in any order: the
 * kernel sorts a long map)? 0, or -EPROTO with why filled. */
static int uns_check(pid_t pid, const char *file, const struct uns_map *m, char *why, size_t len)
{
	char path[64], line[128], want[UNS_MAX_LINES * 40], got[UNS_MAX_LINES * 40] = "";
	unsigned n = 0, a, b, c;
	bool ok = true;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	if (!(f = fopen(path, "re"))) {
		snprintf(why, len, "cannot read its %s back: %s", file, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		bool found = false;

		if (sscanf(line, "%u %u %u", &a, &b, &c) != 3) {
			ok = false;
			continue;
		}
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%u->%u(%u)", n ? " " : "",
			 a, b, c);
		for (unsigned i = 0; i < m->um_n && !found; i++)
			found = m->um_lines[i].ul_ns == a && m->um_lines[i].ul_host == b &&
				m->um_lines[i].ul_count == c;
		ok = ok && found;
		n++;
	}
	fclose(f);
	if (ok && n == m->um_n)
		return 0;
	uns_describe(m, want, sizeof(want));
	snprintf(why, len, "its %s is %s, not the map written (%s)", file, n ? got : "empty", want);
	return -EPROTO;
}

/* Map k of pid: by the id-map helper, or ourselves. */
static int uns_write_map(const struct parent_env *env, pid_t pid, enum uns_kind k, char *why,
			 size_t len)
{
	const char *file = k == UNS_UID ? "uid_map" : "gid_map";
	char text[UNS_MAX_LINES * 40];
	int r;

	if (env->pe_map_tool[k][0])
		return mapper_map(env, k, pid, why, len);
	/* An unprivileged gid map of our own requires it; it also keeps the
	 * worker from dropping a supplementary group that denies access
	 * somewhere. (newgidmap writes it itself, by /etc/subgid's rules:
	 * "deny" unless a range it maps is delegated there.) */
	if (k == UNS_GID && env->pe_unpriv && (r = uns_write_file(pid, "setgroups", "deny")) < 0) {
		snprintf(why, len, "setgroups: %s", strerror(-r));
		return r;
	}
	uns_format(k == UNS_UID ? &env->pe_uid_map : &env->pe_gid_map, text, sizeof(text));
	if ((r = uns_write_file(pid, file, text)) < 0)
		snprintf(why, len, "%s: %s", file, strerror(-r));
	return r;
}

/*
 * uid map, then gid map, then both read back: whoever wrote them, the
 * namespace has exactly our maps or the worker is not released (the
 * worker's own check follows: its setresuid/setresgid to the namespace's
 * ids fail on an unmapped id). *failed: the map that failed.
 */
static int uns_write_kinds(const struct parent_env *env, pid_t pid, char *why, size_t len,
			   enum uns_kind *failed)
{
	int r;

	for (int k = UNS_UID; k <= UNS_GID; k++) {
		*failed = (enum uns_kind)k;
		if ((r = uns_write_map(env, pid, (enum uns_kind)k, why, len)) < 0)
			return r;
	}
	for (int k = UNS_UID; k <= UNS_GID; k++) {
		*failed = (enum uns_kind)k;
		if ((r = uns_check(pid, k == UNS_UID ? "uid_map" : "gid_map",
				   k == UNS_UID ? &env->pe_uid_map : &env->pe_gid_map, why, len)) <
		    0)
			return r;
	}
	return 0;
}

int uns_write_maps(const struct parent_env *env, pid_t pid, char *why, size_t len)
{
	enum uns_kind k;

	return uns_write_kinds(env, pid, why, len, &k);
}

/*
 * Before anything exists: maps the tools write are written, exactly as a
 * worker's will be, to a child cloned into a new user namespace that only
 * waits, then exits. newuidmap/newgidmap refusing the ranges (no entry in
 * /etc/subuid or /etc/subgid for our user, ids outside it) stops start-up
 * here with their exit status and output, not at the guest's first mount.
 */
static int uns_probe(struct parent_env *env)
{
	char why[900], sg[16] = "?", go;
	enum uns_kind k;
	int sync[2], r, st;
	pid_t pid;

	if (pipe2(sync, O_CLOEXEC) < 0)
		return -errno;
	pid = (pid_t)syscall(SYS_clone, SIGCHLD | CLONE_NEWUSER, NULL, NULL, NULL, NULL);
	if (pid == 0) {
		/* end of file when we are done with it, or gone */
		close(sync[1]);
		while (read(sync[0], &go, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	r = pid < 0 ? -errno : 0;
	close(sync[0]);
	if (r < 0) {
		log_warn("cannot clone into a new user namespace to check the id maps (are user "
			 "namespaces enabled? see user.max_user_namespaces)");
	} else if ((r = uns_write_kinds(env, pid, why, sizeof(why), &k)) < 0) {
		const struct uns_map *m = k == UNS_UID ? &env->pe_uid_map : &env->pe_gid_map;
		const struct passwd *pw = getpwuid(geteuid());
		char hint[200] = "";

		if (env->pe_map_tool[k][0] && r == -EPERM) /* the tool said no */
			snprintf(hint, sizeof(hint),
				 "; the host ids must be delegated to user %s in %s (see %s(5))",
				 pw ? pw->pw_name : "?",
				 k == UNS_UID ? "/etc/subuid" : "/etc/subgid",
				 k == UNS_UID ? "subuid" : "subgid");
		log_warnx("%s: %s%s; not starting", m->um_opt ? m->um_opt : "the default map", why,
			  hint);
	} else {
		uns_setgroups_of(pid, sg, sizeof(sg));
	}
	close(sync[1]);
	if (pid > 0)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	if (r == 0 && env->pe_map_tool[UNS_UID][0] && env->pe_map_tool[UNS_GID][0])
		log_info("uid and gid maps written by %s and %s, checked on a new user namespace; "
			 "setgroups there: %s",
			 env->pe_map_tool[UNS_UID], env->pe_map_tool[UNS_GID], sg);
	else if (r == 0)
		log_info(
		    "%s map written by %s, checked on a new user namespace; setgroups there: %s",
		    env->pe_map_tool[UNS_UID][0] ? "uid" : "gid",
		    env->pe_map_tool[UNS_UID][0] ? env->pe_map_tool[UNS_UID]
						 : env->pe_map_tool[UNS_GID],
		    sg);
	return r;
}

int uns_plan(struct parent_env *env)
{
	const struct parent_conf *c = env->pe_conf;
	int maps =
	    c->pc_uid_map.um_n || c->pc_gid_map.um_n || c->pc_tr_uid.um_n || c->pc_tr_gid.um_n;
	char um[UNS_MAX_LINES * 40], gm[UNS_MAX_LINES * 40];
	bool need[2];
	int r;

	env->pe_unpriv = geteuid() != 0;
	if (maps && c->pc_sandbox != IPC_SBX_NAMESPACE) {
		log_warnx("--uid-map, --gid-map, --translate-uid and --translate-gid need "
			  "--sandbox=namespace (they are the workers' user namespace)");
		return -EINVAL;
	}
	capng_get_caps_process();
	if (env->pe_unpriv && c->pc_sandbox == IPC_SBX_CHROOT &&
	    !capng_have_capability(CAPNG_EFFECTIVE, CAP_SYS_CHROOT)) {
		log_warnx("--sandbox=chroot needs CAP_SYS_CHROOT, which this unprivileged "
			  "bulkheadd (uid %u) lacks; use --sandbox=namespace (user namespaces)",
			  (unsigned)geteuid());
		return -EPERM;
	}
	env->pe_userns = c->pc_sandbox == IPC_SBX_NAMESPACE && (env->pe_unpriv || maps);
	if (env->pe_unpriv)
		log_info("running unprivileged (uid %u, gid %u): no capabilities to drop%s",
			 (unsigned)geteuid(), (unsigned)getegid(),
			 env->pe_userns ? "; each worker is root of its own user namespace" : "");
	if (!env->pe_userns)
		return 0;
	if (uns_final(env, &c->pc_uid_map, &c->pc_tr_uid, (uint32_t)geteuid(), &env->pe_uid_map) <
		0 ||
	    uns_final(env, &c->pc_gid_map, &c->pc_tr_gid, (uint32_t)getegid(), &env->pe_gid_map) <
		0)
		return -EINVAL;
	env->pe_ns_uid = uns_ns_id(&env->pe_uid_map);
	env->pe_ns_gid = uns_ns_id(&env->pe_gid_map);
	uns_describe(&env->pe_uid_map, um, sizeof(um));
	uns_describe(&env->pe_gid_map, gm, sizeof(gm));
	log_info("workers run in user namespaces: uid map %s, gid map %s (ns->host(count)); "
		 "other host ids appear as 65534",
		 um, gm);
	/* Root writes any map itself; unprivileged, what it may not write
	 * goes through newuidmap/newgidmap, checked now. */
	need[UNS_UID] = env->pe_unpriv && !uns_own_line(&env->pe_uid_map, (uint32_t)geteuid());
	need[UNS_GID] = env->pe_unpriv && !uns_own_line(&env->pe_gid_map, (uint32_t)getegid());
	if (!need[UNS_UID] && !need[UNS_GID])
		return 0;
	if ((r = mapper_start(env, need)) < 0)
		return r;
	return uns_probe(env);
}

int uns_child_enter(const struct parent_env *env, int syncfd)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	char go;
	uid_t u = env->pe_ns_uid;
	gid_t g = env->pe_ns_gid;

	/* Nothing may run with the overflow ids: exec would drop every
	 * capability, and files would be opened as nobody. */
	if (read(syncfd, &go, 1) != 1)
		return -EPIPE;
	close(syncfd);
	if (!env->pe_unpriv && setgroups(0, NULL) < 0)
		return -errno;
	if (setresgid(g, g, g) < 0 || setresuid(u, u, u) < 0)
		return -errno;
	if (u == 0)
		return 0; /* exec as root of the namespace keeps the full set */
	/* Raw capget/capset: libcap-ng would read /proc/<pid>, and our pid
	 * means another process in the parent's /proc. */
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	for (size_t i = 0; i < BH_ARRAY_SIZE(uns_ambient_caps); i++)
		data[uns_ambient_caps[i] / 32].inheritable |= 1u << (uns_ambient_caps[i] % 32);
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	for (size_t i = 0; i < BH_ARRAY_SIZE(uns_ambient_caps); i++)
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, uns_ambient_caps[i], 0, 0) < 0)
			return -errno;
	return 0;
}

/* The child of uns_make_fd: wait for its maps, take the workers' ids, make
 * the mount, send it, exit. Reports nothing itself: the parent logs. */
static void __attribute__((noreturn))
uns_helper(const struct parent_env *env, uns_make_fn make, int sock, int syncfd)
{
	struct iovec iov;
	const char *step = "";
	int r, mnt;

	if ((r = uns_child_enter(env, syncfd)) < 0)
		_exit(100);
	mnt = make(env, &step);
	r = mnt < 0 ? -mnt : 0;
	iov = (struct iovec){&r, sizeof(r)};
	if (bh_sendmsg_fds(sock, &iov, 1, &mnt, mnt < 0 ? 0 : 1) < 0)
		_exit(101);
	_exit(0);
}

int uns_make_fd(const struct parent_env *env, uns_make_fn make)
{
	struct pollfd p;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov;
	struct msghdr mh = {0};
	int sv[2], sync[2], err = 0, fd = -1, st;
	char why[900];
	bool bad = false;
	ssize_t n;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (pipe2(sync, O_CLOEXEC) < 0) {
		err = -errno;
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	pid = (pid_t)syscall(SYS_clone, SIGCHLD | CLONE_NEWUSER | CLONE_NEWNS, NULL, NULL, NULL,
			     NULL);
	if (pid == 0) {
		close(sv[0]);
		close(sync[1]);
		uns_helper(env, make, sv[1], sync[0]);
	}
	err = pid < 0 ? -errno : 0;
	close(sv[1]);
	close(sync[0]);
	if (err == 0 && (err = uns_write_maps(env, pid, why, sizeof(why))) < 0)
		log_warnx("the mount helper (pid %d): %s", (int)pid, why);
	else if (err == 0 && write(sync[1], "g", 1) != 1)
		err = -EPIPE;
	close(sync[1]);
	if (err == 0) {
		p = (struct pollfd){sv[0], POLLIN, 0};
		if (poll(&p, 1, UNS_HELPER_TIMEOUT_MS) != 1) {
			err = -ETIMEDOUT;
		} else {
			iov = (struct iovec){&err, sizeof(err)};
			mh.msg_iov = &iov;
			mh.msg_iovlen = 1;
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
			n = recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC);
			if (n != (ssize_t)sizeof(err))
				err = -EPROTO;
			else if (bh_cmsg_take_fds(&mh, &fd, 1, &bad) != 1 || bad)
				err = err ? -err : -EPROTO;
		}
	}
	close(sv[0]);
	if (pid > 0) {
		if (err < 0)
			kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	if (err < 0) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	return fd;
}
