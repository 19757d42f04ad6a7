package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"txn/internal/loadtest"
)

// cliOptions are the flags of `loadtest run`.
type cliOptions struct {
	cfg        loadtest.Config
	duration   time.Duration
	rampUp     time.Duration
	thresholds loadtest.Thresholds
	target     loadtest.Target
	keep       bool
	jsonOut    bool
}

// parseCLI parses the flags of `loadtest run`.
func parseCLI(args []string, stderr io.Writer) (cliOptions, error) {
	o := cliOptions{thresholds: loadtest.NoThresholds}
	fs := flag.NewFlagSet("loadtest run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.cfg.Users, "users", 100, "users to create")
	fs.IntVar(&o.cfg.AccountsPerUser, "accounts-per-user", 1, "accounts per user")
	fs.Float64Var(&o.cfg.Rate, "rate", 100, "requests per second once ramped up")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "running phase, ramp-up included")
	fs.DurationVar(&o.rampUp, "ramp-up", 0, "linear ramp from 0 to the rate")
	fs.Int64Var(&o.cfg.InitialBalance, "initial-balance", loadtest.DefaultBalance, "balance seeded into every account (minor units)")
	fs.StringVar(&o.cfg.Currency, "currency", "USD", "the accounts' currency")
	fs.Int64Var(&o.cfg.MaxAmount, "max-amount", 0, "largest generated amount (default initial-balance/100)")
	skew := fs.Float64("skew", loadtest.DefaultSkew, "Zipf exponent for picking receiving accounts (0: uniform)")
	fs.IntVar(&o.cfg.Connections, "connections", 0, "most requests in flight (default rate/10, 32 to 1024)")
	fs.Uint64Var(&o.cfg.Seed, "seed", 0, "seed of the request sequence (default random)")
	fs.Func("mix", "shares of operations, e.g. transfer=0.8,deposit=0.1,withdrawal=0.1 (those left out: 0)", func(s string) error {
		m, err := loadtest.ParseMix(s)
		o.cfg.Mix = &m
		return err
	})
	fs.Func("max-p99", "fail when the p99 latency is over this, e.g. 50ms", func(s string) (err error) {
		o.thresholds.MaxP99, err = loadtest.ParseLatency(s)
		return err
	})
	fs.Func("max-error-rate", "fail when more requests than this end in an error (422 rejections excluded), e.g. 0.1%", func(s string) (err error) {
		o.thresholds.MaxErrorRate, err = loadtest.ParseRate(s)
		return err
	})
	fs.Func("min-achieved-ratio", "fail when the achieved rate is under this share of the scheduled one, e.g. 0.99", func(s string) (err error) {
		o.thresholds.MinAchievedRatio, err = loadtest.ParseRatio(s)
		return err
	})
	fs.BoolVar(&o.keep, "keep", false, "keep the run's users, accounts and transactions (default: purge them)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the run as JSON instead of a summary")
	fs.StringVar(&o.target.URL, "processor", envOr("PROCESSOR_URL", "http://127.0.0.1:8000"), "processor URL ($PROCESSOR_URL)")
	o.target.AdminToken = os.Getenv("TXN_ADMIN_TOKEN")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.target.AdminToken == "" {
		return o, fmt.Errorf("TXN_ADMIN_TOKEN must be set to the processor's admin token")
	}
	o.cfg.Skew = skew
	o.cfg.DurationS, o.cfg.RampUpS = o.duration.Seconds(), o.rampUp.Seconds()
	o.cfg = o.cfg.WithDefaults()
	if err := o.cfg.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// runCLI runs one load test against the processor, prints it, and returns 1 when it failed
// verification or broke a threshold (2 for bad usage).
func runCLI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseCLI(args, stderr)
	if err != nil {
		if err != flag.ErrHelp {
			fmt.Fprintln(stderr, "loadtest run:", err)
			return 2
		}
		return 0
	}
	id := uuid.Must(uuid.NewV7()).String()
	x := loadtest.NewExecution(id, o.cfg, o.target)
	defer x.Close()
	run := loadtest.Run{ID: id, Status: loadtest.StatusPreparing, Config: o.cfg, CreatedAt: time.Now().UTC()}
	fmt.Fprintf(stderr, "run %s: preparing %d users, %d accounts at %s\n", id, o.cfg.Users, o.cfg.Users*o.cfg.AccountsPerUser, o.target.URL)

	// Progress on stderr once a second, so stdout holds only the result.
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r := run
				x.Fill(&r, nil)
				if r.StartedAt == nil {
					fmt.Fprintf(stderr, "  preparing: %s %.0f%%\n", r.Progress.Step, 100*r.Progress.Fraction)
				} else {
					fmt.Fprintf(stderr, "  running: %d sent, %d ok, %d failed, %.0f req/s, p99 %.2f ms\n",
						r.Sent, r.OK, r.Failed, r.AchievedRate, r.LatencyMs.P99)
				}
			}
		}
	}()

	code := 0
	if err := x.Prepare(ctx); err != nil {
		run.Status, run.Error = loadtest.StatusFailed, "preparation failed: "+err.Error()
		code = 1
	} else {
		res, err := x.Generate(ctx, nil)
		switch {
		case err != nil:
			run.Status, run.Error = loadtest.StatusFailed, err.Error()
			code = 1
		case res.Stopped:
			run.Status = loadtest.StatusStopped
		default:
			run.Status = loadtest.StatusCompleted
		}
		if err == nil {
			x.Fill(&run, &res)
			// Settle and verify even after an interrupt: the answers still need their money.
			vctx := context.WithoutCancel(ctx)
			x.Settle(vctx)
			run.Verification = x.Verify(vctx, nil, 0)
		}
	}
	run.Phase = loadtest.PhaseDone
	if run.Progress == nil {
		x.Fill(&run, nil)
	}
	broken := o.thresholds.Check(run)
	if v := run.Verification; v != nil && !v.OK {
		broken = append(broken, "verification failed: "+strings.Join(v.Problems, "; "))
	}
	if run.Status == loadtest.StatusStopped {
		broken = append(broken, "the run was interrupted")
	}
	if len(broken) > 0 {
		code = 1
	}

	if !o.keep {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		res, err := loadtest.Cleanup(cctx, loadtest.NewProcessor(o.target.URL, o.target.AdminToken, &http.Client{}), id, loadtest.Cleaners{})
		cancel()
		if err != nil {
			fmt.Fprintln(stderr, "cleanup failed:", err)
			code = 1
		} else {
			run.Cleanup = &res
		}
	}

	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(run)
	} else {
		printSummary(stdout, run, broken, o.keep)
	}
	return code
}

// printSummary writes a run for people.
func printSummary(w io.Writer, r loadtest.Run, broken []string, kept bool) {
	el := 0.0
	if r.StartedAt != nil && r.EndedAt != nil {
		el = r.EndedAt.Sub(*r.StartedAt).Seconds()
	}
	fmt.Fprintf(w, "run %s: %s after %.1f s of sending", r.ID, r.Status, el)
	if r.Error != "" {
		fmt.Fprintf(w, " (%s)", r.Error)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  requests  %d sent of %d scheduled, %d ok, %d failed (%d rejected by a business rule; error rate %.3f%%)\n",
		r.Sent, r.Scheduled, r.OK, r.Failed, r.Rejected, 100*r.ErrorRate)
	behind := ""
	if r.Behind {
		behind = "  -- the generator fell behind"
	}
	fmt.Fprintf(w, "  rate      target %.1f/s, scheduled %.1f/s, achieved %.1f/s (%.4f); %d late sends%s\n",
		r.TargetRate, r.ScheduledRate, r.AchievedRate, r.AchievedRatio(), r.Late, behind)
	l := r.LatencyMs
	fmt.Fprintf(w, "  latency   p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms (from the scheduled send)\n",
		l.P50, l.P90, l.P99, l.P999, l.Max)
	if len(r.Errors) > 0 {
		codes := make([]string, 0, len(r.Errors))
		for c := range r.Errors {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		parts := make([]string, len(codes))
		for i, c := range codes {
			parts[i] = fmt.Sprintf("%s %d", c, r.Errors[c])
		}
		fmt.Fprintf(w, "  errors    %s\n", strings.Join(parts, ", "))
	}
	for _, g := range r.ByOp {
		fmt.Fprintf(w, "  %-10s %-20s %8d  p50 %.2f ms  p99 %.2f ms\n", g.Op, g.Outcome, g.Count, g.Latency.P50, g.Latency.P99)
	}
	if v := r.Verification; v != nil {
		verdict := "ok"
		if !v.OK {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "  verify    %s: reconciliation balanced %v; balances %d, expected %d; %d transactions accepted; %d ambiguous answers settled, %d unresolved\n",
			verdict, v.Balanced, v.ActualBalanceTotal, v.ExpectedBalanceTotal, v.Accepted, v.Ambiguous-v.Unresolved, v.Unresolved)
	}
	if c := r.Cleanup; c != nil {
		fmt.Fprintf(w, "  cleanup   purged %d users, %d accounts, %d transactions\n", c.Users, c.Accounts, c.Transactions)
	} else if kept {
		fmt.Fprintf(w, "  kept      the run's data (tag %s)\n", r.ID)
	}
	if len(broken) == 0 {
		fmt.Fprintln(w, "PASS")
		return
	}
	for _, b := range broken {
		fmt.Fprintln(w, "FAIL:", b)
	}
}
