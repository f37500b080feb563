/*
 * s3_xml.c - the gateway's XML bodies (s3_xml.h), read with expat.
 * Runs in: the S3 worker and its tests.
 *
 * One small state machine serves every body: the path of open elements
 * from the root ("ListBucketResult/Contents/Key"), the text of the element
 * being read, and what to do when an element closes. Namespaces are not
 * processed (S3's default namespace leaves names bare). A document type
 * declaration stops the parse: S3 never sends one, and refusing it refuses
 * every entity trick with it.
 */
#include "config.h"

#include <errno.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_xml.h"

#define S3_XML_DEPTH 8
#define S3_XML_NAME  64

enum s3_doc { S3_DOC_LIST, S3_DOC_ERROR, S3_DOC_UPLOAD, S3_DOC_COPY_PART };

struct s3_xp {
	XML_Parser p;
	enum s3_doc doc;
	int err; /* first error: -EPROTO, or the callback's value */
	unsigned depth;
	char path[S3_XML_DEPTH * (S3_XML_NAME + 1)];
	size_t pathlen[S3_XML_DEPTH + 1];
	char text[S3_XML_VALUE_MAX];
	size_t textlen;
	bool root_ok;
	/* a listing */
	int (*fn)(const struct s3_entry *, void *);
	void *arg;
	struct s3_list_result *res;
	bool url; /* EncodingType url */
	char key[S3_XML_VALUE_MAX], etag[S3_XML_VALUE_MAX], modified[64];
	size_t keylen; /* raw (still encoded) */
	uint64_t size;
	bool have_key;
	/* an error body, an upload id */
	char *out1, *out2;
	size_t out1len, out2len;
	bool have1;
};

static void s3_xp_fail(struct s3_xp *x, int err)
{
	if (!x->err)
		x->err = err;
	XML_StopParser(x->p, XML_FALSE);
}

int s3_url_decode(const char *in, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '%') {
			int v = 0;

			if (i + 2 >= len)
				return -EPROTO; /* cut short */
			for (int k = 1; k <= 2; k++) {
				char h = in[i + k];

				v <<= 4;
				if (h >= '0' && h <= '9')
					v |= h - '0';
				else if (h >= 'a' && h <= 'f')
					v |= h - 'a' + 10;
				else if (h >= 'A' && h <= 'F')
					v |= h - 'A' + 10;
				else
					return -EPROTO;
			}
			c = (char)v;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (o + 1 >= outlen)
			return -ENOSPC;
		out[o++] = c;
	}
	if (o >= outlen)
		return -ENOSPC;
	out[o] = '\0';
	return (int)o;
}

static bool s3_at(const struct s3_xp *x, const char *path)
{
	return strcmp(x->path, path) == 0;
}

static void XMLCALL s3_xp_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct s3_xp *x = arg;
	size_t n = strlen(name), at = x->pathlen[x->depth];
	static const char *const roots[] = {
	    [S3_DOC_LIST] = "ListBucketResult",
	    [S3_DOC_ERROR] = "Error",
	    [S3_DOC_UPLOAD] = "InitiateMultipartUploadResult",
	    [S3_DOC_COPY_PART] = "CopyPartResult",
	};

	(void)attrs;
	if (x->depth == 0) {
		x->root_ok = strcmp(name, roots[x->doc]) == 0;
		if (!x->root_ok) {
			s3_xp_fail(x, -ENOENT);
			return;
		}
	}
	if (x->depth >= S3_XML_DEPTH || n > S3_XML_NAME) {
		s3_xp_fail(x, -EPROTO);
		return;
	}
	if (x->depth > 0)
		x->path[at++] = '/';
	memcpy(x->path + at, name, n + 1);
	x->pathlen[++x->depth] = at + n;
	x->textlen = 0;
	if (x->doc == S3_DOC_LIST && s3_at(x, "ListBucketResult/Contents")) {
		x->have_key = false;
		x->size = 0;
		x->etag[0] = x->modified[0] = '\0';
	}
}

static void XMLCALL s3_xp_text(void *arg, const XML_Char *s, int len)
{
	struct s3_xp *x = arg;

	if (len < 0 || x->textlen + (size_t)len >= sizeof(x->text)) {
		s3_xp_fail(x, -EPROTO);
		return;
	}
	memcpy(x->text + x->textlen, s, (size_t)len);
	x->textlen += (size_t)len;
	x->text[x->textlen] = '\0';
}

/* Report one entry (key raw, still encoded if the listing says so). */
static void s3_xp_entry(struct s3_xp *x, bool is_prefix, const char *raw, size_t rawlen)
{
	char key[S3_XML_VALUE_MAX];
	struct s3_entry e = {.is_prefix = is_prefix, .key = key};
	int n, r;

	if (x->url) {
		if ((n = s3_url_decode(raw, rawlen, key, sizeof(key))) < 0) {
			s3_xp_fail(x, -EPROTO);
			return;
		}
	} else {
		memcpy(key, raw, rawlen);
		key[rawlen] = '\0';
		n = (int)rawlen;
	}
	if (memchr(key, '\0', (size_t)n))
		return; /* no name can hold a NUL: not reported */
	if (!is_prefix) {
		e.size = x->size;
		e.etag = x->etag;
		e.modified = x->modified;
		x->res->objects++;
	} else {
		x->res->prefixes++;
	}
	if ((r = x->fn(&e, x->arg)) != 0)
		s3_xp_fail(x, r);
}

static bool s3_copy(char *dst, size_t dstlen, const char *src, size_t len)
{
	if (len >= dstlen)
		return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

static void s3_xp_end_list(struct s3_xp *x)
{
	char *end;

	if (s3_at(x, "ListBucketResult/Contents/Key")) {
		memcpy(x->key, x->text, x->textlen + 1);
		x->keylen = x->textlen;
		x->have_key = true;
	} else if (s3_at(x, "ListBucketResult/Contents/Size")) {
		x->size = strtoull(x->text, &end, 10);
		if (x->textlen == 0 || *end || x->text[0] == '-')
			s3_xp_fail(x, -EPROTO);
	} else if (s3_at(x, "ListBucketResult/Contents/ETag")) {
		if (!s3_copy(x->etag, sizeof(x->etag), x->text, x->textlen))
			s3_xp_fail(x, -EPROTO);
	} else if (s3_at(x, "ListBucketResult/Contents/LastModified")) {
		if (!s3_copy(x->modified, sizeof(x->modified), x->text, x->textlen))
			s3_xp_fail(x, -EPROTO);
	} else if (s3_at(x, "ListBucketResult/Contents")) {
		if (!x->have_key)
			s3_xp_fail(x, -EPROTO);
		else
			s3_xp_entry(x, false, x->key, x->keylen);
	} else if (s3_at(x, "ListBucketResult/CommonPrefixes/Prefix")) {
		s3_xp_entry(x, true, x->text, x->textlen);
	} else if (s3_at(x, "ListBucketResult/IsTruncated")) {
		x->res->truncated = strcmp(x->text, "true") == 0;
	} else if (s3_at(x, "ListBucketResult/NextContinuationToken")) {
		if (!s3_copy(x->res->next_token, sizeof(x->res->next_token), x->text, x->textlen))
			s3_xp_fail(x, -EPROTO);
	} else if (s3_at(x, "ListBucketResult/EncodingType")) {
		x->url = strcmp(x->text, "url") == 0;
	}
}

/* The one value an error body or an upload id is read for. */
static void s3_xp_take1(struct s3_xp *x)
{
	if (!s3_copy(x->out1, x->out1len, x->text, x->textlen))
		s3_xp_fail(x, -EPROTO);
	x->have1 = true;
}

static void XMLCALL s3_xp_end(void *arg, const XML_Char *name)
{
	struct s3_xp *x = arg;

	(void)name;
	switch (x->doc) {
	case S3_DOC_LIST:
		s3_xp_end_list(x);
		break;
	case S3_DOC_ERROR:
		if (s3_at(x, "Error/Code")) {
			s3_xp_take1(x);
		} else if (s3_at(x, "Error/Message") && x->out2len) {
			/* a long message is cut, not refused: it is only shown */
			size_t n = x->textlen < x->out2len ? x->textlen : x->out2len - 1;
			memcpy(x->out2, x->text, n);
			x->out2[n] = '\0';
		}
		break;
	case S3_DOC_UPLOAD:
		if (s3_at(x, "InitiateMultipartUploadResult/UploadId"))
			s3_xp_take1(x);
		break;
	case S3_DOC_COPY_PART:
		if (s3_at(x, "CopyPartResult/ETag"))
			s3_xp_take1(x);
		break;
	}
	if (x->depth > 0)
		x->depth--;
	x->path[x->pathlen[x->depth]] = '\0';
	x->textlen = 0;
}

static void XMLCALL s3_xp_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
				  const XML_Char *pubid, int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	s3_xp_fail(arg, -EPROTO);
}

static int s3_xp_run(struct s3_xp *x, const char *body, size_t len)
{
	int r;

	if (len > (size_t)INT32_MAX)
		return -EPROTO;
	if (!(x->p = XML_ParserCreate("UTF-8")))
		return -ENOMEM;
	XML_SetUserData(x->p, x);
	XML_SetElementHandler(x->p, s3_xp_start, s3_xp_end);
	XML_SetCharacterDataHandler(x->p, s3_xp_text);
	XML_SetStartDoctypeDeclHandler(x->p, s3_xp_doctype);
	r = XML_Parse(x->p, body, (int)len, XML_TRUE) == XML_STATUS_OK ? 0 : -EPROTO;
	XML_ParserFree(x->p);
	if (x->err)
		return x->err;
	if (r == 0 && !x->root_ok)
		return -EPROTO;
	return r;
}

int s3_parse_list(const char *body, size_t len, int (*fn)(const struct s3_entry *, void *),
		  void *arg, struct s3_list_result *res)
{
	struct s3_xp *x = calloc(1, sizeof(*x));
	int r;

	if (!x)
		return -ENOMEM;
	memset(res, 0, sizeof(*res));
	x->doc = S3_DOC_LIST;
	x->fn = fn;
	x->arg = arg;
	x->res = res;
	r = s3_xp_run(x, body, len);
	free(x);
	return r == -ENOENT ? -EPROTO : r;
}

int s3_parse_error(const char *body, size_t len, char *code, size_t codelen, char *message,
		   size_t msglen)
{
	struct s3_xp *x = calloc(1, sizeof(*x));
	int r;

	if (!x)
		return -ENOMEM;
	if (msglen)
		message[0] = '\0';
	x->doc = S3_DOC_ERROR;
	x->out1 = code;
	x->out1len = codelen;
	x->out2 = message;
	x->out2len = msglen;
	r = s3_xp_run(x, body, len);
	if (r == 0 && !x->have1)
		r = -EPROTO;
	free(x);
	return r;
}

/* The one value a document of kind doc holds (s3_xp_take1): 0 or -EPROTO. */
static int s3_parse_one(enum s3_doc doc, const char *body, size_t len, char *out, size_t outlen)
{
	struct s3_xp *x = calloc(1, sizeof(*x));
	int r;

	if (!x)
		return -ENOMEM;
	x->doc = doc;
	x->out1 = out;
	x->out1len = outlen;
	r = s3_xp_run(x, body, len);
	if (r == 0 && (!x->have1 || out[0] == '\0'))
		r = -EPROTO;
	free(x);
	return r == -ENOENT ? -EPROTO : r;
}

int s3_parse_upload_id(const char *body, size_t len, char *id, size_t idlen)
{
	return s3_parse_one(S3_DOC_UPLOAD, body, len, id, idlen);
}

int s3_parse_copy_part(const char *body, size_t len, char *etag, size_t etaglen)
{
	return s3_parse_one(S3_DOC_COPY_PART, body, len, etag, etaglen);
}

char *s3_complete_body(const char *const *etags, unsigned n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	bool ok = f != NULL;

	if (!f)
		return NULL;
	fputs("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">", f);
	for (unsigned i = 0; i < n && ok; i++) {
		if (!etags[i] || strlen(etags[i]) > 128) {
			ok = false;
			break;
		}
		fprintf(f, "<Part><PartNumber>%u</PartNumber><ETag>", i + 1);
		for (const char *p = etags[i]; *p; p++) {
			switch (*p) {
			case '"':
				fputs("&quot;", f);
				break;
			case '&':
				fputs("&amp;", f);
				break;
			case '<':
				fputs("&lt;", f);
				break;
			case '>':
				fputs("&gt;", f);
				break;
			default:
				fputc(*p, f);
			}
		}
		fputs("</ETag></Part>", f);
	}
	fputs("</CompleteMultipartUpload>", f);
	if (fclose(f) != 0)
		ok = false;
	if (!ok) {
		free(buf);
		return NULL;
	}
	return buf;
}

int s3_parse_done(const char *body, size_t len, char *code, size_t codelen)
{
	char msg[1];
	int r = s3_parse_error(body, len, code, codelen, msg, 0);

	if (r == 0)
		return -EIO;
	if (r != -ENOENT)
		return -EPROTO;
	/* well formed and not an error: the result (its ETag may be empty) */
	return 0;
}
