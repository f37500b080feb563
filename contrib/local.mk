# contrib/: files for packagers and operators (systemd units), shipped in the tarball.
EXTRA_DIST += contrib/systemd/bulkhead.socket contrib/systemd/bulkhead.service
