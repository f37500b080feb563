#!/usr/bin/python3
"""s3_checks.py: what the S3 guest test does to the share and expects of it.

One table of the share's contents, read on both sides: in the throwaway
guest (from the host tree, over the 9p root) its checks change the virtio-fs
share of an S3 bucket and compare what they read back with what they wrote;
on the host s3share.py seeds the bucket from it and checks the bucket with
an independent client against final_keys(). Standard library only: the
guest imports it too. It trusts nothing it reads from the share.

usage: s3_checks.py pattern big|existing|existing-patched   (to stdout)
       s3_checks.py names                                   (many/'s listing)
       s3_checks.py create|pwrite|mkdir|rename|delete|tree DIR
"""

import errno
import os
import random
import sys

from wl_checks import CheckFailed, expect_errno, read_file, run_check, want, write_file

PREFIX = "vm1/"            # the share's part of the bucket (the daemon's prefix)
CHUNK = 1 << 20
BIG = "big.bin"            # written by the guest in order: a multipart upload
BIG_SIZE = 200 << 20
EXISTING = "existing.bin"  # seeded by the host, changed in place by the guest
EXISTING_SIZE = 12 << 20
# Across the 1 MiB read pieces around 8 MiB, where an 8M part would end.
PATCH_OFF = (8 << 20) - 40000 + 3
PATCH = bytes(range(256)) * 300
MANY = "many"              # seeded by the host, only listed by the guest
MANY_COUNT = 5000
# Keys of the bucket outside the share: the guest must never see them.
OUTSIDE = {"other/outside.txt": b"not in the share\n",
           "vm10/decoy.txt": b"a prefix of the prefix's name, not below it\n"}

# What s3-create makes (directories with mkdir, so each gets a marker)...
CREATED_DIRS = ["tree", "tree/sub", "gone"]
CREATED = {
    "kept.txt": b"created by the guest, never moved\n",
    "notes.txt": b"renamed later\n" * 50,
    "deleteme.txt": b"deleted later\n",
    "tree/a.txt": b"a in a directory that is renamed\n",
    "tree/sub/b.txt": b"b, one level further down\n" * 1000,
    "tree/sub/c.txt": b"",
}
KEPT_MODE = 0o640          # kept.txt's, as x-amz-meta-mode must say
# ... and what the later checks do to it.
EMPTY_DIR = "emptydir"
RENAMES = [("notes.txt", "notes-renamed.txt"), ("tree", "tree2")]
UNLINKED = "deleteme.txt"
REMOVED_DIR = "gone"


def pattern(name):
    """The bytes of a named content, 1 MiB at a time: a random MiB, turned
    by another amount each MiB, so each MiB differs and a misplaced piece
    shows, and the guest's TCG CPU makes 200 MiB in seconds."""
    if name == "existing-patched":
        data = bytearray(b"".join(pattern("existing")))
        data[PATCH_OFF:PATCH_OFF + len(PATCH)] = PATCH
        for i in range(0, len(data), CHUNK):
            yield bytes(data[i:i + CHUNK])
        return
    size, seed = {"big": (BIG_SIZE, 200), "existing": (EXISTING_SIZE, 12)}[name]
    base = random.Random(seed).randbytes(CHUNK)
    for i in range(0, size // CHUNK):
        k = (i * 65537) % CHUNK
        yield base[k:] + base[:k]


def many_names():
    return ["f%05d" % i for i in range(MANY_COUNT)]


def many_body(name):
    return ("%s/%s\n" % (MANY, name)).encode()


def final_files():
    """Path in the share -> content (None: a pattern), after every check."""
    files = dict(CREATED)
    for old, new in RENAMES:
        for path in list(files):
            if path == old or path.startswith(old + "/"):
                files[new + path[len(old):]] = files.pop(path)
    del files[UNLINKED]
    files[BIG] = None
    files[EXISTING] = None
    files.update(("%s/%s" % (MANY, n), many_body(n)) for n in many_names())
    return files


def final_dirs():
    """The directories with a marker, after every check."""
    dirs = []
    for d in CREATED_DIRS + [EMPTY_DIR]:
        for old, new in RENAMES:
            if d == old or d.startswith(old + "/"):
                d = new + d[len(old):]
        if d != REMOVED_DIR:
            dirs.append(d)
    return dirs


def final_keys():
    """Every key of the bucket once the guest is done -> content (None: a
    pattern, b"": a directory's marker)."""
    keys = {PREFIX + p: c for p, c in final_files().items()}
    keys.update((PREFIX + d + "/", b"") for d in final_dirs())
    keys.update(OUTSIDE)
    return keys


def drop_caches():
    """Read from the device next, not from this guest's page cache."""
    write_file("/proc/sys/vm/drop_caches", b"3\n")


def first_difference(got, expected):
    """Where two byte strings first differ, in words."""
    n = min(len(got), len(expected))
    for i in range(0, n, CHUNK):
        a, b = got[i:min(i + CHUNK, n)], expected[i:min(i + CHUNK, n)]
        if a != b:
            return "first difference at offset %d" % (
                i + next(j for j in range(len(a)) if a[j] != b[j]))
    if len(got) != len(expected):
        return "%d bytes, want %d" % (len(got), len(expected))
    return "no difference"


def expect_same(got, expected, what):
    """got must be expected, else CheckFailed says where they differ (only
    worked out then: the patterned contents are large)."""
    if got != expected:
        raise CheckFailed("%s: %s" % (what, first_difference(got, expected)))


# --------------------------------------------------------------------------
# The guest's checks, in the order workloads-guest.sh runs them

def check_create(d):
    for sub in CREATED_DIRS:
        os.mkdir(os.path.join(d, sub))
    for path, data in CREATED.items():
        fd = os.open(os.path.join(d, path), os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                     KEPT_MODE if path == "kept.txt" else 0o644)
        os.write(fd, data)
        os.close(fd)
    drop_caches()
    for path, data in CREATED.items():
        want(read_file(os.path.join(d, path)) == data, "%s reads back other bytes" % path)
    want(os.stat(os.path.join(d, "kept.txt")).st_mode & 0o7777 == KEPT_MODE, "kept.txt's mode")
    want(sorted(os.listdir(os.path.join(d, "tree"))) == ["a.txt", "sub"],
         "tree/ lists %s" % sorted(os.listdir(os.path.join(d, "tree"))))


def check_pwrite(d):
    p = os.path.join(d, EXISTING)
    expect_same(read_file(p), b"".join(pattern("existing")), EXISTING + " as the host seeded it")
    fd = os.open(p, os.O_WRONLY)
    want(os.pwrite(fd, PATCH, PATCH_OFF) == len(PATCH), "short pwrite")
    os.close(fd)
    drop_caches()
    expect_same(read_file(p), b"".join(pattern("existing-patched")), EXISTING + " after the write")
    return "%d bytes at %d into %s" % (len(PATCH), PATCH_OFF, EXISTING)


def check_mkdir(d):
    p = os.path.join(d, EMPTY_DIR)
    os.mkdir(p)
    drop_caches()
    want(os.path.isdir(p) and os.listdir(p) == [], "%s is not an empty directory" % EMPTY_DIR)
    expect_errno((errno.EEXIST,), os.mkdir, p)


def check_rename(d):
    for old, new in RENAMES:
        os.rename(os.path.join(d, old), os.path.join(d, new))
    drop_caches()
    for old, new in RENAMES:
        expect_errno((errno.ENOENT,), os.lstat, os.path.join(d, old))
    for path, data in final_files().items():
        if data is not None and not path.startswith(MANY + "/"):
            want(read_file(os.path.join(d, path)) == data, "%s reads back other bytes" % path)
    want(sorted(os.listdir(os.path.join(d, "tree2", "sub"))) == ["b.txt", "c.txt"],
         "tree2/sub lists %s" % sorted(os.listdir(os.path.join(d, "tree2", "sub"))))


def check_delete(d):
    os.unlink(os.path.join(d, UNLINKED))
    os.rmdir(os.path.join(d, REMOVED_DIR))
    expect_errno((errno.ENOTEMPTY,), os.rmdir, os.path.join(d, "tree2"))
    drop_caches()
    for gone in (UNLINKED, REMOVED_DIR):
        expect_errno((errno.ENOENT,), os.lstat, os.path.join(d, gone))


def check_tree(d):
    """The guest's whole view of the share, on a new mount, is final_files()
    and final_dirs() (many/ has no marker, but the keys below it make it a
    directory)."""
    files, dirs = set(), set()
    for top, subdirs, names in os.walk(d):
        rel = os.path.relpath(top, d)
        for n in subdirs:
            dirs.add(n if rel == "." else rel + "/" + n)
        for n in names:
            files.add(n if rel == "." else rel + "/" + n)
    for what, got, expected in (("files", files, set(final_files())),
                                ("directories", dirs, set(final_dirs()) | {MANY})):
        want(got == expected, "%s: missing %s, unexpected %s" % (
            what, sorted(expected - got)[:5], sorted(got - expected)[:5]))
    for path, data in final_files().items():
        size = EXISTING_SIZE if path == EXISTING else BIG_SIZE if path == BIG else len(data)
        if not path.startswith(MANY + "/"):
            st = os.lstat(os.path.join(d, path))
            want(st.st_size == size, "%s is %d bytes, want %d" % (path, st.st_size, size))
    return "%d files, %d directories" % (len(files), len(dirs))


CHECKS = {
    "create": check_create,
    "pwrite": check_pwrite,
    "mkdir": check_mkdir,
    "rename": check_rename,
    "delete": check_delete,
    "tree": check_tree,
}


def main(argv):
    if len(argv) == 3 and argv[1] == "pattern":
        for chunk in pattern(argv[2]):
            sys.stdout.buffer.write(chunk)
        return 0
    if len(argv) == 2 and argv[1] == "names":
        print("\n".join(many_names()))
        return 0
    if len(argv) != 3 or argv[1] not in CHECKS:
        print(__doc__, file=sys.stderr)
        return 2
    return run_check(CHECKS[argv[1]], argv[2])

if __name__ == "__main__":
    sys.exit(main(sys.argv))
