/*
 * log.c - logging for the parent and the workers.
 * Runs in: both. Writes one line per call so concurrent processes sharing
 * stderr do not interleave within a line. A worker logs in relay form
 * ("<level>message" lines on its standard error, a pipe to the parent,
 * which tags, limits and writes them: daemon/worker_log.c).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static const char *log_ident = "bulkhead";
static char log_tag[32];
static enum log_level log_level = LOG_LVL_INFO;
static int log_syslog;
static int log_relay;
static int log_journal; /* stderr is systemd's journal: lines carry <N> priorities */

/*
 * Is standard error systemd's journal? systemd says so in JOURNAL_STREAM
 * ("DEVICE:INODE" of the stream it connected), which a process must check
 * against its own descriptor 2: an inherited variable may describe
 * someone else's stderr.
 */
static int log_on_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char end;

	if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &end) != 2 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *ident, enum log_level level, int use_syslog)
{
	log_ident = ident;
	log_level = level;
	log_syslog = use_syslog;
	log_journal = log_on_journal();
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY | O_CLOEXEC, 0640);

	if (fd < 0)
		return -errno;
	if (dup2(fd, STDERR_FILENO) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	close(fd);
	log_journal = log_on_journal();
	return 0;
}

int log_reopen(const char *path)
{
	if (log_syslog) {
		closelog();
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
	return path ? log_open_file(path) : 0;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

void log_set_relay(void)
{
	log_relay = 1;
	log_syslog = 0;
}

void log_set_tag(const char *tag)
{
	snprintf(log_tag, sizeof(log_tag), "%s", tag ? tag : "");
}

enum log_level log_get_level(void)
{
	return log_level;
}

int log_parse_level(const char *s)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

static void log_vwrite(enum log_level lvl, int errnum, const char *fmt, va_list ap)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char msg[1024];
	int n;

	if (lvl > log_level)
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if (errnum && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(errnum));
	if (log_relay) {
		/* One write: the parent reads lines off a pipe, and a write of
		 * at most PIPE_BUF bytes is never split. */
		char line[sizeof(msg) + 8];
		int len = snprintf(line, sizeof(line), "<%d>%s\n", (int)lvl, msg);

		if (len > (int)sizeof(line) - 1) {
			len = (int)sizeof(line) - 1;
			line[len - 1] = '\n';
		}
		if (len > 0)
			(void)!write(STDERR_FILENO, line, (size_t)len);
		return;
	}
	if (log_syslog) {
		if (log_tag[0])
			syslog(prio[lvl], "%s: %s", log_tag, msg);
		else
			syslog(prio[lvl], "%s", msg);
		return;
	}
	{
		/* the journal takes a line's priority from a "<N>" before it */
		char pfx[8] = "";

		if (log_journal)
			snprintf(pfx, sizeof(pfx), "<%d>", prio[lvl]);
		if (log_tag[0])
			dprintf(STDERR_FILENO, "%s%s[%d] %s: %s\n", pfx, log_ident, (int)getpid(),
				log_tag, msg);
		else
			dprintf(STDERR_FILENO, "%s%s[%d]: %s\n", pfx, log_ident, (int)getpid(),
				msg);
	}
}

#define LOG_FN(name, lvl, with_errno)                                                      \
	void name(const char *fmt, ...)                                                    \
	{                                                                                  \
		int saved = errno;                                                         \
		va_list ap;                                                                \
		va_start(ap, fmt);                                                         \
		log_vwrite(lvl, with_errno ? saved : 0, fmt, ap);                          \
		va_end(ap);                                                                \
		errno = saved;                                                             \
	}

LOG_FN(log_warn, LOG_LVL_WARN, 1)
LOG_FN(log_warnx, LOG_LVL_WARN, 0)
LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_debug, LOG_LVL_DEBUG, 0)

void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
