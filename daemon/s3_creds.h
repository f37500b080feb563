/*
 * s3_creds.h - the S3 back end's credentials, read by the parent: from an
 * AWS shared-credentials file (credentials_file = in [s3] of
 * bulkhead.conf(5)) or from the standard AWS environment variables.
 * Runs in: the parent (start-up, and again on SIGHUP). The secrets go to
 * the S3 workers over their IPC channel only: never on a command line,
 * never in a worker's environment, never in a log line (messages name the
 * file, the line and the key, not the value).
 */
#ifndef BH_S3_CREDS_H
#define BH_S3_CREDS_H

#include <stddef.h>

#define S3_KEY_MAX   128  /* access key ids are 16-128 characters */
#define S3_TOKEN_MAX 4096 /* session tokens run to about 2 KiB */

struct s3_creds {
	char access_key[S3_KEY_MAX];
	char secret_key[S3_KEY_MAX];
	char session_token[S3_TOKEN_MAX]; /* "" if none */
};

/* Profile's keys from an AWS shared-credentials file ("[default]",
 * aws_access_key_id, aws_secret_access_key, optional aws_session_token;
 * other keys and profiles are not read). 0, or -1 with "FILE:LINE: reason"
 * or "FILE: reason" in err. A file others may read is refused. */
int s3_creds_load(const char *path, const char *profile, struct s3_creds *out, char *err,
		  size_t errlen);

/* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optional AWS_SESSION_TOKEN
 * from the environment: 1 when found, 0 when neither key is set, -1 with
 * the reason in err when only one is, or a value is too long. */
int s3_creds_from_env(struct s3_creds *out, char *err, size_t errlen);

/*
 * The keys the S3 back end runs with: the profile of the file at path when
 * one is named (the environment's are then not read), else the
 * environment's. 0 with where they came from in src, for the log ("FILE,
 * profile [NAME]" or "the environment (...)", never a key); -1 with the
 * reason in err: the file's or the environment's, or, when there are none,
 * both ways of giving them.
 */
int s3_creds_get(const char *path, const char *profile, struct s3_creds *out, char *src,
		 size_t srclen, char *err, size_t errlen);

/* Wipe the AWS_* variables' values in our environment, then unset them:
 * /proc/PID/environ shows a process's first environment as long as it
 * runs. Once at start-up, after s3_creds_get. */
void s3_creds_env_wipe(void);

/* Wipe them (before free, after use). */
void s3_creds_wipe(struct s3_creds *c);

#endif
