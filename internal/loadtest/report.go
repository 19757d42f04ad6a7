package loadtest

import (
	"fmt"
	"io"
	"strings"
	"time"

	"txn/internal/loadtest/report"
)

// WriteReport writes rec as one self-contained HTML page (GET /runs/{id}/report).
func WriteReport(w io.Writer, rec Record) error {
	r := rec.Run
	d := report.Data{GeneratedAt: time.Now().UTC(), Run: report.Run{
		ID: r.ID, Name: r.Name, Status: r.Status, Error: r.Error, AbortReason: r.AbortReason,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, EndedAt: r.EndedAt, Config: configKVs(r.Config),
		Sent: r.Sent, OK: r.OK, Failed: r.Failed, Rejected: r.Rejected, Scheduled: r.Scheduled, ErrorRate: r.ErrorRate,
		TargetRate: r.TargetRate, ScheduledRate: r.ScheduledRate, AchievedRate: r.AchievedRate,
		Latency: report.Latency{P50: r.LatencyMs.P50, P90: r.LatencyMs.P90, P99: r.LatencyMs.P99, P999: r.LatencyMs.P999, Max: r.LatencyMs.Max},
		Errors:  r.Errors, BehindDetail: r.BehindDetail,
	}}
	for _, t := range r.Thresholds {
		d.Run.Thresholds = append(d.Run.Thresholds, report.Threshold{Metric: t.Metric, Max: t.Max, Min: t.Min,
			WindowS: t.WindowS, Abort: t.Abort, Observed: t.Observed, Passed: t.Passed})
	}
	if v := r.Verification; v != nil {
		d.Run.Verification = &report.Verification{OK: v.OK, Balanced: v.Balanced, BalancesMatch: v.BalancesMatch,
			Accepted: v.Accepted, EventsInAnalytics: v.EventsInAnalytics, ExpectedInAnalytics: v.ExpectedInAnalytics,
			ExpectedBalanceTotal: v.ExpectedBalanceTotal, ActualBalanceTotal: v.ActualBalanceTotal,
			Ambiguous: v.Ambiguous, Unresolved: v.Unresolved, LostWorkerRequests: v.LostWorkerRequests, Problems: v.Problems}
		if h := v.Holds; h != nil {
			d.Run.Verification.Holds = &report.Holds{Created: h.Created, Captured: h.Captured, CapturedAmount: h.CapturedAmount,
				Voided: h.Voided, Expired: h.Expired, Pending: h.Pending, Held: h.Held}
		}
	}
	for _, w := range r.Workers {
		d.Run.Workers = append(d.Run.Workers, report.Worker{Name: w.Name, Share: w.Share, State: w.State, Scheduled: w.Scheduled,
			Sent: w.Sent, OK: w.OK, Failed: w.Failed, Late: w.Late, NotSent: w.NotSent, LostAt: w.LostAt})
	}
	for _, p := range rec.Points {
		d.Points = append(d.Points, report.Point{T: p.T, Sent: p.Sent, Answered: p.Answered, InFlight: p.InFlight,
			OK: p.OK, Failed: p.Failed, Errors: p.Errors, Rate: p.Rate, Target: p.Target,
			P50Ms: p.P50Ms, P90Ms: p.P90Ms, P95Ms: p.P95Ms, P99Ms: p.P99Ms, MaxMs: p.MaxMs})
	}
	for _, p := range rec.Distribution {
		d.Percentiles = append(d.Percentiles, report.Percentile{P: p.P, Ms: p.Ms})
	}
	return report.Render(w, d)
}

// configKVs is a run's configuration as a person reads it.
func configKVs(c Config) []report.KV {
	kv := []report.KV{{Label: "users", Value: fmt.Sprint(c.Users)}, {Label: "accounts per user", Value: fmt.Sprint(c.AccountsPerUser)}}
	if len(c.Stages) > 0 {
		parts := make([]string, len(c.Stages))
		for i, st := range c.Stages {
			parts[i] = fmt.Sprintf("%g/s over %g s", st.Rate, st.DurationS)
		}
		kv = append(kv, report.KV{Label: "stages", Value: strings.Join(parts, ", then ")})
	} else {
		kv = append(kv, report.KV{Label: "rate", Value: fmt.Sprintf("%g/s", c.Rate)},
			report.KV{Label: "duration", Value: fmt.Sprintf("%g s", c.DurationS)},
			report.KV{Label: "ramp-up", Value: fmt.Sprintf("%g s", c.RampUpS)})
	}
	if m := c.Mix; m != nil {
		mix := fmt.Sprintf("transfer %g, deposit %g, withdrawal %g", m.Transfer, m.Deposit, m.Withdrawal)
		if m.Read > 0 {
			mix += fmt.Sprintf(", read %g", m.Read)
		}
		if m.Hold > 0 {
			mix += fmt.Sprintf(", hold %g", m.Hold)
		}
		kv = append(kv, report.KV{Label: "mix", Value: mix})
	}
	kv = append(kv, report.KV{Label: "initial balance", Value: fmt.Sprintf("%d %s (minor units)", c.InitialBalance, c.Currency)},
		report.KV{Label: "largest amount", Value: fmt.Sprint(c.MaxAmount)},
		report.KV{Label: "connections", Value: fmt.Sprint(c.Connections)},
		report.KV{Label: "workers", Value: workersText(c.Workers)},
		report.KV{Label: "seed", Value: fmt.Sprint(c.Seed)})
	if c.Skew != nil {
		kv = append(kv, report.KV{Label: "skew (Zipf)", Value: fmt.Sprint(*c.Skew)})
	}
	return kv
}

func workersText(n int) string {
	if n == 0 {
		return "none: the service sent the load"
	}
	return fmt.Sprintf("%d, each sending its share", n)
}
