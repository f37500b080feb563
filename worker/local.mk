# worker/: the sandboxed per-queue worker; the only code that reads guest data.
libexec_PROGRAMS += worker/bulkhead-worker
worker_bulkhead_worker_SOURCES = \
	worker/worker.c worker/worker.h \
	worker/guest_mem.c worker/guest_fault.c worker/guest_fault.h \
	worker/virtqueue.c worker/virtqueue.h \
	worker/fuse_codec.c worker/fuse_dispatch.c worker/fuse_dispatch.h worker/fuse_policy.c \
	worker/backend.h worker/backend_passthrough.c \
	worker/passthrough.h worker/passthrough_write.c \
	worker/passthrough_locks.c worker/passthrough_xattr.c worker/passthrough_dir.c \
	worker/passthrough_open.c \
	worker/threadpool.c worker/threadpool.h \
	worker/peer.c worker/peer.h \
	worker/fdtable.c worker/fdtable.h \
	worker/sandbox.c worker/sandbox.h worker/escape_probe.c
worker_bulkhead_worker_LDADD = common/libcommon.a $(LIBEVENT_LIBS) $(LIBEVENT_PTHREADS_LIBS) \
	$(LIBSECCOMP_LIBS) $(LIBCAPNG_LIBS)
worker_bulkhead_worker_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(LIBSECCOMP_CFLAGS) $(LIBCAPNG_CFLAGS)
