/*
 * s3_http.c - the S3 back end's HTTP client (s3_http.h).
 * Runs in: the S3 worker, on its loop thread (and the tests' loops).
 *
 * libcurl's multi interface in its socket form: libcurl says which
 * descriptors to watch (s3_sock_cb) and when to call it back
 * (s3_timer_cb); libevent watches them on the worker's loop and hands the
 * events back (s3_event_cb, s3_timeout_cb); finished transfers are taken
 * from the multi handle (s3_collect) and their requests' done() called.
 * libcurl keeps connections open between requests (its connection cache),
 * so a burst of requests to one gateway does not pay a handshake each.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "s3_http.h"

struct s3_xfer {
	struct s3_client *x_c;
	struct s3_req *x_r;
	CURL *x_easy;
	struct curl_slist *x_hdrs;
	char *x_url;
	bool x_too_big;
	char x_errbuf[CURL_ERROR_SIZE]; /* libcurl's own words on a failure */
	struct event *x_retry; /* the wait before the next attempt */
	bool x_waiting;	       /* not started yet: c_waiting */
	struct s3_xfer *x_next, *x_prev;
	struct s3_xfer *x_wnext;
};

struct s3_client {
	struct event_base *c_base;
	CURLM *c_multi;
	struct event *c_timer;
	struct s3_client_conf c_conf; /* strings owned (c_strings) */
	char *c_strings[8];
	char c_origin[512]; /* scheme://authority: where requests go */
	char c_host[512];   /* the Host header (BUCKET.authority for virtual hosting) */
	struct curl_slist *c_resolve;
	struct s3_xfer *c_xfers;
	struct s3_xfer *c_waiting, **c_waiting_tail; /* FIFO beyond max_inflight */
	unsigned c_inflight;			     /* every request, waiting or not */
	unsigned c_started;			     /* those on the wire (or between attempts) */
};

static void s3_collect(struct s3_client *c);

/* ---- libevent <-> libcurl ---- */

static void s3_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct s3_client *c = arg;
	int running, action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
			      ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(c->c_multi, fd, action, &running);
	s3_collect(c);
}

static int s3_sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *sockp)
{
	struct s3_client *c = userp;
	struct event *ev = sockp;
	short kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (ev) {
			event_free(ev);
			curl_multi_assign(c->c_multi, s, NULL);
		}
		return 0;
	}
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	       ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (ev) {
		event_del(ev);
		event_assign(ev, c->c_base, s, kind, s3_event_cb, c);
	} else {
		if (!(ev = event_new(c->c_base, s, kind, s3_event_cb, c)))
			return -1;
		curl_multi_assign(c->c_multi, s, ev);
	}
	return event_add(ev, NULL) == 0 ? 0 : -1;
}

static void s3_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct s3_client *c = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(c->c_multi, CURL_SOCKET_TIMEOUT, 0, &running);
	s3_collect(c);
}

static int s3_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct s3_client *c = userp;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

	(void)multi;
	if (timeout_ms < 0)
		return evtimer_del(c->c_timer) == 0 ? 0 : -1;
	return evtimer_add(c->c_timer, &tv) == 0 ? 0 : -1;
}

/* ---- one transfer ---- */

static size_t s3_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct s3_xfer *x = arg;
	struct s3_req *r = x->x_r;
	size_t len = size * n;
	char *d;

	if (r->sink) {
		if (r->reply_len + len > r->sink_cap) {
			x->x_too_big = true;
			return 0;
		}
		memcpy((char *)r->sink + r->reply_len, p, len);
		r->reply_len += len;
		return len;
	}
	if (r->reply_len + len > r->reply_max) {
		x->x_too_big = true;
		return 0; /* libcurl ends the transfer: CURLE_WRITE_ERROR */
	}
	if (!(d = realloc(r->reply, r->reply_len + len + 1)))
		return 0;
	memcpy(d + r->reply_len, p, len);
	r->reply = d;
	r->reply_len += len;
	d[r->reply_len] = '\0';
	return len;
}

/* "Name: value\r\n" -> value, if the header is name (any case). */
static bool s3_header_is(const char *line, size_t len, const char *name, const char **value,
			 size_t *vlen)
{
	size_t n = strlen(name);
	const char *v, *end = line + len;

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	for (v = line + n + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	*value = v;
	*vlen = (size_t)(end - v);
	return true;
}

/* A header's value into a field of its own, if it fits (else left ""). */
static void s3_header_keep(char *dst, size_t cap, const char *v, size_t vlen)
{
	if (vlen < cap) {
		memcpy(dst, v, vlen);
		dst[vlen] = '\0';
	}
}

static size_t s3_header_cb(char *line, size_t size, size_t n, void *arg)
{
	struct s3_xfer *x = arg;
	struct s3_req *r = x->x_r;
	size_t len = size * n, vlen;
	const char *v, *slash;

	if (s3_header_is(line, len, "ETag", &v, &vlen))
		s3_header_keep(r->etag, sizeof(r->etag), v, vlen);
	else if (s3_header_is(line, len, "Content-Length", &v, &vlen))
		r->content_length = strtoull(v, NULL, 10);
	else if (s3_header_is(line, len, "Last-Modified", &v, &vlen))
		s3_header_keep(r->last_modified, sizeof(r->last_modified), v, vlen);
	else if (s3_header_is(line, len, "Content-Range", &v, &vlen) &&
		 (slash = memchr(v, '/', vlen)) && slash[1] >= '0' && slash[1] <= '9')
		r->total_size = strtoull(slash + 1, NULL, 10);
	else if (s3_header_is(line, len, "x-amz-meta-mode", &v, &vlen))
		s3_header_keep(r->meta.mode, sizeof(r->meta.mode), v, vlen);
	else if (s3_header_is(line, len, "x-amz-meta-uid", &v, &vlen))
		s3_header_keep(r->meta.uid, sizeof(r->meta.uid), v, vlen);
	else if (s3_header_is(line, len, "x-amz-meta-gid", &v, &vlen))
		s3_header_keep(r->meta.gid, sizeof(r->meta.gid), v, vlen);
	else if (s3_header_is(line, len, "x-amz-meta-mtime", &v, &vlen))
		s3_header_keep(r->meta.mtime, sizeof(r->meta.mtime), v, vlen);
	return len;
}

/* What one attempt learnt, cleared before the next. */
static void s3_answer_clear(struct s3_req *r)
{
	r->reply_len = 0;
	r->etag[0] = '\0';
	r->content_length = 0;
	r->total_size = 0;
	r->last_modified[0] = '\0';
	memset(&r->meta, 0, sizeof(r->meta));
}

static int s3_curl_errno(CURLcode res, bool too_big)
{
	switch (res) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_WRITE_ERROR:
		return too_big ? -EMSGSIZE : -EIO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return -ECONNABORTED; /* the gateway is not who it should be */
	default:
		return -EIO;
	}
}

/* What one attempt holds: its easy handle, headers and URL. */
static void s3_xfer_release(struct s3_xfer *x)
{
	if (x->x_easy) {
		curl_multi_remove_handle(x->x_c->c_multi, x->x_easy);
		curl_easy_cleanup(x->x_easy);
		x->x_easy = NULL;
	}
	curl_slist_free_all(x->x_hdrs);
	x->x_hdrs = NULL;
	free(x->x_url);
	x->x_url = NULL;
	x->x_too_big = false;
}

static void s3_xfer_free(struct s3_xfer *x)
{
	struct s3_client *c = x->x_c;

	if (!x->x_waiting)
		c->c_started--;
	if (x->x_prev)
		x->x_prev->x_next = x->x_next;
	else
		c->c_xfers = x->x_next;
	if (x->x_next)
		x->x_next->x_prev = x->x_prev;
	s3_xfer_release(x);
	if (x->x_retry)
		event_free(x->x_retry);
	c->c_inflight--;
	x->x_r->priv = NULL;
	free(x);
}

static int s3_start(struct s3_xfer *x);

/* Worth another attempt: no answer at all (timeout, refused, reset), or
 * the server's own trouble (500, 502, 503 SlowDown, 504, 429). */
static bool s3_retryable(int err, long status)
{
	if (err == -EMSGSIZE || err == -ENOMEM || err == -ECONNABORTED)
		return false;
	if (err < 0)
		return true;
	return status == 500 || status == 502 || status == 503 || status == 504 || status == 429;
}

static void s3_complete(struct s3_xfer *x, int err, long status)
{
	struct s3_req *r = x->x_r;

	r->err = err;
	r->status = status;
	s3_xfer_free(x);
	r->done(r);
}

static void s3_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct s3_xfer *x = arg;
	int err;

	(void)fd;
	(void)what;
	if ((err = s3_start(x)) < 0)
		s3_complete(x, err, 0);
}

/*
 * The wait before attempt n + 1: exponential from retry_base_ms, at most
 * retry_max_ms, with "equal jitter" (half of it fixed, half random), so
 * clients that failed together do not come back together.
 */
static long s3_backoff_ms(const struct s3_client *c, unsigned n)
{
	uint64_t d = (uint64_t)c->c_conf.retry_base_ms << (n > 16 ? 16 : n - 1);

	if (d > (uint64_t)c->c_conf.retry_max_ms)
		d = (uint64_t)c->c_conf.retry_max_ms;
	return (long)(d / 2 + arc4random_uniform((uint32_t)(d / 2 + 1)));
}

static void s3_finish(struct s3_xfer *x, int err)
{
	struct s3_req *r = x->x_r;
	struct s3_client *c = x->x_c;
	long status = 0;

	if (x->x_easy)
		curl_easy_getinfo(x->x_easy, CURLINFO_RESPONSE_CODE, &status);
	r->attempts++;
	if (err < 0)
		snprintf(r->errmsg, sizeof(r->errmsg), "%.*s", (int)sizeof(r->errmsg) - 1,
			 x->x_errbuf[0] ? x->x_errbuf : strerror(-err));
	if (s3_retryable(err, status) && r->attempts < c->c_conf.max_attempts &&
	    (x->x_retry || (x->x_retry = evtimer_new(c->c_base, s3_retry_cb, x)))) {
		long ms = s3_backoff_ms(c, r->attempts);
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

		s3_xfer_release(x);
		s3_req_reset(r);
		s3_answer_clear(r);
		if (evtimer_add(x->x_retry, &tv) == 0)
			return;
	}
	s3_complete(x, err, status);
}

/* Start waiting requests while there is room on the wire. */
static void s3_start_waiting(struct s3_client *c)
{
	struct s3_xfer *x;
	int err;

	while ((x = c->c_waiting) &&
	       (c->c_conf.max_inflight == 0 || c->c_started < c->c_conf.max_inflight)) {
		if (!(c->c_waiting = x->x_wnext))
			c->c_waiting_tail = &c->c_waiting;
		x->x_waiting = false;
		c->c_started++;
		if ((err = s3_start(x)) < 0)
			s3_complete(x, err, 0);
	}
}

static void s3_collect(struct s3_client *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->c_multi, &left))) {
		struct s3_xfer *x = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x)
			s3_finish(x, s3_curl_errno(m->data.result, x->x_too_big));
	}
	s3_start_waiting(c);
}

/* ---- requests ---- */

static bool s3_has_header(const struct s3_req *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (r->headers[i].name && strcasecmp(r->headers[i].name, name) == 0)
			return true;
	return false;
}

/* The URL of r: origin, the path (/BUCKET/KEY or /KEY) and the query,
 * encoded by the signer's own functions, so it is what the signature says. */
static char *s3_url(const struct s3_client *c, const struct s3_req *r, const char *path)
{
	size_t cap = strlen(c->c_origin) + 3 * strlen(path) + 1;
	char *url, *query = NULL;
	int n;

	if (r->nquery && s3_canonical_query(r->query, r->nquery, &query) < 0)
		return NULL;
	if (query)
		cap += strlen(query) + 1;
	if ((url = malloc(cap))) {
		n = sprintf(url, "%s", c->c_origin);
		if (s3_uri_encode(path, strlen(path), true, url + n, cap - (size_t)n) < 0) {
			free(url);
			url = NULL;
		} else if (query) {
			strcat(url, "?");
			strcat(url, query);
		}
	}
	free(query);
	return url;
}

/* One attempt of x's request: signed with the date of now, a new easy
 * handle on the multi handle. 0, or -errno with the attempt undone. */
static int s3_start(struct s3_xfer *x)
{
	struct s3_client *c = x->x_c;
	struct s3_req *r = x->x_r;
	struct s3_pair h[S3_HEADERS_MAX + 4];
	char date[32], hash[65], auth[1024], line[4200], *path;
	size_t nh = 0, plen;
	time_t now = time(NULL);
	struct tm tm;
	int err;

	/* the path the signature covers: /BUCKET/KEY, or /KEY on the bucket's host */
	plen = strlen(c->c_conf.bucket) + strlen(r->key) + 3;
	if (!(path = malloc(plen)))
		return -ENOMEM;
	if (c->c_conf.virtual_host)
		plen = (size_t)snprintf(path, plen, "/%s", r->key);
	else
		plen = (size_t)snprintf(path, plen, "/%s%s%s", c->c_conf.bucket,
					r->key[0] ? "/" : "", r->key);
	/* by hand: strftime would read /etc/localtime, which the sandbox lacks */
	gmtime_r(&now, &tm);
	snprintf(date, sizeof(date), "%04d%02d%02dT%02d%02d%02dZ", (tm.tm_year + 1900) % 10000,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	s3_sha256_hex(r->body ? r->body : "", r->body_len, hash);
	h[nh++] = (struct s3_pair){"host", c->c_host};
	h[nh++] = (struct s3_pair){"x-amz-date", date};
	h[nh++] = (struct s3_pair){"x-amz-content-sha256", hash};
	if (c->c_conf.session_token && *c->c_conf.session_token)
		h[nh++] = (struct s3_pair){"x-amz-security-token", c->c_conf.session_token};
	for (size_t i = 0; i < r->nheaders; i++)
		h[nh++] = r->headers[i];
	struct s3_sig_in in = {.method = r->method,
			       .path = path,
			       .query = r->query,
			       .nquery = r->nquery,
			       .headers = h,
			       .nheaders = nh,
			       .payload_hash = hash,
			       .amz_date = date,
			       .region = c->c_conf.region,
			       .service = "s3",
			       .access_key = c->c_conf.access_key,
			       .secret_key = c->c_conf.secret_key};
	if ((err = s3_sign(&in, auth, sizeof(auth))) < 0) {
		free(path);
		return err;
	}
	x->x_url = s3_url(c, r, path);
	free(path);
	err = -ENOMEM;
	if (!x->x_url || !(x->x_easy = curl_easy_init()))
		goto fail;
	for (size_t i = 0; i < nh; i++) {
		struct curl_slist *l;

		snprintf(line, sizeof(line), "%s: %s", h[i].name, h[i].value ? h[i].value : "");
		if (!(l = curl_slist_append(x->x_hdrs, line)))
			goto fail;
		x->x_hdrs = l;
	}
	snprintf(line, sizeof(line), "Authorization: %s", auth);
	x->x_hdrs = curl_slist_append(x->x_hdrs, line);
	/* no 100-continue round trip */
	x->x_hdrs = curl_slist_append(x->x_hdrs, "Expect:");
	/* libcurl would call a body a form; without a type S3 keeps it as binary */
	if (x->x_hdrs && !s3_has_header(r, "content-type"))
		x->x_hdrs = curl_slist_append(x->x_hdrs, "Content-Type:");
	if (!x->x_hdrs)
		goto fail;
	curl_easy_setopt(x->x_easy, CURLOPT_URL, x->x_url);
	/* a key is a name, not a path: "a/./b" and "a/../b" go as they are
	 * (and as they were signed), never folded into another key */
	curl_easy_setopt(x->x_easy, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(x->x_easy, CURLOPT_CUSTOMREQUEST, r->method);
	curl_easy_setopt(x->x_easy, CURLOPT_HTTPHEADER, x->x_hdrs);
	curl_easy_setopt(x->x_easy, CURLOPT_PRIVATE, x);
	x->x_errbuf[0] = '\0';
	curl_easy_setopt(x->x_easy, CURLOPT_ERRORBUFFER, x->x_errbuf);
	curl_easy_setopt(x->x_easy, CURLOPT_WRITEFUNCTION, s3_write_cb);
	curl_easy_setopt(x->x_easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->x_easy, CURLOPT_HEADERFUNCTION, s3_header_cb);
	curl_easy_setopt(x->x_easy, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->x_easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->x_easy, CURLOPT_TIMEOUT_MS, c->c_conf.timeout_ms);
	curl_easy_setopt(x->x_easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(x->x_easy, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(x->x_easy, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->c_conf.ca_blob) {
		struct curl_blob blob = {.data = (void *)c->c_conf.ca_blob,
					 .len = c->c_conf.ca_blob_len,
					 .flags = CURL_BLOB_NOCOPY};

		curl_easy_setopt(x->x_easy, CURLOPT_CAINFO_BLOB, &blob);
		curl_easy_setopt(x->x_easy, CURLOPT_CAINFO, NULL);
		curl_easy_setopt(x->x_easy, CURLOPT_CAPATH, NULL);
	} else if (c->c_conf.ca_file) {
		curl_easy_setopt(x->x_easy, CURLOPT_CAINFO, c->c_conf.ca_file);
	}
	if (c->c_resolve)
		curl_easy_setopt(x->x_easy, CURLOPT_RESOLVE, c->c_resolve);
	if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(x->x_easy, CURLOPT_NOBODY, 1L);
	} else if (r->body || strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0) {
		/* a PUT without a length is refused (411): always send one */
		curl_easy_setopt(x->x_easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		curl_easy_setopt(x->x_easy, CURLOPT_POSTFIELDS, r->body ? r->body : "");
	}
	if (curl_multi_add_handle(c->c_multi, x->x_easy) != CURLM_OK)
		goto fail;
	return 0;
fail:
	s3_xfer_release(x);
	return err;
}

int s3_submit(struct s3_client *c, struct s3_req *r)
{
	struct s3_xfer *x;
	int err;

	if (!r->method || !r->key || !r->done || r->nheaders > S3_HEADERS_MAX ||
	    r->nquery > S3_QUERY_MAX)
		return -EINVAL;
	r->err = 0;
	r->status = 0;
	r->attempts = 0;
	r->reply = NULL;
	r->errmsg[0] = '\0';
	s3_answer_clear(r);
	if (!(x = calloc(1, sizeof(*x))))
		return -ENOMEM;
	x->x_c = c;
	x->x_r = r;
	x->x_next = c->c_xfers;
	if (c->c_xfers)
		c->c_xfers->x_prev = x;
	c->c_xfers = x;
	c->c_inflight++;
	r->priv = x;
	if (c->c_conf.max_inflight && c->c_started >= c->c_conf.max_inflight) {
		x->x_waiting = true;
		*c->c_waiting_tail = x;
		c->c_waiting_tail = &x->x_wnext;
		return 0;
	}
	c->c_started++;
	if ((err = s3_start(x)) < 0) {
		s3_xfer_free(x);
		return err;
	}
	return 0;
}

unsigned s3_inflight(const struct s3_client *c)
{
	return c->c_inflight;
}

void s3_req_reset(struct s3_req *r)
{
	free(r->reply);
	r->reply = NULL;
	r->reply_len = 0;
}

/* ---- the client ---- */

int s3_client_set_keys(struct s3_client *c, const char *access_key, const char *secret_key,
		       const char *session_token)
{
	char *a = strdup(access_key), *k = strdup(secret_key),
	     *t = session_token && *session_token ? strdup(session_token) : NULL;

	if (!a || !k || (session_token && *session_token && !t)) {
		free(a);
		if (k)
			explicit_bzero(k, strlen(k));
		free(k);
		free(t);
		return -ENOMEM;
	}
	for (size_t i = 3; i <= 5; i++)
		if (c->c_strings[i]) {
			explicit_bzero(c->c_strings[i], strlen(c->c_strings[i]));
			free(c->c_strings[i]);
		}
	c->c_conf.access_key = c->c_strings[3] = a;
	c->c_conf.secret_key = c->c_strings[4] = k;
	c->c_conf.session_token = c->c_strings[5] = t;
	return 0;
}

static const char *s3_keep(struct s3_client *c, size_t i, const char *s)
{
	if (!s)
		return NULL;
	return c->c_strings[i] = strdup(s);
}

struct s3_client *s3_client_new(struct event_base *base, const struct s3_client_conf *conf,
				char *err, size_t errlen)
{
	struct s3_client *c;
	const char *auth, *slash;
	size_t schemelen;

	if (!conf->endpoint || !conf->bucket || !conf->region || !conf->access_key ||
	    !conf->secret_key) {
		snprintf(err, errlen, "endpoint, bucket, region and keys are needed");
		return NULL;
	}
	if (strncmp(conf->endpoint, "http://", 7) == 0)
		schemelen = 7;
	else if (strncmp(conf->endpoint, "https://", 8) == 0)
		schemelen = 8;
	else {
		snprintf(err, errlen, "endpoint %s: not http:// or https://", conf->endpoint);
		return NULL;
	}
	auth = conf->endpoint + schemelen;
	slash = strchr(auth, '/');
	if ((slash && slash[1] != '\0') || !*auth || strlen(conf->endpoint) >= 400) {
		snprintf(err, errlen, "endpoint %s: a scheme and a host[:port], nothing after",
			 conf->endpoint);
		return NULL;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->c_base = base;
	c->c_conf = *conf;
	c->c_conf.endpoint = s3_keep(c, 0, conf->endpoint);
	c->c_conf.bucket = s3_keep(c, 1, conf->bucket);
	c->c_conf.region = s3_keep(c, 2, conf->region);
	c->c_conf.access_key = s3_keep(c, 3, conf->access_key);
	c->c_conf.secret_key = s3_keep(c, 4, conf->secret_key);
	c->c_conf.session_token = s3_keep(c, 5, conf->session_token);
	c->c_conf.ca_file = s3_keep(c, 6, conf->ca_file);
	c->c_waiting_tail = &c->c_waiting;
	if (conf->resolve && !(c->c_resolve = curl_slist_append(NULL, conf->resolve))) {
		snprintf(err, errlen, "out of memory");
		s3_client_free(c);
		return NULL;
	}
	if (c->c_conf.timeout_ms <= 0)
		c->c_conf.timeout_ms = S3_DEFAULT_TIMEOUT_MS;
	if (c->c_conf.max_attempts == 0)
		c->c_conf.max_attempts = S3_DEFAULT_ATTEMPTS;
	if (c->c_conf.retry_base_ms <= 0)
		c->c_conf.retry_base_ms = S3_DEFAULT_RETRY_BASE_MS;
	if (c->c_conf.retry_max_ms < c->c_conf.retry_base_ms)
		c->c_conf.retry_max_ms = S3_DEFAULT_RETRY_MAX_MS;
	snprintf(c->c_origin, sizeof(c->c_origin), "%.*s",
		 (int)(slash ? slash - conf->endpoint : (long)strlen(conf->endpoint)),
		 conf->endpoint);
	snprintf(c->c_host, sizeof(c->c_host), "%s%s%.*s", conf->virtual_host ? conf->bucket : "",
		 conf->virtual_host ? "." : "", (int)(slash ? slash - auth : (long)strlen(auth)),
		 auth);
	c->c_multi = conf->multi ? conf->multi : curl_multi_init();
	c->c_timer = evtimer_new(base, s3_timeout_cb, c);
	if (!c->c_multi || !c->c_timer || !c->c_conf.endpoint || !c->c_conf.secret_key) {
		snprintf(err, errlen, "out of memory");
		s3_client_free(c);
		return NULL;
	}
	curl_multi_setopt(c->c_multi, CURLMOPT_SOCKETFUNCTION, s3_sock_cb);
	curl_multi_setopt(c->c_multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->c_multi, CURLMOPT_TIMERFUNCTION, s3_timer_cb);
	curl_multi_setopt(c->c_multi, CURLMOPT_TIMERDATA, c);
	return c;
}

void s3_client_free(struct s3_client *c)
{
	if (!c)
		return;
	c->c_waiting = NULL;
	while (c->c_xfers) {
		struct s3_xfer *x = c->c_xfers;
		struct s3_req *r = x->x_r;

		r->err = -ECANCELED;
		s3_xfer_free(x);
		r->done(r);
	}
	curl_slist_free_all(c->c_resolve);
	if (c->c_multi)
		curl_multi_cleanup(c->c_multi);
	if (c->c_timer)
		event_free(c->c_timer);
	for (size_t i = 3; i <= 5; i++)
		if (c->c_strings[i])
			explicit_bzero(c->c_strings[i], strlen(c->c_strings[i]));
	for (size_t i = 0; i < 8; i++)
		free(c->c_strings[i]);
	free(c);
}
