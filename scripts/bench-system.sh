#!/usr/bin/env bash
# The whole system under load, as `make up` runs it: a private copy of the local system (its own
# state directory and ports, so a running one is left alone) is started from scratch, the
# loadtest service is run at each rate through its API, and cmd/sysbench prints per rate the
# run's figures, when the downstream effects landed, and CPU µs per transaction per component.
#   BENCH_RATES=1000,2000,3000,4000,5000 BENCH_DURATION=60 BENCH_USERS=1000 scripts/bench-system.sh
# BENCH_KEEP=1 leaves the system running afterwards (stop it with STATE_DIR=... scripts/stack.sh down).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export STATE_DIR=${BENCH_STATE_DIR:-$ROOT/.state/bench-system}
export PG_PORT=${BENCH_PG_PORT:-45432} PGBOUNCER_PORT=${BENCH_PGBOUNCER_PORT:-46432} REDIS_PORT=${BENCH_REDIS_PORT:-46379}
export KAFKA_PORT=${BENCH_KAFKA_PORT:-49092} MONGO_PORT=${BENCH_MONGO_PORT:-47017}
export CLICKHOUSE_PORT=${BENCH_CLICKHOUSE_PORT:-49000}
export CLICKHOUSE_HTTP_PORT=$((CLICKHOUSE_PORT + 1)) CLICKHOUSE_INTERSERVER_PORT=$((CLICKHOUSE_PORT + 2))
export RABBITMQ_PORT=${BENCH_RABBITMQ_PORT:-45672} RABBITMQ_MANAGEMENT=0
port=${BENCH_SERVICE_PORT:-18100}
export PROCESSOR_ADDR=127.0.0.1:$port PROCESSOR_URL=http://127.0.0.1:$port LOADTEST_ADDR=127.0.0.1:$((port + 1))
export CONSUMER_ADDR=127.0.0.1:$((port + 2)) NOTIFIER_ADDR=127.0.0.1:$((port + 3))
export LOG_LEVEL=${LOG_LEVEL:-warn}

if [[ ${BENCH_KEEP_DATA:-0} != 1 ]]; then
	scripts/stack.sh down 2>/dev/null || true
	rm -rf "$STATE_DIR"
	# PostgreSQL's data may live outside the state directory (see pg_home in stack.sh).
	rm -rf "/var/tmp/txn-$(printf '%s' "$STATE_DIR" | cksum | cut -d' ' -f1)"
fi
[[ ${BENCH_KEEP:-0} == 1 ]] || trap 'scripts/stack.sh down >/dev/null 2>&1 || true' EXIT
scripts/stack.sh up >&2
token=$(scripts/stack.sh env | sed -n 's/^TXN_ADMIN_TOKEN=//p')
go build -o "$STATE_DIR/bin/sysbench" ./cmd/sysbench

echo "== whole system, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$STATE_DIR/bin/sysbench" -state "$STATE_DIR" -token "$token" -loadtest "http://$LOADTEST_ADDR" \
	-consumer "http://$CONSUMER_ADDR" -notifier "http://$NOTIFIER_ADDR" \
	-rates "${BENCH_RATES:-1000,2000,3000,4000,5000}" -duration "${BENCH_DURATION:-60}" -users "${BENCH_USERS:-1000}"
