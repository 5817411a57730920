#!/usr/bin/env bash
# testbed/compare.sh — `make bench-compare`: nobounce beside the milters in use,
# in one invocation, with the same scanner daemons, the same messages and the
# same concurrency, alternating runs (cmd/nobounce-bench -compare), ratios
# printed, and the chart drawn into docs/benchmarks-compare.svg.
#
#   nobounce (clamd)       vs clamav-milter (OnInfected Reject, same clamd)
#   nobounce (no scanner)  vs cmd/noop-milter (go-milter's NoOpMilter: the floor)
#   nobounce (spamd)       vs spamass-milter (same spamd)         [when nobounce has -spamd]
#   nobounce (rspamd)      vs rspamd's proxy worker, milter mode  [when nobounce has -rspamd]
#                             (same normal worker)
#   nobounce (clamd), 200 concurrent 10 MB messages: peak RSS
#
# Messages: the SpamAssassin public corpus (testbed/corpus.sh), one per milter
# connection as from separate SMTP clients, EICAR added to every 50th in the
# clamd comparison. Everything runs on loopback and is stopped on exit.
#
# Environment: ROUNDS (5), MESSAGES (1000 per run for clamd and the floor),
# SPAM_MESSAGES (300), SESSIONS (16), BIG_SESSIONS (200), OUT (a folder for
# the JSON files and the log; default a temporary one, kept), CHART
# (docs/benchmarks-compare.svg), ONLY (space-separated subset of:
# floor clamd spamd rspamd memory).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO"
exec </dev/null

ROUNDS=${ROUNDS:-5}
MESSAGES=${MESSAGES:-1000}
SPAM_MESSAGES=${SPAM_MESSAGES:-300}
SESSIONS=${SESSIONS:-16}
BIG_SESSIONS=${BIG_SESSIONS:-200}
CHART=${CHART:-docs/benchmarks-compare.svg}
ONLY=${ONLY:-floor clamd spamd rspamd memory}
OUT=${OUT:-$(mktemp -d /tmp/nobounce-compare-out.XXXXXX)}
mkdir -p "$OUT"
wants() { [[ " $ONLY " == *" $1 "* ]]; }

bash testbed/install.sh
CORPUS=$(bash testbed/corpus.sh)/data
work=$(mktemp -d /tmp/nobounce-compare.XXXXXX)
chmod 755 "$work"
pids=()
peers=()
cleanup() {
	local p
	for p in "${pids[@]}"; do stop_pid "$p" 10; done
	for p in "${peers[@]}"; do bash testbed/peers.sh $p >/dev/null 2>&1 || true; done
	[[ -n ${RSPAMD_DIR:-} ]] && bash testbed/rspamd.sh stop "$RSPAMD_DIR" >/dev/null 2>&1 || true
	bash testbed/spamd.sh stop "$work/spamd" >/dev/null 2>&1 || true
	bash testbed/clamd.sh stop "$work/clamd" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

go build -o "$work/nobounce" ./cmd/nobounce
go build -o "$work/nobounce-bench" ./cmd/nobounce-bench
BENCH=$work/nobounce-bench
has_flag() {
	local h
	h=$("$work/nobounce" serve -h 2>&1 || true) # -h exits 3
	grep -q -- "^ *-$1 " <<<"$h"
}

# nobounce NAME CONFIG-LINES: start nobounce with a config of its own; T is
# its target for nobounce-bench (SOCKET,pid=PID).
nobounce() {
	local name=$1 conf=$2 port
	port=$(freeport)
	printf 'listen = "inet:127.0.0.1:%s"\nmax_sessions = 250\n%s\n' "$port" "$conf" >"$work/$name.toml"
	"$work/nobounce" config check "$work/$name.toml" >/dev/null || die "config of $name" "$work/$name.toml"
	setsid "$work/nobounce" serve -config "$work/$name.toml" 2>"$OUT/$name.log" &
	pids+=($!)
	wait_until 30 port_open 127.0.0.1 "$port" || die "$name did not listen" "$OUT/$name.log"
	T="inet:127.0.0.1:$port,pid=${pids[-1]}"
}

# peer KIND ARGS...: start a peer with testbed/peers.sh; T is its target.
peer() {
	local kind=$1 port
	shift
	port=$(freeport)
	peers+=("$kind stop $work/$kind")
	bash testbed/peers.sh "$kind" start "$work/$kind" "$port" "$@"
	T="inet:127.0.0.1:$port,pid=$(bash testbed/peers.sh "$kind" pid "$work/$kind")"
}

compare() { # TITLE GOALS ARGS...
	local title=$1 goals=$2
	shift 2
	echo
	echo "######## $title"
	local json
	json=$OUT/$(echo "$title" | tr -c 'a-zA-Z0-9\n' '-').json
	jsons+=("$json")
	"$BENCH" -compare -title "$title" -goals "$goals" -rounds "$ROUNDS" -per-conn 1 \
		-json "$json" "$@" || status=1
}
status=0
jsons=()
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(go version), $(clamd --version 2>/dev/null)"
echo "results: $OUT"

if wants floor; then
	nobounce nb-none $'[clamd]\naddresses = []'
	nb=$T
	peer noop-milter
	noop=$T
	compare "no scanner: the protocol floor" "rate>=0.8" -sessions "$SESSIONS" -messages "$MESSAGES" \
		-corpus "$CORPUS" -target "nobounce=$nb" -target "go-milter NoOpMilter=$noop"
fi

if wants clamd || wants memory; then
	bash testbed/clamd.sh start "$work/clamd"
	sock=$work/clamd/clamd.sock
	nobounce nb-clamd "[clamd]
addresses = [\"unix:$sock\"]"
	nbc=$T
fi
if wants clamd; then
	peer clamav-milter "$sock"
	cm=$T
	compare "clamd" "rate>=2,p99<=0.5" -sessions "$SESSIONS" -messages "$MESSAGES" -eicar 50 \
		-corpus "$CORPUS" -target "nobounce=$nbc" -target "clamav-milter=$cm"
	compare "clamd, 1 session" "" -sessions 1 -messages $((MESSAGES / 4)) -eicar 50 \
		-corpus "$CORPUS" -target "nobounce=$nbc" -target "clamav-milter=$cm"
	echo
	echo "######## clamd scanned directly (the ceiling: no milter), then nobounce, same messages"
	"$BENCH" -milter "${nbc%%,pid=*}" -clamd "unix:$sock" -sessions "$SESSIONS" -messages "$MESSAGES" \
		-per-conn 1 -eicar 50 -corpus "$CORPUS" || status=1
fi

if wants spamd; then
	if has_flag spamd && [[ -f testbed/spamd.sh ]]; then
		sport=$(freeport)
		SPAMD_CHILDREN=${SPAMD_CHILDREN:-4} bash testbed/spamd.sh start "$work/spamd" "$sport"
		nobounce nb-spamd "[clamd]
addresses = []
[spamd]
addresses = [\"inet:127.0.0.1:$sport\"]"
		nbs=$T
		peer spamass-milter "$sport"
		sam=$T
		compare "spamd" "rate>=1.5" -sessions "$SESSIONS" -messages "$SPAM_MESSAGES" -warmup 20 \
			-corpus "$CORPUS" -target "nobounce=$nbs" -target "spamass-milter=$sam"
	else
		echo; echo "######## spamd: skipped (nobounce serve has no -spamd yet, or testbed/spamd.sh is missing)"
	fi
fi

if wants rspamd; then
	if has_flag rspamd && [[ -f testbed/rspamd.sh ]]; then
		RSPAMD_DIR=$work/rspamd
		rport=$(freeport)
		bash testbed/rspamd.sh start "$RSPAMD_DIR" "$rport"
		nobounce nb-rspamd "[clamd]
addresses = []
[rspamd]
urls = [\"http://127.0.0.1:$rport\"]"
		nbr=$T
		peer rspamd-proxy "127.0.0.1:$rport"
		# The milter is the proxy worker, not rspamd's main process (which,
		# like the normal worker's, is there in any rspamd deployment).
		rpmain=${T##*pid=}
		rpworker=$(pgrep -P "$rpmain" -f 'rspamd_proxy' | head -n1)
		rp=${T%%,pid=*},pid=${rpworker:-$rpmain}
		compare "rspamd" "rate>=1.0" -sessions "$SESSIONS" -messages "$SPAM_MESSAGES" -warmup 20 \
			-corpus "$CORPUS" -target "nobounce=$nbr" -target "rspamd proxy (milter)=$rp"
	else
		echo; echo "######## rspamd: skipped (nobounce serve has no -rspamd yet, or testbed/rspamd.sh is missing)"
	fi
fi

if wants memory; then
	ROUNDS=1 compare "200 concurrent 10 MB messages (clamd)" "rss<=150MB" -warmup 0 \
		-sessions "$BIG_SESSIONS" -messages "$BIG_SESSIONS" -size 10MB -timeout 10m -target "nobounce=$nbc"
fi

echo
"$BENCH" -chart "$CHART" "${jsons[@]}" >"$OUT/summary.md"
echo "chart: $CHART; summary: $OUT/summary.md"
exit $status
