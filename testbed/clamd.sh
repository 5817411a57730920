#!/usr/bin/env bash
# testbed/clamd.sh — a private clamd for the test bed, with a signature
# database made at run time (there is no internet, so no freshclam).
#
#   testbed/clamd.sh start DIR   build DIR/db, write DIR/clamd.conf from
#                                examples/clamd/clamd.conf, start clamd in the
#                                background and wait until DIR/clamd.sock
#                                answers PING (30 s at most)
#   testbed/clamd.sh stop DIR    stop it and wait until it has gone
#   testbed/clamd.sh ping DIR    exit 0 when it answers PING
#
# The database has three signatures:
#   Nobounce.Test.EICAR  (.ndb) the EICAR test string anywhere in a file
#   Nobounce.Test.ClamExe (.hdb) the md5 of /usr/share/clamav-testfiles/clam.exe
#   Nobounce.Test.Percent%sName (.ndb) the string NOBOUNCE-PERCENT-SIGNATURE-TEST
# clamd reports them with ".UNOFFICIAL" appended.
# Files in DIR: clamd.conf, clamd.sock, clamd.pid, clamd.log, clamd.out (its
# stdout/stderr), db/. Environment: CLAMD_STREAM_MAX (StreamMaxLength, 100M).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[[ $# == 2 ]] || usage "start|stop|ping DIR"
cmd=$1
mkdir -p "$2"
DIR=$(abspath "$2")
CONF=$DIR/clamd.conf
SOCK=$DIR/clamd.sock
PIDFILE=$DIR/clamd.pid
LOG=$DIR/clamd.log
OUT=$DIR/clamd.out
TESTFILE=/usr/share/clamav-testfiles/clam.exe

ping_clamd() { clamdscan --no-summary --config-file="$CONF" --ping 1 >/dev/null 2>&1; }

make_db() {
	mkdir -p "$DIR/db"
	# The EICAR test string, split so that this script is no test file itself.
	local eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR'
	eicar+='-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
	local hex
	hex=$(printf '%s' "$eicar" | od -An -v -tx1 | tr -d ' \n')
	echo "Nobounce.Test.EICAR:0:*:$hex" >"$DIR/db/nobounce.ndb"
	# A name with a printf directive in it, as a hostile or careless
	# signature could have: the reply must still reach the client intact.
	hex=$(printf '%s' "NOBOUNCE-PERCENT-SIGNATURE-TEST" | od -An -v -tx1 | tr -d ' \n')
	echo "Nobounce.Test.Percent%sName:0:*:$hex" >>"$DIR/db/nobounce.ndb"
	[[ -r $TESTFILE ]] || die "$TESTFILE is missing: run testbed/install.sh"
	local sum size
	sum=$(md5sum "$TESTFILE" | cut -d' ' -f1)
	size=$(stat -c %s "$TESTFILE")
	echo "$sum:$size:Nobounce.Test.ClamExe" >"$DIR/db/nobounce.hdb"
}

make_conf() {
	local example=$REPO/examples/clamd/clamd.conf
	[[ -r $example ]] || die "missing $example"
	# Keep the example's settings; replace paths and how it runs.
	grep -vE '^[[:space:]]*(LocalSocket|TCPSocket|TCPAddr|User|PidFile|LogFile|DatabaseDirectory|Foreground|StreamMaxLength|SelfCheck)[[:space:]]' "$example" >"$CONF"
	cat >>"$CONF" <<-CONF

		# --- test bed (testbed/clamd.sh) ---
		LocalSocket $SOCK
		PidFile $PIDFILE
		LogFile $LOG
		DatabaseDirectory $DIR/db
		Foreground yes
		StreamMaxLength ${CLAMD_STREAM_MAX:-100M}
		SelfCheck 0
	CONF
}

start() {
	if pid_alive "$PIDFILE" && ping_clamd; then
		return 0
	fi
	stop_pidfile "$PIDFILE"
	make_db
	make_conf
	rm -f "$SOCK" "$LOG"
	: >"$OUT"
	# setsid: its own process group, so a test harness's signals don't reach it.
	setsid clamd -c "$CONF" </dev/null >>"$OUT" 2>&1 &
	local pid=$!
	echo "$pid" >"$PIDFILE.start"
	if ! wait_until 60 ping_clamd; then
		kill -KILL "$pid" 2>/dev/null || true
		die "clamd did not answer PING on $SOCK within 60 s" "$OUT" "$LOG"
	fi
	# clamd writes PidFile itself; keep ours if it did not.
	[[ -s $PIDFILE ]] || cp "$PIDFILE.start" "$PIDFILE"
	rm -f "$PIDFILE.start"
}

stop() {
	stop_pidfile "$PIDFILE" 20
	rm -f "$SOCK"
}

case $cmd in
start) start ;;
stop) stop ;;
ping) ping_clamd ;;
*) usage "start|stop|ping DIR" ;;
esac
