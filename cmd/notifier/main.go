// Command notifier delivers notification tasks from RabbitMQ to the users' inboxes (MongoDB)
// and signed webhooks, retrying through delay queues and parking what keeps failing.
package main

import (
	"context"
	"log/slog"

	"txn/internal/config"
	"txn/internal/notifier"
	"txn/internal/service"
)

func main() {
	service.Main("notifier", func(ctx context.Context, env *config.Env, log *slog.Logger) error {
		cfg, err := notifier.FromEnv(env)
		if err != nil {
			return err
		}
		return notifier.Run(ctx, cfg, log)
	})
}
