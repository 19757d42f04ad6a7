package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"txn/internal/config"
	"txn/internal/loadtest"
)

// Exit codes of `loadtest run` (documented in its usage).
const (
	exitPass      = 0
	exitBroken    = 1 // a threshold broke, the verification failed, or the run was stopped or aborted
	exitUsage     = 2
	exitRunFailed = 3 // the run could not be done: processor unreachable, wrong token, ...
)

// cliOptions are the flags of `loadtest run`.
type cliOptions struct {
	cfg      loadtest.Config
	duration time.Duration
	rampUp   time.Duration
	target   loadtest.Target
	keep     bool
	jsonOut  bool
	report   string
}

// parseCLI parses the flags of `loadtest run`.
func parseCLI(args []string, stderr io.Writer) (cliOptions, error) {
	var o cliOptions
	fs, skew := o.flags(stderr)
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
	if len(o.cfg.Stages) > 0 {
		var clash []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "rate" || f.Name == "duration" || f.Name == "ramp-up" {
				clash = append(clash, "-"+f.Name)
			}
		})
		if len(clash) > 0 {
			return o, fmt.Errorf("-stage shapes the rate: leave out %s", strings.Join(clash, " and "))
		}
		o.cfg.Rate = 0 // the stages' peak and sum
	} else {
		o.cfg.DurationS, o.cfg.RampUpS = o.duration.Seconds(), o.rampUp.Seconds()
	}
	o.cfg = o.cfg.WithDefaults()
	if err := o.cfg.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

// flags defines the flags of `loadtest run` on o; skew is set once they are parsed.
func (o *cliOptions) flags(stderr io.Writer) (fs *flag.FlagSet, skew *float64) {
	fs = flag.NewFlagSet("loadtest run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: loadtest run [flags]\n\nOne load test against $PROCESSOR_URL with $TXN_ADMIN_TOKEN; no store needed.\n"+
			"Exit codes: 0 passed; 1 a threshold broke, the verification failed, or the run was stopped or aborted;\n"+
			"2 bad usage; 3 the run failed (processor unreachable, wrong token, ...).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.cfg.Name, "name", "", "a name for the run")
	fs.IntVar(&o.cfg.Users, "users", 100, "users to create")
	fs.IntVar(&o.cfg.AccountsPerUser, "accounts-per-user", 1, "accounts per user")
	fs.Float64Var(&o.cfg.Rate, "rate", 100, "requests per second once ramped up")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "running phase, ramp-up included")
	fs.DurationVar(&o.rampUp, "ramp-up", 0, "linear ramp from 0 to the rate")
	fs.Func("stage", "a stage DURATION:RATE, e.g. 30s:500 (repeat it; replaces -rate, -duration and -ramp-up)", func(s string) error {
		d, r, ok := strings.Cut(s, ":")
		dur, err1 := time.ParseDuration(d)
		rate, err2 := strconv.ParseFloat(r, 64)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("want DURATION:RATE, e.g. 30s:500")
		}
		o.cfg.Stages = append(o.cfg.Stages, loadtest.Stage{DurationS: dur.Seconds(), Rate: rate})
		return nil
	})
	fs.Int64Var(&o.cfg.InitialBalance, "initial-balance", loadtest.DefaultBalance, "balance seeded into every account (minor units)")
	fs.StringVar(&o.cfg.Currency, "currency", "USD", "the accounts' currency")
	fs.Int64Var(&o.cfg.MaxAmount, "max-amount", 0, "largest generated amount (default initial-balance/100)")
	skew = fs.Float64("skew", loadtest.DefaultSkew, "Zipf exponent for picking receiving accounts (0: uniform)")
	fs.IntVar(&o.cfg.Connections, "connections", 0, "most requests in flight (default rate/10, 32 to 1024)")
	fs.Uint64Var(&o.cfg.Seed, "seed", 0, "seed of the request sequence (default random)")
	fs.Func("mix", "shares of operations (transfer, deposit, withdrawal, read, hold), e.g. transfer=0.7,deposit=0.1,withdrawal=0.1,hold=0.1 (those left out: 0)", func(s string) error {
		m, err := loadtest.ParseMix(s)
		o.cfg.Mix = &m
		return err
	})
	threshold := func(s string) error {
		t, err := loadtest.ParseThreshold(s)
		o.cfg.Thresholds = append(o.cfg.Thresholds, t)
		return err
	}
	fs.Func("threshold", "a threshold, k6-like: p99_ms<50, error_rate<0.01 or achieved_ratio>0.99, optionally with ,window=10s and ,abort (repeat it)", threshold)
	fs.Func("max-p99", "short for -threshold p99_ms<N: fail when the p99 latency is over this, e.g. 50ms", func(s string) error {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a positive duration (e.g. 50ms)", s)
		}
		return threshold(fmt.Sprintf("p99_ms<%g", float64(d)/float64(time.Millisecond)))
	})
	fs.Func("max-error-rate", "short for -threshold error_rate<N: e.g. 0.1% (422 rejections excluded)", func(s string) error {
		return threshold("error_rate<" + strings.TrimSpace(s))
	})
	fs.Func("min-achieved-ratio", "short for -threshold achieved_ratio>N: the achieved rate's least share of the scheduled one, e.g. 0.99", func(s string) error {
		return threshold("achieved_ratio>" + strings.TrimSpace(s))
	})
	fs.BoolVar(&o.keep, "keep", false, "keep the run's users, accounts and transactions (default: purge them)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the run as JSON (thresholds included) instead of a summary")
	fs.StringVar(&o.report, "report", "", "write the run's HTML report to this file")
	fs.StringVar(&o.target.URL, "processor", envOr("PROCESSOR_URL", config.Defaults["PROCESSOR_URL"]), "processor URL ($PROCESSOR_URL)")
	o.target.AdminToken = os.Getenv("TXN_ADMIN_TOKEN")
	return fs, skew
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// runCLI runs one load test against the processor, prints it, and returns its exit code.
func runCLI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseCLI(args, stderr)
	if err != nil {
		if err == flag.ErrHelp {
			return exitPass
		}
		fmt.Fprintln(stderr, "loadtest run:", err)
		return exitUsage
	}
	id := uuid.Must(uuid.NewV7()).String()
	x, err := loadtest.NewExecution(id, o.cfg, loadtest.ExecutionDeps{Target: o.target})
	if err != nil {
		fmt.Fprintln(stderr, "loadtest run:", err)
		return exitUsage
	}
	defer x.Close()
	fmt.Fprintf(stderr, "run %s: preparing %d users, %d accounts at %s\n", id, o.cfg.Users, o.cfg.Users*o.cfg.AccountsPerUser, o.target.URL)

	// An interrupt stops the sending; the run is still settled and verified (a second one
	// kills the process: main restores the default handling when ctx ends).
	go func() {
		<-ctx.Done()
		if x.Stop() {
			fmt.Fprintln(stderr, "  interrupted: stopping, then settling and verifying (interrupt again to quit)")
		}
	}()
	progress := newProgressPrinter(stderr, o.cfg)
	run := x.Execute(context.WithoutCancel(ctx), nil, func(r loadtest.Run, transition bool) {
		if !transition {
			progress.print(r)
		}
	})
	code := verdict(run)

	if !o.keep && run.Progress != nil && run.Progress.Users > 0 {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		res, err := loadtest.Cleanup(cctx, loadtest.NewLedgerClient(o.target.URL, o.target.AdminToken, 4, 0), id, loadtest.Cleaners{}, nil)
		cancel()
		if err != nil {
			fmt.Fprintln(stderr, "cleanup failed:", err)
			code = max(code, exitBroken)
		} else {
			run.Cleanup = &res
		}
	}
	if o.report != "" {
		if err := writeReport(o.report, loadtest.Record{Run: run, Points: x.Points(), Distribution: x.Distribution()}); err != nil {
			fmt.Fprintln(stderr, "report:", err)
			code = max(code, exitBroken)
		} else {
			fmt.Fprintln(stderr, "report written to", o.report)
		}
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(run)
	} else {
		printSummary(stdout, run, o.keep)
	}
	return code
}

// verdict is the exit code a finished run earns.
func verdict(r loadtest.Run) int {
	switch {
	case r.Status == loadtest.StatusFailed:
		return exitRunFailed
	case r.Status != loadtest.StatusCompleted, len(loadtest.Broken(r)) > 0,
		r.Verification == nil || !r.Verification.OK:
		return exitBroken
	}
	return exitPass
}

// writeReport writes a run's HTML report to path.
func writeReport(path string, rec loadtest.Record) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := loadtest.WriteReport(f, rec); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// progressPrinter writes a run's progress once a second: preparation, then what was sent in
// the last second, elapsed time and what is left.
type progressPrinter struct {
	w        io.Writer
	duration float64
	lastSent uint64
	lastAt   time.Time
}

func newProgressPrinter(w io.Writer, cfg loadtest.Config) *progressPrinter {
	return &progressPrinter{w: w, duration: cfg.DurationS}
}

func (p *progressPrinter) print(r loadtest.Run) {
	now := time.Now()
	if r.StartedAt == nil {
		if pr := r.Progress; pr != nil {
			fmt.Fprintf(p.w, "  preparing  %s %.0f%%\n", pr.Step, 100*pr.Fraction)
		}
		return
	}
	el := now.Sub(*r.StartedAt).Seconds()
	rate := 0.0
	if !p.lastAt.IsZero() {
		rate = float64(r.Sent-p.lastSent) / now.Sub(p.lastAt).Seconds()
	}
	p.lastSent, p.lastAt = r.Sent, now
	left := max(0, p.duration-el)
	fmt.Fprintf(p.w, "  running  %5.1f s of %.0f s, %3.0f s left: %s sent (%s/s now, target %s/s), %s ok, %s failed, %d in flight, p99 %s ms\n",
		el, p.duration, left, count(r.Sent), num(rate, 0), num(r.TargetRate, 0), count(r.OK), count(r.Failed), r.InFlight, num(r.LatencyMs.P99, 2))
}

// count formats n with thousands separators.
func count(n uint64) string { return num(float64(n), 0) }

// num formats v with digits decimals and thousands separators.
func num(v float64, digits int) string {
	s := strconv.FormatFloat(v, 'f', digits, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if neg {
		out = "-" + out
	}
	if frac != "" {
		out += "." + frac
	}
	return out
}

// printSummary writes a run for people, k6-like: one dotted line per figure, the thresholds
// with what they observed, and the verdict.
func printSummary(w io.Writer, r loadtest.Run, kept bool) {
	el := 0.0
	if r.StartedAt != nil && r.EndedAt != nil {
		el = r.EndedAt.Sub(*r.StartedAt).Seconds()
	}
	title := "run " + r.ID
	if r.Name != "" {
		title += " (" + r.Name + ")"
	}
	if r.StartedAt == nil {
		fmt.Fprintf(w, "%s: %s before sending\n", title, r.Status)
	} else {
		fmt.Fprintf(w, "%s: %s after %.1f s of sending\n", title, r.Status, el)
	}
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %s %s %s\n", label, strings.Repeat(".", max(2, 16-len(label))), fmt.Sprintf(format, args...))
	}
	if r.StartedAt != nil { // a run that never sent has no figures to show
		printFigures(line, r)
	}
	printOutcome(w, line, r, kept)
}

// printFigures writes what a run sent and how it was answered.
func printFigures(line func(label, format string, args ...any), r loadtest.Run) {
	line("requests", "%s sent of %s scheduled: %s ok, %s failed (%s refused by a business rule)",
		count(r.Sent), count(r.Scheduled), count(r.OK), count(r.Failed), count(r.Rejected))
	line("error rate", "%.3f %% (refusals by a business rule excluded)", 100*r.ErrorRate)
	line("rate", "target %s/s, scheduled %s/s, achieved %s/s (%.1f %% of scheduled); %s sends over 1 ms late",
		num(r.TargetRate, 1), num(r.ScheduledRate, 1), num(r.AchievedRate, 1), 100*r.AchievedRatio(), count(r.Late))
	if r.BehindDetail != "" {
		line("behind", "%s", r.BehindDetail)
	}
	l := r.LatencyMs
	line("latency", "p50 %s ms, p90 %s ms, p99 %s ms, p99.9 %s ms, max %s ms (from the scheduled send)",
		num(l.P50, 2), num(l.P90, 2), num(l.P99, 2), num(l.P999, 2), num(l.Max, 2))
	if len(r.Errors) > 0 {
		codes := make([]string, 0, len(r.Errors))
		for c := range r.Errors {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		parts := make([]string, len(codes))
		for i, c := range codes {
			parts[i] = fmt.Sprintf("%s %s", c, count(r.Errors[c]))
		}
		line("errors", "%s", strings.Join(parts, ", "))
	}
	for _, g := range r.ByOp {
		line(g.Op, "%-20s %8s  p50 %s ms  p99 %s ms", g.Outcome, count(g.Count), num(g.Latency.P50, 2), num(g.Latency.P99, 2))
	}
}

// printOutcome writes the verification, cleanup, thresholds and the verdict.
func printOutcome(w io.Writer, line func(label, format string, args ...any), r loadtest.Run, kept bool) {
	if v := r.Verification; v != nil {
		verdict := "ok"
		if !v.OK {
			verdict = "FAILED: " + strings.Join(v.Problems, "; ")
		}
		line("verification", "%s; reconciliation balanced %v; balances %s, expected %s; %s transactions accepted; %d ambiguous answers settled, %d unresolved",
			verdict, v.Balanced, num(float64(v.ActualBalanceTotal), 0), num(float64(v.ExpectedBalanceTotal), 0), count(uint64(v.Accepted)),
			v.Ambiguous-v.Unresolved, v.Unresolved)
		if h := v.Holds; h != nil {
			line("holds", "%s created: %s captured (%s moved), %s voided, %s expired, %s left pending (%s reserved)",
				count(uint64(h.Created)), count(uint64(h.Captured)), num(float64(h.CapturedAmount), 0), count(uint64(h.Voided)),
				count(uint64(h.Expired)), count(uint64(h.Pending)), num(float64(h.Held), 0))
		}
	}
	if c := r.Cleanup; c != nil {
		line("cleanup", "purged %d users, %d accounts, %d transactions", c.Users, c.Accounts, c.Transactions)
	} else if kept {
		line("kept", "the run's data (tag %s)", r.ID)
	}
	if len(r.Thresholds) > 0 {
		fmt.Fprintln(w, "thresholds")
		for _, t := range r.Thresholds {
			mark, observed := "-", "not judged"
			if t.Passed != nil {
				mark = map[bool]string{true: "✓", false: "✗"}[*t.Passed]
			}
			if t.Observed != nil {
				observed = "observed " + strconv.FormatFloat(*t.Observed, 'g', 5, 64)
			}
			fmt.Fprintf(w, "  %s %s %s %s\n", mark, t, strings.Repeat(".", max(2, 36-len(t.String()))), observed)
		}
	}
	if reasons := failures(r); len(reasons) > 0 {
		for _, f := range reasons {
			fmt.Fprintln(w, "FAIL:", f)
		}
		return
	}
	fmt.Fprintln(w, "PASS")
}

// failures lists why a run did not pass; none when it did.
func failures(r loadtest.Run) []string {
	var out []string
	switch r.Status {
	case loadtest.StatusCompleted:
	case loadtest.StatusAborted:
		out = append(out, "aborted: "+r.AbortReason)
	case loadtest.StatusStopped:
		out = append(out, "the run was stopped before its end")
	default:
		out = append(out, "the run "+r.Status+": "+r.Error)
	}
	for _, b := range loadtest.Broken(r) {
		out = append(out, "threshold "+b)
	}
	if v := r.Verification; v == nil && r.Status != loadtest.StatusFailed {
		out = append(out, "not verified")
	} else if v != nil && !v.OK {
		out = append(out, "verification failed: "+strings.Join(v.Problems, "; "))
	}
	return out
}
