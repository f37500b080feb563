/*
 * test_threadpool.c - the worker's thread pool: where jobs and completions
 * run, FIFO order, inline mode, the pending count, and shutdown.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "threadpool.h"
#include "util.h"

#define NJOBS 64

struct ctx {
	struct tp *tp;
	pthread_t loop_thread;
	atomic_int jobs_off_loop;
	atomic_int jobs_ran;
	atomic_int done_on_loop;
	atomic_int done_ran;
	atomic_int batches;
	atomic_int batch_on_loop;
	atomic_int sig_blocked;
	int order[NJOBS];
	atomic_int norder;
	pthread_mutex_t gate;
};

struct job {
	struct ctx *c;
	int idx;
};

static void job_done(void *arg)
{
	struct job *j = arg;

	if (pthread_equal(pthread_self(), j->c->loop_thread))
		j->c->done_on_loop++;
	j->c->done_ran++;
}

static void job_run(void *arg)
{
	struct job *j = arg;
	struct ctx *c = j->c;
	sigset_t cur;

	pthread_mutex_lock(&c->gate); /* tests may hold jobs back */
	pthread_mutex_unlock(&c->gate);
	if (!pthread_equal(pthread_self(), c->loop_thread))
		c->jobs_off_loop++;
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	if (sigismember(&cur, SIGTERM) && sigismember(&cur, SIGINT) && sigismember(&cur, SIGCHLD))
		c->sig_blocked++;
	c->order[c->norder++] = j->idx;
	c->jobs_ran++;
	tp_complete(c->tp, job_done, j);
}

static void batch_end(void *arg)
{
	struct ctx *c = arg;

	c->batches++;
	if (pthread_equal(pthread_self(), c->loop_thread))
		c->batch_on_loop++;
}

static void ctx_init(struct ctx *c, struct tp *tp)
{
	memset(c, 0, sizeof(*c));
	c->tp = tp;
	c->loop_thread = pthread_self();
	pthread_mutex_init(&c->gate, NULL);
	tp_set_batch_end(tp, batch_end, c);
}

/* Run the loop until want completions have run (or 5 s pass). */
static void loop_until(struct event_base *base, struct ctx *c, int want)
{
	uint64_t end = bh_now_ns() + 5000000000ull;
	struct timeval tick = {0, 10000};

	while (c->done_ran < want && bh_now_ns() < end) {
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
}

Test(threadpool, jobs_run_on_pool_threads_and_completions_on_the_loop)
{
	struct event_base *base = event_base_new();
	struct job jobs[NJOBS];
	struct ctx c;
	struct tp *tp;

	cr_assert_not_null(base);
	tp = tp_create(2, base);
	cr_assert_not_null(tp);
	ctx_init(&c, tp);
	for (int i = 0; i < NJOBS; i++) {
		jobs[i] = (struct job){&c, i};
		tp_submit(tp, job_run, &jobs[i]);
	}
	loop_until(base, &c, NJOBS);
	cr_assert_eq(c.jobs_ran, NJOBS);
	cr_assert_eq(c.jobs_off_loop, NJOBS);
	cr_assert_eq(c.done_ran, NJOBS);
	cr_assert_eq(c.done_on_loop, NJOBS);
	cr_assert_geq(c.batches, 1);
	cr_assert_eq(c.batch_on_loop, c.batches);
	cr_assert_eq(tp_pending(tp), 0);
	tp_destroy(tp);
	event_base_free(base);
}

Test(threadpool, pool_threads_block_asynchronous_signals)
{
	struct event_base *base = event_base_new();
	struct job j;
	struct ctx c;
	struct tp *tp = tp_create(1, base);

	ctx_init(&c, tp);
	j = (struct job){&c, 0};
	tp_submit(tp, job_run, &j);
	loop_until(base, &c, 1);
	cr_assert_eq(c.sig_blocked, 1);
	tp_destroy(tp);
	event_base_free(base);
}

Test(threadpool, one_thread_runs_jobs_in_submission_order)
{
	struct event_base *base = event_base_new();
	struct job jobs[NJOBS];
	struct ctx c;
	struct tp *tp = tp_create(1, base);

	ctx_init(&c, tp);
	pthread_mutex_lock(&c.gate); /* queue them all up first */
	for (int i = 0; i < NJOBS; i++) {
		jobs[i] = (struct job){&c, i};
		tp_submit(tp, job_run, &jobs[i]);
	}
	pthread_mutex_unlock(&c.gate);
	loop_until(base, &c, NJOBS);
	cr_assert_eq(c.norder, NJOBS);
	for (int i = 0; i < NJOBS; i++)
		cr_assert_eq(c.order[i], i);
	tp_destroy(tp);
	event_base_free(base);
}

Test(threadpool, inline_mode_runs_job_completion_and_batch_end_in_the_caller)
{
	struct event_base *base = event_base_new();
	struct job j;
	struct ctx c;
	struct tp *tp = tp_create(0, base);

	cr_assert_not_null(tp);
	ctx_init(&c, tp);
	j = (struct job){&c, 0};
	tp_submit(tp, job_run, &j);
	cr_assert_eq(c.jobs_ran, 1);
	cr_assert_eq(c.jobs_off_loop, 0);
	cr_assert_eq(c.done_ran, 1);
	cr_assert_eq(c.done_on_loop, 1);
	cr_assert_eq(c.batches, 1);
	cr_assert_eq(tp_pending(tp), 0);
	tp_destroy(tp);
	event_base_free(base);
}

Test(threadpool, pending_counts_a_job_until_its_completion_has_run)
{
	struct event_base *base = event_base_new();
	struct job j;
	struct ctx c;
	struct tp *tp = tp_create(2, base);

	ctx_init(&c, tp);
	j = (struct job){&c, 0};
	pthread_mutex_lock(&c.gate);
	tp_submit(tp, job_run, &j);
	cr_assert_eq(tp_pending(tp), 1, "queued or running");
	pthread_mutex_unlock(&c.gate);
	while (c.jobs_ran == 0)
		usleep(1000);
	usleep(10000); /* the job has returned: only its completion is left */
	cr_assert_eq(c.done_ran, 0, "completions wait for the loop");
	cr_assert_eq(tp_pending(tp), 1);
	tp_run_completions(tp);
	cr_assert_eq(c.done_ran, 1);
	cr_assert_eq(tp_pending(tp), 0);
	tp_destroy(tp);
	event_base_free(base);
}

Test(threadpool, destroy_waits_for_queued_jobs_and_runs_their_completions)
{
	struct event_base *base = event_base_new();
	struct job jobs[NJOBS];
	struct ctx c;
	struct tp *tp = tp_create(2, base);

	ctx_init(&c, tp);
	pthread_mutex_lock(&c.gate);
	for (int i = 0; i < NJOBS; i++) {
		jobs[i] = (struct job){&c, i};
		tp_submit(tp, job_run, &jobs[i]);
	}
	pthread_mutex_unlock(&c.gate);
	tp_destroy(tp);
	cr_assert_eq(c.jobs_ran, NJOBS);
	cr_assert_eq(c.done_ran, NJOBS);
	cr_assert_eq(c.done_on_loop, NJOBS);
	event_base_free(base);
}

/* The adaptive window of the loop's ring polling and the pool's idle spin. */
Test(threadpool, poll_window_grows_while_polling_would_pay_and_shrinks_to_nothing)
{
	const uint64_t max = 50000;
	uint64_t w = 0;

	/* short sleeps: 4, 8, 16, 32 us, then capped at max */
	for (uint64_t want = 4000; want < max; want *= 2) {
		w = bh_poll_window(w, 1000, max);
		cr_assert_eq(w, want);
	}
	w = bh_poll_window(w, 1000, max);
	cr_assert_eq(w, max);
	cr_assert_eq(bh_poll_window(w, 1000, max), max);
	/* a sleep between "would have paid" and max: unchanged */
	cr_assert_eq(bh_poll_window(8000, 45000, max), 8000);
	/* long sleeps halve it, and below 4 us it is off */
	w = bh_poll_window(max, 1000000, max);
	cr_assert_eq(w, max / 2);
	while (w)
		w = bh_poll_window(w, 1000000, max);
	cr_assert_eq(bh_poll_window(0, 1000000, max), 0, "an idle guest costs no spinning");
	/* polling off: never grows */
	cr_assert_eq(bh_poll_window(0, 10, 0), 0);
}

/* The once-a-minute gate of the "table full" lines. */
Test(threadpool, ratelimit_lets_one_line_through_per_period)
{
	time_t last = 0;

	cr_assert(bh_ratelimit(&last, 60), "the first line goes out");
	cr_assert_neq(last, 0);
	cr_assert_not(bh_ratelimit(&last, 60), "the second, right after, does not");
	last -= 61;
	cr_assert(bh_ratelimit(&last, 60), "a minute later one goes out again");
}
