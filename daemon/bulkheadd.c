/*
 * bulkheadd.c - the privileged parent: command line, start-up, signals and
 * the event loop.
 * Runs in: the parent, with the privileges it was started with. It opens the
 * share root and the worker binary once, obtains the listening socket, tells
 * systemd it is ready, and leaves everything the guest controls to workers.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "bulkhead.h"
#include "backends.h"
#include "bulkheadd.h"
#include "ipc.h"
#include "log.h"
#include "policy.h"
#include "util.h"

static const char parent_usage[] =
    "usage: bulkheadd --shared-dir=DIR | --memory-size=SIZE | --config=FILE\n"
    "                 [--socket-path=PATH | --fd=N] [options]\n"
    "\n"
    "  --socket-path=PATH        create and listen on the UNIX socket PATH\n"
    "  --fd=N                    listen on the inherited socket descriptor N\n"
    "  --config=FILE             read settings from FILE (bulkhead.conf(5)); options\n"
    "                            on the command line override it\n"
    "  --shared-dir=DIR          host directory to share (the passthrough back end)\n"
    "  --memory-size=SIZE        share a new in-memory file system of SIZE bytes\n"
    "                            (K, M, G, T; the memory back end) instead\n"
    "  -o OPT[,OPT...]           virtiofsd-style options: source=DIR,\n"
    "                            cache=never|auto|always, writeback, xattr, "
    "sandbox=namespace|chroot|none,\n"
    "                            seccomp=kill|trap|log|none, device_nodes=refuse|allow,\n"
    "                            setid=refuse|strip|allow, file_caps=refuse|allow,\n"
    "                            no_xattr, no_writeback, debug, log_level=LEVEL,\n"
    "                            vhost_user_socket=PATH, and virtiofsd's moot ones\n"
    "                            (',,' is a comma in a value)\n"
    "  -d                        as --log-level=debug\n"
    "  --pid-file=FILE           write the daemon's pid to FILE (removed at exit)\n"
    "  --exit-on-disconnect      exit 0 when the front end goes (virtiofsd's way)\n"
    "                            instead of waiting for the next one\n"
    "  -f, --announce-submounts, --inode-file-handles=never|prefer\n"
    "                            accepted for virtiofsd's callers; change nothing\n"
    "  --cache=never|auto|always guest cache policy (default auto; none = never)\n"
    "  --writeback               let the guest cache writes (FUSE writeback cache)\n"
    "  --xattr                   serve extended attributes (default: EOPNOTSUPP)\n"
    "  --device-nodes=refuse|allow\n"
    "                            may the guest create character and block devices\n"
    "                            on the host (default refuse: EPERM)\n"
    "  --setid=refuse|strip|allow\n"
    "                            setuid/setgid bits on files the guest creates or\n"
    "                            chmods: EPERM (refuse, default), silently dropped\n"
    "                            (strip), or kept (allow)\n"
    "  --file-caps=refuse|allow  may the guest set file capabilities\n"
    "                            (security.capability; default refuse: EPERM)\n"
    "  --sandbox=namespace|chroot|none\n"
    "                            how workers confine themselves (default namespace;\n"
    "                            none only for debugging)\n"
    "  --seccomp=kill|trap|log|none\n"
    "                            what a worker's forbidden system call does: it is\n"
    "                            named in the log, then the worker dies by SIGKILL\n"
    "                            (kill, default) or SIGSYS (trap); log lets it through\n"
    "                            and prints a policy line once per system call\n"
    "  --policy-dir=DIR          seccomp policy files (DIR/<arch> if it exists;\n"
    "                            default " BH_POLICY_DIR "/<arch>)\n"
    "  --check-policy            validate the policy files, print the rule counts\n"
    "                            per worker kind, and exit (1 on an error)\n"
    "  --uid-map=:NS_UID:HOST_UID:COUNT:\n"
    "  --gid-map=:NS_GID:HOST_GID:COUNT:\n"
    "                            run each worker in a user namespace with this map\n"
    "                            line (repeatable, up to 64 lines; unprivileged the\n"
    "                            default is :0:OUR_ID:1:, and any other map is written\n"
    "                            by newuidmap/newgidmap per /etc/subuid, /etc/subgid,\n"
    "                            which cannot work under no_new_privs)\n"
    "  --translate-uid=map:GUEST:HOST:COUNT\n"
    "  --translate-gid=map:GUEST:HOST:COUNT\n"
    "                            virtiofsd's form, folded into the namespace map\n"
    "                            (HOST is an id of --uid-map/--gid-map's namespace);\n"
    "                            only map: is supported\n"
    "  --thread-pool-size=N      blocking calls per worker (default 1, 0 = inline)\n"
    "  --poll-us=N               watch a busy ring up to N microseconds before\n"
    "                            sleeping (default 50, 0 = never)\n"
    "  --readonly                refuse every change to the share\n"
    "  --rlimit-nofile=N         descriptors per process (default: the hard limit;\n"
    "                            a limit that cannot be set is a warning)\n"
    "  --socket-group=GROUP      give the socket to GROUP, mode 0660\n"
    "  --log-level=error|warn|info|debug\n"
    "                            how much to log (default info)\n"
    "  --syslog                  log to syslog instead of standard error\n"
    "  --log-file=FILE           log to FILE (appended to, reopened on SIGHUP)\n"
    "  --print-capabilities      print the vhost-user capabilities and exit\n"
    "  --help                    print this help and exit\n"
    "  --version                 print the version and build id and exit\n"
    "\n"
    "Without --socket-path and --fd, the socket passed by systemd (LISTEN_FDS) is used.\n";

enum {
	OPT_SOCKET_PATH = 256,
	OPT_FD,
	OPT_SHARED_DIR,
	OPT_CACHE,
	OPT_SANDBOX,
	OPT_THREAD_POOL,
	OPT_POLL_US,
	OPT_READONLY,
	OPT_WRITEBACK,
	OPT_XATTR,
	OPT_SOCKET_GROUP,
	OPT_LOG_LEVEL,
	OPT_SYSLOG,
	OPT_LOG_FILE,
	OPT_ANNOUNCE_SUBMOUNTS,
	OPT_PID_FILE,
	OPT_EXIT_ON_DISCONNECT,
	OPT_INODE_FILE_HANDLES,
	OPT_PRINT_CAPS,
	OPT_HELP,
	OPT_VERSION,
	OPT_SECCOMP,
	OPT_POLICY_DIR,
	OPT_CHECK_POLICY,
	OPT_TEST_FORBIDDEN,
	OPT_TEST_SLOW_BORROW,
	OPT_TEST_DIE_NT_LOCK,
	OPT_TEST_HOLD_NT_LOCK,
	OPT_TEST_SCRIBBLE_NT,
	OPT_TEST_FLOOD_NOTICES,
	OPT_TEST_SIGBUS,
	OPT_UID_MAP,
	OPT_GID_MAP,
	OPT_TRANSLATE_UID,
	OPT_TRANSLATE_GID,
	OPT_RLIMIT_NOFILE,
	OPT_DEVICE_NODES,
	OPT_SETID,
	OPT_FILE_CAPS,
	OPT_TEST_ESCAPE_PROBE,
	OPT_CONFIG,
	OPT_MEMORY_SIZE,
};

static const struct option parent_options[] = {
    {"socket-path", required_argument, NULL, OPT_SOCKET_PATH},
    {"fd", required_argument, NULL, OPT_FD},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"shared-dir", required_argument, NULL, OPT_SHARED_DIR},
    {"memory-size", required_argument, NULL, OPT_MEMORY_SIZE},
    {"cache", required_argument, NULL, OPT_CACHE},
    {"sandbox", required_argument, NULL, OPT_SANDBOX},
    {"thread-pool-size", required_argument, NULL, OPT_THREAD_POOL},
    {"poll-us", required_argument, NULL, OPT_POLL_US},
    {"readonly", no_argument, NULL, OPT_READONLY},
    {"rlimit-nofile", required_argument, NULL, OPT_RLIMIT_NOFILE},
    {"writeback", no_argument, NULL, OPT_WRITEBACK},
    {"xattr", no_argument, NULL, OPT_XATTR},
    {"device-nodes", required_argument, NULL, OPT_DEVICE_NODES},
    {"setid", required_argument, NULL, OPT_SETID},
    {"file-caps", required_argument, NULL, OPT_FILE_CAPS},
    {"socket-group", required_argument, NULL, OPT_SOCKET_GROUP},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"syslog", no_argument, NULL, OPT_SYSLOG},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"announce-submounts", no_argument, NULL, OPT_ANNOUNCE_SUBMOUNTS},
    {"pid-file", required_argument, NULL, OPT_PID_FILE},
    {"exit-on-disconnect", no_argument, NULL, OPT_EXIT_ON_DISCONNECT},
    {"inode-file-handles", required_argument, NULL, OPT_INODE_FILE_HANDLES},
    {"print-capabilities", no_argument, NULL, OPT_PRINT_CAPS},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {"seccomp", required_argument, NULL, OPT_SECCOMP},
    {"policy-dir", required_argument, NULL, OPT_POLICY_DIR},
    {"check-policy", no_argument, NULL, OPT_CHECK_POLICY},
    {"uid-map", required_argument, NULL, OPT_UID_MAP},
    {"gid-map", required_argument, NULL, OPT_GID_MAP},
    {"translate-uid", required_argument, NULL, OPT_TRANSLATE_UID},
    {"translate-gid", required_argument, NULL, OPT_TRANSLATE_GID},
#ifdef BH_TEST_HOOKS
    /* Not in --help: the first worker makes a forbidden call (tests only). */
    {"test-forbidden-syscall", no_argument, NULL, OPT_TEST_FORBIDDEN},
    /* Not in --help: queue N's worker dies holding the node-table lock. */
    {"test-die-holding-nt-lock", required_argument, NULL, OPT_TEST_DIE_NT_LOCK},
    /* Not in --help: queue N's worker takes the node-table lock and keeps it. */
    {"test-hold-nt-lock", required_argument, NULL, OPT_TEST_HOLD_NT_LOCK},
    /* Not in --help: queue N's worker writes garbage all over the node table. */
    {"test-scribble-node-table", required_argument, NULL, OPT_TEST_SCRIBBLE_NT},
    /* Not in --help: queue N's worker floods the parent with NOTICEs. */
    {"test-flood-notices", required_argument, NULL, OPT_TEST_FLOOD_NOTICES},
    /* Not in --help: borrowed handles are installed 200 ms after their check. */
    {"test-slow-borrow", no_argument, NULL, OPT_TEST_SLOW_BORROW},
    /* Not in --help: workers try to escape through their descriptors on request. */
    {"test-escape-probe", no_argument, NULL, OPT_TEST_ESCAPE_PROBE},
    /* Not in --help: queue N's worker faults outside guest memory at every request. */
    {"test-sigbus-outside-guest", required_argument, NULL, OPT_TEST_SIGBUS},
#endif
    {NULL, 0, NULL, 0},
};

static int parent_from_build_tree(void);

/*
 * The end of --help: the paths this binary uses, as configure fixed them
 * (bulkheadd(8), FILES, says the same: both come from one build), and what
 * a binary run from its build tree uses instead.
 */
static void parent_help_paths(void)
{
	char dir[4096];

	if (pol_default_dir(0, dir, sizeof(dir)) == 0)
		printf("\nPaths (set when bulkheadd was built):\n"
		       "  Policy directory: %s\n"
		       "  Worker program:   %s\n",
		       dir, BH_WORKER_PATH);
	if (parent_from_build_tree() && pol_default_dir(1, dir, sizeof(dir)) == 0)
		printf("This bulkheadd runs from its build tree and uses instead:\n"
		       "  Policy directory: %s\n"
		       "  Worker program:   %s\n",
		       dir, BH_BUILD_DIR "/worker/bulkhead-worker");
}

/* A setter's verdict on a command-line value: its reason on stderr. */
static int parent_opt(int r, const char *why)
{
	if (r < 0) {
		fprintf(stderr, "bulkheadd: %s\n", why);
		return -EINVAL;
	}
	return 0;
}

/*
 * -o a=b,c: the spelling of QEMU's C virtiofsd, which libvirt (before
 * separate options) and Kata's runtimes still use. Every option either of
 * them passes is here, with what it means in bulkhead: the same setting,
 * moot (accepted, changes nothing; bulkheadd(8), COMPATIBILITY WITH
 * VIRTIOFSD, says why), or refused with its name.
 */
enum parent_o_kind { PO_SET, PO_MOOT, PO_REFUSE };

struct parent_o {
	const char *po_name;
	bool po_value; /* NAME=VALUE, else a bare NAME */
	enum parent_o_kind po_kind;
	int (*po_set)(struct parent_conf *c, const char *v, char *why, size_t whylen);
	const char *po_why; /* PO_REFUSE: the reason */
};

static int parent_o_source(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	c->pc_backend = IPC_BE_PASSTHROUGH;
	return conf_set_be_key(c, IPC_BE_PASSTHROUGH, "dir", v, why, whylen);
}

static int parent_o_xattr(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	(void)v, (void)why, (void)whylen;
	c->pc_xattr = 1;
	return 0;
}

static int parent_o_no_xattr(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	(void)v, (void)why, (void)whylen;
	c->pc_xattr = 0;
	return 0;
}

static int parent_o_writeback(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	(void)v, (void)why, (void)whylen;
	c->pc_writeback = 1;
	return 0;
}

static int parent_o_no_writeback(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	(void)v, (void)why, (void)whylen;
	c->pc_writeback = 0;
	return 0;
}

static int parent_o_debug(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	(void)v;
	return conf_set_log_level(c, "debug", why, whylen);
}

/* virtiofsd's levels: err, warn, info, debug */
static int parent_o_log_level(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	return conf_set_log_level(c, strcmp(v, "err") == 0 ? "error" : v, why, whylen);
}

static int parent_o_socket(struct parent_conf *c, const char *v, char *why, size_t whylen)
{
	(void)why, (void)whylen;
	c->pc_socket_path = v;
	return 0;
}

static const struct parent_o parent_o_table[] = {
    {"source", true, PO_SET, parent_o_source, NULL},
    {"cache", true, PO_SET, conf_set_cache, NULL},
    {"sandbox", true, PO_SET, conf_set_sandbox, NULL},
    {"seccomp", true, PO_SET, conf_set_seccomp, NULL},
    {"device_nodes", true, PO_SET, conf_set_devices, NULL},
    {"setid", true, PO_SET, conf_set_setid, NULL},
    {"file_caps", true, PO_SET, conf_set_file_caps, NULL},
    {"xattr", false, PO_SET, parent_o_xattr, NULL},
    {"no_xattr", false, PO_SET, parent_o_no_xattr, NULL},
    {"writeback", false, PO_SET, parent_o_writeback, NULL},
    {"no_writeback", false, PO_SET, parent_o_no_writeback, NULL},
    {"debug", false, PO_SET, parent_o_debug, NULL},
    {"log_level", true, PO_SET, parent_o_log_level, NULL},
    {"vhost_user_socket", true, PO_SET, parent_o_socket, NULL},
    /* locks are always served, POSIX and flock alike, as host locks */
    {"flock", false, PO_MOOT, NULL, NULL},
    {"no_flock", false, PO_MOOT, NULL, NULL},
    {"posix_lock", false, PO_MOOT, NULL, NULL},
    {"no_posix_lock", false, PO_MOOT, NULL, NULL},
    /* READDIRPLUS is the guest's to ask for; the daemon answers both */
    {"readdirplus", false, PO_MOOT, NULL, NULL},
    {"no_readdirplus", false, PO_MOOT, NULL, NULL},
    /* the guest's caches follow cache= alone */
    {"timeout", true, PO_MOOT, NULL, NULL},
    /* no racy fallback exists to disable */
    {"norace", false, PO_MOOT, NULL, NULL},
    /* set-id bits and file capabilities follow --setid and --file-caps */
    {"killpriv_v2", false, PO_MOOT, NULL, NULL},
    {"no_killpriv_v2", false, PO_MOOT, NULL, NULL},
    /* the whole share is one file system to the guest (see bulkheadd(8)) */
    {"announce_submounts", false, PO_MOOT, NULL, NULL},
    {"allow_direct_io", false, PO_MOOT, NULL, NULL},
    {"no_allow_direct_io", false, PO_MOOT, NULL, NULL},
    {"modcaps", true, PO_REFUSE, NULL,
     "the capabilities a worker keeps are set by its back end and by --device-nodes, "
     "--setid and --file-caps"},
    {"xattrmap", true, PO_REFUSE, NULL, "extended attribute names are served as they are"},
};

/*
 * The next option of a -o list, in place: the text up to the next single
 * ',' with each ",," (libvirt's escape of a comma in a path) turned back
 * into ','. NULL after the last one.
 */
static char *parent_o_next(char **cur)
{
	char *start = *cur, *r = start, *w = start;

	if (!start)
		return NULL;
	for (;; r++) {
		if (*r == ',' && r[1] == ',') {
			*w++ = ',';
			r++;
		} else if (*r == ',' || *r == '\0') {
			*cur = *r ? r + 1 : NULL;
			*w = '\0';
			return start;
		} else {
			*w++ = *r;
		}
	}
}

/* -o a=b,c=d, split in a copy kept with conf: the process's command line
 * (ps, /proc/PID/cmdline) stays as the caller wrote it. */
static int parent_parse_o(struct parent_conf *conf, const char *arg)
{
	char *cur = strdup(arg), *opt, why[256];

	if (!cur || conf_keep(conf, cur) < 0) {
		free(cur);
		fprintf(stderr, "bulkheadd: out of memory\n");
		return -ENOMEM;
	}

	while ((opt = parent_o_next(&cur))) {
		const struct parent_o *po = NULL;
		char *val = strchr(opt, '=');

		if (val)
			*val++ = '\0';
		for (size_t i = 0; i < BH_ARRAY_SIZE(parent_o_table); i++)
			if (strcmp(parent_o_table[i].po_name, opt) == 0)
				po = &parent_o_table[i];
		if (!po || po->po_value != (val != NULL) || (val && !*val)) {
			fprintf(stderr, "bulkheadd: unknown or incomplete -o option '%s'\n", opt);
			return -EINVAL;
		}
		if (po->po_kind == PO_REFUSE) {
			fprintf(stderr, "bulkheadd: -o %s is not supported: %s\n", opt, po->po_why);
			return -EINVAL;
		}
		if (po->po_kind == PO_SET &&
		    parent_opt(po->po_set(conf, val, why, sizeof(why)), why) < 0)
			return -EINVAL;
	}
	return 0;
}

/* --test-NAME=Q: the request queue (1 or more) whose worker a test hook
 * turns hostile. */
static int parent_test_queue(const char *name, const char *v, uint32_t *q)
{
	uint64_t n;

	if (bh_parse_u64(v, 1, BH_MAX_QUEUES - 1, &n) < 0) {
		fprintf(stderr, "bulkheadd: invalid --test-%s '%s' (a request queue, 1-%d)\n", name,
			v, BH_MAX_QUEUES - 1);
		return -EINVAL;
	}
	*q = (uint32_t)n;
	return 0;
}

/* --pid-file: our pid, written whole (a new file renamed over the name),
 * before the privileges go. 0 or -1 (logged). */
static int parent_pid_file(const char *path)
{
	char tmp[4096];
	FILE *f;
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) >= sizeof(tmp)) {
		log_warnx("--pid-file %s: name too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		log_warn("--pid-file %s", tmp);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		log_warn("--pid-file %s", path);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* What start-up left on disk goes: the socket if we created it, the pid file. */
static void parent_undo(const struct parent_conf *conf, int created)
{
	listener_unlink(created ? conf : NULL);
	if (conf->pc_pid_file && unlink(conf->pc_pid_file) < 0)
		log_warn("--pid-file %s: cannot remove it", conf->pc_pid_file);
}

/* 0: run; 1: done, exit 0 (help, version, capabilities); -EINVAL: exit 1. */
int parent_parse_args(int argc, char *argv[], struct parent_conf *conf)
{
	const struct be_key *missing;
	char why[512];
	uint64_t v;
	int c;

	conf_defaults(conf);
	/* The file first, wherever --config stands, so that every option on
	 * the command line overrides it. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:df", parent_options, NULL)) != -1) {
		if (c != OPT_CONFIG)
			continue;
		if (conf->pc_config) {
			fprintf(stderr, "bulkheadd: --config may be given once\n");
			return -EINVAL;
		}
		conf->pc_config = optarg;
	}
	if (conf->pc_config && conf_load(conf, conf->pc_config, why, sizeof(why)) < 0) {
		fprintf(stderr, "bulkheadd: %s\n", why);
		return -EINVAL;
	}

	optind = 0;
	while ((c = getopt_long(argc, argv, ":o:df", parent_options, NULL)) != -1) {
		switch (c) {
		case OPT_CONFIG:
			break;
		case OPT_MEMORY_SIZE:
			if (parent_opt(conf_set_be_key(conf, IPC_BE_MEMORY, "size", optarg, why,
						       sizeof(why)),
				       why) < 0)
				return -EINVAL;
			conf->pc_backend = IPC_BE_MEMORY;
			break;
		case OPT_SOCKET_PATH:
			conf->pc_socket_path = optarg;
			break;
		case OPT_FD:
			if (bh_parse_u64(optarg, 0, INT_MAX, &v) < 0) {
				fprintf(stderr, "bulkheadd: invalid --fd '%s'\n", optarg);
				return -EINVAL;
			}
			conf->pc_fd = (int)v;
			break;
		case OPT_SHARED_DIR:
			if (parent_opt(conf_set_be_key(conf, IPC_BE_PASSTHROUGH, "dir", optarg, why,
						       sizeof(why)),
				       why) < 0)
				return -EINVAL;
			conf->pc_backend = IPC_BE_PASSTHROUGH;
			break;
		case 'o':
			if (parent_parse_o(conf, optarg) < 0)
				return -EINVAL;
			break;
		case 'd': /* virtiofsd's -d */
			conf->pc_log_level = LOG_LVL_DEBUG;
			break;
		case OPT_PID_FILE:
			if (!*optarg) {
				fprintf(stderr, "bulkheadd: --pid-file needs a file name\n");
				return -EINVAL;
			}
			conf->pc_pid_file = optarg;
			break;
		case OPT_LOG_FILE:
			if (!*optarg) {
				fprintf(stderr, "bulkheadd: --log-file needs a file name\n");
				return -EINVAL;
			}
			conf->pc_log_file = optarg;
			break;
		case OPT_EXIT_ON_DISCONNECT:
			conf->pc_exit_on_disconnect = 1;
			break;
		case 'f': /* virtiofsd's foreground: bulkheadd never forks away */
		case OPT_ANNOUNCE_SUBMOUNTS: /* moot: bulkheadd(8), COMPATIBILITY */
			break;
		case OPT_INODE_FILE_HANDLES:
			/* bulkhead never opens by handle (it would need
			 * CAP_DAC_READ_SEARCH): never and prefer mean that */
			if (strcmp(optarg, "never") != 0 && strcmp(optarg, "prefer") != 0) {
				fprintf(stderr,
					"bulkheadd: --inode-file-handles=%s is not supported: "
					"workers never open files by handle (never or prefer)\n",
					optarg);
				return -EINVAL;
			}
			break;
		case OPT_CACHE:
			if (parent_opt(conf_set_cache(conf, optarg, why, sizeof(why)), why) < 0)
				return -EINVAL;
			break;
		case OPT_SANDBOX:
			if (parent_opt(conf_set_sandbox(conf, optarg, why, sizeof(why)), why) < 0)
				return -EINVAL;
			break;
		case OPT_THREAD_POOL:
			if (parent_opt(conf_number("--thread-pool-size", optarg, 0,
						   CONF_MAX_THREADS, &v, why, sizeof(why)),
				       why) < 0)
				return -EINVAL;
			conf->pc_thread_pool = (uint32_t)v;
			break;
		case OPT_POLL_US:
			if (parent_opt(conf_number("--poll-us", optarg, 0, BH_MAX_POLL_US, &v, why,
						   sizeof(why)),
				       why) < 0)
				return -EINVAL;
			conf->pc_poll_us = (uint32_t)v;
			break;
		case OPT_READONLY:
			conf->pc_readonly = 1;
			break;
		case OPT_RLIMIT_NOFILE:
			if (parent_opt(conf_number("--rlimit-nofile", optarg, 1, UINT32_MAX, &v,
						   why, sizeof(why)),
				       why) < 0)
				return -EINVAL;
			conf->pc_rlimit_nofile = v;
			break;
		case OPT_WRITEBACK:
			conf->pc_writeback = 1;
			break;
		case OPT_XATTR:
			conf->pc_xattr = 1;
			break;
		case OPT_DEVICE_NODES:
			if (parent_opt(conf_set_devices(conf, optarg, why, sizeof(why)), why) < 0)
				return -EINVAL;
			break;
		case OPT_SETID:
			if (parent_opt(conf_set_setid(conf, optarg, why, sizeof(why)), why) < 0)
				return -EINVAL;
			break;
		case OPT_FILE_CAPS:
			if (parent_opt(conf_set_file_caps(conf, optarg, why, sizeof(why)), why) < 0)
				return -EINVAL;
			break;
		case OPT_SOCKET_GROUP:
			conf->pc_socket_group = optarg;
			break;
		case OPT_LOG_LEVEL:
			if (parent_opt(conf_set_log_level(conf, optarg, why, sizeof(why)), why) < 0)
				return -EINVAL;
			break;
		case OPT_SYSLOG:
			conf->pc_syslog = 1;
			break;
		case OPT_PRINT_CAPS:
			/* separate options: libvirt then passes --shared-dir and
			 * friends; never migrate-precopy, which bulkhead lacks */
			printf("{\n  \"type\": \"fs\",\n  \"features\": [\n"
			       "    \"separate-options\"\n  ]\n}\n");
			return 1;
		case OPT_HELP:
			fputs(parent_usage, stdout);
			parent_help_paths();
			return 1;
		case OPT_VERSION:
			printf("bulkheadd %s (build %s)\n", PACKAGE_VERSION, bh_build_id);
			return 1;
		case OPT_SECCOMP:
			if (parent_opt(conf_set_seccomp(conf, optarg, why, sizeof(why)), why) < 0)
				return -EINVAL;
			break;
		case OPT_POLICY_DIR:
			conf->pc_policy_dir = optarg;
			break;
		case OPT_CHECK_POLICY:
			conf->pc_check_policy = 1;
			break;
		case OPT_TEST_FORBIDDEN:
			conf->pc_test_forbidden = 1;
			break;
		case OPT_TEST_SLOW_BORROW:
			conf->pc_test_slow_borrow = 1;
			break;
		case OPT_TEST_ESCAPE_PROBE:
			conf->pc_test_escape_probe = 1;
			break;
		case OPT_TEST_SIGBUS:
			if (bh_parse_u64(optarg, 1, BH_MAX_QUEUES - 1, &v) < 0) {
				fprintf(stderr,
					"bulkheadd: invalid --test-sigbus-outside-guest '%s'\n",
					optarg);
				return -EINVAL;
			}
			conf->pc_test_sigbus_queue = (uint32_t)v;
			break;
		case OPT_TEST_DIE_NT_LOCK:
			if (parent_test_queue("die-holding-nt-lock", optarg,
					      &conf->pc_test_die_nt_queue) < 0)
				return -EINVAL;
			break;
		case OPT_TEST_HOLD_NT_LOCK:
			if (parent_test_queue("hold-nt-lock", optarg,
					      &conf->pc_test_hold_nt_queue) < 0)
				return -EINVAL;
			break;
		case OPT_TEST_SCRIBBLE_NT:
			if (parent_test_queue("scribble-node-table", optarg,
					      &conf->pc_test_scribble_queue) < 0)
				return -EINVAL;
			break;
		case OPT_TEST_FLOOD_NOTICES:
			if (parent_test_queue("flood-notices", optarg, &conf->pc_test_flood_queue) <
			    0)
				return -EINVAL;
			break;
		case OPT_UID_MAP:
			if (uns_parse_idmap("--uid-map", optarg, &conf->pc_uid_map) < 0)
				return -EINVAL;
			break;
		case OPT_GID_MAP:
			if (uns_parse_idmap("--gid-map", optarg, &conf->pc_gid_map) < 0)
				return -EINVAL;
			break;
		case OPT_TRANSLATE_UID:
			if (uns_parse_translate("--translate-uid", optarg, &conf->pc_tr_uid) < 0)
				return -EINVAL;
			break;
		case OPT_TRANSLATE_GID:
			if (uns_parse_translate("--translate-gid", optarg, &conf->pc_tr_gid) < 0)
				return -EINVAL;
			break;
		case ':':
			fprintf(stderr, "bulkheadd: option '%s' needs a value\n", argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(stderr, "bulkheadd: unknown option '%s'\n", argv[optind - 1]);
			fputs("Try 'bulkheadd --help'.\n", stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bulkheadd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (conf->pc_check_policy)
		return 0;
	if ((missing = conf_be_missing(conf)) != NULL) {
		if (conf->pc_backend == IPC_BE_PASSTHROUGH)
			fprintf(stderr, "bulkheadd: --shared-dir (or -o source=DIR, --memory-size, "
					"--config) is required\n");
		else if (!missing->bk_option)
			fprintf(stderr,
				"bulkheadd: the %s back end needs %s = %s in [%s] of --config\n",
				be_desc_find(conf->pc_backend)->bd_name, missing->bk_name,
				missing->bk_what, be_desc_find(conf->pc_backend)->bd_name);
		else
			fprintf(stderr,
				"bulkheadd: the %s back end needs %s=%s (or %s = %s in [%s] of "
				"--config)\n",
				be_desc_find(conf->pc_backend)->bd_name, missing->bk_option,
				missing->bk_what, missing->bk_name, missing->bk_what,
				be_desc_find(conf->pc_backend)->bd_name);
		return -EINVAL;
	}
	if (conf->pc_backend == IPC_BE_MEMORY && conf->pc_readonly) {
		fprintf(stderr,
			"bulkheadd: --readonly (readonly = yes) with the memory back end: a "
			"new in-memory file system that refuses every change stays empty\n");
		return -EINVAL;
	}
	if (conf->pc_socket_path && conf->pc_fd >= 0) {
		fprintf(stderr, "bulkheadd: --socket-path and --fd exclude each other\n");
		return -EINVAL;
	}
	if (conf->pc_socket_group && !conf->pc_socket_path) {
		fprintf(stderr, "bulkheadd: --socket-group needs --socket-path\n");
		return -EINVAL;
	}
	return 0;
}

/* Our own descriptors must never land on 0-2: a worker inherits those. */
static void parent_fix_stdio(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n < 0)
			exit(1);
		if (n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

/*
 * A parent run from its build tree uses that tree's worker and policies.
 * BH_BUILD_DIR is the path configure was given, which may pass through a
 * symlink, while /proc/self/exe is resolved: compare the files themselves.
 */
static int parent_from_build_tree(void)
{
	struct stat self, built;

	return stat("/proc/self/exe", &self) == 0 &&
	       stat(BH_BUILD_DIR "/daemon/bulkheadd", &built) == 0 && self.st_dev == built.st_dev &&
	       self.st_ino == built.st_ino;
}

/*
 * The worker binary is found from the build, never from PATH or the
 * environment: the installed one, or the one next to a build-tree parent.
 */
static int parent_open_worker(struct parent_env *env)
{
	const char *path = BH_WORKER_PATH;
	struct stat st;
	int fd;

	if (env->pe_from_build_tree)
		path = BH_BUILD_DIR "/worker/bulkhead-worker";
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		log_warn("cannot open the worker binary %s", path);
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		log_warnx("the worker binary %s is not an executable file", path);
		close(fd);
		return -1;
	}
	snprintf(env->pe_exe_path, sizeof(env->pe_exe_path), "%s", path);
	env->pe_exe_fd = fd;
	return 0;
}

static int parent_open_share(struct parent_env *env, const char *dir)
{
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOTDIR)
			log_warnx("shared directory %s is not a directory", dir);
		else
			log_warn("cannot open the shared directory %s", dir);
		return -1;
	}
	env->pe_root_fd = fd;
	return 0;
}

/* What the workers serve from: a host directory, the memory back end's
 * file system, or the S3 back end's staging directory (with its
 * credentials and CA bundle). */
static int parent_open_root(struct parent_env *env)
{
	const struct parent_conf *c = env->pe_conf;

	if (be_desc_find(c->pc_backend)->bd_sandbox & BE_SBX_HOST_DIR)
		return parent_open_share(env, conf_be_str(c, "dir"));
	if (c->pc_backend == IPC_BE_S3)
		return s3_parent_init(env);
	return mem_make(env);
}

void parent_notify(const char *fmt, ...)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char state[512];
	va_list ap;
	size_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@'))
		return;
	len = strlen(path);
	if (len >= sizeof(sa.sun_path)) {
		log_warnx("NOTIFY_SOCKET is too long, not notifying systemd");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(state, sizeof(state), fmt, ap);
	va_end(ap);
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("cannot notify systemd");
		return;
	}
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		log_warn("cannot notify systemd (%s)", state);
	close(fd);
}

static void parent_watchdog(evutil_socket_t fd, short ev, void *arg)
{
	parent_notify("WATCHDOG=1");
}

/* WATCHDOG_USEC (for us: WATCHDOG_PID unset or ours): WATCHDOG=1 from the
 * event loop at half the period, so a loop that stops turning is noticed.
 * NULL: no watchdog asked for, or none could be set (logged). */
static struct event *parent_watchdog_start(struct event_base *base)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long us;
	struct timeval half;
	struct event *ev;
	char *end;

	if (!usec)
		return NULL;
	if (pid && strtoll(pid, NULL, 10) != (long long)getpid())
		return NULL;
	errno = 0;
	us = strtoull(usec, &end, 10);
	if (errno || *end || us == 0) {
		log_warnx("WATCHDOG_USEC '%s' is not a period: no watchdog", usec);
		return NULL;
	}
	half.tv_sec = (time_t)(us / 2 / 1000000);
	half.tv_usec = (suseconds_t)(us / 2 % 1000000);
	ev = event_new(base, -1, EV_PERSIST, parent_watchdog, NULL);
	if (!ev || event_add(ev, &half) < 0) {
		log_warnx("cannot start the watchdog timer");
		if (ev)
			event_free(ev);
		return NULL;
	}
	log_debug("watchdog: WATCHDOG=1 every %llu us", us / 2);
	return ev;
}

static void parent_sig_term(evutil_socket_t sig, short ev, void *arg)
{
	struct event_base *base = arg;

	log_info("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	event_base_loopbreak(base);
}

static void parent_sig_chld(evutil_socket_t sig, short ev, void *arg)
{
	workers_reap();
}

/* SIGHUP: the S3 back end reads its credentials again and gives them to
 * its live workers. Nothing else is read again: the configuration is
 * start-up's. */
/* The command line, parsed again with the file at SIGHUP, and the
 * settings it gave at start-up (main's, never freed before exit). */
static const struct parent_conf *parent_first_conf;
static int parent_argc;
static char **parent_argv;

/* Settings SIGHUP read and did not take; they are freed at exit only,
 * since what a running device keeps may still point into them. */
struct parent_retired {
	struct parent_conf *pr_conf;
	struct parent_retired *pr_next;
};
static struct parent_retired *parent_retired;

static void parent_retire(struct parent_conf *c)
{
	struct parent_retired *r = calloc(1, sizeof(*r));

	if (!r) {
		log_warnx("out of memory: settings read at SIGHUP are not freed");
		return;
	}
	r->pr_conf = c;
	r->pr_next = parent_retired;
	parent_retired = r;
}

static void parent_retired_free(void)
{
	while (parent_retired) {
		struct parent_retired *r = parent_retired;

		parent_retired = r->pr_next;
		conf_free(r->pr_conf);
		free(r->pr_conf);
		free(r);
	}
}

/*
 * The command line and the file parsed into c again. parent_parse_args
 * explains itself on standard error, for a person at a terminal; here its
 * words go to the log: standard error is a memfd while it runs. 0, or -1
 * with the reason logged.
 */
static int parent_parse_again(struct parent_conf *c)
{
	char buf[1024];
	int saved, mfd, r;
	ssize_t n;

	fflush(stderr);
	if ((mfd = memfd_create("bulkhead-args", MFD_CLOEXEC)) < 0 ||
	    (saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3)) < 0) {
		log_warn("SIGHUP: cannot read the configuration again");
		if (mfd >= 0)
			close(mfd);
		return -1;
	}
	dup2(mfd, STDERR_FILENO);
	r = parent_parse_args(parent_argc, parent_argv, c);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	if (r != 0) {
		n = pread(mfd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		log_warnx("SIGHUP: %s; the settings in use stay",
			  strncmp(buf, "bulkheadd: ", 11) == 0 ? buf + 11 : buf);
	}
	close(mfd);
	return r == 0 ? 0 : -1;
}

static bool parent_str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/*
 * What a running daemon cannot change (what the sandboxes, capabilities,
 * socket and share were made from at start-up) stays as it was in c,
 * each change logged. The rest applies from the next front end on.
 */
static void parent_keep_fixed(const struct parent_conf *old, struct parent_conf *c)
{
	static const char later[] = "it takes effect when bulkheadd starts again";
	const struct be_desc *be = be_desc_find(old->pc_backend);

#define PARENT_KEEP(field, name)                                                                   \
	do {                                                                                       \
		if (c->field != old->field)                                                        \
			log_warnx("SIGHUP: %s changed: %s", name, later);                          \
		c->field = old->field;                                                             \
	} while (0)
#define PARENT_KEEP_STR(field, name)                                                               \
	do {                                                                                       \
		if (!parent_str_eq(c->field, old->field))                                          \
			log_warnx("SIGHUP: %s changed: %s", name, later);                          \
		c->field = old->field;                                                             \
	} while (0)
	PARENT_KEEP(pc_backend, "backend");
	PARENT_KEEP(pc_readonly, "readonly");
	PARENT_KEEP(pc_devices, "device_nodes");
	PARENT_KEEP(pc_file_caps, "file_caps");
	PARENT_KEEP(pc_sandbox, "sandbox");
	PARENT_KEEP(pc_seccomp, "seccomp");
	PARENT_KEEP(pc_rlimit_nofile, "rlimit_nofile");
	PARENT_KEEP(pc_syslog, "syslog");
	PARENT_KEEP_STR(pc_socket_path, "socket_path");
	PARENT_KEEP_STR(pc_socket_group, "socket_group");
	PARENT_KEEP_STR(pc_log_file, "log_file");
#undef PARENT_KEEP
#undef PARENT_KEEP_STR
	for (size_t i = 0; i < be->bd_nkeys; i++) {
		uint32_t id = old->pc_backend;

		if (!parent_str_eq(c->pc_be[id].bv_str[i], old->pc_be[id].bv_str[i]) ||
		    c->pc_be[id].bv_num[i] != old->pc_be[id].bv_num[i])
			log_warnx("SIGHUP: [%s] %s changed: %s", be->bd_name,
				  be->bd_keys[i].bk_name, later);
	}
	memcpy(c->pc_be, old->pc_be, sizeof(c->pc_be));
}

/* A SIGHUP's reading waiting for the next front end, let go. */
static void parent_next_free(struct parent_env *next)
{
	if (!next)
		return;
	if (next->pe_prog_fd >= 0)
		close(next->pe_prog_fd);
	pol_free(next->pe_worker_set);
	parent_retire((struct parent_conf *)next->pe_conf);
	free(next);
}

/* SIGHUP: the configuration and the worker's policy file read again, for
 * the next front end; on any error everything in use stays as it is. */
static void parent_reload(struct parent_env *env)
{
	struct parent_conf *c = calloc(1, sizeof(*c));
	struct parent_env *next = calloc(1, sizeof(*next));

	if (!c || !next) {
		log_warnx("SIGHUP: out of memory; the settings in use stay");
		free(c);
		free(next);
		return;
	}
	if (parent_parse_again(c) < 0) {
		conf_free(c);
		free(c);
		free(next);
		return;
	}
	parent_keep_fixed(env->pe_conf, c);
	*next = *env;
	next->pe_conf = c;
	next->pe_next = NULL;
	next->pe_parent_set = NULL;
	if (priv_recompile(next) < 0) {
		log_warnx("SIGHUP: the policies in use stay, and so do the settings");
		parent_next_free(next);
		return;
	}
	parent_next_free(env->pe_next);
	env->pe_next = next;
	if (vu_server_active()) {
		log_info("SIGHUP: settings%s read; the front end connected keeps the ones it "
			 "started with, the next one gets them",
			 env->pe_conf->pc_seccomp == IPC_SECCOMP_NONE ? "" : " and policies");
		return;
	}
	parent_next_front_end(env);
}

void parent_next_front_end(struct parent_env *env)
{
	struct parent_env *next = env->pe_next;

	if (!next)
		return;
	if (env->pe_prog_fd >= 0)
		close(env->pe_prog_fd);
	pol_free(env->pe_worker_set);
	if (env->pe_conf != next->pe_conf && env->pe_conf != parent_first_conf)
		parent_retire((struct parent_conf *)env->pe_conf);
	env->pe_conf = next->pe_conf;
	memcpy(env->pe_policy_dir, next->pe_policy_dir, sizeof(env->pe_policy_dir));
	memcpy(env->pe_worker_policy, next->pe_worker_policy, sizeof(env->pe_worker_policy));
	env->pe_worker_set = next->pe_worker_set;
	env->pe_prog_fd = next->pe_prog_fd;
	env->pe_prog_ninsns = next->pe_prog_ninsns;
	env->pe_next = NULL;
	free(next);
	log_set_level((enum log_level)env->pe_conf->pc_log_level);
	log_info("settings%s read at SIGHUP in force: cache %s, thread pool %u, polling up to %u "
		 "us%s",
		 env->pe_conf->pc_seccomp == IPC_SECCOMP_NONE ? "" : " and policies",
		 conf_cache_names[env->pe_conf->pc_cache], env->pe_conf->pc_thread_pool,
		 env->pe_conf->pc_poll_us, env->pe_conf->pc_xattr ? ", xattr" : "");
}

static void parent_sig_hup(evutil_socket_t sig, short ev, void *arg)
{
	struct parent_env *env = arg;
	int r;

	log_info("received SIGHUP: reopening the log, reading the configuration and the policy "
		 "files again");
	if ((r = log_reopen(env->pe_conf->pc_log_file)) < 0)
		log_warnx("SIGHUP: cannot reopen --log-file %s: %s; logging where it did",
			  env->pe_conf->pc_log_file, strerror(-r));
	parent_reload(env);
	if (env->pe_conf->pc_backend == IPC_BE_S3 && s3_parent_reload(env) == 0)
		workers_s3_creds();
}

/*
 * RLIMIT_NOFILE for us and the workers (they inherit it; each worker sizes
 * its descriptor table from the soft limit). Asked for more than the hard
 * limit and not allowed to raise it (no CAP_SYS_RESOURCE, as on CI): a
 * warning and the hard limit, never a failed start.
 */
static void parent_set_nofile(const struct parent_conf *conf)
{
	struct rlimit rl, want;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("getrlimit(RLIMIT_NOFILE)");
		return;
	}
	want = rl;
	if (conf->pc_rlimit_nofile == 0) {
		want.rlim_cur = rl.rlim_max;
	} else {
		want.rlim_cur = conf->pc_rlimit_nofile;
		if (rl.rlim_max != RLIM_INFINITY && want.rlim_cur > rl.rlim_max)
			want.rlim_max = want.rlim_cur;
	}
	if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		return;
	if (want.rlim_max != rl.rlim_max) {
		log_warn("cannot raise RLIMIT_NOFILE to %llu, using the hard limit %llu",
			 (unsigned long long)want.rlim_cur, (unsigned long long)rl.rlim_max);
		want = rl;
		want.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			return;
	}
	log_warn("cannot set RLIMIT_NOFILE, keeping %llu", (unsigned long long)rl.rlim_cur);
}

int main(int argc, char *argv[])
{
	static struct parent_conf conf;
	static struct parent_env env;
	struct event *ev_term, *ev_int, *ev_chld, *ev_hup, *ev_dog;
	char what[PATH_MAX + 64];
	int created = 0, lfd, r;

	parent_fix_stdio();
	parent_argc = argc;
	parent_argv = argv;
	parent_first_conf = &conf;
	r = parent_parse_args(argc, argv, &conf);
	if (r)
		return r > 0 ? 0 : 1;
	env.pe_from_build_tree = parent_from_build_tree();
	if (conf.pc_check_policy) {
		char dir[4096];

		if (priv_policy_dir(&conf, env.pe_from_build_tree, dir, sizeof(dir)) < 0) {
			fprintf(stderr, "bulkheadd: policy directory name too long\n");
			return 1;
		}
		return pol_check_dir(dir, stdout) < 0 ? 1 : 0;
	}
	if (conf.pc_log_file && (r = log_open_file(conf.pc_log_file)) < 0) {
		fprintf(stderr, "bulkheadd: --log-file %s: %s\n", conf.pc_log_file, strerror(-r));
		return 1;
	}
	log_init("bulkheadd", (enum log_level)conf.pc_log_level, conf.pc_syslog);
	/* Replies go out with MSG_NOSIGNAL; a write() on a dead peer must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	parent_set_nofile(&conf);

	env.pe_conf = &conf;
	env.pe_root_fd = env.pe_exe_fd = env.pe_cwd_fd = env.pe_ca_fd = -1;
	/* How we run (root or not, user namespaces) is settled before anything exists. */
	if (uns_plan(&env) < 0)
		return 1;
	/* Policies first: a broken file stops start-up before anything exists. */
	if (priv_compile(&env) < 0)
		return 1;
	if (parent_open_root(&env) < 0)
		return 1;
	if (parent_open_worker(&env) < 0)
		return 1;
	if ((env.pe_cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		log_warn("cannot open the working directory");
		return 1;
	}

	env.pe_base = event_base_new();
	if (!env.pe_base) {
		log_warnx("cannot create the event loop");
		return 1;
	}
	/* The pid file is there before the socket is: whoever sees the
	 * socket can read it. */
	if (conf.pc_pid_file && parent_pid_file(conf.pc_pid_file) < 0)
		return 1;
	lfd = listener_open(&conf, &created);
	if (lfd < 0) {
		parent_undo(&conf, 0);
		return 1;
	}

	ev_term = evsignal_new(env.pe_base, SIGTERM, parent_sig_term, env.pe_base);
	ev_int = evsignal_new(env.pe_base, SIGINT, parent_sig_term, env.pe_base);
	ev_chld = evsignal_new(env.pe_base, SIGCHLD, parent_sig_chld, NULL);
	ev_hup = evsignal_new(env.pe_base, SIGHUP, parent_sig_hup, &env);
	if (!ev_term || !ev_int || !ev_chld || !ev_hup || evsignal_add(ev_term, NULL) < 0 ||
	    evsignal_add(ev_int, NULL) < 0 || evsignal_add(ev_chld, NULL) < 0 ||
	    evsignal_add(ev_hup, NULL) < 0) {
		log_warnx("cannot install signal handlers");
		parent_undo(&conf, created);
		return 1;
	}

	workers_init(&env);
	seclog_init(&env);
	vu_server_init(&env);
	if (priv_drop(&env) < 0) {
		parent_undo(&conf, created);
		return 1;
	}
	if (conf.pc_sandbox == IPC_SBX_NONE)
		log_warnx("WARNING: --sandbox=none: workers are NOT confined; a compromised "
			  "guest can reach everything this daemon can. Use it only to debug.");
	if (conf.pc_seccomp == IPC_SECCOMP_NONE)
		log_warnx("WARNING: --seccomp=none: no system call filter for the daemon or "
			  "its workers");
	else if (conf.pc_seccomp == IPC_SECCOMP_LOG)
		log_warnx("--seccomp=log: calls outside %s are let through and logged; "
			  "a tuning mode, not for production",
			  env.pe_worker_policy);
	if (listener_start(env.pe_base, lfd) < 0) {
		parent_undo(&conf, created);
		return 1;
	}

	if (conf.pc_backend == IPC_BE_MEMORY)
		snprintf(what, sizeof(what), "a new in-memory file system of %llu MiB",
			 (unsigned long long)(conf_be_num(&conf, "size") >> 20));
	else if (conf.pc_backend == IPC_BE_S3)
		snprintf(what, sizeof(what), "bucket %s%s%s at %s", conf_be_str(&conf, "bucket"),
			 *conf_be_str(&conf, "prefix") ? ", prefix " : "",
			 conf_be_str(&conf, "prefix"), conf_be_str(&conf, "endpoint"));
	else
		snprintf(what, sizeof(what), "%s", conf_be_str(&conf, "dir"));
	log_info("bulkheadd %s (build %s) serving %s%s%s: socket %s, cache %s, sandbox %s, "
		 "seccomp %s, thread pool %u, polling up to %u us%s, worker %s",
		 PACKAGE_VERSION, bh_build_id, what, conf.pc_config ? ", settings from " : "",
		 conf.pc_config ? conf.pc_config : "",
		 conf.pc_socket_path ? conf.pc_socket_path
				     : (conf.pc_fd >= 0 ? "inherited (--fd)" : "systemd"),
		 conf_cache_names[conf.pc_cache], conf_sandbox_names[conf.pc_sandbox],
		 conf_seccomp_names[conf.pc_seccomp], conf.pc_thread_pool, conf.pc_poll_us,
		 conf.pc_readonly ? ", read-only" : "", env.pe_exe_path);
	/* the line Kata's runtime waits for on our standard error, as
	 * virtiofsd prints it */
	log_info("Waiting for vhost-user socket connection...");
	parent_notify("READY=1\nSTATUS=Waiting for a front end");
	ev_dog = parent_watchdog_start(env.pe_base);

	if (event_base_dispatch(env.pe_base) < 0)
		log_warnx("event loop failed");

	parent_notify("STOPPING=1\nSTATUS=Stopping");
	if (ev_dog)
		event_free(ev_dog);
	vu_server_end(NULL);
	listener_stop();
	mapper_stop();
	parent_undo(&conf, created);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_chld);
	event_free(ev_hup);
	event_base_free(env.pe_base);
	close(env.pe_root_fd);
	close(env.pe_exe_fd);
	close(env.pe_cwd_fd);
	if (env.pe_ca_fd >= 0)
		close(env.pe_ca_fd);
	s3_parent_free(&env);
	if (env.pe_prog_fd >= 0)
		close(env.pe_prog_fd);
	pol_free(env.pe_worker_set);
	pol_free(env.pe_parent_set);
	parent_next_free(env.pe_next);
	parent_retired_free();
	if (env.pe_conf != &conf) {
		conf_free((struct parent_conf *)env.pe_conf);
		free((void *)env.pe_conf);
	}
	conf_free(&conf);
	log_info("stopped");
	return 0;
}
