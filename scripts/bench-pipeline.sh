#!/usr/bin/env bash
# Pipeline benchmark: how fast committed events travel outbox -> relay -> Kafka -> consumer ->
# ClickHouse, and how far behind the pipeline falls under the write-path benchmark's load.
#   BENCH_EVENTS=200000 BENCH_DURATION=20 scripts/bench-pipeline.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE=${STATE_DIR:-$ROOT/.state}
EVENTS=${BENCH_EVENTS:-200000}
DURATION=${BENCH_DURATION:-20}
CLIENTS=${BENCH_CLIENTS:-256}
PORT=18000 RELAY_PORT=18004 CONSUMER_PORT=18002

scripts/stack.sh servers
set -a
# shellcheck disable=SC1090
source <(scripts/stack.sh env)
set +a
export PGPASSWORD=txn
PG="psql -h 127.0.0.1 -p ${PG_PORT:-55432} -U txn -qAt -v ON_ERROR_STOP=1"
run=bench$(date +%s)
for b in processor relay consumer txbench; do scripts/gobuild.sh "$STATE/bin/$b" "$b"; done
$PG -d txn -c "CREATE DATABASE $run"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	$PG -d txn -c "DROP DATABASE IF EXISTS $run WITH (FORCE)" >/dev/null 2>&1 || true
	clickhouse-client --port "${CLICKHOUSE_PORT:-59000}" -q "DROP DATABASE IF EXISTS $run" >/dev/null 2>&1 || true
}
trap cleanup EXIT

common=(KAFKA_TOPIC=$run MONGO_URL=mongodb://127.0.0.1:${MONGO_PORT:-57017}/$run CLICKHOUSE_DATABASE=$run
	RABBITMQ_EXCHANGE=$run RABBITMQ_QUEUE=$run LOG_LEVEL=warn)
direct="postgres://txn:txn@127.0.0.1:${PG_PORT:-55432}/$run"
start() { # name, env...
	local name=$1; shift
	env "${common[@]}" "$@" "$STATE/bin/$name" >>"$STATE/logs/$name-bench.log" 2>&1 &
	pids+=($!)
}
metric() { curl -fsS "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 ~ "^"m { s += $2 } END { printf "%d", s }'; }
ch_count() {
	clickhouse-client --port "${CLICKHOUSE_PORT:-59000}" -q "SELECT count() FROM $run.transactions FINAL" 2>/dev/null || echo 0
}

# The processor migrates the database and stays up for part (b); its own relay is off.
start processor PROCESSOR_ADDR=127.0.0.1:$PORT TXN_ADMIN_TOKEN=bench RATE_LIMIT_RPS=0 RELAY_ENABLED=false \
	DATABASE_URL="postgres://txn:txn@127.0.0.1:${PGBOUNCER_PORT:-56432}/$run?default_query_exec_mode=cache_describe" \
	DATABASE_DIRECT_URL="$direct"
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== (a) drain: $EVENTS events preloaded into the outbox"
$PG -d "$run" -c "INSERT INTO outbox (event_id, key, payload)
	SELECT e, a::text, json_build_object('version', 1, 'id', e, 'type', 'transaction.completed',
		'occurred_at', now(), 'transaction', json_build_object('id', gen_random_uuid(), 'type', 'transfer',
		'from_account_id', a, 'to_account_id', b, 'from_user_id', gen_random_uuid(), 'to_user_id', gen_random_uuid(),
		'amount', 100, 'currency', 'USD', 'description', '', 'created_at', now()))
	FROM (SELECT gen_random_uuid() e, gen_random_uuid() a, gen_random_uuid() b FROM generate_series(1, $EVENTS)) x"
t0=$(date +%s.%N)
start relay DATABASE_DIRECT_URL="$direct" RELAY_ADDR=127.0.0.1:$RELAY_PORT
start consumer CONSUMER_ADDR=127.0.0.1:$CONSUMER_PORT CONSUMER_GROUP_PREFIX=$run-
relayed_at=""
while :; do
	n=$(ch_count)
	left=$($PG -d "$run" -c "SELECT count(*) FROM outbox")
	[[ -z $relayed_at && $left == 0 ]] && relayed_at=$(date +%s.%N)
	[[ $n -ge $EVENTS ]] && break
	sleep 0.2
done
t1=$(date +%s.%N)
drain=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
relay_s=$(awk -v a="$t0" -v b="$relayed_at" 'BEGIN { printf "%.1f", b - a }')
echo "relayed $EVENTS in ${relay_s}s ($(awk -v n="$EVENTS" -v s="$relay_s" 'BEGIN { printf "%.0f", n / s }') events/s outbox -> Kafka)"
echo "in ClickHouse after ${drain}s ($(awk -v n="$EVENTS" -v s="$drain" 'BEGIN { printf "%.0f", n / s }') events/s outbox -> ClickHouse)"

# Every group (activity to MongoDB and tasks to RabbitMQ are slower than analytics) works off
# the preload before (b) starts, so (b) measures the pipeline under the write load alone.
while (($(metric $CONSUMER_PORT 'consumer_lag_records') > 0)) || (($(metric $CONSUMER_PORT 'consumer_events_total') < 3 * EVENTS)); do
	sleep 1
done
all=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "all three groups done after ${all}s (activity and notification tasks are 2 per event)"

echo "== (b) lag under the write benchmark: $CLIENTS clients for ${DURATION}s"
base=$(ch_count)
"$STATE/bin/txbench" -url "http://127.0.0.1:$PORT" -token bench -clients "$CLIENTS" -duration "${DURATION}s" >"$STATE/bench-pipeline.txbench" 2>&1 &
tb=$!
max_relay=0 max_consumer=0
while kill -0 $tb 2>/dev/null; do
	r=$(curl -fsS "http://127.0.0.1:$RELAY_PORT/metrics" | awk '$1 == "relay_lag_seconds" { print $2 }')
	c=$(metric $CONSUMER_PORT 'consumer_lag_records\{group="'"$run"'-analytics"')
	max_relay=$(awk -v a="$max_relay" -v b="${r:-0}" 'BEGIN { print (b > a) ? b : a }')
	((c > max_consumer)) && max_consumer=$c
	sleep 1
done
cat "$STATE/bench-pipeline.txbench" | grep transfers/s
end=$(date +%s.%N)
want=$(($($PG -d "$run" -c "SELECT count(*) FROM transactions") + 0))
while (($(ch_count) - base < want)); do sleep 0.1; done
caught=$(awk -v a="$end" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
echo "max relay lag ${max_relay}s, max analytics consumer lag $max_consumer records (sampled each second)"
echo "every transaction of the run was in ClickHouse ${caught}s after the load stopped ($want transactions)"
