# contrib/: files for packagers and operators (systemd units), shipped in the tarball.
EXTRA_DIST += contrib/systemd/bulkhead.socket contrib/systemd/bulkhead.service

# The vhost-user descriptor libvirt finds back ends by ($(datadir)/qemu/vhost-user/,
# QEMU's interop specification). Named 60-: libvirt takes the first "fs" file
# by sorted name, and Debian's virtiofsd is 50-qemu-virtiofsd.json, so bulkhead
# becomes libvirt's default only when the operator says so (bulkheadd(8), FILES).
vhostuserdir = $(datadir)/qemu/vhost-user
vhostuser_DATA = contrib/vhost-user/60-bulkhead.json
EXTRA_DIST += contrib/vhost-user/60-bulkhead.json.in
CLEANFILES += contrib/vhost-user/60-bulkhead.json
contrib/vhost-user/60-bulkhead.json: $(srcdir)/contrib/vhost-user/60-bulkhead.json.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib/vhost-user && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' $(srcdir)/contrib/vhost-user/60-bulkhead.json.in >$@
