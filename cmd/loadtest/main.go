// Command loadtest is the load tester: with no arguments (or "serve") the service with its API
// and web UI; "run" runs one load test from the command line and exits non-zero when it breaks
// a threshold, for CI.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"txn/internal/loadtest/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
