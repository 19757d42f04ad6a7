#!/usr/bin/env bash
# make chaos: a load run through the loadtest API on the running local system (`make up`) while
# each server and service is SIGKILLed in turn and brought back with `scripts/stack.sh up`.
# Per fault it prints how long `make up` took to bring the component back; afterwards the requests
# each fault made fail, the run's verification (money, analytics), and `loadtest audit`: the
# run's transactions compared one by one with analytics rows, activity items and notifications.
#   CHAOS_RATE=300 CHAOS_USERS=100 CHAOS_GAP=15 CHAOS_TARGETS="postgres redis ..." scripts/chaos.sh
# CHAOS_PRIVATE=1 runs it on a private copy of the system started from scratch (and stopped
# after), beside whatever `make up` runs: the short version `make test` runs. With HA=1 the
# target "primary" is the PostgreSQL node that accepts writes (make failover).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [[ ${CHAOS_PRIVATE:-0} == 1 ]]; then
	if [[ ${HA:-0} == 1 ]]; then
		PRIVATE_NAME=chaos-ha PRIVATE_PORT_BASE=4 source scripts/private-stack.sh
	else
		PRIVATE_NAME=chaos PRIVATE_PORT_BASE=2 source scripts/private-stack.sh
	fi
	private_fresh
	trap private_down EXIT
	scripts/stack.sh up >/dev/null
fi
STATE=${STATE_DIR:-$ROOT/.state}
rate=${CHAOS_RATE:-300} users=${CHAOS_USERS:-100} gap=${CHAOS_GAP:-15}
read -r -a targets <<<"${CHAOS_TARGETS:-postgres pgbouncer redis rabbitmq clickhouse kafka mongo processor consumer notifier}"
set -a
source <(scripts/stack.sh env)
set +a
api=http://${LOADTEST_ADDR:-127.0.0.1:8001}/api/v1
call() { curl -fsS -H "Authorization: Bearer $TXN_ADMIN_TOKEN" -H 'Content-Type: application/json' "$@"; }
field() { python3 -c 'import json,sys; v=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"r": v}))' "$1"; }

# pid_of prints what to kill for a target: the PostgreSQL postmaster; with HA=1, "primary": the
# session (keeper and PostgreSQL, as a lost machine) of the node that accepts writes now, as a
# process group; or the pid file's.
pid_of() {
	local node
	case $1 in
	postgres) head -1 "$STATE/run/postgres.pidref" ;;
	primary)
		node=$(scripts/stack.sh ha-primary) || { echo "no node accepts writes" >&2; return 1; }
		echo "-$(cat "$STATE/run/pgnode$node.pid")"
		;;
	*) cat "$STATE/run/$1.pid" ;;
	esac
}

# The run is stopped a gap after the last fault: restarts take from one to tens of seconds.
run=$(call -X POST -d "{\"users\":$users,\"rate\":$rate,\"duration_s\":3600}" "$api/runs" | field 'r["id"]')
echo "run $run: $rate/s, $users users; killing one component every ${gap}s after the last is back"
until [[ $(call "$api/runs/$run" | field 'r["status"]') == running ]]; do sleep 1; done
start=$(date +%s)
: >"$STATE/chaos-faults.txt"
for t in "${targets[@]}"; do
	sleep "$gap"
	pid=$(pid_of "$t")
	at=$(date +%s.%N)
	kill -9 -- "$pid"
	scripts/stack.sh up >/dev/null 2>&1 || echo "  $t: make up failed"
	back=$(echo "$(date +%s.%N) - $at" | bc)
	echo "$t $at $back" >>"$STATE/chaos-faults.txt"
	printf '  %-10s killed at %4.0fs, back after %.1fs\n' "$t" "$(echo "$at - $start" | bc)" "$back"
done
sleep "$gap"
call -X POST "$api/runs/$run/stop" >/dev/null
until [[ $(call "$api/runs/$run" | field 'r["phase"]') == done ]]; do sleep 2; done
call "$api/runs/$run" >"$STATE/chaos-run.json"

# The run's failures per second from its request log, each second counted against the last
# fault before it; refusals the random mix makes anyway (insufficient funds...) are not failures.
ch=$CLICKHOUSE_ADDR
clickhouse-client --host "${ch%:*}" --port "${ch##*:}" -d txn -q "
	SELECT intDiv(sent_us, 1000000) AS s, error_code, count() FROM loadtest_requests
	WHERE run_id = '$run' AND status NOT IN (200, 201, 422) GROUP BY s, error_code ORDER BY s" \
	>"$STATE/chaos-failures.txt"
python3 - "$STATE/chaos-run.json" "$rate" "$STATE/chaos-faults.txt" "$STATE/chaos-failures.txt" "${CHAOS_GOAL_S:-5}" <<'PY'
import bisect, collections, json, sys
run = json.load(open(sys.argv[1])); rate = int(sys.argv[2])
faults = [(float(at), name) for name, at, _ in (l.split() for l in open(sys.argv[3]))]
per = collections.defaultdict(collections.Counter)  # by fault index, -1 before any
for line in open(sys.argv[4]):
    s, code, n = line.split("\t")
    i = bisect.bisect_right([at for at, _ in faults], int(s) + 1) - 1
    per[i][code or "no answer"] += int(n)
v = run.get("verification") or {}
print(f"sent {run['sent']}, ok {run['ok']}, failed {run['failed']} (refusals included), logged {run['sent'] - run.get('log_dropped', 0)}")
total = 0
for i, name in [(-1, "before any fault")] + [(i, name) for i, (_, name) in enumerate(faults)]:
    c = per.get(i)
    if c:
        n = sum(c.values()); total += n
        print(f"  after {name:<10} {n:6d} failed ({n / rate:.2f} s of traffic): " + ", ".join(f"{k} {m}" for k, m in c.most_common()))
goal = float(sys.argv[5])
print(f"failed by the faults: {total} requests, {total / rate:.2f} s of traffic at {rate}/s (goal <= {goal:g} s)")
print(f"verification {'ok' if v.get('ok') else 'FAILED'}")
for p in v.get("problems") or []:
    print("  problem:", p)
sys.exit(0 if v.get("ok") else 1)
PY

# Every effect of the run's transactions, one by one: analytics rows, activity items and
# notifications (the verification waited for analytics; the inbox may need a little longer).
audited=1
for _ in $(seq 1 30); do
	"$STATE/bin/loadtest" audit "$run" >"$STATE/chaos-audit.txt" 2>&1 && audited=0 && break
	sleep 2
done
cat "$STATE/chaos-audit.txt"
exit $audited
