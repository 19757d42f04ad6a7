// Command processor serves the payments API (API.md) on PostgreSQL, through PgBouncer, with Redis.
package main

import (
	"context"
	"log/slog"

	"txn/internal/config"
	"txn/internal/processor"
	"txn/internal/service"
)

func main() {
	service.Main("processor", func(ctx context.Context, env *config.Env, log *slog.Logger) error {
		cfg, err := processor.FromEnv(env)
		if err != nil {
			return err
		}
		return processor.Run(ctx, cfg, log)
	})
}
