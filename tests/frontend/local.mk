# tests/frontend: the userspace vhost-user front end (vufe) that the
# integration tests and the bench use to drive a back end like QEMU would,
# plus the harness that starts and stops real back ends.
check_LIBRARIES = tests/frontend/libvufe.a
tests_frontend_libvufe_a_SOURCES = \
	tests/frontend/vufe.c tests/frontend/vufe.h tests/frontend/vufe_int.h \
	tests/frontend/vufe_ring.c \
	tests/frontend/vufe_fuse.c \
	tests/integration/harness.c tests/integration/harness.h
tests_frontend_libvufe_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/frontend \
	-I$(top_srcdir)/tests/integration
VUFE_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/frontend -I$(top_srcdir)/tests/integration
VUFE_LIBS = tests/frontend/libvufe.a common/libcommon.a
