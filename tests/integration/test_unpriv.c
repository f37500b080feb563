/*
 * test_unpriv.c - bulkheadd run by an unprivileged user: a dedicated system
 * user (bhtest-unpriv; created for the run and removed after it if absent
 * before) owns the share, the build tree's
 * bulkheadd runs as that user with no capabilities, and each worker is root
 * of its own user namespace mapped to that user. Checked through the test
 * front end and /proc: the map as the guest sees it (the user's files as
 * 0, other owners as the overflow id 65534), reading, the worker's host
 * uid, no_new_privs, seccomp and uid_map, --translate-uid folded into the
 * map, a root parent with --uid-map, and start-up errors naming the option.
 * Runs in: the test process (root); bulkheadd is a child that drops to the
 * test user before exec.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

#define UP_USER	    "bhtest-unpriv"
#define UP_OVERFLOW 65534u
#define UP_CONTENT  "owned by the test user\n"
#define UP_WORKER_CAPS                                                                             \
	((1ull << CAP_CHOWN) | (1ull << CAP_DAC_OVERRIDE) | (1ull << CAP_FOWNER) |                 \
	 (1ull << CAP_FSETID) | (1ull << CAP_SETGID) | (1ull << CAP_SETUID))

static uid_t up_uid;
static gid_t up_gid;

/* ---- helpers ---- */

/*
 * The dedicated user. Tests run in parallel processes, so the runner creates
 * it once before any test starts (tests only look it up), and removes it
 * after the last one if it was not there before: every run starts from the
 * same state, whether or not the machine ever ran this test.
 */
static int up_created, up_useradd_status = -1;

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	(void)set;
	if (getpwnam(UP_USER))
		return;
	up_useradd_status = system("useradd --system --user-group --no-create-home "
				   "--shell /usr/sbin/nologin " UP_USER " >/dev/null 2>&1");
	up_created = WIFEXITED(up_useradd_status) && WEXITSTATUS(up_useradd_status) == 0;
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	if (up_created && system("userdel " UP_USER " >/dev/null 2>&1") != 0)
		fprintf(stderr, "test_unpriv: userdel " UP_USER " failed\n");
}

static void up_user(void)
{
	struct passwd *pw = getpwnam(UP_USER);

	cr_assert(pw, "no user " UP_USER " (useradd: wait status %d)", up_useradd_status);
	cr_assert_neq(pw->pw_uid, 0);
	up_uid = pw->pw_uid;
	up_gid = pw->pw_gid;
}

static void up_write(const char *name, const char *text, uid_t uid, gid_t gid)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", it_share, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "create %s", p);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cr_assert_eq(chown(p, uid, gid), 0);
}

/* A share the user owns, with one file of the user's and one of root's. */
static void up_share(void)
{
	char p[PATH_MAX];

	cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "unpriv-share"), 0);
	cr_assert_eq(chmod(it_share, 0755), 0);
	cr_assert_eq(chown(it_share, up_uid, up_gid), 0);
	up_write("mine.txt", UP_CONTENT, up_uid, up_gid);
	up_write("roots.txt", "root's\n", 0, 0);
	snprintf(p, sizeof(p), "%s/sub", it_share);
	cr_assert_eq(mkdir(p, 0755), 0);
	cr_assert_eq(chown(p, up_uid, up_gid), 0);
}

/*
 * bulkheadd finds its worker and policies by the paths of its build tree
 * (BH_BUILD_DIR, BH_SRC_POLICY_DIR), which the user may not be allowed to
 * reach: a clone under /root (mode 0700). In the daemon's own mount
 * namespace, every topmost directory on those paths that others cannot
 * search gets a tmpfs (0755) over it holding only the way down, and the
 * trees are mounted back at their own paths: the same names, reachable,
 * the host's mounts untouched. 0 or -1. Runs in the child, as root.
 */
static int up_expose_trees(void)
{
	static const char *const want[] = {BH_BUILD_DIR, BH_SRC_POLICY_DIR};
	char real[2][PATH_MAX], top[2][PATH_MAX];
	int tree[2] = {-1, -1};

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;
	/* first every path and its tree, before any tmpfs hides them */
	for (int i = 0; i < 2; i++) {
		struct stat st;

		top[i][0] = '\0';
		if (!realpath(want[i], real[i]))
			return -1;
		for (char *p = strchr(real[i] + 1, '/'); p; p = strchr(p + 1, '/')) {
			*p = '\0';
			if (stat(real[i], &st) < 0)
				return -1;
			if (!(st.st_mode & S_IXOTH) && !top[i][0])
				strcpy(top[i], real[i]); /* both PATH_MAX */
			*p = '/';
		}
		if (top[i][0] &&
		    (tree[i] = open_tree(AT_FDCWD, real[i], OPEN_TREE_CLONE | AT_RECURSIVE)) < 0)
			return -1;
	}
	/* the policies inside the build tree (an in-tree build) come with it */
	if (tree[0] >= 0 && tree[1] >= 0 && strncmp(real[1], real[0], strlen(real[0])) == 0 &&
	    real[1][strlen(real[0])] == '/') {
		close(tree[1]);
		tree[1] = -1;
	}
	for (int i = 0; i < 2; i++) {
		if (tree[i] < 0)
			continue;
		/* one tmpfs for two paths below the same directory */
		if (i == 0 || tree[0] < 0 || strcmp(top[i], top[0]) != 0)
			if (mount("tmpfs", top[i], "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
				return -1;
		/* top is a strict ancestor: real[i][strlen(top[i])] is a '/' */
		for (char *p = strchr(real[i] + strlen(top[i]) + 1, '/'); p;
		     p = strchr(p + 1, '/')) {
			*p = '\0';
			if (mkdir(real[i], 0755) < 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
		if (mkdir(real[i], 0755) < 0 && errno != EEXIST)
			return -1;
		if (move_mount(tree[i], "", AT_FDCWD, real[i], MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return -1;
		close(tree[i]);
	}
	return 0;
}

/* In a child: become the test user for good (no groups, no capabilities),
 * with the build tree within its reach. */
static void up_drop(void)
{
	if (up_expose_trees() < 0) {
		dprintf(2, "test_unpriv: exposing the build tree: %s\n", strerror(errno));
		_exit(126);
	}
	if (setgroups(0, NULL) < 0 || setresgid(up_gid, up_gid, up_gid) < 0 ||
	    setresuid(up_uid, up_uid, up_uid) < 0)
		_exit(126);
}

/* Start bulkheadd as the user (as root with as_root) on a socket in a
 * directory the user owns; extra is NULL-terminated. */
static void up_start(const char *const *extra, int as_root)
{
	char sock[PATH_MAX + 32], share[PATH_MAX + 32];
	char *argv[16];
	struct vufe_opts o;
	int n = 0;

	memset(&it_d, 0, sizeof(it_d));
	cr_assert_eq(hx_mkdtemp(it_d.hd_dir, sizeof(it_d.hd_dir), "unpriv"), 0);
	cr_assert_eq(chown(it_d.hd_dir, up_uid, up_gid), 0);
	snprintf(it_d.hd_sock, sizeof(it_d.hd_sock), "%s/s", it_d.hd_dir);
	snprintf(it_d.hd_log, sizeof(it_d.hd_log), "%s/stderr.log", it_d.hd_dir);
	snprintf(it_d.hd_share, sizeof(it_d.hd_share), "%s", it_share);
	snprintf(sock, sizeof(sock), "--socket-path=%s", it_d.hd_sock);
	snprintf(share, sizeof(share), "--shared-dir=%s", it_share);
	argv[n++] = (char *)BH_BUILD_DIR "/daemon/bulkheadd";
	argv[n++] = sock;
	argv[n++] = share;
	argv[n++] = (char *)"--log-level=debug";
	for (int i = 0; extra && extra[i] && n < 15; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;

	if (hx_spawn_as(&it_d, argv, it_d.hd_dir, as_root ? NULL : up_drop) < 0) {
		hx_log_dump(&it_d);
		cr_assert_fail("bulkheadd did not create its socket");
	}
	vufe_opts_default(&o);
	o.nqueues = 2;
	it_fe = it_connect(&o);
	if (it_up_init(it_fe) != 0) {
		hx_log_dump(&it_d);
		cr_assert_fail("INIT failed");
	}
}

static void up_setup(void)
{
	up_user();
	up_share();
	up_start(NULL, 0);
}

static void up_setup_translate(void)
{
	static const char *const extra[] = {"--translate-uid=map:1000:0:1",
					    "--translate-gid=map:1000:0:1", NULL};

	up_user();
	up_share();
	up_start(extra, 0);
}

static void up_setup_root_with_map(void)
{
	static char um[64], gm[64];
	static const char *extra[] = {um, gm, NULL};

	up_user();
	up_share();
	snprintf(um, sizeof(um), "--uid-map=:0:%u:1:", (unsigned)up_uid);
	snprintf(gm, sizeof(gm), "--gid-map=:0:%u:1:", (unsigned)up_gid);
	up_start(extra, 1);
}

static struct fuse_attr up_attr(const char *name)
{
	struct fuse_entry_out e;

	memset(&e, 0, sizeof(e));
	cr_assert_eq(vufe_fuse_lookup(it_fe, 1, 1, name, &e), 0, "LOOKUP %s", name);
	return e.attr;
}

/* The daemon's workers (its children). */
static int up_workers(pid_t *out, int want)
{
	cr_assert_eq(hx_wait_children(it_d.hd_pid, want, 5000), 0, "expected %d workers", want);
	return hx_children(it_d.hd_pid, out, 8);
}

/* A "Key:\tvalue" line of /proc/PID/status (value without the key). */
static void up_status(pid_t pid, const char *key, char *val, size_t len)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	cr_assert(f, "open %s", path);
	val[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			char *v = line + kl + 1;

			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = '\0';
			snprintf(val, len, "%s", v);
			found = 1;
			break;
		}
	fclose(f);
	cr_assert(found, "no %s in the status of %d", key, (int)pid);
}

/* Every one of the n workers in w runs as the test user (real, effective,
 * saved and file system uid). */
static void up_expect_user(const pid_t *w, int n)
{
	char v[128], want[64];

	snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", (unsigned)up_uid, (unsigned)up_uid,
		 (unsigned)up_uid, (unsigned)up_uid);
	for (int i = 0; i < n; i++) {
		up_status(w[i], "Uid", v, sizeof(v));
		cr_expect_str_eq(v, want, "worker %d: Uid %s", (int)w[i], v);
	}
}

/* Does /proc/PID/<file> hold the line "ns host count"? */
static int up_has_map_line(pid_t pid, const char *file, unsigned ns, unsigned host, unsigned count)
{
	char path[64], line[128];
	unsigned a, b, c;
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "re");
	cr_assert(f, "open %s", path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%u %u %u", &a, &b, &c) == 3 && a == ns && b == host && c == count)
			found = 1;
	fclose(f);
	return found;
}

/* Run bulkheadd as the user to completion: exit code, output in out. */
static int up_run(const char *const *extra, char *out, size_t cap)
{
	char share[PATH_MAX + 32], sock[PATH_MAX + 32], dir[256];
	char *argv[16];
	int n = 0, r;

	cr_assert_eq(hx_mkdtemp(dir, sizeof(dir), "unpriv-run"), 0);
	cr_assert_eq(chown(dir, up_uid, up_gid), 0);
	snprintf(share, sizeof(share), "--shared-dir=%s", it_share);
	snprintf(sock, sizeof(sock), "--socket-path=%s/s", dir);
	argv[n++] = (char *)BH_BUILD_DIR "/daemon/bulkheadd";
	argv[n++] = share;
	argv[n++] = sock;
	for (int i = 0; extra[i] && n < 15; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	r = hx_run_capture(argv, dir, up_drop, out, cap);
	hx_rmtree(dir);
	cr_assert_geq(r, 0, "run bulkheadd: %s", strerror(-r));
	return r;
}

/* ---- an unprivileged daemon with the default map ---- */

TestSuite(unpriv, .init = up_setup, .fini = it_teardown, .timeout = 60);

ITEST(unpriv, users_files_appear_as_root_and_other_owners_as_the_overflow_id)
{
	struct fuse_attr_out ra;
	struct fuse_attr a;

	a = up_attr("mine.txt");
	cr_expect_eq(a.uid, 0, "uid %u", a.uid);
	cr_expect_eq(a.gid, 0, "gid %u", a.gid);
	a = up_attr("sub");
	cr_expect_eq(a.uid, 0);
	a = up_attr("roots.txt");
	cr_expect_eq(a.uid, UP_OVERFLOW, "uid %u", a.uid);
	cr_expect_eq(a.gid, UP_OVERFLOW, "gid %u", a.gid);
	cr_assert_eq(vufe_fuse_getattr(it_fe, 1, 1, &ra), 0);
	cr_expect_eq(ra.attr.uid, 0, "the share root: uid %u", ra.attr.uid);
}

/*
 * What the guest's root creates lands on the host owned by the user that
 * runs bulkheadd: namespace uid/gid 0 map to it.
 */
ITEST(unpriv, files_the_guest_creates_belong_to_the_user_on_the_host)
{
	struct fuse_create_in ci = {.flags = O_WRONLY | O_CREAT | O_EXCL, .mode = S_IFREG | 0644};
	struct fuse_mkdir_in mi = {.mode = 0755};
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out;
	struct fuse_entry_out e;
	char p[PATH_MAX];
	struct stat st;
	uint32_t n = 0;

	vufe_fuse_set_creds(0, 0);
	cr_assert_eq(vufe_fuse(it_fe, 1, FUSE_CREATE, 1, &ci, sizeof(ci), "by-guest.txt",
			       sizeof("by-guest.txt"), &out, sizeof(out), &n, 0),
		     0);
	cr_expect_eq(out.e.attr.uid, 0, "guest view: uid %u", out.e.attr.uid);
	cr_assert_eq(vufe_fuse(it_fe, 1, FUSE_MKDIR, 1, &mi, sizeof(mi), "dir-by-guest",
			       sizeof("dir-by-guest"), &e, sizeof(e), &n, 0),
		     0);
	snprintf(p, sizeof(p), "%s/by-guest.txt", it_share);
	cr_assert_eq(lstat(p, &st), 0, "%s: %s", p, strerror(errno));
	cr_expect_eq(st.st_uid, up_uid, "host owner %u, want %u", (unsigned)st.st_uid,
		     (unsigned)up_uid);
	cr_expect_eq(st.st_gid, up_gid, "host group %u, want %u", (unsigned)st.st_gid,
		     (unsigned)up_gid);
	snprintf(p, sizeof(p), "%s/dir-by-guest", it_share);
	cr_assert_eq(lstat(p, &st), 0, "%s: %s", p, strerror(errno));
	cr_expect(S_ISDIR(st.st_mode));
	cr_expect_eq(st.st_uid, up_uid, "host owner %u, want %u", (unsigned)st.st_uid,
		     (unsigned)up_uid);
}

ITEST(unpriv, reading_the_users_file_returns_its_content)
{
	char buf[256];
	uint64_t nid, fh;
	uint32_t n = 0;

	nid = it_lookup(it_fe, 1, "mine.txt");
	cr_assert_neq(nid, 0);
	cr_assert_eq(vufe_fuse_open(it_fe, 1, nid, O_RDONLY, &fh), 0);
	cr_assert_eq(vufe_fuse_read(it_fe, 1, nid, fh, 0, sizeof(buf), buf, &n, 0), 0);
	cr_expect_eq(n, strlen(UP_CONTENT));
	cr_expect_eq(memcmp(buf, UP_CONTENT, strlen(UP_CONTENT)), 0);
}

ITEST(unpriv, worker_runs_as_the_user_with_no_new_privs_seccomp_and_the_map)
{
	char v[128], want[64], a[128], b[128], p[64];
	pid_t w[8];
	int n = up_workers(w, 2);
	ssize_t l;

	cr_assert_eq(n, 2);
	snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", (unsigned)up_uid, (unsigned)up_uid,
		 (unsigned)up_uid, (unsigned)up_uid);
	for (int i = 0; i < n; i++) {
		up_status(w[i], "Uid", v, sizeof(v));
		cr_expect_str_eq(v, want, "worker %d: Uid %s", (int)w[i], v);
		up_status(w[i], "NoNewPrivs", v, sizeof(v));
		cr_expect_str_eq(v, "1");
		up_status(w[i], "Seccomp", v, sizeof(v));
		cr_expect_str_eq(v, "2");
		/* the passthrough set, but held in its own namespace only */
		up_status(w[i], "CapEff", v, sizeof(v));
		cr_expect_eq(strtoull(v, NULL, 16), UP_WORKER_CAPS, "CapEff %s", v);
		up_status(w[i], "CapBnd", v, sizeof(v));
		cr_expect_eq(strtoull(v, NULL, 16), 0, "CapBnd %s", v);
		cr_expect(up_has_map_line(w[i], "uid_map", 0, up_uid, 1), "uid_map of %d",
			  (int)w[i]);
		cr_expect(up_has_map_line(w[i], "gid_map", 0, up_gid, 1), "gid_map of %d",
			  (int)w[i]);
		snprintf(p, sizeof(p), "/proc/%d/ns/user", (int)w[i]);
		cr_assert_gt(l = readlink(p, a, sizeof(a) - 1), 0);
		a[l] = '\0';
		snprintf(p, sizeof(p), "/proc/%d/ns/user", (int)it_d.hd_pid);
		cr_assert_gt(l = readlink(p, b, sizeof(b) - 1), 0);
		b[l] = '\0';
		cr_expect_str_neq(a, b, "worker %d shares the parent's user namespace", (int)w[i]);
	}
	/* the parent: the user, no capabilities at all, and it says how it runs */
	up_status(it_d.hd_pid, "CapEff", v, sizeof(v));
	cr_expect_eq(strtoull(v, NULL, 16), 0, "parent CapEff %s", v);
	up_status(it_d.hd_pid, "Seccomp", v, sizeof(v));
	cr_expect_str_eq(v, "2");
	cr_expect(hx_log_contains(&it_d, "running unprivileged"));
}

/* ---- --translate-uid: guest ids other than the namespace's 0 ---- */

TestSuite(unpriv_translate, .init = up_setup_translate, .fini = it_teardown, .timeout = 60);

ITEST(unpriv_translate, translate_map_shows_the_users_files_as_the_guest_id)
{
	struct fuse_attr a;
	pid_t w[8];
	int n;

	a = up_attr("mine.txt");
	cr_expect_eq(a.uid, 1000, "uid %u", a.uid);
	cr_expect_eq(a.gid, 1000, "gid %u", a.gid);
	a = up_attr("roots.txt");
	cr_expect_eq(a.uid, UP_OVERFLOW);
	cr_expect_neq(it_lookup(it_fe, 1, "sub"), 0);
	n = up_workers(w, 2);
	for (int i = 0; i < n; i++) {
		char v[64];

		cr_expect(up_has_map_line(w[i], "uid_map", 1000, up_uid, 1), "uid_map of %d",
			  (int)w[i]);
		/* not root of its namespace: the set came across exec as ambient
		 * capabilities, and the sandbox cut it to the passthrough set */
		up_status(w[i], "CapEff", v, sizeof(v));
		cr_expect_eq(strtoull(v, NULL, 16), UP_WORKER_CAPS, "CapEff %s", v);
		up_status(w[i], "CapAmb", v, sizeof(v));
		cr_expect_eq(strtoull(v, NULL, 16), 0, "CapAmb %s", v);
		up_status(w[i], "CapBnd", v, sizeof(v));
		cr_expect_eq(strtoull(v, NULL, 16), 0, "CapBnd %s", v);
		up_status(w[i], "Seccomp", v, sizeof(v));
		cr_expect_str_eq(v, "2");
	}
}

/* ---- root with --uid-map: a user namespace too ---- */

TestSuite(root_userns, .init = up_setup_root_with_map, .fini = it_teardown, .timeout = 60);

ITEST(root_userns, root_parent_with_uid_map_runs_workers_as_the_mapped_user)
{
	char v[128];
	struct fuse_attr a;
	pid_t w[8];
	int n;

	a = up_attr("mine.txt");
	cr_expect_eq(a.uid, 0);
	a = up_attr("roots.txt");
	cr_expect_eq(a.uid, UP_OVERFLOW);
	n = up_workers(w, 2);
	up_expect_user(w, n);
	for (int i = 0; i < n; i++) {
		up_status(w[i], "Groups", v, sizeof(v));
		cr_expect_str_eq(v, "", "worker %d kept supplementary groups", (int)w[i]);
	}
}

/* ---- the memory back end, unprivileged ---- */

static void up_setup_memory(void)
{
	static const char *const extra[] = {"--memory-size=8M", NULL};

	up_user();
	up_share();
	up_start(extra, 0);
}

TestSuite(unpriv_memory, .init = up_setup_memory, .fini = it_teardown, .timeout = 60);

/*
 * A user without privileges gets a memory share too: a child in a user
 * namespace like the workers' makes the file system. The guest sees an
 * empty file system of the size asked for, owned by its root (the user),
 * writes and reads files in it, and its workers run as the user.
 */
ITEST(unpriv_memory, an_unprivileged_daemon_serves_a_memory_share)
{
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} co;
	struct fuse_create_in ci = {.flags = O_RDWR, .mode = S_IFREG | 0644};
	struct fuse_statfs_out sf;
	struct fuse_attr_out ra;
	char back[16];
	uint32_t n = 0, written = 0, got = 0;
	pid_t w[8];
	int nw;

	cr_expect_eq(hx_log_contains(&it_d, "in-memory file system of 8 MiB (made in a user "
					    "namespace)"),
		     1);
	cr_assert_eq(vufe_fuse_statfs(it_fe, 1, &sf), 0);
	cr_expect_eq((uint64_t)sf.st.blocks * sf.st.bsize, 8u << 20);
	cr_expect_eq(vufe_fuse_lookup(it_fe, 1, 1, "mine.txt", &co.e), -ENOENT,
		     "the host directory leaked into the memory share");
	cr_assert_eq(vufe_fuse_getattr(it_fe, 1, 1, &ra), 0);
	cr_expect_eq(ra.attr.uid, 0, "the root belongs to %u, not the user (0 in the guest)",
		     ra.attr.uid);
	cr_assert_eq(
	    vufe_fuse(it_fe, 1, FUSE_CREATE, 1, &ci, sizeof(ci), "new", 4, &co, sizeof(co), &n, 0),
	    0);
	cr_expect_eq(co.e.attr.uid, 0);
	cr_assert_eq(
	    vufe_fuse_write(it_fe, 1, co.e.nodeid, co.o.fh, 0, "in memory", 9, 0, &written), 0);
	cr_assert_eq(vufe_fuse_read(it_fe, 1, co.e.nodeid, co.o.fh, 0, sizeof(back), back, &got, 0),
		     0);
	cr_expect_eq(got, 9);
	cr_expect_eq(memcmp(back, "in memory", 9), 0);
	nw = up_workers(w, 2);
	up_expect_user(w, nw);
}

/* ---- start-up errors ---- */

static void up_errors_setup(void)
{
	up_user();
	up_share();
}

static void up_errors_teardown(void)
{
	hx_rmtree(it_share);
}

TestSuite(unpriv_startup, .init = up_errors_setup, .fini = up_errors_teardown, .timeout = 60);

Test(unpriv_startup, malformed_uid_map_stops_startup_naming_the_option)
{
	static const char *const extra[] = {"--uid-map=0:1000:1", NULL};
	char out[4096];

	cr_expect_eq(up_run(extra, out, sizeof(out)), 1, "%s", out);
	cr_expect(strstr(out, "invalid --uid-map '0:1000:1'"), "%s", out);
}

Test(unpriv_startup, uid_map_of_another_users_id_stops_startup_naming_the_option)
{
	static const char *const extra[] = {"--uid-map=:0:0:1:", NULL};
	char out[4096];

	cr_expect_eq(up_run(extra, out, sizeof(out)), 1, "%s", out);
	cr_expect(
	    strstr(out, "--uid-map ':0:0:1:': an unprivileged bulkheadd can map only its own"),
	    "%s", out);
}

Test(unpriv_startup, gid_map_range_stops_startup_naming_the_option)
{
	char arg[64], out[4096];
	const char *extra[] = {arg, NULL};

	snprintf(arg, sizeof(arg), "--gid-map=:0:%u:2:", (unsigned)up_gid);
	cr_expect_eq(up_run(extra, out, sizeof(out)), 1, "%s", out);
	cr_expect(strstr(out, "--gid-map ':0:") && strstr(out, "count of 1"), "%s", out);
}

Test(unpriv_startup, unsupported_translate_form_stops_startup_naming_the_option)
{
	static const char *const extra[] = {"--translate-uid=squash-guest:0:1000:4294967295", NULL};
	char out[4096];

	cr_expect_eq(up_run(extra, out, sizeof(out)), 1, "%s", out);
	cr_expect(strstr(out, "--translate-uid 'squash-guest:0:1000:4294967295' is not supported"),
		  "%s", out);
}

Test(unpriv_startup, chroot_sandbox_without_cap_sys_chroot_stops_startup)
{
	static const char *const extra[] = {"--sandbox=chroot", NULL};
	char out[4096];

	cr_expect_eq(up_run(extra, out, sizeof(out)), 1, "%s", out);
	cr_expect(strstr(out, "--sandbox=chroot needs CAP_SYS_CHROOT"), "%s", out);
}

Test(unpriv_startup, uid_map_without_the_namespace_sandbox_stops_startup)
{
	static const char *const extra[] = {"--sandbox=none", "--uid-map=:0:1:1:", NULL};
	char out[4096];

	cr_expect_eq(up_run(extra, out, sizeof(out)), 1, "%s", out);
	cr_expect(strstr(out, "need --sandbox=namespace"), "%s", out);
}

Test(unpriv_startup, a_second_uid_map_line_is_refused_without_privileges)
{
	char a1[64], out[4096];
	const char *extra[] = {a1, "--uid-map=:1:100000:1:", NULL};

	snprintf(a1, sizeof(a1), "--uid-map=:0:%u:1:", (unsigned)up_uid);
	cr_expect_eq(up_run(extra, out, sizeof(out)), 1, "%s", out);
	cr_expect(strstr(out, "--uid-map: an unprivileged bulkheadd can write only one uid map "
			      "line"),
		  "%s", out);
}
