/*
 * test_config.c - bulkhead.conf(5): the INI reader and the parent's keys.
 * Runs in: unit test program only. Every way a file can be wrong stops
 * start-up with FILE:LINE: reason; the files that are right set exactly
 * what they say.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkheadd.h"
#include "ini.h"
#include "s3_creds.h"
#include "util.h"

static char cf_dir[] = "/tmp/bh-config-XXXXXX";
static char cf_path[300];
static struct parent_conf cf_conf;
static char cf_err[600];

static void cf_setup(void)
{
	cr_assert_not_null(mkdtemp(cf_dir));
	snprintf(cf_path, sizeof(cf_path), "%s/bulkhead.conf", cf_dir);
	conf_defaults(&cf_conf);
}

static void cf_teardown(void)
{
	conf_free(&cf_conf);
	unlink(cf_path);
	rmdir(cf_dir);
}

TestSuite(config, .init = cf_setup, .fini = cf_teardown);

/* Write text (len bytes, or strlen) as the file and load it. */
static int cf_load_n(const char *text, size_t len)
{
	FILE *f = fopen(cf_path, "w");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
	cf_err[0] = '\0';
	return conf_load(&cf_conf, cf_path, cf_err, sizeof(cf_err));
}

static int cf_load(const char *text)
{
	return cf_load_n(text, strlen(text));
}

/* The file fails with this line number and a reason containing want. */
static void cf_bad(const char *text, unsigned line, const char *want)
{
	char prefix[400];

	cr_assert_eq(cf_load(text), -1, "accepted:\n%s", text);
	if (line)
		snprintf(prefix, sizeof(prefix), "%s:%u: ", cf_path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", cf_path);
	cr_expect_eq(strncmp(cf_err, prefix, strlen(prefix)), 0, "'%s' does not start with '%s'",
		     cf_err, prefix);
	cr_expect_not_null(strstr(cf_err, want), "'%s' does not say '%s'", cf_err, want);
}

/* ---- files that are right ---- */

Test(config, the_minimal_memory_configuration_works_as_written)
{
	cr_assert_eq(cf_load("[share]\nbackend = memory\n\n[memory]\nsize = 1G\n"), 0, "%s",
		     cf_err);
	cr_expect_eq(cf_conf.pc_backend, IPC_BE_MEMORY);
	cr_expect_eq(conf_be_num(&cf_conf, "size"), 1ull << 30);
	cr_expect_eq(conf_be_num(&cf_conf, "inodes"), 0);
	cr_expect_null(conf_be_str(&cf_conf, "inodes"));
}

Test(config, a_passthrough_share_with_every_section_sets_what_it_says)
{
	cr_assert_eq(cf_load("# a comment\n"
			     "; another\n"
			     "[share]\n"
			     "  backend=passthrough  \n"
			     "cache = never\n"
			     "readonly = yes\n"
			     "writeback = off\n"
			     "xattr = true\n"
			     "device_nodes = allow\n"
			     "setid = strip\n"
			     "file_caps = allow\n"
			     "[passthrough]\n"
			     "dir = /srv/vm #1\r\n"
			     "[daemon]\n"
			     "socket_path = /run/bulkhead/vm1.sock\n"
			     "socket_group = kvm\n"
			     "sandbox = chroot\n"
			     "seccomp = log\n"
			     "policy_dir = /etc/bulkhead/policy\n"
			     "thread_pool_size = 4\n"
			     "poll_us = 0\n"
			     "rlimit_nofile = 4096\n"
			     "log_level = debug\n"
			     "syslog = 1\n"),
		     0, "%s", cf_err);
	cr_expect_eq(cf_conf.pc_backend, IPC_BE_PASSTHROUGH);
	cr_expect_eq(cf_conf.pc_cache, IPC_CACHE_NONE);
	cr_expect_eq(cf_conf.pc_readonly, 1);
	cr_expect_eq(cf_conf.pc_writeback, 0);
	cr_expect_eq(cf_conf.pc_xattr, 1);
	cr_expect_eq(cf_conf.pc_devices, 1);
	cr_expect_eq(cf_conf.pc_setid, PARENT_SETID_STRIP);
	cr_expect_eq(cf_conf.pc_file_caps, 1);
	cr_expect_str_eq(conf_be_str(&cf_conf, "dir"), "/srv/vm #1");
	cr_expect_str_eq(cf_conf.pc_socket_path, "/run/bulkhead/vm1.sock");
	cr_expect_str_eq(cf_conf.pc_socket_group, "kvm");
	cr_expect_eq(cf_conf.pc_sandbox, IPC_SBX_CHROOT);
	cr_expect_eq(cf_conf.pc_seccomp, IPC_SECCOMP_LOG);
	cr_expect_str_eq(cf_conf.pc_policy_dir, "/etc/bulkhead/policy");
	cr_expect_eq(cf_conf.pc_thread_pool, 4);
	cr_expect_eq(cf_conf.pc_poll_us, 0);
	cr_expect_eq(cf_conf.pc_rlimit_nofile, 4096);
	cr_expect_eq(cf_conf.pc_syslog, 1);
}

Test(config, sizes_take_binary_units)
{
	unsigned long long n;
	char why[200];

	cr_expect_eq(ini_size("1048576", 0, ~0ull, &n, why, sizeof(why)), 0);
	cr_expect_eq(n, 1048576);
	cr_expect_eq(ini_size("64k", 0, ~0ull, &n, why, sizeof(why)), 0);
	cr_expect_eq(n, 65536);
	cr_expect_eq(ini_size("3M", 0, ~0ull, &n, why, sizeof(why)), 0);
	cr_expect_eq(n, 3ull << 20);
	cr_expect_eq(ini_size("2T", 0, ~0ull, &n, why, sizeof(why)), 0);
	cr_expect_eq(n, 2ull << 40);
	cr_expect_eq(ini_size("16777216T", 0, ~0ull, &n, why, sizeof(why)), -1,
		     "2^64 bytes accepted");
	cr_expect_eq(ini_size("99999999999999999999", 0, ~0ull, &n, why, sizeof(why)), -1);
	cr_expect_eq(ini_size("1.5G", 0, ~0ull, &n, why, sizeof(why)), -1);
	cr_expect_eq(ini_size("1GB", 0, ~0ull, &n, why, sizeof(why)), -1);
	cr_expect_eq(ini_size("-1", 0, ~0ull, &n, why, sizeof(why)), -1);
	cr_expect_eq(ini_size("", 0, ~0ull, &n, why, sizeof(why)), -1);
}

/* ---- the form ---- */

Test(config, a_file_that_cannot_be_read_is_named)
{
	cr_assert_eq(conf_load(&cf_conf, "/nonexistent/bulkhead.conf", cf_err, sizeof(cf_err)), -1);
	cr_expect_str_eq(cf_err, "/nonexistent/bulkhead.conf: No such file or directory");
	cr_assert_eq(conf_load(&cf_conf, cf_dir, cf_err, sizeof(cf_err)), -1);
	cr_expect_not_null(strstr(cf_err, "not a regular file"), "%s", cf_err);
}

Test(config, a_file_over_one_mebibyte_is_refused)
{
	size_t n = (1u << 20) + 1;
	char *big = malloc(n);

	cr_assert_not_null(big);
	memset(big, '\n', n);
	cr_expect_eq(cf_load_n(big, n), -1);
	cr_expect_not_null(strstr(cf_err, "larger than 1 MiB"), "%s", cf_err);
	free(big);
}

Test(config, malformed_lines_are_refused_with_their_line)
{
	cf_bad("[share\nbackend = memory\n", 1, "must end with ']'");
	cf_bad("\n[sh are]\n", 2, "bad section name 'sh are'");
	cf_bad("[]\n", 1, "bad section name ''");
	cf_bad("backend = memory\n", 1, "comes before any [section]");
	cf_bad("[share]\nbackend memory\n", 2, "expected '[section]' or 'key = value'");
	cf_bad("[share]\n = memory\n", 2, "bad key ''");
	cf_bad("[share]\nback end = memory\n", 2, "bad key 'back end'");
	cf_bad("[share]\nbackend = memory\n[memory]\nsize = 1G\n[share]\n", 5,
	       "section [share] already began on line 1");
	cf_bad("[share]\nbackend = memory\nbackend = passthrough\n", 3,
	       "'backend' already set on line 2");
}

Test(config, a_line_too_long_or_a_nul_byte_is_refused)
{
	char text[INI_MAX_LINE + 64];

	snprintf(text, sizeof(text), "[share]\ncache = ");
	memset(text + strlen(text), 'a', INI_MAX_LINE);
	text[sizeof(text) - 1] = '\0';
	cf_bad(text, 2, "line longer than 4096 bytes");
	cr_expect_eq(cf_load_n("[share]\nbackend = mem\0ory\n", 25), -1);
	cr_expect_not_null(strstr(cf_err, ":2: a NUL byte"), "%s", cf_err);
}

/* ---- the keys ---- */

Test(config, unknown_sections_and_keys_are_refused)
{
	cf_bad("[share]\nbackend = memory\n[memory]\nsize = 1G\n[shares]\n", 5,
	       "unknown section [shares]");
	cf_bad("[share]\nbackend = memory\nsize = 1G\n", 3, "unknown key 'size' in [share]");
	cf_bad("[share]\nbackend = memory\n[memory]\nsize = 1G\nsocket_path = /x\n", 5,
	       "unknown key 'socket_path' in [memory]");
}

Test(config, bad_values_are_refused_with_the_choices)
{
	cf_bad("[share]\nbackend = nfs\n", 2, "invalid backend 'nfs' (passthrough, memory or s3)");
	cf_bad("[share]\ncache = sometimes\n", 2,
	       "invalid cache mode 'sometimes' (never, auto or always)");
	cf_bad("[share]\nreadonly = maybe\n", 2, "'maybe' is not yes or no");
	cf_bad("[share]\nsetid = keep\n", 2, "invalid setid 'keep' (refuse, strip or allow)");
	cf_bad("[share]\ndevice_nodes = yes\n", 2, "invalid device-nodes 'yes' (refuse or allow)");
	cf_bad("[share]\nfile_caps = no\n", 2, "invalid file-caps 'no'");
	cf_bad("[share]\nxattr =\n", 2, "'xattr' has no value");
	cf_bad("[daemon]\nsandbox = jail\n", 2, "invalid sandbox mode 'jail'");
	cf_bad("[daemon]\nseccomp = off\n", 2, "invalid seccomp mode 'off'");
	cf_bad("[daemon]\nthread_pool_size = 1025\n", 2,
	       "invalid thread_pool_size '1025' (0 to 1024)");
	cf_bad("[daemon]\npoll_us = -1\n", 2, "invalid poll_us '-1'");
	cf_bad("[daemon]\nrlimit_nofile = 0\n", 2, "invalid rlimit_nofile '0'");
	cf_bad("[daemon]\nlog_level = chatty\n", 2, "invalid log level 'chatty'");
	cf_bad("[share]\nbackend = memory\n[memory]\nsize = 1X\n", 4, "'1X' is not a size");
	cf_bad("[share]\nbackend = memory\n[memory]\nsize = 512K\n", 4, "out of range");
	cf_bad("[share]\nbackend = memory\n[memory]\nsize = 1G\ninodes = 0\n", 5,
	       "invalid inodes '0'");
}

Test(config, a_memory_size_beyond_the_hosts_memory_is_refused)
{
	cf_bad("[share]\nbackend = memory\n[memory]\nsize = 16384T\n", 4,
	       "more than this host's memory");
}

Test(config, what_a_back_end_needs_must_be_there)
{
	cf_bad("[daemon]\nlog_level = info\n", 0, "no [share] section");
	cf_bad("\n[share]\ncache = auto\n", 2, "[share] needs backend = passthrough, memory or s3");
	cf_bad("[share]\nbackend = passthrough\n", 2, "backend = passthrough needs dir = DIR");
	cf_bad("[share]\nbackend = memory\n", 2, "backend = memory needs size = SIZE");
	cf_bad("[share]\nbackend = memory\n[memory]\ninodes = 100\n", 3,
	       "backend = memory needs size = SIZE");
}

Test(config, another_back_ends_section_is_refused)
{
	cf_bad("[share]\nbackend = memory\n[memory]\nsize = 1G\n[passthrough]\ndir = /srv\n", 5,
	       "section [passthrough] is for backend = passthrough, but the share's backend is "
	       "memory");
	cf_bad("[memory]\nsize = 1G\n[share]\nbackend = passthrough\n[passthrough]\ndir = /x\n", 1,
	       "section [memory] is for backend = memory");
}

/* Text keys' sample values: each such key must have one here. */
static const char *const cf_text_samples[][2] = {
    {"endpoint", "https://s3.example.net:8443"},
    {"bucket", "vm-data.1"},
    {"prefix", "guests/vm1/"},
    {"region", "eu-west-1"},
    {"profile", "vm1"},
};

/* A value key k accepts, other than its default: a path, a size, its
 * least number, its last choice, or its sample above. */
static const char *cf_sample(const struct be_key *k)
{
	static char num[32];

	switch (k->bk_kind) {
	case BK_PATH:
		return "/srv/share";
	case BK_SIZE:
		return "64M";
	case BK_COUNT:
		snprintf(num, sizeof(num), "%llu", (unsigned long long)k->bk_min);
		return num;
	case BK_CHOICE:
		for (size_t i = 0;; i++)
			if (!k->bk_choices[i + 1])
				return k->bk_choices[i];
	case BK_TEXT:
		for (size_t i = 0; i < BH_ARRAY_SIZE(cf_text_samples); i++)
			if (strcmp(cf_text_samples[i][0], k->bk_name) == 0)
				return cf_text_samples[i][1];
		break;
	}
	cr_assert_fail("no sample value for key %s", k->bk_name);
	return NULL;
}

/*
 * Each back end's section is read from its descriptor alone: every key it
 * lists is taken and read back as given, a key it does not list is
 * refused at its line, and each key it requires is asked for by name
 * (at the section's line) when it alone is left out.
 */
Test(config, every_back_end_section_takes_exactly_its_descriptors_keys)
{
	const struct be_desc *be;

	for (size_t i = 0; (be = be_desc_at(i)) != NULL; i++) {
		char text[1024], want[200];
		size_t n = (size_t)snprintf(text, sizeof(text), "[share]\nbackend = %s\n[%s]\n",
					    be->bd_name, be->bd_name);

		for (size_t k = 0; k < be->bd_nkeys; k++)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "%s = %s\n",
					      be->bd_keys[k].bk_name, cf_sample(&be->bd_keys[k]));
		conf_free(&cf_conf);
		conf_defaults(&cf_conf);
		cr_assert_eq(cf_load(text), 0, "%s: %s", be->bd_name, cf_err);
		cr_expect_eq(cf_conf.pc_backend, be->bd_id);
		for (size_t k = 0; k < be->bd_nkeys; k++)
			cr_expect_str_eq(conf_be_str(&cf_conf, be->bd_keys[k].bk_name),
					 cf_sample(&be->bd_keys[k]), "%s: %s", be->bd_name,
					 be->bd_keys[k].bk_name);

		snprintf(text + n, sizeof(text) - n, "no_such_key = 1\n");
		snprintf(want, sizeof(want), "unknown key 'no_such_key' in [%s]", be->bd_name);
		conf_free(&cf_conf);
		conf_defaults(&cf_conf);
		cf_bad(text, (unsigned)(4 + be->bd_nkeys), want);

		for (size_t k = 0; k < be->bd_nkeys; k++) {
			if (!be->bd_keys[k].bk_required)
				continue;
			n = (size_t)snprintf(text, sizeof(text), "[share]\nbackend = %s\n[%s]\n",
					     be->bd_name, be->bd_name);
			for (size_t o = 0; o < be->bd_nkeys; o++)
				if (o != k)
					n += (size_t)snprintf(text + n, sizeof(text) - n,
							      "%s = %s\n", be->bd_keys[o].bk_name,
							      cf_sample(&be->bd_keys[o]));
			snprintf(want, sizeof(want), "backend = %s needs %s = %s", be->bd_name,
				 be->bd_keys[k].bk_name, be->bd_keys[k].bk_what);
			conf_free(&cf_conf);
			conf_defaults(&cf_conf);
			cf_bad(text, 3, want);
		}
	}
}

/* Every key's default is a value it accepts, and stands until one is given. */
Test(config, every_keys_default_is_read_as_a_given_value_would_be)
{
	const struct be_desc *be;

	for (size_t i = 0; (be = be_desc_at(i)) != NULL; i++) {
		for (size_t k = 0; k < be->bd_nkeys; k++) {
			const struct be_key *key = &be->bd_keys[k];

			cr_expect(!key->bk_required || !key->bk_default,
				  "%s in [%s] is required and has a default", key->bk_name,
				  be->bd_name);
			cf_conf.pc_backend = be->bd_id;
			if (key->bk_default)
				cr_expect_str_eq(conf_be_str(&cf_conf, key->bk_name),
						 key->bk_default, "%s", key->bk_name);
			else
				cr_expect_null(conf_be_str(&cf_conf, key->bk_name), "%s",
					       key->bk_name);
		}
	}
}

/* ---- the S3 back end ---- */

/* bulkhead.conf(5)'s example, as written. */
static const char cf_s3_example[] = "[share]\n"
				    "backend = s3\n"
				    "\n"
				    "[s3]\n"
				    "endpoint = http://127.0.0.1:7480\n"
				    "bucket = data\n"
				    "prefix = vm1/\n"
				    "region = us-east-1\n"
				    "addressing = path\n"
				    "credentials_file = /etc/bulkhead/s3.credentials\n";

/* A fresh configuration refuses the file text at line, for want. */
static void cf_bad_fresh(const char *text, unsigned line, const char *want)
{
	conf_free(&cf_conf);
	conf_defaults(&cf_conf);
	cf_bad(text, line, want);
}

/* An [s3] section that begins with line (its line 4) and has what else it
 * needs: the line is refused, for want. */
static void cf_s3_bad(const char *line, const char *want)
{
	char text[2048];

	snprintf(text, sizeof(text), "[share]\nbackend = s3\n[s3]\n%s%s%s", line,
		 strncmp(line, "endpoint", 8) ? "endpoint = http://gw:7480\n" : "",
		 strncmp(line, "bucket", 6) ? "bucket = data\n" : "");
	cf_bad_fresh(text, 4, want);
}

Test(config, the_s3_example_works_as_written)
{
	cr_assert_eq(cf_load(cf_s3_example), 0, "%s", cf_err);
	cr_expect_eq(cf_conf.pc_backend, IPC_BE_S3);
	cr_expect_str_eq(conf_be_str(&cf_conf, "endpoint"), "http://127.0.0.1:7480");
	cr_expect_str_eq(conf_be_str(&cf_conf, "bucket"), "data");
	cr_expect_str_eq(conf_be_str(&cf_conf, "prefix"), "vm1/");
	cr_expect_str_eq(conf_be_str(&cf_conf, "region"), "us-east-1");
	cr_expect_eq(conf_be_num(&cf_conf, "addressing"), 0);
	cr_expect_str_eq(conf_be_str(&cf_conf, "credentials_file"), "/etc/bulkhead/s3.credentials");
	/* and what it leaves out, at its defaults */
	cr_expect_str_eq(conf_be_str(&cf_conf, "profile"), "default");
	cr_expect_null(conf_be_str(&cf_conf, "ca_file"));
	cr_expect_eq(conf_be_num(&cf_conf, "timeout"), 30);
	cr_expect_eq(conf_be_num(&cf_conf, "attempts"), 4);
	cr_expect_eq(conf_be_num(&cf_conf, "concurrency"), 16);
	cr_expect_eq(conf_be_num(&cf_conf, "attr_timeout"), 1);
	cr_expect_eq(conf_be_num(&cf_conf, "part_size"), 8ull << 20);
	cr_expect_eq(conf_be_num(&cf_conf, "cache_size"), 64ull << 20);
	cr_expect_eq(conf_be_num(&cf_conf, "readahead"), 8ull << 20);
	cr_expect_str_eq(conf_be_str(&cf_conf, "staging_dir"), "/var/tmp");
	cr_expect_eq(conf_be_num(&cf_conf, "staging_limit"), 1ull << 30);
}

/* The example with its credentials file here (0600): the keys start-up
 * reads are that file's profile. */
Test(config, the_s3_example_reads_its_credentials_file)
{
	char creds[320], text[1024], src[600], err[600];
	struct s3_creds cr;
	FILE *f;

	snprintf(creds, sizeof(creds), "%s/s3.credentials", cf_dir);
	f = fopen(creds, "w");
	cr_assert_not_null(f);
	fputs("[default]\naws_access_key_id = AKIDEXAMPLE\n"
	      "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n",
	      f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(creds, 0600), 0);
	snprintf(text, sizeof(text), "%.*s%s\n",
		 (int)(strstr(cf_s3_example, "/etc/bulkhead") - cf_s3_example), cf_s3_example,
		 creds);
	cr_assert_eq(cf_load(text), 0, "%s", cf_err);
	cr_assert_eq(s3_creds_get(conf_be_str(&cf_conf, "credentials_file"),
				  conf_be_str(&cf_conf, "profile"), &cr, src, sizeof(src), err,
				  sizeof(err)),
		     0, "%s", err);
	cr_expect_str_eq(cr.access_key, "AKIDEXAMPLE");
	cr_expect_not_null(strstr(src, creds), "%s", src);
	cr_expect_null(strstr(src, "EXAMPLEKEY"), "%s", src);
	s3_creds_wipe(&cr);
	unlink(creds);
}

Test(config, every_s3_key_refuses_its_bad_values_with_file_line_and_reason)
{
	cf_s3_bad("endpoint = ftp://gw\n", "endpoint must begin with http:// or https://");
	cf_s3_bad("endpoint = gw:7480\n", "endpoint must begin with http:// or https://");
	cf_s3_bad("endpoint = http://\n", "endpoint has no host");
	cf_s3_bad("endpoint = http://gw:7480/data\n", "endpoint has a path, query or fragment");
	cf_s3_bad("endpoint = http://gw/\n", "endpoint has a path");
	cf_s3_bad("endpoint = https://gw?x=1\n", "query");
	cf_s3_bad("endpoint = http://gw:0\n", "endpoint's port is not a number from 1 to 65535");
	cf_s3_bad("endpoint = http://gw:65536\n", "port is not");
	cf_s3_bad("endpoint = http://gw:\n", "port is not");
	cf_s3_bad("endpoint = http://g_w\n", "host may hold letters, digits, '.' and '-' only");
	cf_s3_bad("endpoint = http://[::1]x\n", "host may hold");
	cf_s3_bad("endpoint = http://[::1\n", "bad IPv6 address");
	cf_s3_bad("bucket = Data\n", "invalid bucket 'Data'");
	cf_s3_bad("bucket = ab\n", "invalid bucket 'ab' (3 to 63");
	cf_s3_bad("bucket = -data\n", "invalid bucket");
	cf_s3_bad("bucket = da..ta\n", "invalid bucket");
	cf_s3_bad("bucket = da_ta\n", "invalid bucket");
	cf_s3_bad("prefix = vm1\n", "prefix 'vm1' must end with '/' (vm1/)");
	cf_s3_bad("prefix = /vm1/\n", "begins with '/'");
	cf_s3_bad("prefix = vm1//\n", "has an empty, '.' or '..' part");
	cf_s3_bad("prefix = a/../\n", "has an empty, '.' or '..' part");
	cf_s3_bad("prefix = ./\n", "has an empty, '.' or '..' part");
	cf_s3_bad("region = us east\n", "invalid name 'us east'");
	cf_s3_bad("region = eu/1\n", "invalid name");
	cf_s3_bad("addressing = foo\n", "invalid addressing 'foo' (path or virtual)");
	cf_s3_bad("profile = a.b\n", "invalid name 'a.b'");
	cf_s3_bad("timeout = 0\n", "invalid timeout '0' (1 to 3600)");
	cf_s3_bad("attempts = 21\n", "invalid attempts '21' (1 to 20)");
	cf_s3_bad("concurrency = 257\n", "invalid concurrency '257' (1 to 256)");
	cf_s3_bad("attr_timeout = 3601\n", "invalid attr_timeout '3601' (0 to 3600)");
	cf_s3_bad("part_size = 1M\n", "out of range");
	cf_s3_bad("part_size = 6G\n", "out of range");
	cf_s3_bad("readahead = 512K\n", "out of range");
	cf_s3_bad("cache_size = 16384T\n", "more than this host's memory");
	cf_s3_bad("staging_limit = 4K\n", "out of range");
	cf_s3_bad("staging_dir =\n", "'staging_dir' has no value");
	cf_bad_fresh("[share]\nbackend = s3\n[s3]\nbucket = data\nbucket = data\n", 5,
		     "'bucket' already set on line 4");
}

/* An endpoint's message never quotes it: it may hold a password. */
Test(config, an_endpoint_with_a_password_is_refused_without_showing_it)
{
	cf_s3_bad("endpoint = https://AKID:s3cr3tpass@gw:443\n", "holds a user or password");
	cr_expect_null(strstr(cf_err, "s3cr3tpass"), "%s", cf_err);
	cf_s3_bad("endpoint = ftp://AKID:s3cr3tpass@gw\n", "http:// or https://");
	cr_expect_null(strstr(cf_err, "s3cr3tpass"), "%s", cf_err);
}

Test(config, an_s3_share_needs_its_endpoint_and_bucket)
{
	cf_bad_fresh("[share]\nbackend = s3\n", 2, "backend = s3 needs endpoint = URL in [s3]");
	cf_bad_fresh("[share]\nbackend = s3\n[s3]\nendpoint = http://gw\n", 3,
		     "backend = s3 needs bucket = NAME in [s3]");
	cf_bad_fresh("[share]\nbackend = s3\n[s3]\nbucket = data\n", 3,
		     "backend = s3 needs endpoint = URL in [s3]");
	cf_bad_fresh("[share]\nbackend = passthrough\n[passthrough]\ndir = /x\n[s3]\n", 5,
		     "section [s3] is for backend = s3");
}

Test(config, s3_values_at_their_bounds_are_taken)
{
	cr_assert_eq(cf_load("[share]\nbackend = s3\n[s3]\n"
			     "endpoint = https://[fd00::1]:443\n"
			     "bucket = a.b-c\n"
			     "addressing = virtual\n"
			     "part_size = 5G\n"
			     "cache_size = 0\n"
			     "attr_timeout = 0\n"
			     "readahead = 1M\n"),
		     0, "%s", cf_err);
	cr_expect_eq(conf_be_num(&cf_conf, "addressing"), 1);
	cr_expect_eq(conf_be_num(&cf_conf, "part_size"), 5ull << 30);
	cr_expect_eq(conf_be_num(&cf_conf, "cache_size"), 0);
	cr_expect_str_eq(conf_be_str(&cf_conf, "prefix"), "");
}
