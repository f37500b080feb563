# worker/backends/s3/: the back end that serves a share from an S3 bucket.
# Being built up piece by piece: so far the request signing (SigV4), the
# reading of XML bodies (expat) and the HTTP client (libcurl multi on
# libevent), which only the tests link; the worker gets the back end with
# its operations.
S3_SOURCES = \
	worker/backends/s3/sigv4.c worker/backends/s3/sigv4.h \
	worker/backends/s3/s3_xml.c worker/backends/s3/s3_xml.h \
	worker/backends/s3/s3_http.c worker/backends/s3/s3_http.h
EXTRA_DIST += $(S3_SOURCES)

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test_s3_sigv4
TESTS += tests/unit/test_s3_sigv4
tests_unit_test_s3_sigv4_SOURCES = tests/unit/test_s3_sigv4.c \
	worker/backends/s3/sigv4.c worker/backends/s3/sigv4.h
tests_unit_test_s3_sigv4_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/worker/backends/s3
tests_unit_test_s3_sigv4_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(LIBCRYPTO_CFLAGS)
tests_unit_test_s3_sigv4_LDADD = $(LIBCRYPTO_LIBS) $(CRITERION_LIBS)

check_PROGRAMS += tests/unit/test_s3_xml
TESTS += tests/unit/test_s3_xml
tests_unit_test_s3_xml_SOURCES = tests/unit/test_s3_xml.c \
	worker/backends/s3/s3_xml.c worker/backends/s3/s3_xml.h
tests_unit_test_s3_xml_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/worker/backends/s3
tests_unit_test_s3_xml_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(EXPAT_CFLAGS)
tests_unit_test_s3_xml_LDADD = $(EXPAT_LIBS) $(CRITERION_LIBS)
endif

# The signing against a real gateway: a one-node Ceph cluster started by
# the test (tests/s3/ceph-cluster.sh; root, Debian's Ceph packages).
EXTRA_DIST += tests/s3/ceph-cluster.sh tests/s3/fault-proxy.py
if HAVE_CRITERION
check_PROGRAMS += tests/s3/test_s3_gateway
TESTS += tests/s3/test_s3_gateway
tests_s3_test_s3_gateway_SOURCES = tests/s3/test_s3_gateway.c $(S3_SOURCES)
tests_s3_test_s3_gateway_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/worker/backends/s3 \
	-DBH_SRC_DIR='"$(abs_top_srcdir)"'
tests_s3_test_s3_gateway_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(LIBCRYPTO_CFLAGS) \
	$(LIBCURL_CFLAGS) $(EXPAT_CFLAGS) $(LIBEVENT_CFLAGS)
tests_s3_test_s3_gateway_LDADD = $(LIBCURL_LIBS) $(LIBCRYPTO_LIBS) $(EXPAT_LIBS) \
	$(LIBEVENT_LIBS) $(CRITERION_LIBS)
endif
