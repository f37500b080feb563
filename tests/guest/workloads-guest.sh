#!/bin/sh
# workloads-guest.sh: the guest half of the workloads suite. Runs as root in
# the throwaway guest, chrooted into the host's / (hostroot.sh), from the copy
# in the guest's own /run/bh that came in the initramfs (the host's checkout
# may live under /tmp or /root, which the guest covers with tmpfs), and runs
# real programs on the virtio-fs share mounted at /mnt/share. Every check prints
# exactly one "BH-CHECK <name> ok|fail|unsupported <seconds> [detail]" line;
# the host (workloads.py) adds what it can verify from its side and decides.
# It trusts nothing it reads from the share: it only reports.
#
# usage: workloads-guest.sh main|mq|s3   (s3: the share is a bucket, s3share.py)
#        workloads-guest.sh quick TAG...  (a mount, write, read and list on each
#                                          tag's share, clients.py)
#
# $WL and $FIO_ARGS are word lists on purpose; no path here holds a space.
# shellcheck disable=SC2086,SC2012
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
WL="$PY $HERE/wl_checks.py"
S3="$PY $HERE/s3_checks.py"
S=/mnt/share
TAG=testfs
LIMIT=600	# seconds per check; the host has its own limit too
TREE_SEED=4242

now() {
	cut -d' ' -f1 /proc/uptime
}

# elapsed T0: seconds since T0 (a now), one decimal.
elapsed() {
	awk "BEGIN { printf \"%.1f\", $(now) - $1 }"
}

# check NAME FUNCTION: runs FUNCTION with output in /tmp/NAME.log; the last
# lines of a failing check's log go to the console. fd 3 stays the console
# (for the host-lock checks, whose stdin is the console too).
check() {
	name=$1
	shift
	echo "BH-START $name"
	t0=$(now)
	# A subshell, so a check's cd and exports do not leak into the next.
	("$@") 3>&1 >"/tmp/$name.log" 2>&1
	rc=$?
	t=$(elapsed "$t0")
	detail=$(tail -n 1 "/tmp/$name.log" | tr -cd '[:print:]' | cut -c1-200)
	case $rc in
	0) echo "BH-CHECK $name ok $t $detail" ;;
	3) echo "BH-CHECK $name unsupported $t $detail" ;;
	*)
		tail -n 15 "/tmp/$name.log" | sed "s/^/BH-LOG $name: /"
		echo "BH-CHECK $name fail $t rc=$rc $detail"
		;;
	esac
}

# Run a command with the per-check limit, stdin from /dev/null.
run() {
	timeout -k 10 $LIMIT "$@" </dev/null
}

c_mount() {
	mount -t virtiofs $TAG $S && grep " $S virtiofs " /proc/mounts
}

# c_pycheck CHECK [DIR]: a wl_checks.py check in $S/DIR (default: CHECK).
c_pycheck() {
	mkdir -p "$S/${2:-$1}" && run $WL "$1" "$S/${2:-$1}"
}

c_nonroot() {
	# The host made $S/users (1777, with root's rootfile) and $S/secret (0600).
	run setpriv --reuid=1000 --regid=1000 --clear-groups $WL nonroot $S
}

c_sqlite() {
	mode=$1
	db=$S/sqlite/$mode.db
	mkdir -p $S/sqlite || return 1
	# 200 committed transactions of 50 rows, every tenth deleting an earlier
	# one's rows, one rolled back: 9000 rows must remain.
	awk -v mode="$mode" 'BEGIN {
		print "PRAGMA journal_mode=" mode ";"
		print "PRAGMA synchronous=FULL;"
		print "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);"
		print "CREATE INDEX t_k ON t(k);"
		for (i = 0; i < 200; i++) {
			print "BEGIN;"
			print "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50) " \
			    "INSERT INTO t(k, v) SELECT " i ", hex(randomblob(100)) FROM c;"
			if (i % 10 == 9)
				print "DELETE FROM t WHERE k = " i - 5 ";"
			print "COMMIT;"
		}
		print "BEGIN; INSERT INTO t(k, v) SELECT k + 1000, v FROM t; ROLLBACK;"
		print "UPDATE t SET v = upper(v) WHERE k % 7 = 0;"
		print "SELECT count(*) FROM t;"
		print "PRAGMA integrity_check;"
	}' >/tmp/sqlite-$mode.sql
	out=$(timeout -k 10 $LIMIT sqlite3 -batch "$db" </tmp/sqlite-$mode.sql) || return 1
	echo "$out"
	[ "$(echo "$out" | tail -n 2 | tr '\n' ' ')" = "9000 ok " ] || {
		echo "want '9000 ok' at the end"
		return 1
	}
	# A second connection after the first has gone: the file alone is the truth.
	echo 3 >/proc/sys/vm/drop_caches
	out=$(run sqlite3 -batch "$db" "PRAGMA integrity_check; SELECT count(*) FROM t;" | tr '\n' ' ')
	[ "$out" = "ok 9000 " ] || {
		echo "reopened: $out"
		return 1
	}
	echo "rows=9000 integrity=ok"
}

FIO_ARGS="--name=bh --filename=$S/fio/data --size=64M --bs=64k --rw=randwrite \
--ioengine=psync --verify=crc32c --verify_fatal=1 --randrepeat=1 --end_fsync=1"

c_fio() {
	mkdir -p $S/fio || return 1
	run fio $FIO_ARGS --do_verify=1 || return 1
	echo 3 >/proc/sys/vm/drop_caches
	# Verify again from the device, not from the page cache.
	run fio $FIO_ARGS --verify_only || return 1
	echo "64MiB written and verified twice"
}

c_tar() {
	rm -rf /tmp/src /tmp/back
	run $WL gentree /tmp/src 5000 $TREE_SEED || return 1
	mkdir -p $S/tar/x /tmp/back || return 1
	run tar -C /tmp/src -cf $S/tar/src.tar . || return 1
	run tar -C $S/tar/x -xf $S/tar/src.tar || return 1
	run diff -r /tmp/src $S/tar/x || return 1
	# And back out: archive the share's copy, extract it on tmpfs.
	run sh -c "tar -C $S/tar/x -cf - . | tar -C /tmp/back -xf -" || return 1
	run diff -r /tmp/src /tmp/back || return 1
	n=$(find $S/tar/x -type f | wc -l)
	[ "$n" -ge 5000 ] || {
		echo "only $n files"
		return 1
	}
	rm -rf /tmp/src /tmp/back
	echo "files=$n"
}

c_git() {
	g=$S/git
	export GIT_AUTHOR_NAME=bh GIT_AUTHOR_EMAIL=bh@localhost
	export GIT_COMMITTER_NAME=bh GIT_COMMITTER_EMAIL=bh@localhost
	run $WL gentree $g 2200 $TREE_SEED || return 1
	cd $g || return 1
	run git init -q . || return 1
	run git add -A || return 1
	run git commit -q -m "2200 files" || return 1
	# A second commit that renames, deletes and edits.
	run git mv d000 moved || return 1
	run git rm -q -r d001 || return 1
	echo edit >>d002/s2/f00200.txt
	run git commit -q -a -m "rename, delete, edit" || return 1
	run git gc -q --prune=now || return 1
	run git fsck --full --strict || return 1
	[ -z "$(run git status --porcelain)" ] || {
		echo "status not clean"
		return 1
	}
	n=$(run git ls-files | wc -l)
	cd / || return 1
	echo "head=$(git -C $g rev-parse HEAD) files=$n"
}

c_hold() {
	mkdir -p $S/locks || return 1
	# Not under run(): stdin is the console, where the host answers.
	timeout -k 10 $LIMIT $WL hold "$1" "$S/locks/hold-$1"
}

c_umount() {
	umount $S && ! grep -q " $S " /proc/mounts
}

c_mq() {
	c_mount || return 1
	head -c 8M /dev/urandom >/tmp/mq.bin
	cp /tmp/mq.bin $S/mq.bin && sync || return 1
	mkdir -p $S/mq && i=0
	while [ $i -lt 200 ]; do
		echo $i >$S/mq/f$i || return 1
		i=$((i + 1))
	done
	echo 3 >/proc/sys/vm/drop_caches
	cmp /tmp/mq.bin $S/mq.bin || return 1
	[ "$(ls $S/mq | wc -l)" = 200 ] || return 1
	rm -r $S/mq || return 1
	c_umount || return 1
	echo "md5=$(md5sum </tmp/mq.bin | cut -d' ' -f1)"
}

# The tmpfile check again with two request queues, on a mount of its own.
c_mq_tmpfile() {
	c_mount || return 1
	c_pycheck tmpfile tmpfile-mq || return 1
	c_umount
}

# c_quick TAG: the device tagged TAG mounted as Kata's agent mounts its
# share (nodev), the host's file read, a file and a directory written, read
# back from the device after the caches are dropped, the listing, umount.
# The host checks what was written against the md5 printed last.
c_quick() {
	d=/mnt/$1
	mkdir -p "$d" && mount -t virtiofs -o nodev "$1" "$d" || return 1
	grep " $d virtiofs " /proc/mounts || return 1
	[ "$(cat "$d/from-host")" = "host $1" ] || {
		echo "from-host reads other bytes"
		return 1
	}
	head -c 1M /dev/urandom >"/tmp/$1.bin"
	cp "/tmp/$1.bin" "$d/from-guest.bin" && mkdir "$d/dir" &&
		echo "guest $1" >"$d/dir/note" && sync || return 1
	echo 3 >/proc/sys/vm/drop_caches
	cmp "/tmp/$1.bin" "$d/from-guest.bin" || return 1
	l=$(ls "$d" | tr '\n' ' ')
	[ "$l" = "dir from-guest.bin from-host " ] || {
		echo "ls: $l"
		return 1
	}
	umount "$d" && ! grep -q " $d " /proc/mounts || return 1
	echo "md5=$(md5sum <"/tmp/$1.bin" | cut -d' ' -f1)"
}

# The S3 share's checks: s3_checks.py has the table of what they make.
c_s3() {
	run $S3 "$1" $S
}

# 200 MiB written in order (a multipart upload), read back after the
# guest's caches are dropped; its sha256 goes to the host, which compares it
# with the object's.
c_s3_big() {
	t0=$(now)
	want=$(run $S3 pattern big | sha256sum | cut -d' ' -f1)
	echo "pattern hashed in $(elapsed "$t0")s"
	t0=$(now)
	run sh -c "$S3 pattern big | dd of=$S/big.bin bs=1M iflag=fullblock status=none" ||
		return 1
	w=$(elapsed "$t0")
	echo 3 >/proc/sys/vm/drop_caches
	t0=$(now)
	got=$(run sha256sum $S/big.bin | cut -d" " -f1)
	r=$(elapsed "$t0")
	[ "$got" = "$want" ] || {
		echo "read back sha256=$got, wrote sha256=$want"
		return 1
	}
	echo "sha256=$want write=${w}s read=${r}s"
}

# The directory of 5,000 objects the host seeded, listed with ls.
c_s3_list() {
	$S3 names >/tmp/many.want || return 1
	run ls $S/many >/tmp/many.got || return 1
	n=$(wc -l </tmp/many.got)
	cmp -s /tmp/many.want /tmp/many.got || {
		diff /tmp/many.want /tmp/many.got | head -n 10
		echo "ls many | wc -l: $n, want $(wc -l </tmp/many.want), or other names"
		return 1
	}
	[ "$(cat $S/many/f00000 $S/many/f04999)" = "$(printf 'many/f00000\nmany/f04999')" ] || {
		echo "many/f00000 or many/f04999 reads other bytes"
		return 1
	}
	echo "entries=$n"
}

# The whole share as a new mount sees it: names and sizes from the bucket.
c_s3_tree() {
	c_umount && c_mount >/dev/null && c_s3 tree
}

c_s3_umount() {
	sync && c_umount
}

case ${1:-main} in
main)
	check mount c_mount
	check nonroot c_nonroot
	check mmap c_pycheck mmap
	check seek c_pycheck seek
	check renameat2 c_pycheck renameat2
	check tmpfile c_pycheck tmpfile
	check sqlite-delete c_sqlite delete
	check sqlite-wal c_sqlite wal
	check tar c_tar
	check git c_git
	check fio c_fio
	# Locks last: a lock request the device never answers cannot be killed
	# in a 6.1 guest, so nothing after it would run.
	check posix-locks c_pycheck posixlock
	check flock c_pycheck flock
	check posix-lock-host c_hold posix
	check flock-host c_hold flock
	check umount c_umount
	;;
mq)
	check mq-start-stop c_mq
	check mq-tmpfile c_mq_tmpfile
	;;
quick)
	shift
	for tag in "$@"; do
		check "$tag" c_quick "$tag"
	done
	;;
s3)
	check mount c_mount
	check s3-create c_s3 create
	check s3-big c_s3_big
	check s3-pwrite c_s3 pwrite
	check s3-mkdir c_s3 mkdir
	check s3-rename c_s3 rename
	check s3-list c_s3_list
	check s3-delete c_s3 delete
	check s3-tree c_s3_tree
	check umount c_s3_umount
	;;
*)
	echo "BH-ERROR unknown mode $1"
	;;
esac
echo "BH-END"
