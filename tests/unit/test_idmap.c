/*
 * test_idmap.c - the parent's --uid-map/--gid-map and --translate-uid/-gid
 * values (daemon/userns.c): repeated options add lines in the order given,
 * as libvirt's session form does; a line whose namespace (guest) or host
 * ids overlap an earlier one, a 65th line and a malformed value are refused
 * with a message naming the option and, for an overlap, the earlier line.
 * Runs in: unit test program only.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bulkheadd.h"

static struct uns_map im_map;
static char im_err[1024];

static void im_setup(void)
{
	memset(&im_map, 0, sizeof(im_map));
	im_err[0] = '\0';
}

TestSuite(idmap, .init = im_setup);

/* Run the parser with its standard error captured in im_err. */
static int im_parse(int translate, const char *opt, const char *arg)
{
	int mfd = memfd_create("stderr", MFD_CLOEXEC), saved = dup(STDERR_FILENO), r;
	ssize_t n;

	cr_assert_geq(mfd, 0);
	cr_assert_geq(saved, 0);
	fflush(stderr);
	cr_assert_geq(dup2(mfd, STDERR_FILENO), 0);
	r = translate ? uns_parse_translate(opt, arg, &im_map) : uns_parse_idmap(opt, arg, &im_map);
	fflush(stderr);
	cr_assert_geq(dup2(saved, STDERR_FILENO), 0);
	close(saved);
	n = pread(mfd, im_err, sizeof(im_err) - 1, 0);
	cr_assert_geq(n, 0);
	im_err[n] = '\0';
	close(mfd);
	return r;
}

static void im_line(unsigned i, uint32_t ns, uint32_t host, uint32_t count)
{
	cr_assert_lt(i, im_map.um_n);
	cr_expect_eq(im_map.um_lines[i].ul_ns, ns, "line %u: ns %u", i, im_map.um_lines[i].ul_ns);
	cr_expect_eq(im_map.um_lines[i].ul_host, host, "line %u: host %u", i,
		     im_map.um_lines[i].ul_host);
	cr_expect_eq(im_map.um_lines[i].ul_count, count, "line %u: count %u", i,
		     im_map.um_lines[i].ul_count);
}

/* What unprivileged libvirt passes: the user as 0, its subordinate range
 * from /etc/subuid as 1 and up. */
Test(idmap, libvirt_session_form_adds_two_lines_in_order)
{
	cr_assert_eq(im_parse(0, "--uid-map", ":0:1000:1:"), 0, "%s", im_err);
	cr_assert_eq(im_parse(0, "--uid-map", ":1:100000:65536:"), 0, "%s", im_err);
	cr_assert_eq(im_map.um_n, 2);
	im_line(0, 0, 1000, 1);
	im_line(1, 1, 100000, 65536);
	cr_expect_str_eq(im_map.um_opt, "--uid-map");
	cr_expect_str_eq(im_map.um_arg, ":0:1000:1:", "the first value names the map");
	cr_expect_str_eq(im_err, "");
}

Test(idmap, several_lines_in_any_order_and_a_full_range)
{
	cr_assert_eq(im_parse(0, "--gid-map", ":1000:5000:10:"), 0, "%s", im_err);
	cr_assert_eq(im_parse(0, "--gid-map", ":0:100000:1000:"), 0, "%s", im_err);
	cr_assert_eq(im_parse(0, "--gid-map", ":1010:200000:4294767285:"), 0, "%s", im_err);
	cr_assert_eq(im_map.um_n, 3);
	im_line(0, 1000, 5000, 10);
	im_line(1, 0, 100000, 1000);
	im_line(2, 1010, 200000, 4294767285u);
}

/* first is accepted, then second is refused with a message containing
 * want, and the map keeps first alone. */
static void im_overlap(int translate, const char *opt, const char *first, const char *second,
		       const char *want)
{
	cr_assert_eq(im_parse(translate, opt, first), 0, "%s", im_err);
	cr_assert_eq(im_parse(translate, opt, second), -EINVAL, "'%s' after '%s' accepted", second,
		     first);
	cr_expect(strstr(im_err, want), "%s", im_err);
	cr_expect_eq(im_map.um_n, 1, "the refused line was kept");
}

Test(idmap, overlapping_namespace_ids_are_refused_naming_both_lines)
{
	im_overlap(0, "--uid-map", ":0:1000:2:", ":1:100000:65536:",
		   "invalid --uid-map ':1:100000:65536:': its namespace ids overlap those of the "
		   "earlier --uid-map ':0:1000:2:'");
}

Test(idmap, overlapping_host_ids_are_refused_naming_both_lines)
{
	im_overlap(0, "--gid-map", ":0:100000:65536:", ":70000:165535:10:",
		   "invalid --gid-map ':70000:165535:10:': its host ids overlap those of the "
		   "earlier --gid-map ':0:100000:65536:'");
}

Test(idmap, the_same_line_twice_is_an_overlap)
{
	im_overlap(0, "--uid-map", ":0:1000:1:", ":0:1000:1:", "overlap");
}

Test(idmap, translate_overlaps_are_named_in_the_map_form)
{
	im_overlap(1, "--translate-uid", "map:1000:0:10", "map:1005:20:1",
		   "invalid --translate-uid 'map:1005:20:1': its guest ids overlap those of the "
		   "earlier --translate-uid 'map:1000:0:10'");
}

Test(idmap, touching_ranges_do_not_overlap)
{
	cr_assert_eq(im_parse(0, "--uid-map", ":0:99999:1:"), 0, "%s", im_err);
	cr_assert_eq(im_parse(0, "--uid-map", ":1:100000:65536:"), 0, "%s", im_err);
	cr_assert_eq(im_parse(0, "--uid-map", ":65537:165536:1:"), 0, "%s", im_err);
	cr_expect_eq(im_map.um_n, 3);
}

Test(idmap, at_most_UNS_MAX_LINES_lines)
{
	char arg[64];

	for (unsigned i = 0; i < UNS_MAX_LINES; i++) {
		snprintf(arg, sizeof(arg), ":%u:%u:1:", i, 100000 + i);
		cr_assert_eq(im_parse(0, "--uid-map", arg), 0, "line %u: %s", i, im_err);
	}
	cr_assert_eq(im_map.um_n, UNS_MAX_LINES);
	snprintf(arg, sizeof(arg), ":%u:%u:1:", UNS_MAX_LINES, 100000 + UNS_MAX_LINES);
	cr_assert_eq(im_parse(0, "--uid-map", arg), -EINVAL);
	cr_expect(strstr(im_err, "too many --uid-map options (at most 64)"), "%s", im_err);
	cr_expect_eq(im_map.um_n, UNS_MAX_LINES);
}

Test(idmap, malformed_values_are_refused_and_add_nothing)
{
	static const char *const bad[] = {
	    "0:1000:1",	   ":0:1000:", ":0:1000:1:2:",	  ":0::1:", ":a:1000:1:", ":0:1000:0:",
	    ":-1:1000:1:", "",	       ":0:4294967295:1:"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(im_parse(0, "--uid-map", bad[i]), -EINVAL, "'%s' accepted", bad[i]);
		cr_expect(strstr(im_err, "--uid-map"), "'%s': %s", bad[i], im_err);
	}
	cr_expect_eq(im_map.um_n, 0);
}
