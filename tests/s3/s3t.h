/*
 * s3t.h - the S3 back-end tests' fixture (s3t.c): a bucket of the test's
 * own on the gateway gw.c knows, the real bulkheadd serving it with an
 * [s3] configuration, a connected test front end (it_fe, itest.h), and a
 * client of the bucket that does not go through the daemon.
 * Runs in: S3 test programs only.
 */
#ifndef BH_TEST_S3T_H
#define BH_TEST_S3T_H

#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>

#include "gw.h"

#define T_Q 1 /* the request queue the tests use */

extern char s3t_bucket[64], s3t_conf[], s3t_tmp[256];
extern struct gw_loop s3t_l;
/* The secret the daemon gets (NULL: the right one). */
extern const char *s3t_secret;

/* A new bucket on gw_endpoint's gateway (gw_load_env first), then the
 * daemon serving it through endpoint (NULL: the gateway itself), with
 * extra_conf appended to its [s3] section, and a front end after INIT. */
void s3t_start_at(const char *endpoint, const char *extra_conf);
/* The daemon's credentials file, now with secret. */
void s3t_write_creds(const char *secret);
/* Criterion .fini: dump the log with BH_TEST_S3_LOG set, stop, clean up. */
void s3t_fini(void);

/* The bucket directly: statuses. */
void s3t_req(struct s3_req *r, const char *method, const char *key);
long s3t_put(const char *key, const void *data, size_t len);
long s3t_get(const char *key, char **out, size_t *len); /* *out malloc'ed */
long s3t_head(const char *key, struct s3_req *r);
unsigned s3t_keys(const char *prefix); /* keys below prefix */
unsigned s3t_uploads(void);		/* multipart uploads open */

/* FUSE on queue T_Q, asserting success. */
uint64_t s3t_lookup(uint64_t parent, const char *name, struct fuse_entry_out *e);
void s3t_write(uint64_t node, uint64_t fh, uint64_t off, const void *buf, uint32_t len);
size_t s3t_read(uint64_t node, uint64_t fh, uint64_t off, void *buf, uint32_t len);
/* CREATE name in the root, write text, close; the object holds text, and
 * a new OPEN reads it back. */
void s3t_round_trip(const char *name, const char *text);
/* Deterministic bytes. */
void s3t_pattern(unsigned char *buf, size_t len, unsigned seed);

#endif
