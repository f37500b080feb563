/*
 * bulkheadd.h - the privileged parent: configuration and the prototypes of
 * its files, grouped per file.
 * Runs in: the parent only. Nothing here parses guest-controlled bytes; the
 * front end (QEMU) is checked strictly but is not the guest.
 */
#ifndef BH_BULKHEADD_H
#define BH_BULKHEADD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc.h"

struct event_base;

/* What the command line asked for; filled once by parent_parse_args. */
struct parent_conf {
	const char *pc_shared_dir;
	const char *pc_socket_path; /* NULL: --fd or socket activation */
	int pc_fd;		    /* --fd=N, -1 if not given */
	const char *pc_socket_group;
	uint32_t pc_cache;   /* enum ipc_cache */
	uint32_t pc_sandbox; /* enum ipc_sandbox */
	uint32_t pc_thread_pool;
	uint32_t pc_readonly;
	int pc_log_level; /* enum log_level */
	int pc_syslog;
};

/* Descriptors opened once at start-up and shared by every connection. */
struct parent_env {
	struct event_base *pe_base;
	const struct parent_conf *pe_conf;
	int pe_root_fd; /* share root, O_PATH|O_DIRECTORY */
	int pe_exe_fd;	/* worker binary, O_PATH */
	char pe_exe_path[4096];
};

/* Timeouts of the synchronous conversation with a worker. */
#define PARENT_HELLO_TIMEOUT_MS 5000
#define PARENT_ACK_TIMEOUT_MS	5000
#define PARENT_DRAIN_TIMEOUT_MS 5000
#define PARENT_STOP_TIMEOUT_MS	(PARENT_DRAIN_TIMEOUT_MS + 2000)
#define PARENT_KILL_GRACE_MS	1000
/* A front end that stalls in the middle of a message is dropped after this. */
#define PARENT_FRONTEND_IO_TIMEOUT_S 5

/* bulkheadd.c */
int parent_parse_args(int argc, char *argv[], struct parent_conf *conf);

/* listener.c */
int listener_open(const struct parent_conf *conf, int *created);
int listener_start(struct event_base *base, int fd);
void listener_stop(void);
void listener_unlink(const struct parent_conf *conf);

/* vu_server.c */
void vu_server_init(struct parent_env *env);
bool vu_server_busy(void);
/* Take over an accepted connection: 0 or -errno (the fd is closed on error). */
int vu_server_start(int fd);
/* Drop the current front end (if any): stop workers, close everything. */
void vu_server_end(const char *why);

/* workers.c */
void workers_init(struct parent_env *env);
bool workers_live(uint32_t q);
bool workers_dead(uint32_t q);
int workers_spawn(uint32_t q, const struct ipc_region *regions, const int *fds, uint32_t nregions);
int workers_mem_table(const struct ipc_region *regions, const int *fds, uint32_t nregions);
int workers_ring_start(uint32_t q, const struct ipc_ring_start *rs, const int *fds, size_t nfds);
int workers_ring_enable(uint32_t q, bool enabled);
int workers_ring_fd(uint32_t q, uint32_t which, int fd);
int workers_ring_stop(uint32_t q, uint32_t *last_avail);
void workers_stop_all(void);
void workers_reap(void);

#endif
