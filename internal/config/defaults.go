package config

// Defaults is the one table of local defaults: where each server and service of the local stack
// (scripts/stack.sh, with its default ports) is found when the environment does not say.
var Defaults = map[string]string{
	"PROCESSOR_ADDR":      "127.0.0.1:8000",
	"PROCESSOR_URL":       "http://127.0.0.1:8000",
	"LOADTEST_ADDR":       "127.0.0.1:8001",
	"LOADTEST_URL":        "http://127.0.0.1:8001",
	"CONSUMER_ADDR":       "127.0.0.1:8002",
	"NOTIFIER_ADDR":       "127.0.0.1:8003",
	"RELAY_ADDR":          "127.0.0.1:8004",
	"DATABASE_URL":        "postgres://txn:txn@127.0.0.1:56432/txn?default_query_exec_mode=cache_describe",
	"DATABASE_DIRECT_URL": "postgres://txn:txn@127.0.0.1:55432/txn",
	"REDIS_URL":           "redis://127.0.0.1:56379/0",
	"REDIS_PREFIX":        "txn:",
	"KAFKA_BROKERS":       "127.0.0.1:59092",
	"KAFKA_TOPIC":         "txn.events",
	"CLICKHOUSE_ADDR":     "127.0.0.1:59000",
	"CLICKHOUSE_DATABASE": "txn",
	"MONGO_URL":           "mongodb://127.0.0.1:57017/txn",
	"RABBITMQ_URL":        "amqp://guest:guest@127.0.0.1:55672/",
}

// Setting is the variable's value, or its entry in Defaults when unset.
func (e *Env) Setting(key string) string {
	def, ok := Defaults[key]
	if !ok {
		panic("config: no local default for " + key)
	}
	return e.String(key, def)
}
