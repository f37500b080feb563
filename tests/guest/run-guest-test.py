#!/usr/bin/python3
"""run-guest-test.py: end-to-end test with a real Linux guest.

Host-side test driver, runs as root. It seeds a directory tree, serves it with
the daemon under test (bulkheadd from the build tree by default, or QEMU's
virtiofsd as the reference peer), boots Debian's kernel under QEMU (TCG) with
the initramfs from mkinitramfs.sh, and drives guest-check.sh over the serial
console. The guest's listing of the virtio-fs mount comes back over a raw
virtio-blk disk and must equal, byte for byte, the same busybox listing of the
seeded tree on the host.

Boot 1: mount, full listing (stat + md5 of every file), reboot -f while mounted.
Boot 2: mount again (a second FUSE_INIT on the live session), full listing,
umount, mount (DESTROY then INIT), stat listing and the 64 MiB file's md5,
poweroff.
Boot 3, a second QEMU against the same daemon (the next front end): mount,
the 64 MiB file's md5, a new file written and checked from the host, then a
write loop; while it runs the daemon gets SIGTERM and must exit 0 within
5 s, with its workers gone, no worker ended badly, and its socket removed.
QEMU and the daemon are always killed at the end.

Environment: BH_GUEST_DAEMON=bulkheadd|virtiofsd|"CMD {socket} {dir}",
BH_BUILDDIR (where daemon/bulkheadd lives), BH_GUEST_WORKDIR, BH_GUEST_TIMEOUT.
"""

import argparse
import difflib
import hashlib
import json
import os
import queue
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TAG = "testfs"
BIG_NAME = "big/random-64MiB.bin"
BIG_SIZE = 64 << 20
DISK_SIZE = 32 << 20


class TestFailure(Exception):
    pass


def log(msg):
    print("guest-test: " + msg, flush=True)


# --------------------------------------------------------------------------
# Seeding the shared tree

SPECIAL_TIMES_NS = [
    0,                                  # the epoch
    -14182940 * 10**9 + 500,            # 1969-07-20, before the epoch
    2**31 * 10**9 + 123456789,          # just past the 32-bit time_t limit
    4102444800 * 10**9 + 999999999,     # 2100-01-01, last nanosecond
    1 * 10**9 + 1,
]
FILE_MODES = [0o644, 0o600, 0o755, 0o400, 0o640, 0o444, 0o000, 0o4755, 0o2750, 0o664]
DIR_MODES = [0o755, 0o700, 0o750, 0o555, 0o1777, 0o775]
OWNERS = [(0, 0), (1000, 1000), (12345, 12345), (1000, 0), (65534, 65534), (0, 54321)]


def seed_tree(root, rng):
    """Create the tree; returns the number of regular files."""
    nfiles = 0
    dirs = []  # (path, mode, owner, mtime) applied bottom-up at the end

    def mtime(i):
        if i % 97 == 0:
            return SPECIAL_TIMES_NS[(i // 97) % len(SPECIAL_TIMES_NS)]
        # 1990..2030 with arbitrary nanoseconds
        return rng.randrange(631152000, 1893456000) * 10**9 + rng.randrange(10**9)

    def make_file(path, size, i, mode=None, owner=None):
        nonlocal nfiles
        with open(path, "wb") as f:
            if size:
                f.write(rng.randbytes(size))
        uid, gid = owner or OWNERS[i % len(OWNERS)]
        os.chown(path, uid, gid)
        # chmod after chown: chown clears set-id bits
        os.chmod(path, FILE_MODES[i % len(FILE_MODES)] if mode is None else mode)
        t = mtime(i)
        os.utime(path, ns=(t, t))
        nfiles += 1

    os.makedirs(root, exist_ok=True)
    i = 0
    for d1 in range(16):
        for d2 in range(6):
            d = os.path.join(root, "dir%02d" % d1, "sub %d" % d2 if d2 == 5 else "sub%d" % d2)
            os.makedirs(d)
            for k in range(55):
                r = rng.random()
                if r < 0.1:
                    size = 0
                elif r < 0.6:
                    size = rng.randrange(1, 1024)
                else:
                    size = rng.randrange(1024, 16384)
                make_file(os.path.join(d, "f%03d.dat" % k), size, i)
                i += 1
            dirs.append((d, DIR_MODES[(d1 + d2) % len(DIR_MODES)], OWNERS[d2 % len(OWNERS)], mtime(d1 * 7 + d2)))
        dirs.append((os.path.join(root, "dir%02d" % d1), 0o755, OWNERS[d1 % len(OWNERS)], mtime(d1)))

    # Deep nesting, odd names, sizes around the READ split points.
    deep = os.path.join(root, "deep")
    p = deep
    for lvl in range(24):
        p = os.path.join(p, "level%02d" % lvl)
    os.makedirs(p)
    make_file(os.path.join(p, "bottom.txt"), 100, i)
    i += 1
    for lvl in range(24, -1, -1):
        q = os.path.join(deep, *["level%02d" % x for x in range(lvl)])
        dirs.append((q, 0o755, (0, 0), mtime(lvl + 3)))
    odd = os.path.join(root, "odd names")
    os.makedirs(odd)
    for n, name in enumerate(["with space", "café-ünïcödé", "x" * 255, "-leading-dash",
                              "trailing.", "#hash", "semi;colon", "quote'one"]):
        make_file(os.path.join(odd, name), 33 + n, i)
        i += 1
    for size in (4095, 4096, 4097, 131072, 131073, 507904, 507905, 1048576 + 7):
        make_file(os.path.join(odd, "size-%d" % size), size, i, mode=0o644)
        i += 1
    os.makedirs(os.path.join(root, "empty-dir"))
    dirs.append((os.path.join(root, "empty-dir"), 0o700, (12345, 12345), SPECIAL_TIMES_NS[2]))
    dirs.append((odd, 0o755, (1000, 1000), mtime(5)))

    # Hard links and a FIFO.
    os.link(os.path.join(root, "dir00", "sub0", "f000.dat"), os.path.join(odd, "hardlink"))
    os.mkfifo(os.path.join(odd, "fifo"), 0o620)
    os.chown(os.path.join(odd, "fifo"), 1000, 1000)
    os.utime(os.path.join(odd, "fifo"), ns=(SPECIAL_TIMES_NS[3], SPECIAL_TIMES_NS[3]))

    # Symlinks: relative, to a directory, absolute, dangling, long target.
    links = os.path.join(root, "links")
    os.makedirs(links)
    targets = ["../dir00/sub0/f001.dat", "../dir01", "/etc/passwd", "does-not-exist",
               "/" + "/".join(["a" * 100] * 30), "../odd names/café-ünïcödé"]
    for n, t in enumerate(targets):
        lp = os.path.join(links, "link%d" % n)
        os.symlink(t, lp)
        os.lchown(lp, *OWNERS[n % len(OWNERS)])
        lt = SPECIAL_TIMES_NS[n % len(SPECIAL_TIMES_NS)] if n % 2 else mtime(n + 11)
        os.utime(lp, ns=(lt, lt), follow_symlinks=False)
    dirs.append((links, 0o755, (0, 0), mtime(13)))

    big = os.path.join(root, BIG_NAME)
    os.makedirs(os.path.dirname(big))
    make_file(big, BIG_SIZE, 1, mode=0o644, owner=(1000, 1000))
    dirs.append((os.path.dirname(big), 0o755, (1000, 1000), mtime(17)))

    # Directory attributes last, deepest first, so later creations do not
    # change them.
    for d, mode, (uid, gid), t in sorted(dirs, key=lambda x: -x[0].count("/")):
        os.chown(d, uid, gid)
        os.chmod(d, mode)
        os.utime(d, ns=(t, t))
    os.chmod(root, 0o755)
    os.utime(root, ns=(SPECIAL_TIMES_NS[4], SPECIAL_TIMES_NS[4]))
    return nfiles


def host_listing(root, mode):
    env = dict(os.environ, TZ="UTC", LC_ALL="C")
    r = subprocess.run(["busybox", "sh", os.path.join(HERE, "listing.sh"), root, mode],
                       stdout=subprocess.PIPE, env=env, check=True)
    return r.stdout


# --------------------------------------------------------------------------
# Processes

class Console:
    """Reads QEMU's serial output line by line on a thread."""

    def __init__(self, proc, logpath):
        self.proc = proc
        self.lines = queue.Queue()
        self.logf = open(logpath, "ab")
        self.t = threading.Thread(target=self._reader, daemon=True)
        self.t.start()

    def _reader(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.logf.write(raw)
            self.logf.flush()
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        self.lines.put(None)

    def send(self, line):
        log("> " + line)
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def expect(self, prefix, timeout, deadline):
        """Next console line starting with prefix; fails on panics,
        unexpected boots, guest errors, QEMU exit or timeout."""
        start = time.monotonic()
        end = min(start + timeout, deadline)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                why = "the test's overall time limit" if end == deadline else "%ds" % timeout
                raise TestFailure("timed out (%s) after %.0fs waiting for '%s' on the guest "
                                  "console" % (why, time.monotonic() - start, prefix))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise TestFailure("QEMU exited (status %s) while waiting for '%s'"
                                  % (self.proc.poll(), prefix))
            if line.strip():
                print("guest| " + line, flush=True)
            # Firmware escape sequences may precede a marker on its line.
            at = line.find(prefix)
            if at >= 0:
                return line[at:]
            for bad in ("BH-READY", "BH-ERROR", "Kernel panic", "BUG:", "Oops"):
                if bad in line:
                    raise TestFailure("unexpected guest output while waiting for '%s': %s"
                                      % (prefix, line))


def daemon_command(spec, builddir, sock, shared):
    if spec == "bulkheadd":
        return [os.path.join(builddir, "daemon", "bulkheadd"), "--socket-path=" + sock,
                "--shared-dir=" + shared]
    if spec == "virtiofsd":
        return ["/usr/lib/qemu/virtiofsd", "--socket-path=" + sock, "-o", "source=" + shared,
                "-o", "cache=auto"]
    return [a.replace("{socket}", sock).replace("{dir}", shared) for a in shlex.split(spec)]


def stop(proc, name):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        log("%s did not stop on SIGTERM, killing it" % name)
        proc.kill()
        proc.wait()


def worker_trouble(path):
    """Lines of a bulkheadd log saying that a worker ended other than by an
    orderly stop (killed by a signal, a non-zero exit status, did not exit)
    or made a forbidden system call (or, under --seccomp=log, would have):
    the same lines the integration fixture fails on (hx_check_workers)."""
    bad = []
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return ["cannot read %s: %s" % (path, e)]
    for line in text.splitlines():
        exited = re.search(r"\) exited with status (\d+)", line)
        if ("forbidden system call" in line or "would deny" in line
                or ") was killed by signal " in line or " did not exit; killing it" in line
                or (exited and exited.group(1) != "0")):
            bad.append(line)
    return bad


def is_bulkheadd(proc):
    return proc is not None and os.path.basename(proc.args[0]) == "bulkheadd"


def stop_daemon(proc, logpath):
    """Stop the daemon at the end of a run and say what was wrong with it:
    bulkheadd must still be running, exit 0 on SIGTERM and have logged no
    worker trouble. Other daemons are only stopped. None if all is well."""
    if proc is None:
        return None
    if not is_bulkheadd(proc):
        stop(proc, "daemon")
        return None
    if proc.poll() is not None:
        return "bulkheadd exited with status %d before the end" % proc.returncode
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "bulkheadd did not exit within 5s of SIGTERM"
    if proc.returncode != 0:
        return "bulkheadd exited with status %d on SIGTERM" % proc.returncode
    bad = worker_trouble(logpath)
    if bad:
        return "a worker ended badly: %s" % "; ".join(bad[:3])
    return None


def process_report(pid):
    """Every thread of pid and of its children (a daemon's workers): state,
    wait channel and kernel stack, for a run that hung."""
    out = []
    pids = [pid]
    for d in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % d) as f:
                if d.isdigit() and int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    for p in pids:
        try:
            tids = sorted(os.listdir("/proc/%d/task" % p), key=int)
        except OSError:
            continue
        for t in tids:
            base = "/proc/%d/task/%s/" % (p, t)
            try:
                with open(base + "stat") as f:
                    st = f.read()
                with open(base + "wchan") as f:
                    wchan = f.read().strip()
                with open(base + "stack") as f:
                    stack = " < ".join(ln.split()[-1].split("+")[0]
                                       for ln in f.read().splitlines() if ln.strip())
            except OSError:
                continue
            comm = st[st.index("(") + 1:st.rindex(")")]
            state = st[st.rindex(")") + 2]
            out.append("pid %d tid %s %s: state %s, wchan %s, stack %s"
                       % (p, t, comm, state, wchan or "-", stack or "-"))
    return out


def guest_sysrq(qmp_path, keys):
    """Press alt-sysrq-KEY in the guest for each key, through QEMU's QMP
    socket (the guest must allow it: kernel.sysrq=1). False if QEMU did not
    take them."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(qmp_path)
            f = s.makefile("rw")
            f.readline()  # the greeting
            cmds = [{"execute": "qmp_capabilities"}] + [
                {"execute": "send-key", "arguments": {"keys": [
                    {"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "sysrq"},
                    {"type": "qcode", "data": k}]}} for k in keys]
            for c in cmds:
                f.write(json.dumps(c) + "\n")
                f.flush()
                while True:  # skip events until the answer
                    r = json.loads(f.readline() or "{}")
                    if "return" in r or "error" in r or not r:
                        break
                if "return" not in r:
                    return False
                time.sleep(0.2)
        return True
    except (OSError, ValueError):
        return False


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError:
        return "(no %s)" % path


# --------------------------------------------------------------------------
# The test

class GuestTest:
    def __init__(self, args):
        self.args = args
        self.work = args.workdir
        self.deadline = time.monotonic() + args.timeout
        self.daemon = None
        self.qemu = None
        self.console = None
        self.boot = 0
        self.listings = {}

    def setup(self):
        if os.path.exists(self.work):
            subprocess.run(["rm", "-rf", self.work], check=True)
        os.makedirs(self.work)
        self.shared = os.path.join(self.work, "share")
        self.sock = os.path.join(self.work, "vhost.sock")
        self.disk = os.path.join(self.work, "out.img")
        self.initrd = os.path.join(self.work, "initrd.cpio.gz")
        self.daemon_log = os.path.join(self.work, "daemon.log")
        self.console_log = os.path.join(self.work, "console.log")

        t = time.monotonic()
        n = seed_tree(self.shared, random.Random(20240611))
        log("seeded %s: %d regular files (%.1fs)" % (self.shared, n, time.monotonic() - t))
        t = time.monotonic()
        for mode in ("full", "stat"):
            self.listings[mode] = host_listing(self.shared, mode)
        self.big_md5 = hashlib.md5(open(os.path.join(self.shared, BIG_NAME), "rb").read()).hexdigest()
        log("host listing: %d lines (%.1fs)" % (self.listings["full"].count(b"\n"),
                                                time.monotonic() - t))

        kernel = subprocess.run([os.path.join(HERE, "mkinitramfs.sh"), "--print-kernel"],
                                stdout=subprocess.PIPE, check=True, text=True).stdout.split()
        self.kernel = kernel[0]
        subprocess.run([os.path.join(HERE, "mkinitramfs.sh"), "-o", self.initrd, "-k", kernel[1],
                        "-p", os.path.join(HERE, "guest-check.sh"),
                        "-f", os.path.join(HERE, "listing.sh") + ":listing.sh"], check=True)
        with open(self.disk, "wb") as f:
            f.truncate(DISK_SIZE)
        log("kernel %s, initramfs %s" % (self.kernel, self.initrd))

    def start_daemon(self):
        cmd = daemon_command(self.args.daemon, self.args.builddir, self.sock, self.shared)
        if not shutil.which(cmd[0]):
            raise TestFailure("daemon %s not found or not executable (build it first)" % cmd[0])
        log("daemon: " + " ".join(shlex.quote(c) for c in cmd))
        logf = open(self.daemon_log, "wb")
        self.daemon = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                       stderr=subprocess.STDOUT)
        end = time.monotonic() + 15
        while not os.path.exists(self.sock):
            if self.daemon.poll() is not None:
                raise TestFailure("daemon exited with status %d before listening:\n%s"
                                  % (self.daemon.returncode, tail(self.daemon_log)))
            if time.monotonic() > end:
                raise TestFailure("daemon did not create %s within 15s" % self.sock)
            time.sleep(0.05)

    def start_qemu(self):
        cmd = ["qemu-system-x86_64", "-accel", "tcg", "-smp", "1", "-m", "1G",
               "-object", "memory-backend-memfd,id=mem,size=1G,share=on",
               "-numa", "node,memdev=mem",
               "-chardev", "socket,id=char0,path=" + self.sock,
               "-device", "vhost-user-fs-pci,chardev=char0,tag=%s,queue-size=1024" % TAG,
               "-drive", "file=%s,format=raw,if=none,id=out0,cache=writeback" % self.disk,
               "-device", "virtio-blk-pci,drive=out0",
               "-kernel", self.kernel, "-initrd", self.initrd,
               "-append", "console=ttyS0 quiet panic=-1",
               "-nographic", "-no-user-config", "-nodefaults",
               "-serial", "stdio", "-monitor", "none"]
        log("qemu: " + " ".join(shlex.quote(c) for c in cmd))
        self.qemu = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.console = Console(self.qemu, self.console_log)

    def wait_boot(self):
        t = time.monotonic()
        line = self.console.expect("BH-READY", 180, self.deadline)
        self.boot += 1
        log("boot %d ready after %.1fs (%s)" % (self.boot, time.monotonic() - t, line))

    def command(self, cmd, timeout=120):
        t = time.monotonic()
        self.console.send(cmd)
        verb = cmd.split()[0]
        line = self.console.expect("BH-RESULT " + verb + " ", timeout, self.deadline)
        words = line.split()
        if len(words) < 3 or words[2] != "ok":
            raise TestFailure("boot %d: guest command '%s' failed: %s" % (self.boot, cmd, line))
        log("boot %d: %s ok (%.1fs)" % (self.boot, cmd, time.monotonic() - t))
        return words[3:]

    def read_disk_listing(self):
        with open(self.disk, "rb") as f:
            data = f.read(DISK_SIZE)
        nl = data.find(b"\n")
        head = data[:nl].split() if nl > 0 else []
        if len(head) != 2 or head[0] != b"BH-LISTING":
            raise TestFailure("boot %d: no listing on the output disk" % self.boot)
        size = int(head[1])
        return data[nl + 1:nl + 1 + size]

    def check_listing(self, mode):
        res = dict(w.split("=", 1) for w in self.command("list " + mode, timeout=300))
        got = self.read_disk_listing()
        # The console's hash proves the disk holds this run's listing.
        if hashlib.sha256(got).hexdigest() != res.get("sha256"):
            raise TestFailure("boot %d: listing on the disk does not match the hash the "
                              "guest printed" % self.boot)
        want = self.listings[mode]
        name = "boot%d-%s" % (self.boot, mode)
        with open(os.path.join(self.work, name + ".guest"), "wb") as f:
            f.write(got)
        with open(os.path.join(self.work, name + ".host"), "wb") as f:
            f.write(want)
        if got != want:
            diff = list(difflib.unified_diff(
                want.decode("utf-8", "replace").splitlines(),
                got.decode("utf-8", "replace").splitlines(),
                "host", "guest", lineterm="", n=0))
            print("\n".join(diff[:200]), flush=True)
            if len(diff) > 200:
                print("... (%d more diff lines)" % (len(diff) - 200))
            raise TestFailure("boot %d: %s listing differs from the host (%d diff lines; "
                              "full listings in %s.{host,guest})"
                              % (self.boot, mode, len(diff), os.path.join(self.work, name)))
        log("boot %d: %s listing identical to the host: %s lines, guest took %.1fs"
            % (self.boot, mode, res.get("lines"),
               float(res.get("t1", 0)) - float(res.get("t0", 0))))

    def run(self):
        self.setup()
        self.start_daemon()
        self.start_qemu()

        self.wait_boot()
        self.command("mount", 60)
        self.check_listing("full")
        self.console.send("reboot")

        self.wait_boot()
        self.command("mount", 60)
        self.check_listing("full")
        self.command("umount", 60)
        self.command("mount", 60)
        self.check_listing("stat")
        md5 = self.command("md5 " + BIG_NAME, 120)
        if md5 != [self.big_md5]:
            raise TestFailure("boot 2: md5 of %s is %s, expected %s"
                              % (BIG_NAME, md5, self.big_md5))
        self.console.send("poweroff")
        try:
            self.qemu.wait(timeout=max(1, min(60, self.deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            raise TestFailure("QEMU did not exit after the guest powered off")
        self.console.t.join(5)
        while True:
            line = self.console.lines.get_nowait() if not self.console.lines.empty() else None
            if line is None:
                break
            if any(bad in line for bad in ("Kernel panic", "BUG:", "Oops", "BH-READY")):
                raise TestFailure("unexpected guest output after poweroff: %s" % line)
        if is_bulkheadd(self.daemon):
            self.next_front_end()
            return
        why = stop_daemon(self.daemon, self.daemon_log)
        if why:
            raise TestFailure(why)

    def next_front_end(self):
        """Boot 3: another QEMU process, the daemon's next front end, then
        SIGTERM to the daemon while the guest writes."""
        if self.daemon.poll() is not None:
            raise TestFailure("bulkheadd exited (status %d) when its first front end went"
                              % self.daemon.returncode)
        self.start_qemu()
        self.wait_boot()
        self.command("mount", 60)
        md5 = self.command("md5 " + BIG_NAME, 120)
        if md5 != [self.big_md5]:
            raise TestFailure("boot 3: md5 of %s is %s, expected %s"
                              % (BIG_NAME, md5, self.big_md5))
        md5 = self.command("write from-boot-3", 120)
        with open(os.path.join(self.shared, "from-boot-3"), "rb") as f:
            host = hashlib.md5(f.read()).hexdigest()
        if md5 != [host]:
            raise TestFailure("boot 3: the guest wrote %s, the host reads %s" % (md5, host))
        self.command("writeloop loop.bin", 30)
        loop = os.path.join(self.shared, "loop.bin")
        end = time.monotonic() + 30
        while not (os.path.exists(loop) and os.path.getsize(loop) > 0):
            if time.monotonic() > end:
                raise TestFailure("boot 3: the write loop wrote nothing")
            time.sleep(0.2)
        time.sleep(1)
        workers = [int(p) for p in subprocess.run(
            ["pgrep", "-P", str(self.daemon.pid)], stdout=subprocess.PIPE,
            text=True).stdout.split()]
        if not workers:
            raise TestFailure("boot 3: the daemon has no workers while the guest writes")
        t = time.monotonic()
        why = stop_daemon(self.daemon, self.daemon_log)
        if why:
            raise TestFailure("SIGTERM during I/O: " + why)
        log("boot 3: SIGTERM while the guest wrote: bulkheadd exited 0 after %.1fs"
            % (time.monotonic() - t))
        left = [p for p in workers if os.path.exists("/proc/%d" % p)]
        if left:
            raise TestFailure("SIGTERM during I/O: workers %s outlived the daemon" % left)
        if os.path.exists(self.sock):
            raise TestFailure("SIGTERM during I/O: the socket %s is still there" % self.sock)
        stop(self.qemu, "qemu")

    def cleanup(self, ok):
        stop(self.qemu, "qemu")
        stop(self.daemon, "daemon")
        if ok and not self.args.keep:
            subprocess.run(["rm", "-rf", self.shared])


def driver_args(doc, timeout):
    """The options every guest driver takes (also used by workloads.py)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--daemon", default=os.environ.get("BH_GUEST_DAEMON", "bulkheadd"),
                    help="bulkheadd, virtiofsd, or a command with {socket} and {dir}")
    ap.add_argument("--builddir", default=os.environ.get("BH_BUILDDIR", os.getcwd()))
    ap.add_argument("--workdir", default=os.environ.get("BH_GUEST_WORKDIR"))
    ap.add_argument("--timeout", type=int,
                    default=int(os.environ.get("BH_GUEST_TIMEOUT", str(timeout))))
    return ap


def driver_setup(args, workname, root_msg):
    """Resolve the work dir, insist on root, and turn SIGTERM/SIGHUP into an
    exception so the caller's finally block kills QEMU. False: not root."""
    if args.workdir is None:
        args.workdir = os.path.join(args.builddir, "tests", "guest", workname)
    args.workdir = os.path.abspath(args.workdir)
    if os.geteuid() != 0:
        print(root_msg, file=sys.stderr)
        return False

    def on_signal(signum, frame):
        raise TestFailure("interrupted by signal %d" % signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    return True


def main():
    ap = driver_args(__doc__, 540)
    ap.add_argument("--keep", action="store_true", help="keep the seeded tree")
    args = ap.parse_args()
    if not driver_setup(args, "work",
                        "guest-test: FAIL: must run as root (it chowns the seeded tree)"):
        return 1

    t0 = time.monotonic()
    test = GuestTest(args)
    ok = False
    try:
        test.run()
        ok = True
    except (TestFailure, subprocess.CalledProcessError, OSError, KeyboardInterrupt) as e:
        print("guest-test: FAIL (%s): %s" % (args.daemon, e), flush=True)
        if test.daemon is not None:
            print("guest-test: daemon log (%s), last lines:\n%s"
                  % (test.daemon_log, tail(test.daemon_log)), flush=True)
        if test.qemu is not None:
            print("guest-test: console log: %s" % test.console_log, flush=True)
    finally:
        test.cleanup(ok)
    if ok:
        print("guest-test: PASS (%s): %d boots, listings identical, %.0fs"
              % (args.daemon, test.boot, time.monotonic() - t0), flush=True)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
