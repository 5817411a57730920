#!/usr/bin/env bash
# testbed/bench.sh — the foundation's figures: time from the end of message to
# nobounce's reply for 1 MB and 10 MB messages, and nobounce's peak RSS with
# 50 concurrent 10 MB messages. Each run scans the same messages directly with
# clamd first (same process, same concurrency) and prints the ratio, so a
# noisy machine shows in both numbers alike.
set -euo pipefail
cd "$(dirname "$0")/.."
bash testbed/install.sh
work=$(mktemp -d /tmp/nobounce-bench.XXXXXX)
pid=
cleanup() {
	[[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	bash testbed/clamd.sh stop "$work/clamd" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/nobounce" ./cmd/nobounce
go build -o "$work/nobounce-bench" ./cmd/nobounce-bench
bash testbed/clamd.sh start "$work/clamd"
sock=unix:$work/clamd/clamd.sock
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/nobounce" serve -listen "inet:127.0.0.1:$port" -clamd "$sock" 2>"$work/nobounce.log" &
pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
run() { echo; echo "### $*"; "$work/nobounce-bench" -milter "inet:127.0.0.1:$port" -clamd "$sock" -pid "$pid" "$@"; }
run -sessions 1 -messages 30 -size 1MB
run -sessions 1 -messages 10 -size 10MB
run -sessions 50 -messages 50 -size 10MB
