#!/usr/bin/env bash
# testbed/sink.sh — an SMTP sink (Postfix's smtp-sink) that stores every
# message it receives as one file and answers 250 to everything.
#
#   testbed/sink.sh start DIR PORT   listen on 127.0.0.1:PORT; write each
#                                    message to DIR/msg/HOUR/MIN.RANDOM
#   testbed/sink.sh stop DIR         stop it
#   testbed/sink.sh files DIR        list the stored message files
#
# Each file starts with smtp-sink's envelope lines (X-Client-Addr,
# X-Helo-Args, X-Mail-Args, X-Rcpt-Args) and its own Received: header,
# followed by the message as it was sent to the sink (line ends LF), and one
# extra line break at the end of the file.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

(($# >= 2)) || usage "start DIR PORT | stop DIR | files DIR"
cmd=$1
mkdir -p "$2"
DIR=$(abspath "$2")
PIDFILE=$DIR/sink.pid
OUT=$DIR/sink.out

start() {
	local port=$1
	[[ $port =~ ^[0-9]+$ ]] || die "bad port: $port"
	stop_pidfile "$PIDFILE"
	mkdir -p "$DIR/msg"
	chmod 755 "$DIR"
	chown nobody "$DIR/msg"
	runuser -u nobody -- test -w "$DIR/msg" ||
		die "user nobody cannot write $DIR/msg: make every parent folder of $DIR searchable (chmod o+x)"
	: >"$OUT"
	setsid smtp-sink -d "$DIR/msg/%Y%m%d%H/%M." -u nobody -h sink.nobounce.test \
		"127.0.0.1:$port" 100 </dev/null >>"$OUT" 2>&1 &
	echo $! >"$PIDFILE"
	if ! wait_until 15 smtp_ready 127.0.0.1 "$port"; then
		stop_pidfile "$PIDFILE"
		die "smtp-sink did not greet on 127.0.0.1:$port within 15 s" "$OUT"
	fi
}

case $cmd in
start)
	(($# == 3)) || usage "start DIR PORT"
	start "$3"
	;;
stop) stop_pidfile "$PIDFILE" ;;
files) [[ -d $DIR/msg ]] && find "$DIR/msg" -type f | sort ;;
*) usage "start DIR PORT | stop DIR | files DIR" ;;
esac
