#!/usr/bin/python3
"""replay.py: libvirt 10's and Kata's command lines, replayed against bulkheadd.

Host-side test driver, runs as root (make check-guest-replay). The clients
whose command lines these are (libvirt 10 with separate options, the Go
and Rust runtimes of Kata Containers) are not installed here: each is
replayed from client_argv.ARGV, the way its source starts the daemon, and a
guest (workloads.py's: the host's / as its root over 9p) uses the device.

Boot libvirt10: the socket made by the test and inherited under some
descriptor N, as qemuVirtioFSStart does, and ARGV["libvirt10"] (--fd=N
--shared-dir DIR --cache always --xattr --thread-pool-size=4
--rlimit-nofile=10000); the guest runs the workloads guest's main checks.
daemon-libvirt10: the daemon's /proc/PID/cmdline is exactly that, --fd=N is
the socket, its soft RLIMIT_NOFILE is 10000, its start-up line says cache
always and thread pool 4; at the end it exits 0 on SIGTERM (libvirt's stop)
with a clean log.

Boot kata: three daemons, one device each, in one guest:
  kata-go             ARGV["kata-go"]: the socket made by the test, as
                      descriptor 3; --syslog, so the daemon runs in a mount
                      namespace whose /dev/log is a socket of the test's
                      (the runtime itself sends its standard error nowhere);
  kata-rust           ARGV["kata-rust"]: the daemon makes the socket;
                      standard error is a pipe, and the guest starts only
                      once the line Kata waits for has come through it;
  kata-rust-rootless  the same with the socket named relative to the
                      working directory, the runtime's rootless way.
The guest (workloads-guest.sh quick) mounts each tag, reads the file the host
put there, writes a file and a directory, reads them back from the device,
lists and unmounts; the host checks what was written. daemon-TAG: the exact
argv; for kata-go, descriptor 3 is the listening socket and the start-up
lines reached syslog and nothing reached standard error; for the Rust rows,
when the line Kata waits for came, the daemon already listened on the
named socket; at the end each daemon is killed with SIGKILL, as both
runtimes stop it, and it and its workers must be gone within 5 s; no log
reports trouble.

Environment: BH_BUILDDIR, BH_GUEST_WORKDIR, BH_GUEST_TIMEOUT (seconds for the
whole run), BH_REPLAY_ONLY=libvirt10|kata (that boot alone).
"""

import hashlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep the source tree clean
import client_argv as ca  # noqa: E402  (after the path is set)
import workloads as wl  # noqa: E402
from wl_checks import CheckFailed, want  # noqa: E402

gt = wl.gt
KATA_TAGS = ["kata-go", "kata-rust", "kata-rust-rootless"]
READY_LIMIT = 15   # seconds for a daemon to say it waits for its front end
KILL_LIMIT = 5     # seconds for a killed daemon and its workers to be gone
# Kata's Go runtime's daemon logs to syslog: it runs in a mount namespace
# whose /dev is a tmpfs holding the host's null, zero, full, random and
# urandom (all bulkheadd opens there) and, as /dev/log, the test's socket.
SYSLOG_NS_SH = """#!/bin/sh
# replay.py: the first process of a mount namespace of its own. usage:
# syslog-ns.sh SYSLOG-SOCKET STAGING-DIR FD COMMAND...: /dev/log is
# SYSLOG-SOCKET there, descriptor FD becomes 3, then COMMAND runs.
set -eu
devlog=$1 stage=$2 fd=$3
shift 3
mount -t tmpfs -o mode=0755 replay-dev "$stage"
for n in null zero full random urandom; do
	: >"$stage/$n"
	mount --bind "/dev/$n" "$stage/$n"
done
: >"$stage/log"
mount --bind "$devlog" "$stage/log"
mount --move "$stage" /dev
if [ "$fd" != 3 ]; then
	exec 3<&"$fd"
	eval "exec $fd<&-"
fi
exec "$@"
"""


def log(msg):
    print("replay: " + msg, flush=True)


def listen_unix(path):
    """A listening UNIX stream socket bound at path, as a client makes it
    for the daemon (libvirt's qemuOpenChrChardevUNIXSocket, Go's
    net.ListenUnix)."""
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(socket.SOMAXCONN)
    return s


class Syslog:
    """A datagram socket standing in for /dev/log: each message received
    becomes a line of a file."""

    def __init__(self, sock_path, out_path):
        self.path = out_path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(sock_path)
        self.out = open(out_path, "ab", buffering=0)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            while True:
                self.out.write(self.sock.recv(65536).rstrip(b"\n") + b"\n")
        except (OSError, ValueError):
            pass

    def close(self):
        self.sock.close()


class Daemon:
    """One replayed daemon: its row of ARGV, how it was started, its log."""

    def __init__(self, name, share, argv, log_path):
        self.name = name
        self.share = share
        self.argv = argv
        self.log_path = log_path
        self.proc = None
        self.problems = []      # what its daemon-NAME check found wrong
        self.notes = []         # what it found right
        self.ready_seen = None  # Rust rows: listening when the line came?
        self.syslog = None
        self.sock = None        # the socket path QEMU connects to

    def text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_for(self, line, path=None, limit=READY_LIMIT):
        """Wait for line in its log (or in the file path)."""
        path = path or self.log_path
        end = time.monotonic() + limit
        while True:
            with open(path, "rb") as f:
                if line.encode() in f.read():
                    return
            why = None
            if self.proc.poll() is not None:
                why = "the daemon exited with status %d" % self.proc.returncode
            elif time.monotonic() > end:
                why = "no '%s' within %ds" % (line, limit)
            if why:
                raise gt.TestFailure("%s: %s:\n%s" % (self.name, why, "\n".join(
                    gt.tail(p) for p in sorted({path, self.log_path}))))
            time.sleep(0.05)

    def check(self, cond, what):
        if not cond:
            self.problems.append(what)
        return cond


class ReplayWorkloads(wl.Workloads):
    check_names = (wl.MAIN_CHECKS + ["daemon-libvirt10"] + KATA_TAGS
                   + ["daemon-" + t for t in KATA_TAGS])
    share_name = "share,libvirt10"   # libvirt 10 passes it as it is

    def __init__(self, args):
        super().__init__(args)
        self.binary = os.path.realpath(os.path.join(args.builddir, "daemon", "bulkheadd"))
        self.daemons = []

    def setup(self):
        super().setup()
        if not os.access(self.binary, os.X_OK):
            raise gt.TestFailure("%s not found or not executable (build it first)" % self.binary)

    # ------------------------------------------------------------ libvirt 10
    def start_libvirt10(self):
        d = Daemon("libvirt10", self.shared, None, os.path.join(self.work, "daemon-libvirt10.log"))
        lsock = listen_unix(self.sock)
        fd = lsock.fileno()
        d.argv = [self.binary] + ca.argv("libvirt10", fd=fd, dir=self.shared,
                                         openfiles=ca.OPENFILES)
        log("libvirt10: " + " ".join(shlex.quote(a) for a in d.argv))
        with open(d.log_path, "wb") as logf:
            d.proc = subprocess.Popen(d.argv, pass_fds=[fd], stdin=subprocess.DEVNULL,
                                      stdout=logf, stderr=subprocess.STDOUT)
        lsock.close()   # libvirt keeps no copy (VIR_COMMAND_PASS_FD_CLOSE_PARENT)
        self.daemons.append(d)
        self.daemon, self.daemon_log = d.proc, d.log_path
        d.wait_for(ca.KATA_READY)
        d.check(ca.cmdline(d.proc.pid) == d.argv, "argv %s, want %s"
                % (ca.cmdline(d.proc.pid), d.argv))
        path, why = ca.listening_unix_socket(d.proc.pid, fd)
        d.check(path == self.sock, "--fd=%d: %s" % (fd, why or "listens at %s" % path))
        limit = ca.nofile_limit(d.proc.pid)
        d.check(limit == ca.OPENFILES, "soft RLIMIT_NOFILE %s, want %d" % (limit, ca.OPENFILES))
        text = d.text()
        d.check("cache always" in text and "thread pool %d" % ca.THREAD_POOL in text,
                "the start-up line does not say cache always, thread pool %d" % ca.THREAD_POOL)
        d.notes.append("exactly libvirt 10's argv with separate options; --fd=%d is the "
                       "socket; RLIMIT_NOFILE %s; cache always, thread pool %d"
                       % (fd, limit, ca.THREAD_POOL))

    # ------------------------------------------------------------------ Kata
    def kata_share(self, tag):
        share = os.path.join(self.work, "share-" + tag)
        os.makedirs(share)
        os.chmod(share, 0o755)
        with open(os.path.join(share, "from-host"), "w") as f:
            f.write("host %s\n" % tag)
        return share

    def start_kata_go(self):
        tag = "kata-go"
        d = Daemon(tag, self.kata_share(tag), None, os.path.join(self.work, "daemon-kata-go.err"))
        d.sock = os.path.join(self.work, "kata-go.sock")
        d.syslog = Syslog(os.path.join(self.work, "kata-go.syslog.sock"),
                          os.path.join(self.work, "daemon-kata-go.syslog"))
        d.argv = [self.binary] + ca.argv(tag, dir=d.share)
        stage = os.path.join(self.work, "kata-go-dev")
        os.makedirs(stage)
        script = os.path.join(self.work, "syslog-ns.sh")
        with open(script, "w") as f:
            f.write(SYSLOG_NS_SH)
        lsock = listen_unix(d.sock)
        fd = lsock.fileno()
        log("%s: %s (descriptor 3, syslog %s)" % (tag, " ".join(shlex.quote(a) for a in d.argv),
                                                  d.syslog.path))
        with open(d.log_path, "wb") as err:
            d.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                       "/bin/sh", script, os.path.join(self.work,
                                                                       "kata-go.syslog.sock"),
                                       stage, str(fd)] + d.argv,
                                      pass_fds=[fd], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=err)
        lsock.close()
        self.daemons.append(d)
        d.wait_for(ca.KATA_READY, d.syslog.path)
        d.check(ca.cmdline(d.proc.pid) == d.argv, "argv %s, want %s"
                % (ca.cmdline(d.proc.pid), d.argv))
        path, why = ca.listening_unix_socket(d.proc.pid, 3)
        d.check(path == d.sock, "--fd=3: %s" % (why or "listens at %s" % path))
        d.notes.append("exactly the Go runtime's argv; descriptor 3 is the socket; its lines "
                       "reach syslog")

    def start_kata_rust(self, tag):
        d = Daemon(tag, self.kata_share(tag), None, os.path.join(self.work,
                                                                 "daemon-%s.err" % tag))
        cwd = None
        if tag == "kata-rust-rootless":
            cwd = os.path.join(self.work, "rootless")
            os.makedirs(cwd)
            d.sock = os.path.join(cwd, "virtiofsd.sock")
            named = "virtiofsd.sock"
            d.argv = [self.binary] + ca.argv(tag, dir=d.share)
        else:
            d.sock = named = os.path.join(self.work, tag + ".sock")
            d.argv = [self.binary] + ca.argv(tag, dir=d.share, socket=d.sock)
        log("%s: %s%s" % (tag, " ".join(shlex.quote(a) for a in d.argv),
                          " (in %s)" % cwd if cwd else ""))
        d.proc = subprocess.Popen(d.argv, cwd=cwd, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ready = threading.Event()

        def read_stderr():
            with open(d.log_path, "wb") as out:
                for raw in iter(d.proc.stderr.readline, b""):
                    out.write(raw)
                    out.flush()
                    if ca.KATA_READY.encode() in raw and not ready.is_set():
                        # Kata starts the VM now: the socket must be there.
                        d.ready_seen = named in ca.listening_paths(d.proc.pid)
                        ready.set()
        threading.Thread(target=read_stderr, daemon=True).start()
        self.daemons.append(d)
        if not ready.wait(READY_LIMIT):
            raise gt.TestFailure("%s: no '%s' on standard error within %ds:\n%s"
                                 % (tag, ca.KATA_READY, READY_LIMIT, gt.tail(d.log_path)))
        d.check(d.ready_seen, "when '%s' came, the daemon did not listen at %s"
                % (ca.KATA_READY, named))
        d.check(ca.cmdline(d.proc.pid) == d.argv, "argv %s, want %s"
                % (ca.cmdline(d.proc.pid), d.argv))
        d.notes.append("exactly the Rust runtime's argv%s; listening at %s when '%s' came on "
                       "standard error" % (" (rootless: relative socket, its directory the "
                                           "working directory)" if cwd else "", named,
                                           ca.KATA_READY))

    # ------------------------------------------- the guest and its daemons
    def start_guest(self, boot, queues):
        self.daemons = []
        if boot == "libvirt10":
            self.start_libvirt10()
            self.start_qemu(boot, queues, guest_args=["main"])
            return
        self.start_kata_go()
        for tag in KATA_TAGS[1:]:
            self.start_kata_rust(tag)
        go = self.daemons[0]
        self.sock = go.sock
        self.start_qemu(boot, queues, guest_args=["quick"] + KATA_TAGS, tag=go.name,
                        more_fs=[(d.sock, d.name, 1) for d in self.daemons[1:]])

    def daemon_end_trouble(self):
        if self.daemons and self.daemons[0].name == "libvirt10":
            d = self.daemons[0]
            why = gt.stop_daemon(d.proc, d.log_path)   # SIGTERM, as libvirt stops it
            d.check(why is None, why)
            bad = ca.log_trouble(d.text())
            d.check(not bad, "its log reports trouble: %s" % "; ".join(bad[:5]))
            d.notes.append("exit 0 on SIGTERM, log clean")
            self.finish(d)
            return [], "the daemon checked in daemon-libvirt10"
        for d in self.daemons:
            # Kata stops the VM, then the daemon: it must still be there,
            # its workers ended with the front end (or with it, if not).
            d.check(d.proc.poll() is None, "exited (status %s) before Kata's SIGKILL"
                    % d.proc.returncode)
            d.proc.send_signal(signal.SIGKILL)   # as both of Kata's runtimes stop it
            try:
                d.proc.wait(timeout=KILL_LIMIT)
            except subprocess.TimeoutExpired:
                d.check(False, "still running %ds after SIGKILL" % KILL_LIMIT)
            text = d.text()
            if d.syslog:
                d.syslog.close()
                d.check(not text.strip(), "wrote to standard error despite --syslog: %s"
                        % text.strip()[:300])
                with open(d.syslog.path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
                d.check("bulkheadd[" in text and "serving %s" % d.share in text,
                        "syslog has no start-up line of bulkheadd")
            workers = [int(p) for p in re.findall(r"worker q\d+ started \(pid (\d+)\)", text)]
            end = time.monotonic() + KILL_LIMIT
            while any(ca.alive(w) for w in workers) and time.monotonic() < end:
                time.sleep(0.1)
            left = [w for w in workers if ca.alive(w)]
            d.check(workers and not left, "workers %s (from its log), still running after "
                    "the daemon's SIGKILL: %s" % (workers, left))
            bad = ca.log_trouble(text) + gt.worker_trouble(d.syslog.path if d.syslog
                                                           else d.log_path)
            d.check(not bad, "its log reports trouble: %s" % "; ".join(bad[:5]))
            d.notes.append("alive until SIGKILL, then gone with its %d workers, log clean"
                           % len(workers))
            self.finish(d)
        return [], "the daemons checked in daemon-kata-*"

    def finish(self, d):
        c = self.checks["daemon-" + d.name]
        c.guest = "ok"
        if d.problems:
            c.host, c.host_ok = "FAIL: %s" % "; ".join(d.problems), False
        else:
            c.host = "; ".join(d.notes)

    def daemon_pids(self):
        return [d.proc.pid for d in self.daemons if d.proc]

    def host_check(self, c):
        if c.name not in KATA_TAGS:
            return super().host_check(c)
        if c.guest != "ok" or c.host:
            return
        share = os.path.join(self.work, "share-" + c.name)
        try:
            with open(os.path.join(share, "from-guest.bin"), "rb") as f:
                md5 = hashlib.md5(f.read()).hexdigest()
            want("md5=" + md5 in c.detail, "from-guest.bin's md5 is %s, the guest said %s"
                 % (md5, c.detail))
            with open(os.path.join(share, "dir", "note")) as f:
                note = f.read()
            want(note == "guest %s\n" % c.name, "dir/note holds %r" % note)
            with open(os.path.join(share, "from-host")) as f:
                want(f.read() == "host %s\n" % c.name, "from-host changed")
            want(sorted(os.listdir(share)) == ["dir", "from-guest.bin", "from-host"],
                 "the share holds %s" % sorted(os.listdir(share)))
            c.host = "1 MiB file and dir/note as the guest wrote them"
        except (CheckFailed, OSError) as e:
            c.host, c.host_ok = "FAIL: %s" % e, False

    def cleanup(self):
        super().cleanup()
        for d in self.daemons:
            if d.proc and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
            if d.syslog:
                d.syslog.close()


def main():
    only = os.environ.get("BH_REPLAY_ONLY")   # libvirt10 or kata: that boot alone
    args = wl.bulkheadd_driver(__doc__, 1500, "replay", "replay-work", "passthrough")
    if args is None:
        return 1
    args.daemon = "bulkheadd as libvirt 10 and Kata start it"
    w = ReplayWorkloads(args)
    boots = {"libvirt10": wl.MAIN_CHECKS + ["daemon-libvirt10"],
             "kata": KATA_TAGS + ["daemon-" + t for t in KATA_TAGS]}
    if only:
        if only not in boots:
            print("replay: FAIL: BH_REPLAY_ONLY=%s: libvirt10 or kata" % only, file=sys.stderr)
            return 1
        w.checks = {n: w.checks[n] for n in boots[only]}
    return wl.run_suite(w, [(b, 1, names) for b, names in boots.items() if only in (None, b)])


if __name__ == "__main__":
    sys.exit(main())
