/*
 * s3_xml.h - the S3 back end's reading of the gateway's XML bodies, on
 * expat: listings (ListObjectsV2), error bodies (which CopyObject and
 * CompleteMultipartUpload may send with a 200 status), the id of a new
 * multipart upload.
 * Runs in: the S3 worker (and its tests). The body comes from the network:
 * it is parsed by expat with document types refused (no entities, no
 * external anything), and every value is bounded; a body that is not what
 * it should be is -EPROTO, never a partial result taken for a whole one.
 */
#ifndef BH_S3_XML_H
#define BH_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define S3_XML_VALUE_MAX 4096 /* longest text of one element kept (keys are <= 1024 bytes) */

/* One entry of a listing: an object (is_prefix false) or a common prefix.
 * key is decoded (encoding-type=url undone) and NUL-terminated; an entry
 * whose decoded key holds a NUL byte is not reported (no name can hold it). */
struct s3_entry {
	bool is_prefix;
	const char *key;
	uint64_t size;	      /* objects */
	const char *etag;     /* objects, as sent (with its quotes) */
	const char *modified; /* objects, ISO 8601 as sent */
};

struct s3_list_result {
	bool truncated;
	char next_token[S3_XML_VALUE_MAX]; /* NextContinuationToken, "" if none */
	unsigned objects, prefixes;	   /* entries reported */
};

/* Parse a ListObjectsV2 body; each entry goes to fn (which returns 0, or
 * non-zero to stop: that value is returned). 0, -EPROTO (not a listing,
 * malformed, a value too long, a bad %-escape), or fn's value. */
int s3_parse_list(const char *body, size_t len, int (*fn)(const struct s3_entry *, void *),
		  void *arg, struct s3_list_result *res);

/* An <Error> body: 0 with code (and message, may be empty) filled, or
 * -ENOENT when the body is some other well-formed document, -EPROTO when
 * it is not XML. */
int s3_parse_error(const char *body, size_t len, char *code, size_t codelen, char *message,
		   size_t msglen);

/* The UploadId of an InitiateMultipartUploadResult: 0 or -EPROTO. */
int s3_parse_upload_id(const char *body, size_t len, char *id, size_t idlen);

/* The ETag of an UploadPartCopy's CopyPartResult (which may also come as
 * an <Error> with a 200: -EPROTO then, as for any other body): 0. */
int s3_parse_copy_part(const char *body, size_t len, char *etag, size_t etaglen);

/* The body of CompleteMultipartUpload for parts 1..n with their ETags (as
 * the gateway sent them, quotes included; escaped here), malloc'ed, or
 * NULL (out of memory, an ETag of more than 128 bytes). */
char *s3_complete_body(const char *const *etags, unsigned n);

/* A CompleteMultipartUpload or CopyObject reply that came with status 200:
 * 0 when it is the result, or -EIO with the error's code in code when the
 * body is an <Error> (S3 may send one with a 200 once the work failed);
 * -EPROTO when it is neither. An empty <ETag> (the RADOS Gateway's) is a
 * result. */
int s3_parse_done(const char *body, size_t len, char *code, size_t codelen);

/* Undo encoding-type=url: %XX and '+' (a space). Returns the decoded
 * length (out NUL-terminated), or -EPROTO (a bad escape), -ENOSPC. */
int s3_url_decode(const char *in, size_t len, char *out, size_t outlen);

#endif
