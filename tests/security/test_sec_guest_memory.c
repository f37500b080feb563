/*
 * test_sec_guest_memory.c - a front end that shrinks its guest memory file
 * under the workers after SET_MEM_TABLE and INIT (the memfd is not sealed),
 * then hands them requests whose buffers, or whose ring, lay in the lost
 * part. A worker touching a lost page gets SIGBUS: that must cost the
 * connection, with one log line naming the region, and never the daemon,
 * which serves the next front end and exits 0 on SIGTERM. System calls that
 * meet the lost pages fail their request with EFAULT. A sealed file cannot
 * shrink and works as before; a SIGBUS outside guest memory (a test hook)
 * stays a bug: the worker dies of it, and the address is logged.
 * Runs in: the test process as root; bulkheadd is a child.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sectest.h"

#define Q	   1
#define GM_CUT	   (32ull << 20) /* the file is cut to this (of 64 MiB) */
#define GM_LINE	   "front end shrank guest memory region "
#define GM_READ_SZ (256u << 10) /* above what the loop thread reads itself */

/* Take every free page of region 1, then give back those past the cut:
 * whatever the front end allocates there from now on lies past it, and
 * region 0 (below 640 KiB) is left for buffers that must survive. */
static void gm_fill(void)
{
	struct vufe_opts o;
	uint64_t gpa;

	vufe_opts_default(&o);
	while (vufe_reserve(it_fe, 4096, &gpa) && gpa >= VUFE_HOLE_END)
		;
	cr_assert_lt(gpa, VUFE_HOLE_START);
	vufe_release(it_fe, gpa, 4096);
	vufe_release(it_fe, GM_CUT, o.mem_size - GM_CUT);
}

static void gm_start(const char *const *extra, int seal)
{
	struct vufe_opts o;

	vufe_opts_default(&o);
	o.seal_memory = seal;
	it_launch_opts(extra, &o);
	cr_assert_eq(it_up_init(it_fe), 0, "INIT failed");
	gm_fill();
}

static void gm_setup(void)
{
	gm_start(NULL, 0);
}

static void gm_setup_sealed(void)
{
	gm_start(NULL, 1);
}

TestSuite(guest_memory, .init = gm_setup, .fini = it_teardown, .timeout = 60);
TestSuite(guest_memory_sealed, .init = gm_setup_sealed, .fini = it_teardown, .timeout = 60);

/* Guest memory past the cut, written while it is still there. */
static uint64_t gm_high(size_t len)
{
	uint64_t gpa;
	uint8_t *p = vufe_alloc(it_fe, len, &gpa);

	cr_assert_not_null(p);
	cr_assert_geq(gpa, GM_CUT, "allocated below the cut");
	memset(p, 0x5a, len);
	return gpa;
}

static void gm_cut(void)
{
	cr_assert_eq(ftruncate(vufe_mem_fd(it_fe), (off_t)GM_CUT), 0, "%s", strerror(errno));
}

/* The file back at full length (the lost pages come back as zeros), so that
 * the test's own buffers and indirect tables past the cut work again. */
static void gm_uncut(void)
{
	struct vufe_opts o;

	vufe_opts_default(&o);
	cr_assert_eq(ftruncate(vufe_mem_fd(it_fe), (off_t)o.mem_size), 0, "%s", strerror(errno));
}

/* The guest-physical address the shrink line names (region index first). */
static uint64_t gm_logged_gpa(unsigned *region)
{
	char line[2048], *p;
	FILE *f = fopen(it_d.hd_log, "r");
	uint64_t gpa = 0;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (!(p = strstr(line, GM_LINE)))
			continue;
		cr_assert_eq(sscanf(p + strlen(GM_LINE), "%u (gpa %lx", region, &gpa), 2, "%s",
			     line);
		cr_assert(strstr(line, "file not sealed) under worker q1: dropping the connection"),
			  "%s", line);
	}
	fclose(f);
	return gpa;
}

/* One line, the connection gone, the daemon serving the next front end. */
static void gm_expect_dropped(uint64_t lo, uint64_t hi)
{
	unsigned region = 0;
	uint64_t gpa;

	cr_assert_eq(vufe_expect_eof(it_fe, 5000), 0, "the connection was not dropped");
	hx_wait_log(&it_d, "dropping the front end: its guest memory shrank under worker q1", 5000);
	cr_assert_eq(sec_log_count(GM_LINE), 1, "the shrink line is not there exactly once");
	gpa = gm_logged_gpa(&region);
	cr_assert_eq(region, 1, "region %u", region);
	cr_assert(gpa >= lo && gpa < hi, "gpa 0x%llx not in [0x%llx, 0x%llx)",
		  (unsigned long long)gpa, (unsigned long long)lo, (unsigned long long)hi);
	cr_assert(hx_log_contains(&it_d, "dropping the front end: its guest memory shrank under "
					 "worker q1"));
	cr_assert(hx_alive(&it_d), "the daemon died");
	it_next_front_end_served();
	cr_assert_eq(sec_log_count(GM_LINE), 1, "logged again");
}

/* The request itself (in header, arguments) lies in the lost part: the
 * loop thread faults while decoding it. */
ITEST(guest_memory, request_in_shrunk_memory_drops_the_connection)
{
	struct vufe_call *c = vufe_call_new(it_fe, 64, sizeof(struct fuse_entry_out));

	it_expect_worker_death(1, IT_KILLED); /* the parent drops it */
	cr_assert_not_null(c);
	cr_assert_geq(c->c_in_gpa, GM_CUT);
	cr_assert_eq(vufe_call_prep(it_fe, c, FUSE_LOOKUP, 1, "small.txt", 10, NULL, 0,
				    16 + sizeof(struct fuse_entry_out)),
		     0);
	gm_cut();
	/* descriptors straight in the ring, which lies below the cut */
	cr_assert_eq(vufe_call_submit(it_fe, Q, c, VUFE_FORCE_CHAIN), 0);
	gm_expect_dropped(c->c_in_gpa, c->c_in_gpa + 4096);
}

/* The reply lands in the lost part, from a pool thread (a READ too large
 * for the loop thread): SIGBUS there is handled the same way. */
ITEST(guest_memory, reply_in_shrunk_memory_from_a_pool_thread_drops_the_connection)
{
	struct fuse_read_in in = {.size = GM_READ_SZ};
	struct vufe_call *c = vufe_call_new_in(it_fe, 0, sizeof(in), 1);
	uint64_t nid = it_lookup(it_fe, Q, "big.bin"), hi = gm_high(4096 + GM_READ_SZ);
	struct vufe_sg wr = {hi + 4096, GM_READ_SZ, 1};

	it_expect_worker_death(1, IT_KILLED);
	cr_assert_not_null(c);
	cr_assert_neq(nid, 0);
	cr_assert_eq(vufe_fuse_open(it_fe, Q, nid, O_RDONLY, &in.fh), 0);
	cr_assert_eq(vufe_call_prep(it_fe, c, FUSE_READ, nid, &in, sizeof(in), NULL, 0, 16), 0);
	gm_cut();
	/* the out header too is past the cut */
	c->c_out_gpa = hi;
	cr_assert_eq(vufe_call_submit_sg(it_fe, Q, c, NULL, 0, &wr, 1, VUFE_FORCE_CHAIN), 0);
	gm_expect_dropped(hi, hi + 4096 + GM_READ_SZ);
}

/* The ring itself lies in the lost part: a kick is enough. */
ITEST(guest_memory, ring_in_shrunk_memory_drops_the_connection)
{
	uint64_t one = 1, lo;

	it_expect_worker_death(1, IT_KILLED);
	cr_assert_eq(vufe_stop(it_fe, NULL), 0);
	/* the first layout frees the old ring and tables below the cut */
	cr_assert_eq(vufe_ring_relayout(it_fe, Q), 0);
	gm_fill();
	cr_assert_eq(vufe_ring_relayout(it_fe, Q), 0);
	cr_assert_eq(vufe_start(it_fe, 0), 0);
	cr_assert_eq(vufe_fuse_init(it_fe, Q, &(struct fuse_init_out){0}), 0);
	cr_assert_neq(it_lookup(it_fe, Q, "small.txt"), 0, "the new ring does not work");
	lo = (uint64_t)((uint8_t *)vufe_ring_desc(it_fe, Q) - (uint8_t *)vufe_gpa_ptr(it_fe, 0, 1));
	cr_assert_geq(lo, GM_CUT, "the ring is below the cut (0x%llx)", (unsigned long long)lo);
	gm_cut();
	/* not vufe_kick: it would read the ring (avail_event) itself */
	cr_assert_eq(write(vufe_kick_fd(it_fe, Q), &one, sizeof(one)), (ssize_t)sizeof(one));
	gm_expect_dropped(lo, lo + 3 * 4096);
}

/* preadv and pwritev meet the lost pages in the kernel: EFAULT for that
 * request, no SIGBUS, and the connection goes on. */
ITEST(guest_memory, read_and_write_data_in_shrunk_memory_fail_with_efault)
{
	uint64_t nid = it_lookup(it_fe, Q, "small.txt"), fh, hi = gm_high(8192);
	struct fuse_read_in rin = {.size = 4096};
	struct fuse_write_in win = {.size = 4096};
	struct vufe_sg rd = {hi, 4096, 0}, wr = {hi + 4096, 4096, 1}, wout;
	struct vufe_call *c = vufe_call_new_in(it_fe, 0, sizeof(win), 8);
	char buf[64];
	uint32_t n;

	cr_assert_not_null(c);
	wout = (struct vufe_sg){c->c_out_gpa + 4096, sizeof(struct fuse_write_out), 1};
	cr_assert_eq(vufe_fuse_open(it_fe, Q, nid, O_RDWR, &fh), 0);
	rin.fh = win.fh = fh;
	gm_cut();
	/* READ: the header is fine, the data buffer is gone */
	cr_assert_eq(vufe_call_prep(it_fe, c, FUSE_READ, nid, &rin, sizeof(rin), NULL, 0, 16), 0);
	cr_assert_eq(vufe_call_submit_sg(it_fe, Q, c, NULL, 0, &wr, 1, VUFE_FORCE_CHAIN), 0);
	cr_assert_eq(vufe_call_wait(it_fe, c, 5000), 0);
	cr_assert_eq(vufe_call_result(c), -EFAULT);
	/* WRITE: the data to write is gone */
	cr_assert_eq(vufe_call_prep(it_fe, c, FUSE_WRITE, nid, &win, sizeof(win), NULL, 0, 16), 0);
	((struct fuse_in_header *)c->c_in)->len += win.size;
	cr_assert_eq(vufe_call_submit_sg(it_fe, Q, c, &rd, 1, &wout, 1, VUFE_FORCE_CHAIN), 0);
	cr_assert_eq(vufe_call_wait(it_fe, c, 5000), 0);
	cr_assert_eq(vufe_call_result(c), -EFAULT, "WRITE: %d", vufe_call_result(c));
	vufe_call_free(it_fe, c);
	/* follow-up on the same connection */
	cr_assert_eq(vufe_expect_silence(it_fe, 200), 0, "the connection was dropped");
	gm_uncut();
	cr_assert_eq(vufe_fuse_read(it_fe, Q, nid, fh, 0, sizeof(buf), buf, &n, 0), 0);
	cr_assert_eq(n, 15);
	cr_assert_eq(memcmp(buf, "hello bulkhead\n", 15), 0, "the file changed");
	cr_assert_eq(sec_log_count(GM_LINE), 0);
}

/* The front end hands a new worker the table after shrinking a file: the
 * worker checks the file before it maps anything, and refuses. */
ITEST(guest_memory, worker_refuses_a_region_past_the_end_of_its_file)
{
	it_expect_worker_death(2, IT_KILLED);
	vufe_set_nqueues(it_fe, 3); /* q2's ring, past the cut, is never touched */
	gm_cut();
	vufe_set_need_reply_all(it_fe, 1);
	cr_assert_eq(vufe_set_vring_num(it_fe, 2, 128), 0);
	cr_assert_eq(vufe_set_vring_base(it_fe, 2, 0), 0);
	cr_assert_eq(vufe_set_vring_addr(it_fe, 2), 0);
	/* the kick starts q2's worker, which gets the memory table */
	cr_assert_eq(vufe_set_vring_kick(it_fe, 2, -1), -EIO);
	cr_assert(hx_log_contains(&it_d, "q2: memory region 1 (gpa 0xc0000, 0x3f40000 bytes at "
					 "file offset 0xc0000) extends past the end of its file "
					 "(0x2000000 bytes): not mapped"));
	cr_assert(hx_log_contains(&it_d, "worker q2 refused MEM_TABLE: No such device or address"));
	cr_assert_eq(sec_log_count(GM_LINE), 0);
	/* follow-up: q1 never touched the lost pages and goes on */
	gm_uncut();
	cr_assert_eq(vufe_expect_silence(it_fe, 100), 0, "the connection was dropped");
	cr_assert_neq(it_lookup(it_fe, Q, "small.txt"), 0);
}

/* Shrunk before the table is sent: the parent refuses the table. */
ITEST(guest_memory, memory_table_past_the_end_of_its_file_is_refused)
{
	vufe_free(it_fe);
	it_fe = vufe_new(NULL);
	cr_assert_not_null(it_fe);
	cr_assert_eq(ftruncate(vufe_mem_fd(it_fe), (off_t)GM_CUT), 0);
	cr_assert_eq(vufe_connect(it_fe, it_d.hd_sock, 5000), 0);
	cr_assert_neq(vufe_up(it_fe), 0, "a table past the end of its file was taken");
	cr_assert_eq(vufe_expect_eof(it_fe, 5000), 0, "the connection was not dropped");
	cr_assert(hx_log_contains(&it_d, "memory region gpa 0xc0000 extends past the end of its "
					 "file"));
	it_next_front_end_served();
}

/* QEMU's memfd backend seals its file: it cannot shrink, and the worker
 * says so when it maps it. */
ITEST(guest_memory_sealed, sealed_memory_cannot_shrink_and_serves_as_before)
{
	char buf[64];
	uint64_t nid = it_lookup(it_fe, Q, "small.txt"), fh;
	uint32_t n;

	cr_assert_neq(nid, 0);
	cr_assert_eq(ftruncate(vufe_mem_fd(it_fe), (off_t)GM_CUT), -1);
	cr_assert_eq(errno, EPERM);
	cr_assert(hx_log_contains(&it_d, "sealed against shrinking"));
	cr_assert_eq(vufe_fuse_open(it_fe, Q, nid, O_RDONLY, &fh), 0);
	cr_assert_eq(vufe_fuse_read(it_fe, Q, nid, fh, 0, sizeof(buf), buf, &n, 0), 0);
	cr_assert_eq(n, 15);
	cr_assert_eq(sec_log_count(GM_LINE), 0);
}

ITEST(guest_memory, unsealed_memory_of_full_length_serves_as_before)
{
	char buf[64];
	uint64_t nid = it_lookup(it_fe, Q, "small.txt"), fh;
	uint32_t n;

	cr_assert_neq(nid, 0);
	cr_assert_eq(hx_log_contains(&it_d, "sealed against shrinking"), 0);
	cr_assert_eq(vufe_fuse_open(it_fe, Q, nid, O_RDONLY, &fh), 0);
	cr_assert_eq(vufe_fuse_read(it_fe, Q, nid, fh, 0, sizeof(buf), buf, &n, 0), 0);
	cr_assert_eq(n, 15);
	cr_assert_eq(sec_log_count(GM_LINE), 0);
}

#ifdef BH_TEST_HOOKS
static void gm_setup_bug(void)
{
	static const char *const extra[] = {"--test-sigbus-outside-guest=1", NULL};

	it_launch(extra, 3);
	cr_assert_eq(vufe_up(it_fe), 0);
}

TestSuite(guest_memory_bug, .init = gm_setup_bug, .fini = it_teardown, .timeout = 60);

/* Not guest memory: a bug. The worker dies by SIGBUS (no core: RLIMIT_CORE
 * is 0), the address is logged, and nothing else is lost. */
ITEST(guest_memory_bug, sigbus_outside_guest_memory_kills_the_worker_with_its_address)
{
	char line[2048], death[128], *p;
	struct fuse_init_out io;
	unsigned long addr = 0;
	int pid = 0, code = 0;
	FILE *f;

	it_expect_worker_death(1, "was killed by signal 7 (Bus error)");
	cr_assert_eq(vufe_fuse_init(it_fe, Q, &io), VUFE_ENOREPLY);
	hx_wait_log(&it_d, "was killed by signal 7", 5000);
	f = fopen(it_d.hd_log, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if ((p = strstr(line, "worker q1 (pid ")) && strstr(p, "SIGBUS at address"))
			cr_assert_eq(
			    sscanf(p,
				   "worker q1 (pid %d): SIGBUS at address %lx outside guest "
				   "memory (si_code %d)",
				   &pid, &addr, &code),
			    3, "%s", line);
	fclose(f);
	cr_assert_gt(pid, 0, "no SIGBUS line");
	cr_assert_neq(addr, 0);
	cr_assert_eq(code, BUS_ADRERR);
	cr_assert(hx_log_contains(&it_d, "a bug, the worker dies of it"));
	snprintf(death, sizeof(death), "worker q1 (pid %d) was killed by signal 7 (Bus error)",
		 pid);
	cr_assert(hx_log_contains(&it_d, death), "no line \"%s\"", death);
	cr_assert_eq(sec_log_count(GM_LINE), 0);
	cr_assert(hx_alive(&it_d), "the daemon died");
	/* follow-up: the other request queue, same connection */
	cr_assert_eq(vufe_fuse_init(it_fe, 2, &io), 0);
	cr_assert_neq(it_lookup(it_fe, 2, "small.txt"), 0);
}
#endif
