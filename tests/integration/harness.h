/*
 * harness.h - start and stop real back ends for integration tests and the
 * bench: the build tree's bulkheadd (with its workers) or QEMU's virtiofsd,
 * each on a UNIX socket in a private temporary directory, stderr captured
 * to a file. Runs in: test and bench programs only.
 */
#ifndef BH_HARNESS_H
#define BH_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HX_VIRTIOFSD "/usr/lib/qemu/virtiofsd"

/* A worker's end that a test declared beforehand (hx_expect_worker_death). */
#define HX_MAX_EXPECT 8
struct hx_expect {
	int he_queue;	  /* -1: any queue */
	char he_what[96]; /* a piece of the daemon's line about it */
	int he_seen;
};

struct hx_daemon {
	pid_t hd_pid;
	char hd_dir[200]; /* private temp dir: socket + log */
	char hd_sock[256];
	char hd_log[256];
	char hd_share[PATH_MAX];
	int hd_status; /* wait status once reaped */
	int hd_reaped;
	struct hx_expect hd_expect[HX_MAX_EXPECT];
	int hd_nexpect;
};

/* A fresh directory under $TMPDIR (or /tmp). 0 or -errno. */
int hx_mkdtemp(char *out, size_t len, const char *tag);
/* Remove a tree (does not follow symlinks). */
void hx_rmtree(const char *path);

/* Fill dir with the seeded layout the tests check against:
 *   small.txt, empty, big.bin (1 MiB + 1234 bytes), mode0640 (uid 1234,
 *   gid 5678, mtime with nanoseconds), link_small -> small.txt,
 *   link_etc -> /etc, link_passwd -> /etc/passwd,
 *   dir/ holding HX_DIR_FILES files f000.. and a subdirectory sub/. */
#define HX_DIR_FILES 60
#define HX_BIG_SIZE  ((1u << 20) + 1234u)
int hx_seed_share(const char *dir);
/* Deterministic content of big.bin. */
void hx_big_content(unsigned char *buf, size_t len);

/* Start bulkheadd (extra arguments NULL-terminated, may be NULL) serving
 * share (NULL: no --shared-dir, the extra arguments say what to serve) and
 * wait until its socket exists. 0 or -errno. */
int hx_start_bulkheadd(struct hx_daemon *d, const char *share, const char *const *extra);
/* bulkheadd with args (its whole command line but the program), on a
 * listening socket the harness makes at hd_sock and passes as --fd=N, as
 * libvirt and Kata start virtiofsd. */
int hx_start_bulkheadd_fd(struct hx_daemon *d, const char *const *args);
int hx_start_virtiofsd(struct hx_daemon *d, const char *share);
/* SIGTERM, wait up to timeout_ms (then SIGKILL). Returns the exit code
 * (0..255), 128 + signal if killed by one, or -ETIMEDOUT. */
int hx_stop(struct hx_daemon *d, int timeout_ms);
/* Remove the private temp dir (socket, log). */
void hx_cleanup(struct hx_daemon *d);
/* Is the process still running (not reaped, not a zombie)? */
int hx_alive(struct hx_daemon *d);
/* 1 if the captured stderr contains s. */
int hx_log_contains(struct hx_daemon *d, const char *s);
/* Wait up to timeout_ms for the captured stderr to contain s: 1 if it
 * does, 0 if it still does not. */
int hx_wait_log(struct hx_daemon *d, const char *s, int timeout_ms);
/* Print the captured stderr to our stderr (for failing tests). */
void hx_log_dump(struct hx_daemon *d);

/*
 * Workers that end badly. The daemon logs how each worker ended; an orderly
 * stop is "exited with status 0". Anything else, "was killed by signal N",
 * a non-zero exit status, "did not exit; killing it", and any line about a
 * forbidden system call (also --seccomp=log's "would deny"), is a failure of
 * the test unless the test declared beforehand, with hx_expect_worker_death,
 * that worker q ends in a line containing what ("was killed by signal 9",
 * "made a forbidden system call: umount2", "exited with status 1"); q -1
 * matches any queue. Each declaration stands for exactly one such line and
 * must be met. Declare after the daemon started (starting clears them).
 */
int hx_expect_worker_death(struct hx_daemon *d, int q, const char *what);
/* After the daemon exited: 0 if its log shows no worker end but the
 * declared ones and every declared one happened, else -1 with the first
 * offending line (or the unmet declaration) in why. */
int hx_check_workers(struct hx_daemon *d, char *why, size_t len);

/* Children of pid (from /proc): count, pids in out[0..max). */
int hx_children(pid_t pid, pid_t *out, int max);
/* CPU seconds (user + system, all threads) of pid and every process below
 * it, plus what its reaped children used: a daemon's whole cost. */
double hx_tree_cpu(pid_t pid);
/* Wait until pid has exactly n children (timeout_ms): 0 or -ETIMEDOUT. */
int hx_wait_children(pid_t pid, int n, int timeout_ms);
/* State letter of a process from /proc/PID/stat ('R', 'S', 'Z', 'T', ...), 0 if gone. */
char hx_proc_state(pid_t pid);
/* Start argv as d's daemon (d prepared by the caller: hd_dir, hd_sock,
 * hd_log), in dir if not NULL, after as() in the child if not NULL (it may
 * change credentials; _exit(126) on failure); waits for the socket. */
int hx_spawn_as(struct hx_daemon *d, char *const argv[], const char *dir, void (*as)(void));
/* Run argv to completion (killed after 10 s), in dir and after as() as
 * above, stdout and stderr into out (NUL-terminated): the exit code,
 * 128 + signal, or -errno. */
int hx_run_capture(char *const argv[], const char *dir, void (*as)(void), char *out, size_t cap);
/* Block until path exists or timeout: 0 or -ETIMEDOUT. */
int hx_wait_path(const char *path, int timeout_ms);
/* A duplicate (pidfd_getfd, as root) of the first of process pid's
 * descriptors below max for which match says true, *which (if not NULL)
 * its number there; -1 if none. */
int hx_find_fd(pid_t pid, int max, bool (*match)(int fd, const void *arg), const void *arg,
	       int *which);
/* bulkheadd --memory-size=bytes: a duplicate of the daemon's descriptor of
 * its in-memory file system (pidfd_getfd, as root), the tmpfs directory of
 * that size among its descriptors; -1 if there is none. The host reaches the
 * share through it, as /proc/self/fd/N. */
int hx_memory_share_fd(pid_t daemon, uint64_t bytes);

#endif
