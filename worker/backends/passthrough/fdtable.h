/*
 * fdtable.h - this worker's descriptors for nodes and file handles.
 * The table is bounded (from RLIMIT_NOFILE) and evicts least recently used
 * descriptors: node descriptors are reopened from the name the node table
 * keeps for them (or fetched from their owner), borrowed handle duplicates
 * are fetched again through peer.c; owned open handles, and the nodes they
 * are open on, stay. Users take a reference while they use a descriptor, so
 * eviction never closes a descriptor under a running call.
 * Runs in: the worker; thread-safe (pool threads and the loop use it).
 */
#ifndef BH_FDTABLE_H
#define BH_FDTABLE_H

#include <stdint.h>

#include "node_table.h"

struct fdt;
struct peer;

/* root_fd: this worker's descriptor for the share root (node 1), kept.
 * The bound on descriptors held is the soft RLIMIT_NOFILE less a reserve,
 * or cache_max if that is lower (0: no cap). */
struct fdt *fdt_create(struct nt_table *nt, uint32_t self, int root_fd, unsigned cache_max);
void fdt_destroy(struct fdt *t);
void fdt_set_peer(struct fdt *t, struct peer *p);

/* Record a descriptor this worker opened for a node it created (owner ==
 * self). Pinned: the node has no reopen name in the node table. */
int fdt_node_install(struct fdt *t, uint64_t nodeid, int fd);
/* The same for a node whose reopen name was recorded: evictable. */
int fdt_node_install_named(struct fdt *t, uint64_t nodeid, int fd);
/* Same for a file handle allocated with nt_fh_alloc(owner = self). */
int fdt_fh_install(struct fdt *t, uint64_t fh, int fd);
/* Offer a descriptor for a node owned elsewhere (e.g. the O_PATH fd a LOOKUP
 * just opened for a node that already existed): cached if there is room,
 * else closed. Never fails. */
void fdt_node_offer(struct fdt *t, uint64_t nodeid, int fd);

/* This worker holds a descriptor for the node (owned or cached) now. */
bool fdt_node_held(struct fdt *t, uint64_t nodeid);

/* Get a usable descriptor for a node / handle (owned, cached, or fetched from
 * its owner), with a reference: release with fdt_put. -ESTALE / -EBADF for an
 * id that is not live, -EIO when the owner cannot provide it. */
int fdt_node_get(struct fdt *t, uint64_t nodeid, int *fd);
int fdt_fh_get(struct fdt *t, uint64_t fh, int *fd);
void fdt_put(struct fdt *t, int fd);
/* The same without asking another worker: -EWOULDBLOCK when only the owner
 * has the descriptor (the caller then retries on the pool). */
int fdt_node_get_nowait(struct fdt *t, uint64_t nodeid, int *fd);
int fdt_fh_get_nowait(struct fdt *t, uint64_t fh, int *fd);

/* Close and forget this worker's descriptor for a node / handle (owned or
 * cached). Owned slots are returned to the node table (nt_node_free / done by
 * caller for fh). */
void fdt_node_drop(struct fdt *t, uint64_t nodeid);
void fdt_fh_drop(struct fdt *t, uint64_t fh);

#ifdef BH_TEST_HOOKS
/* --test-slow-borrow: wait 200 ms between a borrowed handle's liveness
 * check and its install, to widen the window a RELEASE can fall into. */
void fdt_test_slow_borrow(struct fdt *t);
#endif
/* The session was reset (epoch changed): close everything but the root. */
void fdt_reset(struct fdt *t);

/* Provider callbacks for peer.c (dup of an owned descriptor, release). */
int fdt_provide_node_fd(void *t, uint64_t nodeid);
int fdt_provide_fh_fd(void *t, uint64_t fh);
void fdt_release_node(void *t, uint64_t nodeid);
void fdt_release_fh(void *t, uint64_t fh);

#endif
