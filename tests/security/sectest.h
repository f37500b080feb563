/*
 * sectest.h - helpers the security regression tests share, on top of the
 * integration fixture (itest.h): the daemon's log read line by line, and
 * the check that the daemon serves the next front end after an attack.
 * Runs in: security test programs only.
 */
#ifndef BH_SECTEST_H
#define BH_SECTEST_H

#include "itest.h"

/* Lines of it_d's log holding s. */
int sec_log_count(const char *s);
/* A new front end is served: up, INIT and a LOOKUP on queue 1 (the daemon
 * may still be ending the last connection, so it is retried). */

#endif
