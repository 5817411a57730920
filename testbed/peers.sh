#!/usr/bin/env bash
# testbed/peers.sh — the milters postmasters use today, started privately on
# loopback so that testbed/compare.sh can measure nobounce beside them with
# the same scanner daemons.
#
#   testbed/peers.sh clamav-milter start DIR PORT CLAMD_SOCKET
#       clamav-milter with a private config (DIR/clamav-milter.conf):
#       MilterSocket inet:PORT@127.0.0.1, ClamdSocket unix:CLAMD_SOCKET,
#       OnInfected Reject, OnFail Defer, AddHeader Replace, MaxFileSize 25M
#       (nobounce's max_size), foreground, log in DIR.
#   testbed/peers.sh spamass-milter start DIR PORT SPAMD_PORT
#       spamass-milter on inet:PORT@127.0.0.1, handing each message to spamc
#       for the spamd on 127.0.0.1:SPAMD_PORT; -r 10 rejects from score 10
#       (nobounce's default [spamd] reject_at; SPAMASS_REJECT changes it), -m
#       leaves body and Subject alone (headers are still added, as nobounce
#       adds its own).
#   testbed/peers.sh rspamd-proxy start DIR PORT NORMAL_ADDR
#       an rspamd with only its proxy worker, milter = yes, bound to
#       127.0.0.1:PORT, sending every message to the normal worker at
#       NORMAL_ADDR (host:port; e.g. the one testbed/rspamd.sh starts), with
#       self_scan off: the proxy only relays, like a milter in front of rspamd.
#   testbed/peers.sh noop-milter start DIR PORT
#       cmd/noop-milter (emersion/go-milter's NoOpMilter), built into DIR.
#   testbed/peers.sh KIND stop DIR   stop it, wait until it has gone
#   testbed/peers.sh KIND pid DIR    print the pid of the milter process
#
# Each waits (30 s at most) until its port accepts connections. Every process
# runs in its own session (setsid) with its pid in DIR/KIND.pid.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

(($# >= 3)) || usage "clamav-milter|spamass-milter|rspamd-proxy|noop-milter start|stop|pid DIR [ARGS]"
kind=$1 cmd=$2
mkdir -p "$3"
DIR=$(abspath "$3")
shift 3
PIDFILE=$DIR/$kind.pid
OUT=$DIR/$kind.out

# launch PORT COMMAND...: start COMMAND in its own session, wait for PORT.
launch() {
	local port=$1
	shift
	[[ $port =~ ^[0-9]+$ ]] || die "bad port: $port"
	stop_pidfile "$PIDFILE"
	if port_open 127.0.0.1 "$port"; then
		die "something else listens on 127.0.0.1:$port"
	fi
	: >"$OUT"
	setsid "$@" </dev/null >>"$OUT" 2>&1 &
	echo $! >"$PIDFILE"
	if ! wait_until 30 port_open 127.0.0.1 "$port"; then
		stop_pidfile "$PIDFILE"
		die "$kind did not listen on 127.0.0.1:$port within 30 s" "$OUT" "$DIR/$kind.log"
	fi
}

start_clamav_milter() {
	(($# == 2)) || usage "clamav-milter start DIR PORT CLAMD_SOCKET"
	local port=$1 sock=$2
	command -v clamav-milter >/dev/null || die "clamav-milter is missing: run testbed/install.sh"
	[[ -S $sock ]] || die "no clamd socket at $sock"
	mkdir -p "$DIR/tmp"
	cat >"$DIR/clamav-milter.conf" <<-CONF
		# Written by testbed/peers.sh: clamav-milter as a postmaster would run
		# it to reject viruses during SMTP, with the test bed's clamd.
		MilterSocket inet:$port@127.0.0.1
		FixStaleSocket yes
		Foreground yes
		PidFile $DIR/clamav-milter.own.pid
		TemporaryDirectory $DIR/tmp
		ClamdSocket unix:$sock
		ReadTimeout 300
		MaxFileSize 25M
		OnClean Accept
		OnInfected Reject
		OnFail Defer
		RejectMsg Virus found: %v
		AddHeader Replace
		LogFile $DIR/clamav-milter.log
		LogTime yes
		LogSyslog no
		LogVerbose no
		LogInfected Basic
		LogClean Off
		SupportMultipleRecipients no
	CONF
	launch "$port" clamav-milter -c "$DIR/clamav-milter.conf"
}

start_spamass_milter() {
	(($# == 2)) || usage "spamass-milter start DIR PORT SPAMD_PORT"
	local port=$1 spamd=$2
	command -v spamass-milter >/dev/null || die "spamass-milter is missing: run testbed/install.sh"
	command -v spamc >/dev/null || die "spamc is missing: run testbed/install.sh"
	launch "$port" spamass-milter -p "inet:$port@127.0.0.1" -r "${SPAMASS_REJECT:-10}" -m -- -d 127.0.0.1 -p "$spamd"
}

start_rspamd_proxy() {
	(($# == 2)) || usage "rspamd-proxy start DIR PORT NORMAL_ADDR"
	local port=$1 normal=$2
	command -v rspamd >/dev/null || die "rspamd is missing: run testbed/install.sh"
	mkdir -p "$DIR/local.d" "$DIR/override.d" "$DIR/db" "$DIR/run" "$DIR/log"
	chmod 755 "$DIR"
	chown _rspamd: "$DIR/db" "$DIR/run" "$DIR/log" 2>/dev/null || true
	# Only the proxy worker runs in this instance; the scanning is the
	# normal worker's, in its own instance.
	cat >"$DIR/override.d/worker-normal.inc" <<-CONF
		enabled = false;
	CONF
	cat >"$DIR/override.d/worker-controller.inc" <<-CONF
		enabled = false;
	CONF
	cat >"$DIR/override.d/worker-fuzzy.inc" <<-CONF
		enabled = false;
	CONF
	cat >"$DIR/override.d/worker-proxy.inc" <<-CONF
		bind_socket = "127.0.0.1:$port";
		milter = yes;
		timeout = 120s;
		upstream "local" {
		  default = yes;
		  self_scan = no;
		  hosts = "$normal";
		}
		count = 1;
		max_retries = 1;
		discard_on_reject = false;
		quarantine_on_reject = false;
		spam_header = "X-Spam";
		reject_message = "Spam message rejected";
	CONF
	cat >"$DIR/local.d/options.inc" <<-CONF
		dns { nameserver = ["127.0.0.1:1"]; }
	CONF
	cat >"$DIR/local.d/logging.inc" <<-CONF
		type = "file";
		filename = "$DIR/log/rspamd.log";
		level = "warning";
	CONF
	launch "$port" rspamd -f -u _rspamd -g _rspamd -c /etc/rspamd/rspamd.conf \
		--var="LOCAL_CONFDIR=$DIR" --var="DBDIR=$DIR/db" --var="RUNDIR=$DIR/run" --var="LOGDIR=$DIR/log"
}

start_noop_milter() {
	(($# == 1)) || usage "noop-milter start DIR PORT"
	(cd "$REPO" && go build -o "$DIR/noop-milter" ./cmd/noop-milter) || die "go build ./cmd/noop-milter failed"
	launch "$1" "$DIR/noop-milter" -listen "inet:127.0.0.1:$1"
}

case $kind:$cmd in
clamav-milter:start) start_clamav_milter "$@" ;;
spamass-milter:start) start_spamass_milter "$@" ;;
rspamd-proxy:start) start_rspamd_proxy "$@" ;;
noop-milter:start) start_noop_milter "$@" ;;
*:stop) stop_pidfile "$PIDFILE" 20 ;;
*:pid) pid_of "$PIDFILE" ;;
*) usage "clamav-milter|spamass-milter|rspamd-proxy|noop-milter start|stop|pid DIR [ARGS]" ;;
esac
