/*
 * guest_fault.c - the worker's SIGBUS handler. Guest memory is a file the
 * front end keeps (a memfd): one that is not sealed against shrinking can be
 * cut under our MAP_SHARED mapping at any time, and the next access to a
 * lost page, on whatever thread, raises SIGBUS. That is the front end
 * breaking the device, not a bug of ours: the parent hears which region and
 * offset faulted, logs it, and drops that front end's connection. System
 * calls that touch the lost pages (preadv, pwritev) fail with EFAULT
 * instead, which fails that request only.
 * Runs in: the worker (sandboxed), in a signal handler on any thread, so
 * only async-signal-safe calls the worker policy allows (sendmsg, ppoll,
 * rt_sigaction, exit_group). Trusts guest_mem.c's registry of live
 * mappings; reads nothing from guest memory.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef BH_TEST_HOOKS
#include <sys/mman.h>
#endif

#include "guest_fault.h"
#include "ipc.h"
#include "virtqueue.h"

/* How long a faulting worker waits for the parent to end it. */
#define GF_WAIT_PARENT_S 10
/* A bug's report gets this head start on the death it announces. */
#define GF_WAIT_BUG_MS 200

static int gf_report_fd = -1;
static int gf_reported; /* atomic: one report per process */

/* snprintf is not async-signal-safe: a bounded string builder. */
struct gf_buf {
	char *b_p;
	size_t b_len, b_cap;
};

static void gf_puts(struct gf_buf *b, const char *s)
{
	while (*s && b->b_len + 1 < b->b_cap)
		b->b_p[b->b_len++] = *s++;
	b->b_p[b->b_len] = '\0';
}

static void gf_putx(struct gf_buf *b, uint64_t v)
{
	char tmp[19];
	int i = (int)sizeof(tmp) - 1;

	tmp[i] = '\0';
	do
		tmp[--i] = "0123456789abcdef"[v & 0xf];
	while ((v >>= 4) != 0 && i > 2);
	tmp[--i] = 'x';
	tmp[--i] = '0';
	gf_puts(b, tmp + i);
}

static void gf_putd(struct gf_buf *b, int64_t v)
{
	char tmp[21];
	int i = (int)sizeof(tmp) - 1;
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	tmp[i] = '\0';
	do
		tmp[--i] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		tmp[--i] = '-';
	gf_puts(b, tmp + i);
}

static void gf_send(struct ipc_notice *n)
{
	(void)ipc_send(gf_report_fd, IPC_NOTICE, 0, n, sizeof(*n), NULL, 0);
}

/* The parent kills us and closes the channel on the notice; whichever we
 * see first, or the timeout, ends the wait. */
static void gf_wait_parent(void)
{
	struct pollfd p = {.fd = gf_report_fd, .events = 0};
	struct timespec ts = {GF_WAIT_PARENT_S, 0};

	(void)ppoll(&p, 1, &ts, NULL);
}

static void gf_on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	struct ipc_notice n;
	struct gf_buf b = {n.in_text, 0, sizeof(n.in_text)};
	struct gm_fault f;
	struct sigaction dfl;
	struct timespec ts = {0, GF_WAIT_BUG_MS * 1000000L};

	(void)sig;
	(void)ctx;
	memset(&n, 0, sizeof(n));
	n.in_kind = IPC_NOTICE_GUEST_MEMORY;
	/* si_code <= 0: sent by a process, not a fault; no address to look up */
	if (si->si_code > 0 && gm_fault_find(si->si_addr, &f)) {
		/* Other threads may fault on the same pages meanwhile: one report. */
		if (!__atomic_exchange_n(&gf_reported, 1, __ATOMIC_ACQ_REL)) {
			n.in_pad = f.f_index;
			gf_puts(&b, "gpa ");
			gf_putx(&b, f.f_gpa);
			gf_puts(&b, " at file offset ");
			gf_putx(&b, f.f_file_off);
			gf_puts(&b, " is gone; region gpa ");
			gf_putx(&b, f.f_region_gpa);
			gf_puts(&b, " size ");
			gf_putx(&b, f.f_region_size);
			gf_puts(&b, f.f_sealed ? ", file sealed" : ", file not sealed");
			if (si->si_code != BUS_ADRERR) {
				gf_puts(&b, ", si_code ");
				gf_putd(&b, si->si_code);
			}
			gf_send(&n);
		}
		gf_wait_parent();
		_exit(128 + SIGBUS);
	}
	n.in_pad = IPC_GUEST_FAULT_OUTSIDE;
	gf_puts(&b, "SIGBUS at address ");
	gf_putx(&b, (uintptr_t)si->si_addr);
	gf_puts(&b, " outside guest memory (si_code ");
	gf_putd(&b, si->si_code);
	gf_puts(&b, ")");
	gf_send(&n);
	(void)ppoll(NULL, 0, &ts, NULL);
	if (si->si_code <= 0)
		_exit(128 + SIGBUS); /* nothing will fault again */
	/* Default action from here: the access faults again, and the kernel
	 * delivers that SIGBUS even to a PID namespace's init. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	(void)sigaction(SIGBUS, &dfl, NULL);
}

int gf_install(int report_fd)
{
	struct sigaction sa;

	gf_report_fd = report_fd;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = gf_on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}

#ifdef BH_TEST_HOOKS
static volatile uint8_t *gf_test_page;

void gf_test_prepare(void)
{
	int fd = memfd_create("bulkhead-test-sigbus", MFD_CLOEXEC);
	void *p;

	if (fd < 0 || ftruncate(fd, 4096) < 0)
		goto out;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED && ftruncate(fd, 0) == 0)
		gf_test_page = p;
out:
	if (fd >= 0)
		close(fd);
}

void gf_test_fault(void)
{
	if (gf_test_page)
		(void)gf_test_page[0];
}
#endif
