#!/usr/bin/env bash
# testbed/postfix.sh — a private Postfix instance on loopback for the test bed.
#
#   testbed/postfix.sh start DIR SMTP_PORT MILTER_ADDR
#       write DIR/etc/{main.cf,master.cf}, create the queue, start Postfix
#       (`postfix -c DIR/etc start`) listening on 127.0.0.1:SMTP_PORT only, and
#       wait for its 220 greeting. The milter lines come from the committed
#       examples/postfix/main.cf with its address replaced by MILTER_ADDR
#       (written the Postfix way: inet:127.0.0.1:PORT or unix:/path).
#       MILTER_ADDR "none" starts it without a milter.
#   testbed/postfix.sh stop DIR     stop it and wait for the master to exit
#   testbed/postfix.sh queue DIR    print how many messages are in its queue
#   testbed/postfix.sh log DIR      print the path of its log file
#
# Mail for example.test (alice, bob, postmaster) is delivered to maildirs:
#   DIR/mail/example.test/USER/new/...   (owned by nobody)
# Every other destination is refused at RCPT, and every transport that could
# leave the machine is error:, so nothing is ever relayed. Postmaster notices
# (notify_classes) go to postmaster@example.test, where tests can see them.
# Log: DIR/log/maillog (no syslog needed). Queue: DIR/spool.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

(($# >= 2)) || usage "start DIR SMTP_PORT MILTER_ADDR | stop DIR | queue DIR | log DIR"
cmd=$1
mkdir -p "$2"
DIR=$(abspath "$2")
ETC=$DIR/etc
SPOOL=$DIR/spool
LOG=$DIR/log/maillog
OUT=$DIR/postfix.out
MAIL_USER=nobody

pf() { postfix -c "$ETC" "$@"; }

master_alive() { pid_alive "$SPOOL/pid/master.pid"; }

write_config() {
	local port=$1 milter=$2 uid gid
	uid=$(id -u "$MAIL_USER")
	gid=$(id -g "$MAIL_USER")
	mkdir -p "$ETC" "$SPOOL" "$DIR/data" "$DIR/log" "$DIR/mail"
	chown root:root "$SPOOL"
	chown postfix:postfix "$DIR/data"
	chown "$MAIL_USER:$gid" "$DIR/mail"
	chmod 755 "$DIR" "$ETC" "$SPOOL" "$DIR/log" "$DIR/mail"
	cat >"$ETC/main.cf" <<-CF
		# Written by testbed/postfix.sh: a private instance for nobounce's tests.
		compatibility_level = 3.6
		queue_directory = $SPOOL
		data_directory = $DIR/data
		maillog_file = $LOG
		maillog_file_prefixes = $DIR/log
		# Debian's meta_directory /etc/postfix keeps postfix-files for post-install.

		myhostname = postfix.nobounce.test
		mydomain = nobounce.test
		myorigin = \$myhostname
		mydestination =
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
		mynetworks = 127.0.0.0/8
		smtpd_banner = \$myhostname ESMTP nobounce test bed
		disable_dns_lookups = yes
		smtp_dns_support_level = disabled
		append_dot_mydomain = no
		biff = no
		alias_maps =
		alias_database =
		smtputf8_enable = no

		# example.test is the only domain; unknown users fail at RCPT.
		virtual_mailbox_domains = example.test
		virtual_mailbox_base = $DIR/mail
		virtual_mailbox_maps = inline:{ alice@example.test=example.test/alice/, bob@example.test=example.test/bob/, postmaster@example.test=example.test/postmaster/ }
		virtual_uid_maps = static:$uid
		virtual_gid_maps = static:$gid
		virtual_minimum_uid = 1

		# Nothing ever leaves: other destinations are refused at RCPT, and the
		# transports that would relay are errors.
		smtpd_relay_restrictions = reject_unauth_destination
		relay_domains =
		default_transport = error:5.7.1 nobounce test bed delivers nothing off the machine
		relay_transport = error:5.7.1 nobounce test bed delivers nothing off the machine
		local_transport = error:5.1.1 no local delivery in the test bed
		# Postmaster notices land in a mailbox the tests read.
		notify_classes = resource, software
		bounce_notice_recipient = postmaster@example.test
		2bounce_notice_recipient = postmaster@example.test
		delay_notice_recipient = postmaster@example.test
		error_notice_recipient = postmaster@example.test
		queue_run_delay = 10s
		minimal_backoff_time = 10s
		smtpd_client_connection_count_limit = 0
		smtpd_client_connection_rate_limit = 0
		smtpd_client_message_rate_limit = 0
	CF
	if [[ $milter != none ]]; then
		local example=$REPO/examples/postfix/main.cf
		[[ -r $example ]] || die "missing $example"
		grep -q 'inet:127.0.0.1:10029' "$example" ||
			die "$example no longer has the address inet:127.0.0.1:10029 to replace"
		{
			echo
			echo "# --- from examples/postfix/main.cf, milter address replaced ---"
			sed "s|inet:127\.0\.0\.1:10029|$milter|" "$example"
		} >>"$ETC/main.cf"
	fi
	cat >"$ETC/master.cf" <<-CF
		# Written by testbed/postfix.sh. Nothing chrooted; SMTP on loopback only.
		127.0.0.1:$port inet  n       -       n       -       -       smtpd
		pickup    unix  n       -       n       60      1       pickup
		cleanup   unix  n       -       n       -       0       cleanup
		qmgr      unix  n       -       n       300     1       qmgr
		rewrite   unix  -       -       n       -       -       trivial-rewrite
		bounce    unix  -       -       n       -       0       bounce
		defer     unix  -       -       n       -       0       bounce
		trace     unix  -       -       n       -       0       bounce
		verify    unix  -       -       n       -       1       verify
		flush     unix  n       -       n       1000?   0       flush
		proxymap  unix  -       -       n       -       -       proxymap
		proxywrite unix -       -       n       -       1       proxymap
		smtp      unix  -       -       n       -       -       smtp
		relay     unix  -       -       n       -       -       smtp
		showq     unix  n       -       n       -       -       showq
		error     unix  -       -       n       -       -       error
		retry     unix  -       -       n       -       -       error
		discard   unix  -       -       n       -       -       discard
		local     unix  -       n       n       -       -       local
		virtual   unix  -       n       n       -       -       virtual
		lmtp      unix  -       -       n       -       -       lmtp
		anvil     unix  -       -       n       -       1       anvil
		scache    unix  -       -       n       -       1       scache
		postlog   unix-dgram n  -       n       -       1       postlogd
	CF
}

start() {
	(($# == 2)) || usage "start DIR SMTP_PORT MILTER_ADDR"
	local port=$1 milter=$2
	[[ $port =~ ^[0-9]+$ ]] || die "bad SMTP port: $port"
	if master_alive; then
		die "a Postfix master already runs for $DIR (stop it first)"
	fi
	write_config "$port" "$milter"
	: >"$OUT"
	pf post-install create-missing >>"$OUT" 2>&1 ||
		die "postfix post-install create-missing failed" "$OUT" "$LOG"
	# The mail owner and the delivery user must be able to reach their folders.
	runuser -u postfix -- test -x "$SPOOL" ||
		die "user postfix cannot reach $SPOOL: make every parent folder of $DIR searchable (chmod o+x)"
	runuser -u "$MAIL_USER" -- test -w "$DIR/mail" ||
		die "user $MAIL_USER cannot write $DIR/mail: make every parent folder of $DIR searchable (chmod o+x)"
	pf check >>"$OUT" 2>&1 || die "postfix check failed" "$OUT" "$LOG"
	pf start >>"$OUT" 2>&1 || die "postfix start failed" "$OUT" "$LOG"
	if ! wait_until 30 smtp_ready 127.0.0.1 "$port"; then
		die "Postfix did not greet on 127.0.0.1:$port within 30 s" "$OUT" "$LOG"
	fi
}

stop() {
	if master_alive; then
		pf stop >>"$OUT" 2>&1 || true
		local pid
		pid=$(pid_of "$SPOOL/pid/master.pid")
		if ! wait_until 20 proc_gone "$pid"; then
			pf abort >>"$OUT" 2>&1 || true
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
}

queue() {
	local n=0 d
	for d in maildrop incoming active deferred hold corrupt; do
		[[ -d $SPOOL/$d ]] || continue
		n=$((n + $(find "$SPOOL/$d" -type f | wc -l)))
	done
	echo "$n"
}

shift 2
case $cmd in
start) start "$@" ;;
stop) stop ;;
queue) queue ;;
log) echo "$LOG" ;;
*) usage "start DIR SMTP_PORT MILTER_ADDR | stop DIR | queue DIR | log DIR" ;;
esac
