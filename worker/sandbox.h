/*
 * sandbox.h - how a worker confines itself before it touches guest data.
 * Runs in: the worker, between CONFIG and the first memory table, while it
 * is still single-threaded (capabilities and the seccomp filter are
 * per-thread; everything created later inherits them).
 */
#ifndef BH_SANDBOX_H
#define BH_SANDBOX_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

struct sbx_conf {
	uint32_t sc_mode;    /* enum ipc_sandbox */
	uint32_t sc_seccomp; /* enum ipc_seccomp */
	int sc_root_fd;	     /* the share, from CONFIG (the parent's mount namespace) */
	int sc_prog_fd;	     /* sealed memfd with the BPF program, -1 without seccomp */
	uint32_t sc_ninsns;  /* instructions in it */
	int sc_ipc_fd;	     /* where the SIGSYS reporter sends its notice */
	uint32_t sc_rdonly;  /* --readonly: a read-only mount (namespace mode) */
	uint32_t sc_drop;    /* SBX_DROP_*: capabilities no enabled feature needs */
	int sc_share_fd;     /* namespace mode: the device's mount of the share, -1: make it */
	const struct be_desc *sc_be; /* the back end: its sandbox profile */
};

/* Capabilities of a back end's set (be_desc.bd_keep) that only an
 * operator's choice needs. */
#define SBX_DROP_MKNOD	 0x1 /* device nodes refused (--device-nodes=refuse) */
#define SBX_DROP_SETFCAP 0x2 /* file capabilities refused (--file-caps=refuse) */

/*
 * Every step, in order: a private procfs (namespace mode), the device's
 * mount of the share (namespace mode: given, or made when sc_share_fd < 0),
 * root switch (pivot_root into an empty read-only tmpfs, or chroot into
 * the share), capabilities, no_new_privs, resource limits, SIGSYS reporter,
 * seccomp filter. On success *root_fd is the share as the back end reaches
 * it (use it instead of sc_root_fd, which is closed: the device's mount in
 * namespace mode, our root with chroot), *proc_fd the "fd" directory of our
 * own process in a procfs instance of our own PID namespace (namespace
 * mode; -1 otherwise: nothing then reopens through a procfs), *share_out
 * the mount we made for the parent to hand on (else -1; sc_share_fd, when
 * given, stays the caller's) and *listener the --seccomp=log notification fd (else
 * -1). On failure -errno and the failed step with its reason in why; the
 * caller refuses to serve.
 */
int sbx_enter(const struct sbx_conf *sc, int *root_fd, int *proc_fd, int *share_out,
	      int *listener, char *why, size_t whylen);

#ifdef BH_TEST_HOOKS
/* The --enable-test-hooks forbidden call (a harmless umount2 of a missing path). */
void sbx_test_forbidden_call(void);

/* --test-escape-probe: a LOOKUP of this name in the root runs the probe. */
#define SBX_TEST_PROBE_NAME   "bulkhead-test-escape-probe"
/* The file the test puts beside the share: reaching it is an escape. */
#define SBX_TEST_PROBE_MARKER "bulkhead-escape-marker"
/* Descriptors 0..SBX_TEST_PROBE_FDS-1 are tried. */
#define SBX_TEST_PROBE_FDS 4096
/* Try to leave the box through every descriptor we hold (logged one line
 * per descriptor): the number of paths that opened; *nfds descriptors. */
int sbx_test_escape_probe(int proc_fd, unsigned *nfds);
#endif

#endif
