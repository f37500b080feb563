/*
 * itest.c - shared fixture for the bulkheadd integration tests.
 * Runs in: integration test programs only.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"

struct hx_daemon it_d;
char it_share[256];
struct vufe *it_fe;

#ifdef IT_BACKEND_MEMORY
#define IT_MEMORY_BYTES (256ull << 20)

/* Our duplicate of the daemon's in-memory file system (-1: none). */
static int it_mem_fd = -1;

#endif

void it_start_share(const char *const *extra, int (*prep)(const char *dir))
{
#ifdef IT_BACKEND_MEMORY
	const char *args[40];
	char size[64];
	unsigned n = 0;

	for (; extra && extra[n] && n < 38; n++)
		args[n] = extra[n];
	snprintf(size, sizeof(size), "--memory-size=%llu", IT_MEMORY_BYTES);
	args[n++] = size;
	args[n] = NULL;
	cr_assert_eq(hx_start_bulkheadd(&it_d, NULL, args), 0, "bulkheadd did not start");
	it_mem_fd = hx_memory_share_fd(it_d.hd_pid, IT_MEMORY_BYTES);
	cr_assert_geq(it_mem_fd, 0, "no in-memory file system in the daemon");
	snprintf(it_share, sizeof(it_share), "/proc/self/fd/%d", it_mem_fd);
	cr_assert_eq(hx_seed_share(it_share), 0);
	if (prep)
		cr_assert_eq(prep(it_share), 0, "share preparation failed");
#else
	if (!it_share[0])
		cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "share"), 0);
	cr_assert_eq(hx_seed_share(it_share), 0);
	if (prep)
		cr_assert_eq(prep(it_share), 0, "share preparation failed");
	cr_assert_eq(hx_start_bulkheadd(&it_d, it_share, extra), 0, "bulkheadd did not start");
#endif
}

void it_launch_opts(const char *const *extra, const struct vufe_opts *o)
{
	vufe_fuse_set_creds(0, 0);
	it_start_share(extra, NULL);
	it_fe = it_connect(o);
}

void it_launch(const char *const *extra, unsigned nqueues)
{
	struct vufe_opts o;

	vufe_opts_default(&o);
	o.nqueues = nqueues;
	it_launch_opts(extra, &o);
}

void it_connect_init(unsigned nqueues)
{
	struct vufe_opts o;

	vufe_fuse_set_creds(0, 0);
	vufe_opts_default(&o);
	o.nqueues = nqueues;
	it_fe = it_connect(&o);
	if (it_up_init(it_fe) != 0) {
		hx_log_dump(&it_d);
		cr_assert_fail("INIT failed");
	}
}

void it_start_prep(const char *const *extra, unsigned nqueues, int (*prep)(const char *dir))
{
	struct vufe_opts o;

	vufe_fuse_set_creds(0, 0);
	it_start_share(extra, prep);
	vufe_opts_default(&o);
	o.nqueues = nqueues;
	it_fe = it_connect(&o);
	cr_assert_eq(it_up_init(it_fe), 0, "INIT failed");
}

void it_start(const char *const *extra, unsigned nqueues)
{
	it_start_prep(extra, nqueues, NULL);
}

void it_setup(void)
{
	it_launch(NULL, 2);
}

void it_setup_q3(void)
{
	it_launch(NULL, 3);
}

void it_stop_daemon_ok(struct hx_daemon *d)
{
	char why[1100];
	int code = hx_stop(d, 5000);

	if (code != 0)
		hx_log_dump(d);
	cr_assert_eq(code, 0, "bulkheadd did not exit 0 on SIGTERM (status %d)", code);
	if (hx_check_workers(d, why, sizeof(why)) != 0) {
		hx_log_dump(d);
		cr_assert_fail("a worker ended badly: %s", why);
	}
}

void it_stop_ok(void)
{
	vufe_free(it_fe);
	it_fe = NULL;
	it_stop_daemon_ok(&it_d);
}

void it_expect_worker_death(int q, const char *what)
{
	cr_assert_eq(hx_expect_worker_death(&it_d, q, what), 0, "too many expected deaths");
}

void it_teardown(void)
{
	vufe_free(it_fe);
	it_fe = NULL;
	if (it_d.hd_pid > 0 && !it_d.hd_reaped && hx_stop(&it_d, 5000) != 0)
		hx_log_dump(&it_d);
	hx_cleanup(&it_d);
#ifdef IT_BACKEND_MEMORY
	/* the file system goes with the daemon and our descriptor */
	if (it_mem_fd >= 0)
		close(it_mem_fd);
	it_mem_fd = -1;
	it_share[0] = '\0';
#else
	hx_rmtree(it_share);
#endif
}

struct vufe *it_connect(const struct vufe_opts *o)
{
	struct vufe *fe = vufe_new(o);

	cr_assert(fe, "vufe_new failed");
	cr_assert_eq(vufe_connect(fe, it_d.hd_sock, 5000), 0, "cannot connect to bulkheadd");
	return fe;
}

int it_up_init(struct vufe *fe)
{
	struct fuse_init_out io;
	int r = vufe_up(fe);

	return r ? r : vufe_fuse_init(fe, 1, &io);
}

uint64_t it_lookup(struct vufe *fe, unsigned q, const char *name)
{
	struct fuse_entry_out e;

	memset(&e, 0, sizeof(e));
	if (vufe_fuse_lookup(fe, q, 1, name, &e) != 0)
		return 0;
	return e.nodeid;
}

/* The inode *(const struct stat *)want names. */
static bool it_is_inode(int fd, const void *want)
{
	const struct stat *w = want;
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_dev == w->st_dev && st.st_ino == w->st_ino;
}

int it_worker_share_fd(pid_t worker, const char *share, int *mnt_id)
{
	char path[64], line[128];
	struct stat want;
	int found, which;
	FILE *f;

	if (stat(share, &want) < 0)
		return -1;
	found = hx_find_fd(worker, 4096, it_is_inode, &want, &which);
	if (found < 0 || !mnt_id)
		return found;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)worker, which);
	if ((f = fopen(path, "re"))) {
		*mnt_id = -1;
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "mnt_id:", 7) == 0)
				*mnt_id = atoi(line + 7);
		fclose(f);
	}
	return found;
}

/* A fresh front end connected to the same daemon gets the whole start-up
 * sequence, INIT and a LOOKUP; the daemon may still be tearing the old
 * session down, so it retries for up to 5 s. */
void it_next_front_end_served(void)
{
	struct vufe *fe = NULL;
	int r = -1;

	for (int i = 0; i < 100 && r; i++) {
		vufe_free(fe);
		fe = it_connect(NULL);
		r = it_up_init(fe);
		if (r)
			usleep(50000);
	}
	cr_assert_eq(r, 0, "the next front end was not served (%d)", r);
	cr_assert_neq(it_lookup(fe, 1, "small.txt"), 0);
	vufe_free(fe);
}

/* A "Key:\tvalue" field of /proc/PID/status. */
int it_status_field(pid_t pid, const char *key, char *val, size_t len)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	FILE *f;
	int found = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			char *v = line + kl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			v[strcspn(v, "\n")] = '\0';
			snprintf(val, len, "%s", v);
			found = 0;
			break;
		}
	}
	fclose(f);
	return found;
}

unsigned long long it_status_hex(pid_t pid, const char *key)
{
	char v[64];

	cr_assert_eq(it_status_field(pid, key, v, sizeof(v)), 0, "%s of %d", key, (int)pid);
	return strtoull(v, NULL, 16);
}

long it_status_num(pid_t pid, const char *key)
{
	char v[64];

	cr_assert_eq(it_status_field(pid, key, v, sizeof(v)), 0, "%s of %d", key, (int)pid);
	return strtol(v, NULL, 10);
}

void it_ns_link(pid_t pid, const char *ns, char *out, size_t len)
{
	char p[64];
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)pid, ns);
	n = readlink(p, out, len - 1);
	cr_assert_gt(n, 0, "readlink %s", p);
	out[n] = '\0';
}
