#!/usr/bin/env bash
# testbed/sendmail.sh — a private Sendmail 8.17 on loopback for the test bed,
# run from the folder testbed/install.sh unpacked it into
# (${NOBOUNCE_CACHE:-$HOME/.cache/nobounce}/sendmail).
#
#   testbed/sendmail.sh start DIR SMTP_PORT MILTER_ADDR SINK_PORT
#       build DIR/sendmail.cf with m4 from DIR/sendmail.mc, which includes the
#       committed examples/sendmail/nobounce.mc with its socket replaced by
#       MILTER_ADDR (written the Sendmail way: inet:PORT@HOST or local:/path;
#       "none" for no milter); start an smtp-sink on 127.0.0.1:SINK_PORT
#       (testbed/sink.sh, files under DIR/sink/msg) and Sendmail listening on
#       127.0.0.1:SMTP_PORT only; wait for both greetings.
#   testbed/sendmail.sh stop DIR    stop Sendmail and the sink
#   testbed/sendmail.sh queue DIR   print how many messages are in its queue
#
# Sendmail relays every message to the sink (SMART_HOST): with no alias
# database, local delivery would fail and Sendmail would send a DSN itself.
# Any DSN it does send goes to the sink too, where tests can see it.
# Files in DIR: sendmail.mc, sendmail.cf, nobounce.mc, mqueue/, clientmqueue/,
# sendmail.pid, sendmail.out (its stdout/stderr), traffic.log (-X: every SMTP
# line it sends and receives; Sendmail logs only to syslog, which the test bed
# does not need), sink/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

(($# >= 2)) || usage "start DIR SMTP_PORT MILTER_ADDR SINK_PORT | stop DIR | queue DIR"
cmd=$1
mkdir -p "$2"
DIR=$(abspath "$2")
SM=$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail
CFDIR=$SENDMAIL_ROOT/usr/share/sendmail/cf
PIDFILE=$DIR/sendmail.pid
OUT=$DIR/sendmail.out
HOSTNAME_FQDN=sendmail.nobounce.test

# Sendmail looks its own name up before it reads its .cf: it wants a name with
# a dot for the host (else it sleeps a minute and warns), and it asks for an
# IPv6 address first (which, missing from /etc/hosts, becomes a DNS query).
# Add "127.0.1.1 HOST.localdomain HOST" and "::1 HOST.localdomain HOST" to
# /etc/hosts, each only if no line of that family lists HOST with a dotted name.
hosts_has() { # FAMILY(4|6) HOST
	awk -v fam="$1" -v h="$2" '
		/^[[:space:]]*#/ { next }
		NF >= 2 {
			v6 = index($1, ":") > 0
			if ((fam == 6) != v6) next
			has = 0; dot = 0
			for (i = 2; i <= NF; i++) {
				if ($i ~ /^#/) break
				if ($i == h) has = 1
				if ($i ~ /\./) dot = 1
			}
			if (has && dot) found = 1
		}
		END { exit !found }' /etc/hosts
}
ensure_hosts_entry() {
	local h fq
	h=$(hostname)
	fq=$h
	[[ $h == *.* ]] || fq=$h.localdomain
	hosts_has 4 "$h" || echo "127.0.1.1 $fq $h" >>/etc/hosts
	hosts_has 6 "$h" || echo "::1 $fq $h" >>/etc/hosts
}

write_config() {
	local port=$1 milter=$2 sink_port=$3
	mkdir -p "$DIR/mqueue" "$DIR/clientmqueue"
	chmod 755 "$DIR"
	chmod 700 "$DIR/mqueue"
	chmod 770 "$DIR/clientmqueue"
	printf 'hosts files\naliases files\n' >"$DIR/service.switch"
	: >"$DIR/local-host-names"
	: >"$DIR/statistics"
	: >"$DIR/aliases"
	if [[ $milter != none ]]; then
		local example=$REPO/examples/sendmail/nobounce.mc
		[[ -r $example ]] || die "missing $example"
		grep -q 'S=inet:10029@127.0.0.1' "$example" ||
			die "$example no longer has the socket S=inet:10029@127.0.0.1 to replace"
		sed "s|S=inet:10029@127\.0\.0\.1|S=$milter|" "$example" >"$DIR/nobounce.mc"
	fi
	cat >"$DIR/sendmail.mc" <<-MC
		divert(-1)
		# Written by testbed/sendmail.sh: a private Sendmail for nobounce's tests.
		divert(0)dnl
		include(\`$CFDIR/m4/cf.m4')dnl
		VERSIONID(\`nobounce test bed')dnl
		OSTYPE(\`linux')dnl
		define(\`confDOMAIN_NAME', \`$HOSTNAME_FQDN')dnl
		define(\`confSERVICE_SWITCH_FILE', \`$DIR/service.switch')dnl
		define(\`confHOSTS_FILE', \`/etc/hosts')dnl
		define(\`confBIND_OPTS', \`-DNSRCH -DEFNAMES')dnl
		define(\`confDONT_PROBE_INTERFACES', \`true')dnl
		define(\`QUEUE_DIR', \`$DIR/mqueue')dnl
		define(\`MSP_QUEUE_DIR', \`$DIR/clientmqueue')dnl
		define(\`confPID_FILE', \`$PIDFILE')dnl
		define(\`STATUS_FILE', \`$DIR/statistics')dnl
		define(\`confCW_FILE', \`$DIR/local-host-names')dnl
		define(\`ALIAS_FILE', \`$DIR/aliases')dnl
		define(\`HELP_FILE', \`$SENDMAIL_ROOT/etc/mail/helpfile')dnl
		define(\`confHOST_STATUS_DIRECTORY', \`')dnl
		define(\`confLOG_LEVEL', \`9')dnl
		define(\`confMILTER_LOG_LEVEL', \`9')dnl
		define(\`confTO_IDENT', \`0s')dnl
		define(\`confTO_CONNECT', \`10s')dnl
		define(\`confTO_INITIAL', \`10s')dnl
		define(\`confDELIVERY_MODE', \`background')dnl
		define(\`confMAX_DAEMON_CHILDREN', \`40')dnl
		define(\`confCONNECTION_RATE_THROTTLE', \`0')dnl
		define(\`confREFUSE_LA', \`999')dnl
		define(\`confQUEUE_LA', \`999')dnl
		define(\`confPRIVACY_FLAGS', \`goaway')dnl
		define(\`SMART_HOST', \`esmtp:[127.0.0.1]')dnl
		define(\`ESMTP_MAILER_ARGS', \`TCP \$h $sink_port')dnl
		define(\`SMTP_MAILER_ARGS', \`TCP \$h $sink_port')dnl
		FEATURE(\`no_default_msa')dnl
		FEATURE(\`accept_unresolvable_domains')dnl
		FEATURE(\`nocanonify')dnl
		DAEMON_OPTIONS(\`Port=$port, Addr=127.0.0.1, Name=MTA')dnl
	MC
	if [[ $milter != none ]]; then
		echo "include(\`$DIR/nobounce.mc')dnl" >>"$DIR/sendmail.mc"
	fi
	cat >>"$DIR/sendmail.mc" <<-MC
		MAILER(\`smtp')dnl
	MC
	m4 "$DIR/sendmail.mc" >"$DIR/sendmail.cf" 2>"$DIR/m4.err" ||
		die "m4 could not build $DIR/sendmail.cf" "$DIR/m4.err"
	if [[ -s $DIR/m4.err ]]; then
		die "m4 complained while building $DIR/sendmail.cf" "$DIR/m4.err"
	fi
}

start() {
	(($# == 3)) || usage "start DIR SMTP_PORT MILTER_ADDR SINK_PORT"
	local port=$1 milter=$2 sink_port=$3
	[[ $port =~ ^[0-9]+$ ]] || die "bad SMTP port: $port"
	[[ -x $SM ]] || die "no sendmail at $SM: run testbed/install.sh"
	if pid_alive "$PIDFILE"; then
		die "a Sendmail already runs for $DIR (stop it first)"
	fi
	ensure_hosts_entry
	write_config "$port" "$milter" "$sink_port"
	"$TESTBED/sink.sh" start "$DIR/sink" "$sink_port"
	: >"$OUT"
	rm -f "$DIR/traffic.log"
	# -bd: daemon; -q1m: retry the queue each minute; -X: log SMTP traffic.
	setsid "$SM" -C "$DIR/sendmail.cf" -bd -q1m -X "$DIR/traffic.log" </dev/null >>"$OUT" 2>&1 ||
		die "sendmail -bd failed" "$OUT"
	if ! wait_until 30 smtp_ready 127.0.0.1 "$port"; then
		die "Sendmail did not greet on 127.0.0.1:$port within 30 s" "$OUT" "$DIR/traffic.log"
	fi
}

stop() {
	# The daemon's pid file holds its pid on the first line, then its command.
	stop_pidfile "$PIDFILE" 20
	"$TESTBED/sink.sh" stop "$DIR/sink"
}

queue() {
	# One qf file per queued message (df holds its body); hf: held
	# (quarantined); Qf: a queue file Sendmail gave up on ("lost").
	find "$DIR/mqueue" "$DIR/clientmqueue" -type f \( -name 'qf*' -o -name 'hf*' -o -name 'Qf*' \) 2>/dev/null | wc -l
}

shift 2
case $cmd in
start) start "$@" ;;
stop) stop ;;
queue) queue ;;
*) usage "start DIR SMTP_PORT MILTER_ADDR SINK_PORT | stop DIR | queue DIR" ;;
esac
