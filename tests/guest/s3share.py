#!/usr/bin/python3
"""s3share.py: the workloads guest on a share of an S3 bucket.

Host-side test driver, runs as root. It starts a one-node Ceph cluster
(tests/s3/ceph-cluster.sh), makes a bucket and seeds it with boto3, an
independent client: an object the guest will change in place, a directory of
5,000 objects and two keys outside the share. bulkheadd serves the bucket's
vm1/ (a configuration file and a credentials file of this run's, debug log)
to the workloads guest (workloads.py: the host's / as the guest's root), which
runs workloads-guest.sh s3: files and directories made, a 200 MiB file written
in order and read back, a write into the seeded object, an empty directory, a
file and a directory renamed, the 5,000 entries listed, a file and a directory
deleted, sync and umount (s3_checks.py holds what each makes and expects).

Once the guest has powered off, boto3 checks each change in the bucket, and
after umount the whole bucket: exactly the expected keys, their bytes, the
200 MiB object's sha256 against the one the guest computed, and no multipart
upload left open. bulkheadd must exit 0 on SIGTERM with no worker trouble in
its log (kept in the work directory); the cluster is stopped whatever happens.
The exit status is non-zero if any check fails.

Environment: BH_BUILDDIR, BH_GUEST_WORKDIR, BH_GUEST_TIMEOUT (seconds for the
whole run).
"""

import concurrent.futures
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep the source tree clean
import workloads as wl  # noqa: E402  (after the path is set)
from s3_checks import (  # noqa: E402
    BIG, BIG_SIZE, EMPTY_DIR, EXISTING, EXISTING_SIZE, KEPT_MODE, MANY, OUTSIDE, PATCH,
    PATCH_OFF, PREFIX, REMOVED_DIR, RENAMES, UNLINKED, expect_same, final_keys,
    first_difference, many_body, many_names, pattern)
from wl_checks import want  # noqa: E402

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
    S3_ERRORS = (BotoCoreError, ClientError)
except ImportError:
    boto3 = None  # main() says so

gt = wl.gt
CLUSTER = os.path.join(HERE, "..", "s3", "ceph-cluster.sh")
BUCKET = "bulkhead-guest"
PART_SIZE = 8 << 20
SEED_THREADS = 32
S3_CHECKS = ["mount", "s3-create", "s3-big", "s3-pwrite", "s3-mkdir", "s3-rename", "s3-list",
             "s3-delete", "s3-tree", "umount"]
# Seconds the host waits for these: 200 MiB through a TCG guest, and the
# checks that list the 5,000 entries.
SLOW_CHECKS = {"s3-big": 600, "s3-list": 300, "s3-tree": 300}


def log(msg):
    print("s3share: " + msg, flush=True)


def s3_client(env):
    return boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], region_name="us-east-1",
                        aws_access_key_id=env["S3_ACCESS_KEY"],
                        aws_secret_access_key=env["S3_SECRET_KEY"],
                        config=Config(s3={"addressing_style": "path"},
                                      max_pool_connections=SEED_THREADS,
                                      retries={"max_attempts": 5, "mode": "standard"}))


class S3Workloads(wl.Workloads):
    check_names = S3_CHECKS
    guest_files = wl.Workloads.guest_files + ["s3_checks.py"]
    slow_checks = SLOW_CHECKS

    def __init__(self, args):
        super().__init__(args)
        self.cluster = None
        self.s3 = None
        self.keys = None

    # ---------------------------------------------------------------- setup
    def setup(self):
        super().setup()
        self.cluster = tempfile.mkdtemp(prefix="bh-s3share-ceph.")
        t = time.monotonic()
        subprocess.run(["sh", CLUSTER, "start", self.cluster], check=True)
        env = {}
        with open(os.path.join(self.cluster, "env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                env[k] = v
        log("cluster up in %.1fs" % (time.monotonic() - t))
        self.s3 = s3_client(env)
        t = time.monotonic()
        self.seed_bucket()
        log("bucket %s seeded in %.1fs: %s (%d MiB), %s/ (%d objects), %s"
            % (BUCKET, time.monotonic() - t, PREFIX + EXISTING, EXISTING_SIZE >> 20,
               PREFIX + MANY, len(many_names()), ", ".join(OUTSIDE)))

        creds = os.path.join(self.work, "s3.credentials")
        fd = os.open(creds, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                    % (env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"]))
        self.conf = os.path.join(self.work, "bulkhead.conf")
        with open(self.conf, "w") as f:
            f.write("[share]\nbackend = s3\n\n[s3]\nendpoint = %s\nbucket = %s\nprefix = %s\n"
                    "region = us-east-1\naddressing = path\ncredentials_file = %s\n"
                    "part_size = %dM\n" % (env["S3_ENDPOINT"], BUCKET, PREFIX, creds,
                                           PART_SIZE >> 20))

    def seed_bucket(self):
        def put(kv):
            self.s3.put_object(Bucket=BUCKET, Key=kv[0], Body=kv[1])
        objects = [(PREFIX + EXISTING, b"".join(pattern("existing")))]
        objects += [("%s%s/%s" % (PREFIX, MANY, n), many_body(n)) for n in many_names()]
        objects += list(OUTSIDE.items())
        try:
            self.s3.create_bucket(Bucket=BUCKET)
            with concurrent.futures.ThreadPoolExecutor(SEED_THREADS) as pool:
                list(pool.map(put, objects))
        except S3_ERRORS as e:
            raise gt.TestFailure("seeding bucket %s: %s" % (BUCKET, e))

    def daemon_command(self):
        return [os.path.join(self.args.builddir, "daemon", "bulkheadd"),
                "--socket-path=" + self.sock, "--config=" + self.conf, "--log-level=debug"]

    def cleanup(self):
        super().cleanup()
        if self.cluster is None:
            return
        # The gateway's log outlives the cluster, next to the daemon's.
        kept = os.path.join(self.work, "ceph-log")
        try:
            shutil.rmtree(kept, ignore_errors=True)
            if os.path.isdir(os.path.join(self.cluster, "log")):
                shutil.copytree(os.path.join(self.cluster, "log"), kept)
        finally:
            subprocess.run(["sh", CLUSTER, "stop", self.cluster])
            self.cluster = None

    # ------------------------------------------------------ host-side checks
    def host_check(self, c):
        try:
            super().host_check(c)
        except S3_ERRORS as e:
            c.host, c.host_ok = "FAIL: %s" % e, False

    def bucket_keys(self):
        """Every key of the bucket -> (size, ETag), listed once the guest is
        done."""
        if self.keys is None:
            self.keys = {}
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
                for o in page.get("Contents", []):
                    self.keys[o["Key"]] = (o["Size"], o["ETag"].strip('"'))
        return self.keys

    def get(self, key):
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def host_s3_create(self, s, c):
        mode = self.s3.head_object(Bucket=BUCKET, Key=PREFIX + "kept.txt")["Metadata"].get("mode")
        want(mode == str(stat.S_IFREG | KEPT_MODE),
             "kept.txt's x-amz-meta-mode is %s, want %d" % (mode, stat.S_IFREG | KEPT_MODE))
        return "kept.txt's x-amz-meta-mode %s" % mode

    def host_s3_big(self, s, c):
        key = PREFIX + BIG
        want(key in self.bucket_keys(), "no %s in the bucket" % key)
        data = self.get(key)
        sha = hashlib.sha256(data).hexdigest()
        if "sha256=" + sha not in c.detail:
            # Where the object leaves the pattern, if it does.
            expect_same(data, b"".join(pattern("big")), "%s (sha256 %s, not the guest's)"
                        % (key, sha))
            want(False, "%s holds the pattern, the guest said otherwise: [%s]" % (key, c.detail))
        etag = self.bucket_keys()[key][1]
        parts = -(-BIG_SIZE // PART_SIZE)
        want(etag.endswith("-%d" % parts),
             "ETag %s is not that of a multipart upload of %d parts" % (etag, parts))
        return "sha256 as the guest's, a multipart upload of %d parts" % parts

    def host_s3_pwrite(self, s, c):
        data = self.get(PREFIX + EXISTING)
        want(len(data) == EXISTING_SIZE, "%s is %d bytes, want %d"
             % (EXISTING, len(data), EXISTING_SIZE))
        want(data[PATCH_OFF:PATCH_OFF + len(PATCH)] == PATCH,
             "%s: the %d bytes written at %d are not there (found at %d)"
             % (EXISTING, len(PATCH), PATCH_OFF, data.find(PATCH)))
        expect_same(data, b"".join(pattern("existing-patched")),
                    EXISTING + ": bytes beside the write changed")
        return "%d bytes at %d, the rest as seeded" % (len(PATCH), PATCH_OFF)

    def host_s3_mkdir(self, s, c):
        marker = PREFIX + EMPTY_DIR + "/"
        want(self.bucket_keys().get(marker, (None,))[0] == 0,
             "no empty marker %s: %s" % (marker, self.bucket_keys().get(marker)))
        return "marker %s" % marker

    def host_s3_rename(self, s, c):
        keys = self.bucket_keys()
        expected = final_keys()
        for old, new in RENAMES:
            left = [k for k in keys if k == PREFIX + old or k.startswith(PREFIX + old + "/")]
            want(not left, "keys under the old name left: %s" % left[:5])
            moved = [k for k in expected if k == PREFIX + new or k.startswith(PREFIX + new + "/")]
            want(all(k in keys for k in moved),
                 "missing under the new name: %s" % [k for k in moved if k not in keys][:5])
        return "old keys gone, new ones there (markers too)"

    def host_s3_list(self, s, c):
        keys = self.bucket_keys()
        for n in many_names():
            body = many_body(n)
            got = keys.get("%s%s/%s" % (PREFIX, MANY, n))
            want(got == (len(body), hashlib.md5(body).hexdigest()),
                 "%s/%s changed: (size, ETag) %s" % (MANY, n, got))
        return "%d objects untouched" % len(many_names())

    def host_s3_delete(self, s, c):
        for key in (PREFIX + UNLINKED, PREFIX + REMOVED_DIR + "/"):
            want(key not in self.bucket_keys(), "%s is still in the bucket" % key)
        return "%s and %s/ gone" % (UNLINKED, REMOVED_DIR)

    def host_umount(self, s, c):
        """All written: exactly the expected keys, each with its bytes (the
        patterned ones are s3-big's and s3-pwrite's), nothing half-uploaded.
        Every difference is named, not only the first."""
        keys = self.bucket_keys()
        expected = final_keys()
        wrong = []
        missing = sorted(set(expected) - set(keys))
        extra = sorted(set(keys) - set(expected))
        if missing or extra:
            wrong.append("the bucket's keys differ: %d missing %s, %d unexpected %s"
                         % (len(missing), missing[:8], len(extra), extra[:8]))
        for key, body in expected.items():
            if key in keys and body is not None and not key.startswith(PREFIX + MANY + "/"):
                got = self.get(key)
                if got != body:
                    wrong.append("%s holds other bytes (%s)" % (key, first_difference(got, body)))
        uploads = self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        if uploads:
            wrong.append("multipart uploads left open: %s" % [u["Key"] for u in uploads])
        want(not wrong, "; ".join(wrong))
        return "exactly the %d expected keys, their bytes, no upload open" % len(expected)

def main():
    args = wl.bulkheadd_driver(__doc__, 1200, "s3share", "s3-work", "s3")
    if args is None:
        return 1
    if boto3 is None:
        print("s3share: FAIL: no boto3 (python3-boto3; contrib/install-deps.sh)", file=sys.stderr)
        return 1
    return wl.run_suite(S3Workloads(args), [("s3", 1, S3_CHECKS)])


if __name__ == "__main__":
    sys.exit(main())
