/*
 * sigv4.h - AWS Signature Version 4 for the S3 back end's requests, in the
 * Authorization header, on OpenSSL's libcrypto (SHA-256, HMAC-SHA256).
 * Runs in: the S3 worker (and its unit tests). Pure functions of their
 * arguments: no clock, no I/O; the caller gives the date.
 *
 * libcurl's own signer (CURLOPT_AWS_SIGV4, 7.88) is not used: it sorts the
 * query string before encoding it and mishandles a parameter without a
 * value (?uploads), both of which S3 requests need right.
 */
#ifndef BH_S3_SIGV4_H
#define BH_S3_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

/* A query parameter or a header. A query parameter without a value (the
 * "uploads" of "?uploads") has value "" (or NULL). */
struct s3_pair {
	const char *name;
	const char *value;
};

struct s3_sig_in {
	const char *method; /* "GET", "PUT", ... */
	/* The path as a key names it, not yet encoded ("/bucket/a b"); the
	 * request line must carry s3_uri_encode(path, keep_slash = true). */
	const char *path;
	const struct s3_pair *query; /* decoded names and values, any order */
	size_t nquery;
	/* Every header to sign, names in any case; "host" and "x-amz-date"
	 * (equal to amz_date) must be among them, and "x-amz-content-sha256"
	 * for S3. */
	const struct s3_pair *headers;
	size_t nheaders;
	const char *payload_hash; /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
	const char *amz_date;	  /* "YYYYMMDDTHHMMSSZ", UTC */
	const char *region;	  /* "us-east-1" */
	const char *service;	  /* "s3" */
	const char *access_key;
	const char *secret_key;
};

/* The Authorization header's value into out (NUL-terminated): 0, or
 * -EINVAL (a malformed date, a header without a name), -ENOSPC, -ENOMEM. */
int s3_sign(const struct s3_sig_in *in, char *out, size_t outlen);

/*
 * The pieces, for the HTTP layer and the tests.
 *
 * s3_uri_encode: every byte but A-Z a-z 0-9 - . _ ~ (and '/' when
 * keep_slash) as %XX with upper-case hex, as SigV4 and S3 want. Returns the
 * encoded length (out NUL-terminated), or -ENOSPC.
 */
int s3_uri_encode(const char *in, size_t len, bool keep_slash, char *out, size_t outlen);
/* The canonical query string (names and values encoded, sorted, joined
 * with '&'), malloc'ed (*out), or -errno: also what a URL may carry after
 * its '?', so that the request sent is the request signed. */
int s3_canonical_query(const struct s3_pair *query, size_t n, char **out);
/* The canonical request, malloc'ed (*out), or -errno. */
int s3_canonical_request(const struct s3_sig_in *in, char **out);
/* Lower-case hex SHA-256 of len bytes. */
void s3_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
