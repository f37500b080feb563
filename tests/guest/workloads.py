#!/usr/bin/python3
"""workloads.py: real programs on the share, in a real Linux guest.

Host-side test driver, runs as root. It serves an almost empty directory with
the daemon under test (bulkheadd from the build tree, or QEMU's virtiofsd as
the reference peer), boots Debian's kernel under QEMU (TCG) with the host's /
as the guest's read-only root over 9p (hostroot.sh), so the host's own git,
sqlite3, fio, tar and python3 run in the guest on the virtio-fs share, driven
by workloads-guest.sh (shipped in the initramfs with wl_checks.py, so nothing
depends on where the checkout lives). Each workload is one check reported on
its own; after the guest has powered off the host verifies what it can from
its side (owners, contents, git fsck, sqlite integrity, fio's verify, diff -r
against the same generated tree). A second boot with num-request-queues=2
checks start and stop and O_TMPFILE again.

Each boot is a check too (boot-main, boot-mq): the guest must boot exactly
once (QEMU runs with -no-reboot, so a panic or a reset ends it instead of
running every check again), print no kernel panic, BUG or Oops, end with
BH-DONE status=0, and bulkheadd must exit 0 on SIGTERM with no worker killed,
exited non-zero or reported for a forbidden system call in its log.

Known gaps of a peer (an operation it does not implement) are listed in
KNOWN_GAPS: such a check reports GAP, and the run still fails for anything
else. The exit status is non-zero if any check fails.

With --backend=memory (BH_GUEST_BACKEND=memory) bulkheadd serves a new
in-memory file system instead of the directory (--memory-size), and the same
checks run on it: the host seeds it and checks it through the daemon's own
descriptor of it (/proc/PID/fd/N), after the guest has powered off and
before the daemon stops, since the file system ends with the daemon.

Environment: BH_GUEST_DAEMON=bulkheadd|virtiofsd|"CMD {socket} {dir}",
BH_GUEST_BACKEND=passthrough|memory, BH_BUILDDIR, BH_GUEST_WORKDIR,
BH_GUEST_TIMEOUT (seconds for the whole run).
"""

import hashlib
import importlib.util
import os
import shlex
import shutil
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep the source tree clean
import wl_checks  # noqa: E402  (after the path is set)

_spec = importlib.util.spec_from_file_location("guesttest", os.path.join(HERE, "run-guest-test.py"))
gt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gt)

TAG = "testfs"
MEM = "2G"
# Seconds the host waits for one check: the guest limits each command to
# 600 s, but a FUSE request the device never answers cannot be killed in a 6.1
# guest (mount, umount, locks), so the quick checks get a short leash.
CHECK_LIMIT = 120
SLOW_CHECKS = {"tar": 660, "git": 660, "fio": 660, "sqlite-delete": 300, "sqlite-wal": 300}
BOOT_LIMIT = 180
TREE_SEED = 4242           # as in workloads-guest.sh
MAIN_CHECKS = ["mount", "nonroot", "mmap", "seek", "renameat2", "tmpfile", "sqlite-delete",
               "sqlite-wal", "tar", "git", "fio", "posix-locks", "flock", "posix-lock-host",
               "flock-host", "umount"]
MQ_CHECKS = ["mq-start-stop", "mq-tmpfile"]
GUEST_TROUBLE = ("Kernel panic", "BUG:", "Oops", "BH-ERROR")
MEMORY_SIZE = 3 << 30      # --backend=memory: git, tar, fio and sqlite fit with room

MQ_SKIP = ("QEMU 7.2 virtiofsd serves one request queue: with num-request-queues=2 it "
           "panics (libvhost-user: Invalid queue index: 2) and the guest's mount would hang, "
           "so the boot is skipped")
# Operations a peer lacks: check -> (what the guest reports then, why);
# "host" means the guest passes but the host cannot see the effect.
KNOWN_GAPS = {
    "virtiofsd": {
        "tmpfile": ("unsupported", "QEMU 7.2 virtiofsd answers FUSE_TMPFILE with ENOSYS, "
                    "so O_TMPFILE fails with EOPNOTSUPP"),
        "posix-lock-host": ("host", "virtiofsd runs without -o posix_lock by default, so the "
                            "guest kernel keeps POSIX locks to itself: the host sees none"),
        "flock-host": ("host", "virtiofsd runs without -o flock by default, so the guest "
                       "kernel keeps flock locks to itself: the host sees none"),
        "mq-start-stop": ("skipped", MQ_SKIP),
        "mq-tmpfile": ("skipped", MQ_SKIP),
    },
}


def hostroot_initramfs(path, scripts):
    """Build the initramfs whose payload is hostroot.sh, with scripts (host
    paths) in its /bh; return the kernel image to boot with it."""
    kernel = subprocess.run([os.path.join(HERE, "mkinitramfs.sh"), "--print-kernel"],
                            stdout=subprocess.PIPE, check=True, text=True).stdout.split()
    cmd = [os.path.join(HERE, "mkinitramfs.sh"), "-o", path, "-k", kernel[1],
           "-p", os.path.join(HERE, "hostroot.sh"), "-m", "9pnet_virtio", "-m", "9p"]
    for f in scripts:
        cmd += ["-f", "%s:bh/%s" % (f, os.path.basename(f))]
    subprocess.run(cmd, check=True)
    return kernel[0]


def start_listening(cmd, sock, logpath):
    """Start a daemon (output to logpath) and wait up to 15 s for it to
    create its socket; its Popen, or TestFailure."""
    with open(logpath, "wb") as logf:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT)
    end = time.monotonic() + 15
    while not os.path.exists(sock):
        if proc.poll() is not None:
            raise gt.TestFailure("daemon exited with status %d before listening:\n%s"
                                 % (proc.returncode, gt.tail(logpath)))
        if time.monotonic() > end:
            gt.stop(proc, "daemon")
            raise gt.TestFailure("daemon did not create %s within 15s" % sock)
        time.sleep(0.05)
    return proc


def hostroot_qemu_command(kernel, initrd, sock, qmp, script, args, queues=1, smp=1, mem=MEM,
                          more_fs=(), tag=TAG):
    """QEMU (TCG) booting that initramfs: the host's / read-only over 9p as
    the guest's root, one vhost-user-fs device on sock tagged tag with
    queues request queues (and one more for each (sock, tag, queues) of
    more_fs), script from /bh run with args."""
    devices = []
    for i, (s, t, q) in enumerate([(sock, tag, queues)] + list(more_fs)):
        fs = "vhost-user-fs-pci,chardev=char%d,tag=%s,queue-size=1024" % (i, t)
        if q > 1:
            fs += ",num-request-queues=%d" % q
        devices += ["-chardev", "socket,id=char%d,path=%s" % (i, s), "-device", fs]
    return ["qemu-system-x86_64", "-accel", "tcg", "-smp", str(smp), "-m", mem,
            "-object", "memory-backend-memfd,id=mem,size=%s,share=on" % mem,
            "-numa", "node,memdev=mem"] + devices + [
            "-fsdev", "local,id=root,path=/,security_model=passthrough,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=root,mount_tag=hostroot",
            "-kernel", kernel, "-initrd", initrd,
            "-append", "console=ttyS0 quiet panic=-1 bh.script=%s bh.args=%s"
            % (script, ",".join(args)),
            "-qmp", "unix:%s,server=on,wait=off" % qmp,
            "-no-reboot", "-nographic", "-no-user-config", "-nodefaults",
            "-serial", "stdio", "-monitor", "none"]


def log(msg):
    print("workloads: " + msg, flush=True)


class Check:
    def __init__(self, name):
        self.name = name
        self.guest = "not run"
        self.secs = None
        self.detail = ""
        self.host = None       # None: nothing to check on the host
        self.host_ok = True
        self.verdict = None


class Workloads:
    # The checks, what the initramfs carries to the guest's /run/bh, and
    # how long the host waits for the slow checks.
    check_names = MAIN_CHECKS + MQ_CHECKS
    guest_files = ["workloads-guest.sh", "wl_checks.py"]
    slow_checks = SLOW_CHECKS
    share_name = "share"   # the shared directory in the work directory

    def __init__(self, args):
        self.args = args
        self.work = args.workdir
        self.deadline = time.monotonic() + args.timeout
        self.checks = {n: Check(n) for n in self.check_names}
        self.daemon = None
        self.qemu = None
        self.gaps = KNOWN_GAPS.get(args.daemon, {})

    # ---------------------------------------------------------------- setup
    def setup(self):
        if os.path.exists(self.work):
            subprocess.run(["rm", "-rf", self.work], check=True)
        os.makedirs(self.work)
        self.shared = os.path.join(self.work, self.share_name)
        self.sock = os.path.join(self.work, "vhost.sock")
        self.initrd = os.path.join(self.work, "initrd.cpio.gz")
        if self.args.backend == "passthrough":
            os.makedirs(self.shared)
            self.seed()

        self.kernel = hostroot_initramfs(self.initrd,
                                         [os.path.join(HERE, f) for f in self.guest_files])
        log("kernel %s, initramfs %s, share %s" % (
            self.kernel, self.initrd,
            {"passthrough": self.shared, "memory": "in memory"}.get(self.args.backend,
                                                                    self.args.backend)))

    def seed(self):
        """What the checks expect in the share before the guest comes."""
        os.chmod(self.shared, 0o755)
        users = os.path.join(self.shared, "users")
        os.mkdir(users)
        os.chmod(users, 0o1777)
        with open(os.path.join(users, "rootfile"), "w") as f:
            f.write("root's\n")
        secret = os.path.join(self.shared, "secret")
        with open(secret, "w") as f:
            f.write("secret\n")
        os.chmod(secret, 0o600)

    def memory_share(self):
        """The daemon's in-memory file system as the host reaches it: the
        directory descriptor of that size among the daemon's own."""
        fds = "/proc/%d/fd" % self.daemon.pid
        for fd in sorted(os.listdir(fds), key=int):
            path = os.path.join(fds, fd)
            try:
                st, sv = os.stat(path), os.statvfs(path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and sv.f_blocks * sv.f_frsize == MEMORY_SIZE:
                return path
        raise gt.TestFailure("bulkheadd holds no in-memory file system of %d bytes" % MEMORY_SIZE)

    def daemon_command(self):
        cmd = gt.daemon_command(self.args.daemon, self.args.builddir, self.sock, self.shared)
        if self.args.backend == "memory":
            cmd = [a for a in cmd if not a.startswith("--shared-dir=")]
            cmd.append("--memory-size=%d" % MEMORY_SIZE)
        return cmd

    def start_daemon(self, boot):
        cmd = self.daemon_command()
        if not shutil.which(cmd[0]):
            raise gt.TestFailure("daemon %s not found or not executable (build it first)" % cmd[0])
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.daemon_log = os.path.join(self.work, "daemon-%s.log" % boot)
        log("daemon: " + " ".join(shlex.quote(c) for c in cmd))
        self.daemon = start_listening(cmd, self.sock, self.daemon_log)
        if self.args.backend == "memory":
            self.shared = self.memory_share()
            log("%s: the in-memory share is %s" % (boot, self.shared))
            self.seed()

    def start_qemu(self, boot, queues, guest_args=None, more_fs=(), tag=TAG):
        self.qmp = os.path.join(self.work, "qmp-%s.sock" % boot)
        cmd = hostroot_qemu_command(self.kernel, self.initrd, self.sock, self.qmp,
                                    "workloads-guest.sh", guest_args or [boot], queues=queues,
                                    more_fs=more_fs, tag=tag)
        log("qemu: " + " ".join(shlex.quote(c) for c in cmd))
        self.qemu = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.console = gt.Console(self.qemu, os.path.join(self.work, "console-%s.log" % boot))

    # ------------------------------------------- the guest and its daemon
    # What starts and ends a boot's daemon and guest. A driver whose daemon
    # and VM another program starts (libvirt.py: libvirtd) or that starts
    # the daemon another way (clients.py: as libvirt or Kata would) replaces
    # these, and keeps the rest: the checks, the console protocol, the
    # host-side verification and the verdicts.
    def start_guest(self, boot, queues):
        """Start the daemon, then the guest; self.console carries the
        guest's serial lines (None at the end) and takes the host's."""
        self.start_daemon(boot)
        self.start_qemu(boot, queues)

    def guest_end_trouble(self):
        """After the last console line: wait for the guest to end; what
        was wrong with how it ended (a list, empty if nothing)."""
        trouble = []
        try:
            self.qemu.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        if self.qemu.poll() is None:
            trouble.append("QEMU was still running at the end")
        elif self.qemu.returncode != 0:
            trouble.append("QEMU exited with status %d" % self.qemu.returncode)
        gt.stop(self.qemu, "qemu")
        return trouble

    def daemon_end_trouble(self):
        """Once the guest has ended and the host checks are done: end the
        daemon and say how that went ((trouble list, what was checked))."""
        checked = gt.is_bulkheadd(self.daemon)
        why = gt.stop_daemon(self.daemon, self.daemon_log)
        return ((["%s (%s)" % (why, self.daemon_log)] if why else []),
                "daemon and workers ended cleanly" if checked else "daemon stopped")

    def daemon_pids(self):
        """The daemons whose threads (and workers') a hang report shows."""
        return [self.daemon.pid] if self.daemon else []

    def sysrq(self, keys):
        """Press alt-sysrq-KEY in the guest for each key: False if it
        could not be done."""
        return gt.guest_sysrq(self.qmp, keys)

    # -------------------------------------------------------------- console
    def next_line(self, end, waiting_for):
        while True:
            left = min(end, self.deadline) - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out waiting for %s" % waiting_for)
            try:
                line = self.console.lines.get(timeout=left)
            except gt.queue.Empty:
                continue
            if line is None:
                return None
            if line.strip():
                print("guest| " + line, flush=True)
            return line

    def hang_report(self, boot):
        """A check hung: what each thread of the daemon and its workers waits
        for, and every guest task's stack (sysrq-t over QMP: a task waiting
        for a FUSE reply sleeps interruptibly, so sysrq-w would not show it),
        into hang-BOOT.log of the work directory; the guest tasks waiting in
        FUSE or 9p are printed too."""
        path = os.path.join(self.work, "hang-%s.log" % boot)
        lines = ["daemon and workers:"]
        for pid in self.daemon_pids():
            lines += gt.process_report(pid)
        shown = list(lines)
        if self.sysrq(["9", "t"]):
            lines.append("guest tasks (sysrq-t):")
            task = []
            end = time.monotonic() + 30
            while time.monotonic() < end:
                try:
                    line = self.console.lines.get(timeout=3)
                except gt.queue.Empty:
                    break
                if line is None:
                    break
                lines.append(line)
                if " task:" in line:
                    task = []
                task.append(line)
                if "</TASK>" in line and any("fuse" in t or "p9_" in t for t in task):
                    shown += [t for t in task if " ? " not in t]
        else:
            lines.append("guest: QEMU did not take the sysrq keys")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        for line in shown[:200]:
            log("hang| " + line)
        log("hang report (%d lines): %s" % (len(lines), path))

    def host_lock(self, words):
        """The guest holds (or has just released) a lock: look from the host."""
        kind, state = words[1], words[2]
        name = "posix-lock-host" if kind == "posix" else "flock-host"
        c = self.checks[name]
        seen = wl_checks.host_lock_conflict(os.path.join(self.shared, "locks", "hold-" + kind))
        if state == "held":
            # As between two local processes: a POSIX lock stops host fcntl
            # locks only, a flock host flocks only.
            ok = seen == (["fcntl"] if kind == "posix" else ["flock"])
            c.host = "while held, host sees conflicts: %s" % (",".join(seen) or "none")
        else:
            ok = not seen
            c.host += "; after release: %s" % (",".join(seen) or "none")
        c.host_ok = c.host_ok and ok
        self.console.send("BH-GO")

    def run_boot(self, boot, queues, names):
        bc = self.checks["boot-" + boot] = Check("boot-" + boot)
        trouble = []   # why this boot is not the one clean boot it must be
        readies = 0
        done = None
        self.start_guest(boot, queues)
        t = time.monotonic()
        current = None
        end = time.monotonic() + BOOT_LIMIT
        try:
            while True:
                line = self.next_line(end, "the guest (%s)" % (current or "boot"))
                if line is None:
                    break
                if any(bad in line for bad in GUEST_TROUBLE):
                    trouble.append(line.strip()[:200])
                at = line.find("BH-")
                if at < 0:
                    continue
                words = line[at:].split()
                if words[0] == "BH-READY":
                    readies += 1
                    if readies > 1:
                        trouble.append("the guest booted a second time (every check would "
                                       "run again)")
                    log("%s: guest ready after %.1fs" % (boot, time.monotonic() - t))
                elif words[0] == "BH-START" and len(words) > 1:
                    current = words[1]
                    end = time.monotonic() + self.slow_checks.get(current, CHECK_LIMIT)
                elif words[0] == "BH-CHECK" and len(words) >= 4 and words[1] in self.checks:
                    c = self.checks[words[1]]
                    c.guest, c.secs, c.detail = words[2], words[3], " ".join(words[4:])
                    current = None
                    end = time.monotonic() + CHECK_LIMIT
                elif words[0] == "BH-HOLD" and len(words) >= 3:
                    self.host_lock(words)
                elif words[0] == "BH-END":
                    end = time.monotonic() + 60
                elif words[0] == "BH-DONE":
                    # Read on to the end: a panic while powering off counts.
                    done = " ".join(words[1:])
                    end = time.monotonic() + 60
        except TimeoutError as e:
            log("%s: %s; stopping this boot" % (boot, e))
            trouble.append(str(e))
            self.hang_report(boot)
            if current:
                self.checks[current].guest = "fail"
                self.checks[current].detail = "no result within %ds (hung?)" % (
                    self.slow_checks.get(current, CHECK_LIMIT))
        trouble += self.guest_end_trouble()
        if done != "status=0":
            trouble.append("the guest ended without BH-DONE status=0 (%s)" % (done or "none"))
        # What the host can see of this boot's checks, while the share (a
        # memory share ends with its daemon) is still there.
        for n in names:
            self.host_check(self.checks[n])
        why, checked = self.daemon_end_trouble()
        trouble += why
        bc.guest = "fail" if trouble else "ok"
        bc.detail = "; ".join(trouble) if trouble else "one boot, BH-DONE status=0, %s" % checked
        log("%s: %.0fs in the guest" % (boot, time.monotonic() - t))
        for n in names:
            if self.checks[n].guest == "not run":
                self.checks[n].detail = "the guest never reported it%s" % (
                    " (see %s)" % bc.name if trouble else "")

    # ------------------------------------------------------ host-side checks
    def host_check(self, c):
        s = self.shared
        f = getattr(self, "host_" + c.name.replace("-", "_"), None)
        if f is None or c.guest != "ok" or c.host:
            return
        try:
            c.host = f(s, c) or "ok"
        except (wl_checks.CheckFailed, subprocess.CalledProcessError, OSError, ValueError) as e:
            c.host, c.host_ok = "FAIL: %s" % e, False

    def host_nonroot(self, s, c):
        wl_checks.expect_nonroot(s)
        return "owners 1000:1000, secret untouched"

    def host_mmap(self, s, c):
        wl_checks.expect_mmap(os.path.join(s, "mmap"))
        return "content matches"

    def host_renameat2(self, s, c):
        wl_checks.expect_renameat2(os.path.join(s, "renameat2"))
        return "final names and contents match"

    def host_tmpfile(self, s, c):
        wl_checks.expect_tmpfile(os.path.join(s, "tmpfile"))
        return "linked files match, nothing left over"

    def for_tools(self, s, rel):
        """A path to s/rel that programs which resolve their paths (sqlite3,
        git) may be given: the share's own, or with a memory share a copy
        made through the daemon's descriptor (the magic link reads as "/",
        and such a program would go there instead)."""
        if self.args.backend == "passthrough":
            return os.path.join(s, rel)
        copy = os.path.join(self.work, "host-copy", rel)
        if os.path.exists(copy):
            shutil.rmtree(copy)
        shutil.copytree(os.path.join(s, rel), copy, symlinks=True)
        return copy

    def _sqlite(self, s, mode):
        db = os.path.join(self.for_tools(s, "sqlite"), mode + ".db")
        out = subprocess.run(["sqlite3", "-batch", db, "PRAGMA integrity_check; "
                              "SELECT count(*) FROM t;"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, check=True).stdout.split()
        wl_checks.want(out == ["ok", "9000"], "host sqlite3 says %s" % out)
        return "integrity ok, 9000 rows"

    def host_sqlite_delete(self, s, c):
        return self._sqlite(s, "delete")

    def host_sqlite_wal(self, s, c):
        return self._sqlite(s, "wal")

    def host_tar(self, s, c):
        ref = os.path.join(self.work, "tar-ref")
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "wl_checks.py"), "gentree", ref,
                        "5000", str(TREE_SEED)], check=True)
        r = subprocess.run(["diff", "-r", ref, os.path.join(s, "tar", "x")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wl_checks.want(r.returncode == 0, "diff -r with the host's tree: %s" % r.stdout[:300])
        n = subprocess.run(["tar", "-tf", os.path.join(s, "tar", "src.tar")],
                           stdout=subprocess.PIPE, check=True).stdout.count(b"\n")
        return "diff -r clean, archive holds %d entries" % n

    def host_git(self, s, c):
        g = self.for_tools(s, "git")

        def git(*a):
            return subprocess.run(["git", "-C", g] + list(a), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, check=True).stdout
        git("fsck", "--full", "--strict")
        head = git("rev-parse", "HEAD").strip()
        wl_checks.want("head=" + head in c.detail, "host HEAD %s, guest said %s" % (head, c.detail))
        n = len(git("ls-files").splitlines())
        wl_checks.want(n >= 2000, "%d files in HEAD" % n)
        return "fsck ok, HEAD matches, %d files" % n

    def host_fio(self, s, c):
        args = ["fio", "--name=bh", "--filename=" + os.path.join(s, "fio", "data"), "--size=64M",
                "--bs=64k", "--rw=randwrite", "--ioengine=psync", "--verify=crc32c",
                "--verify_fatal=1", "--randrepeat=1", "--verify_only"]
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wl_checks.want(r.returncode == 0, "fio --verify_only on the host: %s" % r.stdout[-300:])
        return "fio --verify_only on the host passes"

    def host_mq_tmpfile(self, s, c):
        wl_checks.expect_tmpfile(os.path.join(s, "tmpfile-mq"))
        return "linked files match, nothing left over"

    def host_mq_start_stop(self, s, c):
        with open(os.path.join(s, "mq.bin"), "rb") as f:
            md5 = hashlib.md5(f.read()).hexdigest()
        wl_checks.want("md5=" + md5 in c.detail, "host md5 %s, guest said %s" % (md5, c.detail))
        return "8 MiB file matches"

    # --------------------------------------------------------------- verdict
    def verdicts(self):
        failed = 0
        for c in self.checks.values():
            self.host_check(c)
            gap = self.gaps.get(c.name)
            if c.guest == "ok" and c.host_ok:
                c.verdict = "PASS"
            elif gap and (c.guest == gap[0] or gap[0] == "host" and c.guest == "ok"):
                c.verdict = "GAP"
            else:
                c.verdict = "FAIL"
                failed += 1
        return failed

    def report(self):
        print("workloads: results against %s" % self.args.daemon)
        for c in self.checks.values():
            line = "  %-16s %-4s guest=%s%s" % (c.name, c.verdict, c.guest,
                                                 " %ss" % c.secs if c.secs else "")
            if c.detail:
                line += " [%s]" % c.detail
            if c.host:
                line += " host: %s" % c.host
            if c.verdict == "GAP":
                line += " (known gap: %s)" % self.gaps[c.name][1]
            print(line, flush=True)

    def cleanup(self):
        gt.stop(self.qemu, "qemu")
        gt.stop(self.daemon, "daemon")


def main():
    ap = gt.driver_args(__doc__, 1500)
    ap.add_argument("--no-mq", action="store_true", help="skip the num-request-queues=2 boot")
    ap.add_argument("--backend", choices=("passthrough", "memory"),
                    default=os.environ.get("BH_GUEST_BACKEND", "passthrough"),
                    help="bulkheadd's share: the work directory, or a new in-memory file system")
    args = ap.parse_args()
    if args.backend == "memory" and args.daemon != "bulkheadd":
        print("workloads: FAIL: --backend=memory needs --daemon=bulkheadd", file=sys.stderr)
        return 1
    if not gt.driver_setup(args, "wl-work", "workloads: FAIL: must run as root"):
        return 1

    w = Workloads(args)
    boots = [("main", 1, MAIN_CHECKS)]
    if args.no_mq:
        for n in MQ_CHECKS:
            del w.checks[n]
    elif w.gaps.get(MQ_CHECKS[0], ("",))[0] == "skipped":
        for n in MQ_CHECKS:
            w.checks[n].guest = "skipped"
    else:
        boots.append(("mq", 2, MQ_CHECKS))
    return run_suite(w, boots)


def bulkheadd_driver(doc, timeout, name, workname, backend):
    """The options of a driver that runs only the built bulkheadd
    (s3share.py, libvirt.py, replay.py), checked: its args (backend set),
    or None once it has said why not."""
    args = gt.driver_args(doc, timeout).parse_args()
    if args.daemon != "bulkheadd":
        print("%s: FAIL: this test runs the built bulkheadd only" % name, file=sys.stderr)
        return None
    args.backend = backend
    if not gt.driver_setup(args, workname, "%s: FAIL: must run as root" % name):
        return None
    return args


def run_suite(w, boots):
    """Set w up and run its boots ((name, request queues, checks) each),
    then print every check's verdict and the summary line tests/run-all.sh
    counts. The exit status."""
    args = w.args
    t0 = time.monotonic()
    try:
        w.setup()
        for boot, queues, names in boots:
            w.run_boot(boot, queues, names)
    except (gt.TestFailure, subprocess.CalledProcessError, OSError, KeyboardInterrupt) as e:
        print("workloads: FAIL (%s): %s" % (args.daemon, e), flush=True)
        w.cleanup()
        w.verdicts()
        w.report()
        return 1
    finally:
        w.cleanup()
    failed = w.verdicts()
    w.report()
    gaps = sum(c.verdict == "GAP" for c in w.checks.values())
    print("workloads: %s (%s, %s): %d checks, %d passed, %d known gaps, %d failed, %.0fs"
          % ("PASS" if not failed else "FAIL", args.daemon, args.backend, len(w.checks),
             len(w.checks) - failed - gaps, gaps, failed, time.monotonic() - t0), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
