#!/bin/bash
# run-all.sh: the whole bulkhead test suite from a fresh clone on Debian 12, as
# root, from wherever the clone lives: dependencies, a check that every tool
# the suite needs is there, autoreconf, configure, build, `make check` (unit
# and front-end integration tests), `make check-guest` (a real Linux guest
# under QEMU), `make check-guest-s3` (a guest on a share of an S3 bucket of
# a Ceph cluster it starts), `make check-guest-systemd` (the installed
# systemd units under the host's systemd as PID 1 in a guest), then a copy of the source tree below /root
# reached through a symlink in /tmp (which the test user cannot enter, which
# the workloads guest covers with tmpfs, and whose build directory is a
# logical path), where test_unpriv and `make check-guest-workloads` (git,
# sqlite3, fio, tar and system-call checks in a guest, on a passthrough and
# on a memory share) run, then `make check-guest-libvirt` (a libvirtd of its
# own starts bulkheadd for a guest), `make check-guest-replay` (libvirt 10's
# and Kata's command lines replayed, with guests) and `make distcheck`. Prints
# how long each part took and ends with one line "N passed, N failed"
# counting test cases: every Criterion test case, every other test program,
# each workload check (the S3, libvirt and replay guests' too), the guest test
# and distcheck as one each; a part that was skipped is named on that line
# (", skipped: guest, distcheck").
# Exits non-zero if anything failed (the summary is printed regardless).
#
# Environment: BH_BUILDDIR=DIR (build out of tree instead of in the source
# tree); BH_SKIP_DEPS=1 (no apt-get), BH_SKIP_GUEST=1 (no guest test),
# BH_SKIP_DISTCHECK=1, all refused when CI is set: a CI run skips nothing.
# Everything the tests create goes to a private TMPDIR and the copy, both
# removed at the end; work files of the guest tests stay in the build tree.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BH_BUILDDIR:-$top}
passed=0
failed=0
timings=()
skipped=()
suite_start=$(date +%s)

summary() {
	local skips=""

	printf '\n==> timings\n'
	for t in "${timings[@]}"; do
		echo "    $t"
	done
	echo "    total                  $(($(date +%s) - suite_start))s"
	echo
	if [ ${#skipped[@]} -gt 0 ]; then
		skips=$(printf ', %s' "${skipped[@]}")
		skips=", skipped: ${skips#, }"
	fi
	echo "$passed passed, $failed failed$skips"
}

# set_to_skip VAR: is the switch VAR set (anything but empty or 0)?
set_to_skip() {
	case ${!1:-} in
	"" | 0) return 1 ;;
	*) return 0 ;;
	esac
}

# A CI run must mean the whole suite ran: a skip switch there is a failure.
case ${CI:-} in
"" | 0 | false) ;;
*)
	refused=
	for v in BH_SKIP_DEPS BH_SKIP_GUEST BH_SKIP_DISTCHECK; do
		set_to_skip $v && refused="$refused $v=${!v}"
	done
	if [ -n "$refused" ]; then
		echo "run-all: CI=$CI, and a CI run may not skip anything:$refused"
		failed=1
		summary
		exit 1
	fi
	;;
esac

# step NAME COMMAND...: run one part, record its time and status; $where,
# if set, says in which directory it ran.
where=
step() {
	local name=$1 t0 rc
	shift
	printf '\n==> %s: %s%s\n' "$name" "$*" "${where:+ (in $where)}"
	t0=$(date +%s)
	"$@"
	rc=$?
	local dt=$(($(date +%s) - t0))
	local verdict=ok
	[ $rc -eq 0 ] || verdict="FAILED (exit $rc)"
	timings+=("$(printf '%-22s %5ss  %s%s' "$name" "$dt" "$verdict" "${where:+  (in $where)}")")
	printf '==> %s: %s in %ss\n' "$name" "$verdict" "$dt"
	return $rc
}

# skip NAME VAR: a part left out on request, in the timings and the summary.
skip() {
	timings+=("$(printf '%-22s %6s  skipped (%s=%s)' "$1" - "$2" "${!2}")")
	printf '\n==> %s: skipped (%s=%s)\n' "$1" "$2" "${!2}"
}

# Count test cases from the automake logs of the last `make check` in $1:
# a Criterion program's "Synthesis" line gives its cases; any other program
# (or one that died before printing it) counts as one case from its .trs.
count_check() {
	local trs log res syn tested passing prog_failed
	while IFS= read -r -d '' trs; do
		log=${trs%.trs}.log
		res=$(sed -n 's/^:test-result: //p' "$trs" | head -n1)
		syn=$(sed 's/\x1b\[[0-9;]*m//g' "$log" 2>/dev/null | grep -a 'Synthesis: Tested:' | tail -n1)
		prog_failed=0
		case $res in PASS | XFAIL) ;; *) prog_failed=1 ;; esac
		if [ -n "$syn" ]; then
			tested=$(sed -n 's/.*Tested: *\([0-9]*\).*/\1/p' <<<"$syn")
			passing=$(sed -n 's/.*Passing: *\([0-9]*\).*/\1/p' <<<"$syn")
			passed=$((passed + passing))
			failed=$((failed + tested - passing))
			# A program that fails after all its cases passed (a leak check,
			# a crash at exit) still counts once.
			if [ $prog_failed = 1 ] && [ "$tested" = "$passing" ]; then
				failed=$((failed + 1))
			fi
		elif [ $prog_failed = 1 ]; then
			failed=$((failed + 1))
		else
			passed=$((passed + 1))
		fi
		printf '    %-40s %s%s\n' "${trs#"$1"/}" "$res" "${syn:+  (${syn##*Synthesis: })}"
	done < <(find "$1" -name '*.trs' -not -path '*/_build/*' -not -path '*/bulkhead-*/*' -print0 | sort -z)
}

# The programs `make check` in $1 should run (TESTS), one per word.
tests_listed() {
	printf 'bh-print-tests:\n\t@echo $(TESTS)\n' | make -s -C "$1" -f Makefile -f - bh-print-tests
}

# Every command the suite runs, with the Debian package that brings it: a
# missing one is a failure naming it, never a part that quietly does less.
check_tools() {
	local missing="" t pkg
	for t in gcc:build-essential make:build-essential autoreconf:autoconf \
		automake:automake pkg-config:pkg-config \
		qemu-system-x86_64:qemu-system-x86 /usr/lib/qemu/virtiofsd:qemu-system-common \
		busybox:busybox-static cpio:cpio modinfo:kmod xz:xz-utils zstd:zstd \
		python3:python3 git:git sqlite3:sqlite3 fio:fio tar:tar diff:diffutils \
		setpriv:util-linux useradd:passwd userdel:passwd md5sum:coreutils \
		ceph-mon:ceph-mon ceph-osd:ceph-osd radosgw:radosgw ceph:ceph-common openssl:openssl \
		systemd-socket-activate:systemd systemd-analyze:systemd \
		newuidmap:uidmap newgidmap:uidmap \
		libvirtd:libvirt-daemon virtlogd:libvirt-daemon virsh:libvirt-clients \
		unshare:util-linux; do
		pkg=${t##*:}
		t=${t%:*}
		command -v "$t" >/dev/null 2>&1 || missing="$missing $t ($pkg)"
	done
	pkg-config --exists criterion 2>/dev/null || missing="$missing Criterion (libcriterion-dev)"
	compgen -G '/usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so' >/dev/null ||
		missing="$missing libvirt's QEMU driver (libvirt-daemon-driver-qemu)"
	python3 -c 'import boto3' 2>/dev/null || missing="$missing boto3 for python3 (python3-boto3)"
	"$top/tests/guest/mkinitramfs.sh" --print-kernel >/dev/null 2>&1 ||
		missing="$missing a kernel in /boot with its modules (linux-image-amd64)"
	if [ -n "$missing" ]; then
		echo "run-all: missing:$missing" >&2
		return 1
	fi
	echo "run-all: every tool is there"
}

# anywhere_build REAL LINK: a copy of the source tree in REAL/src (make
# distdir, so it also proves the tarball holds what the guest tests need),
# configured and built through LINK, a symlink to REAL.
anywhere_build() (
	make -s distdir distdir="$1/src" >/dev/null &&
		cd "$2/src" && ./configure -q --enable-test-hooks &&
		make -j2 daemon/bulkheadd worker/bulkhead-worker
)

# logged LOG COMMAND...: run COMMAND, its output shown and kept in LOG.
logged() (
	log=$1
	shift
	"$@" 2>&1 | tee "$log"
	exit "${PIPESTATUS[0]}"
)

# run_workloads DIR LOG BACKEND: the workloads guest suite in DIR on a
# passthrough or memory share, its output in LOG.
run_workloads() {
	logged "$2" env BH_GUEST_BACKEND="$3" BH_GUEST_WORKDIR="$1/tests/guest/wl-work-$3" \
		make -C "$1" check-guest-workloads
}

# count_workloads STATUS LOG: a suite of workloads.py's kind (its exit
# status, its output) counts each of its checks as a case, from the summary
# line; one that failed without a failed check (it never got that far)
# counts one failure.
count_workloads() {
	local wl
	wl=$(grep -a '^workloads: .* checks, ' "$2" | tail -n1)
	if [ -n "$wl" ]; then
		passed=$((passed + $(sed -n 's/.* \([0-9]*\) passed,.*/\1/p' <<<"$wl")))
		failed=$((failed + $(sed -n 's/.* \([0-9]*\) failed,.*/\1/p' <<<"$wl")))
	fi
	if [ "$1" -ne 0 ] && ! grep -q ' [1-9][0-9]* failed,' <<<"$wl"; then
		failed=$((failed + 1))
	fi
}

cd "$top" || exit 1
if [ "$(id -u)" != 0 ]; then
	echo "run-all: run as root (dependencies, the unprivileged-user and guest tests)" >&2
fi

# Whatever the tests leave in TMPDIR, even after a crash, goes with it. Mode
# 0755: test_unpriv's user reaches its share and socket there.
suite_tmp=$(mktemp -d /tmp/bh-suite.XXXXXX) || exit 1
chmod 0755 "$suite_tmp"
export TMPDIR=$suite_tmp
anywhere=
cleanup() {
	# a test that died may have left a mount in its share
	awk -v p="$suite_tmp/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts |
		sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$suite_tmp"
	if [ -n "$anywhere" ]; then
		rm -rf "$anywhere"
		rm -f "/tmp/${anywhere##*/}"
	fi
}
trap cleanup EXIT

if set_to_skip BH_SKIP_DEPS; then
	skip deps BH_SKIP_DEPS
	skipped+=(deps)
else
	step deps ./contrib/install-deps.sh || failed=$((failed + 1))
fi
step tools check_tools || failed=$((failed + 1))

build_ok=1
step autoreconf autoreconf -fi || { failed=$((failed + 1)); build_ok=0; }
if [ $build_ok = 1 ]; then
	mkdir -p "$builddir"
	cd "$builddir" || exit 1
	step configure "$top/configure" -q --enable-test-hooks || { failed=$((failed + 1)); build_ok=0; }
fi
if [ $build_ok = 1 ]; then
	step build make -j2 || { failed=$((failed + 1)); build_ok=0; }
fi

if [ $build_ok = 1 ]; then
	before=$failed
	find "$builddir" -name '*.trs' -not -path '*/_build/*' -not -path '*/bulkhead-*/*' -delete
	step check make -j2 check VERBOSE=yes
	rc=$?
	echo "==> test programs:"
	count_check "$builddir"
	# `make check` failed but no test case did: a build or harness error.
	if [ $rc -ne 0 ] && [ $failed -eq $before ]; then
		failed=$((failed + 1))
	fi
	# Fewer results than programs listed: some never ran.
	nlisted=$(tests_listed "$builddir" | wc -w)
	nrun=$(find "$builddir" -name '*.trs' -not -path '*/_build/*' -not -path '*/bulkhead-*/*' | wc -l)
	if [ "$nlisted" -eq 0 ] || [ "$nrun" -ne "$nlisted" ]; then
		echo "run-all: make check ran $nrun of the $nlisted programs it lists" >&2
		failed=$((failed + 1))
	fi

	if set_to_skip BH_SKIP_GUEST; then
		skip check-guest BH_SKIP_GUEST
	elif step check-guest make check-guest; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi

	# The workloads guest on a share of an S3 bucket; each check counts.
	if set_to_skip BH_SKIP_GUEST; then
		skip check-guest-s3 BH_SKIP_GUEST
	else
		step check-guest-s3 logged "$suite_tmp/check-guest-s3.out" make check-guest-s3
		count_workloads $? "$suite_tmp/check-guest-s3.out"
	fi

	# The installed systemd units under a real systemd in a guest.
	if set_to_skip BH_SKIP_GUEST; then
		skip check-guest-systemd BH_SKIP_GUEST
	elif step check-guest-systemd make check-guest-systemd; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi

	# The parts that care where the tree lives run from a copy made for
	# them: the real directory below /root (mode 0700), its name a symlink
	# in /tmp, so the build directory configure sees is a logical path.
	anywhere=$(mktemp -d /root/bh-anywhere.XXXXXX) || exit 1
	link=/tmp/${anywhere##*/}
	ln -s "$anywhere" "$link"
	where="$link/src -> $anywhere/src"
	copy_ok=1
	step anywhere-build anywhere_build "$anywhere" "$link" || { failed=$((failed + 1)); copy_ok=0; }
	if [ $copy_ok = 1 ]; then
		step unpriv-anywhere make -C "$link/src" -j2 check \
			TESTS=tests/integration/test_unpriv check_PROGRAMS=tests/integration/test_unpriv
		rc=$?
		before=$failed
		count_check "$link/src"
		[ $rc -eq 0 ] || [ $failed -ne $before ] || failed=$((failed + 1))
		mkdir -p "$builddir/tests/anywhere"
		cp "$link/src/tests/integration/test_unpriv.log" "$builddir/tests/anywhere/" 2>/dev/null
	fi
	if set_to_skip BH_SKIP_GUEST; then
		where=
		skip check-guest-workloads BH_SKIP_GUEST
		skipped+=(guest)
	elif [ $copy_ok = 1 ]; then
		# Real programs in a guest whose root is the host's / over 9p, on a
		# passthrough share and on a memory share; each workload check
		# counts as one case.
		for backend in passthrough memory; do
			wl_log=$builddir/tests/anywhere/workloads-$backend.out
			step workloads-$backend run_workloads "$link/src" "$wl_log" \
				$backend
			count_workloads $? "$wl_log"
			# the consoles and daemon logs outlive the copy
			mkdir -p "$builddir/tests/anywhere/wl-$backend"
			cp "$link/src/tests/guest/wl-work-$backend/"*.log \
				"$builddir/tests/anywhere/wl-$backend/" 2>/dev/null
		done
	fi
	where=

	# The real clients: a libvirtd of its own starts bulkheadd (libvirt 9's
	# command line) for a domain running the workloads guest's main checks;
	# then libvirt 10's and Kata's command lines replayed, each with a guest
	# using the device. Each check counts.
	for t in check-guest-libvirt check-guest-replay; do
		if set_to_skip BH_SKIP_GUEST; then
			skip $t BH_SKIP_GUEST
		else
			step $t logged "$suite_tmp/$t.out" make $t
			count_workloads $? "$suite_tmp/$t.out"
		fi
	done

	if set_to_skip BH_SKIP_DISTCHECK; then
		skip distcheck BH_SKIP_DISTCHECK
		skipped+=(distcheck)
	elif step distcheck make -j2 distcheck; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
fi

summary
[ $failed -eq 0 ]
