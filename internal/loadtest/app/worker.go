package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"txn/internal/config"
	"txn/internal/loadtest"
)

// workerCLI runs `loadtest worker` until ctx ends: 0 then, 2 on bad usage, 1 when the service
// refuses it.
func workerCLI(ctx context.Context, args []string, stderr io.Writer) int {
	env := config.New(nil)
	host, _ := os.Hostname()
	cfg := loadtest.WorkerConfig{Token: env.String("TXN_ADMIN_TOKEN", "")}
	fs := flag.NewFlagSet("loadtest worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Service, "service", env.Setting("LOADTEST_URL"), "the loadtest service's URL ($LOADTEST_URL)")
	fs.StringVar(&cfg.Name, "name", host+"-"+strconv.Itoa(os.Getpid()), "how the service lists this worker")
	fs.StringVar(&cfg.Target, "target", "", "the processor's URL from this machine (default: the service's)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: loadtest worker [flags]\n\nA load worker: joins the loadtest service with $TXN_ADMIN_TOKEN and sends its share of\n"+
			"every run started with \"workers\": n, reporting its counts and latency histograms to the\n"+
			"service, which merges them. Stop it with SIGINT or SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 || cfg.Token == "" || env.Err() != nil {
		fmt.Fprintln(stderr, "loadtest worker: TXN_ADMIN_TOKEN must be set, and no arguments given;", env.Err())
		return exitUsage
	}
	cfg.Log = env.Logger("loadtest-worker")
	if err := loadtest.RunWorker(ctx, cfg); err != nil && ctx.Err() == nil {
		fmt.Fprintln(stderr, "loadtest worker:", err)
		return 1
	}
	return 0
}
