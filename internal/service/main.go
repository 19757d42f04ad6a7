package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"txn/internal/config"
)

// Main is a service's main: run gets a context cancelled by SIGINT or SIGTERM, the environment
// and the service's JSON logger; an error is printed and the process exits 1.
func Main(name string, run func(ctx context.Context, env *config.Env, log *slog.Logger) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	env := config.New(nil)
	log := env.Logger(name)
	StartPprof(env, log)
	err := run(ctx, env, log)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
