/*
 * threadpool.c - a fixed set of threads running blocking back-end calls in
 * FIFO order, and a completion queue drained on the worker's libevent loop
 * (woken through a non-blocking eventfd, one wake-up per batch).
 * Runs in: the worker. Handles no guest data itself: jobs and completions
 * are opaque callbacks.
 *
 * Pending accounting: a job counts from tp_submit until it has returned,
 * and a completion from tp_complete until done() has run on the loop. A job
 * queues its completion before it returns, so the count never dips to 0
 * between the two.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "threadpool.h"
#include "util.h"

struct tp_item {
	struct tp_item *ti_next;
	tp_fn ti_fn;
	void *ti_arg;
};

struct tp_list {
	struct tp_item *l_head;
	struct tp_item *l_tail;
};

struct tp {
	unsigned tp_nthreads;
	pthread_t *tp_threads;
	pthread_mutex_t tp_lock; /* jobs, completions, counters */
	pthread_cond_t tp_cond;	 /* a job was queued, or stop */
	struct tp_list tp_jobs;
	struct tp_list tp_done;
	unsigned tp_jobs_pending; /* queued or running */
	unsigned tp_done_pending; /* queued completions */
	int tp_done_ready;	  /* tp_done non-empty; read without the lock */
	int tp_jobs_ready;	  /* tp_jobs non-empty; read without the lock */
	uint64_t tp_spin_max;	  /* longest idle spin (tp_set_spin), 0 = none */
	int tp_polling;		  /* the loop watches tp_done_ready: no wake-up needed */
	int tp_stop;
	int tp_joined; /* threads gone: submit runs inline */
	int tp_efd;
	struct event *tp_ev;
	tp_fn tp_batch_fn;
	void *tp_batch_arg;
};

static void tp_list_push(struct tp_list *l, struct tp_item *it)
{
	it->ti_next = NULL;
	if (l->l_tail)
		l->l_tail->ti_next = it;
	else
		l->l_head = it;
	l->l_tail = it;
}

static struct tp_item *tp_list_pop(struct tp_list *l)
{
	struct tp_item *it = l->l_head;

	if (it) {
		l->l_head = it->ti_next;
		if (!l->l_head)
			l->l_tail = NULL;
	}
	return it;
}

static struct tp_item *tp_item_new(tp_fn fn, void *arg)
{
	struct tp_item *it = malloc(sizeof(*it));

	/* Losing a job would lose a guest request for good. */
	if (!it)
		fatal("%s: malloc", __func__);
	it->ti_fn = fn;
	it->ti_arg = arg;
	return it;
}

/*
 * Out of jobs: watch for the next one for a while before sleeping on the
 * condition variable (a sleeping thread costs the loop a futex wake and the
 * job a scheduler round trip, often to an idle CPU). Adaptive like the
 * loop's ring polling (worker.c): the window grows while jobs keep coming
 * back within tp_spin_max of going idle and shrinks when they do not.
 * Locked on entry and exit.
 */
static void tp_idle(struct tp *tp, uint64_t *spin_ns)
{
	uint64_t now, end, slept;

	if (*spin_ns) {
		pthread_mutex_unlock(&tp->tp_lock);
		now = bh_now_ns();
		end = now + *spin_ns;
		while (!__atomic_load_n(&tp->tp_jobs_ready, __ATOMIC_ACQUIRE) &&
		       (now = bh_now_ns()) < end)
			sched_yield(); /* the loop and the front end come first */
		pthread_mutex_lock(&tp->tp_lock);
		if (tp->tp_jobs.l_head || tp->tp_stop)
			return;
	}
	now = bh_now_ns();
	while (!tp->tp_jobs.l_head && !tp->tp_stop)
		pthread_cond_wait(&tp->tp_cond, &tp->tp_lock);
	if (tp->tp_spin_max == 0)
		return;
	slept = bh_now_ns() - now;
	*spin_ns = bh_poll_window(*spin_ns, slept, tp->tp_spin_max);
}

static void *tp_thread_main(void *arg)
{
	struct tp *tp = arg;
	struct tp_item *it;
	uint64_t spin_ns = 0;

	pthread_mutex_lock(&tp->tp_lock);
	for (;;) {
		if (!tp->tp_jobs.l_head && !tp->tp_stop)
			tp_idle(tp, &spin_ns);
		it = tp_list_pop(&tp->tp_jobs);
		if (!it)
			break; /* stopping and nothing left */
		if (!tp->tp_jobs.l_head)
			__atomic_store_n(&tp->tp_jobs_ready, 0, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&tp->tp_lock);
		it->ti_fn(it->ti_arg);
		free(it);
		pthread_mutex_lock(&tp->tp_lock);
		tp->tp_jobs_pending--;
	}
	pthread_mutex_unlock(&tp->tp_lock);
	return NULL;
}

static void tp_on_event(evutil_socket_t fd, short what, void *arg)
{
	struct tp *tp = arg;

	bh_eventfd_drain(tp->tp_efd);
	tp_run_completions(tp);
}

struct tp *tp_create(unsigned nthreads, struct event_base *base)
{
	sigset_t all, old;
	struct tp *tp;
	unsigned i;
	int r;

	if (!(tp = calloc(1, sizeof(*tp))))
		return NULL;
	tp->tp_nthreads = nthreads;
	tp->tp_efd = -1;
	pthread_mutex_init(&tp->tp_lock, NULL);
	pthread_cond_init(&tp->tp_cond, NULL);
	if (nthreads == 0) {
		tp->tp_joined = 1;
		return tp;
	}

	tp->tp_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (tp->tp_efd < 0)
		goto fail;
	tp->tp_ev = event_new(base, tp->tp_efd, EV_READ | EV_PERSIST, tp_on_event, tp);
	if (!tp->tp_ev || event_add(tp->tp_ev, NULL) < 0) {
		errno = ENOMEM;
		goto fail;
	}
	if (!(tp->tp_threads = calloc(nthreads, sizeof(pthread_t))))
		goto fail;

	/* Signals belong to the loop thread. Threads inherit the mask, so set
	 * it around pthread_create (no window). Faults stay deliverable. */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < nthreads; i++) {
		r = pthread_create(&tp->tp_threads[i], NULL, tp_thread_main, tp);
		if (r != 0) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			tp->tp_nthreads = i;
			tp_destroy(tp);
			errno = r;
			return NULL;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return tp;

fail:
	r = errno;
	if (tp->tp_ev)
		event_free(tp->tp_ev);
	if (tp->tp_efd >= 0)
		close(tp->tp_efd);
	pthread_cond_destroy(&tp->tp_cond);
	pthread_mutex_destroy(&tp->tp_lock);
	free(tp);
	errno = r;
	return NULL;
}

void tp_destroy(struct tp *tp)
{
	unsigned i;

	if (!tp)
		return;
	pthread_mutex_lock(&tp->tp_lock);
	tp->tp_stop = 1;
	pthread_cond_broadcast(&tp->tp_cond);
	pthread_mutex_unlock(&tp->tp_lock);
	/* Threads empty the queue before they leave. */
	for (i = 0; i < tp->tp_nthreads; i++)
		pthread_join(tp->tp_threads[i], NULL);
	pthread_mutex_lock(&tp->tp_lock);
	tp->tp_joined = 1;
	pthread_mutex_unlock(&tp->tp_lock);
	/* Completions may queue more completions (or inline jobs). */
	while (tp->tp_done.l_head)
		tp_run_completions(tp);

	if (tp->tp_ev)
		event_free(tp->tp_ev);
	if (tp->tp_efd >= 0)
		close(tp->tp_efd);
	free(tp->tp_threads);
	pthread_cond_destroy(&tp->tp_cond);
	pthread_mutex_destroy(&tp->tp_lock);
	free(tp);
}

void tp_submit(struct tp *tp, tp_fn fn, void *arg)
{
	pthread_mutex_lock(&tp->tp_lock);
	if (tp->tp_joined) {
		pthread_mutex_unlock(&tp->tp_lock);
		fn(arg);
		return;
	}
	tp_list_push(&tp->tp_jobs, tp_item_new(fn, arg));
	__atomic_store_n(&tp->tp_jobs_ready, 1, __ATOMIC_RELEASE);
	tp->tp_jobs_pending++;
	pthread_cond_signal(&tp->tp_cond);
	pthread_mutex_unlock(&tp->tp_lock);
}

void tp_complete(struct tp *tp, tp_fn done, void *arg)
{
	int wake;

	if (tp->tp_nthreads == 0) {
		/* Inline mode: nothing is ever queued, so the batch is this one
		 * completion; the hook still runs so the guest gets notified. */
		done(arg);
		if (tp->tp_batch_fn)
			tp->tp_batch_fn(tp->tp_batch_arg);
		return;
	}
	pthread_mutex_lock(&tp->tp_lock);
	wake = tp->tp_done.l_head == NULL;
	tp_list_push(&tp->tp_done, tp_item_new(done, arg));
	__atomic_store_n(&tp->tp_done_ready, 1, __ATOMIC_RELEASE);
	tp->tp_done_pending++;
	pthread_mutex_unlock(&tp->tp_lock);
	/* A non-empty queue already has a wake-up on its way. A polling loop
	 * needs none: of our store to tp_done_ready and its store to
	 * tp_polling (tp_set_polling), each side sees the other's after its
	 * full fence, so it either sees the polling flag here or sees the
	 * completion when it stops polling. */
	if (wake) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&tp->tp_polling, __ATOMIC_RELAXED))
			bh_eventfd_signal(tp->tp_efd);
	}
}

void tp_set_batch_end(struct tp *tp, tp_fn fn, void *arg)
{
	tp->tp_batch_fn = fn;
	tp->tp_batch_arg = arg;
}

void tp_set_spin(struct tp *tp, uint64_t max_ns)
{
	pthread_mutex_lock(&tp->tp_lock);
	tp->tp_spin_max = max_ns;
	pthread_mutex_unlock(&tp->tp_lock);
}

bool tp_set_polling(struct tp *tp, bool on)
{
	__atomic_store_n(&tp->tp_polling, on ? 1 : 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return tp_has_completions(tp);
}

bool tp_has_completions(struct tp *tp)
{
	return __atomic_load_n(&tp->tp_done_ready, __ATOMIC_ACQUIRE) != 0;
}

bool tp_busy(struct tp *tp)
{
	bool busy;

	pthread_mutex_lock(&tp->tp_lock);
	busy = tp->tp_jobs_pending >= tp->tp_nthreads;
	pthread_mutex_unlock(&tp->tp_lock);
	return busy;
}

unsigned tp_pending(struct tp *tp)
{
	unsigned n;

	pthread_mutex_lock(&tp->tp_lock);
	n = tp->tp_jobs_pending + tp->tp_done_pending;
	pthread_mutex_unlock(&tp->tp_lock);
	return n;
}

void tp_run_completions(struct tp *tp)
{
	struct tp_list batch;
	struct tp_item *it;
	unsigned n = 0;

	pthread_mutex_lock(&tp->tp_lock);
	batch = tp->tp_done;
	tp->tp_done.l_head = tp->tp_done.l_tail = NULL;
	__atomic_store_n(&tp->tp_done_ready, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&tp->tp_lock);

	while ((it = tp_list_pop(&batch))) {
		it->ti_fn(it->ti_arg);
		free(it);
		n++;
		/* Counted down one by one: done() may look at tp_pending. */
		pthread_mutex_lock(&tp->tp_lock);
		tp->tp_done_pending--;
		pthread_mutex_unlock(&tp->tp_lock);
	}
	if (n && tp->tp_batch_fn)
		tp->tp_batch_fn(tp->tp_batch_arg);
}
