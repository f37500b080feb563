/*
 * policy_names.c - the names a policy file may use for numbers: constants
 * in argument expressions (O_RDONLY, CLONE_THREAD, ...) and errno names
 * after "return". Values come from this build's system headers, so they
 * are right for the architecture built for.
 * Runs in: both; a table lookup of bounded names from policy_parse.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "policy.h"
#include "util.h"

struct pol_const {
	const char *name;
	uint64_t val;
};

#define PC(x)                                                                                      \
	{                                                                                          \
#x, (uint64_t)(x)                                                                  \
	}

/*
 * Named constants usable in argument expressions: what the shipped policies
 * use plus the usual neighbours. Values come from the system headers, so
 * they are right for the architecture we build for.
 */
static const struct pol_const pol_consts[] = {
    /* open(2) and *at(2) */
    PC(O_RDONLY),
    PC(O_WRONLY),
    PC(O_RDWR),
    PC(O_ACCMODE),
    PC(O_CREAT),
    PC(O_EXCL),
    PC(O_NOCTTY),
    PC(O_TRUNC),
    PC(O_APPEND),
    PC(O_NONBLOCK),
    PC(O_DSYNC),
    PC(O_SYNC),
    PC(O_DIRECT),
    PC(O_LARGEFILE),
    PC(O_DIRECTORY),
    PC(O_NOFOLLOW),
    PC(O_NOATIME),
    PC(O_CLOEXEC),
    PC(O_PATH),
    PC(O_TMPFILE),
    PC(O_ASYNC),
    PC(AT_FDCWD),
    PC(AT_SYMLINK_NOFOLLOW),
    PC(AT_REMOVEDIR),
    PC(AT_SYMLINK_FOLLOW),
    PC(AT_NO_AUTOMOUNT),
    PC(AT_EMPTY_PATH),
    PC(AT_EACCESS),
    PC(AT_STATX_SYNC_AS_STAT),
    PC(AT_STATX_FORCE_SYNC),
    PC(AT_STATX_DONT_SYNC),
    /* fcntl(2) and flock(2) */
    PC(F_DUPFD),
    PC(F_DUPFD_CLOEXEC),
    PC(F_GETFD),
    PC(F_SETFD),
    PC(F_GETFL),
    PC(F_SETFL),
    PC(F_GETLK),
    PC(F_SETLK),
    PC(F_SETLKW),
    PC(F_OFD_GETLK),
    PC(F_OFD_SETLK),
    PC(F_OFD_SETLKW),
    PC(F_SETPIPE_SZ),
    PC(F_GETPIPE_SZ),
    PC(F_ADD_SEALS),
    PC(F_GET_SEALS),
    PC(FD_CLOEXEC),
    PC(LOCK_SH),
    PC(LOCK_EX),
    PC(LOCK_NB),
    PC(LOCK_UN),
    PC(SEEK_SET),
    PC(SEEK_CUR),
    PC(SEEK_END),
    PC(SEEK_DATA),
    PC(SEEK_HOLE),
    /* memory */
    PC(PROT_NONE),
    PC(PROT_READ),
    PC(PROT_WRITE),
    PC(PROT_EXEC),
    PC(PROT_GROWSDOWN),
    PC(MAP_SHARED),
    PC(MAP_PRIVATE),
    PC(MAP_FIXED),
    PC(MAP_ANONYMOUS),
    PC(MAP_NORESERVE),
    PC(MAP_STACK),
    PC(MAP_POPULATE),
    PC(MAP_GROWSDOWN),
    PC(MAP_FIXED_NOREPLACE),
    PC(MAP_SHARED_VALIDATE),
    PC(MADV_NORMAL),
    PC(MADV_RANDOM),
    PC(MADV_SEQUENTIAL),
    PC(MADV_WILLNEED),
    PC(MADV_DONTNEED),
    PC(MADV_FREE),
    PC(MADV_DONTFORK),
    PC(MADV_DODUMP),
    PC(MADV_DONTDUMP),
    PC(MADV_HUGEPAGE),
    PC(MADV_NOHUGEPAGE),
    PC(MREMAP_MAYMOVE),
    PC(MREMAP_FIXED),
    PC(MCL_CURRENT),
    PC(MCL_FUTURE),
    /* clone(2) */
    PC(CLONE_VM),
    PC(CLONE_FS),
    PC(CLONE_FILES),
    PC(CLONE_SIGHAND),
    PC(CLONE_PIDFD),
    PC(CLONE_PTRACE),
    PC(CLONE_VFORK),
    PC(CLONE_PARENT),
    PC(CLONE_THREAD),
    PC(CLONE_NEWNS),
    PC(CLONE_SYSVSEM),
    PC(CLONE_SETTLS),
    PC(CLONE_PARENT_SETTID),
    PC(CLONE_CHILD_CLEARTID),
    PC(CLONE_DETACHED),
    PC(CLONE_UNTRACED),
    PC(CLONE_CHILD_SETTID),
    PC(CLONE_NEWCGROUP),
    PC(CLONE_NEWUTS),
    PC(CLONE_NEWIPC),
    PC(CLONE_NEWUSER),
    PC(CLONE_NEWPID),
    PC(CLONE_NEWNET),
    PC(CLONE_IO),
    PC(SIGCHLD),
    /* futex(2) */
    PC(FUTEX_WAIT),
    PC(FUTEX_WAKE),
    PC(FUTEX_FD),
    PC(FUTEX_REQUEUE),
    PC(FUTEX_CMP_REQUEUE),
    PC(FUTEX_WAKE_OP),
    PC(FUTEX_LOCK_PI),
    PC(FUTEX_UNLOCK_PI),
    PC(FUTEX_TRYLOCK_PI),
    PC(FUTEX_WAIT_BITSET),
    PC(FUTEX_WAKE_BITSET),
    PC(FUTEX_WAIT_REQUEUE_PI),
    PC(FUTEX_CMP_REQUEUE_PI),
    PC(FUTEX_LOCK_PI2),
    PC(FUTEX_PRIVATE_FLAG),
    PC(FUTEX_CLOCK_REALTIME),
    PC(FUTEX_CMD_MASK),
    PC(FUTEX_WAIT_PRIVATE),
    PC(FUTEX_WAKE_PRIVATE),
    PC(FUTEX_REQUEUE_PRIVATE),
    PC(FUTEX_CMP_REQUEUE_PRIVATE),
    PC(FUTEX_WAKE_OP_PRIVATE),
    PC(FUTEX_LOCK_PI_PRIVATE),
    PC(FUTEX_UNLOCK_PI_PRIVATE),
    PC(FUTEX_TRYLOCK_PI_PRIVATE),
    PC(FUTEX_WAIT_BITSET_PRIVATE),
    PC(FUTEX_WAKE_BITSET_PRIVATE),
    /* sockets */
    PC(AF_UNIX),
    PC(AF_INET),
    PC(AF_INET6),
    PC(AF_NETLINK),
    PC(SOCK_STREAM),
    PC(SOCK_DGRAM),
    PC(SOCK_SEQPACKET),
    PC(SOCK_RAW),
    PC(SOCK_NONBLOCK),
    PC(SOCK_CLOEXEC),
    PC(SOL_SOCKET),
    PC(SO_REUSEADDR),
    PC(SO_TYPE),
    PC(SO_ERROR),
    PC(SO_SNDBUF),
    PC(SO_RCVBUF),
    PC(SO_KEEPALIVE),
    PC(SO_PEERCRED),
    PC(SO_PASSCRED),
    PC(SO_DOMAIN),
    PC(SO_PROTOCOL),
    PC(SO_RCVTIMEO),
    PC(SO_SNDTIMEO),
    PC(MSG_PEEK),
    PC(MSG_DONTWAIT),
    PC(MSG_NOSIGNAL),
    PC(MSG_CMSG_CLOEXEC),
    PC(MSG_TRUNC),
    PC(MSG_CTRUNC),
    PC(MSG_WAITALL),
    PC(SHUT_RD),
    PC(SHUT_WR),
    PC(SHUT_RDWR),
    PC(IPPROTO_IP),
    PC(IPPROTO_IPV6),
    PC(IPPROTO_TCP),
    PC(TCP_NODELAY),
    PC(TCP_KEEPIDLE),
    PC(TCP_KEEPINTVL),
    PC(TCP_KEEPCNT),
    /* ioctl(2) */
    PC(FIONBIO),
    PC(FIONREAD),
    PC(FIOCLEX),
    PC(FIONCLEX),
    PC(TCGETS),
    PC(TCSETS),
    PC(TIOCGWINSZ),
    PC(TIOCGPGRP),
    /* event sources, signals, timers */
    PC(EFD_CLOEXEC),
    PC(EFD_NONBLOCK),
    PC(EFD_SEMAPHORE),
    PC(EPOLL_CLOEXEC),
    PC(EPOLL_CTL_ADD),
    PC(EPOLL_CTL_MOD),
    PC(EPOLL_CTL_DEL),
    PC(TFD_CLOEXEC),
    PC(TFD_NONBLOCK),
    PC(SIG_BLOCK),
    PC(SIG_UNBLOCK),
    PC(SIG_SETMASK),
    PC(SIGSYS),
    PC(SIGKILL),
    PC(SIGTERM),
    PC(SIGABRT),
    PC(SIGSEGV),
    PC(SIGBUS),
    PC(SIGPIPE),
    PC(CLOCK_REALTIME),
    PC(CLOCK_MONOTONIC),
    PC(CLOCK_PROCESS_CPUTIME_ID),
    PC(CLOCK_THREAD_CPUTIME_ID),
    PC(CLOCK_MONOTONIC_RAW),
    PC(CLOCK_REALTIME_COARSE),
    PC(CLOCK_MONOTONIC_COARSE),
    PC(CLOCK_BOOTTIME),
    PC(WNOHANG),
    PC(WUNTRACED),
    PC(WCONTINUED),
    PC(WEXITED),
    PC(WNOWAIT),
    /* prctl(2), limits, randomness */
    PC(PR_SET_PDEATHSIG),
    PC(PR_GET_PDEATHSIG),
    PC(PR_SET_NAME),
    PC(PR_GET_NAME),
    PC(PR_SET_DUMPABLE),
    PC(PR_GET_DUMPABLE),
    PC(PR_SET_NO_NEW_PRIVS),
    PC(PR_GET_NO_NEW_PRIVS),
    PC(PR_SET_SECCOMP),
    PC(PR_GET_SECCOMP),
    PC(PR_CAPBSET_READ),
    PC(PR_CAPBSET_DROP),
    PC(PR_SET_KEEPCAPS),
    PC(PR_GET_KEEPCAPS),
    PC(PR_CAP_AMBIENT),
    PC(PR_SET_TIMERSLACK),
    PC(PR_SET_VMA),
    PC(RLIMIT_CPU),
    PC(RLIMIT_FSIZE),
    PC(RLIMIT_DATA),
    PC(RLIMIT_STACK),
    PC(RLIMIT_CORE),
    PC(RLIMIT_NOFILE),
    PC(RLIMIT_AS),
    PC(RLIMIT_NPROC),
    PC(RLIMIT_MEMLOCK),
    PC(RUSAGE_THREAD),
    PC(GRND_NONBLOCK),
    PC(GRND_RANDOM),
    /* file operations */
    PC(RENAME_NOREPLACE),
    PC(RENAME_EXCHANGE),
    PC(RENAME_WHITEOUT),
    PC(XATTR_CREATE),
    PC(XATTR_REPLACE),
    PC(FALLOC_FL_KEEP_SIZE),
    PC(FALLOC_FL_PUNCH_HOLE),
    PC(FALLOC_FL_ZERO_RANGE),
    PC(FALLOC_FL_COLLAPSE_RANGE),
    PC(FALLOC_FL_INSERT_RANGE),
    PC(FALLOC_FL_UNSHARE_RANGE),
    PC(S_IFMT),
    PC(S_IFREG),
    PC(S_IFDIR),
    PC(S_IFLNK),
    PC(S_IFCHR),
    PC(S_IFBLK),
    PC(S_IFIFO),
    PC(S_IFSOCK),
    PC(F_OK),
    PC(R_OK),
    PC(W_OK),
    PC(X_OK),
};

static const struct pol_const pol_errnos[] = {
    PC(EPERM),	 PC(ENOENT),	PC(ESRCH),	  PC(EINTR),	       PC(EIO),
    PC(ENXIO),	 PC(E2BIG),	PC(ENOEXEC),	  PC(EBADF),	       PC(ECHILD),
    PC(EAGAIN),	 PC(ENOMEM),	PC(EACCES),	  PC(EFAULT),	       PC(EBUSY),
    PC(EEXIST),	 PC(EXDEV),	PC(ENODEV),	  PC(ENOTDIR),	       PC(EISDIR),
    PC(EINVAL),	 PC(ENFILE),	PC(EMFILE),	  PC(ENOTTY),	       PC(ETXTBSY),
    PC(EFBIG),	 PC(ENOSPC),	PC(ESPIPE),	  PC(EROFS),	       PC(EMLINK),
    PC(EPIPE),	 PC(ERANGE),	PC(ENOSYS),	  PC(ENOTSUP),	       PC(EOPNOTSUPP),
    PC(ENODATA), PC(ENOTSOCK),	PC(EAFNOSUPPORT), PC(EPROTONOSUPPORT), PC(ENAMETOOLONG),
    PC(ELOOP),	 PC(ENOTEMPTY),
};

#undef PC

/* 0 and *val for the name of len bytes in table t, or -ENOENT. */
static int pol_name_value(const struct pol_const *t, size_t n, const char *name, size_t len,
			  uint64_t *val)
{
	for (size_t i = 0; i < n; i++) {
		if (strlen(t[i].name) == len && strncmp(t[i].name, name, len) == 0) {
			*val = t[i].val;
			return 0;
		}
	}
	return -ENOENT;
}

int pol_const_value(const char *name, size_t len, uint64_t *val)
{
	return pol_name_value(pol_consts, BH_ARRAY_SIZE(pol_consts), name, len, val);
}

int pol_errno_value(const char *name, size_t len, int *val)
{
	uint64_t v;
	int r = pol_name_value(pol_errnos, BH_ARRAY_SIZE(pol_errnos), name, len, &v);

	if (r == 0)
		*val = (int)v;
	return r;
}
