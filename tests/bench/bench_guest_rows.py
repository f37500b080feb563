#!/usr/bin/python3
"""bench_guest_rows.py: the guest half of `make bench-guest`.

Runs as root in the throwaway guest (chrooted into the host's / by
hostroot.sh, from the copy in /run/bh), on the virtio-fs share mounted at
/mnt/share, and times each row with the guest's clock. Around each row it
prints, on the console, the lines the host samples the daemon's CPU time at:

    BH-ROW begin NAME
    BH-ROW end NAME secs=S amount=A unit=U

where A/S is the row's throughput in U per second. With the pseudo-row
"fuse-time" among the rows, the end line also carries wait=W calls=C
traced=T: the seconds the row's processes spent inside the guest kernel's
FUSE calls that wait for the daemon's answer (fuse_simple_request, and
fuse_file_read_iter, which waits for read-ahead sent in the background), and
how many there were, from the guest's function-graph tracer, which ran T
seconds (fio's own time leaves out its start and end). W/T is the share of
the row a faster daemon could shorten; the rest is the guest's own.

The host (bench-guest.py) boots one guest per round with both daemons'
shares, each an empty new file system: bulkhead's at /mnt/share, virtiofsd's
at /mnt/peer ("paired"); each row runs on one share and then on the other,
the first alternating from row to row (bulkhead's first in the first row
unless "peer-first"), so both daemons meet the same rows in the same order
on the same contents within seconds of each other, and the begin and end
lines carry who=DAEMON. The statfs row of a paired run (without fuse-time)
alternates between the shares every STATFS_TURN seconds instead, inside
one begin/end pair per daemon. With --separate the host boots one guest per daemon
and round instead, with the one share at /mnt/share. It trusts nothing it
reads from the share; a row that fails prints "BH-ERROR row NAME: why" and
the run stops.

usage: bench_guest_rows.py SHARE [ROW,...][,fuse-time][,paired][,peer-first]
(SHARE is /mnt/share; the paired shares are at fixed places)
"""

import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wl_checks  # noqa: E402  (gentree, shared with the workloads suite)

FILE_MIB = 256       # the fio file
RAND_SECS = 8        # time-based fio rows
NFILES = 3000        # create, stat, ls -l, unlink
LS_ROUNDS = 5
TREE_FILES = 5000    # the small-file tree
TREE_SEED = 4242
STATFS_SECS = 4      # the round-trip row
STATFS_TURN = 0.25   # paired: the round-trip row's turns


class RowFailed(Exception):
    pass


class FuseTime:
    """Time the row's processes spend waiting in the guest's FUSE client,
    measured with the function-graph tracer at depth 1: only the outermost
    traced call counts (a GETATTR inside a read is part of the read), and
    a call's duration includes the time its task slept, which is the wait
    for the daemon. Calls of concurrent processes (find | xargs cat) add
    up, so there the sum can exceed the wall time."""

    T = "/sys/kernel/tracing"
    FUNCS = "fuse_simple_request fuse_file_read_iter"
    DURATION = re.compile(r"(\d+\.\d+) us +\|")

    def __init__(self):
        if not os.path.isdir(self.T + "/options"):
            sh(["mount", "-t", "tracefs", "tracefs", self.T])
        self.put("tracing_on", "0")
        self.put("current_tracer", "nop")
        self.put("set_ftrace_filter", self.FUNCS)
        self.put("set_graph_function", self.FUNCS)
        self.put("max_graph_depth", "1")
        self.put("buffer_size_kb", "16384")
        self.put("current_tracer", "function_graph")
        self.put("options/funcgraph-irqs", "0")

    def put(self, name, value):
        with open(os.path.join(self.T, name), "w") as f:
            f.write(value + "\n")

    def start(self):
        self.put("trace", "")
        self.put("tracing_on", "1")

    def stop(self):
        """(seconds waited, calls) since start(); a row whose trace
        overran fails rather than report a short sum."""
        self.put("tracing_on", "0")
        for cpu in os.listdir(self.T + "/per_cpu"):
            with open("%s/per_cpu/%s/stats" % (self.T, cpu)) as f:
                for line in f:
                    if line.startswith("overrun:") and int(line.split()[1]) != 0:
                        raise RowFailed("the trace buffer of %s overran" % cpu)
        total, calls = 0.0, 0
        with open(self.T + "/trace") as f:
            for line in f:
                m = self.DURATION.search(line)
                if m:
                    total += float(m.group(1))
                    calls += 1
        return total / 1e6, calls


def drop_caches():
    """The guest's page, dentry and inode caches (the host's stay)."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def sh(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, **kw)
    if r.returncode != 0:
        raise RowFailed("%s: exit %d: %s" % (cmd[0], r.returncode,
                                             r.stdout.decode(errors="replace")[-300:]))
    return r.stdout.decode(errors="replace")


def fio(share, rw, bs, extra):
    """One fio job over the share's fio file; (seconds, bytes) it reports."""
    with Traced():  # fio's runtime leaves out its start and end, the trace does not
        out = sh(["fio", "--name=bh", "--filename=%s/fio/data" % share, "--size=%dM" % FILE_MIB,
                  "--rw=" + rw, "--bs=" + bs, "--ioengine=psync", "--randrepeat=1",
                  "--output-format=json"] + extra)
    job = json.loads(out[out.index("{"):])["jobs"][0]
    side = job["read" if "read" in rw else "write"]
    if side["io_bytes"] <= 0 or side["runtime"] <= 0:
        raise RowFailed("fio moved nothing: %s" % json.dumps(side)[:200])
    return side["runtime"] / 1000.0, side["io_bytes"]


def row_seq_write(share):
    os.makedirs(share + "/fio", exist_ok=True)
    secs, n = fio(share, "write", "1M", ["--end_fsync=1"])
    return secs, n / 2**20


def row_seq_read_cold(share):
    drop_caches()
    secs, n = fio(share, "read", "1M", [])
    return secs, n / 2**20


def row_rand_read(share):
    secs, n = fio(share, "randread", "4k", ["--direct=1", "--time_based",
                                            "--runtime=%d" % RAND_SECS])
    return secs, n / 4096


def row_rand_write_fsync(share):
    secs, n = fio(share, "randwrite", "4k", ["--fsync=32", "--time_based",
                                             "--runtime=%d" % RAND_SECS])
    return secs, n / 4096


def files_dir(share):
    return share + "/files"


class Traced:
    """Around the timed part of a row: the FuseTime tracer when asked for
    ("fuse-time"), else nothing. `waited` keeps the last (seconds waited,
    calls, seconds traced)."""
    tracer = None
    waited = None

    def __enter__(self):
        if Traced.tracer:
            Traced.tracer.start()
            self.t = time.monotonic()

    def __exit__(self, kind, value, tb):
        if Traced.tracer and kind is None:
            Traced.waited = Traced.tracer.stop() + (time.monotonic() - self.t,)


def timed(fn):
    with Traced():
        t = time.monotonic()
        n = fn()
        secs = time.monotonic() - t
    return secs, n


def row_create(share):
    d = files_dir(share)
    os.makedirs(d, exist_ok=True)

    def run():
        for i in range(NFILES):
            os.close(os.open("%s/f%05d" % (d, i), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        return NFILES
    return timed(run)


def row_stat_cold(share):
    d = files_dir(share)
    drop_caches()

    def run():
        for i in range(NFILES):
            os.stat("%s/f%05d" % (d, i))
        return NFILES
    return timed(run)


def row_ls_l(share):
    """Warm: one pass first, not timed, so the timed ones meet the same
    caches whatever ran just before (in a paired run, the other share's
    stat_cold dropped them)."""
    d = files_dir(share)
    sh(["ls", "-l", d])

    def run():
        for _ in range(LS_ROUNDS):
            lines = sh(["ls", "-l", d]).count("\n")
            if lines != NFILES + 1:
                raise RowFailed("ls -l listed %d lines, want %d" % (lines, NFILES + 1))
        return NFILES * LS_ROUNDS
    return timed(run)


def row_unlink(share):
    d = files_dir(share)

    def run():
        for i in range(NFILES):
            os.unlink("%s/f%05d" % (d, i))
        if os.listdir(d):
            raise RowFailed("files left after unlink")
        return NFILES
    return timed(run)


def tree_dir(share):
    return share + "/tree"


def row_tree_write(share):
    return timed(lambda: wl_checks.gentree(tree_dir(share), TREE_FILES, TREE_SEED) or TREE_FILES)


def cat_tree(share):
    out = sh(["sh", "-c", "find %s -type f -print0 | xargs -0 cat | wc -c" % tree_dir(share)])
    if int(out.split()[0]) <= 0:
        raise RowFailed("the tree read back empty")
    return TREE_FILES


def row_tree_cat_warm(share):
    cat_tree(share)  # warm: this pass is not timed
    return timed(lambda: cat_tree(share))


def row_tree_cat_cold(share):
    drop_caches()
    return timed(lambda: cat_tree(share))


def row_find_stat_cold(share):
    drop_caches()

    def run():
        out = sh(["find", tree_dir(share), "-type", "f", "-exec", "stat", "-c", "%s", "{}", "+"])
        n = out.count("\n")
        if n < TREE_FILES:
            raise RowFailed("find -exec stat saw %d files, want %d" % (n, TREE_FILES))
        return n
    return timed(run)


def row_statfs(share):
    """STATFS, which the guest never caches and both daemons answer with
    one fstatvfs: the price of a round trip itself."""
    def run():
        n, end = 0, time.monotonic() + STATFS_SECS
        while time.monotonic() < end:
            for _ in range(100):
                os.statvfs(share)
            n += 100
        return n
    return timed(run)


def statfs_turns(shares):
    """The statfs row of a paired run: the two shares take turns of
    STATFS_TURN seconds in the order A B B A, STATFS_SECS in all for each,
    so both meet the same seconds of this machine, whose speed moves by 30%
    from one second to the next. {who: (seconds, calls)}."""
    got = {who: [0.0, 0] for who, _ in shares}
    order = shares + shares[::-1]
    for t in range(int(round(2 * STATFS_SECS / STATFS_TURN))):
        who, share = order[t % len(order)]
        n, start = 0, time.monotonic()
        while time.monotonic() - start < STATFS_TURN:
            for _ in range(20):
                os.statvfs(share)
            n += 20
        got[who][0] += time.monotonic() - start
        got[who][1] += n
    return got


# name, unit, function; in this order (later rows use what earlier ones made)
ROWS = [
    ("seq_write_1m", "MiB", row_seq_write),
    ("seq_read_1m_cold", "MiB", row_seq_read_cold),
    ("rand_read_4k", "ops", row_rand_read),
    ("rand_write_4k_fsync32", "ops", row_rand_write_fsync),
    ("create", "files", row_create),
    ("stat_cold", "files", row_stat_cold),
    ("ls_l", "entries", row_ls_l),
    ("unlink", "files", row_unlink),
    ("tree_write", "files", row_tree_write),
    ("tree_cat_warm", "files", row_tree_cat_warm),
    ("tree_cat_cold", "files", row_tree_cat_cold),
    ("find_stat_cold", "files", row_find_stat_cold),
    ("statfs", "calls", row_statfs),
]


def warm(share):
    """Read the share's "warm" file (a hole the size of the guest's RAM,
    made by the host) once, not timed, and drop the caches: the guest's page
    cache cycles through its free memory, so the daemon writes into nearly
    every page of it and has them mapped, as after a guest has run a while.
    Without it a row pays for the first touch of each page of guest memory
    it meets, which on this machine costs more than reading the data (6-12
    us a page against 0.3), and which pages a row meets first depends on
    what the guest did before: in a paired run, on which daemon's share the
    guest's page cache held."""
    t = time.monotonic()
    with open(share + "/warm", "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass
    drop_caches()
    return time.monotonic() - t


def shares_of(flags):
    """[(who, mount point)] in the order the first row runs them: one share
    ("" = the run's only daemon), or with "paired" both daemons' shares in
    one guest, bulkhead's first unless "peer-first"."""
    if "paired" not in flags:
        return [("", "/mnt/share")]
    both = [("bulkhead", "/mnt/share"), ("virtiofsd", "/mnt/peer")]
    return both[::-1] if "peer-first" in flags else both


def row_begin(name, who):
    print("BH-ROW begin %s%s" % (name, " who=%s" % who if who else ""), flush=True)


def row_end(name, secs, amount, unit, who, extra=""):
    print("BH-ROW end %s secs=%.4f amount=%.1f unit=%s%s%s"
          % (name, secs, amount, unit, " who=%s" % who if who else "", extra), flush=True)


def run_row(name, unit, fn, who, share):
    row_begin(name, who)
    Traced.waited = None
    secs, amount = fn(share)
    extra = ""
    if Traced.waited:
        extra = " wait=%.4f calls=%d traced=%.4f" % Traced.waited
    row_end(name, secs, amount, unit, who, extra)


def main(argv):
    want = set(argv[2].split(",")) if len(argv) > 2 and argv[2] else set()
    flags = want & {"fuse-time", "paired", "peer-first"}
    want -= flags
    shares = shares_of(flags)
    if "fuse-time" in flags:
        try:
            Traced.tracer = FuseTime()
        except (RowFailed, OSError) as e:
            print("BH-ERROR cannot set up the function-graph tracer: %s" % e, flush=True)
            return 1
    for who, share in shares:
        try:
            print("BH-WARM %s secs=%.1f" % (who or "share", warm(share)), flush=True)
        except OSError as e:
            print("BH-ERROR warming %s: %s" % (share, e), flush=True)
            return 1
    n = 0
    for name, unit, fn in ROWS:
        if want and name not in want:
            continue
        if name == "statfs" and len(shares) == 2 and not Traced.tracer:
            for who, _ in shares:
                row_begin(name, who)
            try:
                got = statfs_turns(shares)
            except OSError as e:
                print("BH-ERROR row statfs: %s" % e, flush=True)
                return 1
            for who, (secs, calls) in got.items():
                row_end(name, secs, calls, unit, who)
            continue
        # paired: the two shares take turns, who goes first alternating by row
        for who, share in (shares if n % 2 == 0 else shares[::-1]):
            try:
                run_row(name, unit, fn, who, share)
            except (RowFailed, OSError, ValueError) as e:
                print("BH-ERROR row %s%s: %s" % (name, " (%s)" % who if who else "", e),
                      flush=True)
                return 1
        n += 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
