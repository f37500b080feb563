#!/bin/sh
# check-policy-examples.sh: the policy text in bulkhead.policy(5) is what
# the parser takes. Every example block (.EX ... .EE) of the generated page
# says, in a comment line ".\" check-policy: WHAT" just before it or as its
# first line, what it is:
#   file NAME     the policy file NAME, written into a copy of the source
#                 tree's policy directory
#   append NAME   lines added at the end of NAME there
#   error NAME    lines added to NAME in a scratch copy, which must fail ...
#   message       ... with these lines among --check-policy's output
#   check         --check-policy's output for the copy: it must pass, and
#                 name these kinds and files (the counts are not compared)
#   none          not policy text (commands, log lines)
# A block without such a line, or an unknown WHAT, fails the test, so no
# example escapes it; the copy must pass --check-policy at the end too.
# Runs in: make check, in the build tree (daemon/bulkheadd, man/*.5).
set -u
page=man/bulkhead.policy.5
bh=./daemon/bulkheadd
[ -r "$page" ] || { echo "check-policy-examples: cannot read $page (not built?)"; exit 1; }
help=$($bh --help) || { echo "check-policy-examples: bulkheadd --help failed"; exit 1; }
# the installed directory (as the page gives it) and the build tree's (the seed)
inst=$(printf '%s\n' "$help" | sed -n 's/^  Policy directory: *//p' | sed -n 1p)
src=$(printf '%s\n' "$help" | sed -n 's/^  Policy directory: *//p' | sed -n 2p)
[ -n "$inst" ] && [ -d "$src" ] ||
	{ echo "check-policy-examples: --help names no build-tree policy directory"; exit 1; }
arch=${inst##*/}

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/blocks" "$tmp/work/$arch"
cp "$src"/*.policy "$tmp/work/$arch/"

# Split the page: blocks/N holds block N as typed (troff escapes undone),
# blocks/list a line "N WHAT [NAME]" per block, or "N -" without a marker
# (the comment line stands just before .EX or as the block's first line).
awk -v dir="$tmp/blocks" '
	function marker(line) { sub(/^\.\\" check-policy: /, "", line); return line }
	/^\.\\" check-policy: / && !inblock { mark = marker($0); next }
	/^\.EX/ { n++; inblock = 1; lines = 0; printf "" > (dir "/" n); next }
	/^\.EE/ {
		inblock = 0; close(dir "/" n)
		printf "%d %s\n", n, (mark == "" ? "-" : mark) > (dir "/list")
		mark = ""; next
	}
	/^\.\\" check-policy: / && inblock && lines == 0 { mark = marker($0); next }
	/^\.\\"/ { next }
	inblock {
		gsub(/\\-/, "-"); gsub(/\\\(ga/, "`"); gsub(/\\\(aq/, "\047"); gsub(/\\&/, "");
		gsub(/\\e/, "\\");
		lines++
		print > (dir "/" n)
	}
' "$page"
[ -s "$tmp/blocks/list" ] || { echo "check-policy-examples: no example block in $page"; exit 1; }

fail=0
bad() {
	echo "check-policy-examples: $*"
	fail=1
}
check() { # DIR: run --check-policy on it; output in $tmp/out, status in $rc
	$bh --check-policy --policy-dir="$1" >"$tmp/out" 2>&1
	rc=$?
}
nfile=0 nerr=0 ncheck=0 scratch=
while read -r n what name; do
	blk=$tmp/blocks/$n
	case $what in
	file)
		cp "$blk" "$tmp/work/$arch/$name"
		nfile=$((nfile + 1))
		;;
	append)
		cat "$blk" >>"$tmp/work/$arch/$name"
		nfile=$((nfile + 1))
		;;
	error)
		rm -rf "$tmp/scratch"
		cp -r "$tmp/work" "$tmp/scratch"
		cat "$blk" >>"$tmp/scratch/$arch/$name"
		scratch=$name
		;;
	message)
		[ -n "$scratch" ] || { bad "block $n: a message without an error block before it"; continue; }
		check "$tmp/scratch"
		[ $rc = 1 ] || bad "block $n: --check-policy exited $rc, not 1, for the error in $scratch"
		while IFS= read -r line; do
			want=$(printf '%s\n' "$line" | sed "s|^$inst/|$tmp/scratch/$arch/|")
			grep -qxF -- "$want" "$tmp/out" ||
				bad "block $n: --check-policy did not print: $want"
		done <"$blk"
		[ $fail = 0 ] || cat "$tmp/out"
		scratch=
		nerr=$((nerr + 1))
		;;
	check)
		check "$tmp/work"
		[ $rc = 0 ] || { bad "block $n: --check-policy failed:"; cat "$tmp/out"; }
		# each line: kind, the file's name, the kind of list
		while read -r kind path _ _ _ _ list _; do
			path=${path%:} list=${list#(}
			grep -qE "^$kind +$tmp/work/$arch/${path##*/}: .*\\($list list\\)$" "$tmp/out" ||
				bad "block $n: --check-policy printed no line for $kind (${path##*/}, $list list)"
		done <"$blk"
		ncheck=$((ncheck + 1))
		;;
	none) ;;
	-) bad "block $n of $page has no 'check-policy:' comment line before it" ;;
	*) bad "block $n: unknown 'check-policy: $what'" ;;
	esac
done <"$tmp/blocks/list"
check "$tmp/work"
[ $rc = 0 ] || { bad "the policy files the examples make do not compile:"; cat "$tmp/out"; }
[ $nfile -gt 0 ] && [ $nerr -gt 0 ] && [ $ncheck -gt 0 ] ||
	bad "$page has lost its examples ($nfile files, $nerr errors, $ncheck checks)"
[ $fail = 0 ] &&
	echo "check-policy-examples: $nfile policy files, $nerr error and $ncheck checks of $page pass"
exit $fail
