// Command processor serves the payments API (API.md) on PostgreSQL, through PgBouncer, with Redis.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"txn/internal/config"
	"txn/internal/processor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	env := config.New(nil)
	log := env.Logger("processor")
	cfg, err := processor.FromEnv(env)
	if err == nil {
		err = processor.Run(ctx, cfg, log)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "processor:", err)
		os.Exit(1)
	}
}
