/*
 * peer.h - worker-to-worker descriptor sharing: each node's and open file's
 * descriptor has one owner, the worker that opened it. The parent creates
 * two SOCK_SEQPACKET channels per pair of workers: on a CLIENT channel we
 * ask the other worker for a descriptor, on a SERVER channel the other
 * worker asks us. A dedicated thread answers the SERVER channels so that a
 * worker busy on its own queue (or blocked asking someone else) still
 * answers: no cycle can deadlock.
 * Runs in: the worker. Everything a peer sends is checked like any IPC.
 */
#ifndef BH_PEER_H
#define BH_PEER_H

#include <stddef.h>
#include <stdint.h>

struct peer;

struct peer_provider {
	void *ctx;
	/* Return a new descriptor (dup) for an object this worker owns, or -errno. */
	int (*node_fd)(void *ctx, uint64_t nodeid);
	int (*fh_fd)(void *ctx, uint64_t fh);
	/* The last reference elsewhere is gone: close our descriptor, free the slot. */
	void (*release_node)(void *ctx, uint64_t nodeid);
	void (*release_fh)(void *ctx, uint64_t fh);
};

/* prov may be NULL: until peer_set_provider, requests for descriptors are
 * answered -EBADF and releases ignored. */
struct peer *peer_create(uint32_t self, const struct peer_provider *prov);
/* Who answers the other workers (the back end, in its init); before the
 * first peer_add. */
void peer_set_provider(struct peer *p, const struct peer_provider *prov);
/* Stop the server thread, close every channel. */
void peer_destroy(struct peer *p);

/* Install a channel from IPC_PEER (role enum ipc_peer_role). Takes the fd. 0 or -errno. */
int peer_add(struct peer *p, uint32_t other, uint32_t role, int fd);

/* Ask worker 'owner' for a duplicate of its descriptor. Blocking (bounded by a
 * timeout), thread-safe (one request at a time per channel). Returns the new
 * fd or -errno (-EHOSTUNREACH: no channel / peer gone, -ETIMEDOUT). */
int peer_get_node_fd(struct peer *p, uint32_t owner, uint64_t nodeid);
int peer_get_fh_fd(struct peer *p, uint32_t owner, uint64_t fh);

/* Tell the owner to release (fire and forget). 0 or -errno. */
int peer_release_node(struct peer *p, uint32_t owner, uint64_t nodeid);
/* The same for n nodes, in as few messages as IPC_PEER_RELEASE_MAX allows. */
int peer_release_nodes(struct peer *p, uint32_t owner, const uint64_t *ids, size_t n);
int peer_release_fh(struct peer *p, uint32_t owner, uint64_t fh);

#endif
