# PostgreSQL that survives losing its primary (HA=1 scripts/stack.sh up), sourced by stack.sh:
# pg_auto_failover (Debian's postgresql-15-auto-failover) runs a monitor and two nodes, a primary
# and a synchronous standby, and promotes the standby when the primary is lost; HAProxy listens
# on PG_PORT, where the single server would, and forwards to whichever node accepts writes, so
# PgBouncer, migrations and the relay follow the primary without knowing of the failover.
#
# Ports: the monitor on PG_PORT+10, the nodes on PG_PORT+11 and PG_PORT+12.

PGHA_MONITOR_PORT=$((PG_PORT + 10))
pgha_node_port() { echo $((PG_PORT + 10 + $1)); }

# pgha_argv command...: sets PGHA_ARGV to command run as the postgres user, with pg_autoctl's
# state (kept under XDG directories) private to this stack.
pgha_argv() {
	local home; home=$(pg_home)
	PGHA_ARGV=(env XDG_CONFIG_HOME="$home/ha/config" XDG_DATA_HOME="$home/ha/data" XDG_RUNTIME_DIR="$home/ha/run"
		PG_CONFIG="$PG_BIN/pg_config" "$@")
	((EUID == 0)) && PGHA_ARGV=(runuser -u postgres -- "${PGHA_ARGV[@]}")
	return 0
}
pgha() { pgha_argv "$@"; "${PGHA_ARGV[@]}"; }

pgha_data() { # name -> its data directory
	case $1 in
	pgmonitor) echo "$(pg_home)/ha/monitor" ;;
	pgnode*) echo "$(pg_home)/ha/node${1#pgnode}" ;;
	esac
}

# pgha_run name: `pg_autoctl run` for name in a session of its own, so that a fault test can end
# the node (its keeper and its PostgreSQL) as a lost machine would: by process group.
pgha_run() {
	local data f; data=$(pgha_data "$1")
	# A node killed as a lost machine leaves pid files whose processes may linger as zombies
	# nobody reaps; neither pg_autoctl nor PostgreSQL would start beside them.
	for f in "$data/postmaster.pid" "$(pg_home)/ha/run/pg_autoctl$data/pg_autoctl.pid"; do
		[[ -s $f ]] && ! alive "$(head -1 "$f")" && rm -f "$f"
	done
	pgha_argv pg_autoctl run --pgdata "$data"
	setsid nohup "${PGHA_ARGV[@]}" >>"$STATE/logs/$1.log" 2>&1 </dev/null &
	echo $! >"$STATE/run/$1.pid"
}

# pgha_stop name: pg_autoctl's own stop (PostgreSQL fast), then the session's end.
pgha_stop() {
	local pidfile=$STATE/run/$1.pid pid
	pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
	pid=$(cat "$pidfile")
	pgha pg_autoctl stop --pgdata "$(pgha_data "$1")" >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 300); do alive "$pid" || break; sleep 0.1; done
	if alive "$pid"; then
		log "stack: $1 (session $pid) did not stop in 30 s; sending KILL"
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	log "stopped $1"
}
pgha_running() { pid_alive "$STATE/run/$1.pid"; }

# The monitor, with health checks tuned so that a lost primary is noticed within about 2 s and
# replaced 4 s later (deploy/ha/monitor.conf).
start_pgmonitor() {
	local home; home=$(pg_home)
	local data=$home/ha/monitor
	mkdir -p "$home/ha/run"
	((EUID == 0)) && chown postgres: "$home" "$home/ha" "$home/ha/run"
	if [[ ! -s $data/PG_VERSION ]]; then
		pgha pg_autoctl create monitor --pgctl "$PG_BIN/pg_ctl" --pgdata "$data" --pgport "$PGHA_MONITOR_PORT" \
			--hostname 127.0.0.1 --auth trust --no-ssl >>"$STATE/logs/pgmonitor.log" 2>&1
		pgha pg_autoctl config set --pgdata "$data" postgresql.listen_addresses 127.0.0.1 >/dev/null
		as_pg tee -a "$data/postgresql.auto.conf" >/dev/null <"$ROOT/deploy/ha/monitor.conf"
	fi
	pgha_run pgmonitor
}
running_pgmonitor() { pgha_running pgmonitor; }
ready_pgmonitor() { pg_isready -q -h 127.0.0.1 -p "$PGHA_MONITOR_PORT"; }
stop_pgmonitor() { pgha_stop pgmonitor; }

# start_pgnode i: node i, created on first start (the first becomes the primary, the second
# copies it and follows as a synchronous standby).
start_pgnode() {
	local i=$1 home; home=$(pg_home)
	local data=$home/ha/node$i port; port=$(pgha_node_port "$i")
	if [[ ! -s $data/PG_VERSION ]]; then
		# The application's role and database go to the primary before a standby copies it.
		((i == 1)) || pg_roles "$(pgha_node_port "$(pgha_primary)")"
		pgha pg_autoctl create postgres --pgctl "$PG_BIN/pg_ctl" --pgdata "$data" --pgport "$port" \
			--listen 127.0.0.1 --hostname 127.0.0.1 --name "node$i" --dbname "$PG_DB" --auth trust --no-ssl \
			--monitor "postgres://autoctl_node@127.0.0.1:$PGHA_MONITOR_PORT/pg_auto_failover?sslmode=disable" \
			>>"$STATE/logs/pgnode$i.log" 2>&1
		pg_settings | as_pg tee -a "$data/postgresql.conf" >/dev/null
		pgha pg_autoctl config set --pgdata "$data" timeout.network_partition_timeout 3 >/dev/null
	fi
	pgha_run "pgnode$i"
}
ready_pgnode() { # i: its PostgreSQL answers, as the primary or as a standby that has caught up
	local state
	pg_isready -q -h 127.0.0.1 -p "$(pgha_node_port "$1")" || return 1
	state=$(psql -h 127.0.0.1 -p "$PGHA_MONITOR_PORT" -U autoctl_node -d pg_auto_failover -qAt \
		-c "SELECT reportedstate FROM pgautofailover.node WHERE nodename = 'node$1'" 2>/dev/null)
	[[ $state == primary || $state == secondary || $state == wait_primary || $state == single ]]
}
start_pgnode1() { start_pgnode 1; }
running_pgnode1() { pgha_running pgnode1; }
ready_pgnode1() { ready_pgnode 1; }
stop_pgnode1() { pgha_stop pgnode1; }
start_pgnode2() { start_pgnode 2; }
running_pgnode2() { pgha_running pgnode2; }
ready_pgnode2() { ready_pgnode 2; }
stop_pgnode2() { pgha_stop pgnode2; }

# pgha_primary: the number of the node that accepts writes now, asked as HAProxy asks.
pgha_primary() {
	local i
	for i in 1 2; do
		if "$ROOT/scripts/pg-primary-check.sh" - - 127.0.0.1 "$(pgha_node_port "$i")"; then
			echo "$i"
			return 0
		fi
	done
	return 1
}

# The primary's address: HAProxy on PG_PORT, from compose's configuration
# (deploy/haproxy/pg-primary.cfg) with the local addresses: it checks each node with
# scripts/pg-primary-check.sh (every 250 ms while it is not the primary, every second while it
# is) and cuts the sessions of a node that stops being the primary.
start_pgprimary() {
	local cfg=$STATE/pgprimary.cfg
	awk -v bind="127.0.0.1:$PG_PORT" -v check="$ROOT/scripts/pg-primary-check.sh" \
		-v node1="127.0.0.1:$(pgha_node_port 1)" -v node2="127.0.0.1:$(pgha_node_port 2)" '
		/^resolvers / { skip = 1 }
		skip { next }
		/^# Docker.s DNS/ { next }
		/^\tbind / { print "\tbind " bind; next }
		/^\texternal-check command / { print "\texternal-check command " check; next }
		/^\tserver node1 / { print "\tserver node1 " node1 " check"; next }
		/^\tserver node2 / { print "\tserver node2 " node2 " check"; next }
		{ print }' "$ROOT/deploy/haproxy/pg-primary.cfg" >"$cfg"
	haproxy -c -q -f "$cfg" || die "haproxy rejects $cfg"
	nohup haproxy -db -f "$cfg" >>"$STATE/logs/pgprimary.log" 2>&1 </dev/null &
	echo $! >"$STATE/run/pgprimary.pid"
}
running_pgprimary() { pid_alive "$STATE/run/pgprimary.pid"; }
ready_pgprimary() { ready_postgres; }
stop_pgprimary() { stop_pidfile pgprimary "$STATE/run/pgprimary.pid"; }
