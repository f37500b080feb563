#!/usr/bin/python3
"""libvirt.py: a real libvirtd starts bulkheadd for a guest.

Host-side test driver, runs as root (make check-guest-libvirt). It starts a
virtlogd and a libvirtd of its own (Debian 12's libvirt 9.0, installed by
contrib/install-deps.sh) and has libvirtd create a transient TCG domain whose
virtio-fs device is served by bulkheadd from the build tree:

    <filesystem type='mount' accessmode='passthrough'>
      <driver type='virtiofs' queue='1024'/>
      <binary path='BUILT bulkheadd' xattr='on'> <cache mode='always'/>
        <lock posix='on' flock='on'/> <thread_pool size='4'/>
        <openfiles max='10000'/> </binary>
      <source dir='WORK/share,libvirt'/> <target dir='testfs'/>
    </filesystem>

libvirtd makes the socket, starts bulkheadd with it inherited and with
libvirt 9's legacy options (-o source=...,cache=always,xattr,flock,
posix_lock: the comma in the share's name doubled), and kills it when the
domain ends. The guest is workloads.py's: the host's / as its root over 9p
(another <filesystem>), workloads-guest.sh main run from its initramfs, its
serial port a UNIX socket (the host answers the lock checks there) whose
every byte QEMU also writes to a log file, read as the console.

Checks: every workload check of workloads.py's main boot, with its host-side
verification; libvirt-argv: the daemon's /proc/PID/cmdline is exactly what
client_argv.ARGV["libvirt9"] says libvirt 9 builds (the same line libvirt
logged for it), its --fd descriptor is the listening socket libvirt made
for the device; boot-libvirt: one boot, BH-DONE status=0, the domain ended
by the guest's own poweroff (libvirt's "reason=shutdown"), libvirt stopped
bulkheadd (gone, its SIGTERM and "stopped" in its log, every worker gone),
and its log (/var/log/libvirt/qemu/DOMAIN-fs0-virtiofsd.log) reports no
error and no worker trouble; teardown: libvirtd and virtlogd stopped and
no process of the run left.

Nothing is installed or changed on the host: libvirtd and virtlogd run in a
mount namespace of their own (unshare) in which /etc/libvirt (qemu.conf,
virtlogd.conf), /run, /var/lib, /var/log and /var/cache are directories of
the work directory, and /etc/passwd and /etc/group copies that add the
libvirt-qemu user and group the QEMU driver insists on. Those mounts go with
the namespace, even when the test is killed. virsh reaches the daemon
through qemu:///system?socket=WORK/libvirt/run/libvirt/libvirt-sock.

Environment: BH_BUILDDIR, BH_GUEST_WORKDIR, BH_GUEST_TIMEOUT (seconds for the
whole run).
"""

import glob
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from xml.sax.saxutils import escape

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep the source tree clean
import client_argv as ca  # noqa: E402  (after the path is set)
import workloads as wl  # noqa: E402

gt = wl.gt
DOMAIN = "bh-libvirt-%d" % os.getpid()
MEM_MIB = 2048
# Host directories the namespace covers with the run's own (the daemons
# write below each; the packages make none of them here).
COVERED = ("/run", "/var/lib", "/var/log", "/var/cache", "/etc/libvirt")
QEMU_CONF = """# libvirt.py: QEMU as root, no labels, no namespaces, no cgroups
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
"""
# No rotation of a console or daemon log in the middle of a run.
VIRTLOGD_CONF = "max_size = 1073741824\nmax_backups = 1\n"
START_SH = """#!/bin/sh
# The first process of libvirt.py's mount namespace: the run's directories
# over the host's, then virtlogd and libvirtd (this process).
set -eu
root=$1
for d in run var/lib var/log var/cache etc/libvirt; do
	mount --bind "$root/$(echo "$d" | tr / -)" "/$d"
done
mount --bind "$root/passwd" /etc/passwd
mount --bind "$root/group" /etc/group
virtlogd -d -p /run/libvirt/virtlogd.pid -f /etc/libvirt/virtlogd.conf
exec libvirtd -p /run/libvirt/libvirtd.pid
"""


def log(msg):
    print("libvirt: " + msg, flush=True)


def stop_pid(pid, name, grace=10):
    """SIGTERM pid, SIGKILL after grace seconds; False if it needed that."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    end = time.monotonic() + grace
    while ca.alive(pid) and time.monotonic() < end:
        time.sleep(0.1)
    if not ca.alive(pid):
        return True
    log("%s (pid %d) did not stop on SIGTERM, killing it" % (name, pid))
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return False


class Libvirtd:
    """virtlogd and libvirtd of this run's own, in their mount namespace."""

    def __init__(self, root):
        self.root = root
        self.proc = None
        self.logpath = os.path.join(root, "libvirtd.log")
        self.stopped = None     # what stop() found, once it ran

    def host_path(self, path):
        """Where a path the namespace's daemons name is on the host."""
        for top in COVERED:
            if path == top or path.startswith(top + "/"):
                return os.path.join(self.root, top[1:].replace("/", "-")) + path[len(top):]
        return path

    @property
    def uri(self):
        return "qemu:///system?socket=" + self.host_path("/run/libvirt/libvirt-sock")

    def start(self):
        for top in COVERED[:-1]:
            if os.path.realpath(self.root).startswith(top + "/"):
                raise gt.TestFailure("the work directory %s is below %s, which libvirtd's "
                                     "namespace covers (set BH_GUEST_WORKDIR)" % (self.root, top))
        if not os.path.isdir("/etc/libvirt"):
            raise gt.TestFailure("no /etc/libvirt (libvirt-clients installs it)")
        for d in ("/run/libvirt", "/var/lib/libvirt/qemu", "/var/log/libvirt/qemu",
                  "/var/cache/libvirt/qemu", "/etc/libvirt"):
            os.makedirs(self.host_path(d), exist_ok=True)
        for name, text in (("qemu.conf", QEMU_CONF), ("virtlogd.conf", VIRTLOGD_CONF)):
            with open(os.path.join(self.host_path("/etc/libvirt"), name), "w") as f:
                f.write(text)
        # The QEMU driver will not start without a user and a group named
        # libvirt-qemu (Debian's build default), whatever qemu.conf says.
        for name, line in (("passwd", "libvirt-qemu:x:64055:64055:libvirt.py:/nonexistent:"
                            "/usr/sbin/nologin\n"), ("group", "libvirt-qemu:x:64055:\n")):
            with open("/etc/" + name) as f:
                text = f.read()
            if not re.search(r"^libvirt-qemu:", text, re.M):
                text += ("" if text.endswith("\n") else "\n") + line
            with open(os.path.join(self.root, name), "w") as f:
                f.write(text)
        script = os.path.join(self.root, "start.sh")
        with open(script, "w") as f:
            f.write(START_SH)
        log("libvirtd and virtlogd in a mount namespace of their own: " + self.root)
        with open(self.logpath, "wb") as logf:
            self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                          "/bin/sh", script, self.root],
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT)
        t = time.monotonic()
        end = t + 120   # the first start probes QEMU's capabilities (TCG)
        while True:
            if self.proc.poll() is not None:
                raise gt.TestFailure("libvirtd exited with status %d:\n%s"
                                     % (self.proc.returncode, gt.tail(self.logpath)))
            r = self.virsh("version", check=False, timeout=60)
            if r.returncode == 0:
                break
            if time.monotonic() > end:
                raise gt.TestFailure("libvirtd did not answer within 120s: %s\n%s"
                                     % (r.stdout.strip(), gt.tail(self.logpath)))
            time.sleep(0.5)
        log("libvirtd (pid %d) answers after %.1fs: %s" % (
            self.proc.pid, time.monotonic() - t,
            "; ".join(ln.strip() for ln in r.stdout.splitlines() if ln.strip())))

    def virsh(self, *args, check=True, timeout=120):
        r = subprocess.run(["virsh", "-q", "-c", self.uri] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise gt.TestFailure("virsh %s: %s" % (" ".join(args), r.stdout.strip()))
        return r

    def virtlogd_pid(self):
        try:
            with open(self.host_path("/run/libvirt/virtlogd.pid")) as f:
                pid = int(f.read().split()[0])
            with open("/proc/%d/comm" % pid) as f:
                return pid if f.read().strip() == "virtlogd" else None
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        """Destroy what runs, stop libvirtd and virtlogd: what went wrong
        (a list). Once; later calls say the same."""
        if self.stopped is not None:
            return self.stopped
        trouble = []
        if self.proc is not None and self.proc.poll() is None:
            try:
                r = self.virsh("list", "--name", check=False, timeout=30)
                for name in r.stdout.split() if r.returncode == 0 else []:
                    log("destroying domain %s" % name)
                    self.virsh("destroy", name, check=False, timeout=60)
            except subprocess.TimeoutExpired:
                trouble.append("virsh did not answer within 30s at the end")
            if not stop_pid(self.proc.pid, "libvirtd", 30):
                trouble.append("libvirtd did not stop on SIGTERM")
            self.proc.wait()
        pid = self.virtlogd_pid()
        if pid is not None and not stop_pid(pid, "virtlogd"):
            trouble.append("virtlogd did not stop on SIGTERM")
        self.stopped = trouble
        return trouble


def leftovers(pids, domain, binary, share):
    """Processes of this run still there: the given pids, a QEMU of the
    domain, a bulkheadd of the share. Each is killed; their descriptions."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        pid = int(d)
        try:
            args = ca.cmdline(pid)
        except OSError:
            continue
        if not args or not ca.alive(pid):
            continue
        if (pid in pids or any(a.startswith("guest=%s," % domain) for a in args)
                or (args[0] == binary and any(share in a for a in args))):
            found.append("pid %d: %s" % (pid, " ".join(args)[:200]))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return found


class SerialConsole:
    """The guest's serial port as libvirt gives it: a UNIX socket QEMU
    listens on, through which the host answers the guest (read and thrown
    away, so QEMU never waits for us), and the log file QEMU writes every
    byte to from the first one, read line by line. The interface of
    run-guest-test.py's Console: lines (None after the last) and send."""

    def __init__(self, sock_path, log_path):
        self.log_path = log_path
        self.lines = queue.Queue()
        self.closed = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        end = time.monotonic() + 30
        while True:
            try:
                self.sock.connect(sock_path)
                break
            except OSError as e:
                if time.monotonic() > end:
                    raise gt.TestFailure("cannot connect to the serial port %s: %s"
                                         % (sock_path, e))
                time.sleep(0.1)
        threading.Thread(target=self._drain, daemon=True).start()
        self.t = threading.Thread(target=self._tail, daemon=True)
        self.t.start()

    def _drain(self):
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        self.closed.set()

    def _tail(self):
        buf, f, quiet = b"", None, None
        while True:
            if f is None:
                try:
                    f = open(self.log_path, "rb")
                except FileNotFoundError:
                    if self.closed.is_set():
                        break
                    time.sleep(0.1)
                    continue
            chunk = f.read(65536)
            if chunk:
                quiet = None
                buf += chunk
                *done, buf = buf.split(b"\n")
                for raw in done:
                    self.lines.put(raw.decode("utf-8", "replace").rstrip("\r"))
                continue
            # QEMU has gone: virtlogd may still be writing its last bytes.
            if self.closed.is_set():
                quiet = quiet or time.monotonic()
                if time.monotonic() - quiet > 3:
                    break
            time.sleep(0.1)
        if buf:
            self.lines.put(buf.decode("utf-8", "replace").rstrip("\r"))
        if f is not None:
            f.close()
        self.lines.put(None)

    def send(self, line):
        log("> " + line)
        try:
            self.sock.sendall((line + "\n").encode())
        except OSError as e:
            log("cannot write to the serial port: %s" % e)


class LibvirtWorkloads(wl.Workloads):
    check_names = wl.MAIN_CHECKS + ["libvirt-argv", "teardown"]
    share_name = "share,libvirt"   # a comma: libvirt doubles it inside -o

    def __init__(self, args):
        super().__init__(args)
        self.lv = None
        self.pid = None          # bulkheadd, as libvirtd started it
        self.domain_up = False
        self.binary = os.path.realpath(os.path.join(args.builddir, "daemon", "bulkheadd"))

    def setup(self):
        super().setup()
        if not os.access(self.binary, os.X_OK):
            raise gt.TestFailure("%s not found or not executable (build it first)" % self.binary)
        self.lv = Libvirtd(os.path.join(self.work, "libvirt"))
        self.lv.start()

    def domain_xml(self, boot):
        def attr(path):
            return escape(path, {"'": "&apos;", '"': "&quot;"})
        return """<domain type='qemu'>
  <name>{dom}</name>
  <memory unit='MiB'>{mem}</memory>
  <vcpu>1</vcpu>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <features><acpi/></features>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 bh.script=workloads-guest.sh bh.args=main</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <filesystem type='mount' accessmode='passthrough'>
      <driver type='virtiofs' queue='1024'/>
      <binary path='{binary}' xattr='on'>
        <cache mode='always'/>
        <lock posix='on' flock='on'/>
        <thread_pool size='{pool}'/>
        <openfiles max='{openfiles}'/>
      </binary>
      <source dir='{share}'/>
      <target dir='{tag}'/>
    </filesystem>
    <filesystem type='mount' accessmode='squash' multidevs='remap'>
      <source dir='/'/>
      <target dir='hostroot'/>
      <readonly/>
    </filesystem>
    <serial type='unix'>
      <source mode='bind' path='{sock}'/>
      <log file='{console}' append='off'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
""".format(dom=DOMAIN, mem=MEM_MIB, kernel=escape(self.kernel), initrd=escape(self.initrd),
           binary=attr(self.binary), pool=ca.THREAD_POOL, openfiles=ca.OPENFILES,
           share=attr(self.shared), tag=wl.TAG, sock=attr(self.console_sock),
           console=attr(self.console_log))

    # ------------------------------------------- the guest and its daemon
    def start_guest(self, boot, queues):
        if queues != 1:
            raise gt.TestFailure("libvirt 9.0 has no setting for more request queues")
        self.console_sock = os.path.join(self.work, "console-%s.sock" % boot)
        self.console_log = os.path.join(self.work, "console-%s.log" % boot)
        xml = os.path.join(self.work, "domain-%s.xml" % boot)
        with open(xml, "w") as f:
            f.write(self.domain_xml(boot))
        log("virsh create %s (domain %s)" % (xml, DOMAIN))
        r = self.lv.virsh("create", xml, check=False)
        if r.returncode != 0:
            logs = glob.glob(os.path.join(self.lv.host_path("/var/log/libvirt/qemu"),
                                          "%s-fs*-virtiofsd.log" % DOMAIN))
            raise gt.TestFailure("virsh create: %s\nthe daemon's log: %s" % (
                r.stdout.strip(), gt.tail(logs[0]) if logs else "none"))
        self.domain_up = True
        self.console = SerialConsole(self.console_sock, self.console_log)
        self.find_daemon()
        self.check_argv()

    def find_daemon(self):
        """bulkheadd as libvirtd started it: the pid in libvirt's pid file
        for the device, a process of our binary; its log file."""
        pidfiles = glob.glob(os.path.join(self.lv.host_path("/run/libvirt/qemu"),
                                          "*-%s-fs*-fs.pid" % DOMAIN))
        logs = glob.glob(os.path.join(self.lv.host_path("/var/log/libvirt/qemu"),
                                      "%s-fs*-virtiofsd.log" % DOMAIN))
        if len(pidfiles) != 1 or len(logs) != 1:
            raise gt.TestFailure("libvirt's pid files %s and daemon logs %s: want one each"
                                 % (pidfiles, logs))
        with open(pidfiles[0]) as f:
            self.pid = int(f.read().split()[0])
        self.daemon_log = logs[0]
        try:
            exe = os.readlink("/proc/%d/exe" % self.pid)
        except OSError as e:
            raise gt.TestFailure("the daemon libvirt started (pid %d) is not running: %s\n%s"
                                 % (self.pid, e, gt.tail(self.daemon_log)))
        if exe != self.binary:
            raise gt.TestFailure("pid %d in %s runs %s, not %s" % (self.pid, pidfiles[0], exe,
                                                                   self.binary))
        log("libvirtd started bulkheadd as pid %d (pid file %s), its log %s"
            % (self.pid, os.path.basename(pidfiles[0]), self.daemon_log))

    def check_argv(self):
        """libvirt-argv: the command line libvirt 9 gave the daemon."""
        c = self.checks["libvirt-argv"]
        c.guest = "ok"
        got = ca.cmdline(self.pid)
        log("bulkheadd's command line: " + " ".join(shlex.quote(a) for a in got))
        try:
            m = re.fullmatch(r"--fd=(\d+)", got[1] if len(got) > 1 else "")
            wl.wl_checks.want(m, "no --fd=N as the first argument: %s" % got)
            fd = int(m.group(1))
            want = [self.binary] + ca.argv("libvirt9", fd=fd,
                                            dir_escaped=ca.libvirt_escape(self.shared))
            # A libvirt that knows <openfiles> adds it after the thread pool.
            newer = want + ["--rlimit-nofile=%d" % ca.OPENFILES]
            wl.wl_checks.want(got in (want, newer), "argv %s, want %s" % (got, want))
            path, why = ca.listening_unix_socket(self.pid, fd)
            wl.wl_checks.want(path is not None, why or "")
            wl.wl_checks.want(re.fullmatch(r"/var/lib/libvirt/qemu/domain-\d+-%s/fs0-fs\.sock"
                                           % re.escape(DOMAIN), path),
                              "descriptor %d listens at %s, not at the device's socket in the "
                              "domain's directory" % (fd, path))
            # libvirt logs the command line it ran in the domain's log.
            with open(self.lv.host_path("/var/log/libvirt/qemu/%s.log" % DOMAIN)) as f:
                dlog = f.read().splitlines()
            at = [i for i, ln in enumerate(dlog) if ln.endswith("Starting external device: "
                                                                "virtiofsd")]
            wl.wl_checks.want(at and at[0] + 1 < len(dlog)
                              and shlex.split(dlog[at[0] + 1]) == got,
                              "the domain log does not show this command line after "
                              "'Starting external device: virtiofsd'")
            limit = ca.nofile_limit(self.pid)
            if got == newer:
                wl.wl_checks.want(limit == ca.OPENFILES, "soft RLIMIT_NOFILE %s, want %d"
                                  % (limit, ca.OPENFILES))
                lim = "--rlimit-nofile=%d in force" % ca.OPENFILES
            else:
                lim = "no --rlimit-nofile (libvirt 9.0 ignores <openfiles>), limit %s" % limit
            c.host = ("exactly libvirt 9's argv (legacy -o with xattr, flock, posix_lock, "
                      "cache=always; --thread-pool-size=%d; %s); --fd=%d is libvirt's "
                      "listening socket %s; as libvirt logged it" % (ca.THREAD_POOL, lim, fd,
                                                                     path))
        except (wl.wl_checks.CheckFailed, OSError, ValueError) as e:
            c.host, c.host_ok = "FAIL: %s" % e, False

    def domain_exists(self):
        return self.lv.virsh("domstate", DOMAIN, check=False, timeout=60).returncode == 0

    def guest_end_trouble(self):
        """A transient domain is gone once it has ended: libvirt must have
        seen the guest's own poweroff."""
        trouble = []
        end = time.monotonic() + 60
        while self.domain_exists():
            if time.monotonic() > end:
                trouble.append("the domain still ran 60s after the guest's last line")
                self.lv.virsh("destroy", DOMAIN, check=False)
                break
            time.sleep(1)
        self.domain_up = False
        try:
            with open(self.lv.host_path("/var/log/libvirt/qemu/%s.log" % DOMAIN)) as f:
                reasons = re.findall(r"shutting down, reason=(\w+)", f.read())
        except OSError as e:
            reasons = [str(e)]
        if reasons != ["shutdown"]:
            trouble.append("libvirt's domain log says how it ended: %s, want reason=shutdown"
                           % (reasons or "nothing"))
        return trouble

    def daemon_end_trouble(self):
        """libvirt stops the daemon once the domain has ended: gone, by
        SIGTERM, stopped cleanly, its workers gone, its log clean."""
        trouble = []
        end = time.monotonic() + 30
        while ca.alive(self.pid) and time.monotonic() < end:
            time.sleep(0.2)
        if ca.alive(self.pid):
            trouble.append("bulkheadd (pid %d) still ran 30s after the domain ended" % self.pid)
            stop_pid(self.pid, "bulkheadd")
        # Its last lines reach the file through virtlogd.
        end = time.monotonic() + 10
        while True:
            with open(self.daemon_log, errors="replace") as f:
                text = f.read()
            if text.rstrip().endswith(": stopped") or time.monotonic() > end:
                break
            time.sleep(0.2)
        if "received SIGTERM, shutting down" not in text:
            trouble.append("no SIGTERM from libvirt in the daemon's log")
        if not text.rstrip().endswith(": stopped"):
            trouble.append("the daemon's log does not end with its orderly 'stopped'")
        workers = [int(p) for p in re.findall(r"worker q\d+ started \(pid (\d+)\)", text)]
        if not workers:
            trouble.append("the daemon's log names no worker")
        left = [p for p in workers if ca.alive(p)]
        if left:
            trouble.append("workers still running: %s" % left)
        bad = gt.worker_trouble(self.daemon_log) + ca.log_trouble(text)
        if bad:
            trouble.append("the daemon's log reports trouble: %s" % "; ".join(bad[:5]))
        if trouble:
            trouble[-1] += " (%s)" % self.daemon_log
        return trouble, ("libvirt ended the daemon (SIGTERM, 'stopped', %d workers gone, "
                         "log clean)" % len(workers))

    def daemon_pids(self):
        return [self.pid] if self.pid else []

    def sysrq(self, keys):
        ok = True
        for k in keys:
            r = self.lv.virsh("send-key", DOMAIN, "KEY_LEFTALT", "KEY_SYSRQ",
                              "KEY_" + k.upper(), check=False, timeout=30)
            ok = ok and r.returncode == 0
            time.sleep(0.2)
        return ok

    def cleanup(self):
        if self.domain_up:
            self.lv.virsh("destroy", DOMAIN, check=False, timeout=60)
            self.domain_up = False
        if self.lv is None:
            return
        c = self.checks["teardown"]
        c.guest = "ok"
        trouble = list(self.lv.stop())
        left = leftovers([self.lv.proc.pid if self.lv.proc else -1,
                          self.lv.virtlogd_pid() or -1] + ([self.pid] if self.pid else []),
                         DOMAIN, self.binary, self.shared)
        if left:
            trouble.append("left running (now killed): %s" % "; ".join(left))
        if trouble:
            c.host, c.host_ok = "FAIL: %s" % "; ".join(trouble), False
        elif not c.host:
            c.host = "libvirtd and virtlogd stopped, no QEMU or bulkheadd of the run left"


def main():
    args = wl.bulkheadd_driver(__doc__, 1200, "libvirt", "libvirt-work", "passthrough")
    if args is None:
        return 1
    missing = [t for t in ("libvirtd", "virtlogd", "virsh", "unshare") if not shutil.which(t)]
    if missing:
        print("libvirt: FAIL: missing %s (libvirt-daemon, libvirt-daemon-driver-qemu, "
              "libvirt-clients: contrib/install-deps.sh)" % ", ".join(missing), file=sys.stderr)
        return 1
    args.daemon = "bulkheadd under libvirtd"
    return wl.run_suite(LibvirtWorkloads(args), [("libvirt", 1, wl.MAIN_CHECKS)])


if __name__ == "__main__":
    sys.exit(main())
