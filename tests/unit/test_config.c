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

Test(config, the_s3_back_end_is_refused_until_it_exists)
{
	cf_bad("[share]\nbackend = s3\n", 2, "backend s3 is not part of this version");
	cf_bad("[share]\nbackend = memory\n[s3]\n", 3, "section [s3]");
}

Test(config, bad_values_are_refused_with_the_choices)
{
	cf_bad("[share]\nbackend = nfs\n", 2, "invalid backend 'nfs' (passthrough or memory)");
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
	cf_bad("\n[share]\ncache = auto\n", 2, "[share] needs backend = passthrough or memory");
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

/* A sample value of each kind, accepted by every key of that kind. */
static const char *cf_sample(const struct be_key *k)
{
	return k->bk_kind == BK_PATH ? "/srv/share" : k->bk_kind == BK_SIZE ? "64M" : "1000";
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
