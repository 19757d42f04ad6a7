# Several instances of a service (PROCESSORS, CONSUMERS, NOTIFIERS), sourced by stack.sh: their
# names and addresses, HAProxy in front of several processors, and load workers (LOADTEST_WORKERS).

# instances name -> "instance host:port" lines: the name itself when it runs once, else name-1..N.
instances() {
	local name=$1 n addr host port i
	case $name in
	processor) n=${PROCESSORS:-1} ;;
	consumer) n=${CONSUMERS:-1} ;;
	notifier) n=${NOTIFIERS:-1} ;;
	*) n=1 ;;
	esac
	[[ $n =~ ^[1-9][0-9]?$ ]] || die "$name: want 1 to 99 instances, not '$n'"
	addr=$(service_addr "$name")
	if ((n == 1)); then
		echo "$name $addr"
		return
	fi
	host=${addr%:*} port=${addr##*:}
	for ((i = 1; i <= n; i++)); do
		if [[ $name == processor ]]; then # PROCESSOR_ADDR is the balancer's
			echo "$name-$i $host:$((port + 100 * i))"
		else
			echo "$name-$i $host:$((port + 100 * (i - 1)))"
		fi
	done
}

# pidfiles name -> the pidfiles of every instance of name that `up` ever started
pidfiles() { { compgen -G "$STATE/run/$1.pid" || true; compgen -G "$STATE/run/$1-[0-9]*.pid" || true; } | sort -V; }

# haproxy_config listen server...: deploy/haproxy/haproxy.cfg (compose's) with these addresses
# in place of Docker's: one set of balancer settings for both.
haproxy_config() {
	local listen=$1 i=0 s servers=""
	shift
	for s in "$@"; do
		i=$((i + 1))
		servers+=$'\t'"server processor$i $s check"$'\n'
	done
	awk -v listen="$listen" -v servers="$servers" '
		/^resolvers / { skip = 1 }
		skip && /^$/ { skip = 0; next }
		skip { next }
		/^# Docker.s DNS/ { next }
		/^\tbind / { print "\tbind " listen; next }
		/^\tserver-template / { printf "%s", servers; next }
		{ print }' "$ROOT/deploy/haproxy/haproxy.cfg"
}

# The balancer in front of several processors, restarted on every `up` so that it follows the count.
start_haproxy() {
	local cfg=$STATE/haproxy.cfg addr
	addr=$(service_addr processor)
	stop_haproxy
	# shellcheck disable=SC2046
	haproxy_config "$addr" $(instances processor | cut -d' ' -f2) >"$cfg"
	haproxy -c -q -f "$cfg" || die "haproxy rejects $cfg"
	nohup haproxy -db -f "$cfg" >>"$STATE/logs/haproxy.log" 2>&1 </dev/null &
	echo $! >"$STATE/run/haproxy.pid"
	wait_for haproxy 30 curl -fsS -o /dev/null "http://$addr/healthz"
	log "started haproxy on http://$addr for $(instances processor | wc -l) processors (log: $STATE/logs/haproxy.log)"
}

stop_haproxy() { stop_pidfile haproxy "$STATE/run/haproxy.pid"; }

# Load workers (`loadtest worker`): LOADTEST_WORKERS of them (0 by default) join the loadtest
# service, for runs with "workers". Elsewhere a worker is started by hand on another machine.
start_workers() {
	local n=${LOADTEST_WORKERS:-0} i f envs=()
	[[ $n =~ ^[0-9]{1,2}$ ]] || die "LOADTEST_WORKERS: want 0 to 99, not '$n'"
	for f in $(compgen -G "$STATE/run/loadtest-worker-[0-9]*.pid" || true); do
		i=${f##*-} i=${i%.pid}
		((i > n)) && stop_pidfile "loadtest-worker-$i" "$f"
	done
	mapfile -t envs < <(service_env)
	for ((i = 1; i <= n; i++)); do
		pid_alive "$STATE/run/loadtest-worker-$i.pid" && continue
		env "${envs[@]}" LOADTEST_URL="http://$(service_addr loadtest)" \
			nohup "$STATE/bin/loadtest" worker -name "local-$i" >>"$STATE/logs/loadtest-worker-$i.log" 2>&1 </dev/null &
		echo $! >"$STATE/run/loadtest-worker-$i.pid"
		log "started loadtest worker local-$i (log: $STATE/logs/loadtest-worker-$i.log)"
	done
}

stop_workers() {
	local f
	for f in $(compgen -G "$STATE/run/loadtest-worker-[0-9]*.pid" || true); do stop_pidfile "$(basename "$f" .pid)" "$f"; done
}
