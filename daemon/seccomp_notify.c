/*
 * seccomp_notify.c - the --seccomp=log supervisor. Each worker's filter
 * answers what its policy does not allow with SECCOMP_RET_USER_NOTIF; the
 * worker hands the listener to us, and for every notification we let the
 * call proceed (SECCOMP_USER_NOTIF_FLAG_CONTINUE) and print each distinct
 * syscall once as a line to paste into the policy. No kernel audit log is
 * involved (it may be unreadable: dmesg_restrict, ProtectKernelLogs).
 * Runs in: the parent. The notification's contents come from a worker's
 * registers and are only printed, never acted on; CONTINUE is a tuning aid
 * and no security boundary, which the man page says.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <seccomp.h>

#include "bulkhead.h"
#include "bulkheadd.h"
#include "log.h"
#include "policy.h"

#define SECLOG_MAX_NR 1024 /* x86_64 numbers stay far below */

static struct parent_env *sl_env;
static struct qwatch sl_tab[BH_MAX_QUEUES]; /* each worker's listener */
static uint8_t sl_seen[SECLOG_MAX_NR / 8]; /* syscalls already printed */

static void seclog_on_read(evutil_socket_t fd, short what, void *arg)
{
	seclog_service((uint32_t)(uintptr_t)arg);
}

void seclog_init(struct parent_env *env)
{
	sl_env = env;
	for (uint32_t q = 0; q < BH_MAX_QUEUES; q++)
		sl_tab[q].qw_fd = -1;
}

int seclog_watch(uint32_t q, int fd)
{
	return qwatch_start(&sl_tab[q], sl_env->pe_base, fd, seclog_on_read, q);
}

void seclog_forget(uint32_t q)
{
	qwatch_stop(&sl_tab[q]);
}

int seclog_fds(int *fds, uint32_t *qs, int max)
{
	int n = 0;

	for (uint32_t q = 0; q < BH_MAX_QUEUES && n < max; q++) {
		if (sl_tab[q].qw_fd < 0)
			continue;
		fds[n] = sl_tab[q].qw_fd;
		qs[n++] = q;
	}
	return n;
}

/* Print the policy line for a call the worker's policy would deny. */
static void seclog_report(uint32_t q, const struct seccomp_notif *req)
{
	const struct seccomp_data *d = &req->data;
	enum pol_action act;
	char *name;
	int e;

	if (d->nr >= 0 && d->nr < SECLOG_MAX_NR) {
		if (sl_seen[d->nr / 8] & (1u << (d->nr % 8)))
			return;
		sl_seen[d->nr / 8] |= (uint8_t)(1u << (d->nr % 8));
	}
	name = seccomp_syscall_resolve_num_arch(d->arch, d->nr);
	if (name && sl_env->pe_worker_set && pol_lookup(sl_env->pe_worker_set, name, &act, &e) == 0)
		log_warnx("seccomp log: %s would deny: `%s` (worker q%u) with arguments "
			  "%#llx, %#llx, %#llx, %#llx: its line there does not allow them",
			  sl_env->pe_worker_policy, name, q, (unsigned long long)d->args[0],
			  (unsigned long long)d->args[1], (unsigned long long)d->args[2],
			  (unsigned long long)d->args[3]);
	else if (name)
		log_warnx("seccomp log: %s would deny: `%s: 1` (worker q%u)",
			  sl_env->pe_worker_policy, name, q);
	else
		log_warnx("seccomp log: %s would deny system call %d (worker q%u), which "
			  "libseccomp cannot name",
			  sl_env->pe_worker_policy, d->nr, q);
	free(name);
}

void seclog_service(uint32_t q)
{
	struct qwatch *s = &sl_tab[q];
	struct seccomp_notif *req = NULL;
	struct seccomp_notif_resp *resp = NULL;
	struct pollfd p = {.fd = s->qw_fd, .events = POLLIN};
	int r;

	if (s->qw_fd < 0)
		return;
	/* RECV blocks until a notification comes: only ask when one is there.
	 * HUP alone: the worker and its filter are gone. */
	if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) {
		if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
			seclog_forget(q);
		return;
	}
	if (seccomp_notify_alloc(&req, &resp) < 0) {
		log_warnx("seccomp log: out of memory");
		return;
	}
	r = seccomp_notify_receive(s->qw_fd, req);
	if (r < 0) {
		/* The worker is gone (its filter with it): nothing will come. */
		log_debug("seccomp log: worker q%u listener: %s", q, strerror(-r));
		seclog_forget(q);
		goto out;
	}
	resp->id = req->id;
	resp->val = 0;
	resp->error = 0;
	resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	r = seccomp_notify_respond(s->qw_fd, resp);
	if (r < 0 && r != -ENOENT)
		log_warnx("seccomp log: worker q%u: cannot let the call through: %s", q,
			  strerror(-r));
	seclog_report(q, req);
out:
	seccomp_notify_free(req, resp);
}
