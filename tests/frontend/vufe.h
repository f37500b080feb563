/*
 * vufe.h - a userspace vhost-user front end for tests and benchmarks.
 * Runs in: test and bench programs only. It plays QEMU 7.2 and a Linux
 * virtio-fs driver at once: "guest memory" is a memfd mapped here and offered
 * as two regions with a hole (like the pc machine), rings are laid out in it,
 * and FUSE requests are submitted on any queue. It trusts nothing the back
 * end writes: used entries are checked before they are believed.
 *
 * Layers, each callable on its own so tests can craft variants:
 *   control  - one function per vhost-user message, plus the QEMU 7.2
 *              sequences (vufe_negotiate, vufe_start, vufe_stop);
 *   ring     - submit scatter lists as plain chains or one indirect table,
 *              wait for used entries, corrupt the ring on purpose;
 *   fuse     - request builders for the opcodes the tests need.
 */
#ifndef BH_VUFE_H
#define BH_VUFE_H

#include <stddef.h>
#include <stdint.h>

#include <linux/fuse.h>

#define VUFE_MAX_QUEUES	 32
#define VUFE_MAX_REGIONS 8
#define VUFE_HOLE_START	 0xa0000ull
#define VUFE_HOLE_END	 0xc0000ull
#define VUFE_TIMEOUT_MS	 5000

/* Helper results that are not FUSE errors (FUSE errors are -1 .. -511). */
#define VUFE_ENOREPLY (-10000) /* no used entry within the timeout, or transport failure */
#define VUFE_EPROTO   (-10001) /* a reply that breaks the protocol (length, unique) */

struct vufe_opts {
	size_t mem_size;     /* guest memory; default 64 MiB */
	unsigned queue_size; /* default 128 */
	unsigned nqueues;    /* queues started by vufe_start; default 2 */
	uint64_t features;   /* virtio features we want; default VERSION_1|INDIRECT|EVENT_IDX|PF */
	uint64_t protocol_features; /* we ack offered & this; default MQ|REPLY_ACK|MEM_SLOTS */
	int always_kick;	    /* kick on every submit, ignoring avail_event / NO_NOTIFY */
	/* seal the guest memfd against shrinking and growing, as QEMU's
	 * memory-backend-memfd does by default */
	int seal_memory;
};

struct vufe_sg {
	uint64_t gpa;
	uint32_t len;
	int write; /* device-writable */
};

/* Submission layout. */
#define VUFE_AUTO     0 /* indirect when more than one element (Linux style) */
#define VUFE_CHAIN    1 /* plain descriptor chain */
#define VUFE_INDIRECT 2 /* one indirect table even for one element */

/* vufe_call_submit flags */
#define VUFE_SPLIT_PAGES    0x1 /* reply data in 4 KiB writable descriptors */
#define VUFE_ONE_IN	    0x2 /* header and arguments in one readable descriptor */
#define VUFE_FORCE_CHAIN    0x4 /* never indirect */
#define VUFE_NO_KICK	    0x8 /* publish but do not kick (caller kicks) */
#define VUFE_FORCE_INDIRECT 0x10

struct vufe;

/* A FUSE request with its guest buffers; reusable for many submissions. */
struct vufe_call {
	unsigned c_queue;
	int c_head; /* descriptor head while in flight, else -1 */
	int c_done;
	uint64_t c_unique;
	uint32_t c_used_len; /* the used entry's len */
	uint8_t *c_in;	     /* fuse_in_header + arguments (guest memory) */
	uint64_t c_in_gpa;
	size_t c_in_cap, c_in_len, c_arg_split; /* c_arg_split: start of the 2nd readable element */
	uint8_t *c_out;				/* fuse_out_header + reply (guest memory) */
	uint64_t c_out_gpa;
	size_t c_out_cap, c_out_len; /* c_out_len: bytes offered as writable */
	int c_region;		     /* region the buffers live in */
};

/* --- setup and memory --- */
void vufe_opts_default(struct vufe_opts *o);
struct vufe *vufe_new(const struct vufe_opts *o);
void vufe_free(struct vufe *fe);
/* Connect to a UNIX socket, retrying for up to timeout_ms. 0 or -errno. */
int vufe_connect(struct vufe *fe, const char *path, int timeout_ms);
void vufe_disconnect(struct vufe *fe);
int vufe_sock(struct vufe *fe);
unsigned vufe_nqueues(struct vufe *fe);
void vufe_set_nqueues(struct vufe *fe, unsigned n);

/* Guest memory: page-granular allocator over the regions. NULL if full. */
void *vufe_alloc(struct vufe *fe, size_t len, uint64_t *gpa);
void *vufe_alloc_in(struct vufe *fe, int region, size_t len, uint64_t *gpa);
/* Like vufe_alloc, but the pages are not cleared (so a fresh memfd's stay
 * unallocated): for huge buffers a test never reads whole. */
void *vufe_reserve(struct vufe *fe, size_t len, uint64_t *gpa);
void vufe_release(struct vufe *fe, uint64_t gpa, size_t len);
void *vufe_gpa_ptr(struct vufe *fe, uint64_t gpa, size_t len);
/* Add a region backed by a fresh memfd at gpa (not yet announced). Its index or -errno. */
int vufe_region_new(struct vufe *fe, uint64_t gpa, size_t size);
unsigned vufe_nregions(struct vufe *fe);
/* The memfd behind regions 0 and 1 (a test may shrink it under the back end). */
int vufe_mem_fd(struct vufe *fe);

/* --- control messages (one per vhost-user request) --- */
/* Leave request req out of vufe_negotiate/vufe_start (on = 1) or not.
 * Skipping GET_PROTOCOL_FEATURES sends opts.protocol_features blindly. */
void vufe_skip(struct vufe *fe, uint32_t req, int on);
/* Set NEED_REPLY on every request from now on (acks are read). */
void vufe_set_need_reply_all(struct vufe *fe, int on);
/* Send any request; reads the reply (own reply of reply_size, or an ack if
 * NEED_REPLY was set). *ack gets the ack value if any. 0 or -errno. */
int vufe_request(struct vufe *fe, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
		 const int *fds, size_t nfds, void *reply, uint32_t reply_size);
/* Raw bytes on the socket; no reply read. */
int vufe_send_raw(struct vufe *fe, const void *buf, size_t len, const int *fds, size_t nfds);
uint64_t vufe_last_ack(struct vufe *fe);
/* 0 if nothing arrives within ms, -EBADMSG if bytes arrive, -EPIPE on EOF. */
int vufe_expect_silence(struct vufe *fe, int ms);
/* 0 once the back end closed the connection within ms, else -ETIMEDOUT. */
int vufe_expect_eof(struct vufe *fe, int ms);

int vufe_get_features(struct vufe *fe, uint64_t *f);
int vufe_set_features(struct vufe *fe, uint64_t f);
int vufe_get_protocol_features(struct vufe *fe, uint64_t *pf);
int vufe_set_protocol_features(struct vufe *fe, uint64_t pf);
int vufe_get_queue_num(struct vufe *fe, uint64_t *n);
int vufe_get_max_mem_slots(struct vufe *fe, uint64_t *n);
int vufe_set_owner(struct vufe *fe);
int vufe_set_vring_call(struct vufe *fe, unsigned q, int fd); /* fd < 0: NOFD */
int vufe_set_vring_err(struct vufe *fe, unsigned q, int fd);
int vufe_set_vring_kick(struct vufe *fe, unsigned q, int fd);
int vufe_set_vring_num(struct vufe *fe, unsigned q, unsigned num);
int vufe_set_vring_base(struct vufe *fe, unsigned q, unsigned base);
int vufe_set_vring_addr(struct vufe *fe, unsigned q);
int vufe_set_vring_enable(struct vufe *fe, unsigned q, int on);
int vufe_get_vring_base(struct vufe *fe, unsigned q, uint32_t *base);
int vufe_add_mem_reg(struct vufe *fe, unsigned region);
int vufe_set_mem_table(struct vufe *fe);

/* --- QEMU 7.2 sequences --- */
/* Realize: GET_FEATURES .. SET_VRING_CALL/ERR per queue. */
int vufe_negotiate(struct vufe *fe);
/* Device start: CALL, SET_FEATURES, memory, NUM/BASE/ADDR/KICK, ENABLE, CALL.
 * send_mem = 0 skips the memory messages (restart with unchanged memory). */
int vufe_start(struct vufe *fe, int send_mem);
/* Device stop: ENABLE 0, GET_VRING_BASE (bases[q], may be NULL), CALL. */
int vufe_stop(struct vufe *fe, uint32_t *bases);
/* negotiate + start */
int vufe_up(struct vufe *fe);

uint64_t vufe_offered_features(struct vufe *fe);
uint64_t vufe_offered_protocol_features(struct vufe *fe);
uint64_t vufe_acked_features(struct vufe *fe);
uint64_t vufe_acked_protocol_features(struct vufe *fe);
uint64_t vufe_queue_num(struct vufe *fe); /* GET_QUEUE_NUM answer, 0 if not asked */

/* --- rings --- */
/* New ring memory for q, indices back to 0 (a rebooted driver). */
int vufe_ring_relayout(struct vufe *fe, unsigned q);
/* The base SET_VRING_BASE sends at the next start (default: our avail idx). */
void vufe_ring_set_base(struct vufe *fe, unsigned q, unsigned base);
int vufe_call_fd(struct vufe *fe, unsigned q);
int vufe_err_fd(struct vufe *fe, unsigned q);
int vufe_kick_fd(struct vufe *fe, unsigned q);
/* Replace q's call fd with a new eventfd and announce it; the old fd goes to *old. */
int vufe_replace_call(struct vufe *fe, unsigned q, int *old);

/* Submit a scatter list (readable then writable). Returns the head or -errno. */
int vufe_submit(struct vufe *fe, unsigned q, const struct vufe_sg *sg, unsigned n, int mode,
		void *cookie, int kick);
void vufe_kick(struct vufe *fe, unsigned q);
/* Wait for one used entry on q. 0 with *head, *len and *cookie filled;
 * -ETIMEDOUT; -EPROTO for a used entry naming no request in flight. */
int vufe_wait(struct vufe *fe, unsigned q, int timeout_ms, int *head, uint32_t *len, void **cookie);
unsigned vufe_inflight(struct vufe *fe, unsigned q);
uint16_t vufe_used_idx(struct vufe *fe, unsigned q);
/* Write used_event of queue q as it is, as a guest whose store the device
 * did not see in time would have left it (EVENT_IDX only). */
void vufe_set_used_event_raw(struct vufe *fe, unsigned q, uint16_t v);
uint16_t vufe_avail_idx(struct vufe *fe, unsigned q);

/* Hostile helpers: write the ring directly. */
struct vring_desc;
struct vring_desc *vufe_ring_desc(struct vufe *fe, unsigned q);
/* Publish head without any bookkeeping (the slot is not ours to free). */
void vufe_publish_raw(struct vufe *fe, unsigned q, uint16_t head);
/* Set avail->idx directly. */
void vufe_set_avail_idx_raw(struct vufe *fe, unsigned q, uint16_t idx);
/* Queue a request whose chain loops / points outside guest memory. Head or -errno. */
int vufe_submit_loop(struct vufe *fe, unsigned q);
int vufe_submit_bad_addr(struct vufe *fe, unsigned q);
/* Move avail->idx by more than the queue size. */
void vufe_avail_jump(struct vufe *fe, unsigned q);

/* --- FUSE --- */
struct vufe_call *vufe_call_new(struct vufe *fe, size_t in_cap, size_t out_cap);
struct vufe_call *vufe_call_new_in(struct vufe *fe, int region, size_t in_cap, size_t out_cap);
void vufe_call_free(struct vufe *fe, struct vufe_call *c);
/* Fill the in header and arguments (a1 then a2). out_len: writable bytes offered
 * after the out header is included (16 + reply size); 0 = no writable part. */
int vufe_call_prep(struct vufe *fe, struct vufe_call *c, uint32_t opcode, uint64_t nodeid,
		   const void *a1, size_t l1, const void *a2, size_t l2, size_t out_len);
int vufe_call_submit(struct vufe *fe, unsigned q, struct vufe_call *c, int flags);
/* Submit c with the caller's buffers: the readable part is c's header and
 * arguments then rd[0..nrd), the writable part c's out header then
 * wr[0..nwr) (not c's own reply area). The in header's len is the caller's
 * to set (c_in); c_out_len becomes 16 + the bytes of wr, so vufe_call_result
 * accepts a reply of that size. Always one indirect table, unless flags say
 * VUFE_FORCE_CHAIN; VUFE_NO_KICK as for vufe_call_submit. */
int vufe_call_submit_sg(struct vufe *fe, unsigned q, struct vufe_call *c, const struct vufe_sg *rd,
			unsigned nrd, const struct vufe_sg *wr, unsigned nwr, int flags);
/* Wait until c completes (other completions on its queue are recorded). */
int vufe_call_wait(struct vufe *fe, struct vufe_call *c, int timeout_ms);
/* Wait for any call on q. */
int vufe_call_wait_any(struct vufe *fe, unsigned q, int timeout_ms, struct vufe_call **done);
/* Check the reply header: FUSE error (0 / -errno), VUFE_EPROTO. */
int vufe_call_result(struct vufe_call *c);
const struct fuse_out_header *vufe_call_oh(struct vufe_call *c);
void *vufe_call_data(struct vufe_call *c);
uint32_t vufe_call_data_len(struct vufe_call *c);

/* One synchronous request: FUSE error, VUFE_ENOREPLY or VUFE_EPROTO. The reply
 * payload (up to out_cap) is copied to out and its size stored in *out_len. */
int vufe_fuse(struct vufe *fe, unsigned q, uint32_t opcode, uint64_t nodeid, const void *a1,
	      size_t l1, const void *a2, size_t l2, void *out, size_t out_cap, uint32_t *out_len,
	      int flags);

int vufe_fuse_init(struct vufe *fe, unsigned q, struct fuse_init_out *out);
int vufe_fuse_lookup(struct vufe *fe, unsigned q, uint64_t parent, const char *name,
		     struct fuse_entry_out *out);
int vufe_fuse_forget(struct vufe *fe, unsigned q, uint64_t nodeid, uint64_t nlookup);
int vufe_fuse_batch_forget(struct vufe *fe, unsigned q, const struct fuse_forget_one *f,
			   unsigned n);
int vufe_fuse_getattr(struct vufe *fe, unsigned q, uint64_t nodeid, struct fuse_attr_out *out);
int vufe_fuse_readlink(struct vufe *fe, unsigned q, uint64_t nodeid, char *buf, size_t cap,
		       uint32_t *len);
int vufe_fuse_open(struct vufe *fe, unsigned q, uint64_t nodeid, uint32_t flags, uint64_t *fh);
int vufe_fuse_opendir(struct vufe *fe, unsigned q, uint64_t nodeid, uint64_t *fh);
/* READ into buf; *len = bytes returned. flags: VUFE_SPLIT_PAGES. */
int vufe_fuse_read(struct vufe *fe, unsigned q, uint64_t nodeid, uint64_t fh, uint64_t off,
		   uint32_t size, void *buf, uint32_t *len, int flags);
int vufe_fuse_readdir(struct vufe *fe, unsigned q, uint32_t opcode, uint64_t nodeid, uint64_t fh,
		      uint64_t off, uint32_t size, void *buf, uint32_t *len);
int vufe_fuse_release(struct vufe *fe, unsigned q, uint32_t opcode, uint64_t nodeid, uint64_t fh);
int vufe_fuse_flush(struct vufe *fe, unsigned q, uint64_t nodeid, uint64_t fh);
int vufe_fuse_statfs(struct vufe *fe, unsigned q, struct fuse_statfs_out *out);
int vufe_fuse_destroy(struct vufe *fe, unsigned q);

/* uid/gid put in the in_header of every later request (default 0/0). */
void vufe_fuse_set_creds(uint32_t uid, uint32_t gid);
/* WRITE laid out as Linux does (in_header, write_in, then each 4 KiB of
 * data in its own readable descriptor); *written = fuse_write_out.size. */
int vufe_fuse_write(struct vufe *fe, unsigned q, uint64_t nodeid, uint64_t fh, uint64_t off,
		    const void *data, uint32_t size, uint32_t write_flags, uint32_t *written);

/* The INIT flags a Linux 6.1 guest offers (docs/protocol.md §F.3). */
#define VUFE_GUEST_INIT_FLAGS  0x7bfffffbu
#define VUFE_GUEST_INIT_FLAGS2 0xbu

#endif
