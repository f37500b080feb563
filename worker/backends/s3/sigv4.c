/*
 * sigv4.c - AWS Signature Version 4 (sigv4.h).
 * Runs in: the S3 worker and its unit tests. Everything here is a function
 * of its arguments; the secret never leaves the signing key's derivation.
 *
 * The canonical request, per the SigV4 specification as S3 applies it:
 *   METHOD \n
 *   the path, each byte URI-encoded except '/', encoded once (S3 does not
 *   encode the path a second time as other services do) \n
 *   the query: names and values URI-encoded (also '/'), sorted by encoded
 *   name and then value, joined with '&', "name=" for an empty value \n
 *   the headers: lower-case names, values with leading and trailing spaces
 *   removed and inner runs of spaces made one, sorted by name, a name given
 *   twice as one line with the values joined by ',', each line "name:value\n" \n
 *   the signed header names joined with ';' \n
 *   the payload hash
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sigv4.h"

#define S3_ALGORITHM "AWS4-HMAC-SHA256"

static const char s3_hex[] = "0123456789abcdef";

static void s3_hex_of(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = s3_hex[d[i] >> 4];
		out[2 * i + 1] = s3_hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void s3_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
		n = 0;
	s3_hex_of(md, n, hex);
}

static bool s3_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

int s3_uri_encode(const char *in, size_t len, bool keep_slash, char *out, size_t outlen)
{
	static const char up[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (s3_unreserved(c) || (keep_slash && c == '/')) {
			if (o + 1 >= outlen)
				return -ENOSPC;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= outlen)
				return -ENOSPC;
			out[o++] = '%';
			out[o++] = up[c >> 4];
			out[o++] = up[c & 15];
		}
	}
	if (o >= outlen)
		return -ENOSPC;
	out[o] = '\0';
	return (int)o;
}

/* s3_uri_encode into a new string. */
static char *s3_encoded(const char *s, bool keep_slash)
{
	size_t cap = 3 * strlen(s) + 1;
	char *out = malloc(cap);

	if (out && s3_uri_encode(s, strlen(s), keep_slash, out, cap) < 0) {
		free(out);
		out = NULL;
	}
	return out;
}

struct s3_qp {
	char *name, *value; /* encoded */
};

static int s3_qp_cmp(const void *a, const void *b)
{
	const struct s3_qp *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

int s3_canonical_query(const struct s3_pair *query, size_t n, char **out)
{
	struct s3_qp *v = calloc(n ? n : 1, sizeof(*v));
	char *buf = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int err = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n && !err; i++) {
		v[i].name = s3_encoded(query[i].name ? query[i].name : "", false);
		v[i].value = s3_encoded(query[i].value ? query[i].value : "", false);
		if (!v[i].name || !v[i].value)
			err = -ENOMEM;
	}
	if (!err && !(f = open_memstream(&buf, &len)))
		err = -ENOMEM;
	if (!err) {
		qsort(v, n, sizeof(*v), s3_qp_cmp);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "%s%s=%s", i ? "&" : "", v[i].name, v[i].value);
		if (fclose(f) != 0)
			err = -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	return 0;
}

struct s3_hdr {
	char *name;	   /* lower case */
	const char *value; /* as given */
	size_t order;	   /* as given, to keep repeated names' values in order */
};

static int s3_hdr_cmp(const void *a, const void *b)
{
	const struct s3_hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->order < y->order ? -1 : x->order > y->order);
}

/* value with its ends trimmed and inner runs of spaces made one */
static void s3_put_trimmed(FILE *f, const char *v)
{
	bool space = false, started = false;

	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			space = started;
			continue;
		}
		if (space)
			fputc(' ', f);
		fputc(*v, f);
		space = false;
		started = true;
	}
}

/* The canonical headers, and the signed header names into *signed_out. */
static int s3_put_headers(FILE *f, const struct s3_sig_in *in, char **signed_out)
{
	struct s3_hdr *h = calloc(in->nheaders ? in->nheaders : 1, sizeof(*h));
	char *names = NULL;
	size_t nlen = 0;
	FILE *sn;
	int err = 0;

	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < in->nheaders && !err; i++) {
		const char *n = in->headers[i].name;

		if (!n || !*n) {
			err = -EINVAL;
			break;
		}
		if (!(h[i].name = strdup(n))) {
			err = -ENOMEM;
			break;
		}
		for (char *p = h[i].name; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		h[i].value = in->headers[i].value ? in->headers[i].value : "";
		h[i].order = i;
	}
	if (!err && !(sn = open_memstream(&names, &nlen)))
		err = -ENOMEM;
	if (!err) {
		qsort(h, in->nheaders, sizeof(*h), s3_hdr_cmp);
		for (size_t i = 0; i < in->nheaders; i++) {
			bool again = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;

			if (again) {
				fputc(',', f);
			} else {
				if (i > 0)
					fputc('\n', f);
				fprintf(f, "%s:", h[i].name);
				fprintf(sn, "%s%s", i ? ";" : "", h[i].name);
			}
			s3_put_trimmed(f, h[i].value);
		}
		if (in->nheaders)
			fputc('\n', f);
		if (fclose(sn) != 0)
			err = -ENOMEM;
	}
	for (size_t i = 0; i < in->nheaders; i++)
		free(h[i].name);
	free(h);
	if (err) {
		free(names);
		return err;
	}
	*signed_out = names;
	return 0;
}

/* The canonical request, and the signed header names (*signed_out). */
static int s3_canonical(const struct s3_sig_in *in, char **out, char **signed_out)
{
	char *buf = NULL, *part = NULL, *names = NULL;
	size_t len = 0;
	FILE *f;
	int err;

	if (!in->method || !in->path || !in->payload_hash)
		return -EINVAL;
	if (!(f = open_memstream(&buf, &len)))
		return -ENOMEM;
	if (!(part = s3_encoded(in->path[0] ? in->path : "/", true))) {
		fclose(f);
		free(buf);
		return -ENOMEM;
	}
	fprintf(f, "%s\n%s\n", in->method, part);
	free(part);
	if ((err = s3_canonical_query(in->query, in->nquery, &part)) == 0) {
		fprintf(f, "%s\n", part);
		free(part);
		err = s3_put_headers(f, in, &names);
	}
	if (!err)
		fprintf(f, "\n%s\n%s", names, in->payload_hash);
	if (fclose(f) != 0 && !err)
		err = -ENOMEM;
	if (err) {
		free(buf);
		free(names);
		return err;
	}
	*out = buf;
	if (signed_out)
		*signed_out = names;
	else
		free(names);
	return 0;
}

int s3_canonical_request(const struct s3_sig_in *in, char **out)
{
	return s3_canonical(in, out, NULL);
}

static bool s3_hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int n = 0;

	return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out,
		    &n) != NULL &&
	       n == 32;
}

/* YYYYMMDDTHHMMSSZ */
static bool s3_date_ok(const char *d)
{
	if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return false;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)d[i]))
			return false;
	return true;
}

int s3_sign(const struct s3_sig_in *in, char *out, size_t outlen)
{
	unsigned char k[32], sig[32];
	char day[9], scope[256], hash[65], sighex[65], *canon = NULL, *names = NULL, *sts = NULL;
	char *secret = NULL;
	int err, n;

	if (!s3_date_ok(in->amz_date) || !in->region || !in->service || !in->access_key ||
	    !in->secret_key)
		return -EINVAL;
	memcpy(day, in->amz_date, 8);
	day[8] = '\0';
	n = snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", day, in->region, in->service);
	if (n < 0 || (size_t)n >= sizeof(scope))
		return -EINVAL;
	if ((err = s3_canonical(in, &canon, &names)) < 0)
		return err;
	s3_sha256_hex(canon, strlen(canon), hash);
	free(canon);
	err = -ENOMEM;
	if (asprintf(&sts, "%s\n%s\n%s\n%s", S3_ALGORITHM, in->amz_date, scope, hash) < 0) {
		sts = NULL;
		goto out;
	}
	if (asprintf(&secret, "AWS4%s", in->secret_key) < 0) {
		secret = NULL;
		goto out;
	}
	err = -EINVAL;
	if (!s3_hmac(secret, strlen(secret), day, k) || !s3_hmac(k, 32, in->region, k) ||
	    !s3_hmac(k, 32, in->service, k) || !s3_hmac(k, 32, "aws4_request", k) ||
	    !s3_hmac(k, 32, sts, sig))
		goto out;
	s3_hex_of(sig, 32, sighex);
	n = snprintf(out, outlen, "%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		     S3_ALGORITHM, in->access_key, scope, names, sighex);
	err = n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
out:
	if (secret) {
		OPENSSL_cleanse(secret, strlen(secret));
		free(secret);
	}
	OPENSSL_cleanse(k, sizeof(k));
	free(sts);
	free(names);
	return err;
}
