/*
 * node_table_lock.c - the node table's lock: a 32-bit futex word in the
 * table's header page, and the parent's watch over it.
 * Runs in: the workers (taking and releasing the lock) and the parent
 * (nt_lockwatch_*: reading the word and releasing it for a holder that died
 * or was killed). Trust: none in the word or the counter beside it; every
 * worker of the device can write them. That is why the lock is not a
 * pthread mutex: a robust mutex keeps list pointers in the shared page, and
 * a worker rewriting them makes a peer's unlock (or the kernel, when the
 * peer exits) write where it chooses. Here nothing in shared memory is ever
 * used as an address: the worst a worker can do is hold the word or write
 * nonsense into it, and the parent bounds how long either lasts.
 *
 * The word is 0 or the holder's tag (its worker id + 1), with
 * NT_LOCK_WAITERS set by a thread that goes to sleep on it (FUTEX_WAIT,
 * shared: the memfd is mapped by several processes), so that the holder's
 * release knows to FUTEX_WAKE. A waiter sleeps in short slices and looks
 * again, since the word may be cleared by someone who does not wake it (the
 * parent does, a hostile worker may not).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "node_table_int.h"
#include "util.h"

#define NT_LOCK_SPIN	 64	     /* looks at the word before sleeping */
#define NT_LOCK_SLICE_NS 100000000ll /* longest sleep before looking again */

static long nt_futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

static inline void nt_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

void nt_set_self(struct nt_table *t, uint32_t self)
{
	t->t_tag = self < NT_MAX_WORKERS ? NT_LOCK_TAG(self) : NT_LOCK_TAG_MASK;
}

void nt_set_stall_report(struct nt_table *t, void (*fn)(void *arg, uint32_t word), void *arg)
{
	t->t_stall_fn = fn;
	t->t_stall_arg = arg;
}

/* The lock is held by someone else: spin briefly, then sleep on the word.
 * Once we have slept, we take it with the waiters bit, since others may
 * sleep too and only the bit makes our release wake them. */
void nt_lock_slow(struct nt_table *t)
{
	uint32_t *w = &t->t_hdr->h_lock, v, want = t->t_tag;
	struct timespec slice = {0, NT_LOCK_SLICE_NS};
	uint64_t report;

	for (int i = 0; i < NT_LOCK_SPIN; i++) {
		v = __atomic_load_n(w, __ATOMIC_RELAXED);
		if (v == 0 && __atomic_compare_exchange_n(w, &v, want, false, __ATOMIC_ACQUIRE,
							  __ATOMIC_RELAXED))
			goto taken;
		nt_cpu_relax();
	}
	want |= NT_LOCK_WAITERS;
	report = bh_now_ns() + NT_LOCK_HOLD_MAX_MS * 1000000ull;
	for (;;) {
		v = __atomic_load_n(w, __ATOMIC_RELAXED);
		if (v == 0) {
			if (__atomic_compare_exchange_n(w, &v, want, false, __ATOMIC_ACQUIRE,
							__ATOMIC_RELAXED))
				break;
			continue;
		}
		if (!(v & NT_LOCK_WAITERS)) {
			if (!__atomic_compare_exchange_n(w, &v, v | NT_LOCK_WAITERS, false,
							 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				continue;
			v |= NT_LOCK_WAITERS;
		}
		/* EAGAIN (the word changed), EINTR, ETIMEDOUT: look again. */
		(void)nt_futex(w, FUTEX_WAIT, v, &slice);
		if (bh_now_ns() >= report) {
			report = bh_now_ns() + NT_LOCK_HOLD_MAX_MS * 1000000ull;
			if (t->t_stall_fn)
				t->t_stall_fn(t->t_stall_arg, __atomic_load_n(w, __ATOMIC_RELAXED));
		}
	}
taken:
	NT_WR(t->t_hdr->h_lock_acq, NT_RD(t->t_hdr->h_lock_acq) + 1);
}

void nt_unlock_wake(struct nt_table *t)
{
	(void)nt_futex(&t->t_hdr->h_lock, FUTEX_WAKE, 1, NULL);
}

/* ---- the parent's watch ---- */

struct nt_lockwatch {
	struct nt_hdr *lw_hdr; /* one page: the header */
};

struct nt_lockwatch *nt_lockwatch_map(int memfd)
{
	struct nt_lockwatch *lw = calloc(1, sizeof(*lw));
	void *base;

	if (!lw)
		return NULL;
	/* The memfd is sealed against shrinking: the page cannot go away. */
	base = mmap(NULL, NT_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (base == MAP_FAILED) {
		free(lw);
		return NULL;
	}
	lw->lw_hdr = base;
	return lw;
}

void nt_lockwatch_unmap(struct nt_lockwatch *lw)
{
	if (!lw)
		return;
	munmap(lw->lw_hdr, NT_HDR_SIZE);
	free(lw);
}

void nt_lockwatch_sample(const struct nt_lockwatch *lw, uint32_t *word, uint32_t *acq)
{
	*word = __atomic_load_n(&lw->lw_hdr->h_lock, __ATOMIC_ACQUIRE);
	*acq = __atomic_load_n(&lw->lw_hdr->h_lock_acq, __ATOMIC_RELAXED);
}

bool nt_lockwatch_release(struct nt_lockwatch *lw, uint32_t word)
{
	uint32_t *w = &lw->lw_hdr->h_lock, cur;
	int tries = 0;

	/* A waiter may set its bit meanwhile: that is still the same holder.
	 * Bounded: a worker rewriting the word without end gets no loop. */
	do {
		cur = __atomic_load_n(w, __ATOMIC_RELAXED);
		if (cur == 0 || (cur & NT_LOCK_TAG_MASK) != (word & NT_LOCK_TAG_MASK) ||
		    ++tries > 100)
			return false;
	} while (
	    !__atomic_compare_exchange_n(w, &cur, 0, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	/* Everyone: the first to look takes it, the rest sleep again. */
	(void)nt_futex(w, FUTEX_WAKE, INT_MAX, NULL);
	return true;
}
