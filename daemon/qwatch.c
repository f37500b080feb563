/*
 * qwatch.c - a descriptor of one queue's worker that the parent's event
 * loop reads from (its seccomp listener, its standard error pipe): the
 * descriptor and its persistent read event, started and stopped together.
 * Runs in: the parent, on its event loop.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include <event2/event.h>

#include "bulkheadd.h"

int qwatch_start(struct qwatch *w, struct event_base *base, int fd,
		 void (*cb)(int, short, void *), uint32_t q)
{
	qwatch_stop(w);
	w->qw_ev = event_new(base, fd, EV_READ | EV_PERSIST, cb, (void *)(uintptr_t)q);
	if (!w->qw_ev || event_add(w->qw_ev, NULL) < 0) {
		if (w->qw_ev)
			event_free(w->qw_ev);
		w->qw_ev = NULL;
		close(fd);
		return -ENOMEM;
	}
	w->qw_fd = fd;
	return 0;
}

void qwatch_stop(struct qwatch *w)
{
	if (w->qw_ev)
		event_free(w->qw_ev);
	w->qw_ev = NULL;
	if (w->qw_fd >= 0)
		close(w->qw_fd);
	w->qw_fd = -1;
}
