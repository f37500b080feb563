#!/bin/sh
# check-compat.sh: bulkheadd(8)'s table in COMPATIBILITY WITH VIRTIOFSD is
# what the binary does. Each row names a virtiofsd option and says "same",
# "moot" or "refused"; each spelling of it (values joined by '|') is given
# to `bulkheadd --check-policy`, which parses the whole command line before
# it checks the policy files: "same" and "moot" must exit 0, "refused" must
# exit 1 with a message that names the option or its value. Placeholders
# (\fIDIR\fP ...) get sample values; one without a sample fails the test.
# Runs in: make check, in the build tree (daemon/bulkheadd, man/bulkheadd.8).
set -u
page=man/bulkheadd.8
bh=./daemon/bulkheadd
[ -r "$page" ] || { echo "check-compat: cannot read $page (not built?)"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# One line per row: option <TAB> virtiofsd <TAB> verdict, troff undone and
# placeholders filled in.
awk '
	BEGIN {
		FS = "\t"
		v["PATH"] = "/nonexistent/bh.sock"; v["GROUP"] = "root"; v["DIR"] = "/"
		v["N"] = "1"; v["TAG"] = "fs"; v["MAP"] = ":map::user.:"; v["LIST"] = "+sys_admin"
		v["NS"] = "0"; v["HOST"] = "0"; v["COUNT"] = "1"; v["G"] = "0"; v["H"] = "0"
		v["MODE"] = "find-paths"; v["WHAT"] = "abort"
	}
	function fill(s,   out, name) {
		gsub(/\\-/, "-", s)
		out = ""
		while (match(s, /\\fI[^\\]*\\fP/)) {
			name = substr(s, RSTART + 3, RLENGTH - 6)
			if (!(name in v)) { print "placeholder " name " has no sample value" > "/dev/stderr"; bad = 1 }
			out = out substr(s, 1, RSTART - 1) v[name]
			s = substr(s, RSTART + RLENGTH)
		}
		return out s
	}
	function verdict(s) { sub(/^\\fB/, "", s); sub(/\\fP.*/, "", s); return s }
	/^\.SH COMPATIBILITY WITH VIRTIOFSD/ { sect = 1; next }
	/^\.SH / { sect = 0 }
	!sect { next }
	/^\.TS/ { table = 1; fmt = 1; next }
	/^\.TE/ { table = 0; next }
	!table { next }
	fmt { if (/\.$/) fmt = 0; next }
	pending { print opt "\t" from "\t" verdict($0); pending = 0; next }
	NF >= 3 && $1 !~ /Option/ {
		opt = fill($1); from = $2
		if ($3 == "T{") pending = 1
		else print opt "\t" from "\t" verdict($3)
	}
	END { exit bad }
' "$page" >"$tmp/rows" || { echo "check-compat: cannot read the table of $page"; exit 1; }

fail=0 n=0
bad() {
	echo "check-compat: $*"
	fail=1
}
while IFS='	' read -r opt from verdict; do
	case $from in both | C | Rust | "C (old)") ;; *) bad "$opt: unknown virtiofsd '$from'" ;; esac
	case $verdict in same | moot | refused) ;; *) bad "$opt: unknown verdict '$verdict'" ;; esac
	# the spellings: PREFIX ALT|ALT|..., PREFIX ending at the last '=' or
	# ' ' before the first '|'
	case $opt in
	*"|"*)
		first=${opt%%|*}
		prefix=$(printf '%s' "$first" | sed 's/[^= ]*$//')
		alts=${opt#"$prefix"}
		;;
	*) prefix= alts=$opt ;;
	esac
	IFS='|'
	set -f
	for alt in $alts; do
		IFS=' '
		spelling="$prefix$alt"
		# shellcheck disable=SC2086 # "-o x" is two arguments
		$bh --check-policy $spelling >"$tmp/out" 2>&1
		rc=$?
		n=$((n + 1))
		name=${spelling%%=*}
		name=${name#-o }
		value=${spelling#*=}
		case $verdict in
		same | moot)
			[ $rc = 0 ] || bad "'$spelling' is '$verdict' in $page, but bulkheadd exited $rc: $(head -n 1 "$tmp/out")"
			;;
		refused)
			if [ $rc != 1 ]; then
				bad "'$spelling' is 'refused' in $page, but bulkheadd exited $rc"
			elif ! grep -qF -- "$name" "$tmp/out" && ! grep -qF -- "$value" "$tmp/out"; then
				bad "'$spelling' was refused without being named: $(head -n 1 "$tmp/out")"
			fi
			;;
		esac
		IFS='|'
	done
	set +f
	IFS=' 	
'
done <"$tmp/rows"
[ $n -ge 60 ] || bad "the table of $page has only $n spellings: lost rows?"
[ $fail = 0 ] && echo "check-compat: $n spellings of virtiofsd's options behave as $page says"
exit $fail
