/*
 * s3_creds.c - the S3 back end's credentials (s3_creds.h).
 * Runs in: the parent. The file is read with the strict INI reader of
 * bulkhead.conf(5) (common/ini.c): a line it cannot read stops start-up
 * with FILE:LINE, as a broken configuration does.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ini.h"
#include "s3_creds.h"

struct s3_load {
	const char *profile;
	struct s3_creds *out;
	bool in_profile, seen_profile;
	unsigned profile_line;
	bool ours; /* the reason is s3_take's (keys named, values never) */
};

/* A value into dst, which holds dstlen bytes; the message names the key only. */
static int s3_take(char *dst, size_t dstlen, const char *key, const char *v, char *why,
		   size_t whylen)
{
	size_t n = strlen(v);

	if (n == 0) {
		snprintf(why, whylen, "%s is empty", key);
		return -1;
	}
	if (n >= dstlen) {
		snprintf(why, whylen, "%s is longer than %zu bytes", key, dstlen - 1);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e) {
			snprintf(why, whylen, "%s holds a character that is not printable ASCII",
				 key);
			return -1;
		}
	}
	memcpy(dst, v, n + 1);
	return 0;
}

static int s3_item(void *arg, const struct ini_item *it, char *why, size_t whylen)
{
	struct s3_load *l = arg;
	char *dst;
	size_t len;
	int r;

	if (!it->ii_key) {
		l->in_profile = strcmp(it->ii_section, l->profile) == 0;
		if (l->in_profile) {
			l->seen_profile = true;
			l->profile_line = it->ii_line;
		}
		return 0;
	}
	if (!l->in_profile)
		return 0;
	if (strcmp(it->ii_key, "aws_access_key_id") == 0) {
		dst = l->out->access_key;
		len = sizeof(l->out->access_key);
	} else if (strcmp(it->ii_key, "aws_secret_access_key") == 0) {
		dst = l->out->secret_key;
		len = sizeof(l->out->secret_key);
	} else if (strcmp(it->ii_key, "aws_session_token") == 0) {
		dst = l->out->session_token;
		len = sizeof(l->out->session_token);
	} else {
		return 0; /* region, output, ...: the AWS tools' keys, not ours */
	}
	r = s3_take(dst, len, it->ii_key, it->ii_value, why, whylen);
	l->ours = r < 0;
	return r;
}

/*
 * The INI reader quotes what it could not read ("bad key '...'"), and a
 * broken line of this file may hold a secret: keep its file and line, and
 * our own reasons (which name keys only), and drop the reader's quote.
 */
static void s3_creds_redact(const char *path, char *err, size_t errlen)
{
	size_t n = strlen(path);
	unsigned line;

	if (strncmp(err, path, n) != 0 || sscanf(err + n, ":%u:", &line) != 1)
		return;
	snprintf(err, errlen,
		 "%s:%u: a line that is not 'key = value' (not shown: it may hold a "
		 "secret)",
		 path, line);
}

int s3_creds_load(const char *path, const char *profile, struct s3_creds *out, char *err,
		  size_t errlen)
{
	struct s3_load l = {.profile = profile && *profile ? profile : "default", .out = out};
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_mode & S_IROTH) {
		snprintf(err, errlen,
			 "%s: other users may read it (mode %04o): keep the keys to the "
			 "service's user and group (chmod o-rwx)",
			 path, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	if (ini_read(path, s3_item, &l, err, errlen) < 0) {
		if (!l.ours)
			s3_creds_redact(path, err, errlen);
		s3_creds_wipe(out);
		return -1;
	}
	if (!l.seen_profile) {
		snprintf(err, errlen, "%s: no [%s] profile", path, l.profile);
		return -1;
	}
	if (!out->access_key[0] || !out->secret_key[0]) {
		snprintf(err, errlen,
			 "%s:%u: [%s] needs aws_access_key_id and aws_secret_access_key", path,
			 l.profile_line, l.profile);
		s3_creds_wipe(out);
		return -1;
	}
	return 0;
}

/* The AWS variables: key id, secret key, session token. */
static const char *const s3_env_names[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
					   "AWS_SESSION_TOKEN"};

int s3_creds_from_env(struct s3_creds *out, char *err, size_t errlen)
{
	const char *id = getenv(s3_env_names[0]), *secret = getenv(s3_env_names[1]);
	const char *token = getenv(s3_env_names[2]);

	memset(out, 0, sizeof(*out));
	if (!id && !secret)
		return 0;
	if (!id || !secret) {
		snprintf(err, errlen,
			 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: %s "
			 "is not set",
			 id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -1;
	}
	if (s3_take(out->access_key, sizeof(out->access_key), "AWS_ACCESS_KEY_ID", id, err,
		    errlen) < 0 ||
	    s3_take(out->secret_key, sizeof(out->secret_key), "AWS_SECRET_ACCESS_KEY", secret, err,
		    errlen) < 0 ||
	    (token && *token &&
	     s3_take(out->session_token, sizeof(out->session_token), "AWS_SESSION_TOKEN", token,
		     err, errlen) < 0)) {
		s3_creds_wipe(out);
		return -1;
	}
	return 1;
}

int s3_creds_get(const char *path, const char *profile, struct s3_creds *out, char *src,
		 size_t srclen, char *err, size_t errlen)
{
	int r;

	if (path) {
		if (s3_creds_load(path, profile, out, err, errlen) < 0)
			return -1;
		snprintf(src, srclen, "%s, profile [%s]%s%s", path,
			 profile && *profile ? profile : "default",
			 out->session_token[0] ? ", with a session token" : "",
			 getenv(s3_env_names[0]) || getenv(s3_env_names[1])
			     ? " (the file wins: the AWS_* variables of the environment are "
			       "not used)"
			     : "");
		return 0;
	}
	if ((r = s3_creds_from_env(out, err, errlen)) < 0)
		return -1;
	if (r == 0) {
		snprintf(err, errlen,
			 "the s3 back end has no credentials: name a file with credentials_file = "
			 "FILE in [s3], or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in "
			 "bulkheadd's environment");
		return -1;
	}
	snprintf(src, srclen, "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY%s)",
		 out->session_token[0] ? ", AWS_SESSION_TOKEN" : "");
	return 0;
}

void s3_creds_env_wipe(void)
{
	for (size_t i = 0; i < sizeof(s3_env_names) / sizeof(s3_env_names[0]); i++) {
		char *v = getenv(s3_env_names[i]);

		if (v) {
			explicit_bzero(v, strlen(v));
			unsetenv(s3_env_names[i]);
		}
	}
}

void s3_creds_wipe(struct s3_creds *c)
{
	explicit_bzero(c, sizeof(*c));
}
