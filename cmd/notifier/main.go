// Command notifier delivers notification tasks from RabbitMQ to the users' inboxes (MongoDB)
// and signed webhooks, retrying through delay queues and parking what keeps failing.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"txn/internal/config"
	"txn/internal/notifier"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	env := config.New(nil)
	log := env.Logger("notifier")
	cfg, err := notifier.FromEnv(env)
	if err == nil {
		err = notifier.Run(ctx, cfg, log)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "notifier:", err)
		os.Exit(1)
	}
}
