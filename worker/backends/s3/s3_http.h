/*
 * s3_http.h - the S3 back end's HTTP client: requests signed with SigV4
 * (sigv4.c), many in flight through the libcurl multi interface, driven by
 * the caller's libevent loop (no thread per request).
 * Runs in: the S3 worker (and its tests), on the loop thread only.
 *
 * A request names a key of the bucket (not a URL): the client builds the
 * URL for the addressing style (path: ENDPOINT/BUCKET/KEY, virtual:
 * BUCKET.HOST/KEY), encodes path and query the one way the signature
 * covers them, and calls the request's done() on the loop when the
 * exchange ends, whatever its outcome.
 */
#ifndef BH_S3_HTTP_H
#define BH_S3_HTTP_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sigv4.h"

struct s3_client;

struct s3_client_conf {
	const char *endpoint; /* "http://127.0.0.1:7480" or "https://..." */
	const char *bucket;
	const char *region;
	bool virtual_host; /* addressing = virtual */
	const char *access_key, *secret_key, *session_token;
	long timeout_ms;     /* one attempt, connection included (0: S3_DEFAULT_TIMEOUT_MS) */
	const char *ca_file; /* NULL: the system's CA bundle; TLS is always verified */
	/* Or the bundle's PEM text, read before the sandbox (which leaves no
	 * file to read): it replaces ca_file and the system's bundle. */
	const void *ca_blob;
	size_t ca_blob_len;
	/* "HOST:PORT:ADDR[,ADDR...]": the endpoint's addresses, resolved
	 * before the sandbox (which has no resolver configuration), NULL:
	 * libcurl resolves. */
	const char *resolve;
	/* libcurl's multi handle, made before the sandbox (it makes itself a
	 * socket pair to wake up with, which the sandbox forbids); taken over
	 * by the client. NULL: the client makes one. */
	void *multi;
	/* Requests on the wire at once; more wait their turn (0: no limit). */
	unsigned max_inflight;
	/* Retries: an attempt that got no answer, or 500, 502, 503, 504, 429,
	 * is made again after retry_base_ms, doubling up to retry_max_ms, with
	 * jitter, until max_attempts. So a dead server ends a request after at
	 * most max_attempts x timeout_ms plus the waits (with the defaults
	 * 4 x 30 s + 0.7 s), never hangs it. 0: the defaults. */
	unsigned max_attempts;
	long retry_base_ms, retry_max_ms;
};

#define S3_DEFAULT_TIMEOUT_MS	 30000
#define S3_DEFAULT_ATTEMPTS	 4
#define S3_DEFAULT_RETRY_BASE_MS 100
#define S3_DEFAULT_RETRY_MAX_MS	 2000

#define S3_HEADERS_MAX 8
#define S3_QUERY_MAX   8

/* The user metadata the back end keeps on objects (x-amz-meta-NAME: names
 * in lower case, without '_', which gateways turn into '-'), as sent: ""
 * when absent. */
struct s3_meta {
	char mode[24];
	char uid[24];
	char gid[24];
	char mtime[48];
};

struct s3_req {
	/* set by the caller */
	const char *method;
	const char *key; /* "" for the bucket itself */
	struct s3_pair query[S3_QUERY_MAX];
	size_t nquery;
	struct s3_pair headers[S3_HEADERS_MAX]; /* beyond host, date, payload hash */
	size_t nheaders;
	const void *body; /* sent as is; the payload hash is computed over it */
	size_t body_len;
	size_t reply_max; /* longest reply body kept; more is an error (-EMSGSIZE) */
	/* Or the reply body into the caller's buffer of sink_cap bytes (more
	 * is -EMSGSIZE); reply stays NULL, reply_len counts. */
	void *sink;
	size_t sink_cap;
	void (*done)(struct s3_req *r);
	void *arg;
	/* set by the client before done() */
	int err;	   /* 0: an HTTP answer came (see status); -errno: none did
			    * (-ECONNABORTED: the gateway's certificate was refused) */
	char errmsg[128];  /* with err: what went wrong, in libcurl's words */
	long status;	   /* HTTP status of the last attempt */
	unsigned attempts; /* made (1 without retries) */
	char *reply;	   /* the reply body, NUL-terminated, malloc'ed (s3_req_reset frees) */
	size_t reply_len;
	char etag[128]; /* ETag header, as sent */
	uint64_t content_length;
	uint64_t total_size;	/* a ranged GET's Content-Range: the whole object's size */
	char last_modified[40]; /* Last-Modified, as sent */
	struct s3_meta meta;	/* x-amz-meta-* the back end keeps, as sent */
	/* private */
	void *priv;
};

/* A client over base; NULL with err filled on failure. */
struct s3_client *s3_client_new(struct event_base *base, const struct s3_client_conf *conf,
				char *err, size_t errlen);
/* Ends every request in flight (done() with -ECANCELED), frees the client. */
void s3_client_free(struct s3_client *c);
/* Start r; 0 (done() will be called), or -errno (it will not). */
int s3_submit(struct s3_client *c, struct s3_req *r);
/* New credentials for the requests signed from now on: 0 or -ENOMEM. */
int s3_client_set_keys(struct s3_client *c, const char *access_key, const char *secret_key,
		       const char *session_token);
/* Requests in flight (on the wire or waiting their turn). */
unsigned s3_inflight(const struct s3_client *c);
/* Free what the client put in r (the reply), ready to be submitted again. */
void s3_req_reset(struct s3_req *r);

#endif
