/*
 * test_peer.c - the test front end against a known-good back end: QEMU's own
 * virtiofsd. If these fail, suspect vufe before suspecting bulkheadd.
 * Runs in: the test process; virtiofsd runs as a child.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "vhost_user.h"
#include "vufe.h"

static struct hx_daemon d;
static char share[PATH_MAX];
static struct vufe *fe;

static void peer_setup(void)
{
	cr_assert_eq(hx_mkdtemp(share, sizeof(share), "share"), 0);
	cr_assert_eq(hx_seed_share(share), 0);
	cr_assert_eq(hx_start_virtiofsd(&d, share), 0, "virtiofsd did not start");
	fe = vufe_new(NULL);
	cr_assert(fe);
	cr_assert_eq(vufe_connect(fe, d.hd_sock, 5000), 0);
}

static void peer_teardown(void)
{
	vufe_free(fe);
	hx_stop(&d, 5000);
	hx_cleanup(&d);
	hx_rmtree(share);
}

TestSuite(peer, .init = peer_setup, .fini = peer_teardown, .timeout = 60);

Test(peer, virtiofsd_serves_init_lookup_getattr_read)
{
	struct fuse_init_out io;
	struct fuse_entry_out e;
	struct fuse_attr_out a;
	struct stat st;
	char path[PATH_MAX + 16], buf[64];
	uint64_t fh;
	uint32_t n;

	cr_assert_eq(vufe_up(fe), 0);
	/* virtiofsd 7.2 counts hiprio + one request queue (docs/protocol.md §G.7) */
	cr_expect_eq(vufe_queue_num(fe), 2);
	cr_assert_eq(vufe_fuse_init(fe, 1, &io), 0);
	cr_expect_eq(io.major, 7);
	cr_assert_eq(vufe_fuse_lookup(fe, 1, 1, "small.txt", &e), 0);
	snprintf(path, sizeof(path), "%s/small.txt", share);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(e.attr.size, (uint64_t)st.st_size);
	cr_expect_eq(e.attr.ino, st.st_ino);
	cr_assert_eq(vufe_fuse_getattr(fe, 1, e.nodeid, &a), 0);
	cr_expect_eq(a.attr.mode, st.st_mode);
	cr_assert_eq(vufe_fuse_open(fe, 1, e.nodeid, 0, &fh), 0);
	cr_assert_eq(vufe_fuse_read(fe, 1, e.nodeid, fh, 0, sizeof(buf), buf, &n, 0), 0);
	cr_assert_eq(n, 15);
	cr_expect_eq(memcmp(buf, "hello bulkhead\n", 15), 0);
	cr_expect_eq(vufe_fuse_forget(fe, 0, e.nodeid, 1), 0);
}

Test(peer, virtiofsd_reads_big_file_split_into_pages)
{
	struct fuse_init_out io;
	struct fuse_entry_out e;
	unsigned char *want = malloc(HX_BIG_SIZE), *got = malloc(1 << 20);
	uint64_t fh;
	uint32_t n;

	cr_assert_eq(vufe_up(fe), 0);
	cr_assert_eq(vufe_fuse_init(fe, 1, &io), 0);
	cr_assert_eq(vufe_fuse_lookup(fe, 1, 1, "big.bin", &e), 0);
	cr_assert_eq(vufe_fuse_open(fe, 1, e.nodeid, 0, &fh), 0);
	hx_big_content(want, HX_BIG_SIZE);
	/* 128 KiB in 4 KiB data descriptors (what a 128-entry queue allows) */
	cr_assert_eq(
	    vufe_fuse_read(fe, 1, e.nodeid, fh, 4096, 128 << 10, got, &n, VUFE_SPLIT_PAGES), 0);
	cr_assert_eq(n, 128 << 10);
	cr_expect_eq(memcmp(got, want + 4096, n), 0);
	/* short read at EOF */
	cr_assert_eq(vufe_fuse_read(fe, 1, e.nodeid, fh, HX_BIG_SIZE - 100, 4096, got, &n, 0), 0);
	cr_expect_eq(n, 100);
	free(want);
	free(got);
}

Test(peer, virtiofsd_offers_what_the_protocol_notes_record)
{
	cr_assert_eq(vufe_negotiate(fe), 0);
	cr_expect_eq(vufe_offered_features(fe), 0x175000000ull);
	cr_expect_eq(vufe_offered_protocol_features(fe), 0x8c2bull);
}
