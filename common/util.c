/*
 * util.c - small helpers shared by the parent and the workers.
 * Runs in: both.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int bh_write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int bh_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int bh_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	if (fcntl(fd, F_SETFL, fl) < 0)
		return -errno;
	return 0;
}

int bh_set_cloexec(int fd, int on)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return -errno;
	fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
	if (fcntl(fd, F_SETFD, fl) < 0)
		return -errno;
	return 0;
}

int bh_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return errno == ERANGE ? -ERANGE : -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

uint64_t bh_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool bh_ratelimit(time_t *last, unsigned secs)
{
	struct timespec ts;
	time_t prev = __atomic_load_n(last, __ATOMIC_RELAXED);

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	if (prev != 0 && ts.tv_sec - prev < (time_t)secs)
		return false;
	__atomic_store_n(last, ts.tv_sec, __ATOMIC_RELAXED);
	return true;
}

bool bh_bucket_take(struct bh_bucket *b, unsigned burst, unsigned rate)
{
	uint64_t now = bh_now_ns(), cost = 1000000000ull / (rate ? rate : 1);
	uint64_t cap = cost * (burst ? burst : 1), credit;

	credit = b->b_credit_ns + (now - b->b_last_ns);
	if (b->b_last_ns == 0 || credit > cap) /* the first call, or full */
		credit = cap;
	b->b_last_ns = now;
	if (credit < cost) {
		b->b_credit_ns = credit;
		return false;
	}
	b->b_credit_ns = credit - cost;
	return true;
}

#define BH_POLL_START_NS 4000u

uint64_t bh_poll_window(uint64_t cur, uint64_t slept, uint64_t max)
{
	if (slept + cur <= max) {
		cur = cur ? cur * 2 : BH_POLL_START_NS;
		return cur > max ? max : cur;
	}
	if (slept > max) {
		cur /= 2;
		return cur < BH_POLL_START_NS ? 0 : cur;
	}
	return cur;
}

void bh_eventfd_signal(int fd)
{
	uint64_t one = 1;
	ssize_t n;
	if (fd < 0)
		return;
	do
		n = write(fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
}

void bh_eventfd_drain(int fd)
{
	uint64_t v;
	ssize_t n;
	do
		n = read(fd, &v, sizeof(v));
	while (n < 0 && errno == EINTR);
}

ssize_t bh_sendmsg_fds(int sock, const struct iovec *iov, int iovcnt, const int *fds,
		       size_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * BH_MAX_MSG_FDS)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
	ssize_t n;

	if (nfds > BH_MAX_MSG_FDS)
		return -EMSGSIZE;
	if (nfds) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

size_t bh_cmsg_take_fds(struct msghdr *mh, int *fds, size_t max, bool *bad)
{
	struct cmsghdr *c;
	size_t n = 0;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			*bad = true;
			continue;
		}
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(f));
			if (n < max) {
				fds[n++] = f;
			} else {
				close(f);
				*bad = true;
			}
		}
	}
	return n;
}

int bh_fs_new(const char *type, const char *const *opts, unsigned attrs, const char **step)
{
	int fs, mnt, err;

	*step = "fsopen";
	if ((fs = fsopen(type, FSOPEN_CLOEXEC)) < 0)
		return -errno;
	*step = "fsconfig";
	for (; opts && opts[0]; opts += 2) {
		if (fsconfig(fs, FSCONFIG_SET_STRING, opts[0], opts[1], 0) < 0)
			goto fail;
	}
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		goto fail;
	*step = "fsmount";
	if ((mnt = fsmount(fs, FSMOUNT_CLOEXEC, attrs)) < 0)
		goto fail;
	close(fs);
	return mnt;
fail:
	err = errno;
	close(fs);
	return -err;
}
