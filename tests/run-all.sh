#!/bin/bash
# run-all.sh: the whole bulkhead test suite from a fresh clone on Debian 12, as
# root: dependencies, autoreconf, configure, build, `make check` (unit and
# front-end integration tests), `make check-guest` (a real Linux guest under
# QEMU), `make check-guest-workloads` (git, sqlite3, fio, tar and system-call
# checks in a guest) and `make distcheck`. Prints how long each part took and ends with
# one line "N passed, N failed" counting test cases: every Criterion test
# case, every other test program, the guest test and distcheck as one each.
# Exits non-zero if anything failed (the summary is printed regardless).
#
# Environment: BH_SKIP_DEPS=1 (no apt-get), BH_BUILDDIR=DIR (build out of
# tree instead of in the source tree), BH_SKIP_GUEST=1, BH_SKIP_DISTCHECK=1.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BH_BUILDDIR:-$top}
passed=0
failed=0
timings=()
suite_start=$(date +%s)

# step NAME COMMAND...: run one part, record its time and status.
step() {
	local name=$1 t0 rc
	shift
	printf '\n==> %s: %s\n' "$name" "$*"
	t0=$(date +%s)
	"$@"
	rc=$?
	local dt=$(($(date +%s) - t0))
	local verdict=ok
	[ $rc -eq 0 ] || verdict="FAILED (exit $rc)"
	timings+=("$(printf '%-14s %5ss  %s' "$name" "$dt" "$verdict")")
	printf '==> %s: %s in %ss\n' "$name" "$verdict" "$dt"
	return $rc
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
		case $res in PASS | XFAIL | SKIP) ;; *) prog_failed=1 ;; esac
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

cd "$top" || exit 1
if [ "$(id -u)" != 0 ]; then
	echo "run-all: run as root (dependencies, and the guest test chowns its tree)" >&2
fi

build_ok=1
step deps ./contrib/install-deps.sh || failed=$((failed + 1))
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

	if [ "${BH_SKIP_GUEST:-0}" != 1 ]; then
		if step check-guest make check-guest; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
		fi
	fi
	if [ "${BH_SKIP_GUEST:-0}" != 1 ]; then
		# Real programs in a guest whose root is the host's / over 9p; each
		# workload check counts as one case.
		wl_log=$builddir/tests/guest/workloads.out
		mkdir -p "$(dirname "$wl_log")"
		step check-guest-workloads bash -c 'make check-guest-workloads 2>&1 | tee "$1"; exit ${PIPESTATUS[0]}' _ "$wl_log"
		rc=$?
		wl=$(grep -a '^workloads: .* checks, ' "$wl_log" | tail -n1)
		if [ -n "$wl" ]; then
			passed=$((passed + $(sed -n 's/.* \([0-9]*\) passed,.*/\1/p' <<<"$wl")))
			failed=$((failed + $(sed -n 's/.* \([0-9]*\) failed,.*/\1/p' <<<"$wl")))
		fi
		if [ $rc -ne 0 ] && ! grep -q ' [1-9][0-9]* failed,' <<<"$wl"; then
			failed=$((failed + 1))
		fi
	fi
	if [ "${BH_SKIP_DISTCHECK:-0}" != 1 ]; then
		if step distcheck make -j2 distcheck; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
		fi
	fi
fi

printf '\n==> timings\n'
for t in "${timings[@]}"; do
	echo "    $t"
done
echo "    total          $(($(date +%s) - suite_start))s"
echo
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
