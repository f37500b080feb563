/*
 * worker.h - the bulkhead-worker program: one process per virtqueue.
 * Runs in: the worker (sandboxed). Prototypes grouped by the file that
 * defines them; the codec and dispatcher live in fuse_dispatch.h, the
 * back-end interface in backend.h.
 */
#ifndef BH_WORKER_H
#define BH_WORKER_H

#include <stdbool.h>

#include "virtqueue.h"

struct fuse_req;

/* A guest memory table. Requests keep the table their iovecs point into
 * alive (wm_refs), so a MEM_TABLE change never unmaps memory a pool thread
 * is still writing. */
struct worker_mem {
	struct vq_mem wm_mem;
	unsigned wm_refs; /* the worker's current table + in-flight requests */
};

/* worker.c */
/* True on the thread running the event loop. */
bool worker_on_loop(void);
/* Loop thread: publish a finished request on the used ring (or drop it if
 * it was abandoned or its ring is gone) and recycle it. tp_fn-shaped so
 * pool threads can hand it to tp_complete. */
void worker_req_complete(void *arg);
/* Loop thread: the same, for a request finished on the loop itself
 * (notifies the guest unless a batch is being processed). */
void worker_req_complete_local(struct fuse_req *r);

#endif
