/*
 * log.h - logging for the parent and the workers.
 * Runs in: both. Messages go to stderr (journald adds the time) or syslog.
 */
#ifndef BH_LOG_H
#define BH_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *ident, enum log_level level, int use_syslog);
/* Standard error becomes path, opened for appending (created 0640):
 * 0 or -errno. */
int log_open_file(const char *path);
/* SIGHUP: reconnect to syslog, and reopen path as log_open_file does if it
 * is not NULL (a file rotated away). 0 or -errno. */
int log_reopen(const char *path);
void log_set_level(enum log_level level);
/* A short tag printed after the program name, e.g. "q1" for a worker. */
void log_set_tag(const char *tag);
/* Worker: write "<level>message" lines to stderr for the parent to relay,
 * whatever log_init said (no syslog, no name, no tag). */
void log_set_relay(void);
enum log_level log_get_level(void);
/* Parse "error|warn|info|debug"; -1 if unknown. */
int log_parse_level(const char *s);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* + strerror(errno) */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
