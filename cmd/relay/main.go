// Command relay runs an outbox relay on its own (the processor also runs one unless
// RELAY_ENABLED=false): it moves committed events from PostgreSQL's outbox to Kafka. Any number
// may run; one leads, the others take over when it dies.
package main

import (
	"context"
	"log/slog"

	"txn/internal/config"
	"txn/internal/kafka"
	"txn/internal/processor"
	"txn/internal/service"
)

func main() {
	service.Main("relay", func(ctx context.Context, env *config.Env, log *slog.Logger) error {
		cfg := processor.RelayConfig{
			DirectURL: env.String("DATABASE_DIRECT_URL", "postgres://txn:txn@127.0.0.1:55432/txn"),
			Brokers:   kafka.Brokers(env.String("KAFKA_BROKERS", "127.0.0.1:59092")),
			Topic:     env.String("KAFKA_TOPIC", "txn.events"),
		}
		addr := env.String("RELAY_ADDR", "127.0.0.1:8004")
		if err := env.Err(); err != nil {
			return err
		}
		return service.Run(ctx, addr, log, func(ctx context.Context, s *service.Service) error {
			return processor.RunRelay(ctx, cfg, log, s.Registry)
		})
	})
}
