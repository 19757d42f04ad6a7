#!/usr/bin/env bash
# The whole system under load, as `make up` runs it: a private copy of the local system (its own
# state directory and ports, so a running one is left alone) is started from scratch, the
# loadtest service is run at each rate through its API, and cmd/sysbench prints per rate the
# run's figures, when the downstream effects landed, and CPU µs per transaction per component.
#   BENCH_RATES=1000,2000,3000,4000,5000 BENCH_DURATION=60 BENCH_USERS=1000 scripts/bench-system.sh
# BENCH_KEEP=1 leaves the system running afterwards (stop it with STATE_DIR=... scripts/stack.sh down).
# BENCH_WORKERS=N has N load workers (`loadtest worker`, started beside it) send each run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PRIVATE_NAME=bench-system PRIVATE_PORT_BASE=1 source scripts/private-stack.sh
[[ ${BENCH_KEEP_DATA:-0} == 1 ]] || private_fresh
[[ ${BENCH_KEEP:-0} == 1 ]] || trap private_down EXIT
LOADTEST_WORKERS=${BENCH_WORKERS:-0} scripts/stack.sh up >&2
token=$(scripts/stack.sh env | sed -n 's/^TXN_ADMIN_TOKEN=//p')
scripts/gobuild.sh "$STATE_DIR/bin/sysbench" sysbench

echo "== whole system, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$STATE_DIR/bin/sysbench" -state "$STATE_DIR" -token "$token" -loadtest "http://$LOADTEST_ADDR" \
	-consumer "http://$CONSUMER_ADDR" -notifier "http://$NOTIFIER_ADDR" \
	-rates "${BENCH_RATES:-1000,2000,3000,4000,5000}" -duration "${BENCH_DURATION:-60}" -users "${BENCH_USERS:-1000}" \
	-workers "${BENCH_WORKERS:-0}"
