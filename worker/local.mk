# worker/: the sandboxed per-queue worker; the only code that reads guest data.
# The core is here, each back end in worker/backends/NAME/.
libexec_PROGRAMS += worker/bulkhead-worker
worker_bulkhead_worker_SOURCES = \
	worker/worker.c worker/worker.h \
	worker/guest_mem.c worker/guest_fault.c worker/guest_fault.h \
	worker/virtqueue.c worker/virtqueue.h \
	worker/fuse_codec.c worker/fuse_dispatch.c worker/fuse_dispatch.h worker/fuse_policy.c \
	worker/backend.h \
	worker/threadpool.c worker/threadpool.h \
	worker/peer.c worker/peer.h \
	worker/sandbox.c worker/sandbox.h worker/escape_probe.c \
	$(PASSTHROUGH_SOURCES) $(S3_FS_SOURCES)
# Back ends (worker/backends/NAME/) include the core's headers by name.
worker_bulkhead_worker_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/worker \
	-I$(top_srcdir)/worker/backends/s3
worker_bulkhead_worker_LDADD = common/libcommon.a $(LIBEVENT_LIBS) $(LIBEVENT_PTHREADS_LIBS) \
	$(LIBSECCOMP_LIBS) $(LIBCAPNG_LIBS) $(LIBCURL_LIBS) $(LIBCRYPTO_LIBS) $(EXPAT_LIBS)
worker_bulkhead_worker_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(LIBSECCOMP_CFLAGS) \
	$(LIBCAPNG_CFLAGS) $(LIBCURL_CFLAGS) $(LIBCRYPTO_CFLAGS) $(EXPAT_CFLAGS)
