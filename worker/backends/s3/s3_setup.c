/*
 * s3_setup.c - an S3 worker's start-up before its sandbox (s3_setup.h).
 * Runs in: the S3 worker, single-threaded, before SANDBOX: the only time it
 * may open files or ask the resolver (its sandbox has neither a resolver
 * configuration nor a CA directory).
 */
#include "config.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "s3_setup.h"

static bool s3_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static int __attribute__((format(printf, 4, 5)))
s3_fail(char *why, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return err;
}

/* The whole bundle from fd, bounded. */
static int s3_read_ca(int fd, struct s3_setup *s, char *why, size_t whylen)
{
	struct stat st;
	size_t done = 0;
	ssize_t n;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > S3_CA_MAX)
		return s3_fail(why, whylen, -EINVAL, "%s",
			       "the CA bundle is not a file of 1 byte to 4 MiB");
	if (!(s->ss_ca = malloc((size_t)st.st_size + 1)))
		return -ENOMEM;
	while (done < (size_t)st.st_size) {
		n = pread(fd, s->ss_ca + done, (size_t)st.st_size - done, (off_t)done);
		if (n <= 0)
			return s3_fail(why, whylen, -EIO, "%s", "cannot read the CA bundle");
		done += (size_t)n;
	}
	s->ss_ca[done] = '\0';
	s->ss_ca_len = done;
	return 0;
}

/*
 * The endpoint's host and port ("http://HOST[:PORT]"): requests go there
 * whatever the addressing (with virtual addressing the bucket is in the
 * Host header they carry, BUCKET.HOST). An address needs no resolving; a
 * name is resolved now and pinned for libcurl.
 */
static int s3_resolve(struct s3_setup *s, char *why, size_t whylen)
{
	const struct ipc_s3_config *c = &s->ss_cfg;
	bool tls = strncmp(c->sc_endpoint, "https://", 8) == 0;
	const char *auth = c->sc_endpoint + (tls ? 8 : 7), *colon, *end;
	char host[300], port[8];
	struct addrinfo hints, *res, *ai;
	unsigned char buf[sizeof(struct in6_addr)];
	size_t used;
	int r;

	end = auth + strcspn(auth, "/");
	if (*auth == '[') {
		/* an IPv6 address: nothing to resolve */
		return 0;
	}
	colon = memchr(auth, ':', (size_t)(end - auth));
	if ((size_t)((colon ? colon : end) - auth) >= 200)
		return s3_fail(why, whylen, -EINVAL, "%s", "endpoint host name too long");
	snprintf(host, sizeof(host), "%.*s", (int)((colon ? colon : end) - auth), auth);
	snprintf(port, sizeof(port), "%.*s", colon ? (int)(end - colon - 1) : 3,
		 colon ? colon + 1 : (tls ? "443" : "80"));
	if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0)
		return s3_fail(why, whylen, -EHOSTUNREACH, "cannot resolve the endpoint's host: %s",
			       gai_strerror(r));
	used = (size_t)snprintf(s->ss_resolve, sizeof(s->ss_resolve), "%s:%s:", host, port);
	for (ai = res; ai && used + INET6_ADDRSTRLEN + 3 < sizeof(s->ss_resolve);
	     ai = ai->ai_next) {
		char a[INET6_ADDRSTRLEN];
		const void *p =
		    ai->ai_family == AF_INET
			? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
			: (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;

		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    !inet_ntop(ai->ai_family, p, a, sizeof(a)))
			continue;
		used += (size_t)snprintf(s->ss_resolve + used, sizeof(s->ss_resolve) - used,
					 "%s%s%s%s", s->ss_resolve[used - 1] == ':' ? "" : ",",
					 ai->ai_family == AF_INET6 ? "[" : "", a,
					 ai->ai_family == AF_INET6 ? "]" : "");
	}
	freeaddrinfo(res);
	if (s->ss_resolve[used - 1] == ':')
		return s3_fail(why, whylen, -EHOSTUNREACH, "%s",
			       "the endpoint's host has no IPv4 or IPv6 address");
	return 0;
}

int s3_setup_config(const void *data, size_t len, int ca_fd, struct s3_setup *s, char *why,
		    size_t whylen)
{
	struct ipc_s3_config *c = &s->ss_cfg;
	int err = 0;

	if (len != sizeof(*c)) {
		err = s3_fail(why, whylen, -EINVAL, "%s", "S3_CONFIG of the wrong size");
		goto out;
	}
	memcpy(c, data, sizeof(*c));
	if (!s3_terminated(c->sc_endpoint, sizeof(c->sc_endpoint)) ||
	    !s3_terminated(c->sc_bucket, sizeof(c->sc_bucket)) ||
	    !s3_terminated(c->sc_prefix, sizeof(c->sc_prefix)) ||
	    !s3_terminated(c->sc_region, sizeof(c->sc_region)) || !c->sc_bucket[0] ||
	    (strncmp(c->sc_endpoint, "http://", 7) != 0 &&
	     strncmp(c->sc_endpoint, "https://", 8) != 0) ||
	    (c->sc_prefix[0] && c->sc_prefix[strlen(c->sc_prefix) - 1] != '/') ||
	    c->sc_attempts == 0 || c->sc_attempts > 20 || c->sc_concurrency == 0 ||
	    c->sc_concurrency > 256 || c->sc_timeout_ms == 0 || c->sc_part_size < (5u << 20) ||
	    c->sc_part_size > (5ull << 30) || c->sc_readahead < (1u << 20) ||
	    c->sc_copy_threshold < (5u << 20) || c->sc_copy_threshold > (5ull << 30)) {
		err = s3_fail(why, whylen, -EINVAL, "%s", "S3_CONFIG out of range");
		goto out;
	}
	if (ca_fd >= 0 && (err = s3_read_ca(ca_fd, s, why, whylen)) < 0)
		goto out;
	/* glibc reads /etc/localtime once, on the first time conversion (the
	 * request dates): now, while there is one */
	tzset();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		err = s3_fail(why, whylen, -EIO, "%s", "libcurl initialisation failed");
		goto out;
	}
	if (!(s->ss_multi = curl_multi_init())) {
		err = s3_fail(why, whylen, -ENOMEM, "%s", "libcurl's multi handle");
		goto out;
	}
	err = s3_resolve(s, why, whylen);
out:
	if (ca_fd >= 0)
		close(ca_fd);
	return err;
}

int s3_setup_creds(const void *data, size_t len, struct ipc_s3_creds *out)
{
	if (len != sizeof(*out))
		return -EINVAL;
	memcpy(out, data, sizeof(*out));
	if (!s3_terminated(out->cr_access_key, sizeof(out->cr_access_key)) ||
	    !s3_terminated(out->cr_secret_key, sizeof(out->cr_secret_key)) ||
	    !s3_terminated(out->cr_session_token, sizeof(out->cr_session_token)) ||
	    !out->cr_access_key[0] || !out->cr_secret_key[0]) {
		explicit_bzero(out, sizeof(*out));
		return -EINVAL;
	}
	return 0;
}
