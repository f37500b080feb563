# tests/unit: tests owned by the parent work (vhost-user codec, IPC framing)
if HAVE_CRITERION
check_PROGRAMS += tests/unit/test_vhost_user tests/unit/test_ipc
TESTS += tests/unit/test_vhost_user tests/unit/test_ipc

tests_unit_test_vhost_user_SOURCES = tests/unit/test_vhost_user.c
tests_unit_test_vhost_user_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_vhost_user_LDADD = common/libcommon.a $(CRITERION_LIBS)

tests_unit_test_ipc_SOURCES = tests/unit/test_ipc.c
tests_unit_test_ipc_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_ipc_LDADD = common/libcommon.a $(CRITERION_LIBS)
endif

# bulkhead.conf(5): the INI reader and the parent's keys (daemon/config.c),
# and the S3 back end's credentials as its [s3] section names them.
if HAVE_CRITERION
check_PROGRAMS += tests/unit/test_config
TESTS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c daemon/config.c \
	daemon/s3_creds.c daemon/s3_creds.h
tests_unit_test_config_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/daemon
tests_unit_test_config_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_config_LDADD = common/libcommon.a $(CRITERION_LIBS)
endif

# The S3 back end's credentials, read by the parent.
if HAVE_CRITERION
check_PROGRAMS += tests/unit/test_s3_creds
TESTS += tests/unit/test_s3_creds
tests_unit_test_s3_creds_SOURCES = tests/unit/test_s3_creds.c daemon/s3_creds.c daemon/s3_creds.h
tests_unit_test_s3_creds_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/daemon
tests_unit_test_s3_creds_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_s3_creds_LDADD = common/libcommon.a $(CRITERION_LIBS)
endif

# The workers' id maps: --uid-map/--gid-map and --translate-uid/-gid values
# (daemon/userns.c).
if HAVE_CRITERION
check_PROGRAMS += tests/unit/test_idmap
TESTS += tests/unit/test_idmap
tests_unit_test_idmap_SOURCES = tests/unit/test_idmap.c daemon/userns.c daemon/mapper.c
tests_unit_test_idmap_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/daemon
tests_unit_test_idmap_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(LIBCAPNG_CFLAGS)
tests_unit_test_idmap_LDADD = common/libcommon.a $(CRITERION_LIBS) $(LIBCAPNG_LIBS)
endif
