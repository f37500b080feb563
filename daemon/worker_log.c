/*
 * worker_log.c - what workers write to their standard error, relayed into
 * our log. A worker's descriptors 0 and 1 are /dev/null and 2 is the write
 * end of a non-blocking pipe whose other end is read here: a worker never
 * holds the operator's terminal, log file or syslog socket (its lines could
 * otherwise be anything, under any name, at any rate), and it never blocks
 * on its log: when the pipe is full its line is lost, not its queue.
 * Runs in: the parent, on its event loop and inside the synchronous waits
 * for worker replies (workers.c). The bytes are a worker's, which may be
 * compromised: a line is cut at WL_LINE_MAX, control characters become
 * '?', its level is the one it claims but never above a warning, every line
 * says which worker it came from, and lines beyond a rate are counted, not
 * logged.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bulkhead.h"
#include "bulkheadd.h"
#include "log.h"
#include "util.h"

#define WL_LINE_MAX 1000 /* a longer line is logged in pieces */
#define WL_SAY_SECS 10	 /* how often a count of left-out lines is logged */

struct wl {
	struct qwatch l_w; /* the pipe and its read event */
	struct bh_bucket l_bucket;
	uint32_t l_dropped;
	time_t l_said; /* when the last count of left-out lines was logged */
	size_t l_n;
	char l_buf[WL_LINE_MAX + 1];
};

static struct wl wl_table[BH_MAX_QUEUES];
static struct event_base *wl_base;

/* Lines a worker may have logged at once and per second: at debug level a
 * worker rightly logs every request; otherwise a few lines a minute. */
static void wl_limits(unsigned *burst, unsigned *rate)
{
	bool debug = log_get_level() >= LOG_LVL_DEBUG;

	*burst = debug ? PARENT_WK_STDERR_BURST_DEBUG : PARENT_WK_STDERR_BURST;
	*rate = debug ? PARENT_WK_STDERR_RATE_DEBUG : PARENT_WK_STDERR_RATE;
}

/* One line: "<L>text" from the worker's log.c, or anything else. */
static void wl_line(uint32_t q, struct wl *l, char *s, size_t n)
{
	enum log_level lvl = LOG_LVL_WARN;
	unsigned burst, rate;

	s[n] = '\0';
	if (n >= 3 && s[0] == '<' && s[1] >= '0' && s[1] <= '3' && s[2] == '>') {
		lvl = (enum log_level)(s[1] - '0');
		s += 3;
	}
	if (lvl < LOG_LVL_WARN)
		lvl = LOG_LVL_WARN; /* a worker's error is its own, not ours */
	if (lvl > log_get_level())
		return;
	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	wl_limits(&burst, &rate);
	if (!bh_bucket_take(&l->l_bucket, burst, rate)) {
		l->l_dropped++;
		return;
	}
	/* The count itself at most every WL_SAY_SECS: it must not flood either. */
	if (l->l_dropped && bh_ratelimit(&l->l_said, WL_SAY_SECS)) {
		log_warnx("worker q%u: %u lines of its log were left out (more than %u a second)",
			  q, l->l_dropped, rate);
		l->l_dropped = 0;
	}
	if (lvl == LOG_LVL_WARN)
		log_warnx("worker q%u: %s", q, s);
	else if (lvl == LOG_LVL_INFO)
		log_info("worker q%u: %s", q, s);
	else
		log_debug("worker q%u: %s", q, s);
}

static void wl_close(uint32_t q)
{
	struct wl *l = &wl_table[q];

	qwatch_stop(&l->l_w);
	if (l->l_n)
		wl_line(q, l, l->l_buf, l->l_n);
	l->l_n = 0;
	if (l->l_dropped)
		log_warnx("worker q%u: %u lines of its log were left out", q, l->l_dropped);
	l->l_dropped = 0;
}

void wl_service(uint32_t q)
{
	struct wl *l = &wl_table[q];
	ssize_t r;

	if (q >= BH_MAX_QUEUES || l->l_w.qw_fd < 0)
		return;
	/* Bounded: a worker that writes without pause does not keep us here. */
	for (int round = 0; round < 16; round++) {
		r = read(l->l_w.qw_fd, l->l_buf + l->l_n, WL_LINE_MAX - l->l_n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			wl_close(q); /* the worker is gone (or we cannot read: same) */
			return;
		}
		l->l_n += (size_t)r;
		for (char *nl; (nl = memchr(l->l_buf, '\n', l->l_n));) {
			size_t len = (size_t)(nl - l->l_buf);

			wl_line(q, l, l->l_buf, len);
			l->l_n -= len + 1;
			memmove(l->l_buf, nl + 1, l->l_n);
		}
		if (l->l_n == WL_LINE_MAX) {
			wl_line(q, l, l->l_buf, l->l_n);
			l->l_n = 0;
		}
	}
}

static void wl_on_read(evutil_socket_t fd, short what, void *arg)
{
	wl_service((uint32_t)(uintptr_t)arg);
}

void wl_init(struct event_base *base)
{
	wl_base = base;
	for (uint32_t q = 0; q < BH_MAX_QUEUES; q++)
		wl_table[q].l_w.qw_fd = -1;
}

int wl_watch(uint32_t q, int fd)
{
	struct wl *l = &wl_table[q];

	wl_close(q);
	memset(&l->l_bucket, 0, sizeof(l->l_bucket));
	l->l_said = 0;
	return qwatch_start(&l->l_w, wl_base, fd, wl_on_read, q);
}

void wl_forget(uint32_t q)
{
	if (q < BH_MAX_QUEUES) {
		wl_service(q); /* what it wrote before it went */
		wl_close(q);
	}
}

int wl_fds(int *fds, uint32_t *qs, int max)
{
	int n = 0;

	for (uint32_t q = 0; q < BH_MAX_QUEUES && n < max; q++)
		if (wl_table[q].l_w.qw_fd >= 0) {
			fds[n] = wl_table[q].l_w.qw_fd;
			qs[n++] = q;
		}
	return n;
}
