# man/: manual pages, installed with the programs they describe. Each is
# kept as NAME.in with placeholders (@sysconfdir@, @policybasedir@, ...)
# that make replaces with configure's directories, fully expanded as the
# autoconf manual recommends for installation directories. A page is made
# again when its .in file changes or configure runs again (Makefile).
BH_MANS = man/bulkheadd.8 man/bulkhead.conf.5 man/bulkhead.policy.5
man_MANS += $(BH_MANS)
EXTRA_DIST += $(BH_MANS:=.in)
CLEANFILES += $(BH_MANS)

# Each path's '-' is written '\-' (a minus sign, so that a path copied from
# the formatted page works); a path holding '|' or '&' is not supported.
bh_man_path = $(subst -,\\-,$(1))
bh_man_subst = sed \
	-e 's|@PACKAGE_VERSION[@]|$(PACKAGE_VERSION)|g' \
	-e 's|@sbindir[@]|$(call bh_man_path,$(sbindir))|g' \
	-e 's|@libexecdir[@]|$(call bh_man_path,$(libexecdir))|g' \
	-e 's|@sysconfdir[@]|$(call bh_man_path,$(sysconfdir))|g' \
	-e 's|@policybasedir[@]|$(call bh_man_path,$(policybasedir))|g' \
	-e 's|@datadir[@]|$(call bh_man_path,$(datadir))|g' \
	-e 's|@localstatedir[@]|$(call bh_man_path,$(localstatedir))|g' \
	-e 's|@runstatedir[@]|$(call bh_man_path,$(runstatedir))|g'

$(BH_MANS): man/%: $(srcdir)/man/%.in Makefile
	$(AM_V_GEN)$(MKDIR_P) man && \
	$(bh_man_subst) $(srcdir)/man/$*.in >$@.tmp && \
	if grep -n '@[a-zA-Z_]*@' $@.tmp; then \
		echo "$@: a placeholder above has no value" >&2; rm -f $@.tmp; exit 1; \
	fi && mv $@.tmp $@
