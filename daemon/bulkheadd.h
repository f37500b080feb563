/*
 * bulkheadd.h - the privileged parent: configuration and the prototypes of
 * its files, grouped per file.
 * Runs in: the parent only. Nothing here parses guest-controlled bytes; the
 * front end (QEMU) is checked strictly but is not the guest.
 */
#ifndef BH_BULKHEADD_H
#define BH_BULKHEADD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backends.h"
#include "ipc.h"

struct event;
struct event_base;

/*
 * An id map in the kernel's uid_map form: ns id, host id, count per line.
 * From --uid-map/--gid-map (ns = what the worker's user namespace sees),
 * --translate-uid/--translate-gid (ns = the guest's id) or the default.
 * The kernel takes up to 340 lines, but in one write of less than a page:
 * 64 lines of three 10-digit numbers are 2112 bytes at most.
 */
#define UNS_MAX_LINES 64
struct uns_line {
	uint32_t ul_ns;
	uint32_t ul_host;
	uint32_t ul_count;
};
struct uns_map {
	struct uns_line um_lines[UNS_MAX_LINES];
	unsigned um_n;
	const char *um_opt; /* the option that set it, for messages */
	const char *um_arg; /* its first value as given */
};

/* Which of a user namespace's two maps. */
enum uns_kind { UNS_UID = 0, UNS_GID = 1 };

/* --setid: what becomes of setuid/setgid bits on files the guest makes. */
enum parent_setid { PARENT_SETID_REFUSE = 0, PARENT_SETID_STRIP, PARENT_SETID_ALLOW };

/* What the configuration file and the command line asked for; filled once
 * by parent_parse_args (config.c holds the defaults and the file). */
struct parent_conf {
	const char *pc_config;	    /* --config=FILE, NULL: none */
	uint32_t pc_backend;	    /* enum ipc_backend */
	const char *pc_socket_path; /* NULL: --fd or socket activation */
	const char *pc_pid_file;    /* --pid-file=FILE, NULL: none */
	uint32_t pc_exit_on_disconnect; /* --exit-on-disconnect: one front end, then exit */
	int pc_fd;		    /* --fd=N, -1 if not given */
	const char *pc_socket_group;
	uint32_t pc_cache;   /* enum ipc_cache */
	uint32_t pc_sandbox; /* enum ipc_sandbox */
	uint32_t pc_thread_pool;
	uint32_t pc_poll_us;
	uint32_t pc_readonly;
	uint32_t pc_writeback; /* --writeback: IPC_CFG_WRITEBACK */
	uint32_t pc_xattr;     /* --xattr: IPC_CFG_XATTR */
	uint32_t pc_devices;   /* --device-nodes=allow: IPC_CFG_DEVICES */
	uint32_t pc_setid;     /* --setid: enum parent_setid */
	uint32_t pc_file_caps; /* --file-caps=allow: IPC_CFG_FILE_CAPS */
	uint64_t pc_rlimit_nofile; /* --rlimit-nofile, 0: raise to the hard limit */
	int pc_log_level; /* enum log_level */
	int pc_syslog;
	const char *pc_log_file;   /* --log-file=FILE, NULL: standard error */
	uint32_t pc_seccomp;	   /* enum ipc_seccomp */
	const char *pc_policy_dir; /* --policy-dir, NULL: the default */
	int pc_check_policy;	   /* --check-policy: validate and exit */
	int pc_test_forbidden;	   /* hidden, test hooks only: first worker misbehaves */
	int pc_test_slow_borrow;   /* hidden, test hooks only: IPC_CFG_TEST_SLOW_BORROW */
	int pc_test_escape_probe;  /* hidden, test hooks only: IPC_CFG_TEST_ESCAPE_PROBE */
	uint32_t pc_test_sigbus_queue; /* hidden, test hooks only: 0 = off */
	uint32_t pc_test_die_nt_queue; /* hidden, test hooks only: 0 = off */
	uint32_t pc_test_hold_nt_queue;	 /* the same, IPC_CFG_TEST_HOLD_NT_LOCK */
	uint32_t pc_test_scribble_queue; /* the same, IPC_CFG_TEST_SCRIBBLE_NT */
	uint32_t pc_test_flood_queue;	 /* the same, IPC_CFG_TEST_FLOOD_NOTICES */
	struct uns_map pc_uid_map; /* --uid-map, empty: the default */
	struct uns_map pc_gid_map;
	struct uns_map pc_tr_uid; /* --translate-uid map:..., empty: none */
	struct uns_map pc_tr_gid;
	/* Each back end's own keys (be_desc.bd_keys, by index) as the file
	 * or the command line gave them, or their defaults; conf_be_str and
	 * conf_be_num read the share's back end's. */
	struct conf_be_values {
		const char *bv_str[BE_MAX_KEYS]; /* NULL: not given, no default */
		uint64_t bv_num[BE_MAX_KEYS];	 /* BK_SIZE, BK_COUNT */
	} pc_be[BE_MAX_ID];
	char **pc_strings; /* what the file gave, -o copies; freed by conf_free */
	size_t pc_nstrings;
};

#define CONF_DEFAULT_THREADS 1
#define CONF_MAX_THREADS     1024
#define CONF_DEFAULT_POLL_US 50

struct pol_set;
struct s3_creds;

/* Descriptors opened once at start-up and shared by every connection. */
struct parent_env {
	struct event_base *pe_base;
	const struct parent_conf *pe_conf;
	int pe_root_fd; /* CONFIG's first fd: the share root (O_PATH|O_DIRECTORY), the memory
			 * back end's file system or the S3 back end's staging directory */
	int pe_exe_fd;	/* worker binary, O_PATH */
	char pe_exe_path[4096];
	int pe_from_build_tree; /* run from the build tree: its worker and policies */
	int pe_cwd_fd;		/* our working directory, lent to namespace clones */

	/* Seccomp (privdrop.c): compiled once at start-up. */
	char pe_policy_dir[4096];
	char pe_worker_policy[4200]; /* the file an operator edits for a worker */
	struct pol_set *pe_worker_set;
	struct pol_set *pe_parent_set;
	void *pe_parent_filter;	/* scmp_filter_ctx until loaded */
	int pe_prog_fd;		/* sealed memfd: the worker's BPF program, -1 for none */
	uint32_t pe_prog_ninsns;

	/* User namespaces (userns.c): fixed at start-up. */
	int pe_unpriv;		/* not root: no capabilities to drop or lend */
	int pe_userns;		/* clone workers with CLONE_NEWUSER */
	struct uns_map pe_uid_map; /* what is written to a worker's uid_map */
	struct uns_map pe_gid_map;
	uint32_t pe_ns_uid;	/* the ids a worker takes inside its namespace */
	uint32_t pe_ns_gid;
	/* Unprivileged, a map other than one line of our own id is written by
	 * newuidmap/newgidmap (by index enum uns_kind), which the id-map helper
	 * runs (mapper.c); "": we write the map ourselves. */
	char pe_map_tool[2][PATH_MAX];

	/* The S3 back end (s3_parent.c); its staging directory is pe_root_fd. */
	int pe_ca_fd;		      /* CA bundle of an https endpoint, -1: none */
	struct s3_creds *pe_s3_creds; /* NULL unless it is S3; SIGHUP replaces them */

	/* SIGHUP (bulkheadd.c): the configuration and the worker's seccomp
	 * program read again, waiting for the next front end; NULL: none. */
	struct parent_env *pe_next;
};

/* Timeouts of the synchronous conversation with a worker. */
#define PARENT_HELLO_TIMEOUT_MS 5000
#define PARENT_ACK_TIMEOUT_MS	5000
#define PARENT_DRAIN_TIMEOUT_MS 5000
#define PARENT_STOP_TIMEOUT_MS	(PARENT_DRAIN_TIMEOUT_MS + 2000)
#define PARENT_KILL_GRACE_MS	1000
/* How often the parent looks at the node table's lock word (the bound on
 * holding it is NT_LOCK_HOLD_MAX_MS, node_table.h). */
#define PARENT_NT_CHECK_MS 250
/* NOTICEs a worker may send between requests: a burst, then a steady rate
 * per second; beyond that it is killed. The lines they make us log: a
 * burst, then a rate per second; beyond that they are counted, not logged. */
#define PARENT_NOTICE_BURST 64
#define PARENT_NOTICE_RATE  16
#define PARENT_WK_LOG_BURST 20
#define PARENT_WK_LOG_RATE  2
/* Lines of a worker's own log (worker_log.c), at once and per second; more
 * at --log-level=debug, where a worker logs every request. */
#define PARENT_WK_STDERR_BURST	     200
#define PARENT_WK_STDERR_RATE	     20
#define PARENT_WK_STDERR_BURST_DEBUG 5000
#define PARENT_WK_STDERR_RATE_DEBUG  2000
/* A front end that stalls in the middle of a message is dropped after this. */
#define PARENT_FRONTEND_IO_TIMEOUT_S 5

/* bulkheadd.c */
int parent_parse_args(int argc, char *argv[], struct parent_conf *conf);
/* sd_notify without libsystemd: one datagram, e.g. "STATUS=...", to
 * $NOTIFY_SOCKET if it is set. */
void parent_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Between two front ends: what SIGHUP read takes over (the settings, the
 * worker's seccomp program). */
void parent_next_front_end(struct parent_env *env);

/* config.c: settings as the command line and bulkhead.conf(5) spell them.
 * The setters return 0, or -1 with the reason in why. */
extern const char *const conf_cache_names[3];
extern const char *const conf_sandbox_names[3];
extern const char *const conf_seccomp_names[4];
void conf_defaults(struct parent_conf *c);
int conf_set_cache(struct parent_conf *c, const char *v, char *why, size_t whylen);
int conf_set_sandbox(struct parent_conf *c, const char *v, char *why, size_t whylen);
int conf_set_seccomp(struct parent_conf *c, const char *v, char *why, size_t whylen);
int conf_set_devices(struct parent_conf *c, const char *v, char *why, size_t whylen);
int conf_set_setid(struct parent_conf *c, const char *v, char *why, size_t whylen);
int conf_set_file_caps(struct parent_conf *c, const char *v, char *why, size_t whylen);
int conf_set_log_level(struct parent_conf *c, const char *v, char *why, size_t whylen);
int conf_set_backend(struct parent_conf *c, const char *v, char *why, size_t whylen);
/* Key name of back end id (its descriptor's) set to v, checked; the string
 * must outlive c (argv, or conf_keep'd). The command line's --shared-dir,
 * -o source= and --memory-size come here, as the file's sections do. */
int conf_set_be_key(struct parent_conf *c, uint32_t id, const char *name, const char *v, char *why,
		    size_t whylen);
/* The share's back end's key name: as given or its default (NULL:
 * neither), or its number (0: neither; for BK_CHOICE, the index). */
const char *conf_be_str(const struct parent_conf *c, const char *name);
uint64_t conf_be_num(const struct parent_conf *c, const char *name);
/* The first key the share's back end requires that is not given, or NULL. */
const struct be_key *conf_be_missing(const struct parent_conf *c);
/* A number within [min, max] into *out; what names it in the message. */
int conf_number(const char *what, const char *v, uint64_t min, uint64_t max, uint64_t *out,
		char *why, size_t whylen);
/* Read bulkhead.conf(5) at path into c, which holds the defaults
 * (conf_defaults): 0, or -1 with "FILE:LINE: reason". */
int conf_load(struct parent_conf *c, const char *path, char *err, size_t errlen);
/* s (malloc'd) lives until conf_free: 0, or -1 (s is not kept). */
int conf_keep(struct parent_conf *c, char *s);
void conf_free(struct parent_conf *c);

/* listener.c */
int listener_open(const struct parent_conf *conf, int *created);
int listener_start(struct event_base *base, int fd);
void listener_stop(void);
void listener_unlink(const struct parent_conf *conf);

/* vu_server.c */
void vu_server_init(struct parent_env *env);
bool vu_server_busy(void);
/* Is a front end connected? */
bool vu_server_active(void);
/* Take over an accepted connection: 0 or -errno (the fd is closed on error). */
int vu_server_start(int fd);
/* Drop the current front end (if any): stop workers, close everything. */
void vu_server_end(const char *why);
/* The same from the event loop, soon: for a worker's report that arrives
 * while the parent waits on that worker inside a front-end request. */
void vu_server_drop(const char *why);

/* privdrop.c */
int priv_policy_dir(const struct parent_conf *conf, int from_build_tree, char *buf, size_t len);
int priv_compile(struct parent_env *env);
/* SIGHUP: the worker's policy file compiled again into next (a copy of the
 * running env with the new pe_conf), parent.policy only checked. 0 or
 * -errno, logged with file and line. */
int priv_recompile(struct parent_env *next);
int priv_drop(struct parent_env *env);
/* Which policy file forbids syscall nr for a worker, for the log. */
const char *priv_policy_for(const struct parent_env *env, int nr);

/* memshare.c: the memory back end's file system, made once at start-up
 * into env->pe_root_fd. 0 or -1 (logged). */
int mem_make(struct parent_env *env);

/* s3_parent.c: the S3 back end's staging directory (into pe_root_fd), CA
 * bundle and credentials, at start-up. 0 or -1 (logged). */
int s3_parent_init(struct parent_env *env);
/* SIGHUP: the credentials read again. 0 when they were (the live workers
 * are to get them: workers_s3_creds), -1 when the old ones stay (logged). */
int s3_parent_reload(struct parent_env *env);
/* Wipe and free the credentials. */
void s3_parent_free(struct parent_env *env);
/* The payloads of S3_CONFIG and S3_CREDS (the caller wipes the latter). */
void s3_parent_config(const struct parent_env *env, struct ipc_s3_config *sc);
void s3_parent_creds(const struct parent_env *env, struct ipc_s3_creds *cr);

/* qwatch.c: a worker's descriptor the loop reads, with its read event */
struct qwatch {
	int qw_fd; /* -1: not watched */
	struct event *qw_ev;
};
/* Watch fd (taken; closed on failure), calling cb with q as its argument
 * whenever it is readable; stops a previous watch first. 0 or -ENOMEM. */
int qwatch_start(struct qwatch *w, struct event_base *base, int fd,
		 void (*cb)(int, short, void *), uint32_t q);
/* Free the event and close the descriptor; qw_fd becomes -1. */
void qwatch_stop(struct qwatch *w);

/* seccomp_notify.c (--seccomp=log) */
void seclog_init(struct parent_env *env);
/* Watch worker q's listener (takes fd): 0 or -errno. */
int seclog_watch(uint32_t q, int fd);
void seclog_forget(uint32_t q);
/* Listener fds for a synchronous wait: fills fds/qs, returns the count. */
int seclog_fds(int *fds, uint32_t *qs, int max);
/* Answer one pending notification of worker q (its fd polled readable). */
void seclog_service(uint32_t q);

/* userns.c */
/* Parse one --uid-map/--gid-map (:NS:HOST:COUNT:) or --translate-uid/-gid
 * (map:GUEST:HOST:COUNT) value into m; the error on stderr. 0 or -EINVAL. */
int uns_parse_idmap(const char *opt, const char *arg, struct uns_map *m);
int uns_parse_translate(const char *opt, const char *arg, struct uns_map *m);
/* Decide the privilege mode and the workers' maps; log them. 0 or -EINVAL. */
int uns_plan(struct parent_env *env);
/* "0->1000(1) 1->100000(65536)": a map for messages. */
void uns_describe(const struct uns_map *m, char *buf, size_t len);
/* Parent, after cloning pid into a new user namespace: its maps, written
 * directly (with setgroups "deny" first when unprivileged) or by the id-map
 * helper, then read back and compared. 0, or -errno with why filled. */
int uns_write_maps(const struct parent_env *env, pid_t pid, char *why, size_t len);
/* Child, right after the clone: wait on syncfd for the maps, take the
 * namespace ids, keep what the worker needs across exec. 0 or -errno. */
int uns_child_enter(const struct parent_env *env, int syncfd);
/* Make a mount (a descriptor, or -errno with *step naming the call that
 * failed) for the workers. */
typedef int (*uns_make_fn)(const struct parent_env *env, const char **step);
/*
 * What an unprivileged parent may not make, a worker may, in the user
 * namespace it runs in: make runs in a short-lived child cloned into a user
 * and a mount namespace with the workers' id maps, which sends the
 * descriptor back. The mount belongs to that namespace, which outlives the
 * child; the workers' namespaces map the same ids, so their callers' ids
 * are valid on it. The descriptor, or -errno (the step is the child's).
 */
int uns_make_fd(const struct parent_env *env, uns_make_fn make);

/* mapper.c: the id-map helper, which runs newuidmap/newgidmap for an
 * unprivileged parent (see there for why it is a process of its own). */
/* Check that the tool of each map in need can work (no no_new_privs, the
 * tool installed), fill env->pe_map_tool and fork the helper. Logs why
 * not, naming the option. 0 or -errno. */
int mapper_start(struct parent_env *env, const bool need[2]);
/* The helper runs the tool of map k on pid, a child of ours in a new user
 * namespace: 0, or -errno with why filled (the command line, its exit
 * status and output). */
int mapper_map(const struct parent_env *env, enum uns_kind k, pid_t pid, char *why, size_t len);
/* workers_reap reaped pid: true if it was the helper (then gone). */
bool mapper_reaped(pid_t pid);
/* At exit: end the helper and reap it. */
void mapper_stop(void);

/* worker_log.c: workers' standard error, relayed into our log */
void wl_init(struct event_base *base);
/* Read the pipe fd (its other end is worker q's stderr) from now on. */
int wl_watch(uint32_t q, int fd);
/* Relay what is there now; at EOF, stop watching. */
void wl_service(uint32_t q);
/* Worker q is gone: relay what is left, then close. */
void wl_forget(uint32_t q);
/* The pipes being watched (for a wait's poll): count, fds and queues. */
int wl_fds(int *fds, uint32_t *qs, int max);

/* workers.c */
void workers_init(struct parent_env *env);
bool workers_live(uint32_t q);
bool workers_dead(uint32_t q);
/* Workers running now, for the status line. */
unsigned workers_count(void);
int workers_spawn(uint32_t q, const struct ipc_region *regions, const int *fds, uint32_t nregions);
int workers_mem_table(const struct ipc_region *regions, const int *fds, uint32_t nregions);
int workers_ring_start(uint32_t q, const struct ipc_ring_start *rs, const int *fds, size_t nfds);
int workers_ring_enable(uint32_t q, bool enabled);
int workers_ring_fd(uint32_t q, uint32_t which, int fd);
int workers_ring_stop(uint32_t q, uint32_t *last_avail);
/* SIGHUP read the S3 credentials again: every live worker gets them. */
void workers_s3_creds(void);
void workers_stop_all(void);
void workers_reap(void);

#endif
