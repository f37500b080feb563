# worker/backends/s3/: the back end that serves a share from an S3 bucket:
# request signing (SigV4, libcrypto), the gateway's XML bodies (expat), the
# HTTP client (libcurl multi on the worker's libevent loop) and the file
# system over them (s3_fs.c, s3_dir.c, s3_file.c).
S3_SOURCES = \
	worker/backends/s3/sigv4.c worker/backends/s3/sigv4.h \
	worker/backends/s3/s3_xml.c worker/backends/s3/s3_xml.h \
	worker/backends/s3/s3_http.c worker/backends/s3/s3_http.h
S3_FS_SOURCES = $(S3_SOURCES) \
	worker/backends/s3/s3_fs.c worker/backends/s3/s3_fs.h \
	worker/backends/s3/s3_dir.c worker/backends/s3/s3_file.c worker/backends/s3/s3_file.h \
	worker/backends/s3/s3_cache.c worker/backends/s3/s3_upload.c \
	worker/backends/s3/s3_names.c worker/backends/s3/s3_rename.c worker/backends/s3/s3_copy.c \
	worker/backends/s3/s3_setup.c worker/backends/s3/s3_setup.h

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
tests_s3_test_s3_gateway_SOURCES = tests/s3/test_s3_gateway.c tests/s3/gw.c tests/s3/gw.h \
	$(S3_SOURCES)
tests_s3_test_s3_gateway_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/worker/backends/s3 \
	-DBH_SRC_DIR='"$(abs_top_srcdir)"'
tests_s3_test_s3_gateway_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(LIBCRYPTO_CFLAGS) \
	$(LIBCURL_CFLAGS) $(EXPAT_CFLAGS) $(LIBEVENT_CFLAGS)
tests_s3_test_s3_gateway_LDADD = $(LIBCURL_LIBS) $(LIBCRYPTO_LIBS) $(EXPAT_LIBS) \
	$(LIBEVENT_LIBS) $(CRITERION_LIBS)
endif

# The back end through the test front end: the real bulkheadd on a bucket
# of one cluster the program starts for all its tests.
if HAVE_CRITERION
check_PROGRAMS += tests/s3/test_s3_fs
TESTS += tests/s3/test_s3_fs
tests_s3_test_s3_fs_SOURCES = tests/s3/test_s3_fs.c tests/s3/gw.c tests/s3/gw.h \
	tests/s3/s3t.c tests/s3/s3t.h \
	tests/integration/fops.c tests/integration/fops.h \
	tests/integration/itest.c tests/integration/itest.h $(S3_SOURCES)
tests_s3_test_s3_fs_CPPFLAGS = $(VUFE_CPPFLAGS) -I$(top_srcdir)/worker/backends/s3 \
	-DBH_SRC_DIR='"$(abs_top_srcdir)"'
tests_s3_test_s3_fs_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(LIBCRYPTO_CFLAGS) \
	$(LIBCURL_CFLAGS) $(EXPAT_CFLAGS) $(LIBEVENT_CFLAGS)
tests_s3_test_s3_fs_LDADD = $(VUFE_LIBS) $(LIBCURL_LIBS) $(LIBCRYPTO_LIBS) $(EXPAT_LIBS) \
	$(LIBEVENT_LIBS) $(CRITERION_LIBS)
endif

# The back end when the gateway fails (killed, stopped, 503s, refusing our
# keys): a cluster per test, since the tests break their gateway.
if HAVE_CRITERION
check_PROGRAMS += tests/s3/test_s3_faults
TESTS += tests/s3/test_s3_faults
tests_s3_test_s3_faults_SOURCES = tests/s3/test_s3_faults.c $(tests_s3_test_s3_fs_SOURCES:tests/s3/test_s3_fs.c=)
tests_s3_test_s3_faults_CPPFLAGS = $(tests_s3_test_s3_fs_CPPFLAGS)
tests_s3_test_s3_faults_CFLAGS = $(tests_s3_test_s3_fs_CFLAGS)
tests_s3_test_s3_faults_LDADD = $(tests_s3_test_s3_fs_LDADD)
endif
