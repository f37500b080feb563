/*
 * sectest.c - helpers the security regression tests share (sectest.h).
 * Runs in: security test programs only.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sectest.h"

int sec_log_count(const char *s)
{
	char line[2048];
	int n = 0;
	FILE *f = fopen(it_d.hd_log, "r");

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, s))
			n++;
	fclose(f);
	return n;
}
