#!/usr/bin/python3
"""wl_checks.py: the system-call level workload checks of the guest suite.

Runs in the throwaway guest (from the host tree, over the 9p root) on the
virtio-fs share, and on the host for the deterministic tree generator and the
host-side expectations (expect_* functions, imported by workloads.py). It trusts
nothing it reads from the share: every check compares with what it wrote.
Exit status: 0 pass, 1 fail, 3 the operation is unsupported (errno named on the
last line, so the host can tell a known peer gap from a failure).

usage: wl_checks.py gentree DIR NFILES SEED
       wl_checks.py renameat2|tmpfile|seek|posixlock|flock|mmap|nonroot DIR
       wl_checks.py hold posix|flock PATH   (fd 3: console, stdin: the host)
"""

import ctypes
import errno
import fcntl
import os
import random
import sys
import time

UNSUPPORTED = 3
MMAP_SIZE = 1 << 20
PAGE = 4096
SEEK_GAP = 1 << 20


class CheckFailed(Exception):
    pass


def want(cond, what):
    if not cond:
        raise CheckFailed(what)


def expect_errno(codes, fn, *args):
    """Run fn, which must fail with one of codes; returns that errno."""
    try:
        fn(*args)
    except OSError as e:
        want(e.errno in codes, "%s: got %s, want %s" % (
            fn.__name__, errno.errorcode.get(e.errno, e.errno),
            "/".join(errno.errorcode[c] for c in codes)))
        return e.errno
    raise CheckFailed("%s%r succeeded, want %s" % (
        fn.__name__, args, "/".join(errno.errorcode[c] for c in codes)))


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


# --------------------------------------------------------------------------
# Deterministic tree (tar and git workloads; the host rebuilds it to compare)

def gentree(root, nfiles, seed):
    rng = random.Random(seed)
    per_dir = 100
    os.makedirs(root, exist_ok=True)
    for i in range(nfiles):
        d = os.path.join(root, "d%03d" % (i // per_dir), "s%d" % (i % 3))
        os.makedirs(d, exist_ok=True)
        r = rng.random()
        if r < 0.05:
            size = 0
        elif r < 0.97:
            size = rng.randrange(1, 4096)
        else:
            size = rng.randrange(4096, 65536)
        # Text-ish content so git's delta and zlib paths get real work.
        words = rng.randbytes(size // 2 + 1).hex().encode()[:size]
        write_file(os.path.join(d, "f%05d.txt" % i), words)
    # A few relative symlinks and an empty directory.
    for k in range(0, nfiles, 500):
        d = os.path.join(root, "d%03d" % (k // per_dir))
        os.symlink("s%d/f%05d.txt" % (k % 3, k), os.path.join(d, "link%05d" % k))
    os.makedirs(os.path.join(root, "empty"), exist_ok=True)


# --------------------------------------------------------------------------
# renameat2

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(old, new, flags):
    # os.rename has no flags; glibc 2.28+ has the wrapper.
    if _libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old)


def check_renameat2(d):
    a, b, c, sub = (os.path.join(d, n) for n in ("a", "b", "c", "sub"))
    write_file(a, b"A")
    write_file(b, b"B")
    os.mkdir(sub)
    write_file(os.path.join(sub, "inside"), b"I")
    expect_errno((errno.EEXIST,), renameat2, a, b, RENAME_NOREPLACE)
    want(read_file(a) == b"A" and read_file(b) == b"B", "NOREPLACE changed a or b")
    renameat2(a, b, RENAME_EXCHANGE)
    want(read_file(a) == b"B" and read_file(b) == b"A", "EXCHANGE did not swap a and b")
    renameat2(a, c, RENAME_NOREPLACE)
    want(not os.path.exists(a) and read_file(c) == b"B", "NOREPLACE to a new name")
    expect_errno((errno.ENOENT,), renameat2, a, b, RENAME_EXCHANGE)
    # Exchange a directory with a file: both survive under each other's name.
    renameat2(sub, b, RENAME_EXCHANGE)
    want(os.path.isdir(b) and read_file(os.path.join(b, "inside")) == b"I",
         "EXCHANGE dir<->file: directory not under the file's name")
    want(read_file(sub) == b"A", "EXCHANGE dir<->file: file not under the dir's name")
    expect_errno((errno.EINVAL,), renameat2, c, b, RENAME_EXCHANGE | RENAME_NOREPLACE)


def expect_renameat2(d):
    """Host side: the final state the guest left behind."""
    want(sorted(os.listdir(d)) == ["b", "c", "sub"], "entries %s" % sorted(os.listdir(d)))
    want(read_file(os.path.join(d, "c")) == b"B", "c != B")
    want(read_file(os.path.join(d, "sub")) == b"A", "sub != A")
    want(read_file(os.path.join(d, "b", "inside")) == b"I", "b/inside != I")


# --------------------------------------------------------------------------
# O_TMPFILE + linkat

TMPFILE_DATA = b"born nameless\n" * 100
AT_SYMLINK_FOLLOW = 0x400


def linkat_fd(fd, new, dirfd=AT_FDCWD):
    # os.link calls link(2), which links the /proc symlink itself (EXDEV).
    src = ("/proc/self/fd/%d" % fd).encode()
    if _libc.linkat(AT_FDCWD, src, dirfd, new.encode(), AT_SYMLINK_FOLLOW) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), new)


def check_tmpfile(d):
    try:
        fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o640)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EISDIR):
            print("O_TMPFILE unsupported: errno=%s" % errno.errorcode[e.errno])
            sys.exit(UNSUPPORTED)
        raise
    os.write(fd, TMPFILE_DATA)
    want(os.listdir(d) == [], "an O_TMPFILE file has a name: %s" % os.listdir(d))
    linkat_fd(fd, os.path.join(d, "linked"))
    os.close(fd)
    want(read_file(os.path.join(d, "linked")) == TMPFILE_DATA, "linked content differs")
    # One that is never linked must leave nothing behind.
    fd = os.open(d, os.O_TMPFILE | os.O_WRONLY | os.O_EXCL, 0o600)
    os.write(fd, b"gone")
    expect_errno((errno.ENOENT,), linkat_fd, fd, os.path.join(d, "never"))
    os.close(fd)
    want(os.listdir(d) == ["linked"], "entries after close: %s" % os.listdir(d))
    # The atomic-create idiom as programs write it: a write-only O_TMPFILE,
    # then linkat(AT_FDCWD, "/proc/self/fd/N", dirfd, name, AT_SYMLINK_FOLLOW)
    # with a name relative to a descriptor of the target directory: the
    # tmpfile's own, and another one.
    os.mkdir(os.path.join(d, "sub"))
    for where, name in (("", "viadirfd"), ("sub", "moved")):
        dirfd = os.open(os.path.join(d, where), os.O_RDONLY | os.O_DIRECTORY)
        fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o640)
        os.write(fd, TMPFILE_DATA)
        try:
            linkat_fd(fd, name, dirfd)
        except OSError as e:
            raise CheckFailed("O_WRONLY tmpfile in %s, linkat to dirfd of %s/, name %s: %s"
                              % (d, where or ".", name, errno.errorcode.get(e.errno, e.errno)))
        os.close(fd)
        os.close(dirfd)
        want(read_file(os.path.join(d, where, name)) == TMPFILE_DATA,
             "%s content differs" % os.path.join(where, name))
    want(sorted(os.listdir(d)) == TMPFILE_NAMES, "entries at the end: %s" % os.listdir(d))


TMPFILE_NAMES = ["linked", "sub", "viadirfd"]


def expect_tmpfile(d):
    want(sorted(os.listdir(d)) == TMPFILE_NAMES, "entries %s" % sorted(os.listdir(d)))
    want(os.listdir(os.path.join(d, "sub")) == ["moved"],
         "sub/ holds %s" % os.listdir(os.path.join(d, "sub")))
    for name in ("linked", "viadirfd", "sub/moved"):
        st = os.stat(os.path.join(d, name))
        want(st.st_nlink == 1, "%s: nlink %d" % (name, st.st_nlink))
        want(read_file(os.path.join(d, name)) == TMPFILE_DATA, "%s: content differs" % name)


# --------------------------------------------------------------------------
# SEEK_DATA / SEEK_HOLE

def check_seek(d):
    p = os.path.join(d, "sparse")
    fd = os.open(p, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    os.pwrite(fd, b"x" * PAGE, 0)
    os.pwrite(fd, b"y" * PAGE, SEEK_GAP)
    os.fsync(fd)
    size = SEEK_GAP + PAGE
    want(os.fstat(fd).st_size == size, "size %d" % os.fstat(fd).st_size)
    want(os.lseek(fd, 0, os.SEEK_DATA) == 0, "SEEK_DATA 0")
    hole = os.lseek(fd, 0, os.SEEK_HOLE)
    # The kernel's fallback without FUSE_LSEEK says "no hole before EOF".
    want(PAGE <= hole < SEEK_GAP, "SEEK_HOLE from 0 is %d, want a hole in [4096, 1MiB)" % hole)
    data = os.lseek(fd, hole, os.SEEK_DATA)
    want(hole < data <= SEEK_GAP, "SEEK_DATA from %d is %d, want (hole, 1MiB]" % (hole, data))
    want(os.lseek(fd, SEEK_GAP, os.SEEK_HOLE) == size, "SEEK_HOLE in the last extent")
    expect_errno((errno.ENXIO,), os.lseek, fd, size, os.SEEK_DATA)
    expect_errno((errno.ENXIO,), os.lseek, fd, size + 1, os.SEEK_HOLE)
    os.close(fd)


# --------------------------------------------------------------------------
# Locks between two processes of the guest

def _child(fn):
    """Run fn in a child; returns (pid, read end of its report pipe)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            msg = fn(w) or "ok"
        except BaseException as e:  # report everything to the parent
            msg = "child: %r" % (e,)
        os.write(w, msg.encode() + b"\n")
        os._exit(0)
    os.close(w)
    return pid, r


def _report(pid, r):
    msg = b""
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        msg += b
    os.close(r)
    os.waitpid(pid, 0)
    return msg.decode().strip().splitlines()[-1] if msg else "child: no report"


def _lock_checks(path, lock, unlock, exclusive, shared, nonblock, conflict_errnos):
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    os.ftruncate(fd, 100)
    lock(fd, exclusive)

    def contender(w):
        cfd = os.open(path, os.O_RDWR)
        try:
            lock(cfd, exclusive | nonblock)
        except OSError as e:
            if e.errno not in conflict_errnos:
                return "child: conflicting lock failed with %s" % errno.errorcode[e.errno]
        else:
            return "child: got an exclusive lock the parent holds"
        os.write(w, b"waiting\n")
        t = time.monotonic()
        lock(cfd, exclusive)  # blocks until the parent lets go
        waited = time.monotonic() - t
        unlock(cfd)
        os.close(cfd)
        return "ok" if waited >= 0.5 else "child: blocking lock returned after %.2fs" % waited

    pid, r = _child(contender)
    line = os.read(r, 8)
    if not line.startswith(b"waiting"):
        raise CheckFailed("contender: %s" % (line + os.read(r, 4096)).decode())
    time.sleep(1.0)
    unlock(fd)
    res = _report(pid, r)
    want(res == "ok", res)

    # Shared locks coexist.
    lock(fd, shared)

    def reader(w):
        cfd = os.open(path, os.O_RDONLY if shared == fcntl.LOCK_SH else os.O_RDWR)
        lock(cfd, shared | nonblock)
        unlock(cfd)
        return "ok"
    pid, r = _child(reader)
    res = _report(pid, r)
    want(res == "ok", "shared lock: " + res)
    unlock(fd)
    os.close(fd)


def check_posixlock(d):
    p = os.path.join(d, "posix")
    _lock_checks(p, lambda fd, op: fcntl.lockf(fd, op, 10, 0),
                 lambda fd: fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0),
                 fcntl.LOCK_EX, fcntl.LOCK_SH, fcntl.LOCK_NB, (errno.EAGAIN, errno.EACCES))
    # Byte ranges: a lock on 0..9 does not cover 10..19.
    fd = os.open(p, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)

    def other_range(w):
        cfd = os.open(p, os.O_RDWR)
        fcntl.lockf(cfd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 10)
        try:
            fcntl.lockf(cfd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 9)
        except OSError:
            return "ok"
        return "child: byte 9 lockable while the parent holds 0..9"
    pid, r = _child(other_range)
    res = _report(pid, r)
    want(res == "ok", "ranges: " + res)
    os.close(fd)


def check_flock(d):
    _lock_checks(os.path.join(d, "flock"), fcntl.flock,
                 lambda fd: fcntl.flock(fd, fcntl.LOCK_UN),
                 fcntl.LOCK_EX, fcntl.LOCK_SH, fcntl.LOCK_NB, (errno.EWOULDBLOCK,))


def hold(kind, path):
    """Hold a lock while the host looks at the file; fd 3 is the console."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    os.ftruncate(fd, 100)
    if kind == "posix":
        fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)
    else:
        fcntl.flock(fd, fcntl.LOCK_EX)
    for state in ("held", "released"):
        if state == "released":
            if kind == "posix":
                fcntl.lockf(fd, fcntl.LOCK_UN, 0, 0)
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
        os.write(3, ("BH-HOLD %s %s\n" % (kind, state)).encode())
        line = sys.stdin.readline()
        want("BH-GO" in line, "host answered %r" % line)
    os.close(fd)


def host_lock_conflict(path):
    """Host side: which host lock calls conflict with the guest's lock."""
    seen = []
    fd = os.open(path, os.O_RDWR)
    try:
        for name, op, un in (
                ("fcntl", lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0),
                 lambda: fcntl.lockf(fd, fcntl.LOCK_UN, 0, 0)),
                ("flock", lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB),
                 lambda: fcntl.flock(fd, fcntl.LOCK_UN))):
            try:
                op()
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EACCES):
                    seen.append(name)
                    continue
                raise
            un()
    finally:
        os.close(fd)
    return seen


# --------------------------------------------------------------------------
# mmap writes

def mmap_expected():
    out = bytearray(MMAP_SIZE)
    for i in range(0, MMAP_SIZE // PAGE, 3):
        tag = b"mmap-page-%05d|" % i
        out[i * PAGE:(i + 1) * PAGE] = (tag * (PAGE // len(tag) + 1))[:PAGE]
    return bytes(out)


def check_mmap(d):
    import mmap
    p = os.path.join(d, "mapped")
    want_data = mmap_expected()
    fd = os.open(p, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    os.ftruncate(fd, MMAP_SIZE)
    m = mmap.mmap(fd, MMAP_SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    for i in range(0, MMAP_SIZE // PAGE, 3):
        m[i * PAGE:(i + 1) * PAGE] = want_data[i * PAGE:(i + 1) * PAGE]
    m.flush()  # msync(MS_SYNC)
    m.close()
    os.close(fd)
    want(read_file(p) == want_data, "read() after msync differs from what was mapped")
    # Read it again from the device, not from this guest's page cache.
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    want(read_file(p) == want_data, "content after drop_caches differs")


def expect_mmap(d):
    want(read_file(os.path.join(d, "mapped")) == mmap_expected(), "host content differs")


# --------------------------------------------------------------------------
# A non-root guest user (run under setpriv as 1000:1000)

NONROOT_DATA = b"written by uid 1000\n"


def check_nonroot(d):
    want(os.getuid() == 1000 and os.getgid() == 1000, "not running as 1000:1000")
    write_file(os.path.join(d, "users", "u1000.txt"), NONROOT_DATA)
    os.mkdir(os.path.join(d, "users", "u1000.dir"))
    write_file(os.path.join(d, "users", "u1000.dir", "inner"), NONROOT_DATA)
    os.symlink("u1000.txt", os.path.join(d, "users", "u1000.link"))
    expect_errno((errno.EACCES,), read_file, os.path.join(d, "secret"))
    expect_errno((errno.EACCES,), write_file, os.path.join(d, "secret"), b"x")
    # Root's file in the sticky directory cannot be removed by another user.
    expect_errno((errno.EPERM, errno.EACCES), os.unlink, os.path.join(d, "users", "rootfile"))
    expect_errno((errno.EPERM,), os.chown, os.path.join(d, "users", "u1000.txt"), 0, 0)


def expect_nonroot(d):
    u = os.path.join(d, "users")
    for name in ("u1000.txt", "u1000.dir", "u1000.dir/inner", "u1000.link"):
        st = os.lstat(os.path.join(u, name))
        want((st.st_uid, st.st_gid) == (1000, 1000),
             "%s is owned by %d:%d on the host" % (name, st.st_uid, st.st_gid))
    want(read_file(os.path.join(u, "u1000.txt")) == NONROOT_DATA, "u1000.txt content")
    want(read_file(os.path.join(d, "secret")) == b"secret\n", "secret was changed")
    want(os.path.exists(os.path.join(u, "rootfile")), "root's file was removed")


CHECKS = {
    "renameat2": check_renameat2,
    "tmpfile": check_tmpfile,
    "seek": check_seek,
    "posixlock": check_posixlock,
    "flock": check_flock,
    "mmap": check_mmap,
    "nonroot": check_nonroot,
}


def main(argv):
    if len(argv) == 5 and argv[1] == "gentree":
        gentree(argv[2], int(argv[3]), int(argv[4]))
        return 0
    if len(argv) == 4 and argv[1] == "hold":
        hold(argv[2], argv[3])
        return 0
    if len(argv) != 3 or argv[1] not in CHECKS:
        print(__doc__, file=sys.stderr)
        return 2
    return run_check(CHECKS[argv[1]], argv[2])


def run_check(check, d):
    """Run one check on d and print how it went on the last line (its
    detail, or "ok"): the line the guest script reports. The exit status."""
    try:
        detail = check(d)
    except CheckFailed as e:
        print("FAIL: %s" % e)
        return 1
    except OSError as e:
        print("FAIL: unexpected %s: %s" % (errno.errorcode.get(e.errno, e.errno), e))
        return 1
    print(detail or "ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
