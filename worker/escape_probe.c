/*
 * escape_probe.c - test hooks only (--enable-test-hooks, --test-escape-probe):
 * the worker plays its own attacker. Asked by the test (a LOOKUP of
 * SBX_TEST_PROBE_NAME), it tries to open paths out of its sandbox from
 * every descriptor it holds, logs what each descriptor is and what opened,
 * and the test asserts that nothing did. Never built into a production
 * worker.
 * Runs in: the worker (sandboxed), on the loop thread, under its seccomp
 * filter: every call here must be one the worker's policy allows.
 */
#include "config.h"

#ifdef BH_TEST_HOOKS
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"

/*
 * What a compromised worker would try first: every descriptor it holds as
 * a starting point for a path out of its box. Any of these opening is an
 * escape: the host's kernel settings (core_pattern runs a program as host
 * root), sysrq, a procfs root listing other processes, or a marker file the
 * test put next to the share. Read-only opens; nothing is ever written.
 */
static const char *const sbx_probe_paths[] = {
    "../../sys/kernel/core_pattern",
    "../sys/kernel/core_pattern",
    "sys/kernel/core_pattern",
    "../../../proc/sys/kernel/core_pattern",
    "/proc/sys/kernel/core_pattern",
    "../../sysrq-trigger",
    "../sysrq-trigger",
    "sysrq-trigger",
    "/proc/sysrq-trigger",
    "../../1/root/proc/sys/kernel/core_pattern",
    "../../self/root/../" SBX_TEST_PROBE_MARKER,
    "root/../" SBX_TEST_PROBE_MARKER,
    "../" SBX_TEST_PROBE_MARKER,
    "../../" SBX_TEST_PROBE_MARKER,
    "../../../" SBX_TEST_PROBE_MARKER,
    "../../../../" SBX_TEST_PROBE_MARKER,
    "../../../../../../../../../../../../" SBX_TEST_PROBE_MARKER,
    "/../" SBX_TEST_PROBE_MARKER,
    "/" SBX_TEST_PROBE_MARKER,
};

/* A procfs root (the directory that holds "self") reached from fd by ".."
 * or "../..": does it list any process but ours (pid 1 of our namespace)? */
static bool sbx_probe_sees_others(int fd)
{
	static const char *const ups[] = {".", "..", "../.."};
	char buf[4096];
	bool others = false;

	for (size_t u = 0; u < sizeof(ups) / sizeof(ups[0]) && !others; u++) {
		struct statfs sf;
		bool root = false;
		unsigned pids = 0;
		long n;
		int d = openat(fd, ups[u], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (d < 0)
			continue;
		if (fstatfs(d, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC) {
			while ((n = syscall(SYS_getdents64, d, buf, sizeof(buf))) > 0) {
				for (long off = 0; off < n;) {
					struct {
						uint64_t ino;
						int64_t off;
						unsigned short reclen;
						unsigned char type;
						char name[];
					} *de = (void *)(buf + off);

					if (strcmp(de->name, "self") == 0)
						root = true;
					else if (de->name[0] >= '0' && de->name[0] <= '9' &&
						 strcmp(de->name, "1") != 0)
						pids++;
					off += de->reclen;
				}
			}
			others = root && pids > 0;
		}
		close(d);
	}
	return others;
}

int sbx_test_escape_probe(int proc_fd, unsigned *nfds)
{
	int escapes = 0;

	*nfds = 0;
	for (int fd = 0; fd < SBX_TEST_PROBE_FDS; fd++) {
		char what[128] = "?";
		struct stat st;
		int opened = 0;

		if (fcntl(fd, F_GETFD) < 0)
			continue;
		(*nfds)++;
		if (proc_fd >= 0) {
			char name[16];
			ssize_t n;

			snprintf(name, sizeof(name), "%d", fd);
			n = readlinkat(proc_fd, name, what, sizeof(what) - 1);
			what[n > 0 ? n : 0] = '\0';
		}
		if (fstat(fd, &st) < 0)
			st.st_mode = 0;
		for (size_t i = 0; i < sizeof(sbx_probe_paths) / sizeof(sbx_probe_paths[0]); i++) {
			static const int how[] = {O_RDONLY | O_NONBLOCK | O_NOCTTY, O_PATH};

			for (size_t h = 0; h < 2; h++) {
				int o = openat(fd, sbx_probe_paths[i], how[h] | O_CLOEXEC);

				if (o >= 0) {
					log_warnx("escape probe: fd %d (%s) opened %s", fd, what,
						  sbx_probe_paths[i]);
					close(o);
					opened++;
				}
			}
		}
		if (S_ISDIR(st.st_mode) && sbx_probe_sees_others(fd)) {
			log_warnx("escape probe: fd %d (%s) leads to a procfs with other processes",
				  fd, what);
			opened++;
		}
		log_info("escape probe: fd %d type %o (%s): %d opened", fd,
			 (unsigned)(st.st_mode & S_IFMT), what, opened);
		escapes += opened;
	}
	log_info("escape probe: %u descriptors, %d escapes", *nfds, escapes);
	return escapes;
}
#endif
