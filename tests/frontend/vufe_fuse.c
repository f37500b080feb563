/*
 * vufe_fuse.c - FUSE requests over the test front end's rings, laid out as a
 * Linux 6.1 virtio-fs guest does (docs/protocol.md §F.1): in_header and arguments
 * as two readable elements, out_header and reply data as writable elements,
 * one indirect table per multi-element request. Runs in: test and bench
 * programs only; replies are checked (length, unique, error range).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "vufe_int.h"

#define VUFE_MAX_SG 1100

struct vufe_call *vufe_call_new_in(struct vufe *fe, int region, size_t in_cap, size_t out_cap)
{
	struct vufe_call *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->c_head = -1;
	c->c_region = region;
	c->c_in_cap = sizeof(struct fuse_in_header) + in_cap;
	c->c_out_cap = out_cap;
	/* the out header has its own page; reply data starts page aligned */
	c->c_in = region < 0 ? vufe_alloc(fe, c->c_in_cap, &c->c_in_gpa)
			     : vufe_alloc_in(fe, region, c->c_in_cap, &c->c_in_gpa);
	c->c_out = region < 0 ? vufe_alloc(fe, VUFE_PAGE + out_cap, &c->c_out_gpa)
			      : vufe_alloc_in(fe, region, VUFE_PAGE + out_cap, &c->c_out_gpa);
	if (!c->c_in || !c->c_out) {
		vufe_call_free(fe, c);
		return NULL;
	}
	return c;
}

struct vufe_call *vufe_call_new(struct vufe *fe, size_t in_cap, size_t out_cap)
{
	return vufe_call_new_in(fe, -1, in_cap, out_cap);
}

void vufe_call_free(struct vufe *fe, struct vufe_call *c)
{
	if (!c)
		return;
	if (c->c_in)
		vufe_release(fe, c->c_in_gpa, c->c_in_cap);
	if (c->c_out)
		vufe_release(fe, c->c_out_gpa, VUFE_PAGE + c->c_out_cap);
	free(c);
}

/* The caller every request claims to come from (vufe_fuse_set_creds). */
static uint32_t vufe_uid, vufe_gid;

void vufe_fuse_set_creds(uint32_t uid, uint32_t gid)
{
	vufe_uid = uid;
	vufe_gid = gid;
}

int vufe_call_prep(struct vufe *fe, struct vufe_call *c, uint32_t opcode, uint64_t nodeid,
		   const void *a1, size_t l1, const void *a2, size_t l2, size_t out_len)
{
	struct fuse_in_header h = {0};
	size_t hl = sizeof(h);

	if (hl + l1 + l2 > c->c_in_cap ||
	    (out_len && (out_len < 16 || out_len - 16 > c->c_out_cap)))
		return -EMSGSIZE;
	fe->fe_unique += 2;
	h.len = (uint32_t)(hl + l1 + l2);
	h.opcode = opcode;
	h.unique = fe->fe_unique;
	h.nodeid = nodeid;
	h.uid = vufe_uid;
	h.gid = vufe_gid;
	h.pid = 4242;
	memcpy(c->c_in, &h, hl);
	if (l1)
		memcpy(c->c_in + hl, a1, l1);
	if (l2)
		memcpy(c->c_in + hl + l1, a2, l2);
	c->c_unique = h.unique;
	c->c_in_len = h.len;
	c->c_arg_split = hl;
	c->c_out_len = out_len;
	c->c_done = 0;
	c->c_used_len = 0;
	memset(c->c_out, 0xa5, sizeof(struct fuse_out_header));
	return 0;
}

int vufe_call_submit(struct vufe *fe, unsigned q, struct vufe_call *c, int flags)
{
	static __thread struct vufe_sg sg[VUFE_MAX_SG];
	unsigned n = 0;
	int mode = VUFE_AUTO, head;

	if ((flags & VUFE_ONE_IN) || c->c_in_len == c->c_arg_split) {
		sg[n++] = (struct vufe_sg){c->c_in_gpa, (uint32_t)c->c_in_len, 0};
	} else {
		sg[n++] = (struct vufe_sg){c->c_in_gpa, (uint32_t)c->c_arg_split, 0};
		sg[n++] = (struct vufe_sg){c->c_in_gpa + c->c_arg_split,
					   (uint32_t)(c->c_in_len - c->c_arg_split), 0};
	}
	if (c->c_out_len) {
		size_t data = c->c_out_len - sizeof(struct fuse_out_header);
		uint64_t g = c->c_out_gpa + VUFE_PAGE;
		sg[n++] = (struct vufe_sg){c->c_out_gpa, sizeof(struct fuse_out_header), 1};
		while (data) {
			size_t piece =
			    (flags & VUFE_SPLIT_PAGES) && data > VUFE_PAGE ? VUFE_PAGE : data;
			if (n >= VUFE_MAX_SG)
				return -E2BIG;
			sg[n++] = (struct vufe_sg){g, (uint32_t)piece, 1};
			g += piece;
			data -= piece;
		}
	}
	if (flags & VUFE_FORCE_CHAIN)
		mode = VUFE_CHAIN;
	else if (flags & VUFE_FORCE_INDIRECT)
		mode = VUFE_INDIRECT;
	head = vufe_submit(fe, q, sg, n, mode, c, !(flags & VUFE_NO_KICK));
	if (head < 0)
		return head;
	c->c_queue = q;
	c->c_head = head;
	c->c_done = 0;
	return 0;
}

int vufe_call_submit_sg(struct vufe *fe, unsigned q, struct vufe_call *c, const struct vufe_sg *rd,
			unsigned nrd, const struct vufe_sg *wr, unsigned nwr, int flags)
{
	static __thread struct vufe_sg sg[VUFE_MAX_SG];
	size_t out_len = sizeof(struct fuse_out_header);
	int mode = (flags & VUFE_FORCE_CHAIN) ? VUFE_CHAIN : VUFE_INDIRECT;
	unsigned n = 0;
	int head;

	if (2 + nrd + 1 + nwr > VUFE_MAX_SG)
		return -E2BIG;
	sg[n++] = (struct vufe_sg){c->c_in_gpa, (uint32_t)c->c_arg_split, 0};
	if (c->c_in_len > c->c_arg_split)
		sg[n++] = (struct vufe_sg){c->c_in_gpa + c->c_arg_split,
					   (uint32_t)(c->c_in_len - c->c_arg_split), 0};
	for (unsigned i = 0; i < nrd; i++)
		sg[n++] = (struct vufe_sg){rd[i].gpa, rd[i].len, 0};
	sg[n++] = (struct vufe_sg){c->c_out_gpa, sizeof(struct fuse_out_header), 1};
	for (unsigned i = 0; i < nwr; i++) {
		sg[n++] = (struct vufe_sg){wr[i].gpa, wr[i].len, 1};
		out_len += wr[i].len;
	}
	head = vufe_submit(fe, q, sg, n, mode, c, !(flags & VUFE_NO_KICK));
	if (head < 0)
		return head;
	c->c_out_len = out_len;
	c->c_queue = q;
	c->c_head = head;
	c->c_done = 0;
	return 0;
}

int vufe_call_wait_any(struct vufe *fe, unsigned q, int timeout_ms, struct vufe_call **done)
{
	void *cookie = NULL;
	uint32_t len;
	int r = vufe_wait(fe, q, timeout_ms, NULL, &len, &cookie);

	if (r)
		return r;
	*done = cookie;
	if (cookie) {
		(*done)->c_done = 1;
		(*done)->c_used_len = len;
		(*done)->c_head = -1;
	}
	return 0;
}

int vufe_call_wait(struct vufe *fe, struct vufe_call *c, int timeout_ms)
{
	uint64_t deadline = bh_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	while (!c->c_done) {
		struct vufe_call *d;
		uint64_t now = bh_now_ns();
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = vufe_call_wait_any(fe, c->c_queue, (int)((deadline - now + 999999) / 1000000),
				       &d);
		if (r)
			return r;
	}
	return 0;
}

const struct fuse_out_header *vufe_call_oh(struct vufe_call *c)
{
	return (const struct fuse_out_header *)c->c_out;
}

void *vufe_call_data(struct vufe_call *c)
{
	return c->c_out + VUFE_PAGE;
}

uint32_t vufe_call_data_len(struct vufe_call *c)
{
	const struct fuse_out_header *oh = vufe_call_oh(c);
	return oh->len >= sizeof(*oh) ? oh->len - (uint32_t)sizeof(*oh) : 0;
}

int vufe_call_result(struct vufe_call *c)
{
	struct fuse_out_header oh;

	memcpy(&oh, c->c_out, sizeof(oh));
	if (c->c_out_len == 0)
		return c->c_used_len == 0 ? 0 : VUFE_EPROTO;
	if (oh.len < sizeof(oh) || oh.len > c->c_out_len || oh.len != c->c_used_len ||
	    oh.unique != c->c_unique)
		return VUFE_EPROTO;
	if (oh.error > 0 || oh.error < -511 || (oh.error && oh.len != sizeof(oh)))
		return VUFE_EPROTO;
	return oh.error;
}

int vufe_fuse(struct vufe *fe, unsigned q, uint32_t opcode, uint64_t nodeid, const void *a1,
	      size_t l1, const void *a2, size_t l2, void *out, size_t out_cap, uint32_t *out_len,
	      int flags)
{
	int no_reply = opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET;
	struct vufe_call *c = vufe_call_new(fe, l1 + l2, out_cap ? out_cap : 1);
	int r;

	if (!c)
		return VUFE_ENOREPLY;
	r = vufe_call_prep(fe, c, opcode, nodeid, a1, l1, a2, l2,
			   no_reply ? 0 : sizeof(struct fuse_out_header) + out_cap);
	if (!r)
		r = vufe_call_submit(fe, q, c, flags);
	if (!r)
		r = vufe_call_wait(fe, c, VUFE_TIMEOUT_MS);
	if (r) {
		/* a request still in flight owns its buffers: leak them on purpose */
		if (c->c_head < 0)
			vufe_call_free(fe, c);
		return VUFE_ENOREPLY;
	}
	r = vufe_call_result(c);
	if (r == 0 && !no_reply) {
		uint32_t n = vufe_call_data_len(c);
		if (n > out_cap)
			r = VUFE_EPROTO;
		else if (out && n)
			memcpy(out, vufe_call_data(c), n);
		if (out_len)
			*out_len = n;
	}
	vufe_call_free(fe, c);
	return r;
}

/* A fixed-size reply must have exactly that size. */
static int vufe_fixed(struct vufe *fe, unsigned q, uint32_t opcode, uint64_t nodeid, const void *a1,
		      size_t l1, const void *a2, size_t l2, void *out, size_t size)
{
	uint32_t n = 0;
	int r = vufe_fuse(fe, q, opcode, nodeid, a1, l1, a2, l2, out, size, &n, 0);

	if (r == 0 && n != size)
		return VUFE_EPROTO;
	return r;
}

int vufe_fuse_init(struct vufe *fe, unsigned q, struct fuse_init_out *out)
{
	struct fuse_init_in in = {
	    .major = FUSE_KERNEL_VERSION,
	    .minor = FUSE_KERNEL_MINOR_VERSION,
	    .max_readahead = 0x20000,
	    .flags = VUFE_GUEST_INIT_FLAGS,
	    .flags2 = VUFE_GUEST_INIT_FLAGS2,
	};
	return vufe_fixed(fe, q, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, out, sizeof(*out));
}

int vufe_fuse_lookup(struct vufe *fe, unsigned q, uint64_t parent, const char *name,
		     struct fuse_entry_out *out)
{
	return vufe_fixed(fe, q, FUSE_LOOKUP, parent, name, strlen(name) + 1, NULL, 0, out,
			  sizeof(*out));
}

int vufe_fuse_forget(struct vufe *fe, unsigned q, uint64_t nodeid, uint64_t nlookup)
{
	struct fuse_forget_in in = {.nlookup = nlookup};
	/* Linux sends FORGET as one 48-byte readable descriptor */
	return vufe_fuse(fe, q, FUSE_FORGET, nodeid, &in, sizeof(in), NULL, 0, NULL, 0, NULL,
			 VUFE_ONE_IN);
}

int vufe_fuse_batch_forget(struct vufe *fe, unsigned q, const struct fuse_forget_one *f, unsigned n)
{
	struct fuse_batch_forget_in in = {.count = n};
	return vufe_fuse(fe, q, FUSE_BATCH_FORGET, 0, &in, sizeof(in), f, n * sizeof(*f), NULL, 0,
			 NULL, 0);
}

int vufe_fuse_getattr(struct vufe *fe, unsigned q, uint64_t nodeid, struct fuse_attr_out *out)
{
	struct fuse_getattr_in in = {0};
	return vufe_fixed(fe, q, FUSE_GETATTR, nodeid, &in, sizeof(in), NULL, 0, out, sizeof(*out));
}

int vufe_fuse_readlink(struct vufe *fe, unsigned q, uint64_t nodeid, char *buf, size_t cap,
		       uint32_t *len)
{
	return vufe_fuse(fe, q, FUSE_READLINK, nodeid, NULL, 0, NULL, 0, buf, cap, len, 0);
}

static int vufe_open_common(struct vufe *fe, unsigned q, uint32_t opcode, uint64_t nodeid,
			    uint32_t flags, uint64_t *fh)
{
	struct fuse_open_in in = {.flags = flags};
	struct fuse_open_out out;
	int r = vufe_fixed(fe, q, opcode, nodeid, &in, sizeof(in), NULL, 0, &out, sizeof(out));

	if (r == 0)
		*fh = out.fh;
	return r;
}

int vufe_fuse_open(struct vufe *fe, unsigned q, uint64_t nodeid, uint32_t flags, uint64_t *fh)
{
	return vufe_open_common(fe, q, FUSE_OPEN, nodeid, flags, fh);
}

int vufe_fuse_opendir(struct vufe *fe, unsigned q, uint64_t nodeid, uint64_t *fh)
{
	return vufe_open_common(fe, q, FUSE_OPENDIR, nodeid, 0x10000 /* O_DIRECTORY */, fh);
}

int vufe_fuse_read(struct vufe *fe, unsigned q, uint64_t nodeid, uint64_t fh, uint64_t off,
		   uint32_t size, void *buf, uint32_t *len, int flags)
{
	struct fuse_read_in in = {.fh = fh, .offset = off, .size = size};
	return vufe_fuse(fe, q, FUSE_READ, nodeid, &in, sizeof(in), NULL, 0, buf, size, len, flags);
}

int vufe_fuse_readdir(struct vufe *fe, unsigned q, uint32_t opcode, uint64_t nodeid, uint64_t fh,
		      uint64_t off, uint32_t size, void *buf, uint32_t *len)
{
	struct fuse_read_in in = {.fh = fh, .offset = off, .size = size};
	return vufe_fuse(fe, q, opcode, nodeid, &in, sizeof(in), NULL, 0, buf, size, len, 0);
}

int vufe_fuse_release(struct vufe *fe, unsigned q, uint32_t opcode, uint64_t nodeid, uint64_t fh)
{
	struct fuse_release_in in = {.fh = fh};
	return vufe_fixed(fe, q, opcode, nodeid, &in, sizeof(in), NULL, 0, NULL, 0);
}

int vufe_fuse_flush(struct vufe *fe, unsigned q, uint64_t nodeid, uint64_t fh)
{
	struct fuse_flush_in in = {.fh = fh};
	return vufe_fixed(fe, q, FUSE_FLUSH, nodeid, &in, sizeof(in), NULL, 0, NULL, 0);
}

int vufe_fuse_statfs(struct vufe *fe, unsigned q, struct fuse_statfs_out *out)
{
	return vufe_fixed(fe, q, FUSE_STATFS, 1, NULL, 0, NULL, 0, out, sizeof(*out));
}

int vufe_fuse_destroy(struct vufe *fe, unsigned q)
{
	return vufe_fixed(fe, q, FUSE_DESTROY, 0, NULL, 0, NULL, 0, NULL, 0);
}

int vufe_fuse_write(struct vufe *fe, unsigned q, uint64_t nodeid, uint64_t fh, uint64_t off,
		    const void *data, uint32_t size, uint32_t write_flags, uint32_t *written)
{
	static __thread struct vufe_sg sg[VUFE_MAX_SG];
	struct fuse_write_in in = {
	    .fh = fh, .offset = off, .size = size, .write_flags = write_flags};
	struct fuse_write_out out;
	const size_t hl = sizeof(struct fuse_in_header);
	struct vufe_call *c = vufe_call_new(fe, sizeof(in) + size, sizeof(out));
	size_t pos, n = 0;
	int r, head;

	if (!c)
		return VUFE_ENOREPLY;
	r = vufe_call_prep(fe, c, FUSE_WRITE, nodeid, &in, sizeof(in), data, size,
			   sizeof(struct fuse_out_header) + sizeof(out));
	if (r) {
		vufe_call_free(fe, c);
		return VUFE_ENOREPLY;
	}
	/* Like Linux: in_header, write_in, then one readable descriptor per page. */
	sg[n++] = (struct vufe_sg){c->c_in_gpa, (uint32_t)hl, 0};
	sg[n++] = (struct vufe_sg){c->c_in_gpa + hl, sizeof(in), 0};
	for (pos = 0; pos < size && n < VUFE_MAX_SG - 2; pos += VUFE_PAGE) {
		uint32_t piece = size - pos > VUFE_PAGE ? VUFE_PAGE : (uint32_t)(size - pos);
		sg[n++] = (struct vufe_sg){c->c_in_gpa + hl + sizeof(in) + pos, piece, 0};
	}
	sg[n++] = (struct vufe_sg){c->c_out_gpa, sizeof(struct fuse_out_header), 1};
	sg[n++] = (struct vufe_sg){c->c_out_gpa + VUFE_PAGE, sizeof(out), 1};
	head = vufe_submit(fe, q, sg, (unsigned)n, VUFE_AUTO, c, 1);
	if (head < 0) {
		vufe_call_free(fe, c);
		return VUFE_ENOREPLY;
	}
	c->c_queue = q;
	c->c_head = head;
	c->c_done = 0;
	if (vufe_call_wait(fe, c, VUFE_TIMEOUT_MS))
		return VUFE_ENOREPLY; /* still in flight: its buffers are leaked on purpose */
	r = vufe_call_result(c);
	if (r == 0 && vufe_call_data_len(c) != sizeof(out))
		r = VUFE_EPROTO;
	if (r == 0 && written) {
		memcpy(&out, vufe_call_data(c), sizeof(out));
		*written = out.size;
	}
	vufe_call_free(fe, c);
	return r;
}
