/*
 * util.h - small helpers shared by the parent and the workers.
 * Runs in: both.
 */
#ifndef BH_UTIL_H
#define BH_UTIL_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#define BH_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Loop over short writes / reads and EINTR. 0 or -errno (-EPIPE on EOF for read). */
int bh_write_full(int fd, const void *buf, size_t len);
int bh_read_full(int fd, void *buf, size_t len);

int bh_set_nonblock(int fd, int on);
int bh_set_cloexec(int fd, int on);

/* Strict decimal parse of a whole string into [min, max]. 0 or -EINVAL/-ERANGE. */
int bh_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Descriptors one message may carry through bh_sendmsg_fds. */
#define BH_MAX_MSG_FDS 64

/* sendmsg of iov with nfds descriptors attached (SCM_RIGHTS), MSG_NOSIGNAL,
 * retried on EINTR. Bytes sent, or -errno (-EMSGSIZE for too many fds). */
ssize_t bh_sendmsg_fds(int sock, const struct iovec *iov, int iovcnt, const int *fds,
		       size_t nfds);

/* Take the SCM_RIGHTS descriptors a recvmsg delivered: up to max go to
 * fds[], the rest are closed. *bad is set when a foreign control message or
 * more than max descriptors arrived. Returns how many were stored. */
size_t bh_cmsg_take_fds(struct msghdr *mh, int *fds, size_t max, bool *bad);

/* Monotonic clock in nanoseconds. */
uint64_t bh_now_ns(void);

/* Rate limit for operator-facing lines: true at most once per 'secs'
 * seconds for one *last (any thread; a rare double line is harmless). */
bool bh_ratelimit(time_t *last, unsigned secs);

/* A token bucket: up to 'burst' events at once, 'rate' a second sustained.
 * Zeroed, it starts full. One thread per bucket. */
struct bh_bucket {
	uint64_t b_credit_ns; /* time credit, at most 'burst' events' worth */
	uint64_t b_last_ns;
};
/* Count one event: true if the bucket had room for it. */
bool bh_bucket_take(struct bh_bucket *b, unsigned burst, unsigned rate);

/* Adaptive polling (the worker's ring, its pool threads): the window to
 * poll next time, after a sleep of 'slept' ns that followed a window of
 * 'cur' ns, at most 'max'. It grows (doubling from 4 us) while polling that
 * much longer would have caught the wake-up, and halves, down to nothing,
 * when the sleep outlasted max. */
uint64_t bh_poll_window(uint64_t cur, uint64_t slept, uint64_t max);

/*
 * A new instance of file system type (fsopen), with the string options in
 * opts (name, value, name, value, ..., NULL; may be NULL), mounted
 * detached with attrs (MOUNT_ATTR_*): attached to no mount tree. The mount
 * descriptor (close-on-exec), or -errno with *step naming the call that
 * failed ("fsopen", "fsconfig", "fsmount").
 */
int bh_fs_new(const char *type, const char *const *opts, unsigned attrs, const char **step);

/* Write the 8-byte value 1 to an eventfd (ignores EAGAIN: already signalled). */
void bh_eventfd_signal(int fd);
/* Read and discard an eventfd's counter (non-blocking fd). */
void bh_eventfd_drain(int fd);

#endif
