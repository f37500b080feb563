/*
 * gw.h - the S3 tests' gateway and a client of it (gw.c).
 * Runs in: S3 test programs only.
 */
#ifndef BH_TEST_GW_H
#define BH_TEST_GW_H

#include <event2/event.h>
#include <sys/types.h>

#include "s3_http.h"

/* The cluster's directory (its env file, logs), address and keys. */
extern char gw_dir[64];
extern char gw_endpoint[300], gw_key[300], gw_secret[300];
extern char gw_ca[300]; /* the cluster's CA (PEM) when its gateway speaks TLS, else "" */

/* Start a cluster in a new directory (asserts), or stop it. */
void gw_start(void);
/* The same with a gateway that speaks HTTPS only (gw_ca: its CA). */
void gw_start_tls(void);
void gw_stop(void);
/* Read the address and keys of the cluster started in dir. */
void gw_load_env(const char *dir);

struct gw_loop {
	struct event_base *base;
	unsigned pending, max_inflight;
	struct s3_client *client;
};

void gw_done(struct s3_req *r);
/* Submit n requests at once and run the loop until all are done. */
void gw_run(struct gw_loop *l, struct s3_req *r, unsigned n);
/* A client of bucket on l's loop, signing with secret. */
struct s3_client *gw_client(struct gw_loop *l, const char *bucket, const char *secret);
/* Expect r's status to be want. */
void gw_expect(const struct s3_req *r, long want, const char *what);

/* tests/s3/fault-proxy.py in front of the gateway, answering 503 SlowDown
 * to the first fails attempts of each request: its pid, *port its port. */
pid_t gw_proxy(int fails, int *port);
/* CLOCK_MONOTONIC in seconds. */
double gw_now(void);

#endif
