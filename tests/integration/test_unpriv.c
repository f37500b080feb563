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
 * libvirt's session form (the user as 0, its subordinate range as 1 and up,
 * from /etc/subuid and /etc/subgid, which the runner gives the test user
 * for the run and restores byte for byte afterwards) goes through
 * newuidmap/newgidmap run by the daemon's id-map helper; refused when the
 * user has no entry, under no_new_privs or without the tools. A root parent
 * writes the same maps itself.
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
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

/* The test user's subordinate range in /etc/subuid and /etc/subgid for the
 * run: far above any id a host hands out. */
#define UP_SUB_START 3000000u
#define UP_SUB_COUNT 65536u
#define UP_HELPER    "bulkhead-idmap"

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

/*
 * /etc/subuid and /etc/subgid as they were before the run: whether they
 * existed, their bytes and times. The runner appends the test user's
 * range before any test starts and puts the files back after the last one
 * (before userdel, which would otherwise rewrite them and leave backups).
 */
struct up_idfile {
	const char *uf_path;
	int uf_existed;
	char *uf_data;
	size_t uf_len;
	struct stat uf_st;
};
static struct up_idfile up_idfiles[2] = {{.uf_path = "/etc/subuid"}, {.uf_path = "/etc/subgid"}};

static void up_idfile_add(struct up_idfile *f)
{
	char line[128];
	FILE *in;
	int fd;

	if ((in = fopen(f->uf_path, "re"))) {
		size_t cap = 0;
		char buf[4096];
		size_t n;

		f->uf_existed = fstat(fileno(in), &f->uf_st) == 0;
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
			if (f->uf_len + n > cap)
				f->uf_data = realloc(f->uf_data, cap = (f->uf_len + n) * 2);
			memcpy(f->uf_data + f->uf_len, buf, n);
			f->uf_len += n;
		}
		fclose(in);
	}
	fd = open(f->uf_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "test_unpriv: open %s: %s\n", f->uf_path, strerror(errno));
		return;
	}
	snprintf(line, sizeof(line), "%s" UP_USER ":%u:%u\n",
		 f->uf_len && f->uf_data[f->uf_len - 1] != '\n' ? "\n" : "", UP_SUB_START,
		 UP_SUB_COUNT);
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
		fprintf(stderr, "test_unpriv: write %s: %s\n", f->uf_path, strerror(errno));
	close(fd);
}

static void up_idfile_restore(struct up_idfile *f)
{
	struct timespec ts[2];
	int fd;

	if (!f->uf_existed) {
		if (unlink(f->uf_path) < 0 && errno != ENOENT)
			fprintf(stderr, "test_unpriv: unlink %s: %s\n", f->uf_path,
				strerror(errno));
		return;
	}
	fd = open(f->uf_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0 || (f->uf_len && write(fd, f->uf_data, f->uf_len) != (ssize_t)f->uf_len)) {
		fprintf(stderr, "test_unpriv: restore %s: %s\n", f->uf_path, strerror(errno));
	} else {
		ts[0] = f->uf_st.st_atim;
		ts[1] = f->uf_st.st_mtim;
		(void)futimens(fd, ts);
	}
	if (fd >= 0)
		close(fd);
	free(f->uf_data);
	f->uf_data = NULL;
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	(void)set;
	if (!getpwnam(UP_USER)) {
		up_useradd_status = system("useradd --system --user-group --no-create-home "
					   "--shell /usr/sbin/nologin " UP_USER " >/dev/null 2>&1");
		up_created = WIFEXITED(up_useradd_status) && WEXITSTATUS(up_useradd_status) == 0;
	}
	for (int i = 0; i < 2; i++)
		up_idfile_add(&up_idfiles[i]);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	for (int i = 0; i < 2; i++)
		up_idfile_restore(&up_idfiles[i]);
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

/* In a child, as root: a mount namespace of its own with the build tree
 * within the user's reach. */
static void up_enter_trees(void)
{
	if (up_expose_trees() < 0) {
		dprintf(2, "test_unpriv: exposing the build tree: %s\n", strerror(errno));
		_exit(126);
	}
}

/* In a child: become the test user for good (no groups, no capabilities). */
static void up_become_user(void)
{
	if (setgroups(0, NULL) < 0 || setresgid(up_gid, up_gid, up_gid) < 0 ||
	    setresuid(up_uid, up_uid, up_uid) < 0)
		_exit(126);
}

/* In a child: become the test user, with the build tree within its reach. */
static void up_drop(void)
{
	up_enter_trees();
	up_become_user();
}

/* it_d for a daemon of the user's: a directory the user owns, the socket
 * and the log in it, the share. */
static void up_prepare(void)
{
	memset(&it_d, 0, sizeof(it_d));
	cr_assert_eq(hx_mkdtemp(it_d.hd_dir, sizeof(it_d.hd_dir), "unpriv"), 0);
	cr_assert_eq(chown(it_d.hd_dir, up_uid, up_gid), 0);
	snprintf(it_d.hd_sock, sizeof(it_d.hd_sock), "%s/s", it_d.hd_dir);
	snprintf(it_d.hd_log, sizeof(it_d.hd_log), "%s/stderr.log", it_d.hd_dir);
	snprintf(it_d.hd_share, sizeof(it_d.hd_share), "%s", it_share);
}

/* Start argv as it_d (as the user unless as_root), then a front end with
 * two queues, INITed. */
static void up_spawn_and_connect(char *const argv[], int as_root)
{
	struct vufe_opts o;

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

/* Start bulkheadd as the user (as root with as_root) on a socket in a
 * directory the user owns; extra is NULL-terminated. */
static void up_start(const char *const *extra, int as_root)
{
	char sock[PATH_MAX + 32], share[PATH_MAX + 32];
	char *argv[16];
	int n = 0;

	up_prepare();
	snprintf(sock, sizeof(sock), "--socket-path=%s", it_d.hd_sock);
	snprintf(share, sizeof(share), "--shared-dir=%s", it_share);
	argv[n++] = (char *)BH_BUILD_DIR "/daemon/bulkheadd";
	argv[n++] = sock;
	argv[n++] = share;
	argv[n++] = (char *)"--log-level=debug";
	for (int i = 0; extra && extra[i] && n < 15; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	up_spawn_and_connect(argv, as_root);
}

/* libvirt's maps for a session daemon (qemu_virtiofs.c): the user as 0,
 * its range of /etc/subuid (/etc/subgid) as 1 and up, the uid maps first. */
static char up_lv_maps[4][64];

static void up_libvirt_maps(void)
{
	snprintf(up_lv_maps[0], sizeof(up_lv_maps[0]), "--uid-map=:0:%u:1:", (unsigned)up_uid);
	snprintf(up_lv_maps[1], sizeof(up_lv_maps[1]), "--uid-map=:1:%u:%u:", UP_SUB_START,
		 UP_SUB_COUNT);
	snprintf(up_lv_maps[2], sizeof(up_lv_maps[2]), "--gid-map=:0:%u:1:", (unsigned)up_gid);
	snprintf(up_lv_maps[3], sizeof(up_lv_maps[3]), "--gid-map=:1:%u:%u:", UP_SUB_START,
		 UP_SUB_COUNT);
}

/*
 * bulkheadd as unprivileged libvirt starts virtiofsd for a session domain
 * whose virtiofsd offers separate options: the socket libvirt made as
 * --fd=N, --shared-dir DIR as two arguments, --log-level debug (libvirt's
 * virtiofsd_debug), then the maps. extra (NULL or NULL-terminated) comes
 * before the maps, as libvirt's --thread-pool-size and the like do.
 */
static void up_start_libvirt(const char *const *extra, int as_root)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char fdarg[32], *argv[24];
	int fd, n = 0;

	up_libvirt_maps();
	up_prepare();
	cr_assert_lt(strlen(it_d.hd_sock), sizeof(sa.sun_path));
	memcpy(sa.sun_path, it_d.hd_sock, strlen(it_d.hd_sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0); /* inherited: no close-on-exec */
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
	cr_assert_eq(listen(fd, 4), 0);
	snprintf(fdarg, sizeof(fdarg), "--fd=%d", fd);
	argv[n++] = (char *)BH_BUILD_DIR "/daemon/bulkheadd";
	argv[n++] = fdarg;
	argv[n++] = (char *)"--shared-dir";
	argv[n++] = it_share;
	argv[n++] = (char *)"--log-level";
	argv[n++] = (char *)"debug";
	for (int i = 0; extra && extra[i] && n < 19; i++)
		argv[n++] = (char *)extra[i];
	for (int i = 0; i < 4; i++)
		argv[n++] = up_lv_maps[i];
	argv[n] = NULL;
	up_spawn_and_connect(argv, as_root);
	close(fd);
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

/* Did the last up_run's daemon create its socket? */
static int up_run_made_socket;

/* Run bulkheadd to completion, as() in the child (up_drop: the user): exit
 * code, output in out. */
static int up_run_as(const char *const *extra, void (*as)(void), char *out, size_t cap)
{
	char share[PATH_MAX + 32], sock[PATH_MAX + 32], dir[256], path[300];
	char *argv[16];
	struct stat st;
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
	r = hx_run_capture(argv, dir, as, out, cap);
	snprintf(path, sizeof(path), "%s/s", dir);
	up_run_made_socket = lstat(path, &st) == 0;
	hx_rmtree(dir);
	cr_assert_geq(r, 0, "run bulkheadd: %s", strerror(-r));
	return r;
}

static int up_run(const char *const *extra, char *out, size_t cap)
{
	return up_run_as(extra, up_drop, out, cap);
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

/* ---- libvirt's session form: two lines each, through newuidmap/newgidmap ---- */

/* The process's name (/proc/PID/comm, without the line end). */
static void up_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* The daemon's want workers and, if helper is not NULL, its id-map helper
 * (asserted to be there); without, exactly want children, none the helper. */
static int up_workers_and_helper(pid_t *out, int want, pid_t *helper)
{
	pid_t all[9];
	char comm[32];
	int n = 0, got;

	cr_assert_eq(hx_wait_children(it_d.hd_pid, want + !!helper, 5000), 0,
		     "expected %d workers%s", want, helper ? " and the id-map helper" : "");
	got = hx_children(it_d.hd_pid, all, 9);
	if (helper)
		*helper = 0;
	for (int i = 0; i < got && i < 9; i++) {
		up_comm(all[i], comm, sizeof(comm));
		if (strcmp(comm, UP_HELPER) != 0) {
			if (n < want)
				out[n++] = all[i];
		} else {
			cr_assert(helper, "an id-map helper (pid %d) where none is needed",
				  (int)all[i]);
			*helper = all[i];
		}
	}
	if (helper)
		cr_assert_gt(*helper, 0, "no " UP_HELPER " child");
	return n;
}

/* pid's uid_map (gid_map) is these two lines and nothing else. */
static void up_expect_two_lines(pid_t pid, const char *file, unsigned own)
{
	char path[64], line[128];
	int lines = 0;
	FILE *f;

	cr_expect(up_has_map_line(pid, file, 0, own, 1), "%s of %d: no 0 %u 1", file, (int)pid,
		  own);
	cr_expect(up_has_map_line(pid, file, 1, UP_SUB_START, UP_SUB_COUNT), "%s of %d: no 1 %u %u",
		  file, (int)pid, UP_SUB_START, UP_SUB_COUNT);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "re");
	cr_assert(f, "open %s", path);
	while (fgets(line, sizeof(line), f))
		lines++;
	fclose(f);
	cr_expect_eq(lines, 2, "%s of %d has %d lines", file, (int)pid, lines);
}

/* The text of /proc/PID/<file>, first line. */
static void up_proc_line(pid_t pid, const char *file, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "re");
	cr_assert(f, "open %s", path);
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/* A guest caller (uid, gid) creates name under the directory node dir,
 * mode 0644; the guest's view of the new file's owner in *a. */
static void up_create_as(uint64_t dir, const char *name, uint32_t uid, uint32_t gid,
			 struct fuse_attr *a)
{
	struct fuse_create_in ci = {.flags = O_WRONLY | O_CREAT | O_EXCL, .mode = S_IFREG | 0644};
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out;
	uint32_t n = 0;
	int r;

	vufe_fuse_set_creds(uid, gid);
	r = vufe_fuse(it_fe, 1, FUSE_CREATE, dir, &ci, sizeof(ci), name, strlen(name) + 1, &out,
		      sizeof(out), &n, 0);
	vufe_fuse_set_creds(0, 0);
	cr_assert_eq(r, 0, "CREATE %s as %u:%u: %d", name, uid, gid, r);
	*a = out.e.attr;
}

/* host owner of the share's path */
static void up_expect_host_owner(const char *rel, uid_t uid, gid_t gid)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", it_share, rel);
	cr_assert_eq(lstat(p, &st), 0, "%s: %s", p, strerror(errno));
	cr_expect_eq(st.st_uid, uid, "%s: host owner %u, want %u", rel, (unsigned)st.st_uid,
		     (unsigned)uid);
	cr_expect_eq(st.st_gid, gid, "%s: host group %u, want %u", rel, (unsigned)st.st_gid,
		     (unsigned)gid);
}

/*
 * What guest uid 0 and guest uid 1 create lands on the host as the user and
 * as the first id of its subordinate range; guest root chowns a file into
 * the range; host files of the range appear as their namespace ids. Shared
 * by the unprivileged daemon (newuidmap) and the root one (direct writes).
 */
static void up_two_line_ownership(void)
{
	struct fuse_mkdir_in mi = {.mode = 0777, .umask = 0};
	struct fuse_setattr_in si = {.valid = FATTR_UID | FATTR_GID, .uid = 1000, .gid = 1000};
	struct fuse_attr_out ao;
	struct fuse_entry_out e;
	struct fuse_attr a;
	uint32_t n = 0;

	/* guest root: the user */
	up_create_as(1, "by-guest-root.txt", 0, 0, &a);
	cr_expect_eq(a.uid, 0, "guest view: uid %u", a.uid);
	up_expect_host_owner("by-guest-root.txt", up_uid, up_gid);
	/* a directory everyone may write, then guest uid 1 in it: the range */
	cr_assert_eq(vufe_fuse(it_fe, 1, FUSE_MKDIR, 1, &mi, sizeof(mi), "open", sizeof("open"), &e,
			       sizeof(e), &n, 0),
		     0);
	up_create_as(e.nodeid, "by-guest-uid1.txt", 1, 1, &a);
	cr_expect_eq(a.uid, 1, "guest view: uid %u", a.uid);
	cr_expect_eq(a.gid, 1, "guest view: gid %u", a.gid);
	up_expect_host_owner("open/by-guest-uid1.txt", UP_SUB_START, UP_SUB_START);
	/* guest root gives a file to guest uid 1000: subordinate id 999 */
	si.fh = 0;
	cr_assert_eq(vufe_fuse(it_fe, 1, FUSE_SETATTR, it_lookup(it_fe, 1, "by-guest-root.txt"),
			       &si, sizeof(si), NULL, 0, &ao, sizeof(ao), &n, 0),
		     0, "chown to 1000");
	cr_expect_eq(ao.attr.uid, 1000);
	up_expect_host_owner("by-guest-root.txt", UP_SUB_START + 999, UP_SUB_START + 999);
	/* the host's view back: a file of the range, the user's, root's */
	up_write("sub-five.txt", "x\n", UP_SUB_START + 5, UP_SUB_START + 5);
	a = up_attr("sub-five.txt");
	cr_expect_eq(a.uid, 6, "host uid %u shows as %u", UP_SUB_START + 5, a.uid);
	cr_expect_eq(a.gid, 6, "host gid %u shows as %u", UP_SUB_START + 5, a.gid);
	cr_expect_eq(up_attr("mine.txt").uid, 0);
	cr_expect_eq(up_attr("roots.txt").uid, UP_OVERFLOW);
}

static void up_setup_libvirt(void)
{
	up_user();
	up_share();
	up_start_libvirt(NULL, 0);
}

TestSuite(unpriv_libvirt, .init = up_setup_libvirt, .fini = it_teardown, .timeout = 60);

/*
 * Every worker's namespace has both lines of each map, written by the
 * tools the helper ran; the parent serves with no_new_privs and its
 * filter (which is why it cannot run them itself); the helper has neither,
 * and holds nothing but its channel.
 */
ITEST(unpriv_libvirt, workers_get_both_lines_of_each_map_through_the_helper)
{
	char v[128], link[128], path[64];
	pid_t w[8], helper;
	int n = up_workers_and_helper(w, 2, &helper);
	ssize_t l;

	cr_assert_eq(n, 2);
	cr_assert_gt(helper, 0, "no " UP_HELPER " child");
	for (int i = 0; i < n; i++) {
		up_expect_two_lines(w[i], "uid_map", (unsigned)up_uid);
		up_expect_two_lines(w[i], "gid_map", (unsigned)up_gid);
		/* newgidmap leaves setgroups allowed: the range is delegated */
		up_proc_line(w[i], "setgroups", v, sizeof(v));
		cr_expect_str_eq(v, "allow", "setgroups of %d: %s", (int)w[i], v);
		up_status(w[i], "Uid", v, sizeof(v));
		snprintf(path, sizeof(path), "%u\t%u\t%u\t%u", (unsigned)up_uid, (unsigned)up_uid,
			 (unsigned)up_uid, (unsigned)up_uid);
		cr_expect_str_eq(v, path, "worker %d: Uid %s", (int)w[i], v);
		up_status(w[i], "Seccomp", v, sizeof(v));
		cr_expect_str_eq(v, "2");
		up_status(w[i], "CapEff", v, sizeof(v));
		cr_expect_eq(strtoull(v, NULL, 16), UP_WORKER_CAPS, "CapEff %s", v);
	}
	up_status(it_d.hd_pid, "NoNewPrivs", v, sizeof(v));
	cr_expect_str_eq(v, "1", "parent NoNewPrivs %s", v);
	up_status(it_d.hd_pid, "Seccomp", v, sizeof(v));
	cr_expect_str_eq(v, "2", "parent Seccomp %s", v);
	up_status(helper, "NoNewPrivs", v, sizeof(v));
	cr_expect_str_eq(v, "0", "helper NoNewPrivs %s", v);
	up_status(helper, "CapEff", v, sizeof(v));
	cr_expect_eq(strtoull(v, NULL, 16), 0, "helper CapEff %s", v);
	for (int fd = 0; fd < 64; fd++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)helper, fd);
		l = readlink(path, link, sizeof(link) - 1);
		if (fd > 3) {
			cr_expect_lt(l, 0, "the helper holds descriptor %d", fd);
			continue;
		}
		cr_assert_gt(l, 0, "helper descriptor %d: %s", fd, strerror(errno));
		link[l] = '\0';
		if (fd < 3)
			cr_expect_str_eq(link, "/dev/null", "helper descriptor %d: %s", fd, link);
		else
			cr_expect(strncmp(link, "socket:", 7) == 0, "helper descriptor 3: %s",
				  link);
	}
	cr_expect(hx_log_contains(&it_d, "id maps written by /usr/bin/newuidmap and "
					 "/usr/bin/newgidmap, checked on a new user namespace"));
}

ITEST(unpriv_libvirt, guest_uid_0_is_the_user_and_guest_uid_1_the_first_subordinate_id)
{
	up_two_line_ownership();
}

static void up_setup_libvirt_memory(void)
{
	static const char *const extra[] = {"--memory-size=8M", NULL};

	up_user();
	up_share();
	up_start_libvirt(extra, 0);
}

TestSuite(unpriv_libvirt_memory, .init = up_setup_libvirt_memory, .fini = it_teardown,
	  .timeout = 60);

/* The memory back end's file system is made in a child with the workers'
 * maps, which the helper writes too: what guest uid 1 creates there is the
 * first subordinate id's on the host (seen through the daemon's descriptor
 * of the file system). */
ITEST(unpriv_libvirt_memory, the_memory_share_is_made_with_the_two_line_maps)
{
	struct fuse_mkdir_in mi = {.mode = 0777, .umask = 0};
	struct fuse_entry_out e;
	struct fuse_attr a;
	struct stat st;
	pid_t w[8], helper;
	uint32_t n = 0;
	int fd;

	cr_expect(hx_log_contains(&it_d, "(made in a user namespace)"));
	cr_assert_eq(vufe_fuse(it_fe, 1, FUSE_MKDIR, 1, &mi, sizeof(mi), "open", sizeof("open"), &e,
			       sizeof(e), &n, 0),
		     0);
	up_create_as(e.nodeid, "by-guest-uid1", 1, 1, &a);
	cr_expect_eq(a.uid, 1, "guest view: uid %u", a.uid);
	fd = hx_memory_share_fd(it_d.hd_pid, 8u << 20);
	cr_assert_geq(fd, 0, "no descriptor of the memory share in the daemon");
	cr_assert_eq(fstatat(fd, "open/by-guest-uid1", &st, AT_SYMLINK_NOFOLLOW), 0);
	close(fd);
	cr_expect_eq(st.st_uid, UP_SUB_START, "host owner %u", (unsigned)st.st_uid);
	cr_expect_eq(st.st_gid, UP_SUB_START, "host group %u", (unsigned)st.st_gid);
	cr_expect_eq(up_workers_and_helper(w, 2, &helper), 2);
	up_expect_two_lines(w[0], "uid_map", (unsigned)up_uid);
}

/* ---- root with the same maps: written directly ---- */

static void up_setup_root_libvirt(void)
{
	up_user();
	up_share();
	up_start_libvirt(NULL, 1);
}

TestSuite(root_userns_lines, .init = up_setup_root_libvirt, .fini = it_teardown, .timeout = 60);

ITEST(root_userns_lines, root_writes_multi_line_maps_itself)
{
	pid_t w[8];
	int n = up_workers_and_helper(w, 2, NULL);

	cr_assert_eq(n, 2);
	for (int i = 0; i < n; i++) {
		up_expect_two_lines(w[i], "uid_map", (unsigned)up_uid);
		up_expect_two_lines(w[i], "gid_map", (unsigned)up_gid);
	}
	up_expect_user(w, n);
	cr_expect(!hx_log_contains(&it_d, "newuidmap"));
	up_two_line_ownership();
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

/* out says the daemon refused to start with each of the pieces, and it
 * made no socket. */
static void up_refused(int code, const char *out, const char *const *pieces)
{
	cr_expect_eq(code, 1, "exit %d: %s", code, out);
	for (int i = 0; pieces[i]; i++)
		cr_expect(strstr(out, pieces[i]), "no '%s' in: %s", pieces[i], out);
	cr_expect(strstr(out, "; not starting"), "%s", out);
	cr_expect(!up_run_made_socket, "a refused daemon made its socket");
	cr_expect(!strstr(out, "Waiting for vhost-user socket connection"), "%s", out);
}

/* Another user's id: newuidmap refuses it (even with the user's range in
 * /etc/subuid), and says why. */
Test(unpriv_startup, uid_map_of_another_users_id_stops_startup_naming_the_option)
{
	static const char *const extra[] = {"--uid-map=:0:0:1:", NULL};
	static const char *const want[] = {"--uid-map: /usr/bin/newuidmap ",
					   " 0 0 1 failed (exit status 1): newuidmap: uid range "
					   "[0-1) -> [0-1) not allowed",
					   "delegated to user " UP_USER " in /etc/subuid", NULL};
	char out[4096];

	up_refused(up_run(extra, out, sizeof(out)), out, want);
}

Test(unpriv_startup, gid_map_range_stops_startup_naming_the_option)
{
	char arg[64], piece[128], out[4096];
	const char *extra[] = {arg, NULL};
	const char *want[] = {"--gid-map: /usr/bin/newgidmap ", piece, "/etc/subgid", NULL};

	snprintf(arg, sizeof(arg), "--gid-map=:0:%u:2:", (unsigned)up_gid);
	snprintf(piece, sizeof(piece),
		 " 0 %u 2 failed (exit status 1): newgidmap: gid range [0-2) -> "
		 "[%u-%u) not allowed",
		 (unsigned)up_gid, (unsigned)up_gid, (unsigned)up_gid + 2);
	up_refused(up_run(extra, out, sizeof(out)), out, want);
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

/* A second line outside the user's range in /etc/subuid. */
Test(unpriv_startup, a_second_uid_map_line_outside_the_users_range_is_refused)
{
	char a1[64], out[4096];
	const char *extra[] = {a1, "--uid-map=:1:100000:1:", NULL};
	static const char *const want[] = {
	    "--uid-map: /usr/bin/newuidmap ",
	    " 1 100000 1 failed (exit status 1): newuidmap: uid range [1-2) -> [100000-100001) not "
	    "allowed",
	    NULL};

	snprintf(a1, sizeof(a1), "--uid-map=:0:%u:1:", (unsigned)up_uid);
	up_refused(up_run(extra, out, sizeof(out)), out, want);
}

/* libvirt's maps as extra arguments of up_run. */
static const char *const *up_libvirt_extra(void)
{
	static const char *extra[5];

	up_libvirt_maps();
	for (int i = 0; i < 4; i++)
		extra[i] = up_lv_maps[i];
	extra[4] = NULL;
	return extra;
}

/*
 * The daemon sees an /etc/subuid without the user's entry: the runner's
 * file with that line left out, mounted over /etc/subuid in the daemon's
 * own mount namespace, which newuidmap, run by its helper, reads. (The
 * host's file keeps the entry the tests that run meanwhile need.)
 */
static void up_drop_without_subuid_entry(void)
{
	char tmp[] = "/tmp/bh-subuid-XXXXXX", line[256];
	FILE *in, *out;
	int fd;

	up_enter_trees();
	if ((fd = mkstemp(tmp)) < 0 || fchmod(fd, 0644) < 0 || !(out = fdopen(fd, "w")))
		_exit(126);
	if ((in = fopen("/etc/subuid", "re"))) {
		while (fgets(line, sizeof(line), in))
			if (strncmp(line, UP_USER ":", strlen(UP_USER ":")) != 0)
				fputs(line, out);
		fclose(in);
	}
	if (fclose(out) != 0 || mount(tmp, "/etc/subuid", NULL, MS_BIND, NULL) < 0) {
		dprintf(2, "test_unpriv: hiding the subuid entry: %s\n", strerror(errno));
		unlink(tmp);
		_exit(126);
	}
	unlink(tmp);
	up_become_user();
}

Test(unpriv_startup, no_subuid_entry_for_the_user_stops_startup_with_newuidmaps_output)
{
	char piece[256], out[4096];
	const char *want[] = {"--uid-map: /usr/bin/newuidmap ", piece,
			      "the host ids must be delegated to user " UP_USER " in /etc/subuid",
			      NULL};

	snprintf(piece, sizeof(piece),
		 " 0 %u 1 1 %u %u failed (exit status 1): newuidmap: uid range [1-%u) -> [%u-%u) "
		 "not allowed",
		 (unsigned)up_uid, UP_SUB_START, UP_SUB_COUNT, UP_SUB_COUNT + 1, UP_SUB_START,
		 UP_SUB_START + UP_SUB_COUNT);
	up_refused(up_run_as(up_libvirt_extra(), up_drop_without_subuid_entry, out, sizeof(out)),
		   out, want);
}

/* As a systemd unit with NoNewPrivileges=yes starts it. */
static void up_drop_no_new_privs(void)
{
	up_drop();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		_exit(126);
}

Test(unpriv_startup, no_new_privs_stops_startup_saying_newuidmap_cannot_work)
{
	static const char *const want[] = {
	    "--uid-map (uid map 0->",
	    "newuidmap cannot work under no_new_privs (NoNewPrivileges=", NULL};
	char out[4096];

	up_refused(up_run_as(up_libvirt_extra(), up_drop_no_new_privs, out, sizeof(out)), out,
		   want);
	cr_expect(!strstr(out, "/usr/bin/newuidmap "), "it ran newuidmap anyway: %s", out);
}

/* /usr/bin/newuidmap is no program in the daemon's mount namespace. */
static void up_drop_without_newuidmap(void)
{
	up_enter_trees();
	if (mount("/dev/null", "/usr/bin/newuidmap", NULL, MS_BIND, NULL) < 0) {
		dprintf(2, "test_unpriv: hiding newuidmap: %s\n", strerror(errno));
		_exit(126);
	}
	up_become_user();
}

Test(unpriv_startup, newuidmap_not_installed_stops_startup)
{
	static const char *const want[] = {
	    "--uid-map (uid map 0->", "through newuidmap(1)",
	    "which is not installed: no executable newuidmap in PATH or /usr/bin", "uidmap", NULL};
	char out[4096];

	up_refused(up_run_as(up_libvirt_extra(), up_drop_without_newuidmap, out, sizeof(out)), out,
		   want);
}
