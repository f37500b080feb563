#!/usr/bin/python3
"""bench_guest_rows.py: the guest half of `make bench-guest`.

Runs as root in the throwaway guest (chrooted into the host's / by
hostroot.sh, from the copy in /run/bh), on the virtio-fs share mounted at
/mnt/share, and times each row with the guest's clock. Around each row it
prints, on the console, the lines the host samples the daemon's CPU time at:

    BH-ROW begin NAME
    BH-ROW end NAME secs=S amount=A unit=U

where A/S is the row's throughput in U per second. The host (bench-guest.py)
boots one guest per daemon and round, with the same empty share each time,
so both daemons meet the same rows in the same order on the same contents.
It trusts nothing it reads from the share; a row that fails prints
"BH-ERROR row NAME: why" and the run stops.

usage: bench_guest_rows.py SHARE [ROW,...]
"""

import json
import os
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


class RowFailed(Exception):
    pass


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


def timed(fn):
    t = time.monotonic()
    n = fn()
    return time.monotonic() - t, n


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
    d = files_dir(share)

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
]


def main(argv):
    share = argv[1]
    want = set(argv[2].split(",")) if len(argv) > 2 and argv[2] else None
    for name, unit, fn in ROWS:
        if want is not None and name not in want:
            continue
        print("BH-ROW begin %s" % name, flush=True)
        try:
            secs, amount = fn(share)
        except (RowFailed, OSError, ValueError) as e:
            print("BH-ERROR row %s: %s" % (name, e), flush=True)
            return 1
        print("BH-ROW end %s secs=%.4f amount=%.1f unit=%s" % (name, secs, amount, unit),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
