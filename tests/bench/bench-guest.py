#!/usr/bin/python3
"""bench-guest.py: `make bench-guest`, bulkhead against QEMU's virtiofsd as a
real guest sees them.

Host-side driver, runs as root. Each round boots one throwaway guest (Debian's
kernel under QEMU TCG, the host's / read-only over 9p as its root, as in the
workloads suite) with two virtio-fs devices: bulkhead's share and virtiofsd's,
each a fresh empty file system (its own new ext4 in RAM, so no run inherits
another's freed inodes). The guest (bench_guest_rows.py: fio sequential and
random reads and writes, with and without fsync; create, stat, ls -l and
unlink of many files; a tree of small files written, read warm and cold,
walked by find) runs each row on one share and then on the other, who goes
first alternating from row to row and from round to round, so both daemons
meet the same machine within seconds of each other: on this shared 2-core
machine one daemon's run a minute later could be half as fast or twice for
reasons of the host alone. --separate boots one guest per daemon and round
instead (bulkhead first in odd rounds). The guest prints where each row
begins and ends, and for which daemon; there the driver reads the CPU time
(user + system) of that daemon and all its processes and threads, so every
row has its throughput as the guest timed it and the CPU the daemon spent
on it.

Per row it prints the median throughput of each daemon, the median and range
of the per-round ratios (bulkhead / virtiofsd, above 1 = bulkhead faster),
and each daemon's median CPU milliseconds per unit (per MiB, or per thousand
operations or files); "bulkhead uses more CPU" marks a row where bulkhead's
CPU per unit is the higher. Exits non-zero if a guest or daemon failed.

Environment and options: see --help. BH_BUILDDIR as for the guest tests.
"""

import argparse
import importlib.util
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST = os.path.join(os.path.dirname(HERE), "guest")
sys.path.insert(0, GUEST)
sys.dont_write_bytecode = True  # keep the source tree clean
import workloads as wl  # noqa: E402  (after the path is set)

gt = wl.gt
PEER = "/usr/lib/qemu/virtiofsd"
DAEMONS = ("bulkhead", "virtiofsd")
RUN_LIMIT = 1200        # seconds for one guest run, boot to power-off
ROW_LIMIT = 600         # seconds for one row
SHARE_IMAGE_BYTES = 4 << 30  # sparse; the rows write well under 1 GiB
CLK_TCK = os.sysconf("SC_CLK_TCK")


WARM_FILE = "warm"       # see fresh_share


def mem_bytes(size):
    """QEMU's -m size ("2G") in bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)


def log(msg):
    print("bench-guest: " + msg, flush=True)


def process_cpu(pid):
    """CPU seconds (user + system, every thread) of pid and every process
    below it, plus what its reaped children used. 0 if it is gone."""
    stats = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        # comm may hold spaces and parentheses: fields follow the last ')'
        w = s[s.rindex(")") + 2:].split()
        stats[int(d)] = (int(w[1]), int(w[11]) + int(w[12]), int(w[13]) + int(w[14]))
    if pid not in stats:
        return 0.0
    ticks = stats[pid][2]
    todo = [pid]
    while todo:
        p = todo.pop()
        ticks += stats[p][1]
        todo += [c for c, v in stats.items() if v[0] == p]
    return ticks / CLK_TCK


class Sample:
    """One row of one guest run."""

    def __init__(self, secs, amount, unit, cpu, kv):
        self.rate = amount / secs if secs > 0 else 0.0
        self.unit = unit
        # --fuse-time: the share of the row spent waiting in the guest's
        # FUSE calls, and those calls per unit
        self.wait_share = None
        if "wait" in kv and float(kv["traced"]) > 0:
            self.wait_share = float(kv["wait"]) / float(kv["traced"])
            self.wait_call_us = float(kv["wait"]) * 1e6 / max(int(kv["calls"]), 1)
            self.calls_per_unit = int(kv["calls"]) / amount if amount > 0 else 0.0
        # CPU ms per MiB, or per thousand of anything else
        per = amount if unit == "MiB" else amount / 1000.0
        self.cpu = cpu * 1000.0 / per if per > 0 else 0.0


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = args.workdir
        self.initrd = os.path.join(self.work, "initrd.cpio.gz")
        self.mounted = set()   # daemons whose share image is mounted
        self.results = {}      # (daemon, row) -> [Sample per round]
        self.order = []        # rows in the order the guest ran them
        self.daemons = {}      # daemon -> Popen, while a guest runs
        self.daemon_logs = {}
        self.qemu = None
        self.load = []           # --host-load processes

    def share(self, who):
        return os.path.join(self.work, "share-" + who)

    def sock(self, who):
        return os.path.join(self.work, "vhost-%s.sock" % who)

    def image(self, who):
        # in RAM, so no run waits on this machine's disk
        return "/dev/shm/bulkhead-bench-guest-%d-%s.ext4" % (os.getpid(), who)

    def setup(self):
        for who in DAEMONS:  # left mounted by an interrupted run
            if os.path.ismount(self.share(who)):
                subprocess.run(["umount", self.share(who)], check=True)
        if os.path.exists(self.work):
            subprocess.run(["rm", "-rf", self.work], check=True)
        os.makedirs(self.work)
        self.kernel = wl.hostroot_initramfs(self.initrd, [
            os.path.join(HERE, "bench-guest.sh"), os.path.join(HERE, "bench_guest_rows.py"),
            os.path.join(GUEST, "wl_checks.py")])

    def daemon_cmd(self, who):
        if who == "bulkhead":
            return gt.daemon_command("bulkheadd", self.args.builddir, self.sock(who),
                                     self.share(who)) + self.args.bulkhead_arg
        return [PEER, "--socket-path=" + self.sock(who), "-o", "source=" + self.share(who),
                "-o", "cache=auto"] + self.args.peer_arg

    def fresh_share(self, who):
        """An empty share. On its own new ext4 file system (an image in
        RAM) unless --share-fs=dir: a share that is a directory of a long-
        used host file system makes creation costs swing by 2x from one run
        to the next (ext4 scans recently freed inodes, which the previous
        run left), far beyond any difference between the daemons."""
        self.unmount_share(who)
        share, image = self.share(who), self.image(who)
        subprocess.run(["rm", "-rf", share], check=True)
        os.makedirs(share)
        if self.args.share_fs == "ext4":
            if os.path.exists(image):
                os.unlink(image)
            with open(image, "wb") as f:
                f.truncate(SHARE_IMAGE_BYTES)
            subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                            image], check=True)
            subprocess.run(["mount", "-o", "loop", image, share], check=True)
            self.mounted.add(who)
        os.chmod(share, 0o755)
        # Read once by the guest before the rows (bench_guest_rows.warm): a
        # hole the size of its RAM, so it costs the host no memory.
        with open(os.path.join(share, WARM_FILE), "wb") as f:
            f.truncate(mem_bytes(wl.MEM))

    def unmount_share(self, who):
        if who in self.mounted:
            subprocess.run(["umount", self.share(who)], check=True)
            self.mounted.discard(who)
        if os.path.exists(self.image(who)):
            os.unlink(self.image(who))

    def start_daemon(self, who, tag):
        self.fresh_share(who)
        if os.path.exists(self.sock(who)):
            os.unlink(self.sock(who))
        cmd = self.daemon_cmd(who)
        self.daemon_logs[who] = os.path.join(self.work, "daemon-%s-%s.log" % (who, tag))
        log("%s: %s" % (tag, " ".join(shlex.quote(c) for c in cmd)))
        self.daemons[who] = wl.start_listening(cmd, self.sock(who), self.daemon_logs[who])

    def stop_daemons(self):
        trouble = []
        for who, proc in list(self.daemons.items()):
            t = gt.stop_daemon(proc, self.daemon_logs[who])
            if t:
                trouble.append("%s: %s" % (who, t))
            del self.daemons[who]
        return "; ".join(trouble)

    def start_load(self):
        """--host-load=N: N CPU-bound host processes for the whole run, as
        on a host whose CPUs have other work than this guest."""
        for _ in range(self.args.host_load):
            self.load.append(subprocess.Popen(
                [sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL))

    def stop_load(self):
        for p in self.load:
            p.kill()
            p.wait()
        self.load = []

    def run_guest(self, whos, rnd):
        """One guest run: with two daemons (paired) both shares in one guest,
        whos[0] first in the first row; with one, that daemon's share."""
        paired = len(whos) == 2
        tag = "%s-r%d" % ("paired" if paired else whos[0], rnd)
        for who in whos:
            self.start_daemon(who, tag)
        flags = ["fuse-time"] if self.args.fuse_time else []
        more = []
        if paired:
            flags += ["paired"] + (["peer-first"] if whos[0] == "virtiofsd" else [])
            more = [(self.sock("virtiofsd"), "peerfs", 1)]
        first = "bulkhead" if paired else whos[0]
        qmp = os.path.join(self.work, "qmp.sock")
        cmd = wl.hostroot_qemu_command(self.kernel, self.initrd, self.sock(first), qmp,
                                       "bench-guest.sh", [",".join(self.args.rows + flags)],
                                       queues=self.args.queues if first == "bulkhead" else 1,
                                       smp=self.args.smp, more_fs=more)
        self.qemu = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        console = gt.Console(self.qemu, os.path.join(self.work, "console-%s.log" % tag))
        t0 = time.monotonic()
        end_run = t0 + RUN_LIMIT
        cpu0 = {}
        done = False
        while not done:
            left = min(end_run, time.monotonic() + ROW_LIMIT) - time.monotonic()
            try:
                line = console.lines.get(timeout=max(left, 0.1))
            except gt.queue.Empty:
                raise gt.TestFailure("%s: no progress from the guest (see %s)"
                                     % (tag, console.logf.name))
            if line is None:
                raise gt.TestFailure("%s: QEMU exited before the end" % tag)
            at = line.find("BH-")
            if at < 0:
                continue
            words = line[at:].split()
            if words[0] in ("BH-ERROR",) or "Kernel panic" in line:
                raise gt.TestFailure("%s: %s" % (tag, line.strip()))
            if words[0] == "BH-ROW" and len(words) >= 3:
                kv = dict(w.split("=", 1) for w in words[3:] if "=" in w)
                who = kv.get("who", whos[0])
                if who not in self.daemons:
                    raise gt.TestFailure("%s: a row of an unknown daemon: %s" % (tag, line))
            if words[:2] == ["BH-ROW", "begin"]:
                cpu0[who] = process_cpu(self.daemons[who].pid)
            elif words[:2] == ["BH-ROW", "end"] and who in cpu0:
                cpu = process_cpu(self.daemons[who].pid) - cpu0.pop(who)
                s = Sample(float(kv["secs"]), float(kv["amount"]), kv["unit"], cpu, kv)
                self.results.setdefault((who, words[2]), []).append(s)
                if words[2] not in self.order:
                    self.order.append(words[2])
                log("%s: %-9s %-22s %12.1f %s/s  cpu %.2f s" % (tag, who, words[2], s.rate,
                                                                 s.unit, cpu))
            elif words[0] == "BH-DONE":
                if words[1:] != ["status=0"]:
                    raise gt.TestFailure("%s: guest ended with %s" % (tag, " ".join(words[1:])))
                done = True
        self.qemu.wait(timeout=60)
        self.qemu = None
        trouble = self.stop_daemons()
        if trouble:
            raise gt.TestFailure("%s: %s" % (tag, trouble))
        log("%s: %.0f s" % (tag, time.monotonic() - t0))

    def cleanup(self):
        self.stop_load()
        if self.qemu is not None:
            gt.stop(self.qemu, "QEMU")
        for who, proc in list(self.daemons.items()):
            gt.stop(proc, who)
        self.daemons = {}
        for who in DAEMONS:
            self.unmount_share(who)

    def report(self):
        a = self.args
        share = "a new ext4 in RAM" if a.share_fs == "ext4" else "a directory"
        if a.host_load:
            share += ", %d CPU-bound host process(es) beside" % a.host_load
        how = ("one guest per daemon and round" if a.separate else
               "both daemons' shares in each guest, taking turns row by row")
        print("\nbench-guest: %d rounds (%s), guest -smp %d, TCG, share on %s; bulkhead %s%s, %d "
              "request queue(s); virtiofsd %s -o cache=auto%s"
              % (a.rounds, how, a.smp, share, os.path.join(a.builddir, "daemon", "bulkheadd"),
                 "".join(" " + x for x in a.bulkhead_arg), a.queues, PEER,
                 "".join(" " + x for x in a.peer_arg)))
        print("%-22s %12s %12s %-9s %-18s %10s %10s  %s" % (
            "row", "bulkhead", "virtiofsd", "unit", "ratio (range)", "cpu ours", "cpu peer",
            "cpu unit"))
        for row in self.order:
            ours = self.results.get(("bulkhead", row), [])
            peer = self.results.get(("virtiofsd", row), [])
            n = min(len(ours), len(peer))
            if n == 0:
                continue
            ratios = [o.rate / p.rate for o, p in zip(ours, peer) if p.rate > 0]
            mo = statistics.median(s.rate for s in ours)
            mp = statistics.median(s.rate for s in peer)
            co = statistics.median(s.cpu for s in ours)
            cp = statistics.median(s.cpu for s in peer)
            unit = ours[0].unit
            cpu_unit = "ms/MiB" if unit == "MiB" else "ms/1k " + unit
            note = "  bulkhead uses more CPU" if co > cp else ""
            print("%-22s %12.1f %12.1f %-9s %4.2f (%4.2f-%4.2f) %10.2f %10.2f  %s%s" % (
                row, mo, mp, unit + "/s", statistics.median(ratios), min(ratios), max(ratios),
                co, cp, cpu_unit, note))
            print("BENCH-GUEST %s bulkhead=%.1f peer=%.1f unit=%s/s ratio=%.2f "
                  "(run ratios %s) cpu_bulkhead=%.2f cpu_peer=%.2f cpu_unit=%s"
                  % (row, mo, mp, unit, statistics.median(ratios),
                     ",".join("%.2f" % r for r in ratios), co, cp, cpu_unit.replace(" ", "")))
        if a.fuse_time:
            self.report_fuse_time()

    def report_fuse_time(self):
        """What the daemon can change. Per round, a unit of a row takes the
        guest g = t * (1 - w) outside its FUSE waits (t the time per unit, w
        the share waited); a daemon that answered in no time at all would
        leave g, so t_peer / g_ours is the highest ratio bulkhead could reach
        ("ceiling"). "1.2 needs" is the wait per call at which bulkhead would
        reach 1.2 ("none", and 0 on the BENCH-GUEST-WAIT line: out of reach
        even at no time); with the statfs row,
        compare it with the round trip of a call that costs the daemon one
        fstatvfs, below which no daemon can answer."""
        print("\nbench-guest: time the guest waited in FUSE calls (median of the rounds)")
        print("%-22s %-13s %-11s %-12s %8s %9s" % (
            "row", "us per call", "share", "calls/unit", "ceiling", "1.2 needs"))
        print("%-22s %-13s %-11s %-12s %8s %9s" % ("", "ours/peer", "ours/peer", "ours/peer",
                                                  "", "us/call"))
        med = statistics.median
        for row in self.order:
            pairs = [(o, p) for o, p in zip(self.results.get(("bulkhead", row), []),
                                             self.results.get(("virtiofsd", row), []))
                     if o.wait_share is not None and p.wait_share is not None
                     and o.rate > 0 and p.rate > 0]
            if not pairs:
                continue
            ceil, need = [], []
            for o, p in pairs:
                t_ours, t_peer = 1 / o.rate, 1 / p.rate
                g_ours = t_ours * (1 - o.wait_share)
                ceil.append(t_peer / g_ours if g_ours > 0 else float("inf"))
                # per call: the unit's time at 1.2, less the guest's own, over the calls
                per_call = (t_peer / 1.2 - g_ours) / o.calls_per_unit if o.calls_per_unit else 0
                need.append(max(per_call * 1e6, 0.0))
            fields = (med(o.wait_call_us for o, _ in pairs), med(p.wait_call_us for _, p in pairs),
                      100 * med(o.wait_share for o, _ in pairs),
                      100 * med(p.wait_share for _, p in pairs),
                      med(o.calls_per_unit for o, _ in pairs),
                      med(p.calls_per_unit for _, p in pairs), med(ceil), med(need))
            print("%-22s %5.0f/%-7.0f %3.0f%%/%3.0f%%  %5.2f/%-6.2f %8.2f %9s" % (
                (row,) + fields[:7] + ("%.0f" % fields[7] if fields[7] > 0 else "none",)))
            print("BENCH-GUEST-WAIT %s wait_us=%.0f/%.0f wait_share=%.2f/%.2f calls_per_unit="
                  "%.2f/%.2f ceiling=%.2f us_per_call_for_1.2=%.0f"
                  % ((row,) + fields[:2] + (fields[2] / 100, fields[3] / 100) + fields[4:]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=4, help="guest runs (4), each with both "
                    "daemons (with --separate: per daemon)")
    ap.add_argument("--rows", default="", help="ROW,... (default all; rows use what the "
                    "rows before them made: create before stat_cold, ls_l, unlink; "
                    "seq_write_1m before the other fio rows; tree_write before tree_*)")
    ap.add_argument("--smp", type=int, default=2, help="guest vCPUs (2)")
    ap.add_argument("--queues", type=int, default=1, help="bulkhead's request queues (1); "
                    "QEMU 7.2's virtiofsd serves one")
    ap.add_argument("--bulkhead-arg", action="append", default=[], metavar="OPT",
                    help="an extra bulkheadd option (repeatable)")
    ap.add_argument("--peer-arg", action="append", default=[], metavar="OPT",
                    help="an extra virtiofsd option (repeatable)")
    ap.add_argument("--host-load", type=int, default=0, metavar="N",
                    help="N CPU-bound host processes run beside every guest (0)")
    ap.add_argument("--share-fs", choices=("ext4", "dir"), default="ext4",
                    help="each run's share: a new ext4 file system in RAM (ext4, the "
                    "default) or a new directory beside the work files (dir)")
    ap.add_argument("--fuse-time", action="store_true",
                    help="trace, in the guest, the time each row waits in FUSE calls, and "
                    "print how much of a row a faster daemon could save (slows both "
                    "daemons' rows a little alike)")
    ap.add_argument("--separate", action="store_true",
                    help="one guest per daemon and round (bulkhead's first in odd rounds) "
                    "instead of both daemons' shares in one guest taking turns row by row")
    ap.add_argument("--builddir", default=os.environ.get("BH_BUILDDIR", os.getcwd()))
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    args.rows = [r for r in args.rows.split(",") if r]
    if args.workdir is None:
        args.workdir = os.path.join(args.builddir, "tests", "bench", "guest-work")
    args.workdir = os.path.abspath(args.workdir)
    if os.geteuid() != 0:
        print("bench-guest: must run as root", file=sys.stderr)
        return 1
    for tool in (PEER, "qemu-system-x86_64", "fio"):
        if not shutil.which(tool):
            print("bench-guest: %s is missing (contrib/install-deps.sh installs it)" % tool,
                  file=sys.stderr)
            return 1

    b = Bench(args)
    # SIGTERM cleans up as ^C does: no daemon, guest, load or mount left behind
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    t0 = time.monotonic()
    try:
        b.setup()
        b.start_load()
        for rnd in range(1, args.rounds + 1):
            first = list(DAEMONS) if rnd % 2 else list(DAEMONS[::-1])
            if args.separate:
                for who in first:
                    b.run_guest([who], rnd)
            else:
                b.run_guest(first, rnd)
    except (gt.TestFailure, subprocess.CalledProcessError, OSError, KeyboardInterrupt) as e:
        print("bench-guest: FAIL: %s" % e, flush=True)
        return 1
    finally:
        b.cleanup()
    b.report()
    log("%.0f s" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
