/*
 * test_s3_sigv4.c - the S3 back end's request signing (sigv4.c) against
 * published and independently computed signatures.
 * Runs in: unit test program only.
 *
 * The first three requests are the worked examples of AWS's S3
 * documentation for header-based SigV4 (GET of an object with a Range,
 * ?lifecycle, a listing with max-keys and prefix), with the signatures it
 * prints. The last one is a request of the kind this back end makes (a
 * key with a space, '+' and UTF-8, a listing query with '/', '+' and '=' in
 * values and a parameter without a value, a user-metadata header with
 * spaces to fold), whose canonical request and signature were computed
 * with botocore 1.43 (its S3SigV4Auth, fed the same request) for this
 * test: two implementations agreeing on every byte.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define AWS_KEY	     "AKIAIOSFODNN7EXAMPLE"
#define AWS_SECRET   "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static struct s3_sig_in aws_example(const char *path, const struct s3_pair *h, size_t nh,
				    const struct s3_pair *q, size_t nq)
{
	return (struct s3_sig_in){.method = "GET",
				  .path = path,
				  .query = q,
				  .nquery = nq,
				  .headers = h,
				  .nheaders = nh,
				  .payload_hash = EMPTY_SHA256,
				  .amz_date = "20130524T000000Z",
				  .region = "us-east-1",
				  .service = "s3",
				  .access_key = AWS_KEY,
				  .secret_key = AWS_SECRET};
}

static void expect_signature(const struct s3_sig_in *in, const char *signed_headers,
			     const char *sig)
{
	char out[512], want[512];

	cr_assert_eq(s3_sign(in, out, sizeof(out)), 0);
	snprintf(want, sizeof(want),
		 "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/s3/aws4_request, SignedHeaders=%s, "
		 "Signature=%s",
		 in->access_key, in->amz_date, in->region, signed_headers, sig);
	cr_expect_str_eq(out, want);
}

Test(sigv4, aws_example_get_object_with_a_range)
{
	const struct s3_pair h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
				    {"Range", "bytes=0-9"},
				    {"x-amz-content-sha256", EMPTY_SHA256},
				    {"x-amz-date", "20130524T000000Z"}};
	struct s3_sig_in in = aws_example("/test.txt", h, 4, NULL, 0);
	char *canon = NULL;

	cr_assert_eq(s3_canonical_request(&in, &canon), 0);
	cr_expect_str_eq(canon, "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
				"range:bytes=0-9\nx-amz-content-sha256:" EMPTY_SHA256 "\n"
				"x-amz-date:20130524T000000Z\n\n"
				"host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256);
	free(canon);
	expect_signature(&in, "host;range;x-amz-content-sha256;x-amz-date",
			 "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

Test(sigv4, aws_example_parameter_without_a_value)
{
	const struct s3_pair h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
				    {"x-amz-content-sha256", EMPTY_SHA256},
				    {"x-amz-date", "20130524T000000Z"}};
	const struct s3_pair q[] = {{"lifecycle", ""}};
	struct s3_sig_in in = aws_example("/", h, 3, q, 1);

	expect_signature(&in, "host;x-amz-content-sha256;x-amz-date",
			 "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	/* NULL means no value as well */
	const struct s3_pair qn[] = {{"lifecycle", NULL}};
	in.query = qn;
	expect_signature(&in, "host;x-amz-content-sha256;x-amz-date",
			 "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

Test(sigv4, aws_example_listing_query_is_sorted_after_encoding)
{
	const struct s3_pair h[] = {{"x-amz-date", "20130524T000000Z"},
				    {"Host", "examplebucket.s3.amazonaws.com"},
				    {"x-amz-content-sha256", EMPTY_SHA256}};
	/* given out of order, as are the headers */
	const struct s3_pair q[] = {{"prefix", "J"}, {"max-keys", "2"}};
	struct s3_sig_in in = aws_example("/", h, 3, q, 2);

	expect_signature(&in, "host;x-amz-content-sha256;x-amz-date",
			 "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

Test(sigv4, a_bulkhead_request_signs_as_botocore_signs_it)
{
	const struct s3_pair h[] = {{"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
				    {"X-Amz-Meta-Mode", "  0644   rw  "},
				    {"Host", "127.0.0.1:7480"},
				    {"X-Amz-Date", "20261207T120000Z"}};
	const struct s3_pair q[] = {{"list-type", "2"},
				    {"prefix", "dir/sub dir/"},
				    {"continuation-token", "abc+/="},
				    {"encoding-type", "url"},
				    {"uploads", ""}};
	struct s3_sig_in in = {.method = "GET",
			       .path = "/data/vm1/a b+c/\xc3\xbc~x.txt",
			       .query = q,
			       .nquery = 5,
			       .headers = h,
			       .nheaders = 4,
			       .payload_hash = "UNSIGNED-PAYLOAD",
			       .amz_date = "20261207T120000Z",
			       .region = "us-east-1",
			       .service = "s3",
			       .access_key = "AKIDEXAMPLE",
			       .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
	char *canon = NULL;

	cr_assert_eq(s3_canonical_request(&in, &canon), 0);
	cr_expect_str_eq(canon, "GET\n"
				"/data/vm1/a%20b%2Bc/%C3%BC~x.txt\n"
				"continuation-token=abc%2B%2F%3D&encoding-type=url&list-type=2&"
				"prefix=dir%2Fsub%20dir%2F&uploads=\n"
				"host:127.0.0.1:7480\n"
				"x-amz-content-sha256:UNSIGNED-PAYLOAD\n"
				"x-amz-date:20261207T120000Z\n"
				"x-amz-meta-mode:0644 rw\n"
				"\n"
				"host;x-amz-content-sha256;x-amz-date;x-amz-meta-mode\n"
				"UNSIGNED-PAYLOAD");
	free(canon);
	expect_signature(&in, "host;x-amz-content-sha256;x-amz-date;x-amz-meta-mode",
			 "0a1134c61fe997d6e7fa3b360ea2d6786d6ccfe9a62764c85200eb37810c5242");
}

Test(sigv4, a_header_given_twice_is_one_line_with_its_values_in_order)
{
	const struct s3_pair h[] = {{"X-Amz-Meta-B", "two"},
				    {"host", "h"},
				    {"x-amz-meta-b", " one "},
				    {"x-amz-date", "20261207T120000Z"}};
	struct s3_sig_in in = aws_example("/k", h, 4, NULL, 0);
	char *canon = NULL;

	cr_assert_eq(s3_canonical_request(&in, &canon), 0);
	cr_expect_not_null(strstr(canon, "\nx-amz-meta-b:two,one\n"), "%s", canon);
	cr_expect_not_null(strstr(canon, "\nhost;x-amz-date;x-amz-meta-b\n"), "%s", canon);
	free(canon);
}

Test(sigv4, uri_encoding_keeps_only_the_unreserved_bytes)
{
	char out[64];

	cr_expect_eq(s3_uri_encode("a-Z_0.~", 7, false, out, sizeof(out)), 7);
	cr_expect_str_eq(out, "a-Z_0.~");
	cr_expect_eq(s3_uri_encode("a/b c+*", 7, true, out, sizeof(out)), 13);
	cr_expect_str_eq(out, "a/b%20c%2B%2A");
	cr_expect_eq(s3_uri_encode("a/b", 3, false, out, sizeof(out)), 5);
	cr_expect_str_eq(out, "a%2Fb");
	/* a NUL and a byte above 0x7f inside the length are bytes like others */
	cr_expect_eq(s3_uri_encode("\0\xff", 2, false, out, sizeof(out)), 6);
	cr_expect_str_eq(out, "%00%FF");
	/* no room: refused, never cut short */
	cr_expect_eq(s3_uri_encode("abc", 3, false, out, 3), -ENOSPC);
	cr_expect_eq(s3_uri_encode(" ", 1, false, out, 3), -ENOSPC);
	cr_expect_eq(s3_uri_encode(" ", 1, false, out, 4), 3);
}

Test(sigv4, malformed_input_and_a_short_buffer_are_refused)
{
	const struct s3_pair h[] = {{"host", "h"}, {"x-amz-date", "20130524T000000Z"}};
	const struct s3_pair bad[] = {{"", "v"}, {"host", "h"}};
	struct s3_sig_in in = aws_example("/k", h, 2, NULL, 0);
	char out[512];

	cr_expect_eq(s3_sign(&in, out, 20), -ENOSPC);
	in.amz_date = "2013-05-24T00:00:00Z";
	cr_expect_eq(s3_sign(&in, out, sizeof(out)), -EINVAL);
	in.amz_date = "20130524T000000";
	cr_expect_eq(s3_sign(&in, out, sizeof(out)), -EINVAL);
	in.amz_date = "20130524T000000Z";
	in.headers = bad;
	cr_expect_eq(s3_sign(&in, out, sizeof(out)), -EINVAL);
	in.headers = h;
	in.secret_key = NULL;
	cr_expect_eq(s3_sign(&in, out, sizeof(out)), -EINVAL);
}
