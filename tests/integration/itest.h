/*
 * itest.h - the fixture every bulkheadd integration test shares: a seeded
 * share, the build tree's bulkheadd on a private socket, a connected test
 * front end, and a strict end of every test: SIGTERM must give exit status
 * 0, and the daemon's log must show no worker that died (killed by a
 * signal, a non-zero exit) or made a forbidden system call unless the test
 * declared it beforehand with it_expect_worker_death().
 * Runs in: integration test programs only.
 */
#ifndef BH_ITEST_H
#define BH_ITEST_H

#include <limits.h>
#include <sys/types.h>

#include "harness.h"
#include "vufe.h"

extern struct hx_daemon it_d;
extern char it_share[256];
extern struct vufe *it_fe;

/*
 * The share, passthrough or memory: a program built with IT_BACKEND_MEMORY
 * runs the same tests on a memory share (--memory-size=256M), which the
 * test reaches from the host through the daemon's own descriptor of it
 * (it_share is then /proc/self/fd/N), so the host-side checks hold as well.
 * it_start_share seeds it (and runs prep on it, if not NULL) and starts the
 * daemon with extra arguments (NULL-terminated, may be NULL).
 */
void it_start_share(const char *const *extra, int (*prep)(const char *dir));

/* Seed a share, start bulkheadd, connect a front end with default options. */
void it_setup(void);
/* Same with three queues (hiprio + two request queues). */
void it_setup_q3(void);
/* Seed the share (it_share, a fresh temporary directory unless the caller
 * named an existing one), start bulkheadd with extra arguments (NULL-
 * terminated, may be NULL) and connect a front end with nqueues queues;
 * the guest's credentials are root. it_start also INITs. */
void it_launch(const char *const *extra, unsigned nqueues);
/* it_launch with the front end's options given whole. */
void it_launch_opts(const char *const *extra, const struct vufe_opts *o);
void it_start(const char *const *extra, unsigned nqueues);
/* it_start, with prep run on the seeded share before the front end comes. */
void it_start_prep(const char *const *extra, unsigned nqueues, int (*prep)(const char *dir));
/* Free the front end, stop the daemon if still running, remove the files. */
void it_teardown(void);
/* Free the front end, SIGTERM the daemon and assert it exits 0 within 5 s
 * and that no worker ended badly (it_stop_daemon_ok). */
void it_stop_ok(void);
/* The same for any daemon a test started itself: SIGTERM, exit status 0 within
 * 5 s, and hx_check_workers() on its log; dumps the log on failure. */
void it_stop_daemon_ok(struct hx_daemon *d);
/* The test expects worker q of it_d (-1: any) to end in a daemon line that
 * contains what, exactly once: e.g. IT_KILLED for the parent's SIGKILL. */
void it_expect_worker_death(int q, const char *what);
#define IT_KILLED    "was killed by signal 9 (Killed)"
#define IT_SIGSYS    "was killed by signal 31 (Bad system call)"
#define IT_FORBIDDEN "made a forbidden system call: "

/* A Criterion test whose body is followed by it_stop_ok(): Criterion ignores
 * assertions in .fini, so the daemon's exit status is checked in the test. */
#define ITEST(suite, name)                                                                         \
	static void suite##_##name##_body(void);                                                   \
	Test(suite, name)                                                                          \
	{                                                                                          \
		suite##_##name##_body();                                                           \
		it_stop_ok();                                                                      \
	}                                                                                          \
	static void suite##_##name##_body(void)

/* A duplicate of the descriptor worker holds on the share's root (fetched
 * with pidfd_getfd), and the mount it is on (its fdinfo's mnt_id); -1 when
 * it holds none. */
int it_worker_share_fd(pid_t worker, const char *share, int *mnt_id);
/* Another front end connected to the same daemon. */
struct vufe *it_connect(const struct vufe_opts *o);
/* vufe_up then FUSE INIT on queue 1: 0 or the first error. */
int it_up_init(struct vufe *fe);
/* A front end with nqueues queues on it_d, the guest root, after INIT
 * (asserts; the daemon's log is dumped when INIT fails): it_fe. */
void it_connect_init(unsigned nqueues);
/* LOOKUP name under the root, returns the node id (0 on failure). */
uint64_t it_lookup(struct vufe *fe, unsigned q, const char *name);
/* A fresh front end is served: INIT and a LOOKUP of small.txt (asserts). */
void it_next_front_end_served(void);

/* A field of /proc/PID/status as a hex or decimal number (asserts it is
 * there), and the target of /proc/PID/ns/NS ("net:[4026531840]"). */
unsigned long long it_status_hex(pid_t pid, const char *key);
/* The field as text into val: 0, or -errno (-ENOENT: no such field). */
int it_status_field(pid_t pid, const char *key, char *val, size_t len);
long it_status_num(pid_t pid, const char *key);
void it_ns_link(pid_t pid, const char *ns, char *out, size_t len);

#endif
