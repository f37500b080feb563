/*
 * test_sec_sizes.c - a guest that asks for the largest sizes the protocol
 * allows: READ, READDIR, READDIRPLUS, GETXATTR and LISTXATTR of UINT32_MAX
 * bytes with a writable chain of UINT32_MAX bytes (every descriptor over
 * the same 256 MiB of sparse guest memory), SETXATTR and WRITE above their
 * limits, more requests in flight than the queue holds, and a queue filled
 * with such requests, round after round, while the workers' peak memory is
 * watched. Each answer is checked exactly (a reply clamped to what INIT
 * negotiated, or the errno a Linux FUSE server gives), then a normal request
 * must still succeed.
 * Runs in: the test process as root; bulkheadd is a child.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "sectest.h"

#define SZ_QUEUE      512	     /* max_pages 256 (the cap), and 512 in flight */
#define SZ_MEM	      (320ull << 20) /* sparse guest memory */
#define SZ_ZONE	      (256ull << 20) /* where every huge descriptor points */
#define SZ_HUGE_FILE  (1ull << 30)   /* sparse, past a pattern */
#define SZ_PATTERN    (4u << 20)     /* bytes of pattern at the start of huge.bin */
#define SZ_DIR_FILES  4500	     /* long names: a listing of several MiB */
#define SZ_NAME_LEN   240
#define SZ_XATTR_LEN  100
#define SZ_MAX_WRITE  (1u << 20)    /* what INIT announces as max_write */
#define SZ_ROUNDS     4		    /* queue-fulls of max-size requests */
#define SZ_HWM_BOUND  (32ull << 20) /* growth allowed after SZ_ROUNDS rounds */
#define SZ_PEAK_BOUND (64ull << 20)
#define Q	      1 /* the queue the requests go to */
#define Q2	      2 /* the queue the ring attack goes to */

static uint32_t sz_cap; /* max_pages * 4096, from INIT */
static uint64_t sz_zone_gpa;
static uint8_t *sz_zone;
static uint64_t sz_huge_node, sz_huge_fh, sz_dir_node, sz_small_node;

static const char *sz_path(const char *name)
{
	static char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", it_share, name);
	return p;
}

static uint8_t sz_pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 12) + 1);
}

static void sz_dir_name(char *buf, unsigned i)
{
	memset(buf, 'n', SZ_NAME_LEN);
	snprintf(buf, 16, "f%05u", i);
	buf[6] = 'n'; /* snprintf's NUL */
	buf[SZ_NAME_LEN] = '\0';
}

static void sz_seed(void)
{
	static uint8_t chunk[1 << 16];
	int fd;

	fd = open(sz_path("huge.bin"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	for (uint64_t off = 0; off < SZ_PATTERN; off += sizeof(chunk)) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = sz_pattern(off + i);
		cr_assert_eq(pwrite(fd, chunk, sizeof(chunk), (off_t)off), (ssize_t)sizeof(chunk));
	}
	cr_assert_eq(ftruncate(fd, (off_t)SZ_HUGE_FILE), 0);
	close(fd);
	memset(chunk, 'x', SZ_XATTR_LEN);
	cr_assert_eq(setxattr(sz_path("small.txt"), "user.sizes", chunk, SZ_XATTR_LEN, 0), 0);
	cr_assert_eq(setxattr(sz_path("small.txt"), "user.other", "1", 1, 0), 0);
}

/* The directory of long names, made (on the host, under the running
 * daemon) only by the tests that list it. */
static void sz_make_bigdir(void)
{
	char name[SZ_NAME_LEN + 1], p[PATH_MAX];
	int fd;

	cr_assert_eq(mkdir(sz_path("bigdir"), 0755), 0);
	for (unsigned i = 0; i < SZ_DIR_FILES; i++) {
		sz_dir_name(name, i);
		snprintf(p, sizeof(p), "%s/bigdir/%s", it_share, name);
		fd = open(p, O_WRONLY | O_CREAT, 0644);
		cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
		close(fd);
	}
	sz_dir_node = it_lookup(it_fe, Q, "bigdir");
	cr_assert_neq(sz_dir_node, 0);
}

static void sz_setup(void)
{
	static const char *const extra[] = {"--xattr", NULL};
	struct fuse_init_out io;
	struct vufe_opts o;

	vufe_fuse_set_creds(0, 0);
	cr_assert_eq(hx_mkdtemp(it_share, sizeof(it_share), "share"), 0);
	cr_assert_eq(hx_seed_share(it_share), 0);
	sz_seed();
	cr_assert_eq(hx_start_bulkheadd(&it_d, it_share, extra), 0, "bulkheadd did not start");
	vufe_opts_default(&o);
	o.mem_size = SZ_MEM;
	o.queue_size = SZ_QUEUE;
	o.nqueues = 3;
	it_fe = it_connect(&o);
	cr_assert_eq(vufe_up(it_fe), 0);
	cr_assert_eq(vufe_fuse_init(it_fe, Q, &io), 0);
	cr_assert_eq(io.max_write, SZ_MAX_WRITE);
	cr_assert_eq(io.max_pages, 256, "a queue of %u gives max_pages %u", SZ_QUEUE, io.max_pages);
	sz_cap = io.max_pages * 4096u;
	sz_zone = vufe_reserve(it_fe, SZ_ZONE, &sz_zone_gpa);
	cr_assert_not_null(sz_zone);
	sz_huge_node = it_lookup(it_fe, Q, "huge.bin");
	sz_small_node = it_lookup(it_fe, Q, "small.txt");
	cr_assert(sz_huge_node && sz_small_node);
	cr_assert_eq(vufe_fuse_open(it_fe, Q, sz_huge_node, O_RDWR, &sz_huge_fh), 0);
}

TestSuite(sizes, .init = sz_setup, .fini = it_teardown, .timeout = 120);

/* Descriptors over the zone (from its start, each at most SZ_ZONE bytes)
 * adding up to total bytes. */
static unsigned sz_zone_sg(struct vufe_sg *sg, unsigned max, uint64_t total, int write)
{
	unsigned n = 0;

	while (total > 0) {
		uint64_t piece = total < SZ_ZONE ? total : SZ_ZONE;

		cr_assert_lt(n, max);
		sg[n++] = (struct vufe_sg){sz_zone_gpa, (uint32_t)piece, write};
		total -= piece;
	}
	return n;
}

/* A request with a UINT32_MAX-byte writable chain: its out header, then the
 * zone again and again. Submitted, not waited for. */
static struct vufe_call *sz_submit_huge(unsigned q, uint32_t opcode, uint64_t node, const void *a1,
					size_t l1, const void *a2, size_t l2, int flags)
{
	struct vufe_sg wr[32];
	struct vufe_call *c = vufe_call_new(it_fe, l1 + l2, 1);
	unsigned n;

	cr_assert_not_null(c);
	cr_assert_eq(vufe_call_prep(it_fe, c, opcode, node, a1, l1, a2, l2, 16), 0);
	n = sz_zone_sg(wr, 32, UINT32_MAX - sizeof(struct fuse_out_header), 1);
	cr_assert_eq(vufe_call_submit_sg(it_fe, q, c, NULL, 0, wr, n, flags), 0);
	return c;
}

/* The same, waited for: the FUSE result; the reply's data is at the zone. */
static int sz_huge(uint32_t opcode, uint64_t node, const void *a1, size_t l1, const void *a2,
		   size_t l2, uint32_t *len)
{
	struct vufe_call *c = sz_submit_huge(Q, opcode, node, a1, l1, a2, l2, 0);
	int r;

	cr_assert_eq(vufe_call_wait(it_fe, c, 20000), 0, "no reply");
	r = vufe_call_result(c);
	*len = vufe_call_data_len(c);
	vufe_call_free(it_fe, c);
	return r;
}

static uint32_t sz_read_u32_max(uint32_t opcode, uint64_t node, uint64_t fh, uint64_t off,
				int expect)
{
	struct fuse_read_in in = {.fh = fh, .offset = off, .size = UINT32_MAX};
	uint32_t len = 0;

	cr_assert_eq(sz_huge(opcode, node, &in, sizeof(in), NULL, 0, &len), expect);
	return len;
}

ITEST(sizes, read_of_u32_max_bytes_is_clamped_to_max_pages)
{
	static uint8_t buf[8192];
	uint32_t len, got;

	memset(sz_zone + sz_cap, 0xee, 4096);
	len = sz_read_u32_max(FUSE_READ, sz_huge_node, sz_huge_fh, 4096, 0);
	cr_assert_eq(len, sz_cap, "READ answered %u bytes, the cap is %u", len, sz_cap);
	for (uint32_t i = 0; i < len; i++)
		if (sz_zone[i] != sz_pattern(4096 + i))
			cr_assert_fail("byte %u of the reply is wrong", i);
	for (uint32_t i = 0; i < 4096; i++)
		cr_assert_eq(sz_zone[sz_cap + i], 0xee, "written past the cap at %u", sz_cap + i);
	/* follow-up: a normal READ right after the clamped range */
	cr_assert_eq(vufe_fuse_read(it_fe, Q, sz_huge_node, sz_huge_fh, 4096 + sz_cap, sizeof(buf),
				    buf, &got, 0),
		     0);
	cr_assert_eq(got, sizeof(buf));
	for (uint32_t i = 0; i < got; i++)
		cr_assert_eq(buf[i], sz_pattern(4096 + sz_cap + i));
}

/* Walk the packed records of a READDIR(PLUS) reply: entries, the last
 * cookie, the longest record. */
static unsigned sz_walk_dirents(const uint8_t *p, uint32_t len, int plus, uint64_t *last_off,
				char *last_name, size_t *longest)
{
	size_t head = plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
	uint32_t pos = 0;
	unsigned n = 0;

	*longest = 0;
	while (pos < len) {
		const struct fuse_dirent *d =
		    (const struct fuse_dirent *)(p + pos +
						 (plus ? offsetof(struct fuse_direntplus, dirent)
						       : 0));
		size_t rec;

		cr_assert_leq(pos + head, len, "record header past the reply");
		rec = FUSE_DIRENT_ALIGN(head + d->namelen);
		cr_assert_leq(pos + rec, len, "record past the reply");
		cr_assert(d->namelen > 0 && d->namelen <= 255);
		*last_off = d->off;
		memcpy(last_name, d->name, d->namelen);
		last_name[d->namelen] = '\0';
		if (rec > *longest)
			*longest = rec;
		pos += (uint32_t)rec;
		n++;
	}
	return n;
}

static void sz_readdir_clamped(uint32_t opcode)
{
	int plus = opcode == FUSE_READDIRPLUS;
	char last[256], next[256], expect[SZ_NAME_LEN + 1];
	static uint8_t copy[2u << 20], buf[1u << 16];
	uint64_t fh, off = 0, off2 = 0;
	size_t longest, longest2;
	uint32_t len, len2;
	unsigned n, n2, i;

	sz_make_bigdir();
	cr_assert_eq(vufe_fuse_opendir(it_fe, Q, sz_dir_node, &fh), 0);
	len = sz_read_u32_max(opcode, sz_dir_node, fh, 0, 0);
	cr_assert_leq(len, sz_cap, "%s answered %u bytes, the cap is %u",
		      plus ? "READDIRPLUS" : "READDIR", len, sz_cap);
	memcpy(copy, sz_zone, len);
	n = sz_walk_dirents(copy, len, plus, &off, last, &longest);
	/* short only by what the next record would not fit in */
	cr_assert_gt(len + longest, sz_cap, "%u bytes (%u records) with room for more", len, n);
	cr_assert_lt(n, SZ_DIR_FILES, "the whole directory fit: the test proves nothing");
	/* follow-up: the listing goes on from the last cookie */
	cr_assert_eq(
	    vufe_fuse_readdir(it_fe, Q, opcode, sz_dir_node, fh, off, sizeof(buf), buf, &len2), 0);
	n2 = sz_walk_dirents(buf, len2, plus, &off2, next, &longest2);
	cr_assert_gt(n2, 0);
	cr_assert_str_neq(next, last);
	for (i = 0; i < SZ_DIR_FILES; i++) {
		sz_dir_name(expect, i);
		if (strcmp(expect, next) == 0)
			break;
	}
	cr_assert_lt(i, SZ_DIR_FILES, "the follow-up listed %s", next);
}

ITEST(sizes, readdir_of_u32_max_bytes_is_clamped_to_max_pages)
{
	sz_readdir_clamped(FUSE_READDIR);
}

ITEST(sizes, readdirplus_of_u32_max_bytes_is_clamped_to_max_pages)
{
	sz_readdir_clamped(FUSE_READDIRPLUS);
}

ITEST(sizes, getxattr_of_u32_max_bytes_answers_the_value)
{
	struct fuse_getxattr_in in = {.size = UINT32_MAX};
	uint32_t len = 0;

	cr_assert_eq(sz_huge(FUSE_GETXATTR, sz_small_node, &in, sizeof(in), "user.sizes", 11, &len),
		     0);
	cr_assert_eq(len, SZ_XATTR_LEN);
	for (uint32_t i = 0; i < len; i++)
		cr_assert_eq(sz_zone[i], 'x');
	/* follow-up: the size query */
	in.size = 0;
	{
		struct fuse_getxattr_out o;
		uint32_t n = 0;

		cr_assert_eq(vufe_fuse(it_fe, Q, FUSE_GETXATTR, sz_small_node, &in, sizeof(in),
				       "user.sizes", 11, &o, sizeof(o), &n, 0),
			     0);
		cr_assert_eq(n, sizeof(o));
		cr_assert_eq(o.size, SZ_XATTR_LEN);
	}
}

ITEST(sizes, listxattr_of_u32_max_bytes_answers_the_list)
{
	struct fuse_getxattr_in in = {.size = UINT32_MAX};
	char want[64], got[64];
	ssize_t wl;
	uint32_t len = 0;

	wl = listxattr(sz_path("small.txt"), want, sizeof(want));
	cr_assert_gt(wl, 0);
	cr_assert_eq(sz_huge(FUSE_LISTXATTR, sz_small_node, &in, sizeof(in), NULL, 0, &len), 0);
	cr_assert_eq(len, (uint32_t)wl);
	cr_assert_eq(memcmp(sz_zone, want, (size_t)wl), 0);
	in.size = sizeof(got);
	cr_assert_eq(vufe_fuse(it_fe, Q, FUSE_LISTXATTR, sz_small_node, &in, sizeof(in), NULL, 0,
			       got, sizeof(got), &len, 0),
		     0);
	cr_assert_eq(len, (uint32_t)wl);
}

/* SETXATTR with SETXATTR_EXT's 16-byte arguments; the value at the zone. */
static int sz_setxattr(uint32_t size, uint32_t value_len)
{
	struct fuse_setxattr_in in = {.size = size};
	struct vufe_sg rd[1] = {{sz_zone_gpa, value_len, 0}};
	static const char name[] = "user.big";
	struct vufe_call *c = vufe_call_new(it_fe, sizeof(in) + sizeof(name), 16);
	int r;

	cr_assert_not_null(c);
	cr_assert_eq(vufe_call_prep(it_fe, c, FUSE_SETXATTR, sz_small_node, &in, sizeof(in), name,
				    sizeof(name), 16),
		     0);
	((struct fuse_in_header *)c->c_in)->len += value_len;
	/* one readable element for the arguments and the name, as Linux sends them */
	c->c_arg_split = c->c_in_len;
	cr_assert_eq(vufe_call_submit_sg(it_fe, Q, c, rd, value_len ? 1 : 0, NULL, 0, 0), 0);
	cr_assert_eq(vufe_call_wait(it_fe, c, 10000), 0);
	r = vufe_call_result(c);
	vufe_call_free(it_fe, c);
	return r;
}

ITEST(sizes, setxattr_above_xattr_size_max_is_e2big)
{
	char v[8];

	memset(sz_zone, 'v', XATTR_SIZE_MAX + 1);
	/* the size field at its largest, with a small value behind it */
	cr_assert_eq(sz_setxattr(UINT32_MAX, 16), -E2BIG);
	/* a value really one byte too large */
	cr_assert_eq(sz_setxattr(XATTR_SIZE_MAX + 1, XATTR_SIZE_MAX + 1), -E2BIG);
	cr_assert_eq(getxattr(sz_path("small.txt"), "user.big", v, sizeof(v)), -1);
	cr_assert_eq(errno, ENODATA);
	/* follow-up: a value that fits */
	cr_assert_eq(sz_setxattr(8, 8), 0);
	cr_assert_eq(getxattr(sz_path("small.txt"), "user.big", v, sizeof(v)), 8);
	cr_assert_eq(memcmp(v, "vvvvvvvv", 8), 0);
}

/* WRITE of size data bytes, all read from the zone. */
static int sz_write(uint32_t size, uint64_t off, uint32_t *written)
{
	struct fuse_write_in in = {.fh = sz_huge_fh, .offset = off, .size = size};
	struct fuse_write_out out;
	struct vufe_sg rd[32], wr[1];
	struct vufe_call *c = vufe_call_new(it_fe, sizeof(in), sizeof(out));
	unsigned n;
	int r;

	cr_assert_not_null(c);
	cr_assert_eq(
	    vufe_call_prep(it_fe, c, FUSE_WRITE, sz_huge_node, &in, sizeof(in), NULL, 0, 16), 0);
	((struct fuse_in_header *)c->c_in)->len += size;
	n = sz_zone_sg(rd, 32, size, 0);
	wr[0] = (struct vufe_sg){c->c_out_gpa + 4096, sizeof(out), 1};
	cr_assert_eq(vufe_call_submit_sg(it_fe, Q, c, rd, n, wr, 1, 0), 0);
	cr_assert_eq(vufe_call_wait(it_fe, c, 20000), 0);
	r = vufe_call_result(c);
	if (r == 0) {
		cr_assert_eq(vufe_call_data_len(c), sizeof(out));
		memcpy(&out, vufe_call_data(c), sizeof(out));
		*written = out.size;
	}
	vufe_call_free(it_fe, c);
	return r;
}

ITEST(sizes, write_above_max_write_is_einval)
{
	struct stat st;
	uint32_t w = 0;

	memset(sz_zone, 'w', SZ_MAX_WRITE + 1);
	/* in.len is 32 bits: 80 + size at its largest */
	cr_assert_eq(sz_write(UINT32_MAX - 80, 0, &w), -EINVAL);
	cr_assert_eq(sz_write(SZ_MAX_WRITE + 1, 0, &w), -EINVAL);
	cr_assert_eq(stat(sz_path("huge.bin"), &st), 0);
	cr_assert_eq(st.st_size, (off_t)SZ_HUGE_FILE, "a refused WRITE changed the file");
	cr_assert_leq(st.st_blocks * 512, (blkcnt_t)SZ_PATTERN + (1 << 20),
		      "a refused WRITE allocated blocks");
	/* follow-up: max_write itself */
	cr_assert_eq(sz_write(SZ_MAX_WRITE, SZ_HUGE_FILE - SZ_MAX_WRITE, &w), 0);
	cr_assert_eq(w, SZ_MAX_WRITE);
}

#define SZ_BROKEN                                                                                  \
	"worker q2: queue broken: queue 2 broken: more requests in flight than the queue holds"

/*
 * A guest can offer a head again while it is still in flight: the avail ring
 * only holds indices. Once every descriptor of the queue is in flight (SETLKW
 * waiting for a lock held by another owner), one more chain is more than the
 * queue holds: the queue breaks (ERR), as QEMU's "Virtqueue size exceeded".
 */
ITEST(sizes, more_chains_in_flight_than_the_queue_size_break_the_queue)
{
	struct fuse_lk_in lk = {.fh = sz_huge_fh, .owner = 1, .lk = {.type = F_WRLCK, .end = 0}};
	struct pollfd p = {vufe_err_fd(it_fe, Q2), POLLIN, 0};
	struct vufe_call **calls = calloc(SZ_QUEUE, sizeof(*calls));
	uint16_t used_before;

	lk.lk.end = 100;
	cr_assert_eq(vufe_fuse(it_fe, Q2, FUSE_SETLK, sz_huge_node, &lk, sizeof(lk), NULL, 0, NULL,
			       0, NULL, 0),
		     0);
	used_before = vufe_used_idx(it_fe, Q2);
	lk.owner = 2;
	for (unsigned i = 0; i < SZ_QUEUE; i++) {
		calls[i] = vufe_call_new(it_fe, sizeof(lk), 1);
		cr_assert_not_null(calls[i]);
		cr_assert_eq(vufe_call_prep(it_fe, calls[i], FUSE_SETLKW, sz_huge_node, &lk,
					    sizeof(lk), NULL, 0, 16),
			     0);
		cr_assert_eq(vufe_call_submit(it_fe, Q2, calls[i], VUFE_FORCE_INDIRECT), 0, "%u",
			     i);
	}
	/* every one of them waits, in flight (the debug log names each) */
	for (int i = 0; i < 500 && sec_log_count("SETLKW unique") < SZ_QUEUE; i++)
		usleep(20000);
	cr_assert_eq(sec_log_count("SETLKW unique"), SZ_QUEUE);
	cr_assert_eq(poll(&p, 1, 0), 0, "ERR before the queue was over-full");
	cr_assert_eq(vufe_used_idx(it_fe, Q2), used_before);
	/* one more: the first head again */
	vufe_publish_raw(it_fe, Q2, (uint16_t)calls[0]->c_head);
	vufe_kick(it_fe, Q2);
	cr_assert_eq(poll(&p, 1, 5000), 1, "the ERR eventfd was not signalled");
	/* the worker signals ERR first, then tells the parent, which logs */
	for (int i = 0; i < 250 && sec_log_count(SZ_BROKEN) == 0; i++)
		usleep(20000);
	cr_assert_eq(sec_log_count(SZ_BROKEN), 1);
	cr_assert(hx_alive(&it_d), "the daemon died");
	/* follow-up on the other request queue */
	cr_assert_neq(it_lookup(it_fe, Q, "small.txt"), 0);
	free(calls); /* their guest buffers die with the front end */
}

/* Peak figures of a process from /proc/PID/status, in bytes. */
static void sz_vm(pid_t pid, uint64_t *hwm, uint64_t *peak)
{
	char path[64], line[256];
	unsigned long long kb;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	*hwm = *peak = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
			*hwm = kb << 10;
		else if (sscanf(line, "VmPeak: %llu kB", &kb) == 1)
			*peak = kb << 10;
	}
	fclose(f);
	cr_assert(*hwm && *peak, "no VmHWM/VmPeak in %s", path);
}

/* One queue-full of max-size requests, all in flight at once, all checked. */
static void sz_round(uint64_t dir_fh)
{
	static struct vufe_call *calls[SZ_QUEUE];
	struct fuse_read_in rd = {.fh = sz_huge_fh, .size = UINT32_MAX};
	struct fuse_read_in dr = {.fh = dir_fh, .size = UINT32_MAX};
	struct fuse_getxattr_in gx = {.size = UINT32_MAX};
	unsigned n = SZ_QUEUE - 2; /* the ring also carries the test's own follow-ups */

	for (unsigned i = 0; i < n; i++) {
		switch (i % 8) {
		case 0:
		case 1:
		case 2:
			rd.offset = (i * 4096ull) % SZ_PATTERN;
			calls[i] = sz_submit_huge(Q, FUSE_READ, sz_huge_node, &rd, sizeof(rd), NULL,
						  0, VUFE_NO_KICK);
			break;
		case 3:
		case 4:
			calls[i] = sz_submit_huge(Q, FUSE_READDIR, sz_dir_node, &dr, sizeof(dr),
						  NULL, 0, VUFE_NO_KICK);
			break;
		case 5:
			calls[i] =
			    sz_submit_huge(Q, i % 64 == 5 ? FUSE_READDIRPLUS : FUSE_READDIR,
					   sz_dir_node, &dr, sizeof(dr), NULL, 0, VUFE_NO_KICK);
			break;
		case 6:
			calls[i] = sz_submit_huge(Q, FUSE_GETXATTR, sz_small_node, &gx, sizeof(gx),
						  "user.sizes", 11, VUFE_NO_KICK);
			break;
		default:
			calls[i] = sz_submit_huge(Q, FUSE_LISTXATTR, sz_small_node, &gx, sizeof(gx),
						  NULL, 0, VUFE_NO_KICK);
			break;
		}
	}
	vufe_kick(it_fe, Q);
	for (unsigned i = 0; i < n; i++) {
		uint32_t op;

		cr_assert_eq(vufe_call_wait(it_fe, calls[i], 60000), 0, "request %u: no reply", i);
		cr_assert_eq(vufe_call_result(calls[i]), 0, "request %u failed: %d", i,
			     vufe_call_result(calls[i]));
		op = ((struct fuse_in_header *)calls[i]->c_in)->opcode;
		if (op == FUSE_READ)
			cr_assert_eq(vufe_call_data_len(calls[i]), sz_cap);
		else
			cr_assert_leq(vufe_call_data_len(calls[i]), sz_cap);
		vufe_call_free(it_fe, calls[i]);
	}
}

/* Every kind once at an ordinary size, so that pool threads, malloc arenas,
 * descriptors and nodes exist before the baseline is taken. */
static void sz_warm_up(uint64_t dir_fh)
{
	static uint8_t buf[1u << 16];
	struct fuse_getxattr_in gx = {.size = sizeof(buf)};
	uint32_t len;

	cr_assert_eq(
	    vufe_fuse_read(it_fe, Q, sz_huge_node, sz_huge_fh, 0, sizeof(buf), buf, &len, 0), 0);
	cr_assert_eq(vufe_fuse_readdir(it_fe, Q, FUSE_READDIRPLUS, sz_dir_node, dir_fh, 0,
				       sizeof(buf), buf, &len),
		     0);
	cr_assert_eq(
	    vufe_fuse_readdir(it_fe, Q, FUSE_READDIR, sz_dir_node, dir_fh, 0, 4096, buf, &len), 0);
	cr_assert_eq(vufe_fuse(it_fe, Q, FUSE_GETXATTR, sz_small_node, &gx, sizeof(gx),
			       "user.sizes", 11, buf, sizeof(buf), &len, 0),
		     0);
	cr_assert_eq(vufe_fuse(it_fe, Q, FUSE_LISTXATTR, sz_small_node, &gx, sizeof(gx), NULL, 0,
			       buf, sizeof(buf), &len, 0),
		     0);
}

ITEST(sizes, queue_full_of_max_size_requests_keeps_worker_memory_bounded)
{
	uint64_t hwm0[8], peak0[8], hwm, peak, fh;
	pid_t kids[8];
	int nk;

	sz_make_bigdir();
	cr_assert_eq(vufe_fuse_opendir(it_fe, Q, sz_dir_node, &fh), 0);
	sz_warm_up(fh);
	nk = hx_children(it_d.hd_pid, kids, 8);
	cr_assert_eq(nk, 3, "expected 3 workers, found %d", nk);
	for (int k = 0; k < nk; k++)
		sz_vm(kids[k], &hwm0[k], &peak0[k]);
	for (int round = 0; round < SZ_ROUNDS; round++)
		sz_round(fh);
	for (int k = 0; k < nk; k++) {
		sz_vm(kids[k], &hwm, &peak);
		cr_log_info("worker pid %d: VmHWM %llu -> %llu KiB, VmPeak %llu -> %llu KiB",
			    (int)kids[k], (unsigned long long)hwm0[k] >> 10,
			    (unsigned long long)hwm >> 10, (unsigned long long)peak0[k] >> 10,
			    (unsigned long long)peak >> 10);
		cr_assert_lt(hwm - hwm0[k], SZ_HWM_BOUND, "worker %d: VmHWM grew by %llu KiB",
			     (int)kids[k], (unsigned long long)(hwm - hwm0[k]) >> 10);
		cr_assert_lt(peak - peak0[k], SZ_PEAK_BOUND, "worker %d: VmPeak grew by %llu KiB",
			     (int)kids[k], (unsigned long long)(peak - peak0[k]) >> 10);
	}
	/* follow-up */
	cr_assert_neq(it_lookup(it_fe, Q, "small.txt"), 0);
}
