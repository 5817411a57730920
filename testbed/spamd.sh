#!/usr/bin/env bash
# testbed/spamd.sh — a private SpamAssassin spamd on loopback for the test bed.
#
#   testbed/spamd.sh start DIR PORT   start spamd on 127.0.0.1:PORT in the
#                                     background and wait until it answers
#                                     PING (60 s at most: it compiles its
#                                     rules at start)
#   testbed/spamd.sh stop DIR         stop it and wait until it has gone
#   testbed/spamd.sh ping DIR         exit 0 when it answers PING
#
# The settings are Debian's (/etc/spamassassin, rules from the package), with
# what a reproducible test bed needs on top:
#   --local            no network tests (no DNS blocklists, Razor, Pyzor, DCC)
#   --nouser-config    no per-user files
#   use_bayes 0        no Bayes database: scores must not drift as spamd
#                      learns (auto-learn would train on the test messages,
#                      and from 200 spam + 200 ham on, Bayes rules and
#                      another score set would change every score)
# (the history-based AWL and TxRep plugins are not loaded by Debian's .pre
# files, so they need no setting; spamd logs "failed to parse" for theirs).
# GTUBE scores about 1000. It runs as debian-spamd with DIR/home as its home.
# Files in DIR: spamd.pid, spamd.log (its log), spamd.out (stdout/stderr),
# spamd.port, home/. Environment: SPAMD_CHILDREN (most children, default 2:
# the machine is shared).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

(($# >= 2)) || usage "start DIR PORT | stop DIR | ping DIR"
cmd=$1
mkdir -p "$2"
DIR=$(abspath "$2")
PIDFILE=$DIR/spamd.pid
LOG=$DIR/spamd.log
OUT=$DIR/spamd.out
PORTFILE=$DIR/spamd.port
USER_=debian-spamd

# ping_spamd PORT: a SPAMC/1.5 PING (a request line, an empty header block)
# answered with "SPAMD/1.5 0 PONG".
ping_spamd() {
	local line
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'PING SPAMC/1.5\r\n\r\n' >&3
	IFS= read -r -t 5 line <&3 || { exec 3>&-; return 1; }
	exec 3>&-
	[[ $line == "SPAMD/"*" 0 PONG"* ]]
}

ping_dir() {
	[[ -s $PORTFILE ]] && ping_spamd "$(cat "$PORTFILE")"
}

start() {
	local port=$1
	[[ $port =~ ^[0-9]+$ ]] || die "bad port: $port"
	command -v spamd >/dev/null || die "spamd is missing: run testbed/install.sh"
	if pid_alive "$PIDFILE" && [[ $(cat "$PORTFILE" 2>/dev/null) == "$port" ]] && ping_spamd "$port"; then
		return 0
	fi
	stop_pidfile "$PIDFILE" 20
	if port_open 127.0.0.1 "$port"; then
		die "something else listens on 127.0.0.1:$port"
	fi
	mkdir -p "$DIR/home"
	chmod 755 "$DIR"
	chown "$USER_:" "$DIR/home"
	: >"$OUT"
	: >"$LOG"
	chown "$USER_:" "$LOG"
	echo "$port" >"$PORTFILE"
	local children=${SPAMD_CHILDREN:-2}
	# setsid: its own process group, so a test harness's signals don't reach
	# it. Foreground (no -d): $! is spamd itself; it writes the pidfile too.
	setsid spamd \
		--listen="127.0.0.1:$port" \
		--local \
		--nouser-config \
		--username="$USER_" \
		--helper-home-dir="$DIR/home" \
		--pidfile="$PIDFILE.spamd" \
		--syslog="$LOG" \
		--max-children="$children" --min-children=1 --min-spare=1 --max-spare="$children" \
		--cf='use_bayes 0' \
		--cf='bayes_auto_learn 0' \
		</dev/null >>"$OUT" 2>&1 &
	local pid=$!
	echo "$pid" >"$PIDFILE"
	if ! wait_until 60 ping_spamd "$port"; then
		stop_pid "$pid" 5
		die "spamd did not answer PING on 127.0.0.1:$port within 60 s" "$OUT" "$LOG"
	fi
}

stop() {
	stop_pidfile "$PIDFILE" 20
	rm -f "$PIDFILE.spamd" "$PORTFILE"
}

case $cmd in
start)
	(($# == 3)) || usage "start DIR PORT"
	start "$3"
	;;
stop) stop ;;
ping) ping_dir ;;
*) usage "start DIR PORT | stop DIR | ping DIR" ;;
esac
