#!/usr/bin/env bash
# testbed/backend.sh — Postfix instances on loopback for the recipient tests:
# mailbox servers ("backends") that treat unknown users in each of the ways
# `nobounce check` tells apart, and a gateway in front of them. Each is a
# testbed/postfix.sh instance (same folders, same stop/queue/log) whose
# main.cf is then changed with postconf and reloaded.
#
#   testbed/backend.sh start DIR MODE SMTP_PORT [DOMAIN]
#       a backend holding the mailboxes of DOMAIN (default example.test):
#       alice, bob and postmaster, delivered to DIR/mail/DOMAIN/USER/. MODE:
#         c3        unknown users refused at RCPT TO (550 5.1.1)
#         c1        unknown users accepted at RCPT TO, bounced at delivery
#         catchall  every address accepted, unknown ones delivered to
#                   DIR/mail/DOMAIN/catchall/
#         c2        unknown users accepted at RCPT TO, refused after DATA
#                   (smtpd_end_of_data_restrictions = reject_unlisted_recipient)
#   testbed/backend.sh gateway DIR SMTP_PORT MILTER_ADDR SINK_PORT ROUTE...
#       a gateway relaying each ROUTE, DOMAIN=PORT, to 127.0.0.1:PORT, and
#       accepting every recipient of those domains (no recipient list: it
#       learns only from the backend, after accepting, that a user does not
#       exist). Clients on 127.0.0.0/8 may relay elsewhere; all other mail
#       (outbound mail, bounces to remote senders) goes to an smtp-sink on
#       SINK_PORT, files under DIR/sink/msg. MILTER_ADDR as for postfix.sh.
#   testbed/backend.sh milter DIR MILTER_ADDR|none
#       point a running gateway at another milter, or at none, and reload
#   testbed/backend.sh stop DIR          stop Postfix (and the gateway's sink)
#   testbed/backend.sh connections DIR   SMTP connections accepted so far
#   testbed/backend.sh dsns DIR          bounces (DSNs) Postfix has sent so far
#   testbed/backend.sh log DIR           the path of the log
set -euo pipefail
. "$(dirname "$0")/lib.sh"

USAGE="start DIR MODE SMTP_PORT [DOMAIN] | gateway DIR SMTP_PORT MILTER_ADDR SINK_PORT DOMAIN=PORT... | milter DIR MILTER_ADDR|none | stop DIR | connections DIR | dsns DIR | log DIR"
(($# >= 2)) || usage "$USAGE"
cmd=$1
mkdir -p "$2"
DIR=$(abspath "$2")
shift 2
ETC=$DIR/etc
LOG=$DIR/log/maillog

conf() { postconf -c "$ETC" -e "$@"; }

# reload makes the changed main.cf count, and returns only when it does:
# once the master has logged the reload and every smtpd started before it
# (still holding the old configuration) has exited. Idle ones exit at once.
reload() {
	local master old n
	master=$(pid_of "$DIR/spool/pid/master.pid")
	old=$(pgrep -P "$master" -x smtpd || true)
	n=$(reloads)
	postfix -c "$ETC" check >>"$DIR/postfix.out" 2>&1 || die "postfix check failed after changing main.cf" "$DIR/postfix.out" "$LOG"
	postfix -c "$ETC" reload >>"$DIR/postfix.out" 2>&1 || die "postfix reload failed" "$DIR/postfix.out" "$LOG"
	wait_until 30 reloaded_since "$n" || die "the Postfix master did not reload" "$LOG"
	local p
	for p in $old; do
		wait_until 30 proc_gone "$p" || die "smtpd $p still runs with the old configuration" "$LOG"
	done
	wait_until 30 smtp_ready 127.0.0.1 "$(port_of)" || die "Postfix does not greet after the reload" "$LOG"
}

reloads() { count 'postfix/master\[[0-9]+\]: reload -- '; }
reloaded_since() { (($(reloads) > $1)); }

port_of() { awk '$2 == "inet" && $1 ~ /^127\.0\.0\.1:/ { sub(/.*:/, "", $1); print $1; exit }' "$ETC/master.cf"; }

start() {
	(($# == 2 || $# == 3)) || usage "$USAGE"
	local mode=$1 port=$2 domain=${3:-example.test} d
	[[ $domain =~ ^[a-z0-9.-]+$ ]] || die "bad domain: $domain"
	bash "$TESTBED/postfix.sh" start "$DIR" "$port" none
	d=$domain
	local users="alice@$d=$d/alice/, bob@$d=$d/bob/, postmaster@$d=$d/postmaster/"
	conf "virtual_mailbox_domains = $d" \
		"virtual_mailbox_maps = inline:{ $users }" \
		"bounce_notice_recipient = postmaster@$d" "2bounce_notice_recipient = postmaster@$d" \
		"delay_notice_recipient = postmaster@$d" "error_notice_recipient = postmaster@$d"
	case $mode in
	c3) ;;
	c1) conf "smtpd_reject_unlisted_recipient = no" ;;
	catchall) conf "virtual_mailbox_maps = inline:{ $users, @$d=$d/catchall/ }" ;;
	c2) conf "smtpd_reject_unlisted_recipient = no" "smtpd_end_of_data_restrictions = reject_unlisted_recipient" ;;
	*)
		bash "$TESTBED/postfix.sh" stop "$DIR"
		die "unknown mode $mode (want c3, c1, catchall or c2)"
		;;
	esac
	echo "$mode $domain" >"$DIR/backend.mode"
	reload
}

gateway() {
	(($# >= 4)) || usage "$USAGE"
	local port=$1 milter=$2 sink=$3
	shift 3
	local routes=() domains=() r
	for r in "$@"; do
		[[ $r =~ ^([a-z0-9.-]+)=([0-9]+)$ ]] || die "bad route $r (want DOMAIN=PORT)"
		domains+=("${BASH_REMATCH[1]}")
		routes+=("${BASH_REMATCH[1]}=relay:[127.0.0.1]:${BASH_REMATCH[2]}")
	done
	local IFS=,
	local table="${routes[*]}"
	IFS=' '
	bash "$TESTBED/sink.sh" start "$DIR/sink" "$sink"
	if ! bash "$TESTBED/postfix.sh" start "$DIR" "$port" "$milter"; then
		bash "$TESTBED/sink.sh" stop "$DIR/sink"
		exit 1
	fi
	conf "virtual_mailbox_domains =" \
		"relay_domains = ${domains[*]}" \
		"transport_maps = inline:{ $table }" \
		"default_transport = smtp:[127.0.0.1]:$sink" \
		"relay_transport = relay" \
		"smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination"
	echo "gateway ${domains[*]}" >"$DIR/backend.mode"
	reload
}

milter() {
	(($# == 1)) || usage "$USAGE"
	local m=$1
	[[ $m == none ]] && m=
	conf "smtpd_milters = $m"
	reload
}

stop() {
	bash "$TESTBED/postfix.sh" stop "$DIR"
	if [[ -d $DIR/sink ]]; then
		bash "$TESTBED/sink.sh" stop "$DIR/sink"
	fi
}

count() { # PATTERN: matching lines of the log
	if [[ -f $LOG ]]; then
		grep -cE "$1" "$LOG" || true
	else
		echo 0
	fi
}

case $cmd in
start) start "$@" ;;
gateway) gateway "$@" ;;
milter) milter "$@" ;;
stop) stop ;;
connections) count 'postfix/smtpd\[[0-9]+\]: connect from ' ;;
dsns) count ': sender non-delivery notification: ' ;;
log) echo "$LOG" ;;
*) usage "$USAGE" ;;
esac
