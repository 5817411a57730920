#!/usr/bin/env bash
# testbed/rspamd.sh — a private rspamd 3.4 on loopback for the test bed.
#
#   testbed/rspamd.sh start DIR PORT [MILTER_PORT]
#       write override files under DIR/conf, start rspamd with Debian's
#       /etc/rspamd/rspamd.conf and its normal worker (the HTTP API,
#       POST /checkv2) on 127.0.0.1:PORT, and wait until GET /ping answers
#       (90 s at most), then until its hyperscan database is loaded (120 s
#       at most; see hs_ready). With MILTER_PORT its proxy worker listens there in
#       milter mode (milter = yes, self_scan = yes: it scans by itself), the
#       peer nobounce is measured against; without it the proxy and the
#       controller listen on unix sockets under DIR/run and nothing else.
#   testbed/rspamd.sh stop DIR      stop it and wait until it has gone
#   testbed/rspamd.sh ping DIR      exit 0 when /ping answers "pong"
#
# Reproducible, offline scores: modules that ask DNS, HTTP or redis are off
# (rbl, surbl, phishing, fuzzy_check, greylist, dkim, dmarc, spf, arc, asn,
# emails, dcc, reputation, ratelimit, replies, neural, url_redirector,
# history_redis, bimi, rspamd_update, external_services, antivirus,
# dkim_signing; and hfilter's HELO, host name and From checks), rspamd's DNS goes to a loopback port where nothing answers
# (RSPAMD_NAMESERVER, default 127.0.0.1:1), and without redis there is no
# Bayes. GTUBE gives "action": "reject". rspamd's thresholds stay Debian's
# (reject 15, add header 6, greylist 4).
#
# Files in DIR: conf/{local.d,override.d}/ (LOCAL_CONFDIR), db/ (DBDIR),
# run/ (RUNDIR: pidfile, sockets), log/rspamd.log, rspamd.out (stdout and
# stderr), rspamd.pid, rspamd.port. It runs as _rspamd. Environment:
# RSPAMD_WORKERS (normal worker processes, default 1: the machine is
# shared).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

(($# >= 2)) || usage "start DIR PORT [MILTER_PORT] | stop DIR | ping DIR"
cmd=$1
mkdir -p "$2"
DIR=$(abspath "$2")
CONF=$DIR/conf
PIDFILE=$DIR/rspamd.pid
OUT=$DIR/rspamd.out
LOG=$DIR/log/rspamd.log
PORTFILE=$DIR/rspamd.port
USER_=_rspamd

# ping_rspamd PORT: GET /ping on the normal worker answers "pong".
ping_rspamd() {
	local reply
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET /ping HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
	reply=$(timeout 5 cat <&3) || { exec 3>&-; return 1; }
	exec 3>&-
	[[ $reply == "HTTP/1."?" 200"* && $reply == *pong* ]]
}

# hs_ready: the regular expressions run on hyperscan. A fresh DBDIR has no
# compiled database: rspamd answers at once with PCRE while its hs_helper
# compiles one, then switches, and a few rules score differently after the
# switch; a test bed must not change its scores halfway through a run.
# LOG_START is the number of lines the log had before this start.
hs_ready() {
	tail -n +"$((LOG_START + 1))" "$LOG" 2>/dev/null | grep -q "full hyperscan database of [0-9]* regexps has been loaded"
}

ping_dir() {
	[[ -s $PORTFILE ]] && ping_rspamd "$(cat "$PORTFILE")"
}

write_conf() {
	local port=$1 milter_port=$2 ns=${RSPAMD_NAMESERVER:-127.0.0.1:1}
	local workers=${RSPAMD_WORKERS:-1}
	rm -rf "$CONF"
	mkdir -p "$CONF/local.d" "$CONF/override.d"
	cat >"$CONF/override.d/worker-normal.inc" <<-EOF
		# testbed/rspamd.sh: the HTTP API on loopback only.
		bind_socket = "127.0.0.1:$port";
		count = $workers;
	EOF
	cat >"$CONF/override.d/worker-controller.inc" <<-EOF
		# testbed/rspamd.sh: no TCP port for the controller.
		bind_socket = "$DIR/run/controller.sock mode=0600";
		count = 1;
		password = "";
		enable_password = "";
	EOF
	local proxy_bind="$DIR/run/proxy.sock mode=0666"
	if [[ -n $milter_port ]]; then
		proxy_bind="127.0.0.1:$milter_port"
	fi
	cat >"$CONF/override.d/worker-proxy.inc" <<-EOF
		# testbed/rspamd.sh: the milter-mode proxy, scanning by itself.
		bind_socket = "$proxy_bind";
		milter = yes;
		self_scan = yes;
		count = 1;
		timeout = 120s;
		discard_on_reject = false;
		quarantine_on_reject = false;
		reject_message = "Spam message rejected";
		upstream "local" {
		  default = yes;
		  self_scan = yes;
		}
	EOF
	cat >"$CONF/local.d/options.inc" <<-EOF
		# testbed/rspamd.sh: no DNS leaves the machine; failures are immediate.
		dns {
		  nameserver = ["$ns"];
		  timeout = 0.2s;
		  retransmits = 1;
		}
	EOF
	cat >"$CONF/override.d/logging.inc" <<-EOF
		type = "file";
		filename = "$LOG";
		level = "info";
	EOF
	local m
	for m in rbl surbl phishing fuzzy_check greylist dkim dmarc spf arc asn emails dcc \
		reputation ratelimit replies neural url_redirector history_redis bimi \
		rspamd_update external_services antivirus dkim_signing mx_check; do
		printf '# testbed/rspamd.sh: wants DNS, HTTP or redis\nenabled = false;\n' >"$CONF/local.d/$m.conf"
	done
	# hfilter's HELO, host name and From domain checks resolve names: with
	# no DNS they would all say "does not resolve" (and wait for it).
	cat >"$CONF/local.d/hfilter.conf" <<-EOF
		# testbed/rspamd.sh: only the checks that need no DNS.
		helo_enabled = false;
		hostname_enabled = false;
		from_enabled = false;
	EOF
}

start() {
	local port=$1 milter_port=${2:-}
	[[ $port =~ ^[0-9]+$ ]] || die "bad port: $port"
	[[ -z $milter_port || $milter_port =~ ^[0-9]+$ ]] || die "bad milter port: $milter_port"
	command -v rspamd >/dev/null || die "rspamd is missing: run testbed/install.sh"
	if pid_alive "$PIDFILE" && [[ $(cat "$PORTFILE" 2>/dev/null) == "$port" ]] && ping_rspamd "$port"; then
		return 0
	fi
	stop_pidfile "$PIDFILE" 20
	if port_open 127.0.0.1 "$port"; then
		die "something else listens on 127.0.0.1:$port"
	fi
	if [[ -n $milter_port ]] && port_open 127.0.0.1 "$milter_port"; then
		die "something else listens on 127.0.0.1:$milter_port"
	fi
	write_conf "$port" "$milter_port"
	mkdir -p "$DIR/db" "$DIR/run" "$DIR/log"
	chmod 755 "$DIR"
	chown -R "$USER_:$USER_" "$DIR/db" "$DIR/run" "$DIR/log"
	: >"$OUT"
	echo "$port" >"$PORTFILE"
	LOG_START=0
	if [[ -f $LOG ]]; then LOG_START=$(wc -l <"$LOG"); fi
	# setsid: its own process group. -f: the master stays in the
	# foreground, so $! is rspamd itself.
	setsid rspamd -f -u "$USER_" -g "$USER_" \
		-c /etc/rspamd/rspamd.conf \
		--var="LOCAL_CONFDIR=$CONF" \
		--var="DBDIR=$DIR/db" \
		--var="RUNDIR=$DIR/run" \
		--var="LOGDIR=$DIR/log" \
		</dev/null >>"$OUT" 2>&1 &
	local pid=$!
	echo "$pid" >"$PIDFILE"
	if ! wait_until 90 ping_rspamd "$port"; then
		stop_pid "$pid" 5
		die "rspamd did not answer /ping on 127.0.0.1:$port within 90 s" "$OUT" "$LOG"
	fi
	if ! wait_until 120 hs_ready; then
		echo "$PROG: no hyperscan database loaded after 120 s: going on with PCRE (scores may change when it loads)" >&2
	fi
	if [[ -n $milter_port ]] && ! wait_until 30 port_open 127.0.0.1 "$milter_port"; then
		stop_pid "$pid" 5
		die "rspamd's proxy does not listen on 127.0.0.1:$milter_port" "$OUT" "$LOG"
	fi
}

stop() {
	# The master stops its workers on SIGTERM.
	stop_pidfile "$PIDFILE" 20
	rm -f "$PORTFILE"
}

case $cmd in
start)
	(($# == 3 || $# == 4)) || usage "start DIR PORT [MILTER_PORT]"
	start "$3" "${4:-}"
	;;
stop) stop ;;
ping) ping_dir ;;
*) usage "start DIR PORT [MILTER_PORT] | stop DIR | ping DIR" ;;
esac
