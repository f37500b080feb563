/*
 * test_s3_xml.c - the S3 back end's reading of XML bodies (s3_xml.c):
 * listings as the RADOS Gateway sends them, error bodies, upload ids, and
 * bodies a hostile or broken server could send.
 * Runs in: unit test program only.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_xml.h"

#define NS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

struct seen {
	unsigned n;
	char keys[8][256];
	bool prefix[8];
	unsigned long long size[8];
	char etag[8][64];
	int stop_at; /* return 7 at this entry (1-based), 0: never */
};

static int collect(const struct s3_entry *e, void *arg)
{
	struct seen *s = arg;

	if (s->n < 8) {
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", e->key);
		s->prefix[s->n] = e->is_prefix;
		s->size[s->n] = e->size;
		snprintf(s->etag[s->n], sizeof(s->etag[0]), "%s", e->is_prefix ? "" : e->etag);
	}
	s->n++;
	return s->stop_at && (int)s->n == s->stop_at ? 7 : 0;
}

/* The shape of the gateway's ListObjectsV2 reply with encoding-type=url. */
static const char listing[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<ListBucketResult " NS ">"
    "<Name>data</Name><Prefix>vm1/</Prefix><MaxKeys>3</MaxKeys><Delimiter>/</Delimiter>"
    "<IsTruncated>true</IsTruncated><EncodingType>url</EncodingType>"
    "<Contents><Key>vm1%2Fa%20b%2Bc%2F%C3%BC~x.txt</Key>"
    "<LastModified>2026-12-07T12:00:00.000Z</LastModified>"
    "<ETag>&quot;5d41402abc4b2a76b9719d911017c592&quot;</ETag><Size>5</Size>"
    "<StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents>"
    "<Contents><Key>vm1%2Fplus+space</Key><LastModified>x</LastModified>"
    "<ETag>\"e\"</ETag><Size>18446744073709551615</Size></Contents>"
    "<CommonPrefixes><Prefix>vm1/sub dir%2F/</Prefix></CommonPrefixes>"
    "<KeyCount>3</KeyCount><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
    "</NextContinuationToken><StartAfter>vm1/</StartAfter></ListBucketResult>";

Test(s3xml, a_gateway_listing_gives_its_entries_decoded)
{
	struct s3_list_result res;
	struct seen s = {0};

	cr_assert_eq(s3_parse_list(listing, sizeof(listing) - 1, collect, &s, &res), 0);
	cr_assert_eq(s.n, 3);
	cr_expect_str_eq(s.keys[0], "vm1/a b+c/\xc3\xbc~x.txt");
	cr_expect_eq(s.size[0], 5);
	cr_expect_str_eq(s.etag[0], "\"5d41402abc4b2a76b9719d911017c592\"");
	cr_expect_str_eq(s.keys[1], "vm1/plus space");
	cr_expect_eq(s.size[1], 18446744073709551615ull);
	cr_expect(s.prefix[2]);
	cr_expect_str_eq(s.keys[2], "vm1/sub dir//");
	cr_expect(res.truncated);
	cr_expect_str_eq(res.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	cr_expect_eq(res.objects, 2);
	cr_expect_eq(res.prefixes, 1);
}

Test(s3xml, without_url_encoding_keys_are_taken_as_they_are)
{
	static const char body[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
				   "<Contents><Key>a%20b+c</Key><Size>0</Size></Contents>"
				   "</ListBucketResult>";
	struct s3_list_result res;
	struct seen s = {0};

	cr_assert_eq(s3_parse_list(body, sizeof(body) - 1, collect, &s, &res), 0);
	cr_assert_eq(s.n, 1);
	cr_expect_str_eq(s.keys[0], "a%20b+c");
	cr_expect_not(res.truncated);
	cr_expect_str_eq(res.next_token, "");
}

Test(s3xml, a_key_that_decodes_to_a_nul_is_not_reported)
{
	static const char body[] = "<ListBucketResult><EncodingType>url</EncodingType>"
				   "<Contents><Key>bad%00name</Key><Size>1</Size></Contents>"
				   "<Contents><Key>good</Key><Size>2</Size></Contents>"
				   "</ListBucketResult>";
	struct s3_list_result res;
	struct seen s = {0};

	cr_assert_eq(s3_parse_list(body, sizeof(body) - 1, collect, &s, &res), 0);
	cr_assert_eq(s.n, 1);
	cr_expect_str_eq(s.keys[0], "good");
}

Test(s3xml, the_callback_can_stop_the_listing)
{
	struct s3_list_result res;
	struct seen s = {.stop_at = 2};

	cr_expect_eq(s3_parse_list(listing, sizeof(listing) - 1, collect, &s, &res), 7);
	cr_expect_eq(s.n, 2);
}

Test(s3xml, what_is_not_a_listing_is_refused)
{
	static const char *const bad[] = {
	    "",
	    "not xml at all",
	    "<ListBucketResult><Contents><Key>a</Key></ListBucketResult>", /* not well formed */
	    "<Error><Code>NoSuchBucket</Code></Error>",			   /* another document */
	    "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>", /* no key */
	    "<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>",
	    "<ListBucketResult><Contents><Key>a</Key><Size>12x</Size></Contents></"
	    "ListBucketResult>",
	    "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%4</Key>"
	    "</Contents></ListBucketResult>",
	    /* a document type, and with it the entity tricks */
	    "<!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">]>"
	    "<ListBucketResult><Contents><Key>&b;</Key><Size>1</Size></Contents></"
	    "ListBucketResult>",
	    "<!DOCTYPE l SYSTEM \"file:///etc/passwd\"><ListBucketResult/>",
	    "<a><b><c><d><e><f><g><h><i>deep</i></h></g></f></e></d></c></b></a>",
	};
	struct s3_list_result res;
	struct seen s = {0};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s.n = 0;
		cr_expect_eq(s3_parse_list(bad[i], strlen(bad[i]), collect, &s, &res), -EPROTO,
			     "accepted: %s", bad[i]);
	}
}

Test(s3xml, a_value_longer_than_the_bound_is_refused)
{
	static char body[3 * S3_XML_VALUE_MAX];
	struct s3_list_result res;
	struct seen s = {0};
	size_t n = (size_t)snprintf(body, sizeof(body), "<ListBucketResult><Contents><Key>");

	memset(body + n, 'k', S3_XML_VALUE_MAX);
	n += S3_XML_VALUE_MAX;
	n += (size_t)snprintf(body + n, sizeof(body) - n, "</Key></Contents></ListBucketResult>");
	cr_expect_eq(s3_parse_list(body, n, collect, &s, &res), -EPROTO);
	cr_expect_eq(s.n, 0);
}

Test(s3xml, error_bodies_give_their_code_and_message)
{
	static const char err[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error>"
				  "<Code>SignatureDoesNotMatch</Code><Message>check your key"
				  "</Message><RequestId>tx0</RequestId></Error>";
	static const char done[] = "<CompleteMultipartUploadResult " NS "><ETag></ETag>"
				   "</CompleteMultipartUploadResult>";
	char code[64], msg[8];

	cr_assert_eq(s3_parse_error(err, sizeof(err) - 1, code, sizeof(code), msg, sizeof(msg)), 0);
	cr_expect_str_eq(code, "SignatureDoesNotMatch");
	cr_expect_str_eq(msg, "check y"); /* cut to the room given */
	/* a 200 whose body is not an error (CompleteMultipartUpload done) */
	cr_expect_eq(s3_parse_error(done, sizeof(done) - 1, code, sizeof(code), msg, sizeof(msg)),
		     -ENOENT);
	cr_expect_eq(s3_parse_error("<Error>", 7, code, sizeof(code), msg, sizeof(msg)), -EPROTO);
	cr_expect_eq(s3_parse_error("<Error><Message>m</Message></Error>", 35, code, sizeof(code),
				    msg, sizeof(msg)),
		     -EPROTO, "an error without a code");
}

Test(s3xml, an_upload_id_is_read_and_an_empty_one_refused)
{
	static const char ok[] = "<InitiateMultipartUploadResult " NS "><Bucket>b</Bucket>"
				 "<Key>k</Key><UploadId>2~abc-DEF_1</UploadId>"
				 "</InitiateMultipartUploadResult>";
	static const char empty[] = "<InitiateMultipartUploadResult><UploadId></UploadId>"
				    "</InitiateMultipartUploadResult>";
	char id[64];

	cr_assert_eq(s3_parse_upload_id(ok, sizeof(ok) - 1, id, sizeof(id)), 0);
	cr_expect_str_eq(id, "2~abc-DEF_1");
	cr_expect_eq(s3_parse_upload_id(empty, sizeof(empty) - 1, id, sizeof(id)), -EPROTO);
	cr_expect_eq(s3_parse_upload_id(ok, sizeof(ok) - 1, id, 4), -EPROTO, "id cut short");
}

Test(s3xml, url_decoding_undoes_percent_escapes_and_plus)
{
	char out[16];

	cr_expect_eq(s3_url_decode("a%2Fb+c%7e", 10, out, sizeof(out)), 6);
	cr_expect_str_eq(out, "a/b c~");
	cr_expect_eq(s3_url_decode("%", 1, out, sizeof(out)), -EPROTO);
	cr_expect_eq(s3_url_decode("%2", 2, out, sizeof(out)), -EPROTO);
	cr_expect_eq(s3_url_decode("%zz", 3, out, sizeof(out)), -EPROTO);
	cr_expect_eq(s3_url_decode("abcd", 4, out, 4), -ENOSPC);
	cr_expect_eq(s3_url_decode("abc", 3, out, 4), 3);
}

Test(s3xml, the_complete_body_lists_the_parts_with_their_etags_escaped)
{
	const char *const etags[] = {"\"a1\"", "\"b&<2>\""};
	const char *const bad[] = {"\"a\"", NULL};
	char *b = s3_complete_body(etags, 2);

	cr_assert_not_null(b);
	cr_expect_str_eq(
	    b, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	       "<Part><PartNumber>1</PartNumber><ETag>&quot;a1&quot;</ETag></Part>"
	       "<Part><PartNumber>2</PartNumber><ETag>&quot;b&amp;&lt;2&gt;&quot;</ETag>"
	       "</Part></CompleteMultipartUpload>");
	free(b);
	cr_expect_null(s3_complete_body(bad, 2), "a missing ETag was accepted");
}

Test(s3xml, a_200_reply_is_a_result_unless_it_is_an_error)
{
	static const char done[] = "<CompleteMultipartUploadResult><Location>h/b/k</Location>"
				   "<Bucket>b</Bucket><Key>k</Key><ETag></ETag>"
				   "</CompleteMultipartUploadResult>";
	static const char failed[] =
	    "<Error><Code>InternalError</Code><Message>m</Message></Error>";
	char code[64];

	cr_expect_eq(s3_parse_done(done, sizeof(done) - 1, code, sizeof(code)), 0);
	cr_expect_eq(s3_parse_done(failed, sizeof(failed) - 1, code, sizeof(code)), -EIO);
	cr_expect_str_eq(code, "InternalError");
	cr_expect_eq(s3_parse_done("", 0, code, sizeof(code)), -EPROTO);
	cr_expect_eq(s3_parse_done("<Result", 7, code, sizeof(code)), -EPROTO);
}
