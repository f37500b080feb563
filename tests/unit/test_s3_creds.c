/*
 * test_s3_creds.c - the S3 back end's credentials as the parent reads
 * them (daemon/s3_creds.c): the AWS shared-credentials file and the AWS
 * environment variables. Every refusal names the file and line or the
 * variable, and no message ever holds a secret.
 * Runs in: unit test program only.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3_creds.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static char cr_dir[] = "/tmp/bh-creds-XXXXXX";
static char cr_path[300];
static char cr_err[600];
static struct s3_creds cr_c;

static void cr_setup(void)
{
	cr_assert_not_null(mkdtemp(cr_dir));
	snprintf(cr_path, sizeof(cr_path), "%s/credentials", cr_dir);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
}

static void cr_teardown(void)
{
	unlink(cr_path);
	rmdir(cr_dir);
}

TestSuite(s3creds, .init = cr_setup, .fini = cr_teardown);

static int cr_load(const char *text, mode_t mode, const char *profile)
{
	FILE *f = fopen(cr_path, "w");

	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(cr_path, mode), 0);
	cr_err[0] = '\0';
	return s3_creds_load(cr_path, profile, &cr_c, cr_err, sizeof(cr_err));
}

static void cr_bad(const char *text, mode_t mode, const char *want)
{
	cr_expect_eq(cr_load(text, mode, NULL), -1, "accepted:\n%s", text);
	cr_expect_not_null(strstr(cr_err, cr_path), "'%s' does not name the file", cr_err);
	cr_expect_not_null(strstr(cr_err, want), "'%s' does not say '%s'", cr_err, want);
	cr_expect_null(strstr(cr_err, SECRET), "a message holds the secret: %s", cr_err);
	cr_expect_null(strstr(cr_err, "EXAMPLEKEY"), "a message holds the secret: %s", cr_err);
}

Test(s3creds, the_default_profile_gives_the_keys_and_a_token)
{
	cr_assert_eq(cr_load("[other]\naws_access_key_id = NOTTHISONE\n"
			     "aws_secret_access_key = nope\n"
			     "[default]\n"
			     "aws_access_key_id = AKIDEXAMPLE\n"
			     "region = us-east-1\n"
			     "aws_secret_access_key = " SECRET "\n"
			     "aws_session_token = FwoGZXIvYXdzEExample/token+=\n",
			     0600, NULL),
		     0, "%s", cr_err);
	cr_expect_str_eq(cr_c.access_key, "AKIDEXAMPLE");
	cr_expect_str_eq(cr_c.secret_key, SECRET);
	cr_expect_str_eq(cr_c.session_token, "FwoGZXIvYXdzEExample/token+=");
	s3_creds_wipe(&cr_c);
	cr_expect_eq(cr_c.secret_key[0], '\0');
}

Test(s3creds, another_profile_is_read_when_named)
{
	cr_assert_eq(cr_load("[default]\naws_access_key_id = A\naws_secret_access_key = B\n"
			     "[vm1]\naws_access_key_id = C\naws_secret_access_key = D\n",
			     0640, "vm1"),
		     0, "%s", cr_err);
	cr_expect_str_eq(cr_c.access_key, "C");
	cr_expect_str_eq(cr_c.secret_key, "D");
	cr_expect_str_eq(cr_c.session_token, "");
}

Test(s3creds, what_is_wrong_is_refused_with_file_and_line)
{
	cr_bad("[default]\naws_access_key_id = AKID\naws_secret_access_key = " SECRET "\n", 0644,
	       "other users may read it");
	cr_bad("[default]\naws_access_key_id = AKID\n", 0600,
	       ":1: [default] needs aws_access_key_id and aws_secret_access_key");
	cr_bad("[vm1]\naws_access_key_id = AKID\naws_secret_access_key = " SECRET "\n", 0600,
	       "no [default] profile");
	cr_bad("[default]\naws_access_key_id AKID\n", 0600, ":2:");
	/* the reader's own quote of a broken line is not repeated */
	cr_bad("[default]\naws_secret_access_key " SECRET " = x\n", 0600,
	       ":2: a line that is not 'key = value'");
	cr_bad("[default]\naws_access_key_id = AKID\naws_secret_access_key " SECRET " = x\n", 0600,
	       ":3: a line that is not 'key = value'");
	cr_bad("[default]\naws_access_key_id = AK ID\naws_secret_access_key = " SECRET "\n", 0600,
	       "aws_access_key_id holds a character that is not printable ASCII");
	cr_bad("[default]\naws_access_key_id = AKID\naws_secret_access_key = " SECRET
	       "\naws_secret_access_key = " SECRET "x\n",
	       0600, ":4:");
	cr_expect_eq(s3_creds_load("/nonexistent/credentials", NULL, &cr_c, cr_err, sizeof(cr_err)),
		     -1);
	cr_expect_not_null(strstr(cr_err, "/nonexistent/credentials: No such file"), "%s", cr_err);
}

Test(s3creds, a_key_longer_than_its_room_is_refused)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "[default]\naws_access_key_id = %0*d\naws_secret_access_key = s\n", S3_KEY_MAX, 7);
	cr_bad(text, 0600, "aws_access_key_id is longer than");
}

Test(s3creds, the_environment_gives_keys_both_or_neither)
{
	char err[256];

	cr_expect_eq(s3_creds_from_env(&cr_c, err, sizeof(err)), 0);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	cr_expect_eq(s3_creds_from_env(&cr_c, err, sizeof(err)), -1);
	cr_expect_not_null(strstr(err, "AWS_SECRET_ACCESS_KEY is not set"), "%s", err);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	setenv("AWS_SESSION_TOKEN", "tok", 1);
	cr_assert_eq(s3_creds_from_env(&cr_c, err, sizeof(err)), 1, "%s", err);
	cr_expect_str_eq(cr_c.access_key, "AKIDENV");
	cr_expect_str_eq(cr_c.secret_key, SECRET);
	cr_expect_str_eq(cr_c.session_token, "tok");
	setenv("AWS_SECRET_ACCESS_KEY", "has space", 1);
	cr_expect_eq(s3_creds_from_env(&cr_c, err, sizeof(err)), -1);
	cr_expect_null(strstr(err, "has space"), "a message holds the secret: %s", err);
}

/* ---- which keys start-up takes ---- */

Test(s3creds, a_named_file_wins_over_the_environment_and_says_so)
{
	char src[600];

	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET", 1);
	cr_load("[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = " SECRET "\n",
		0600, NULL);
	cr_assert_eq(
	    s3_creds_get(cr_path, "default", &cr_c, src, sizeof(src), cr_err, sizeof(cr_err)), 0,
	    "%s", cr_err);
	cr_expect_str_eq(cr_c.access_key, "AKIDFILE");
	cr_expect_str_eq(cr_c.secret_key, SECRET);
	cr_expect_not_null(strstr(src, cr_path), "%s", src);
	cr_expect_not_null(strstr(src, "profile [default]"), "%s", src);
	cr_expect_not_null(strstr(src, "AWS_* variables of the environment are not used"), "%s",
			   src);
	cr_expect_null(strstr(src, "EXAMPLEKEY"), "the source names a secret: %s", src);
	cr_expect_null(strstr(src, "ENVSECRET"), "the source names a secret: %s", src);
}

Test(s3creds, without_a_file_the_environment_gives_them)
{
	char src[600];

	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	cr_assert_eq(s3_creds_get(NULL, "default", &cr_c, src, sizeof(src), cr_err, sizeof(cr_err)),
		     0, "%s", cr_err);
	cr_expect_str_eq(cr_c.access_key, "AKIDENV");
	cr_expect_str_eq(src, "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)");
}

Test(s3creds, a_bad_file_is_not_replaced_by_the_environment)
{
	char src[600];

	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	cr_load("[default]\naws_access_key_id = AKIDFILE\n", 0600, NULL);
	cr_expect_eq(s3_creds_get(cr_path, NULL, &cr_c, src, sizeof(src), cr_err, sizeof(cr_err)),
		     -1);
	cr_expect_not_null(strstr(cr_err, "needs aws_access_key_id and aws_secret_access_key"),
			   "%s", cr_err);
}

Test(s3creds, no_credentials_at_all_names_both_ways)
{
	char src[600];

	cr_expect_eq(s3_creds_get(NULL, NULL, &cr_c, src, sizeof(src), cr_err, sizeof(cr_err)), -1);
	cr_expect_not_null(strstr(cr_err, "credentials_file = FILE in [s3]"), "%s", cr_err);
	cr_expect_not_null(strstr(cr_err, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), "%s",
			   cr_err);
}

Test(s3creds, the_environments_keys_are_wiped_once_read)
{
	char *secret;

	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	setenv("AWS_SESSION_TOKEN", "tok", 1);
	setenv("AWS_REGION", "eu-west-1", 1);
	secret = getenv("AWS_SECRET_ACCESS_KEY");
	s3_creds_env_wipe();
	cr_expect_null(getenv("AWS_ACCESS_KEY_ID"));
	cr_expect_null(getenv("AWS_SECRET_ACCESS_KEY"));
	cr_expect_null(getenv("AWS_SESSION_TOKEN"));
	cr_expect_str_eq(getenv("AWS_REGION"), "eu-west-1", "not a key: left alone");
	/* glibc keeps setenv's strings; their bytes are gone */
	for (size_t i = 0; i < strlen(SECRET); i++)
		cr_expect_eq(secret[i], '\0', "byte %zu of the secret is still there", i);
}
