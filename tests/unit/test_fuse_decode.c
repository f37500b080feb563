/*
 * test_fuse_decode.c - the FUSE codec (worker/fuse_codec.c): requests split
 * across descriptors at every offset decode to the same values, malformed
 * requests are refused with the documented errno, and the reply writer
 * never writes past the writable space.
 * Runs in: the test process only (no loop, no back end).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "fuse_dispatch.h"

#define IN_HDR sizeof(struct fuse_in_header)

/* A request image: header + args + trailing bytes. */
struct req {
	uint8_t b[2048];
	size_t len;
};

static void req_init(struct req *q, uint32_t opcode, uint64_t nodeid)
{
	struct fuse_in_header h = {
	    .opcode = opcode,
	    .unique = 0x1122334455667788ull,
	    .nodeid = nodeid,
	    .uid = 1000,
	    .gid = 100,
	    .pid = 4242,
	};

	memset(q, 0, sizeof(*q));
	memcpy(q->b, &h, sizeof(h));
	q->len = sizeof(h);
}

static void req_add(struct req *q, const void *p, size_t n)
{
	cr_assert_leq(q->len + n, sizeof(q->b));
	memcpy(q->b + q->len, p, n);
	q->len += n;
}

/* Set in.len to the bytes so far (or an explicit value). */
static void req_seal(struct req *q, uint32_t len)
{
	memcpy(q->b, &len, sizeof(len));
}

static int decode_flat(const struct req *q, size_t rd_len, struct fuse_in *in)
{
	struct iovec iov = {(void *)q->b, rd_len};

	return fuse_decode(&iov, 1, rd_len, in);
}

static void assert_same_decoding(const struct fuse_in *a, const struct fuse_in *b)
{
	cr_assert_eq(memcmp(&a->h, &b->h, sizeof(a->h)), 0, "in_header differs");
	cr_assert_eq(memcmp(&a->a, &b->a, sizeof(a->a)), 0, "arguments differ");
	cr_assert_eq(a->info, b->info);
	cr_assert_eq(a->var_off, b->var_off);
	cr_assert_eq(a->var_len, b->var_len);
	cr_assert_eq(a->namelen, b->namelen);
	cr_assert_str_eq(a->name, b->name);
	cr_assert_eq(a->namelen2, b->namelen2);
	cr_assert_str_eq(a->name2, b->name2);
}

/*
 * Decode q split into two and three iovecs at every pair of offsets and
 * compare with the single-iovec decoding (itself checked by the caller).
 */
static void check_every_split(const struct req *q)
{
	struct fuse_in ref, got;
	struct iovec iov[3];
	size_t n = q->len;

	cr_assert_eq(decode_flat(q, n, &ref), 0);
	for (size_t i = 0; i <= n; i++) {
		iov[0] = (struct iovec){(void *)q->b, i};
		iov[1] = (struct iovec){(void *)(q->b + i), n - i};
		memset(&got, 0xa5, sizeof(got));
		cr_assert_eq(fuse_decode(iov, 2, n, &got), 0, "split at %zu", i);
		assert_same_decoding(&ref, &got);
		for (size_t j = i; j <= n; j++) {
			iov[1] = (struct iovec){(void *)(q->b + i), j - i};
			iov[2] = (struct iovec){(void *)(q->b + j), n - j};
			memset(&got, 0x5a, sizeof(got));
			cr_assert_eq(fuse_decode(iov, 3, n, &got), 0, "split at %zu,%zu", i, j);
			assert_same_decoding(&ref, &got);
		}
	}
}

Test(fuse_decode, in_header_fields_survive_every_split)
{
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_GETATTR, 77);
	struct fuse_getattr_in ga = {.getattr_flags = FUSE_GETATTR_FH, .fh = 0xabcdef};
	req_add(&q, &ga, sizeof(ga));
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(in.h.len, IN_HDR + sizeof(ga));
	cr_assert_eq(in.h.opcode, FUSE_GETATTR);
	cr_assert_eq(in.h.unique, 0x1122334455667788ull);
	cr_assert_eq(in.h.nodeid, 77);
	cr_assert_eq(in.h.uid, 1000);
	cr_assert_eq(in.h.gid, 100);
	cr_assert_eq(in.h.pid, 4242);
	cr_assert_eq(in.a.getattr.getattr_flags, FUSE_GETATTR_FH);
	cr_assert_eq(in.a.getattr.fh, 0xabcdef);
	check_every_split(&q);
}

Test(fuse_decode, init_in_survives_every_split)
{
	struct fuse_init_in ii = {
	    .major = 7, .minor = 38, .max_readahead = 0x20000, .flags = 0x7bfffffb, .flags2 = 0xb};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_INIT, 0);
	req_add(&q, &ii, sizeof(ii));
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(q.len, 104);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(in.a.init.major, 7);
	cr_assert_eq(in.a.init.minor, 38);
	cr_assert_eq(in.a.init.max_readahead, 0x20000);
	cr_assert_eq(in.a.init.flags, 0x7bfffffb);
	cr_assert_eq(in.a.init.flags2, 0xb);
	check_every_split(&q);
}

Test(fuse_decode, short_init_from_old_kernel_is_zero_extended)
{
	struct fuse_init_in ii = {.major = 7, .minor = 31, .max_readahead = 4096, .flags = 1};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_INIT, 0);
	req_add(&q, &ii, 16);
	req_seal(&q, (uint32_t)q.len);
	memset(q.b + q.len, 0xff, 64); /* bytes beyond in.len must not be read */
	cr_assert_eq(decode_flat(&q, q.len + 64, &in), 0);
	cr_assert_eq(in.a.init.minor, 31);
	cr_assert_eq(in.a.init.flags, 1);
	cr_assert_eq(in.a.init.flags2, 0);
}

Test(fuse_decode, read_in_survives_every_split)
{
	struct fuse_read_in ri = {.fh = 9,
				  .offset = 1ull << 40,
				  .size = 131072,
				  .read_flags = 2,
				  .lock_owner = 0x55,
				  .flags = 0x8000};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_READ, 12);
	req_add(&q, &ri, sizeof(ri));
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(in.a.read.fh, 9);
	cr_assert_eq(in.a.read.offset, 1ull << 40);
	cr_assert_eq(in.a.read.size, 131072);
	cr_assert_eq(in.a.read.lock_owner, 0x55);
	check_every_split(&q);
}

Test(fuse_decode, open_in_survives_every_split)
{
	struct fuse_open_in oi = {.flags = 0x8000, .open_flags = 1};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_OPEN, 5);
	req_add(&q, &oi, sizeof(oi));
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(in.a.open.flags, 0x8000);
	cr_assert_eq(in.a.open.open_flags, 1);
	check_every_split(&q);
}

Test(fuse_decode, forget_in_survives_every_split)
{
	struct fuse_forget_in fi = {.nlookup = 0x100000003ull};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_FORGET, 0x300005);
	req_add(&q, &fi, sizeof(fi));
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(in.a.forget.nlookup, 0x100000003ull);
	cr_assert(in.info->oi_flags & FUSE_OP_NOREPLY);
	check_every_split(&q);
}

Test(fuse_decode, batch_forget_entries_survive_every_split)
{
	struct fuse_batch_forget_in bf = {.count = 3};
	struct fuse_forget_one one[3] = {{10, 1}, {0x200011, 7}, {1ull << 50, 2}};
	struct fuse_forget_one got;
	struct iovec iov[2];
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_BATCH_FORGET, 0);
	req_add(&q, &bf, sizeof(bf));
	req_add(&q, one, sizeof(one));
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(in.a.batch_forget.count, 3);
	check_every_split(&q);
	for (size_t i = 0; i <= q.len; i += 3) {
		iov[0] = (struct iovec){q.b, i};
		iov[1] = (struct iovec){q.b + i, q.len - i};
		cr_assert_eq(fuse_decode(iov, 2, q.len, &in), 0);
		for (uint32_t k = 0; k < 3; k++) {
			fuse_decode_forget_one(iov, 2, &in, k, &got);
			cr_assert_eq(got.nodeid, one[k].nodeid, "entry %u split %zu", k, i);
			cr_assert_eq(got.nlookup, one[k].nlookup);
		}
	}
}

Test(fuse_decode, release_in_survives_every_split)
{
	struct fuse_release_in ri = {
	    .fh = 0x10001, .flags = 2, .release_flags = 1, .lock_owner = 0xfeed};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_RELEASE, 3);
	req_add(&q, &ri, sizeof(ri));
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(in.a.release.fh, 0x10001);
	cr_assert_eq(in.a.release.release_flags, 1);
	cr_assert_eq(in.a.release.lock_owner, 0xfeed);
	check_every_split(&q);
}

Test(fuse_decode, name_survives_every_split)
{
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_LOOKUP, 1);
	req_add(&q, "hello.txt", 10);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_str_eq(in.name, "hello.txt");
	cr_assert_eq(in.namelen, 9);
	check_every_split(&q);
}

Test(fuse_decode, decoded_request_is_a_private_copy)
{
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_LOOKUP, 1);
	req_add(&q, "abc", 4);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	/* The guest rewrites the request after we looked: our copy stands. */
	memset(q.b, '/', q.len);
	cr_assert_str_eq(in.name, "abc");
	cr_assert_eq(in.h.opcode, FUSE_LOOKUP);
	cr_assert_eq(in.h.nodeid, 1);
}

Test(fuse_decode, rejects_len_larger_than_readable_bytes)
{
	struct fuse_read_in ri = {0};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_READ, 2);
	req_add(&q, &ri, sizeof(ri));
	req_seal(&q, (uint32_t)q.len + 1);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EIO);
	/* The header is still known, so the error can be answered. */
	cr_assert_eq(in.h.unique, 0x1122334455667788ull);
	cr_assert_eq(in.h.opcode, FUSE_READ);
}

Test(fuse_decode, rejects_len_smaller_than_header_plus_arguments)
{
	struct fuse_read_in ri = {0};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_READ, 2);
	req_add(&q, &ri, sizeof(ri));
	req_seal(&q, (uint32_t)(IN_HDR + sizeof(ri) - 1));
	cr_assert_eq(decode_flat(&q, q.len, &in), -EIO);
	req_seal(&q, (uint32_t)IN_HDR - 1);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EIO);
}

Test(fuse_decode, rejects_stream_shorter_than_in_header)
{
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_GETATTR, 1);
	req_seal(&q, (uint32_t)IN_HDR);
	cr_assert_eq(decode_flat(&q, IN_HDR - 1, &in), -EPROTO);
	cr_assert_eq(in.h.unique, 0);
	cr_assert_null(in.info);
}

Test(fuse_decode, rejects_extensions_beyond_len)
{
	struct fuse_getattr_in ga = {0};
	struct fuse_in in;
	struct req q;
	uint16_t ext = 1;

	req_init(&q, FUSE_GETATTR, 1);
	req_add(&q, &ga, sizeof(ga));
	req_seal(&q, (uint32_t)q.len);
	memcpy(q.b + offsetof(struct fuse_in_header, total_extlen), &ext, sizeof(ext));
	cr_assert_eq(decode_flat(&q, q.len, &in), -EIO);
	/* With an 8-byte record (of a type we skip) it fits and is fine. */
	req_add(&q, &(struct fuse_ext_header){.size = 8, .type = 99}, 8);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(in.var_len, 0);
	cr_assert_not(in.has_supp_gid);
}

/* MKDIR "d" with extension records after the name: total_extlen 8-byte
 * units, each record led by fuse_ext_header {size, type}. */
static int decode_mkdir_ext(const void *ext, size_t extlen, struct fuse_in *in)
{
	struct fuse_mkdir_in mi = {.mode = 0755};
	struct req q;
	uint16_t units = (uint16_t)(extlen / 8);

	req_init(&q, FUSE_MKDIR, 1);
	req_add(&q, &mi, sizeof(mi));
	req_add(&q, "d", 2);
	req_add(&q, ext, extlen);
	req_seal(&q, (uint32_t)q.len);
	memcpy(q.b + offsetof(struct fuse_in_header, total_extlen), &units, sizeof(units));
	return decode_flat(&q, q.len, in);
}

Test(fuse_decode, supplementary_group_extension_is_read_and_checked)
{
	struct fuse_in in;
	uint32_t good[4] = {16, 32, 1, 4321};		  /* size, FUSE_EXT_GROUPS, nr, gid */
	uint32_t skip_then_good[6] = {8, 7, 16, 32, 1, 77}; /* a secctx-type record first */
	uint32_t bad[][4] = {
	    {0, 32, 1, 1},  /* size 0 */
	    {12, 32, 1, 1}, /* not a multiple of 8 */
	    {24, 32, 1, 1}, /* longer than the area */
	    {16, 32, 0, 1}, /* no group */
	    {16, 32, 2, 1}, /* more groups than the record holds */
	    {8, 32, 1, 1},  /* a groups record without room for nr_groups */
	};

	cr_assert_eq(decode_mkdir_ext(good, sizeof(good), &in), 0);
	cr_assert(in.has_supp_gid);
	cr_assert_eq(in.supp_gid, 4321);
	cr_assert_str_eq(in.name, "d");
	cr_assert_eq(in.var_len, 2, "the name only, not the extension");
	cr_assert_eq(decode_mkdir_ext(skip_then_good, sizeof(skip_then_good), &in), 0);
	cr_assert_eq(in.supp_gid, 77);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(decode_mkdir_ext(bad[i], sizeof(bad[i]), &in), -EIO, "case %zu", i);
}

Test(fuse_decode, rejects_unterminated_name)
{
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_LOOKUP, 1);
	req_add(&q, "abc", 3);
	req_seal(&q, (uint32_t)q.len);
	/* The NUL exists in the stream, but after in.len: it does not count. */
	q.b[q.len] = '\0';
	cr_assert_eq(decode_flat(&q, q.len + 1, &in), -EINVAL);
}

Test(fuse_decode, rejects_empty_name)
{
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_LOOKUP, 1);
	req_add(&q, "", 1);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL);
}

Test(fuse_decode, rejects_slash_in_name)
{
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_LOOKUP, 1);
	req_add(&q, "a/b", 4);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL);
	req_init(&q, FUSE_LOOKUP, 1);
	req_add(&q, "/", 2);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL);
}

Test(fuse_decode, rejects_256_byte_name_accepts_255)
{
	char name[257];
	struct fuse_in in;
	struct req q;

	memset(name, 'x', sizeof(name));
	name[256] = '\0';
	req_init(&q, FUSE_LOOKUP, 1);
	req_add(&q, name, 257);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), -ENAMETOOLONG);

	name[255] = '\0';
	req_init(&q, FUSE_LOOKUP, 1);
	req_add(&q, name, 256);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(in.namelen, 255);
	cr_assert_eq(strlen(in.name), 255);
}

Test(fuse_decode, dot_names_are_left_to_the_operation)
{
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_LOOKUP, 1);
	req_add(&q, "..", 3);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_str_eq(in.name, "..");
}

Test(fuse_decode, rejects_batch_forget_count_exceeding_payload)
{
	struct fuse_batch_forget_in bf = {.count = 3};
	struct fuse_forget_one one[2] = {{10, 1}, {11, 1}};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_BATCH_FORGET, 0);
	req_add(&q, &bf, sizeof(bf));
	req_add(&q, one, sizeof(one));
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EIO);

	/* A count whose byte size overflows 32 bits is refused too. */
	bf.count = 0x10000001u;
	memcpy(q.b + IN_HDR, &bf, sizeof(bf));
	cr_assert_eq(decode_flat(&q, q.len, &in), -EIO);

	bf.count = 2;
	memcpy(q.b + IN_HDR, &bf, sizeof(bf));
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
}

Test(fuse_decode, unknown_opcode_decodes_without_rules)
{
	struct fuse_in in;
	struct req q;

	req_init(&q, 4000, 1);
	req_add(&q, "junk", 4);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_null(in.info);
	cr_assert_null(fuse_op_lookup(4000));
	cr_assert_null(fuse_op_lookup(7)); /* a hole in the opcode numbering */
	cr_assert_not_null(fuse_op_lookup(FUSE_TMPFILE));
}

/* ---- replies ---- */

#define CANARY 0xcc

Test(fuse_reply, reply_lands_intact_across_every_split)
{
	uint8_t payload[40], buf[16 + 40 + 8], expect[16 + 40];
	struct fuse_out_header oh = {.len = 56, .error = 0, .unique = 42};
	struct iovec iov[2];
	uint32_t used;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	memcpy(expect, &oh, sizeof(oh));
	memcpy(expect + 16, payload, sizeof(payload));
	for (size_t i = 0; i <= 56; i++) {
		memset(buf, CANARY, sizeof(buf));
		iov[0] = (struct iovec){buf, i};
		iov[1] = (struct iovec){buf + i, 56 - i};
		cr_assert_eq(fuse_reply_write(iov, 2, 56, 42, 0, payload, sizeof(payload), &used),
			     0);
		cr_assert_eq(used, 56);
		cr_assert_eq(memcmp(buf, expect, 56), 0, "split at %zu", i);
		for (size_t k = 56; k < sizeof(buf); k++)
			cr_assert_eq(buf[k], CANARY);
	}
}

Test(fuse_reply, too_small_writable_space_gets_eio_and_nothing_past_it)
{
	uint8_t payload[128] = {1}, buf[256];
	struct fuse_out_header oh;
	struct iovec iov[2] = {{buf, 16}, {buf + 16, 100}};
	uint32_t used;

	memset(buf, CANARY, sizeof(buf));
	cr_assert_eq(fuse_reply_write(iov, 2, 116, 7, 0, payload, sizeof(payload), &used),
		     -EMSGSIZE);
	cr_assert_eq(used, 16);
	memcpy(&oh, buf, sizeof(oh));
	cr_assert_eq(oh.len, 16);
	cr_assert_eq(oh.error, -EIO);
	cr_assert_eq(oh.unique, 7);
	for (size_t k = 16; k < sizeof(buf); k++)
		cr_assert_eq(buf[k], CANARY, "byte %zu written", k);
}

Test(fuse_reply, writable_space_below_out_header_writes_nothing)
{
	uint8_t buf[64];
	struct iovec iov[2] = {{buf, 8}, {buf + 8, 7}};
	uint32_t used = 99;

	memset(buf, CANARY, sizeof(buf));
	cr_assert_eq(fuse_reply_write(iov, 2, 15, 1, -ENOENT, NULL, 0, &used), -ENOBUFS);
	cr_assert_eq(used, 0);
	cr_assert_eq(fuse_reply_header(iov, 2, 15, 1, 0, &used), -ENOBUFS);
	cr_assert_eq(used, 0);
	for (size_t k = 0; k < sizeof(buf); k++)
		cr_assert_eq(buf[k], CANARY);
}

Test(fuse_reply, error_reply_is_header_only)
{
	uint8_t buf[64], payload[8] = {9, 9, 9, 9, 9, 9, 9, 9};
	struct iovec iov = {buf, sizeof(buf)};
	struct fuse_out_header oh;
	uint32_t used;

	memset(buf, CANARY, sizeof(buf));
	cr_assert_eq(fuse_reply_write(&iov, 1, sizeof(buf), 5, -ENOENT, payload, 8, &used), 0);
	cr_assert_eq(used, 16);
	memcpy(&oh, buf, sizeof(oh));
	cr_assert_eq(oh.len, 16);
	cr_assert_eq(oh.error, -ENOENT);
	cr_assert_eq(buf[16], CANARY);
}

Test(fuse_reply, data_header_counts_exact_bytes_and_refuses_overflow)
{
	uint8_t buf[16 + 4096];
	struct iovec iov[2] = {{buf, 16}, {buf + 16, 4096}};
	struct fuse_out_header oh;
	uint32_t used;

	cr_assert_eq(fuse_reply_header(iov, 2, sizeof(buf), 3, 1000, &used), 0);
	memcpy(&oh, buf, sizeof(oh));
	cr_assert_eq(oh.len, 1016);
	cr_assert_eq(used, 1016);
	cr_assert_eq(fuse_reply_header(iov, 2, sizeof(buf), 3, 4097, &used), -EMSGSIZE);
	memcpy(&oh, buf, sizeof(oh));
	cr_assert_eq(oh.error, -EIO);
	cr_assert_eq(used, 16);
}

/* ---- the write side's structures ---- */

Test(fuse_decode, setattr_in_survives_every_split)
{
	struct fuse_setattr_in sa = {.valid = FATTR_MODE | FATTR_SIZE | FATTR_MTIME,
				     .fh = 7,
				     .size = 0x123456789ull,
				     .mtime = 1700000000,
				     .mtimensec = 999,
				     .mode = 0100644,
				     .uid = 5,
				     .gid = 6};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_SETATTR, 9);
	req_add(&q, &sa, sizeof(sa));
	req_seal(&q, (uint32_t)q.len);
	check_every_split(&q);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(memcmp(&in.a.setattr, &sa, sizeof(sa)), 0);
}

Test(fuse_decode, create_in_and_name_survive_every_split)
{
	struct fuse_create_in ci = {.flags = 0101, .mode = 0100600, .umask = 022, .open_flags = 1};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_CREATE, 1);
	req_add(&q, &ci, sizeof(ci));
	req_add(&q, "newfile", 8);
	req_seal(&q, (uint32_t)q.len);
	check_every_split(&q);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(memcmp(&in.a.create, &ci, sizeof(ci)), 0);
	cr_assert_str_eq(in.name, "newfile");
}

Test(fuse_decode, rename2_names_survive_every_split)
{
	struct fuse_rename2_in ri = {.newdir = 44, .flags = RENAME_EXCHANGE};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_RENAME2, 3);
	req_add(&q, &ri, sizeof(ri));
	req_add(&q, "old", 4);
	req_add(&q, "newer", 6);
	req_seal(&q, (uint32_t)q.len);
	check_every_split(&q);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(in.a.rename2.newdir, 44);
	cr_assert_eq(in.a.rename2.flags, RENAME_EXCHANGE);
	cr_assert_str_eq(in.name, "old");
	cr_assert_str_eq(in.name2, "newer");
	cr_assert_eq(in.namelen2, 5);
}

Test(fuse_decode, symlink_target_may_hold_slashes_and_survives_every_split)
{
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_SYMLINK, 1);
	req_add(&q, "sl", 3);
	req_add(&q, "../a/b", 7);
	req_seal(&q, (uint32_t)q.len);
	check_every_split(&q);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_str_eq(in.name, "sl");
	cr_assert_str_eq(in.name2, "../a/b");
}

Test(fuse_decode, mknod_link_fallocate_lseek_copy_survive_every_split)
{
	struct fuse_mknod_in mi = {.mode = 010644, .rdev = 0x0801, .umask = 2};
	struct fuse_link_in li = {.oldnodeid = 0x77};
	struct fuse_fallocate_in fi = {.fh = 3, .offset = 4096, .length = 1 << 20, .mode = 3};
	struct fuse_lseek_in si = {.fh = 3, .offset = 11, .whence = SEEK_DATA};
	struct fuse_copy_file_range_in ci = {
	    .fh_in = 1, .off_in = 2, .nodeid_out = 3, .fh_out = 4, .off_out = 5, .len = 6};
	struct fuse_write_in wi = {.fh = 9, .offset = 100, .size = 5, .write_flags = 4};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_MKNOD, 1);
	req_add(&q, &mi, sizeof(mi));
	req_add(&q, "dev", 4);
	req_seal(&q, (uint32_t)q.len);
	check_every_split(&q);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(in.a.mknod.rdev, 0x0801);

	req_init(&q, FUSE_LINK, 1);
	req_add(&q, &li, sizeof(li));
	req_add(&q, "hard", 5);
	req_seal(&q, (uint32_t)q.len);
	check_every_split(&q);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(in.a.link.oldnodeid, 0x77);

	req_init(&q, FUSE_FALLOCATE, 2);
	req_add(&q, &fi, sizeof(fi));
	req_seal(&q, (uint32_t)q.len);
	check_every_split(&q);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(memcmp(&in.a.fallocate, &fi, sizeof(fi)), 0);

	req_init(&q, FUSE_LSEEK, 2);
	req_add(&q, &si, sizeof(si));
	req_seal(&q, (uint32_t)q.len);
	check_every_split(&q);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(memcmp(&in.a.lseek, &si, sizeof(si)), 0);

	req_init(&q, FUSE_COPY_FILE_RANGE, 2);
	req_add(&q, &ci, sizeof(ci));
	req_seal(&q, (uint32_t)q.len);
	check_every_split(&q);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(memcmp(&in.a.copy, &ci, sizeof(ci)), 0);

	req_init(&q, FUSE_WRITE, 2);
	req_add(&q, &wi, sizeof(wi));
	req_add(&q, "hello", 5);
	req_seal(&q, (uint32_t)q.len);
	check_every_split(&q);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(memcmp(&in.a.write, &wi, sizeof(wi)), 0);
	cr_assert_eq(in.var_off, 80);
	cr_assert_eq(in.var_len, 5);
}

Test(fuse_decode, write_len_must_be_80_plus_size)
{
	struct fuse_write_in wi = {.size = 6};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_WRITE, 2);
	req_add(&q, &wi, sizeof(wi));
	req_add(&q, "hello", 5);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL, "size 6, 5 bytes follow");
	wi.size = 4;
	memcpy(q.b + IN_HDR, &wi, sizeof(wi));
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL, "size 4, 5 bytes follow");
	wi.size = 5;
	memcpy(q.b + IN_HDR, &wi, sizeof(wi));
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	/* size within in.len but beyond the readable bytes */
	cr_assert_eq(decode_flat(&q, q.len - 1, &in), -EIO);
}

/* The data itself is never read by the decoder: only its length counts. */
static int decode_write(struct req *q, uint32_t size, const uint8_t *data)
{
	struct fuse_write_in wi = {.size = size};
	struct fuse_in in;
	struct iovec iov[2];
	uint64_t total = IN_HDR + sizeof(wi) + (uint64_t)size;
	int r;

	req_init(q, FUSE_WRITE, 2);
	req_add(q, &wi, sizeof(wi));
	req_seal(q, (uint32_t)total);
	iov[0] = (struct iovec){q->b, q->len};
	iov[1] = (struct iovec){(void *)data, size};
	r = fuse_decode(iov, 2, total, &in);
	if (r == 0)
		cr_assert_eq(in.var_len, size);
	return r;
}

Test(fuse_decode, write_of_more_than_max_write_is_einval)
{
	uint8_t *data = calloc(1, FUSE_MAX_WRITE + 1);
	struct req q;

	cr_assert_not_null(data);
	cr_assert_eq(decode_write(&q, FUSE_MAX_WRITE, data), 0);
	cr_assert_eq(decode_write(&q, FUSE_MAX_WRITE + 1, data), -EINVAL);
	/* the largest in.len (UINT32_MAX = 80 + size) */
	cr_assert_eq(decode_write(&q, UINT32_MAX - 80, data), -EINVAL);
	free(data);
}

Test(fuse_limits, max_payload_is_max_pages_of_4k_within_the_cap)
{
	cr_assert_eq(fuse_max_payload(256), 1u << 20);
	cr_assert_eq(fuse_max_payload(124), 124u * 4096);
	cr_assert_eq(fuse_max_payload(1), 4096);
	/* before INIT, or a zero from shared memory: one page, never nothing */
	cr_assert_eq(fuse_max_payload(0), 4096);
	/* the node table is shared with other workers: never above the cap */
	cr_assert_eq(fuse_max_payload(FUSE_MAX_PAGES_CAP + 1), FUSE_MAX_PAGES_CAP * 4096);
	cr_assert_eq(fuse_max_payload(UINT32_MAX), FUSE_MAX_PAGES_CAP * 4096);
}

Test(fuse_limits, reply_size_is_clamped_to_room_and_cap)
{
	/* the largest request: size and writable room both near 4 GiB */
	cr_assert_eq(fuse_clamp_reply(UINT32_MAX, UINT32_MAX - 16, 1u << 20), 1u << 20);
	cr_assert_eq(fuse_clamp_reply(UINT32_MAX, 1ull << 40, XATTR_SIZE_MAX), XATTR_SIZE_MAX);
	cr_assert_eq(fuse_clamp_reply(4096, 1000, 1u << 20), 1000);
	cr_assert_eq(fuse_clamp_reply(100, 1u << 20, 1u << 20), 100);
	cr_assert_eq(fuse_clamp_reply(4096, 0, 1u << 20), 0);
}

Test(fuse_decode, created_names_refuse_dots_and_second_names_are_checked)
{
	struct fuse_mkdir_in mi = {.mode = 0755};
	struct fuse_rename_in ri = {.newdir = 1};
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_MKDIR, 1);
	req_add(&q, &mi, sizeof(mi));
	req_add(&q, "..", 3);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL);

	req_init(&q, FUSE_RENAME, 1);
	req_add(&q, &ri, sizeof(ri));
	req_add(&q, "a", 2);
	req_add(&q, ".", 2);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL, "new name '.'");

	req_init(&q, FUSE_RENAME, 1);
	req_add(&q, &ri, sizeof(ri));
	req_add(&q, "a", 2);
	req_add(&q, "b/c", 4);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL, "slash in the new name");

	req_init(&q, FUSE_RENAME, 1);
	req_add(&q, &ri, sizeof(ri));
	req_add(&q, "a", 2);
	req_add(&q, "bcd", 3); /* no NUL within in.len */
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL, "unterminated new name");

	req_init(&q, FUSE_SYMLINK, 1);
	req_add(&q, "sl", 3);
	req_add(&q, "", 1);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL, "empty target");
}

Test(fuse_decode, symlink_target_longer_than_path_max_is_refused)
{
	static char target[PATH_MAX + 1];
	struct fuse_in in;
	struct req q;

	memset(target, 't', PATH_MAX);
	req_init(&q, FUSE_SYMLINK, 1);
	req_add(&q, "sl", 3);
	/* the image holds 2048 bytes: build a large one on the heap */
	struct {
		uint8_t b[IN_HDR + 3 + PATH_MAX + 1];
	} *big = calloc(1, sizeof(*big));
	memcpy(big->b, q.b, q.len);
	memcpy(big->b + q.len, target, PATH_MAX + 1);
	uint32_t len = (uint32_t)sizeof(big->b);
	memcpy(big->b, &len, sizeof(len));
	struct iovec iov = {big->b, len};
	cr_assert_eq(fuse_decode(&iov, 1, len, &in), -ENAMETOOLONG);
	/* PATH_MAX - 1 bytes and its NUL fit */
	big->b[IN_HDR + 3 + PATH_MAX - 1] = '\0';
	len = (uint32_t)(IN_HDR + 3 + PATH_MAX);
	memcpy(big->b, &len, sizeof(len));
	iov.iov_len = len;
	cr_assert_eq(fuse_decode(&iov, 1, len, &in), 0);
	cr_assert_eq(in.namelen2, PATH_MAX - 1);
	free(big);
}

/* ---- locks and extended attributes ---- */

static void req_lk(struct req *q, uint32_t op, uint32_t type, uint64_t start, uint64_t end)
{
	struct fuse_lk_in li = {.fh = 0x20002,
				.owner = 0xabcdef0123456789ull,
				.lk = {.start = start, .end = end, .type = type, .pid = 99},
				.lk_flags = FUSE_LK_FLOCK};

	req_init(q, op, 5);
	req_add(q, &li, sizeof(li));
	req_seal(q, (uint32_t)q->len);
}

Test(fuse_decode, lk_in_survives_every_split)
{
	struct fuse_in in;
	struct req q;

	req_lk(&q, FUSE_SETLKW, F_WRLCK, 100, INT64_MAX);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	cr_assert_eq(in.a.lk.fh, 0x20002);
	cr_assert_eq(in.a.lk.owner, 0xabcdef0123456789ull);
	cr_assert_eq(in.a.lk.lk.start, 100);
	cr_assert_eq(in.a.lk.lk.end, (uint64_t)INT64_MAX);
	cr_assert_eq(in.a.lk.lk.type, F_WRLCK);
	cr_assert_eq(in.a.lk.lk_flags, FUSE_LK_FLOCK);
	check_every_split(&q);
}

Test(fuse_decode, lk_rejects_inverted_or_out_of_range_and_bad_types)
{
	struct fuse_in in;
	struct req q;

	req_lk(&q, FUSE_SETLK, F_RDLCK, 10, 9);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL);
	req_lk(&q, FUSE_SETLK, F_RDLCK, 0, (uint64_t)INT64_MAX + 1);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL);
	req_lk(&q, FUSE_SETLK, 3, 0, 9);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL);
	/* unlocking is a SETLK type, not a GETLK question */
	req_lk(&q, FUSE_SETLK, F_UNLCK, 0, 9);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
	req_lk(&q, FUSE_GETLK, F_UNLCK, 0, 9);
	cr_assert_eq(decode_flat(&q, q.len, &in), -EINVAL);
	req_lk(&q, FUSE_GETLK, F_RDLCK, 5, 5);
	cr_assert_eq(decode_flat(&q, q.len, &in), 0);
}

/* SETXATTR: fixed part (8 or 16 bytes), name, value. */
static void req_setxattr(struct req *q, bool ext, const char *name, const void *val,
			 uint32_t size, uint32_t vlen)
{
	struct fuse_setxattr_in si = {.size = size, .flags = 2, .setxattr_flags = 1};

	req_init(q, FUSE_SETXATTR, 9);
	req_add(q, &si, ext ? sizeof(si) : FUSE_COMPAT_SETXATTR_IN_SIZE);
	req_add(q, name, strlen(name) + 1);
	req_add(q, val, vlen);
	req_seal(q, (uint32_t)q->len);
}

static int decode_xattr_flat(const struct req *q, bool ext, struct fuse_in *in)
{
	struct iovec iov = {(void *)q->b, q->len};
	int err = fuse_decode(&iov, 1, q->len, in);

	return err ? err : fuse_decode_xattr(&iov, 1, in, ext);
}

Test(fuse_decode, setxattr_argument_size_follows_setxattr_ext)
{
	struct fuse_in in;
	struct req q;

	req_setxattr(&q, true, "user.a/b", "value", 5, 5);
	cr_assert_eq(decode_xattr_flat(&q, true, &in), 0);
	cr_assert_str_eq(in.name, "user.a/b");
	cr_assert_eq(in.a.setxattr.size, 5);
	cr_assert_eq(in.a.setxattr.flags, 2);
	cr_assert_eq(in.a.setxattr.setxattr_flags, 1);
	cr_assert_eq(in.var_len, 5);
	cr_assert_eq(memcmp(q.b + in.var_off, "value", 5), 0);

	req_setxattr(&q, false, "user.c", "xy", 2, 2);
	cr_assert_eq(decode_xattr_flat(&q, false, &in), 0);
	cr_assert_str_eq(in.name, "user.c");
	cr_assert_eq(in.a.setxattr.setxattr_flags, 0);
	cr_assert_eq(memcmp(q.b + in.var_off, "xy", 2), 0);
}

Test(fuse_decode, setxattr_value_must_match_its_size)
{
	struct fuse_in in;
	struct req q;

	req_setxattr(&q, true, "user.a", "value", 6, 5);
	cr_assert_eq(decode_xattr_flat(&q, true, &in), -EINVAL);
	req_setxattr(&q, true, "user.a", "value", 4, 5);
	cr_assert_eq(decode_xattr_flat(&q, true, &in), -EINVAL);
	req_setxattr(&q, true, "user.a", "", 65537, 0);
	cr_assert_eq(decode_xattr_flat(&q, true, &in), -E2BIG);
	/* a compat request read as extended: the name is cut short */
	req_setxattr(&q, false, "user.a", "", 0, 0);
	cr_assert_neq(decode_xattr_flat(&q, true, &in), 0);
}

Test(fuse_decode, xattr_names_are_checked_like_setxattr_does)
{
	struct fuse_getxattr_in gi = {.size = 10};
	char name[300];
	struct fuse_in in;
	struct req q;

	req_init(&q, FUSE_GETXATTR, 9);
	req_add(&q, &gi, sizeof(gi));
	req_add(&q, "", 1);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_xattr_flat(&q, true, &in), -ERANGE);

	memset(name, 'n', sizeof(name));
	memcpy(name, "user.", 5);
	name[255] = '\0';
	req_init(&q, FUSE_REMOVEXATTR, 9);
	req_add(&q, name, 256);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_xattr_flat(&q, true, &in), 0);
	cr_assert_eq(in.namelen, 255);
	name[255] = 'n';
	name[256] = '\0';
	req_init(&q, FUSE_REMOVEXATTR, 9);
	req_add(&q, name, 257);
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_xattr_flat(&q, true, &in), -ERANGE);

	req_init(&q, FUSE_REMOVEXATTR, 9);
	req_add(&q, "user.x", 6); /* no NUL */
	req_seal(&q, (uint32_t)q.len);
	cr_assert_eq(decode_xattr_flat(&q, true, &in), -EINVAL);
}

/* Decode opcode with fixed arguments args (and an optional name): the
 * decoder's verdict. */
static int decode_args(uint32_t opcode, const void *args, size_t len, const char *name)
{
	struct fuse_in in;
	struct req q;

	req_init(&q, opcode, 2);
	req_add(&q, args, len);
	if (name)
		req_add(&q, name, strlen(name) + 1);
	req_seal(&q, (uint32_t)q.len);
	return decode_flat(&q, q.len, &in);
}

/*
 * Values the system calls bound whatever stores the files are refused by
 * the decoder, once, with EINVAL, and their largest valid neighbours pass:
 * no back end needs to check them again.
 */
Test(fuse_decode, values_the_system_calls_bound_are_refused_once_here)
{
	const uint64_t big = (uint64_t)INT64_MAX + 1;
	struct fuse_read_in rd = {.offset = big};
	struct fuse_lseek_in ls = {.offset = 0, .whence = SEEK_HOLE + 1};
	struct fuse_fallocate_in fa = {.offset = 0, .length = big};
	struct fuse_copy_file_range_in cp = {.off_in = 0, .off_out = big};
	struct fuse_access_in ac = {.mask = 0x10};
	struct fuse_rename2_in rn = {.newdir = 1, .flags = 0x8};
	struct fuse_create_in cr = {.flags = O_RDONLY, .mode = S_IFREG | 0600};
	char two[8] = "a\0b";
	struct fuse_in in;
	struct req q;

	cr_expect_eq(decode_args(FUSE_READ, &rd, sizeof(rd), NULL), -EINVAL);
	cr_expect_eq(decode_args(FUSE_READDIR, &rd, sizeof(rd), NULL), -EINVAL);
	cr_expect_eq(decode_args(FUSE_READDIRPLUS, &rd, sizeof(rd), NULL), -EINVAL);
	rd.offset = INT64_MAX;
	cr_expect_eq(decode_args(FUSE_READ, &rd, sizeof(rd), NULL), 0);

	cr_expect_eq(decode_args(FUSE_LSEEK, &ls, sizeof(ls), NULL), -EINVAL, "whence");
	ls.whence = SEEK_HOLE;
	cr_expect_eq(decode_args(FUSE_LSEEK, &ls, sizeof(ls), NULL), 0);
	ls.offset = big;
	cr_expect_eq(decode_args(FUSE_LSEEK, &ls, sizeof(ls), NULL), -EINVAL, "offset");

	cr_expect_eq(decode_args(FUSE_FALLOCATE, &fa, sizeof(fa), NULL), -EINVAL);
	fa.length = INT64_MAX;
	cr_expect_eq(decode_args(FUSE_FALLOCATE, &fa, sizeof(fa), NULL), 0);

	cr_expect_eq(decode_args(FUSE_COPY_FILE_RANGE, &cp, sizeof(cp), NULL), -EINVAL);
	cp.off_out = 0;
	cp.flags = 1;
	cr_expect_eq(decode_args(FUSE_COPY_FILE_RANGE, &cp, sizeof(cp), NULL), -EINVAL, "flags");
	cp.flags = 0;
	cr_expect_eq(decode_args(FUSE_COPY_FILE_RANGE, &cp, sizeof(cp), NULL), 0);

	cr_expect_eq(decode_args(FUSE_ACCESS, &ac, sizeof(ac), NULL), -EINVAL);
	ac.mask = R_OK | W_OK | X_OK;
	cr_expect_eq(decode_args(FUSE_ACCESS, &ac, sizeof(ac), NULL), 0);

	/* RENAME2: fixed arguments, then two names */
	req_init(&q, FUSE_RENAME2, 2);
	req_add(&q, &rn, sizeof(rn));
	req_add(&q, two, 4);
	req_seal(&q, (uint32_t)q.len);
	cr_expect_eq(decode_flat(&q, q.len, &in), -EINVAL, "RENAME2 flag 0x8");
	rn.flags = RENAME_NOREPLACE;
	memcpy(q.b + IN_HDR, &rn, sizeof(rn));
	cr_expect_eq(decode_flat(&q, q.len, &in), 0);

	cr_expect_eq(decode_args(FUSE_TMPFILE, &cr, sizeof(cr), "t"), -EINVAL,
		     "O_TMPFILE without write access");
	cr.flags = O_RDWR;
	cr_expect_eq(decode_args(FUSE_TMPFILE, &cr, sizeof(cr), "t"), 0);
}

/* SETXATTR flags other than XATTR_CREATE and XATTR_REPLACE: EINVAL. */
Test(fuse_decode, setxattr_flags_are_checked_with_the_name)
{
	struct fuse_setxattr_in sx = {.size = 1, .flags = 0x4};
	struct fuse_in in;
	struct iovec iov;
	struct req q;

	req_init(&q, FUSE_SETXATTR, 2);
	req_add(&q, &sx, FUSE_COMPAT_SETXATTR_IN_SIZE);
	req_add(&q, "user.a", 7);
	req_add(&q, "v", 1);
	req_seal(&q, (uint32_t)q.len);
	iov = (struct iovec){q.b, q.len};
	cr_assert_eq(fuse_decode(&iov, 1, q.len, &in), 0);
	cr_expect_eq(fuse_decode_xattr(&iov, 1, &in, false), -EINVAL);
	sx.flags = XATTR_CREATE;
	memcpy(q.b + IN_HDR, &sx, FUSE_COMPAT_SETXATTR_IN_SIZE);
	cr_assert_eq(fuse_decode(&iov, 1, q.len, &in), 0);
	cr_expect_eq(fuse_decode_xattr(&iov, 1, &in, false), 0);
}
