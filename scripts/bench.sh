#!/usr/bin/env bash
# Write-path benchmark: the processor's POST /transactions driven over HTTP by many concurrent
# clients, beside pgbench's TPC-B-like script through the same PgBouncer, in the same run.
#   BENCH_DURATION=15 BENCH_CLIENTS=256 scripts/bench.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE=${STATE_DIR:-$ROOT/.state}
DURATION=${BENCH_DURATION:-15}
CLIENTS=${BENCH_CLIENTS:-256}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-8}
PORT=${BENCH_PORT:-18000}

scripts/stack.sh servers
set -a
# shellcheck disable=SC1090
source <(scripts/stack.sh env)
set +a
PG_PORT=${PG_PORT:-55432}
PGBOUNCER_PORT=${PGBOUNCER_PORT:-56432}
export PGPASSWORD=txn

psql_admin() { psql -h 127.0.0.1 -p "$PG_PORT" -U txn -d txn -qAt -v ON_ERROR_STOP=1 "$@"; }

# pgbench's reference: TPC-B-like, scale 10, through PgBouncer (simple protocol: transaction
# pooling cannot keep prepared statements).
if [[ -z $(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'bench_pgbench'") ]]; then
	psql_admin -c "CREATE DATABASE bench_pgbench"
	pgbench -h 127.0.0.1 -p "$PG_PORT" -U txn -i -s 10 -q bench_pgbench >/dev/null 2>&1
fi
echo "== pgbench TPC-B-like, scale 10, $PGBENCH_CLIENTS clients, ${DURATION}s, through PgBouncer"
pgbench_tps=$(pgbench -h 127.0.0.1 -p "$PGBOUNCER_PORT" -U txn -c "$PGBENCH_CLIENTS" -j 2 -T "$DURATION" -M simple bench_pgbench 2>/dev/null |
	sed -n 's/^tps = \([0-9.]*\).*/\1/p')
echo "pgbench tps=$pgbench_tps"

# The processor on a fresh database, as a separate process like in production.
psql_admin -c "DROP DATABASE IF EXISTS bench_processor WITH (FORCE)" -c "CREATE DATABASE bench_processor"
go build -o "$STATE/bin/processor" ./cmd/processor
go build -o "$STATE/bin/txbench" ./cmd/txbench
token=bench-$RANDOM$RANDOM
DATABASE_URL="postgres://txn:txn@127.0.0.1:$PGBOUNCER_PORT/bench_processor?default_query_exec_mode=cache_describe" \
	DATABASE_DIRECT_URL="postgres://txn:txn@127.0.0.1:$PG_PORT/bench_processor" \
	PROCESSOR_ADDR=127.0.0.1:$PORT PPROF_ADDR=${BENCH_PPROF_ADDR:-} TXN_ADMIN_TOKEN=$token RATE_LIMIT_RPS=10000000 REDIS_PREFIX=bench: LOG_LEVEL=warn \
	"$STATE/bin/processor" >>"$STATE/logs/processor-bench.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

bench() { # label, txbench flags...
	local label=$1; shift
	echo "== processor: $label"
	"$STATE/bin/txbench" -url "http://127.0.0.1:$PORT" -token "$token" -clients "$CLIENTS" \
		-duration "${DURATION}s" "$@" | tee "$STATE/bench.last" >&2
	sed -n 's/^transfers\/s=\([0-9]*\).*/\1/p' "$STATE/bench.last"
}
uniform=$(bench "transfers among 1000 accounts, $CLIENTS clients" -hot 0 | tail -1)
hot=$(bench "every transfer credits one hot account" -hot 1 | tail -1)
curl -fsS "http://127.0.0.1:$PORT/metrics" | grep -E '^ledger_batch_size_(sum|count)' || true

echo
echo "== summary (same run)"
printf 'pgbench TPC-B-like through PgBouncer: %.0f tps\n' "$pgbench_tps"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf 'processor transfers/s, uniform:      %s (%sx pgbench)\n' "$uniform" "$(ratio "$uniform" "$pgbench_tps")"
printf 'processor transfers/s, hot account:  %s (%sx pgbench)\n' "$hot" "$(ratio "$hot" "$pgbench_tps")"
