# Sourced by scripts that run a private copy of the whole system beside the one `make up` runs:
# its own state directory and ports, so neither disturbs the other.
#   PRIVATE_NAME=bench-system PRIVATE_PORT_BASE=1 source scripts/private-stack.sh
# puts the state in .state/$PRIVATE_NAME and the servers on <base>5432, <base>6432, ... and the
# services on 1<base>100-1<base>103. Base 2 keeps them all under 32768, out of the range Linux
# takes ephemeral ports from, where a listener can find its port taken by an outgoing socket.
# private_fresh empties it; private_down stops it.
: "${PRIVATE_NAME:?}" "${PRIVATE_PORT_BASE:?}"
b=$PRIVATE_PORT_BASE
export STATE_DIR=$ROOT/.state/$PRIVATE_NAME
export PG_PORT=${b}5432 PGBOUNCER_PORT=${b}6432 REDIS_PORT=${b}6379 KAFKA_PORT=${b}9092 MONGO_PORT=${b}7017
export CLICKHOUSE_PORT=${b}9000 CLICKHOUSE_HTTP_PORT=${b}9001 CLICKHOUSE_INTERSERVER_PORT=${b}9002
export RABBITMQ_PORT=${b}5672 RABBITMQ_MANAGEMENT=0
port=1${b}100
export PROCESSOR_ADDR=127.0.0.1:$port PROCESSOR_URL=http://127.0.0.1:$port LOADTEST_ADDR=127.0.0.1:$((port + 1))
export CONSUMER_ADDR=127.0.0.1:$((port + 2)) NOTIFIER_ADDR=127.0.0.1:$((port + 3))
export LOG_LEVEL=${LOG_LEVEL:-warn}
unset b port

# private_fresh stops the private stack and deletes its data.
private_fresh() {
	"$ROOT/scripts/stack.sh" down 2>/dev/null || true
	rm -rf "$STATE_DIR"
	# PostgreSQL's data may live outside the state directory (see pg_home in stack.sh).
	rm -rf "/var/tmp/txn-$(printf '%s' "$STATE_DIR" | cksum | cut -d' ' -f1)"
}

private_down() { "$ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true; }
