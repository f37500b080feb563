/*
 * threadpool.h - a small bounded pool for blocking back-end calls, and the
 * completion queue that hands results back to the worker's event loop.
 * Runs in: the worker.
 */
#ifndef BH_THREADPOOL_H
#define BH_THREADPOOL_H

#include <event2/event.h>
#include <stdbool.h>

struct tp;

typedef void (*tp_fn)(void *arg);

/* nthreads == 0: tp_submit runs jobs inline, tp_complete runs 'done' inline. */
struct tp *tp_create(unsigned nthreads, struct event_base *base);
/* Wait for queued and running jobs, run the pending completions, join. */
void tp_destroy(struct tp *tp);

/* Run fn(arg) on a pool thread (FIFO). Never fails: the queue is unbounded,
 * its length is bounded by the number of ring entries in flight. */
void tp_submit(struct tp *tp, tp_fn fn, void *arg);

/* From any thread: run done(arg) on the event loop thread (batched: one
 * wake-up drains all; then the hook set by tp_set_batch_end runs once). */
void tp_complete(struct tp *tp, tp_fn done, void *arg);

/* Called on the loop after each batch of completions (e.g. to notify the guest once). */
void tp_set_batch_end(struct tp *tp, tp_fn fn, void *arg);

/* Whether every thread has a job (a new one would wait in the queue). */
bool tp_busy(struct tp *tp);

/* Jobs submitted and not yet completed (for the drain at RING_STOP). */
unsigned tp_pending(struct tp *tp);

/* Let idle pool threads watch for the next job up to max_ns (adaptive)
 * before sleeping; 0 (the default) sleeps at once. */
void tp_set_spin(struct tp *tp, uint64_t max_ns);

/* Whether completions are queued: a lock-free hint for a loop that polls
 * instead of sleeping (it then calls tp_run_completions). */
bool tp_has_completions(struct tp *tp);

/* The loop thread starts (on) or stops polling tp_has_completions; while it
 * polls, completions send no wake-up. Returns tp_has_completions() as seen
 * after the switch: when stopping, true means completions arrived without a
 * wake-up and the loop must run them. */
bool tp_set_polling(struct tp *tp, bool on);

/* Run completions that are ready now, on the calling (loop) thread. */
void tp_run_completions(struct tp *tp);

#endif
