#!/usr/bin/env bash
# Local stack: private instances of the servers (and the services) under a git-ignored state
# directory, on non-default ports. Idempotent: what already runs is left alone; `down` stops only
# what this script started, by the PID it recorded.
#
#   scripts/stack.sh up        servers + services (what `make up` runs)
#   scripts/stack.sh servers   servers only (what `make test` needs)
#   scripts/stack.sh down      stop everything this script started
#   scripts/stack.sh status    what runs
#   scripts/stack.sh env       the environment the services get, as shell assignments
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${STATE_DIR:-$ROOT/.state}

PG_PORT=${PG_PORT:-55432}
PGBOUNCER_PORT=${PGBOUNCER_PORT:-56432}
REDIS_PORT=${REDIS_PORT:-56379}
PG_USER=txn PG_PASSWORD=txn PG_DB=txn
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# Servers in start order; `down` walks it backwards. Each name has start_<name>, stop_<name>
# and ready_<name> functions below.
SERVERS=(postgres pgbouncer redis)
# Go services: each is cmd/<name>, listening on the port in its *_ADDR variable.
SERVICES=(processor)

log() { printf '%s\n' "$*" >&2; }
die() { log "stack: $*"; exit 1; }

# --- helpers ---------------------------------------------------------------------------------

pid_alive() { # pidfile
	[[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

wait_for() { # description seconds command...
	local what=$1 secs=$2; shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "$what did not become ready in ${secs}s"
		sleep 0.1
	done
}

stop_pidfile() { # name pidfile [signal]
	local name=$1 pidfile=$2 sig=${3:-TERM}
	pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
	local pid; pid=$(cat "$pidfile")
	kill -s "$sig" "$pid" 2>/dev/null || true
	for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		log "stack: $name (pid $pid) ignored SIG$sig for 15s; sending KILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	log "stopped $name"
}

# PostgreSQL and PgBouncer refuse to run as root: run them as the postgres user then.
as_pg() {
	if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

sudo_if_needed() {
	if ((EUID == 0)); then "$@"; else sudo "$@"; fi
}

ensure_packages() {
	local missing=()
	command -v pgbouncer >/dev/null || [[ -x /usr/sbin/pgbouncer ]] || missing+=(pgbouncer)
	command -v redis-server >/dev/null || missing+=(redis-server)
	[[ -x $PG_BIN/postgres ]] || missing+=(postgresql-15)
	((${#missing[@]} == 0)) && return 0
	log "installing ${missing[*]} from Debian packages"
	sudo_if_needed apt-get update -qq
	sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Directories the postgres user must own (and reach): when the checkout sits somewhere that user
# cannot traverse (e.g. under /root), keep them in a private directory under /var/tmp instead.
pg_home() {
	local dir=$STATE
	if ((EUID == 0)) && ! runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
		dir=/var/tmp/txn-$(printf '%s' "$STATE" | cksum | cut -d' ' -f1)
	fi
	printf '%s' "$dir"
}

# --- PostgreSQL ------------------------------------------------------------------------------

start_postgres() {
	local home; home=$(pg_home)
	local data=$home/pg
	mkdir -p "$home"
	((EUID == 0)) && chown postgres: "$home"
	if [[ ! -s $data/PG_VERSION ]]; then
		as_pg "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$STATE/logs/initdb.log"
		cat >>"$data/postgresql.conf" <<-EOF
			listen_addresses = '127.0.0.1'
			port = $PG_PORT
			unix_socket_directories = '$home'
			max_connections = 200
			shared_buffers = 512MB
			wal_buffers = 16MB
			max_wal_size = 4GB
			checkpoint_timeout = 15min
			# Durability stays on: an answered 2xx must survive a crash.
			synchronous_commit = on
		EOF
	fi
	as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$home/postgres.log" -w -t 60 start >/dev/null
	ln -sf "$data/postmaster.pid" "$STATE/run/postgres.pidref"
	as_pg psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 >/dev/null <<-EOF
		SELECT 'CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD ''$PG_PASSWORD'''
		WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER') \gexec
		SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER'
		WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DB') \gexec
	EOF
}
running_postgres() { as_pg "$PG_BIN/pg_ctl" -D "$(pg_home)/pg" status >/dev/null 2>&1; }
ready_postgres() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }
stop_postgres() {
	local data; data=$(pg_home)/pg
	running_postgres || return 0
	as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
	rm -f "$STATE/run/postgres.pidref"
	log "stopped postgres"
}

# --- PgBouncer (transaction mode) ------------------------------------------------------------

start_pgbouncer() {
	local home; home=$(pg_home)
	local dir=$home/pgbouncer
	mkdir -p "$dir"
	printf '"%s" "%s"\n' "$PG_USER" "$PG_PASSWORD" >"$dir/userlist.txt"
	# "*" forwards any database name, so tests can use databases of their own.
	cat >"$dir/pgbouncer.ini" <<-EOF
		[databases]
		* = host=127.0.0.1 port=$PG_PORT
		[pgbouncer]
		listen_addr = 127.0.0.1
		listen_port = $PGBOUNCER_PORT
		unix_socket_dir =
		auth_type = md5
		auth_file = $dir/userlist.txt
		pool_mode = transaction
		max_client_conn = 2000
		default_pool_size = 20
		max_db_connections = 60
		ignore_startup_parameters = extra_float_digits
		pidfile = $dir/pgbouncer.pid
		logfile = $dir/pgbouncer.log
		log_connections = 0
		log_disconnections = 0
	EOF
	((EUID == 0)) && chown -R postgres: "$dir"
	as_pg pgbouncer -d "$dir/pgbouncer.ini"
	wait_for pgbouncer 10 test -s "$dir/pgbouncer.pid"
	ln -sf "$dir/pgbouncer.pid" "$STATE/run/pgbouncer.pid"
}
running_pgbouncer() { pid_alive "$(pg_home)/pgbouncer/pgbouncer.pid"; }
ready_pgbouncer() { pg_isready -q -h 127.0.0.1 -p "$PGBOUNCER_PORT" -d "$PG_DB"; }
stop_pgbouncer() { stop_pidfile pgbouncer "$(pg_home)/pgbouncer/pgbouncer.pid" INT; }

# --- Redis -----------------------------------------------------------------------------------

start_redis() {
	mkdir -p "$STATE/redis"
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STATE/redis" --daemonize yes \
		--pidfile "$STATE/run/redis.pid" --logfile "$STATE/logs/redis.log" --save "" --appendonly no
	wait_for redis 10 test -s "$STATE/run/redis.pid"
}
running_redis() { pid_alive "$STATE/run/redis.pid"; }
ready_redis() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping | grep -q PONG; }
stop_redis() { stop_pidfile redis "$STATE/run/redis.pid"; }

# --- services --------------------------------------------------------------------------------

admin_token() {
	if [[ -n ${TXN_ADMIN_TOKEN:-} ]]; then
		printf '%s' "$TXN_ADMIN_TOKEN"
		return
	fi
	if [[ ! -s $STATE/admin-token ]]; then
		(umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$STATE/admin-token")
	fi
	cat "$STATE/admin-token"
}

# The environment every service gets; anything already set in the caller's environment wins.
service_env() {
	cat <<-EOF
		TXN_ADMIN_TOKEN=$(admin_token)
		DATABASE_URL=${DATABASE_URL:-postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PGBOUNCER_PORT/$PG_DB?default_query_exec_mode=cache_describe}
		DATABASE_DIRECT_URL=${DATABASE_DIRECT_URL:-postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB}
		REDIS_URL=${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}
		PROCESSOR_ADDR=${PROCESSOR_ADDR:-127.0.0.1:8000}
		PROCESSOR_URL=${PROCESSOR_URL:-http://127.0.0.1:8000}
	EOF
	local v
	for v in LOG_LEVEL RATE_LIMIT_RPS ADMIN_RATE_LIMIT_RPS WEBHOOK_ALLOW_PRIVATE BATCH_MAX BATCH_WORKERS BATCH_LINGER; do
		[[ -n ${!v:-} ]] && printf '%s=%s\n' "$v" "${!v}"
	done
	return 0
}

service_addr() { # name -> host:port
	local var=${1^^}_ADDR
	service_env | sed -n "s/^$var=//p"
}

start_service() {
	local name=$1
	local pidfile=$STATE/run/$name.pid
	if pid_alive "$pidfile"; then return 0; fi
	(cd "$ROOT" && go build -o "$STATE/bin/$name" "./cmd/$name")
	local envs=()
	mapfile -t envs < <(service_env)
	env "${envs[@]}" nohup "$STATE/bin/$name" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$pidfile"
	local addr; addr=$(service_addr "$name")
	wait_for "$name" 60 curl -fsS "http://$addr/healthz"
	log "started $name on http://$addr (log: $STATE/logs/$name.log)"
}

stop_service() { stop_pidfile "$1" "$STATE/run/$1.pid"; }

# --- commands --------------------------------------------------------------------------------

servers_up() {
	ensure_packages
	mkdir -p "$STATE/run" "$STATE/logs" "$STATE/bin"
	local s
	for s in "${SERVERS[@]}"; do
		if ! "running_$s"; then
			"start_$s"
			log "started $s"
		fi
		wait_for "$s" 60 "ready_$s"
	done
}

services_up() {
	local s
	for s in "${SERVICES[@]}"; do start_service "$s"; done
}

down() {
	local i
	for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do stop_service "${SERVICES[i]}"; done
	for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do "stop_${SERVERS[i]}"; done
}

status() {
	local s
	for s in "${SERVERS[@]}"; do
		if "running_$s"; then echo "$s: running"; else echo "$s: stopped"; fi
	done
	for s in "${SERVICES[@]}"; do
		if pid_alive "$STATE/run/$s.pid"; then echo "$s: running ($(service_addr "$s"))"; else echo "$s: stopped"; fi
	done
}

case ${1:-} in
up)
	servers_up
	services_up
	echo "processor: $(service_env | sed -n 's/^PROCESSOR_URL=//p')"
	echo "admin token: $(admin_token)"
	;;
servers) servers_up ;;
down) down ;;
status) status ;;
env) mkdir -p "$STATE"; service_env ;;
*) die "usage: $0 up|servers|down|status|env" ;;
esac
