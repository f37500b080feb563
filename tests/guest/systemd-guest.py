#!/usr/bin/python3
"""systemd-guest.py: bulkhead's systemd units under a real systemd.

Host-side test driver, runs as root. Installs the build (make install
DESTDIR=...) into a tar file, boots Debian's kernel under QEMU (TCG) with the
host's / read-only over 9p under a tmpfs overlay as the guest's root, the
installed tree unpacked over it (systemd-root.sh), and the host's own systemd
as PID 1 into a test target. In the guest, systemd-guest.sh connects a front
end (unit-client) to the installed bulkhead@.socket instances, a host
directory share and a memory share, so systemd starts bulkheadd with every
hardening directive of bulkhead@.service in force on a real kernel, and
reports what systemd and /proc say. This script checks it:

* the socket listens with the mode and group of the unit (socket group from
  configure), and the first connection starts the service;
* the daemon runs with NoNewPrivs, a seccomp filter, and exactly the
  capability bounding set the unit names; each worker has its own mount,
  PID, network, IPC and UTS namespaces, a seccomp filter and NoNewPrivs;
* STATUS= reports the front end and its queues, then waiting for the next
  one; the watchdog was pinged; a reload (SIGHUP) is logged as taking effect;
* the share was served (a host file read, a directory made on the host);
* systemd-analyze security rates the running unit below 3.0;
* systemctl stop ends both with Result=success and exit status 0, and the
  journal shows no worker that ended badly and no raw <N> prefixes.

Environment: BH_BUILDDIR, BH_GUEST_WORKDIR, BH_GUEST_TIMEOUT, BH_SOCKET_GROUP.
"""

import importlib.util
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
_spec = importlib.util.spec_from_file_location("guesttest", os.path.join(HERE, "run-guest-test.py"))
gt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gt)

# capability numbers (linux/capability.h) of the names the unit may give
CAPS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
        "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
        "CAP_SYS_CHROOT": 18, "CAP_SYS_ADMIN": 21, "CAP_MKNOD": 27, "CAP_SETFCAP": 31}


# What the host's sysinit.target would start and this test does not need:
# cleaning the host's tmpfiles over 9p takes minutes under TCG.
MASK = ("systemd-tmpfiles-setup.service", "systemd-tmpfiles-clean.timer",
        "lvm2-monitor.service", "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount")


def log(msg):
    print("systemd-guest: " + msg, flush=True)


def make_var(builddir, name):
    out = subprocess.run(["make", "-s", "-C", builddir, "-f", "Makefile", "-f", "-",
                          "bh-print-var"], input="bh-print-var:\n\t@echo $(%s)\n" % name,
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    return out.strip()


def unit_caps(path):
    for line in open(path):
        if line.startswith("CapabilityBoundingSet="):
            return sum(1 << CAPS[c] for c in line.split("=", 1)[1].split())
    raise gt.TestFailure("%s has no CapabilityBoundingSet=" % path)


def fields(detail):
    return dict(w.split("=", 1) for w in detail.split() if "=" in w)


def main():
    builddir = os.path.abspath(os.environ.get("BH_BUILDDIR", os.getcwd()))
    work = os.environ.get("BH_GUEST_WORKDIR",
                          os.path.join(builddir, "tests", "guest", "systemd-work"))
    timeout = int(os.environ.get("BH_GUEST_TIMEOUT", "420"))
    group = os.environ.get("BH_SOCKET_GROUP", "kvm")
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    subprocess.run(["rm", "-rf", work], check=True)
    os.makedirs(work)

    # the build as `make install` lays it out
    inst = os.path.join(work, "inst")
    subprocess.run(["make", "-s", "-C", builddir, "install", "DESTDIR=" + inst],
                   stdout=subprocess.DEVNULL, check=True)
    subprocess.run(["tar", "-C", inst, "-cf", os.path.join(work, "inst.tar"), "."], check=True)
    sysconfdir = make_var(builddir, "sysconfdir")
    unitdir = make_var(builddir, "systemdsystemunitdir")
    with open(os.path.join(work, "paths"), "w") as f:
        f.write("sysconfdir=%s\nunitdir=%s\n" % (sysconfdir, unitdir))
    want_caps = unit_caps(os.path.join(inst + unitdir, "bulkhead@.service"))

    kernel = subprocess.run([os.path.join(HERE, "mkinitramfs.sh"), "--print-kernel"],
                            stdout=subprocess.PIPE, check=True, text=True).stdout.split()
    initrd = os.path.join(work, "initrd.cpio.gz")
    files = [(os.path.join(work, "inst.tar"), "bh/inst.tar"),
             (os.path.join(work, "paths"), "bh/paths"),
             (os.path.join(HERE, "systemd-guest.sh"), "bh/systemd-guest.sh"),
             (os.path.join(builddir, "tests", "guest", "unit-client"), "bh/unit-client")]
    cmd = [os.path.join(HERE, "mkinitramfs.sh"), "-o", initrd, "-k", kernel[1],
           "-p", os.path.join(HERE, "systemd-root.sh"),
           "-m", "9pnet_virtio", "-m", "9p", "-m", "overlay"]
    for src, dst in files:
        cmd += ["-f", "%s:%s" % (src, dst)]
    subprocess.run(cmd, check=True)

    qemu_cmd = ["qemu-system-x86_64", "-accel", "tcg", "-smp", "1", "-m", "1G",
                "-fsdev", "local,id=root,path=/,security_model=passthrough,readonly=on,"
                "multidevs=remap",
                "-device", "virtio-9p-pci,fsdev=root,mount_tag=hostroot",
                "-kernel", kernel[0], "-initrd", initrd,
                "-append", "console=ttyS0 quiet panic=-1 bh.exec systemd.unit=bh-test.target "
                "systemd.show_status=0 " + " ".join("systemd.mask=" + u for u in MASK),
                "-no-reboot", "-nographic", "-no-user-config", "-nodefaults",
                "-serial", "stdio", "-monitor", "none"]
    log("qemu: " + " ".join(qemu_cmd))
    qemu = subprocess.Popen(qemu_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    console = gt.Console(qemu, os.path.join(work, "console.log"))
    results = []
    try:
        console.expect("BH-READY", 180, deadline)
        while True:
            line = console.expect("BH-", 300, deadline)
            if line.startswith("BH-DONE"):
                break
            m = re.match(r"BH-RESULT (\S+) (\S+) ?(.*)", line)
            if m:
                results.append(m.groups())
        qemu.wait(timeout=60)
    finally:
        gt.stop(qemu, "qemu")

    failed = []

    def expect(cond, what):
        if not cond:
            failed.append(what)

    by = {}
    for name, status, detail in results:
        expect(status == "ok", "%s: %s %s" % (name, status, detail))
        by.setdefault(name, []).append(detail)
    for name in ("units-installed", "socket-listening", "socket-mode", "daemon",
                 "status-serving", "client-t", "share-written", "status-waiting", "watchdog",
                 "client-t-again", "reloaded", "exposure", "client-m", "stopped",
                 "journal-clean"):
        expect(name in by, "no result for %s" % name)
    if not failed:
        expect(by["socket-mode"][0] == "660 " + group,
               "socket mode and group %r, not 660 %s" % (by["socket-mode"][0], group))
        d = fields(by["daemon"][0])
        expect(d.get("NoNewPrivs") == "1" and d.get("Seccomp") == "2",
               "the daemon is not under NoNewPrivs and seccomp: %s" % by["daemon"][0])
        expect(int(d.get("CapBnd", "0"), 16) == want_caps,
               "the daemon's bounding set is %s, the unit's %x" % (d.get("CapBnd"), want_caps))
        expect(int(d.get("CapEff", "0"), 16) & ~want_caps == 0,
               "the daemon holds capabilities outside the unit's set: %s" % d.get("CapEff"))
        workers = by.get("worker", [])
        expect(len(workers) >= 2, "%d workers seen, not 2" % len(workers))
        for w in workers:
            f = fields(w)
            expect(f.get("NoNewPrivs") == "1" and f.get("Seccomp") == "2",
                   "a worker without NoNewPrivs and seccomp: %s" % w)
            expect(f.get("shared-ns") == "user,",
                   "a worker shares more than the user namespace with the daemon: %s" % w)
        expect("2 queues running, 2 workers" in by["status-serving"][0],
               "STATUS while serving: %s" % by["status-serving"][0])
        expect("Waiting for the next front end" in by["status-waiting"][0],
               "STATUS after the front end left: %s" % by["status-waiting"][0])
        expect(int(fields(by["watchdog"][0]).get("WatchdogTimestampMonotonic", "0") or 0) > 0,
               "no watchdog ping: %s" % by["watchdog"][0])
        expect("read hello.txt: from the host's test" in by["client-t"][0]
               and "mkdir made-by-the-client: 0" in by["client-t"][0],
               "the share was not served: %s" % by["client-t"][0])
        m = re.search(r"level for \S+: (\d+\.\d+)", by["exposure"][0])
        expect(m and float(m.group(1)) < 3.0, "exposure: %s" % by["exposure"][0])
        expect(by["stopped"][0] == "Result=success ExecMainStatus=0 m:Result=success "
               "m:ExecMainStatus=0", "stop: %s" % by["stopped"][0])
        log("daemon %s; %d workers; %s; %s" % (by["daemon"][0], len(workers),
                                               by["status-serving"][0], by["exposure"][0]))
    if failed:
        for f in failed:
            log("FAIL: " + f)
        log("console log: %s" % os.path.join(work, "console.log"))
        return 1
    subprocess.run(["rm", "-rf", inst])
    log("PASS: %d checks, %.0fs" % (len(results), time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except gt.TestFailure as e:
        log("FAIL: %s" % e)
        sys.exit(1)
