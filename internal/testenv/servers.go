package testenv

import (
	"strings"
	"testing"
)

// The event pipeline's servers, as the local stack runs them (scripts/stack.sh; `scripts/stack.sh
// env` prints the same variables). Locally, Kafka and MongoDB are wire-compatible stand-ins:
// cmd/kafkalocal (franz-go's kfake) and cmd/mongolocal (FerretDB).

// KafkaBrokers returns the Kafka seed brokers ($KAFKA_BROKERS, comma-separated).
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	Integration(t)
	return strings.Split(env("KAFKA_BROKERS"), ",")
}

// PrivateBroker is a Kafka stand-in of a test's own, to kill and restart at will.
type PrivateBroker struct {
	*Proc
	Addr string // host:port
	Dir  string // its data directory, in the test's temp dir
}

// StartPrivateBroker starts ./cmd/kafkalocal on a free port with an empty data directory; it
// is stopped at cleanup. Not for -short runs: it builds and starts a process.
func StartPrivateBroker(t testing.TB) *PrivateBroker {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a broker of its own")
	}
	addr := FreeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	dir := t.TempDir()
	p := StartProc(t, "kafkalocal", "KAFKA_PORT="+port, "KAFKA_DATA_DIR="+dir, "PPROF_ADDR=")
	return &PrivateBroker{Proc: p, Addr: addr, Dir: dir}
}

// MongoURL returns the MongoDB connection string ($MONGO_URL); its path names the database.
func MongoURL(t testing.TB) string {
	t.Helper()
	Integration(t)
	return env("MONGO_URL")
}

// ClickHouseAddr returns ClickHouse's native-protocol address ($CLICKHOUSE_ADDR), host:port.
func ClickHouseAddr(t testing.TB) string {
	t.Helper()
	Integration(t)
	return env("CLICKHOUSE_ADDR")
}

// RabbitURL returns the RabbitMQ AMQP URL ($RABBITMQ_URL).
func RabbitURL(t testing.TB) string {
	t.Helper()
	Integration(t)
	return env("RABBITMQ_URL")
}
