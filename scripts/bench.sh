#!/usr/bin/env bash
# Write-path benchmark: the processor's POST /transactions driven over HTTP by many concurrent
# clients, beside pgbench's TPC-B-like script through the same PgBouncer, in the same run.
#   BENCH_DURATION=15 BENCH_CLIENTS=256 scripts/bench.sh    (BENCH_HOLDS=0: no hold+capture run)
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

# CPU accounting: clock ticks used by processes, read from /proc, so the comparison is per unit of
# work and holds even when other work shares the machine.
ticks() { # pids... -> utime+stime summed
	local t=0 p f
	for p in "$@"; do
		[[ -r /proc/$p/stat ]] || continue
		f=$(sed 's/^.*) //' "/proc/$p/stat")
		t=$((t + $(echo "$f" | awk '{ print $12 + $13 }')))
	done
	echo "$t"
}
pg_pids() { # the local PostgreSQL's backends and PgBouncer
	local pm; pm=$(head -1 "$(readlink -f "$STATE/run/postgres.pidref")")
	echo "$pm $(pgrep -P "$pm" | tr '\n' ' ')"
}
bouncer_pid() { cat "$STATE/run/pgbouncer.pid"; }
per_k() { # ticks, count -> CPU milliseconds per 1000
	awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", t * 1000 / hz * 1000 / n }'
}

psql_admin() { psql -h 127.0.0.1 -p "$PG_PORT" -U txn -d txn -qAt -v ON_ERROR_STOP=1 "$@"; }

# pgbench's reference: TPC-B-like, scale 10, through PgBouncer (simple protocol: transaction
# pooling cannot keep prepared statements).
if [[ -z $(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'bench_pgbench'") ]]; then
	psql_admin -c "CREATE DATABASE bench_pgbench"
	pgbench -h 127.0.0.1 -p "$PG_PORT" -U txn -i -s 10 -q bench_pgbench >/dev/null 2>&1
fi
echo "== pgbench TPC-B-like, scale 10, $PGBENCH_CLIENTS clients, ${DURATION}s, through PgBouncer"
pg0=$(ticks $(pg_pids)) pb0=$(ticks "$(bouncer_pid)")
pgbench -h 127.0.0.1 -p "$PGBOUNCER_PORT" -U txn -c "$PGBENCH_CLIENTS" -j 2 -T "$DURATION" -M simple bench_pgbench >"$STATE/pgbench.out" 2>&1 &
wait $!
pgbench_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$STATE/pgbench.out")
pgbench_n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$STATE/pgbench.out")
pg_cpu=$(per_k $(($(ticks $(pg_pids)) - pg0)) "$pgbench_n")
pb_cpu=$(per_k $(($(ticks "$(bouncer_pid)") - pb0)) "$pgbench_n")
echo "pgbench tps=$pgbench_tps; CPU ms per 1000 transactions: postgres $pg_cpu, pgbouncer $pb_cpu"

# The processor on a fresh database, as a separate process like in production; its events stay
# in its own outbox (no relay), so the benchmark does not flood the local pipeline.
psql_admin -c "DROP DATABASE IF EXISTS bench_processor WITH (FORCE)" -c "CREATE DATABASE bench_processor"
scripts/gobuild.sh "$STATE/bin/processor" processor
scripts/gobuild.sh "$STATE/bin/txbench" txbench
token=bench-$RANDOM$RANDOM
DATABASE_URL="postgres://txn:txn@127.0.0.1:$PGBOUNCER_PORT/bench_processor?default_query_exec_mode=cache_describe" \
	DATABASE_DIRECT_URL="postgres://txn:txn@127.0.0.1:$PG_PORT/bench_processor" \
	PROCESSOR_ADDR=127.0.0.1:$PORT RELAY_ENABLED=false PPROF_ADDR=${BENCH_PPROF_ADDR:-} TXN_ADMIN_TOKEN=$token RATE_LIMIT_RPS=10000000 REDIS_PREFIX=bench: LOG_LEVEL=warn \
	"$STATE/bin/processor" >>"$STATE/logs/processor-bench.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

batch_stats() { # -> "batches items seconds" so far, from the processor's metrics
	curl -fsS "http://127.0.0.1:$PORT/metrics" | awk '
		/^ledger_batch_size_count/ { n = $2 } /^ledger_batch_size_sum/ { items = $2 }
		/^ledger_batch_duration_seconds_sum/ { secs = $2 }
		END { printf "%d %d %f\n", n, items, secs }'
}

bench() { # label, txbench flags...
	local label=$1; shift
	echo "== processor: $label" >&2
	local pg0 pb0 pr0 n ready="$STATE/bench.ready"
	rm -f "$ready"
	"$STATE/bin/txbench" -url "http://127.0.0.1:$PORT" -token "$token" -clients "$CLIENTS" \
		-duration "${DURATION}s" -warmup 0s -ready "$ready" "$@" >"$STATE/bench.last" &
	local tb=$!
	while [[ ! -e $ready ]] && kill -0 $tb 2>/dev/null; do sleep 0.05; done
	# CPU from the end of the set-up (users, accounts, deposits) to the end of the load
	pg0=$(ticks $(pg_pids)) pb0=$(ticks "$(bouncer_pid)") pr0=$(ticks $pid)
	local b0 b1
	b0=$(batch_stats)
	wait $tb
	b1=$(batch_stats)
	cat "$STATE/bench.last" >&2
	echo "$b0 $b1" | awk '{ n = $4 - $1; if (n > 0) printf "batches: %d, %.1f requests each, %.1f ms each on average\n", n, ($5 - $2) / n, ($6 - $3) * 1000 / n }' >&2
	n=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' "$STATE/bench.last")
	local cpr cpg
	cpr=$(per_k $(($(ticks $pid) - pr0)) "$n") cpg=$(per_k $(($(ticks $(pg_pids)) - pg0)) "$n")
	echo "CPU ms per 1000 transfers: processor $cpr, postgres $cpg, pgbouncer $(per_k $(($(ticks "$(bouncer_pid)") - pb0)) "$n")" >&2
	echo "$(sed -n 's/^transfers\/s=\([0-9]*\).*/\1/p' "$STATE/bench.last") $((cpr + cpg))"
}
read -r uniform uniform_cpu < <(bench "transfers among 1000 accounts, $CLIENTS clients" -hot 0 | tail -1)
read -r hot _ < <(bench "every transfer credits one hot account" -hot 1 | tail -1)
if [[ ${BENCH_HOLDS:-1} == 1 ]]; then # 0 for a processor from before holds
	read -r holds holds_cpu < <(bench "a hold and its capture per transfer, among 1000 accounts" -hot 0 -holds | tail -1)
fi

echo
echo "== summary (same run)"
printf 'pgbench TPC-B-like through PgBouncer: %.0f tps\n' "$pgbench_tps"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf 'processor transfers/s, uniform:      %s (%sx pgbench)\n' "$uniform" "$(ratio "$uniform" "$pgbench_tps")"
printf 'processor transfers/s, hot account:  %s (%sx pgbench)\n' "$hot" "$(ratio "$hot" "$pgbench_tps")"
[[ -z ${holds:-} ]] || printf 'hold+capture pairs/s, uniform:        %s (%sx the transfers/s; CPU per pair, processor+postgres, %sx a transfer'"'"'s)\n' \
	"$holds" "$(ratio "$holds" "$uniform")" "$(ratio "$holds_cpu" "$uniform_cpu")"
