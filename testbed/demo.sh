#!/usr/bin/env bash
# testbed/demo.sh — `make demo`: see nobounce refuse a virus inside the SMTP
# transaction, with real programs on loopback.
#
# Installs what is missing (testbed/install.sh), builds nobounce, starts a
# private clamd, nobounce and a private Postfix in a temporary folder, sends
# one clean message and one carrying the EICAR test string with swaks, prints
# both SMTP conversations and the delivered mail, then stops everything it
# started. Nothing listens beyond 127.0.0.1 and nothing leaves the machine.
# NOBOUNCE_KEEP=1 keeps the temporary folder.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bold() { if [[ -t 1 ]]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }
note() { printf '   %s\n' "$@"; }

# free_port: a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		port_open 127.0.0.1 "$p" || { echo "$p"; return 0; }
	done
	die "found no free port"
}

WORK=$(mktemp -d /tmp/nobounce-demo.XXXXXX)
chmod 755 "$WORK"
NB_PID=
cleanup() {
	local rc=$?
	set +e
	[[ -n $NB_PID ]] && stop_pid "$NB_PID" 10
	"$TESTBED/postfix.sh" stop "$WORK/postfix" 2>/dev/null
	"$TESTBED/clamd.sh" stop "$WORK/clamd" 2>/dev/null
	if ((rc != 0)) || [[ -n ${NOBOUNCE_KEEP:-} ]]; then
		echo "(files kept in $WORK)"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

bold "Installing what is missing (postfix, clamav, swaks, ...)"
bash "$TESTBED/install.sh"
note "ok"

bold "Building nobounce"
(cd "$REPO" && go build -o "$WORK/nobounce" ./cmd/nobounce)
note "$("$WORK/nobounce" version)"

bold "Starting clamd (a private one, with a tiny test signature database)"
"$TESTBED/clamd.sh" start "$WORK/clamd"
note "clamd answers on unix:$WORK/clamd/clamd.sock"

NB_PORT=$(free_port)
bold "Starting nobounce on inet:127.0.0.1:$NB_PORT"
setsid "$WORK/nobounce" serve -config "$REPO/examples/nobounce.toml" \
	-listen "inet:127.0.0.1:$NB_PORT" -clamd "unix:$WORK/clamd/clamd.sock" \
	</dev/null >"$WORK/nobounce.log" 2>&1 &
NB_PID=$!
wait_until 15 port_open 127.0.0.1 "$NB_PORT" ||
	die "nobounce does not listen on 127.0.0.1:$NB_PORT" "$WORK/nobounce.log"
note "nobounce serve -config examples/nobounce.toml -listen inet:127.0.0.1:$NB_PORT -clamd unix:.../clamd.sock"

SMTP_PORT=$(free_port)
bold "Starting Postfix on 127.0.0.1:$SMTP_PORT, with the lines of examples/postfix/main.cf"
"$TESTBED/postfix.sh" start "$WORK/postfix" "$SMTP_PORT" "inet:127.0.0.1:$NB_PORT"
sed -n '/^# --- from examples/,$p' "$WORK/postfix/etc/main.cf" | grep -vE '^#|^$' | sed 's/^/   /'

send() {
	swaks --server "127.0.0.1:$SMTP_PORT" --from sender@remote.test --to alice@example.test \
		--helo client.remote.test "$@" 2>&1 || true
}

bold "1. A clean message: Postfix answers 250 and delivers it"
send --header "Subject: Hello from the nobounce demo" \
	--body $'Hi Alice,\n\nthis message is clean.\n' | sed 's/^/   /'

EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR'
EICAR+='-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
bold "2. A message with the EICAR test virus: refused with 550 5.7.1 at the end of DATA"
send --header "Subject: Here is the virus" \
	--body $'Hi Alice,\n\n'"$EICAR"$'\n' | sed 's/^/   /'
note "" "The client's own server now tells its user. Postfix accepted nothing,"
note "so it has nothing to bounce."

bold "The delivered mail in Alice's mailbox (note the X-Virus-* headers)"
wait_until 10 bash -c "ls '$WORK/postfix/mail/example.test/alice/new/'* >/dev/null 2>&1" || true
for f in "$WORK"/postfix/mail/example.test/alice/new/*; do
	[[ -e $f ]] || { note "(nothing delivered?)"; break; }
	note "$f:" ""
	sed 's/^/   | /' "$f"
done

bold "nobounce's log: one line per message"
sed 's/^/   /' "$WORK/nobounce.log"

bold "Postfix's queue and log"
note "messages in the queue: $("$TESTBED/postfix.sh" queue "$WORK/postfix")"
grep -E 'milter-reject|status=sent' "$WORK/postfix/log/maillog" | sed 's/^/   /'

bold "Done: stopping nobounce, Postfix and clamd"
