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
			DirectURL: env.Setting("DATABASE_DIRECT_URL"),
			Brokers:   kafka.Brokers(env.Setting("KAFKA_BROKERS")),
			Topic:     env.Setting("KAFKA_TOPIC"),
		}
		addr := env.Setting("RELAY_ADDR")
		if err := env.Err(); err != nil {
			return err
		}
		return service.Run(ctx, addr, log, func(ctx context.Context, s *service.Service) error {
			return processor.RunRelay(ctx, cfg, log, s.Registry)
		})
	})
}
