/*
 * s3_setup.h - what an S3 worker takes from the parent before its sandbox
 * (IPC_S3_CONFIG, IPC_S3_CREDS) and prepares while it still can: the CA
 * bundle read into memory, the endpoint's host resolved, libcurl and
 * OpenSSL initialised (they read their configuration files once, now),
 * libcurl's multi handle made (with the socket pair it wakes itself by).
 * Runs in: the S3 worker, before SANDBOX, single-threaded. The parent is
 * trusted, but its messages are still checked (sizes, terminated strings,
 * ranges): a bad one ends the worker.
 */
#ifndef BH_S3_SETUP_H
#define BH_S3_SETUP_H

#include <stddef.h>

#include "ipc.h"

#define S3_CA_MAX (4u << 20) /* the longest CA bundle read */

struct s3_setup {
	struct ipc_s3_config ss_cfg;
	struct ipc_s3_creds ss_creds;
	char *ss_ca; /* PEM text, NULL: none (plain HTTP, or none named) */
	size_t ss_ca_len;
	char ss_resolve[640]; /* "HOST:PORT:ADDR,..." for libcurl, "" for an address */
	void *ss_multi;	      /* libcurl's multi handle (CURLM *), for the HTTP client */
};

/* IPC_S3_CONFIG's payload and its CA fd (-1: none; closed here): 0, or
 * -errno with the reason in why. */
int s3_setup_config(const void *data, size_t len, int ca_fd, struct s3_setup *s, char *why,
		    size_t whylen);
/* IPC_S3_CREDS's payload into out: 0 or -EINVAL. */
int s3_setup_creds(const void *data, size_t len, struct ipc_s3_creds *out);

#endif
