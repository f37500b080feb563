#!/bin/sh
# ceph-cluster.sh: a throwaway one-node Ceph cluster with its S3 gateway
# (RADOS Gateway), for the S3 back end's tests: one monitor, one OSD keeping
# objects in memory (memstore), one gateway, everything on 127.0.0.1 and
# every file under DIR. About 4 s to start.
#
#   ceph-cluster.sh start DIR   start it; DIR/env then holds S3_ENDPOINT,
#                               S3_ACCESS_KEY, S3_SECRET_KEY (shell syntax)
#   ceph-cluster.sh stop DIR    kill what start started there, remove DIR
#   ceph-cluster.sh kill-gateway DIR
#                               SIGKILL the gateway alone (fault tests)
#   ceph-cluster.sh start-gateway DIR
#                               start it again, on the same port, and wait
#                               until it answers
#
# With BH_CEPH_TLS=1 the gateway speaks HTTPS only, with a certificate
# for 127.0.0.1 from a CA made for the cluster (DIR/ca.pem, also named in
# DIR/env as S3_CA); openssl makes both.
#
# Needs root and Debian's ceph-mon, ceph-osd, radosgw and ceph-common
# (contrib/install-deps.sh). Several clusters may run side by side: each
# takes free ports of its own. Start-up has a deadline (BH_CEPH_TIMEOUT,
# 60 s); on failure the logs' tails are printed and what started is killed.
set -eu

die() {
	echo "ceph-cluster: $*" >&2
	exit 1
}

# A free TCP port on 127.0.0.1 (the kernel's pick; free when we look).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Kill the daemons recorded in DIR/pids, and wait until they are gone.
kill_recorded() {
	[ -f "$1/pids" ] || return 0
	for p in $(cat "$1/pids"); do
		kill -KILL "$p" 2>/dev/null || true
	done
	for p in $(cat "$1/pids"); do
		n=0
		while kill -0 "$p" 2>/dev/null && [ $n -lt 100 ]; do
			sleep 0.05
			n=$((n + 1))
		done
	done
	rm -f "$1/pids"
}

fail_start() {
	echo "ceph-cluster: start failed: $*" >&2
	for f in "$dir"/log/*.log "$dir"/*.out; do
		[ -f "$f" ] || continue
		echo "---- $f (last lines)" >&2
		tail -n 15 "$f" >&2
	done
	kill_recorded "$dir"
	exit 1
}

# Run a daemon in the foreground of its own session, its pid recorded: a
# daemon that forks away would exit 0 before it has finished starting.
run_daemon() {
	name=$1
	shift
	setsid "$@" -f >"$dir/$name.out" 2>&1 &
	echo $! >>"$dir/pids"
}

# The gateway answers HTTP once it is up (an anonymous request: 403 or 200).
wait_gateway() {
	until python3 - "$scheme" "$rgw_port" "$dir/ca.pem" <<'PY' 2>/dev/null; do
import ssl, sys, urllib.request, urllib.error
ctx = ssl.create_default_context(cafile=sys.argv[3]) if sys.argv[1] == "https" else None
try:
    urllib.request.urlopen("%s://127.0.0.1:%s/" % (sys.argv[1], sys.argv[2]), timeout=2,
                           context=ctx)
except urllib.error.HTTPError:
    pass
PY
		[ "$(date +%s)" -lt "$deadline" ] || fail_start "the gateway did not answer on port $rgw_port"
		for p in $(cat "$dir/pids"); do
			kill -0 "$p" 2>/dev/null || fail_start "daemon $p exited"
		done
		sleep 0.2
	done
}

# A CA of the cluster's own and the gateway's certificate for 127.0.0.1.
make_certificates() {
	command -v openssl >/dev/null || die "openssl is missing (contrib/install-deps.sh installs it)"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bulkhead test CA" \
		-keyout "$dir/ca.key" -out "$dir/ca.pem" >"$dir/tls.out" 2>&1 ||
		fail_start "openssl: the CA"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/server.key" \
		-out "$dir/server.csr" >>"$dir/tls.out" 2>&1 || fail_start "openssl: the request"
	printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$dir/server.ext"
	openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
		-CAcreateserial -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" \
		>>"$dir/tls.out" 2>&1 || fail_start "openssl: the certificate"
}

# The gateway's pid is the third in DIR/pids (mon, osd, rgw).
kill_gateway() {
	pid=$(sed -n 3p "$dir/pids")
	[ -n "$pid" ] || die "no gateway recorded in $dir"
	kill -KILL "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	sed -i 3d "$dir/pids"
}

start_gateway() {
	[ "$(wc -l <"$dir/pids")" -eq 2 ] || die "$dir: the gateway is running"
	conf=$dir/ceph.conf
	rgw_port=$(sed -n 's|^S3_ENDPOINT=https*://127.0.0.1:||p' "$dir/env")
	scheme=$(sed -n 's|^S3_ENDPOINT=\(https*\):.*|\1|p' "$dir/env")
	deadline=$(($(date +%s) + ${BH_CEPH_TIMEOUT:-60}))
	run_daemon rgw radosgw -c "$conf" -n client.rgw
	wait_gateway
}

start() {
	for t in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool python3; do
		command -v "$t" >/dev/null || die "$t is missing (contrib/install-deps.sh installs it)"
	done
	[ ! -e "$dir/pids" ] || die "$dir already holds a cluster"
	mkdir -p "$dir/log" "$dir/run" "$dir/mon" "$dir/osd/ceph-0" "$dir/rgw"
	deadline=$(($(date +%s) + ${BH_CEPH_TIMEOUT:-60}))
	fsid=$(cat /proc/sys/kernel/random/uuid)
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	mon_port=$(free_port)
	rgw_port=$(free_port)
	conf=$dir/ceph.conf
	scheme=http
	frontend="beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1"
	if [ "${BH_CEPH_TLS:-0}" = 1 ]; then
		make_certificates
		scheme=https
		frontend="beast ssl_endpoint=127.0.0.1:$rgw_port ssl_certificate=$dir/server.pem ssl_private_key=$dir/server.key tcp_nodelay=1"
	fi
	access_key=BULKHEADTEST$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
	secret_key=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
	cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring
log file = $dir/log/\$name.log
run dir = $dir/run
admin socket = $dir/run/\$name.asok
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 8589934592
osd max object name len = 460
osd max object namespace len = 64
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
paxos propose interval = 0.05

[client.rgw]
rgw frontends = $frontend
rgw dns name = localhost
rgw data = $dir/rgw
CONF
	kr=$dir/keyring
	ceph-authtool --create-keyring "$kr" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	ceph-authtool "$kr" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
		--cap mgr 'allow *' --cap mds 'allow *' >/dev/null
	ceph-authtool "$kr" --gen-key -n osd.0 --cap mon 'allow profile osd' \
		--cap osd 'allow *' >/dev/null
	ceph-authtool "$kr" --gen-key -n client.rgw --cap mon 'allow rw' \
		--cap osd 'allow rwx' >/dev/null
	monmaptool --create --add a "v2:127.0.0.1:$mon_port" --fsid "$fsid" "$dir/monmap" \
		>/dev/null
	ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$kr" \
		>"$dir/mkfs-mon.out" 2>&1 || fail_start "ceph-mon --mkfs"
	run_daemon mon ceph-mon -c "$conf" -i a
	ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$dir/mkfs-osd.out" 2>&1 ||
		fail_start "ceph-osd --mkfs"
	ceph -c "$conf" --connect-timeout 20 osd new "$osd_uuid" 0 >"$dir/osd-new.out" 2>&1 ||
		fail_start "ceph osd new"
	run_daemon osd ceph-osd -c "$conf" -i 0
	run_daemon rgw radosgw -c "$conf" -n client.rgw
	radosgw-admin -c "$conf" user create --uid=bulkhead-test --display-name=bulkhead-test \
		--access-key="$access_key" --secret="$secret_key" >"$dir/user.out" 2>&1 ||
		fail_start "radosgw-admin user create"
	wait_gateway
	cat >"$dir/env" <<ENV
S3_ENDPOINT=$scheme://127.0.0.1:$rgw_port
S3_ACCESS_KEY=$access_key
S3_SECRET_KEY=$secret_key
ENV
	[ "$scheme" = http ] || echo "S3_CA=$dir/ca.pem" >>"$dir/env"
	echo "ceph-cluster: gateway at $scheme://127.0.0.1:$rgw_port ($dir)"
}

usage="usage: ceph-cluster.sh start|stop|kill-gateway|start-gateway DIR"
[ $# -eq 2 ] || die "$usage"
dir=$2
case $1 in
start) start ;;
stop)
	kill_recorded "$dir"
	rm -rf "$dir"
	;;
kill-gateway) kill_gateway ;;
start-gateway) start_gateway ;;
*) die "$usage" ;;
esac
