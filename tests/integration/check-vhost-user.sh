#!/bin/sh
# check-vhost-user.sh: the vhost-user descriptor `make install` puts in
# $(datadir)/qemu/vhost-user/ is JSON libvirt can read, says "fs", names the
# bulkheadd that `make install` puts in $(sbindir), and sorts after Debian's
# 50-qemu-virtiofsd.json (so it is not libvirt's default unless chosen).
# Runs in: make check (the build tree; BH_SBINDIR is configure's sbindir).
set -u
f=contrib/vhost-user/60-bulkhead.json
[ -r "$f" ] || { echo "check-vhost-user: $f was not built"; exit 1; }
python3 - "$f" "$BH_SBINDIR/bulkheadd" <<'PY' || exit 1
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("type") == "fs", "type is %r, not fs" % d.get("type")
assert d.get("binary") == sys.argv[2], "binary is %r, not %r" % (d.get("binary"), sys.argv[2])
name = sys.argv[1].rsplit("/", 1)[1]
assert sorted([name, "50-qemu-virtiofsd.json"])[0] == "50-qemu-virtiofsd.json", name
print("check-vhost-user: %s names %s" % (name, d["binary"]))
PY
