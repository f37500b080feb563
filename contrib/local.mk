# contrib/: files for packagers and operators, shipped in the tarball.

# systemd units, templated per share: bulkhead@.socket and .service for host
# directory and memory shares, bulkhead-s3@ for S3 shares. Both pairs come
# from one .in file each: lines marked @LOCAL@ are only in bulkhead@,
# lines marked @S3@ only in bulkhead-s3@.
BH_UNITS = contrib/systemd/bulkhead@.socket contrib/systemd/bulkhead@.service \
	contrib/systemd/bulkhead-s3@.socket contrib/systemd/bulkhead-s3@.service
EXTRA_DIST += contrib/systemd/bulkhead@.socket.in contrib/systemd/bulkhead@.service.in
CLEANFILES += $(BH_UNITS)
noinst_DATA = $(BH_UNITS)
if BH_SYSTEMD_UNITS
systemdsystemunit_DATA = $(BH_UNITS)
endif
bh_unit_sed = sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	-e 's|@policydir[@]|$(policydir)|g' -e 's|@SOCKET_GROUP[@]|$(SOCKET_GROUP)|g'
bh_unit_local = $(bh_unit_sed) -e 's|@UNIT[@]|bulkhead|g' -e '/^@S3@/d' -e 's|^@LOCAL@||'
bh_unit_s3 = $(bh_unit_sed) -e 's|@UNIT[@]|bulkhead-s3|g' -e '/^@LOCAL@/d' -e 's|^@S3@||'
contrib/systemd/bulkhead@.socket: $(srcdir)/contrib/systemd/bulkhead@.socket.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib/systemd && $(bh_unit_local) $(srcdir)/$@.in >$@
contrib/systemd/bulkhead@.service: $(srcdir)/contrib/systemd/bulkhead@.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib/systemd && $(bh_unit_local) $(srcdir)/$@.in >$@
contrib/systemd/bulkhead-s3@.socket: $(srcdir)/contrib/systemd/bulkhead@.socket.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib/systemd && \
	$(bh_unit_s3) $(srcdir)/contrib/systemd/bulkhead@.socket.in >$@
contrib/systemd/bulkhead-s3@.service: $(srcdir)/contrib/systemd/bulkhead@.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib/systemd && \
	$(bh_unit_s3) $(srcdir)/contrib/systemd/bulkhead@.service.in >$@

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
