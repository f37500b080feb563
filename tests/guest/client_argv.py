#!/usr/bin/python3
"""client_argv.py: how the real clients start a virtio-fs daemon, as data.

Host-side test data and helpers for libvirt.py (a real libvirtd starts
bulkheadd) and replay.py (the command lines of clients not installed here,
replayed). ARGV holds, for each client, the arguments it passes to the
daemon binary, as read in that client's source; each entry names where it
comes from (project, file, function). The words are templates: {fd} the
inherited listening socket's descriptor, {dir} the shared directory,
{dir_escaped} the same with each ',' doubled (libvirt's escape inside -o),
{socket} the socket path the daemon creates, {openfiles} <openfiles max=>.

The rest are the host-side observations both drivers make of a daemon a
client started: its command line, what its --fd descriptor is, its
descriptor limit, and what its log says.
"""

import os
import re

# The <binary> settings both libvirt tests use (libvirt.py's domain XML,
# replay.py's libvirt 10 row): <cache mode='always'/>, xattr='on',
# <thread_pool size='4'/>, <openfiles max='10000'/> (below the hard
# RLIMIT_NOFILE of 20,000 that CI machines have and cannot raise).
THREAD_POOL = 4
OPENFILES = 10000

ARGV = {
    # libvirt 9.0 (Debian 12's libvirt-daemon-driver-qemu): libvirt,
    # src/qemu/qemu_virtiofs.c, qemuVirtioFSBuildCommandLine. libvirt 9.0
    # never reads the binary's capabilities when <binary path=> is given,
    # so this is the legacy virtiofsd form whatever the binary prints: the
    # socket libvirt made, inherited, then one -o with the source (commas
    # doubled), cache=, xattr, flock, posix_lock (from <lock posix='on'
    # flock='on'/>), then the thread pool; "-d" after it only with
    # virtiofsd_debug = 1 in qemu.conf. libvirt 9.0 has no <openfiles>: it
    # ignores the element, and passes no --rlimit-nofile.
    "libvirt9": ["--fd={fd}", "-o", "source={dir_escaped},cache=always,xattr,flock,posix_lock",
                 "--thread-pool-size=%d" % THREAD_POOL],
    # libvirt 10.x: the same file and function, when the binary's
    # --print-capabilities lists "separate-options" (ours does), for the
    # same XML without <lock>: with separate options libvirt refuses any
    # <lock posix=|flock=> ("locking options are not supported by this
    # virtiofsd") and does not start the domain. <cache mode='always'/>
    # gives "--cache always" (two words; mode='none' gives "--cache
    # never"), <openfiles max='N'/> "--rlimit-nofile=N"; --log-level debug
    # with virtiofsd_debug. qemuVirtioFSStart passes the socket it made as
    # {fd}, like libvirt 9.
    "libvirt10": ["--fd={fd}", "--shared-dir", "{dir}", "--cache", "always", "--xattr",
                  "--thread-pool-size=%d" % THREAD_POOL, "--rlimit-nofile={openfiles}"],
    # libvirt 10.x session mode (qemu:///session, an unprivileged
    # libvirtd): the libvirt10 words, then qemuVirtioFSPrepareIdMap's maps
    # (same file) as one option per map entry: the caller's own uid as 0,
    # then its /etc/subuid range from 1; the same for gids. Not replayed:
    # bulkheadd's --uid-map/--gid-map are being reworked elsewhere.
    "libvirt10-session": ["--fd={fd}", "--shared-dir", "{dir}", "--cache", "always", "--xattr",
                          "--thread-pool-size=%d" % THREAD_POOL, "--rlimit-nofile={openfiles}",
                          "--uid-map=:0:{uid}:1:", "--uid-map=:1:{subuid}:{subuid_count}:",
                          "--gid-map=:0:{gid}:1:", "--gid-map=:1:{subgid}:{subgid_count}:"],
    # Kata Containers' Go runtime: kata-containers,
    # src/runtime/virtcontainers/virtiofsd.go, virtiofsd.args (called from
    # virtiofsd.Start): the runtime makes the listening socket and passes it
    # as the first of cmd.ExtraFiles, descriptor 3; the stock
    # virtio_fs_extra_args of src/runtime/Makefile (DEFVIRTIOFSEXTRAARGS)
    # follow; qemu.go, createVirtiofsDaemon, appends --xattr only when the
    # guest's SELinux is on (disable_guest_selinux = true by default). The
    # daemon's standard error goes nowhere; it logs to syslog. Stop:
    # SIGKILL (virtiofsd.kill).
    "kata-go": ["--syslog", "--cache=auto", "--shared-dir={dir}", "--fd=3",
                "--thread-pool-size=1", "--announce-submounts"],
    # Kata Containers' Rust runtime: kata-containers,
    # src/runtime-rs/crates/resource/src/share_fs/share_virtio_fs_standalone.rs,
    # ShareVirtioFsStandalone::virtiofsd_args (from setup_virtiofsd): the
    # daemon makes the socket; the stock virtio_fs_extra_args of
    # src/runtime-rs/Makefile follow (its cache default is "auto"). The
    # runtime pipes standard error and starts the VM once a line there
    # contains "Waiting for vhost-user socket connection" (run_virtiofsd).
    # Stop: SIGKILL (shutdown_virtiofsd).
    "kata-rust": ["--socket-path", "{socket}", "--shared-dir", "{dir}", "--cache", "auto",
                  "--thread-pool-size=1", "-o", "announce_submounts"],
    # The same function in rootless mode: the socket named relative to the
    # working directory, which the runtime sets to the socket's directory
    # (VIRTIO_FS_SOCKET is "virtiofsd.sock"). replay.py runs it as root:
    # only the relative socket and the working directory are replayed.
    "kata-rust-rootless": ["--socket-path", "virtiofsd.sock", "--shared-dir", "{dir}",
                           "--cache", "auto", "--thread-pool-size=1", "-o",
                           "announce_submounts"],
}

# What Kata's Rust runtime waits for on the daemon's standard error.
KATA_READY = "Waiting for vhost-user socket connection"


def argv(name, **values):
    """ARGV[name] with its placeholders filled from values (each str())."""
    def fill(word):
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), word)
    return [fill(w) for w in ARGV[name]]


def libvirt_escape(path):
    """A path as libvirt writes it inside -o: each ',' doubled."""
    return path.replace(",", ",,")


def cmdline(pid):
    """The arguments of process pid, as /proc/PID/cmdline has them."""
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return [a.decode("utf-8", "replace") for a in f.read().split(b"\0")[:-1]]


def alive(pid):
    """Does pid still run (a zombie has ended)?"""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children(pid):
    """The pids whose parent is pid (a daemon's workers)."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return kids


def unix_sockets():
    """The host's UNIX sockets: inode -> (listens for streams, bound path)."""
    socks = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            w = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]
            if len(w) >= 7:
                socks[w[6]] = (int(w[3], 16) & 0x10000 != 0 and int(w[4], 16) == 1,
                               w[7] if len(w) > 7 else "")
    return socks


def listening_unix_socket(pid, fd):
    """What descriptor fd of process pid is: the path of a listening UNIX
    stream socket, or None with why in a second value."""
    try:
        target = os.readlink("/proc/%d/fd/%d" % (pid, fd))
    except OSError as e:
        return None, "descriptor %d of %d: %s" % (fd, pid, e.strerror)
    m = re.fullmatch(r"socket:\[(\d+)\]", target)
    if not m:
        return None, "descriptor %d of %d is %s, not a socket" % (fd, pid, target)
    listens, path = unix_sockets().get(m.group(1), (None, None))
    if listens is None:
        return None, "descriptor %d of %d is not a UNIX socket" % (fd, pid)
    if not listens:
        return None, "descriptor %d of %d is a UNIX socket that does not listen" % (fd, pid)
    return path, None


def listening_paths(pid):
    """The paths (as bound) of the listening UNIX sockets process pid holds."""
    socks = unix_sockets()
    paths = []
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return paths
    for fd in fds:
        try:
            m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            continue
        if m and socks.get(m.group(1), (False,))[0]:
            paths.append(socks[m.group(1)][1])
    return paths


def nofile_limit(pid):
    """Process pid's soft RLIMIT_NOFILE."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


# Words of a bulkheadd log line that something went wrong (its warnings
# and errors say so in words; the level is not printed on standard error).
# Not "kill" alone: the start-up line names the seccomp action "kill".
LOG_TROUBLE = re.compile(r"error|fail|cannot|refus|denied|would deny|killed|killing|forbidden|"
                         r"WARNING|invalid|unexpected|too many|not supported", re.IGNORECASE)


def log_trouble(text):
    """The lines of a bulkheadd log that report trouble."""
    return [ln for ln in text.splitlines() if LOG_TROUBLE.search(ln)]
