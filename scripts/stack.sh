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
#   scripts/stack.sh haproxy-config LISTEN SERVER...   the processors' balancer, for these addresses
#   scripts/stack.sh ha-primary   with HA=1: the number of the PostgreSQL node that accepts writes
#
# HA=1 runs PostgreSQL as a primary and a synchronous standby with automatic failover
# (scripts/stack-ha.sh). PROCESSORS, CONSUMERS and NOTIFIERS (1 each by default) set how many instances of each service
# `up` runs. Several processors listen 100, 200, ... ports above PROCESSOR_ADDR, behind HAProxy
# on PROCESSOR_ADDR itself; several consumers or notifiers listen on their *_ADDR, 100 above it, ...
# LOADTEST_WORKERS=N also starts N load workers (`loadtest worker`) joined to the loadtest service.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${STATE_DIR:-$ROOT/.state}
PATH=$PATH:/usr/sbin # haproxy, for users without it in their PATH

PG_PORT=${PG_PORT:-55432}
PGBOUNCER_PORT=${PGBOUNCER_PORT:-56432}
REDIS_PORT=${REDIS_PORT:-56379}
PG_USER=txn PG_PASSWORD=txn PG_DB=txn
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
# The event pipeline. Kafka and MongoDB are local stand-ins built from cmd/kafkalocal (franz-go's
# kfake) and cmd/mongolocal (FerretDB), since Debian packages neither.
KAFKA_PORT=${KAFKA_PORT:-59092}
MONGO_PORT=${MONGO_PORT:-57017}
CLICKHOUSE_PORT=${CLICKHOUSE_PORT:-59000} # native protocol (clickhouse-go/v2 cannot use HTTP on 18.16)
CLICKHOUSE_HTTP_PORT=${CLICKHOUSE_HTTP_PORT:-58123}
CLICKHOUSE_INTERSERVER_PORT=${CLICKHOUSE_INTERSERVER_PORT:-59009}
# RabbitMQ's other ports follow its AMQP port unless set: management UI/API +1, Erlang
# distribution +2, and a private epmd +3 (the default, 4369, would be shared with other nodes).
RABBITMQ_PORT=${RABBITMQ_PORT:-55672}
RABBITMQ_MGMT_PORT=${RABBITMQ_MGMT_PORT:-$((RABBITMQ_PORT + 1))}
RABBITMQ_DIST_PORT=${RABBITMQ_DIST_PORT:-$((RABBITMQ_PORT + 2))}
RABBITMQ_EPMD_PORT=${RABBITMQ_EPMD_PORT:-$((RABBITMQ_PORT + 3))}
RABBITMQ_MANAGEMENT=${RABBITMQ_MANAGEMENT:-1} # 0: no management plugin (boots ~2 s and stops ~6 s faster)
RABBITMQ_NODE=txn-$RABBITMQ_PORT@localhost
RABBITMQ_BIN=/usr/lib/rabbitmq/bin # not /usr/sbin: those wrappers switch user and log to /var/log

# Servers in start order; `down` walks it backwards. Each name has start_<name>, running_<name>,
# ready_<name> and stop_<name> functions below.
SERVERS=(postgres pgbouncer redis kafka mongo clickhouse rabbitmq)
# HA=1: PostgreSQL as a pg_auto_failover monitor and two nodes behind HAProxy (scripts/stack-ha.sh).
HA_SERVERS=(pgmonitor pgnode1 pgnode2 pgprimary)
[[ ${HA:-0} == 1 ]] && SERVERS=("${HA_SERVERS[@]}" "${SERVERS[@]:1}")
# Go services: each is cmd/<name>, listening on the port in its *_ADDR variable.
SERVICES=()
for s in processor consumer notifier loadtest; do
	[[ -d $ROOT/cmd/$s ]] && SERVICES+=("$s")
done

log() { printf '%s\n' "$*" >&2; }
die() { log "stack: $*"; exit 1; }

# --- helpers ---------------------------------------------------------------------------------

# alive pid: the process exists and is not a zombie. kill -0 alone succeeds on a zombie, and here
# orphans are reaped late (by PID 1), so a stopped server would look alive for a while.
alive() {
	kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1" 2>/dev/null) != Z* ]]
}

# gone_or_reaped waits up to 10 s for the process of a stale pid file to be gone: PostgreSQL and
# PgBouncer refuse to start while that PID exists, even as a zombie not yet reaped after a SIGKILL.
gone_or_reaped() { # pidfile
	[[ -s $1 ]] || return 0
	local pid; pid=$(head -1 "$1")
	for _ in {1..50}; do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
}

pid_alive() { # pidfile
	[[ -s $1 ]] && alive "$(cat "$1")"
}

wait_for() { # description seconds command...
	local what=$1 secs=$2; shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "$what did not become ready in ${secs}s"
		sleep 0.1
	done
}

port_open() { # port: something accepts TCP connections on 127.0.0.1:port
	(: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

stop_pidfile() { # name pidfile [signal]
	local name=$1 pidfile=$2 sig=${3:-TERM}
	pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
	local pid; pid=$(cat "$pidfile")
	kill -s "$sig" "$pid" 2>/dev/null || true
	for _ in $(seq 1 150); do alive "$pid" || break; sleep 0.1; done
	if alive "$pid"; then
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

ensure_packages() {
	local missing=()
	command -v pgbouncer >/dev/null || [[ -x /usr/sbin/pgbouncer ]] || missing+=(pgbouncer)
	command -v redis-server >/dev/null || missing+=(redis-server)
	[[ -x $PG_BIN/postgres ]] || missing+=(postgresql-15)
	[[ -x $RABBITMQ_BIN/rabbitmq-server ]] || missing+=(rabbitmq-server)
	command -v clickhouse-server >/dev/null || [[ -x /usr/sbin/clickhouse-server ]] || missing+=(clickhouse-server)
	command -v clickhouse-client >/dev/null || missing+=(clickhouse-client)
	command -v haproxy >/dev/null || missing+=(haproxy)
	if [[ ${HA:-0} == 1 ]]; then
		command -v pg_autoctl >/dev/null || missing+=(postgresql-15-auto-failover pg-auto-failover-cli)
	fi
	"$ROOT/scripts/apt-install.sh" "${missing[@]}"
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

# pg_settings: what every PostgreSQL server of the stack runs with, past its addresses.
pg_settings() {
	cat <<-EOF
		max_connections = 200
		shared_buffers = 512MB
		wal_buffers = 16MB
		max_wal_size = 4GB
		checkpoint_timeout = 15min
		# Durability stays on: an answered 2xx must survive a crash.
		synchronous_commit = on
	EOF
}

# pg_roles port: the application's role, owning its database, on the server at port.
pg_roles() {
	as_pg psql -h 127.0.0.1 -p "$1" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 >/dev/null <<-EOF
		SELECT 'CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD ''$PG_PASSWORD'''
		WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER') \gexec
		SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER'
		WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DB') \gexec
		ALTER DATABASE $PG_DB OWNER TO $PG_USER;
	EOF
}

start_postgres() {
	local home; home=$(pg_home)
	local data=$home/pg
	mkdir -p "$home"
	((EUID == 0)) && chown postgres: "$home"
	if [[ ! -s $data/PG_VERSION ]]; then
		as_pg "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$STATE/logs/initdb.log"
		{
			printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\n" "$PG_PORT" "$home"
			pg_settings
		} >>"$data/postgresql.conf"
	fi
	gone_or_reaped "$data/postmaster.pid"
	as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$home/postgres.log" -w -t 60 start >/dev/null
	ln -sf "$data/postmaster.pid" "$STATE/run/postgres.pidref"
	pg_roles "$PG_PORT"
}
# Not pg_ctl status: it counts a killed postmaster as running until its parent reaps it, and
# `make up` right after a SIGKILL would then wait for a server that is gone.
running_postgres() {
	local pidfile; pidfile=$(pg_home)/pg/postmaster.pid
	[[ -s $pidfile ]] && alive "$(head -1 "$pidfile")"
}
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
		# After PostgreSQL restarts, reconnect within a quarter second instead of the default 15 s.
		server_login_retry = 0.25
		pidfile = $dir/pgbouncer.pid
		logfile = $dir/pgbouncer.log
		log_connections = 0
		log_disconnections = 0
	EOF
	((EUID == 0)) && chown -R postgres: "$dir"
	gone_or_reaped "$dir/pgbouncer.pid"
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

# --- Kafka and MongoDB stand-ins (Go programs in cmd/) ---------------------------------------

# build_standin name: go build cmd/<name> into $STATE/bin, unless the binary is newer than its
# source and go.mod (the first FerretDB build takes about a minute).
build_standin() {
	local name=$1 bin=$STATE/bin/$1
	if [[ -x $bin && -z $(find "$ROOT/cmd/$name" "$ROOT/go.mod" -newer "$bin" -print -quit) ]]; then
		return 0
	fi
	log "building $name"
	"$ROOT/scripts/gobuild.sh" "$bin" "$name"
}

# start_standin server program args...: run $STATE/bin/<program> in the background.
start_standin() {
	local server=$1 program=$2; shift 2
	build_standin "$program"
	env GOGC="${GOGC:-400}" PPROF_ADDR="$(pprof_addr "$server")" nohup "$STATE/bin/$program" "$@" >>"$STATE/logs/$server.log" 2>&1 </dev/null &
	echo $! >"$STATE/run/$server.pid"
}

start_kafka() { start_standin kafka kafkalocal -port "$KAFKA_PORT" -data-dir "$STATE/kafka"; }
running_kafka() { pid_alive "$STATE/run/kafka.pid"; }
ready_kafka() { running_kafka && port_open "$KAFKA_PORT"; }
stop_kafka() { stop_pidfile kafka "$STATE/run/kafka.pid"; }

start_mongo() { start_standin mongo mongolocal -port "$MONGO_PORT" -data-dir "$STATE/mongo"; }
running_mongo() { pid_alive "$STATE/run/mongo.pid"; }
ready_mongo() { running_mongo && port_open "$MONGO_PORT"; }
stop_mongo() { stop_pidfile mongo "$STATE/run/mongo.pid"; }

# --- ClickHouse ------------------------------------------------------------------------------

# Debian's config, copied with this stack's paths and ports, on loopback only (18.16 still binds [::1]
# next to 127.0.0.1 without the ::1 listen_host).
start_clickhouse() {
	local dir=$STATE/clickhouse
	mkdir -p "$dir/data"
	sed -e "s|/var/lib/clickhouse/|$dir/data/|g" \
		-e "s|/var/log/clickhouse-server/clickhouse-server\.log|$STATE/logs/clickhouse.log|" \
		-e "s|/var/log/clickhouse-server/clickhouse-server\.err\.log|$STATE/logs/clickhouse.err.log|" \
		-e "s|<http_port>8123</http_port>|<http_port>$CLICKHOUSE_HTTP_PORT</http_port>|" \
		-e "s|<tcp_port>9000</tcp_port>|<tcp_port>$CLICKHOUSE_PORT</tcp_port>|" \
		-e "s|<interserver_http_port>9009</interserver_http_port>|<interserver_http_port>$CLICKHOUSE_INTERSERVER_PORT</interserver_http_port>|" \
		-e '/<listen_host>::1<\/listen_host>/d' \
		/etc/clickhouse-server/config.xml >"$dir/config.xml"
	if ! grep -q "<tcp_port>$CLICKHOUSE_PORT</tcp_port>" "$dir/config.xml" || grep -qE "/var/(lib|log)/clickhouse" "$dir/config.xml"; then
		die "could not rewrite /etc/clickhouse-server/config.xml for $dir (has its layout changed?)"
	fi
	cp /etc/clickhouse-server/users.xml "$dir/users.xml"
	# In the foreground it writes no pid file: nohup execs, so $! is the server itself.
	nohup clickhouse-server --config-file="$dir/config.xml" >>"$STATE/logs/clickhouse-stdout.log" 2>&1 </dev/null &
	echo $! >"$STATE/run/clickhouse.pid"
}
running_clickhouse() { pid_alive "$STATE/run/clickhouse.pid"; }
ready_clickhouse() {
	running_clickhouse && clickhouse-client --host 127.0.0.1 --port "$CLICKHOUSE_PORT" --query 'SELECT 1'
}
stop_clickhouse() { stop_pidfile clickhouse "$STATE/run/clickhouse.pid"; }

# --- RabbitMQ --------------------------------------------------------------------------------

# rabbit_env command...: run command with this stack's node environment. HOME holds the Erlang
# cookie that rabbitmqctl shares with the node; ERL_EPMD_PORT gives the node a private epmd.
rabbit_env() {
	local dir=$STATE/rabbitmq
	env HOME="$dir" \
		RABBITMQ_NODENAME="$RABBITMQ_NODE" \
		RABBITMQ_NODE_PORT="$RABBITMQ_PORT" \
		RABBITMQ_DIST_PORT="$RABBITMQ_DIST_PORT" \
		ERL_EPMD_PORT="$RABBITMQ_EPMD_PORT" \
		ERL_EPMD_ADDRESS=127.0.0.1 \
		RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
		RABBITMQ_MNESIA_BASE="$dir/mnesia" \
		RABBITMQ_LOG_BASE="$STATE/logs/rabbitmq" \
		RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
		RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
		RABBITMQ_PID_FILE="$STATE/run/rabbitmq.pid" \
		ERL_CRASH_DUMP="$STATE/logs/rabbitmq/erl_crash.dump" \
		"$@"
}
rabbit_ctl() { rabbit_env "$RABBITMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODE" "$@"; }

start_rabbitmq() {
	local dir=$STATE/rabbitmq pidfile=$STATE/run/rabbitmq.pid
	mkdir -p "$dir" "$STATE/logs/rabbitmq"
	: >"$dir/rabbitmq-env.conf" # keeps /etc/rabbitmq/rabbitmq-env.conf out
	# loopback_users = none lets guest in over 127.0.0.1 (and only there: every listener is on
	# loopback).
	cat >"$dir/rabbitmq.conf" <<-EOF
		listeners.tcp.default = 127.0.0.1:$RABBITMQ_PORT
		loopback_users = none
	EOF
	# The management plugin (UI and HTTP API) ships in Debian's package and works offline.
	if [[ $RABBITMQ_MANAGEMENT == 1 ]]; then
		echo '[rabbitmq_management].' >"$dir/enabled_plugins"
		cat >>"$dir/rabbitmq.conf" <<-EOF
			management.tcp.ip = 127.0.0.1
			management.tcp.port = $RABBITMQ_MGMT_PORT
		EOF
	else
		echo '[].' >"$dir/enabled_plugins"
	fi
	rm -f "$pidfile"
	rabbit_env nohup "$RABBITMQ_BIN/rabbitmq-server" >>"$STATE/logs/rabbitmq.log" 2>&1 </dev/null &
	local launcher=$!
	# The node writes its pid file early in boot; stop waiting if it dies first.
	local deadline=$((SECONDS + 60))
	until [[ -s $pidfile ]]; do
		alive "$launcher" || die "rabbitmq exited while starting: see $STATE/logs/rabbitmq.log"
		((SECONDS < deadline)) || die "rabbitmq wrote no pid file in 60s: see $STATE/logs/rabbitmq.log"
		sleep 0.1
	done
	rabbit_ctl wait --timeout 60 "$pidfile" >/dev/null ||
		die "rabbitmq did not boot: see $STATE/logs/rabbitmq.log and $STATE/logs/rabbitmq/"
}
running_rabbitmq() { pid_alive "$STATE/run/rabbitmq.pid"; }
ready_rabbitmq() { running_rabbitmq && port_open "$RABBITMQ_PORT"; }
stop_rabbitmq() {
	local pidfile=$STATE/run/rabbitmq.pid
	if running_rabbitmq; then
		if rabbit_ctl stop "$pidfile" >/dev/null 2>&1; then
			rm -f "$pidfile"
			log "stopped rabbitmq"
		else
			stop_pidfile rabbitmq "$pidfile"
		fi
	fi
	# epmd outlives the node. This one is private to the stack (its own port), so stop it too.
	if epmd -port "$RABBITMQ_EPMD_PORT" -names >/dev/null 2>&1; then
		epmd -port "$RABBITMQ_EPMD_PORT" -kill >/dev/null
		log "stopped epmd"
	fi
}

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
		KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}
		MONGO_URL=${MONGO_URL:-mongodb://127.0.0.1:$MONGO_PORT/txn}
		CLICKHOUSE_ADDR=${CLICKHOUSE_ADDR:-127.0.0.1:$CLICKHOUSE_PORT}
		RABBITMQ_URL=${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT/}
		PROCESSOR_ADDR=${PROCESSOR_ADDR:-127.0.0.1:8000}
		PROCESSOR_URL=${PROCESSOR_URL:-http://127.0.0.1:8000}
		LOADTEST_ADDR=${LOADTEST_ADDR:-127.0.0.1:8001}
		CONSUMER_ADDR=${CONSUMER_ADDR:-127.0.0.1:8002}
		NOTIFIER_ADDR=${NOTIFIER_ADDR:-127.0.0.1:8003}
		GOGC=${GOGC:-400}
	EOF
	local v
	for v in LOG_LEVEL RATE_LIMIT_RPS ADMIN_RATE_LIMIT_RPS WEBHOOK_ALLOW_PRIVATE BATCH_MAX BATCH_WORKERS BATCH_LINGER; do
		[[ -n ${!v:-} ]] && printf '%s=%s\n' "$v" "${!v}"
	done
	return 0
}

# pprof_addr name: with PPROF_PORT set, each Go program serves Go's profiler on a port of its own
# from there (processor, loadtest, consumer, notifier, kafka, mongo: +0 to +5); else nothing.
pprof_addr() {
	[[ -n ${PPROF_PORT:-} ]] || return 0
	local i=0 n
	for n in processor loadtest consumer notifier kafka mongo; do
		[[ $n == "$1" ]] && { printf '127.0.0.1:%d' $((PPROF_PORT + i)); return 0; }
		i=$((i + 1))
	done
}

service_addr() { # name -> host:port
	local var=${1^^}_ADDR
	service_env | sed -n "s/^$var=//p"
}

start_service() {
	local name=$1 inst addr want=" " f
	"$ROOT/scripts/gobuild.sh" "$STATE/bin/$name" "$name"
	while read -r inst addr; do want+="$STATE/run/$inst.pid "; done < <(instances "$name")
	# First what an earlier `up` with another count left: its addresses may be the new ones'.
	for f in $(pidfiles "$name"); do
		[[ $want == *" $f "* ]] || stop_pidfile "$(basename "$f" .pid)" "$f"
	done
	if [[ $name == processor ]] && ((${PROCESSORS:-1} == 1)); then stop_haproxy; fi
	local envs=()
	mapfile -t envs < <(service_env)
	while read -r inst addr; do
		pid_alive "$STATE/run/$inst.pid" && continue
		env "${envs[@]}" "${name^^}_ADDR=$addr" PPROF_ADDR="$(pprof_addr "$inst")" \
			nohup "$STATE/bin/$name" >>"$STATE/logs/$inst.log" 2>&1 </dev/null &
		echo $! >"$STATE/run/$inst.pid"
		wait_for "$inst" 60 curl -fsS "http://$addr/healthz"
		log "started $inst on http://$addr (log: $STATE/logs/$inst.log)"
	done < <(instances "$name")
	if [[ $name == processor ]] && ((${PROCESSORS:-1} > 1)); then start_haproxy; fi
}

stop_service() {
	local f
	[[ $1 == processor ]] && stop_haproxy
	for f in $(pidfiles "$1"); do stop_pidfile "$(basename "$f" .pid)" "$f"; done
}

# shellcheck source=scripts/stack-instances.sh
source "$ROOT/scripts/stack-instances.sh"
# shellcheck source=scripts/stack-ha.sh
source "$ROOT/scripts/stack-ha.sh"

# --- commands --------------------------------------------------------------------------------

# Our ports lie in the kernel's ephemeral range: when allowed (root), reserve them, so that no
# outgoing connection borrows one as its local port while a server needs to bind it (RabbitMQ's
# distribution port was seen taken that way after a load test's many connections).
reserve_ports() {
	local f=/proc/sys/net/ipv4/ip_local_reserved_ports
	[[ -w $f ]] || return 0
	local cur ports
	cur=$(cat "$f")
	ports="$PG_PORT,$PGBOUNCER_PORT,$REDIS_PORT,$KAFKA_PORT,$MONGO_PORT,$CLICKHOUSE_PORT,$CLICKHOUSE_HTTP_PORT"
	ports+=",$CLICKHOUSE_INTERSERVER_PORT,$RABBITMQ_PORT,$RABBITMQ_MGMT_PORT,$RABBITMQ_DIST_PORT,$RABBITMQ_EPMD_PORT"
	printf '%s\n' "${cur:+$cur,}$ports" >"$f" 2>/dev/null || true
}

servers_up() {
	ensure_packages
	reserve_ports
	mkdir -p "$STATE/run" "$STATE/logs" "$STATE/bin"
	local s
	for s in "${SERVERS[@]}"; do
		if ! "running_$s"; then
			# Our ports lie in the kernel's ephemeral range, so an outgoing connection can hold
			# one for a moment: a failed start is tried once more (in a subshell, as die exits).
			if ! ("start_$s"); then
				"stop_$s" || true
				log "stack: retrying $s"
				sleep 2
				"start_$s"
			fi
			log "started $s"
		fi
		wait_for "$s" 60 "ready_$s"
	done
}

services_up() {
	local s
	for s in "${SERVICES[@]}"; do start_service "$s"; done
	start_workers
}

down() {
	local i
	stop_workers
	for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do stop_service "${SERVICES[i]}"; done
	for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do "stop_${SERVERS[i]}"; done
	# PostgreSQL of the other kind than this call's HA, if an earlier `up` started it
	if [[ ${HA:-0} == 1 ]]; then
		stop_postgres
	else
		for ((i = ${#HA_SERVERS[@]} - 1; i >= 0; i--)); do "stop_${HA_SERVERS[i]}"; done
	fi
}

status() {
	local s f
	for s in "${SERVERS[@]}"; do
		if "running_$s"; then echo "$s: running"; else echo "$s: stopped"; fi
	done
	for s in "${SERVICES[@]}"; do
		f=$(pidfiles "$s")
		if [[ -z $f ]]; then
			echo "$s: stopped"
			continue
		fi
		for f in $f; do
			if pid_alive "$f"; then echo "$(basename "$f" .pid): running"; else echo "$(basename "$f" .pid): stopped"; fi
		done
	done
	if pid_alive "$STATE/run/haproxy.pid"; then echo "haproxy: running ($(service_addr processor))"; fi
	for f in $(compgen -G "$STATE/run/loadtest-worker-[0-9]*.pid" | sort -V || true); do
		if pid_alive "$f"; then echo "$(basename "$f" .pid): running"; else echo "$(basename "$f" .pid): stopped"; fi
	done
}

case ${1:-} in
up)
	servers_up
	services_up
	for svc in "${SERVICES[@]}"; do
		if [[ $svc == processor ]] && ((${PROCESSORS:-1} > 1)); then
			echo "processor: http://$(service_addr processor) (HAProxy over $(instances processor | cut -d' ' -f2 | paste -sd' '))"
		else
			echo "$svc: $(instances "$svc" | cut -d' ' -f2 | sed 's|^|http://|' | paste -sd' ')"
		fi
	done
	if ((${LOADTEST_WORKERS:-0} > 0)); then
		echo "loadtest workers: local-1 to local-$LOADTEST_WORKERS, joined to the loadtest service"
	fi
	if [[ $RABBITMQ_MANAGEMENT == 1 ]]; then
		echo "rabbitmq management: http://127.0.0.1:$RABBITMQ_MGMT_PORT (guest/guest)"
	fi
	echo "admin token: $(admin_token)"
	;;
servers) servers_up ;;
down) down ;;
status) status ;;
env) mkdir -p "$STATE"; service_env ;;
haproxy-config) shift; haproxy_config "$@" ;;
ha-primary) pgha_primary ;;
*) die "usage: $0 up|servers|down|status|env|haproxy-config|ha-primary" ;;
esac
