// Command sysbench measures the whole local system: it runs the loadtest service at a series of
// rates through its API and prints, per rate, the run's figures, how long the downstream effects
// took to land, and the CPU time per transaction of every component's processes.
// scripts/bench-system.sh (make bench-system) starts a private system and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"txn/internal/sysbench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "sysbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var c sysbench.Config
	var rates, state string
	flag.StringVar(&c.LoadtestURL, "loadtest", "http://127.0.0.1:8001", "loadtest service URL")
	flag.StringVar(&c.ConsumerURL, "consumer", "http://127.0.0.1:8002", "consumer service URL (metrics)")
	flag.StringVar(&c.NotifierURL, "notifier", "http://127.0.0.1:8003", "notifier service URL (metrics)")
	flag.StringVar(&c.Token, "token", os.Getenv("TXN_ADMIN_TOKEN"), "admin token")
	flag.StringVar(&state, "state", ".state", "the local stack's state directory (its pid files)")
	flag.StringVar(&rates, "rates", "1000,2000,3000,4000,5000", "requests per second, comma-separated")
	flag.IntVar(&c.Users, "users", 1000, "users per run")
	flag.IntVar(&c.Workers, "workers", 0, "load workers that send each run (0: the loadtest service)")
	flag.Float64Var(&c.DurationS, "duration", 60, "seconds per run")
	flag.DurationVar(&c.Warmup, "warmup", 5*time.Second, "start of the running phase left out of the CPU window")
	flag.DurationVar(&c.EffectsWait, "effects-wait", 60*time.Second, "how long to wait for the downstream effects")
	flag.Parse()
	c.Components, c.Log = sysbench.LocalStack(state), os.Stderr
	var results []sysbench.Result
	for _, s := range strings.Split(rates, ",") {
		rate, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || rate <= 0 {
			return fmt.Errorf("rate %q: not a positive number", s)
		}
		r, err := c.Measure(ctx, rate)
		if err != nil {
			return err
		}
		results = append(results, r)
		effects := "not within the wait"
		if r.EffectsAfter >= 0 {
			effects = "after " + r.EffectsAfter.Round(100*time.Millisecond).String()
		}
		fmt.Fprintf(os.Stderr, "  achieved %.0f/s, p99 %.1f ms, %.0f µs CPU per transaction, effects %s\n",
			r.Achieved, r.P99, r.CPUPerTx(""), effects)
	}
	sysbench.WriteReport(os.Stdout, results, c.Components,
		sysbench.Goal{MinAchievedRatio: 0.99, MaxP99Ms: 100, MaxEffects: 10 * time.Second})
	return nil
}
