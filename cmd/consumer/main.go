// Command consumer applies transaction events from Kafka to the read models: analytics in
// ClickHouse, activity feeds in MongoDB and notification tasks in RabbitMQ.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"txn/internal/config"
	"txn/internal/consumer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	env := config.New(nil)
	log := env.Logger("consumer")
	cfg, err := consumer.FromEnv(env)
	if err == nil {
		err = consumer.Run(ctx, cfg, log)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}
