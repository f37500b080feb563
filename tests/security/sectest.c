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

void sec_wait_log(const char *s)
{
	for (int i = 0; i < 250 && !hx_log_contains(&it_d, s); i++)
		usleep(20000);
}

void sec_served_normally(void)
{
	struct vufe *fe = NULL;
	int r = -1;

	for (int i = 0; i < 100 && r; i++) {
		vufe_free(fe);
		fe = it_connect(NULL);
		r = it_up_init(fe);
		if (r)
			usleep(50000);
	}
	cr_assert_eq(r, 0, "the next front end was not served (%d)", r);
	cr_assert_neq(it_lookup(fe, 1, "small.txt"), 0);
	vufe_free(fe);
}
