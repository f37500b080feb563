# daemon/: the privileged parent. Never parses guest-controlled bytes.
sbin_PROGRAMS += daemon/bulkheadd
daemon_bulkheadd_SOURCES = \
	daemon/bulkheadd.c daemon/bulkheadd.h daemon/config.c \
	daemon/listener.c \
	daemon/vu_server.c \
	daemon/workers.c daemon/worker_log.c daemon/qwatch.c \
	daemon/privdrop.c daemon/memshare.c \
	daemon/s3_parent.c daemon/s3_creds.c daemon/s3_creds.h \
	daemon/seccomp_notify.c \
	daemon/userns.c daemon/mapper.c
daemon_bulkheadd_LDADD = common/libcommon.a $(LIBEVENT_LIBS) $(LIBSECCOMP_LIBS) $(LIBCAPNG_LIBS)
daemon_bulkheadd_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(LIBSECCOMP_CFLAGS) $(LIBCAPNG_CFLAGS)
