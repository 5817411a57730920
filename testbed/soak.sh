#!/usr/bin/env bash
# testbed/soak.sh — `make soak` / `make soak-short`: the soak and fault suite.
#
#   1. soak/ (build tag soak): real Postfix, real clamd and the nobounce binary
#      on loopback (see soak/bed_test.go): 10 000 messages with 200 concurrent
#      SMTP sessions; 10 000 sessions aborted mid-body; SIGHUP and SIGTERM
#      under load; clamd killed, refusing and hung under load.
#   2. go test -fuzz FuzzPackets (milter/) for SOAK_FUZZTIME (10m), seeded
#      with real Postfix and Sendmail traffic (milter/testdata/fuzz/FuzzPackets,
#      recorded with soak/milterrec).
#
# SOAK_SHORT=1 is the CI-sized version (under 3 minutes: 1 000 messages,
# 1 000 aborts, 20 s of fuzzing). SOAK_KEEP=1 keeps the work folder.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO"
exec </dev/null
bash testbed/install.sh
corpus=$(bash testbed/corpus.sh)/data
if [[ -n ${SOAK_SHORT:-} ]]; then
	fuzztime=${SOAK_FUZZTIME:-20s}
	timeout=10m
else
	fuzztime=${SOAK_FUZZTIME:-10m}
	timeout=60m
fi
start=$SECONDS
status=0
if SOAK_CORPUS=$corpus go test -tags soak -count=1 -timeout "$timeout" -v ./soak/ 2>&1 |
	grep --line-buffered -vE '^=== (RUN|PAUSE|CONT)'; then
	echo "soak: scenarios passed in $((SECONDS - start)) s"
else
	echo "soak: scenarios FAILED after $((SECONDS - start)) s"
	status=1
fi
if [[ $fuzztime != 0 ]]; then
	echo "soak: fuzzing FuzzPackets for $fuzztime"
	if ! go test -run '^$' -fuzz '^FuzzPackets$' -fuzztime "$fuzztime" -fuzzminimizetime 5s ./milter/ 2>&1 |
		awk '/elapsed/ { last = $0; n++; if (n % 20 == 0) print; next } { print } END { if (last) print last }'; then
		echo "soak: fuzzing FAILED"
		status=1
	fi
fi
echo "soak: done in $((SECONDS - start)) s"
exit $status
