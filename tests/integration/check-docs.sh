#!/bin/sh
# check-docs.sh: `bulkheadd --help` and the manual page name the same
# options: every option of --help is documented in man/bulkheadd.8, and
# every option the manual documents (an OPTIONS entry) is in --help.
# Runs in: make check (srcdir and the build tree's daemon/bulkheadd).
set -u
top=${srcdir:-.}
help=$(./daemon/bulkheadd --help) || { echo "check-docs: bulkheadd --help failed"; exit 1; }
man=$top/man/bulkheadd.8
[ -r "$man" ] || { echo "check-docs: cannot read $man"; exit 1; }

fail=0
for o in $(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
	m=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
	if ! grep -q -- "$m" "$man"; then
		echo "check-docs: $o is in --help but not in $man"
		fail=1
	fi
done
# OPTIONS entries: ".TP" then ".B \-\-name" / ".BI \-\-name= ..." / ".BR \-\-name=..."
for o in $(sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$man" | grep -A1 -E '^\.(TP|TQ)' |
	grep -o -E '^\.B[IR]? \\-\\-[a-z][a-z\\-]*' | sed -e 's/^\.B[IR]* //' -e 's/\\-/-/g' | sort -u); do
	if ! printf '%s\n' "$help" | grep -q -- "$o"; then
		echo "check-docs: $o is documented in $man but not in --help"
		fail=1
	fi
done
[ $fail = 0 ] && echo "check-docs: --help and $man agree"
exit $fail
