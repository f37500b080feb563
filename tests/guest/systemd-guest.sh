#!/bin/sh
# systemd-guest.sh: the guest half of the systemd test, run by bh-test.service
# under the host's own systemd as PID 1 in the guest (systemd-root.sh), with
# bulkhead installed as `make install` installs it. It drives the installed
# units bulkhead@t (a host directory, /srv/bulkhead/t) and bulkhead@m (a
# memory share) through their sockets with unit-client and reports what
# systemd and /proc say, one "BH-RESULT NAME ok|fail DETAIL" line per check;
# the host (systemd-guest.py) decides. Ends with BH-DONE and powers off.
# Runs in: the throwaway guest, as root; trusts nothing but what it reads.
cd /var/lib/bh-test || exit 1
. ./paths

result() {
	echo "BH-RESULT $*"
}

# check NAME COMMAND...: ok if the command succeeds, its output as detail
check() {
	name=$1
	shift
	if out=$("$@" 2>&1); then
		result "$name" ok "$(echo "$out" | tr '\n' ' ')"
	else
		result "$name" fail "$(echo "$out" | tr '\n' ' ')"
	fi
}

field() { # field PID KEY: a /proc/PID/status value
	sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"
}

prop() { # prop UNIT PROPERTY
	systemctl show -p "$2" --value "$1"
}

# units: what make install put where systemd finds it
check units-installed test -f "$unitdir/bulkhead@.service" -a -f "$unitdir/bulkhead@.socket" \
	-a -f "$unitdir/bulkhead-s3@.service"
check socket-listening test -S /run/bulkhead/t.sock
result socket-mode ok "$(stat -c '%a %G' /run/bulkhead/t.sock)"

# the first connection starts bulkhead@t.service; hold it while we look
./unit-client /run/bulkhead/t.sock --read hello.txt --mkdir made-by-the-client --hold 20 \
	>/tmp/client-t 2>&1 &
client=$!
# until COMMAND succeeds, at most 60 s
await() {
	timeout 60 sh -c "until $1; do sleep 0.5; done"
}
await '[ "$(systemctl show -p ActiveState --value bulkhead@t.service)" = active ]'
if [ "$(prop bulkhead@t.service ActiveState)" != active ]; then
	result started fail "bulkhead@t.service is $(prop bulkhead@t.service ActiveState)"
	journalctl -b -o cat -n 80 | sed 's/^/BH-JOURNAL /'
	echo "BH-DONE"
	systemctl poweroff -f -f
fi
main=$(prop bulkhead@t.service MainPID)
await "[ \$(pgrep -c -P $main) -ge 2 ]"
result daemon ok "pid=$main NoNewPrivs=$(field "$main" NoNewPrivs) Seccomp=$(field "$main" Seccomp) CapBnd=$(field "$main" CapBnd) CapEff=$(field "$main" CapEff)"
for w in $(pgrep -P "$main"); do
	same=
	for ns in mnt pid net ipc uts user; do
		[ "$(readlink "/proc/$w/ns/$ns")" = "$(readlink "/proc/$main/ns/$ns")" ] &&
			same="$same$ns,"
	done
	result worker ok "pid=$w NoNewPrivs=$(field "$w" NoNewPrivs) Seccomp=$(field "$w" Seccomp) CapEff=$(field "$w" CapEff) shared-ns=$same"
done
result status-serving ok "$(prop bulkhead@t.service StatusText)"
wait $client
result client-t "$([ $? = 0 ] && echo ok || echo fail)" "$(tr '\n' ' ' </tmp/client-t)"
check share-written test -d /srv/bulkhead/t/made-by-the-client
sleep 1
result status-waiting ok "$(prop bulkhead@t.service StatusText)"
result watchdog ok "WatchdogTimestampMonotonic=$(prop bulkhead@t.service WatchdogTimestampMonotonic)"

# the next front end, after a reload (SIGHUP)
systemctl reload bulkhead@t.service
sleep 1
check client-t-again ./unit-client /run/bulkhead/t.sock --read hello.txt
check reloaded sh -c "journalctl -u bulkhead@t.service -o cat | grep 'read at SIGHUP in force'"
result exposure ok "$(systemd-analyze security bulkhead@t.service 2>&1 | grep 'Overall exposure')"

# a memory share, through its own instance
check client-m ./unit-client /run/bulkhead/m.sock --mkdir in-memory
result daemon-m ok "Result=$(prop bulkhead@m.service Result) ActiveState=$(prop bulkhead@m.service ActiveState)"

# stop: the daemon's own exit status, and what the journal got from it
systemctl stop bulkhead@t.service bulkhead@m.service
result stopped ok "Result=$(prop bulkhead@t.service Result) ExecMainStatus=$(prop bulkhead@t.service ExecMainStatus) m:Result=$(prop bulkhead@m.service Result) m:ExecMainStatus=$(prop bulkhead@m.service ExecMainStatus)"
journalctl -u bulkhead@t.service -u bulkhead@m.service -o cat >/tmp/journal 2>&1
result journal-lines ok "$(wc -l </tmp/journal)"
check journal-clean sh -c "! grep -E 'killed by signal|forbidden system call|would deny|exited with status [1-9]|^<[0-9]>' /tmp/journal"
result journal-warnings ok "$(journalctl -u bulkhead@t.service -u bulkhead@m.service -p warning -o cat | wc -l)"
sed 's/^/BH-JOURNAL /' /tmp/journal | tail -60
echo "BH-DONE"
sync
systemctl poweroff -f -f
