#!/usr/bin/env bash
# make chaos: a load run through the loadtest API on the running local system (`make up`) while
# each server and service is SIGKILLed in turn and brought back with `scripts/stack.sh up`.
# Per fault it prints how long `make up` took to bring the component back; afterwards the run's
# verification (money, every effect downstream) and the requests the faults made fail.
#   CHAOS_RATE=300 CHAOS_USERS=100 CHAOS_GAP=15 CHAOS_TARGETS="postgres redis ..." scripts/chaos.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE=${STATE_DIR:-$ROOT/.state}
rate=${CHAOS_RATE:-300} users=${CHAOS_USERS:-100} gap=${CHAOS_GAP:-15}
read -r -a targets <<<"${CHAOS_TARGETS:-postgres pgbouncer redis rabbitmq clickhouse kafka mongo processor consumer notifier}"
token=$(scripts/stack.sh env | sed -n 's/^TXN_ADMIN_TOKEN=//p')
addr=$(scripts/stack.sh env | sed -n 's/^LOADTEST_ADDR=//p')
api=http://${addr:-127.0.0.1:8001}/api/v1
call() { curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
field() { python3 -c 'import json,sys; v=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"r": v}))' "$1"; }

# pid_of prints the pid to kill for a target: the PostgreSQL postmaster, or the pid file's.
pid_of() {
	case $1 in
	postgres) head -1 "$STATE/run/postgres.pidref" ;;
	*) cat "$STATE/run/$1.pid" ;;
	esac
}

duration=$(((${#targets[@]} + 1) * gap))
run=$(call -X POST -d "{\"users\":$users,\"rate\":$rate,\"duration_s\":$duration}" "$api/runs" | field 'r["id"]')
echo "run $run: $rate/s for ${duration}s, $users users; killing one component every ${gap}s"
start=$(date +%s)
for t in "${targets[@]}"; do
	sleep "$gap"
	pid=$(pid_of "$t")
	at=$(($(date +%s) - start))
	kill -9 "$pid"
	t0=$(date +%s.%N)
	scripts/stack.sh up >/dev/null 2>&1 || echo "  $t: make up failed"
	back=$(echo "$(date +%s.%N) - $t0" | bc)
	printf '  %-10s killed at %4ss, back after %.1fs\n' "$t" "$at" "$back"
done
until [[ $(call "$api/runs/$run" | field 'r["phase"]') == done ]]; do sleep 2; done
call "$api/runs/$run" >"$STATE/chaos-run.json"

# PostgreSQL's transactions of the run against ClickHouse's rows, one by one (the verification
# waited for the analytics to catch up).
env_of() { scripts/stack.sh env | sed -n "s/^$1=//p"; }
prefix="loadtest:$run:"
psql "$(env_of DATABASE_DIRECT_URL)" -qAtc "SELECT id FROM transactions WHERE description LIKE '$prefix%'" |
	sort >"$STATE/chaos-pg.txt"
ch=$(env_of CLICKHOUSE_ADDR)
clickhouse-client --host "${ch%:*}" --port "${ch##*:}" -d txn -q \
	"SELECT transaction_id, count() FROM transactions FINAL WHERE startsWith(description, '$prefix') GROUP BY transaction_id" |
	sort >"$STATE/chaos-ch.txt"
missing=$(cut -f1 "$STATE/chaos-ch.txt" | comm -23 "$STATE/chaos-pg.txt" - | wc -l)
extra=$(cut -f1 "$STATE/chaos-ch.txt" | comm -13 "$STATE/chaos-pg.txt" - | wc -l)
twice=$(awk -F'\t' '$2 > 1' "$STATE/chaos-ch.txt" | wc -l)
echo "PostgreSQL holds $(wc -l <"$STATE/chaos-pg.txt") of the run's transactions; ClickHouse misses $missing, has $extra unknown to PostgreSQL, $twice twice"
python3 - "$STATE/chaos-run.json" "$rate" <<'PY'
import json, sys
run = json.load(open(sys.argv[1])); rate = int(sys.argv[2])
v = run.get("verification") or {}
print(f"sent {run['sent']}, ok {run['ok']}, failed {run['failed']}, verification {'ok' if v.get('ok') else 'FAILED'}")
for p in v.get("problems") or []:
    print("  problem:", p)
errors = run.get("errors") or {}
print("failed requests by code:", ", ".join(f"{k} {n}" for k, n in sorted(errors.items())) or "none")
faulty = sum(n for k, n in errors.items() if k not in ("insufficient_funds",))
print(f"failed by the faults (all but insufficient_funds, a refusal the random mix makes anyway): {faulty} "
      f"requests, {faulty / max(run['sent'], 1) * 100:.2f} % of those sent; at {rate}/s that is {faulty / rate:.1f} s of traffic (goal <= 5 s)")
sys.exit(0 if v.get("ok") else 1)
PY
[[ $missing == 0 && $extra == 0 && $twice == 0 ]]
