#!/usr/bin/env bash
# Load generator benchmark: the highest rate internal/loadgen sustains open-loop against a trivial
# HTTP endpoint, beside Vegeta's (another open-loop Go generator) and wrk's closed-loop maximum,
# all with the same connection count against the same endpoint, in the same run. Everything runs
# on this machine and talks to 127.0.0.1 only. The goal: loadgen's sustained rate at least
# Vegeta's, and at least half of wrk's.
# Two figures for loadgen, each found by a search (cmd/loadgen-bench) over runs of BENCH_DURATION:
#   sustained: achieved within 1 % of target, every request sent and ok, and at most
#              BENCH_MAX_LATE (1 %) of sends more than BENCH_LATE_AFTER (5 ms) after their
#              intended time, i.e. the generator adds under 5 ms to 99 % of the measurements
#              (on this shared 2-core machine, OS scheduling alone delays 2-15 % of sends by
#              more than 1 ms even at a few hundred requests/s, so 1 ms would measure the
#              neighbours, not the generator);
#   ceiling:   the same without the late-send limit (throughput only).
# The machine is shared, so a rate counts as failed only when two runs at it fail.
# Vegeta (v12.13.0, built into .state/tools, not a dependency of this module) is searched the same
# way with the criterion it can report: achieved within 1 % of target and every request ok (it
# drops the requests it has not sent by the end of the run; see vegeta_trial).
# It records no intended send times, so it has no late-send limit, and its latencies run from the
# actual send, not the intended one (coordinated omission): its figure is comparable to loadgen's
# ceiling in criterion, and the goal compares it with loadgen's stricter sustained figure.
# wrk is closed-loop: it sends the next request when a response arrives, so its figure is a
# maximum throughput, not a rate it holds to a schedule.
#   BENCH_CONNS=64 BENCH_REPEATS=3 BENCH_DURATION=3s scripts/bench-loadgen.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CONNS=${BENCH_CONNS:-64}
REPEATS=${BENCH_REPEATS:-3}
DURATION=${BENCH_DURATION:-3s}
START=${BENCH_START:-10000}
MAX_LATE=${BENCH_MAX_LATE:-0.01}
LATE_AFTER=${BENCH_LATE_AFTER:-5ms}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
VEGETA_VERSION=v12.13.0

# Go durations the way vegeta and loadgen-bench read them (3s, 500ms, 1m30s), in seconds.
seconds() {
	awk -v d="$1" 'BEGIN {
		while (match(d, /^[0-9.]+(ns|us|ms|s|m|h)/)) {
			n = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1); u = n; sub(/^[0-9.]+/, "", u)
			t += n * (u == "ns" ? 1e-9 : u == "us" ? 1e-6 : u == "ms" ? 1e-3 : u == "s" ? 1 : u == "m" ? 60 : 3600)
		}
		if (d != "" || t <= 0) exit 1
		printf "%.9g\n", t
	}'
}
DURATION_S=$(seconds "$DURATION") || { echo "BENCH_DURATION $DURATION is not a duration" >&2; exit 1; }

command -v wrk >/dev/null || scripts/apt-install.sh wrk
# go install with a version builds Vegeta in module mode outside this module, so go.mod does not
# change; the binary is kept under .state/tools (git-ignored) so later runs neither rebuild nor
# need the module proxy. A rebuild tries the module cache as the proxy first: plain GOPROXY=off
# fails offline even with the module cached, because go install pkg@version also looks up the
# module's deprecation.
TOOLS=$ROOT/.state/tools/vegeta-$VEGETA_VERSION
VEGETA=$TOOLS/vegeta
if [[ ! -x $VEGETA ]]; then
	echo "installing vegeta $VEGETA_VERSION into $TOOLS" >&2
	GOPROXY=file://$(go env GOMODCACHE)/cache/download GOBIN=$TOOLS \
		go install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION" 2>/dev/null ||
		GOBIN=$TOOLS go install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
fi

TMP=$(mktemp -d)
SERVER_PID= VEGETA_PID= WRK_PID=
cleanup() {
	local pid
	for pid in "$SERVER_PID" "$VEGETA_PID" "$WRK_PID"; do
		if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; fi
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

scripts/gobuild.sh "$TMP/loadgen-bench" loadgen-bench

# The endpoint runs in its own process, as a target would, and serves all three generators.
"$TMP/loadgen-bench" serve >"$TMP/url" &
SERVER_PID=$!
for _ in $(seq 50); do [[ -s $TMP/url ]] && break; sleep 0.1; done
URL=$(head -n1 "$TMP/url")
[[ -n $URL ]] || { echo "server did not start" >&2; exit 1; }
echo "endpoint $URL, $CONNS connections, runs of $DURATION, $REPEATS repeats, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

search() { # max-late start -> prints the trials, then "sustained N"
	"$TMP/loadgen-bench" search -url "$URL" -conns "$CONNS" -duration "$DURATION" -late-after "$LATE_AFTER" -max-late "$1" -start "$2" |
		tee -a "$TMP/log" | awk '/^sustained/ {print $2; next} {print > "/dev/stderr"}'
}

# Floating-point arithmetic and tests for the Vegeta search.
calc() { awk "BEGIN { printf \"%.10g\\n\", $1 }"; }
holds() { awk "BEGIN { exit !($1) }"; }

printf 'GET %s\n' "$URL" >"$TMP/targets"

# One Vegeta run at rate $1, printed as a JSON line on stderr like loadgen-bench's trials; sets
# PASSED to 1 or 0. Flags, chosen to match loadgen's runs: -workers C -max-workers C keeps exactly
# C requests at most in flight, as loadgen's C workers do (Vegeta's default adds workers without
# limit whenever all are busy, i.e. opens ever more connections when it falls behind);
# -connections C keeps C idle connections so none is closed and redialled between requests, and
# -max-connections C caps the pool as loadgen's transport does; -timeout 10s is loadgen-bench's
# per-request timeout; -max-body 0 keeps no response body in the results (loadgen discards it;
# Vegeta still drains it, so connections are reused); -http2=false as loadgen's transport (moot
# for http://). Results go to a file, so the report is not computed during the attack. Vegeta
# still gob-encodes every result (with its headers) while attacking: that is its way of
# recording, as the HDR recorder is loadgen's.
vegeta_trial() {
	local rate expected
	rate=$(awk -v r="$1" 'BEGIN { printf "%.0f", int(r + 0.5) }')
	expected=$(awk -v r="$rate" -v d="$DURATION_S" 'BEGIN { printf "%.0f", int(r * d + 1e-6) }')
	"$VEGETA" attack -targets "$TMP/targets" -rate "$rate/1s" -duration "$DURATION" \
		-workers "$CONNS" -max-workers "$CONNS" -connections "$CONNS" -max-connections "$CONNS" \
		-timeout 10s -max-body 0 -http2=false -output "$TMP/vegeta.bin" &
	VEGETA_PID=$!
	wait "$VEGETA_PID"
	VEGETA_PID=
	"$VEGETA" report -type=json "$TMP/vegeta.bin" >"$TMP/vegeta.json"
	# The achieved rate is loadgen's: requests sent per second of the running phase, from the start
	# to the later of the schedule's end and the last send (Vegeta's first send is one interval
	# after its start, so that is the span of its sends plus an interval). Its own "rate" divides
	# by the span of its sends alone. "Every request sent" cannot be required as it is of loadgen:
	# loadgen sends the whole schedule, late if it must, which stretches the running phase and
	# lowers the achieved rate; Vegeta stops at -duration and drops what it has not sent by then
	# (a lag of one interval at the end drops the last request), which lowers the achieved rate as
	# much. Either way the 1 % limit on the achieved rate lets a run end at most 1 % of its
	# duration behind the schedule.
	PASSED=$(awk -v target="$rate" -v expected="$expected" -v d="$DURATION_S" -v conns="$CONNS" '
		function field(k) { return match($0, "\"" k "\":[-0-9.e+]+") ? substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3) + 0 : -1 }
		{
			n = field("requests"); ok = field("success"); span = field("duration") / 1e9 + 1 / target
			achieved = n / (span > d ? span : d)
			pass = n > 0 && achieved >= 0.99 * target && ok >= 1
			printf "{\"target\":%d,\"achieved\":%.1f,\"conns\":%d,\"scheduled\":%d,\"sent\":%d,\"vegeta_rate\":%.1f,\"success\":%.4f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"pass\":%s}\n",
				target, achieved, conns, expected, n, field("rate"), ok, field("50th") / 1e6, field("99th") / 1e6, field("max") / 1e6, (pass ? "true" : "false") > "/dev/stderr"
			print pass ? 1 : 0
		}' "$TMP/vegeta.json")
	printf 'vegeta %s\n' "$(cat "$TMP/vegeta.json")" >>"$TMP/log"
}

# As loadgen-bench's try: a rate fails only if a second run at it fails too (the machine is shared).
vegeta_try() {
	local i
	for i in 1 2; do
		sleep 0.5
		vegeta_trial "$1"
		if [[ $PASSED == 1 ]]; then return 0; fi
	done
}

# The steps of loadgen-bench's search: up by 25 % from $1 until a rate fails (down by 25 % if the
# first one fails), then bisect to within 3 %. Sets VEGETA_SUSTAINED (0 if nothing passed).
vegeta_search() {
	local lo=0 hi=0 rate=$1 mid
	while holds "$hi == 0"; do
		vegeta_try "$rate"
		if [[ $PASSED == 1 ]]; then lo=$rate; else hi=$rate; fi
		rate=$(calc "$rate * 1.25")
	done
	if holds "$lo == 0"; then
		rate=$(calc "$1 / 1.25")
		while holds "$lo == 0 && $rate >= 100"; do
			vegeta_try "$rate"
			if [[ $PASSED == 1 ]]; then lo=$rate; else hi=$rate; fi
			rate=$(calc "$rate / 1.25")
		done
	fi
	while holds "$hi - $lo > 0.03 * $lo && $lo > 0"; do
		mid=$(calc "($lo + $hi) / 2")
		vegeta_try "$mid"
		if [[ $PASSED == 1 ]]; then lo=$mid; else hi=$mid; fi
	done
	VEGETA_SUSTAINED=$(awk -v lo="$lo" 'BEGIN { printf "%.0f", lo }')
}

sustained=() ceiling=() vegeta=() wrk=()
s_start=$START c_start=$START v_start=$START
for rep in $(seq "$REPEATS"); do
	echo "== repeat $rep: loadgen, at most $MAX_LATE of sends over $LATE_AFTER late"
	sustained+=("$(search "$MAX_LATE" "$s_start")")
	echo "== repeat $rep: loadgen, throughput only"
	ceiling+=("$(search 1 "$c_start")")
	# The next searches start where these ended, to spend the runs near the limit.
	[[ ${sustained[-1]} -gt 0 ]] && s_start=${sustained[-1]}
	[[ ${ceiling[-1]} -gt 0 ]] && c_start=${ceiling[-1]}
	echo "== repeat $rep: vegeta $VEGETA_VERSION, -workers/-max-workers/-connections/-max-connections $CONNS"
	vegeta_search "$v_start"
	vegeta+=("$VEGETA_SUSTAINED")
	[[ ${vegeta[-1]} -gt 0 ]] && v_start=${vegeta[-1]}
	echo "== repeat $rep: wrk -t$WRK_THREADS -c$CONNS -d$DURATION"
	sleep 0.5
	wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency "$URL" >"$TMP/wrk" &
	WRK_PID=$!
	wait "$WRK_PID"
	WRK_PID=
	cat "$TMP/wrk" >&2
	wrk+=("$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$TMP/wrk")")
	echo "repeat $rep: loadgen sustained ${sustained[-1]}, ceiling ${ceiling[-1]}, vegeta ${vegeta[-1]}, wrk ${wrk[-1]} req/s, load $(cut -d' ' -f1 /proc/loadavg)"
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m_s=$(median "${sustained[@]}") m_c=$(median "${ceiling[@]}") m_v=$(median "${vegeta[@]}") m_w=$(median "${wrk[@]}")
echo
echo "loadgen sustained open-loop ($MAX_LATE > $LATE_AFTER late): ${sustained[*]}  median $m_s req/s"
echo "loadgen ceiling open-loop (throughput only):  ${ceiling[*]}  median $m_c req/s"
echo "vegeta sustained open-loop (no late-send limit; latency from actual send, coordinated omission): ${vegeta[*]}  median $m_v req/s"
echo "wrk closed-loop max, $CONNS connections:        ${wrk[*]}  median $m_w req/s"
awk -v s="$m_s" -v c="$m_c" -v v="$m_v" -v w="$m_w" 'BEGIN {
	ratio = v > 0 ? s / v : 0
	printf "ratio to vegeta: sustained %.2f (goal >= 1: %s), ceiling %.2f\n", ratio, (ratio >= 1 ? "met" : "NOT met"), (v > 0 ? c / v : 0)
	printf "ratio to wrk: sustained %.2f (goal >= 0.5: %s), ceiling %.2f\n", s / w, (s / w >= 0.5 ? "met" : "NOT met"), c / w
}'
