# worker/backends/passthrough/: the back end that serves a share through
# host descriptors: a host directory (passthrough), or the private tmpfs the
# parent makes (memory). Built into the worker; its unit tests link it too.
PASSTHROUGH_SOURCES = \
	worker/backends/passthrough/passthrough.c worker/backends/passthrough/passthrough.h \
	worker/backends/passthrough/passthrough_core.c \
	worker/backends/passthrough/passthrough_read.c \
	worker/backends/passthrough/passthrough_open.c \
	worker/backends/passthrough/passthrough_dir.c \
	worker/backends/passthrough/passthrough_write.c \
	worker/backends/passthrough/passthrough_locks.c \
	worker/backends/passthrough/passthrough_xattr.c \
	worker/backends/passthrough/fdtable.c worker/backends/passthrough/fdtable.h
