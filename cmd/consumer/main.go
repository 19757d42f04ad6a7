// Command consumer applies transaction events from Kafka to the read models: analytics in
// ClickHouse, activity feeds in MongoDB and notification tasks in RabbitMQ.
package main

import (
	"context"
	"log/slog"

	"txn/internal/config"
	"txn/internal/consumer"
	"txn/internal/service"
)

func main() {
	service.Main("consumer", func(ctx context.Context, env *config.Env, log *slog.Logger) error {
		cfg, err := consumer.FromEnv(env)
		if err != nil {
			return err
		}
		return consumer.Run(ctx, cfg, log)
	})
}
