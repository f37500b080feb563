/*
 * bulkhead.h - constants shared by the parent (bulkheadd) and the workers.
 * Runs in: both. Holds no state.
 */
#ifndef BH_BULKHEAD_H
#define BH_BULKHEAD_H

#include <stdint.h>

/* Highest number of virtqueues (hiprio + request queues) one device serves;
 * GET_QUEUE_NUM reports it and every queue index is checked against it. */
#define BH_MAX_QUEUES 17

/* Queue 0 is virtio-fs's high-priority queue (FORGET, INTERRUPT); request
 * queues follow it. */
#define BH_HIPRIO_QUEUE 0

/* Largest queue size accepted from the front end (virtio split ring limit). */
#define BH_MAX_QUEUE_SIZE 32768

/* Memory regions a front end may register (GET_MAX_MEM_SLOTS). */
#define BH_MAX_MEM_REGIONS 32

/* Longest ring polling window (--poll-us) in microseconds. */
#define BH_MAX_POLL_US 1000

/* The worker's end of its IPC channel with the parent is always this fd. */
#define BH_WORKER_IPC_FD 3

/* Build id embedded in both binaries (common/buildid.c, generated). */
extern const char bh_build_id[];
#define BH_BUILD_ID_MAX 64

#endif
