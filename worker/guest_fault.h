/*
 * guest_fault.h - SIGBUS in a worker: a guest memory file that shrank under
 * our mapping ends the connection; any other SIGBUS is a bug.
 * Runs in: the worker (sandboxed).
 */
#ifndef BH_GUEST_FAULT_H
#define BH_GUEST_FAULT_H

/*
 * Install the SIGBUS handler (before any thread is made; pool and peer
 * threads keep SIGBUS unblocked). report_fd is the parent channel. On a
 * fault inside a guest mapping (guest_mem.c's registry) the handler sends
 * IPC_NOTICE_GUEST_MEMORY with the region and offset, once per process,
 * waits for the parent to end us (it drops the front end) and exits. On
 * any other SIGBUS it reports the address (in_pad IPC_GUEST_FAULT_OUTSIDE)
 * and lets the signal take its default action: the worker dies by SIGBUS,
 * without a core (RLIMIT_CORE is 0).
 */
int gf_install(int report_fd);

#ifdef BH_TEST_HOOKS
/* Before the sandbox: map a page of a private memfd and cut the file
 * under it. gf_test_fault then touches it: a SIGBUS outside guest memory. */
void gf_test_prepare(void);
void gf_test_fault(void);
#endif

#endif
