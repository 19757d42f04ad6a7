package sysbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Config says what to measure.
type Config struct {
	LoadtestURL string // the loadtest service
	Token       string // admin token
	ConsumerURL string // for consumer_events_total
	NotifierURL string // for notifier_deliveries_total
	Users       int
	DurationS   float64
	Workers     int           // load workers that send each run (0: the loadtest service)
	Warmup      time.Duration // left out of the CPU window at the start of the running phase
	EffectsWait time.Duration // how long to wait for the downstream effects after a run
	Components  []Component
	Log         io.Writer
}

// Result is one rate's figures.
type Result struct {
	Rate         float64
	RunID        string
	Achieved     float64
	P50, P99     float64 // ms from the scheduled send time
	Max          float64
	Sent         uint64
	Errors       uint64 // failures that are not a business rule's answer
	Rejected     uint64 // 422s such as insufficient funds
	Verified     bool
	Problems     []string
	EffectsAfter time.Duration // from the end of sending until every effect landed; -1 if not within EffectsWait
	Completed    uint64        // requests completed in the CPU window
	Window       time.Duration
	CPU          CPU // seconds per component over the window
}

// CPUPerTx is the CPU µs per completed request of one component (or the total for "").
func (r Result) CPUPerTx(component string) float64 {
	if r.Completed == 0 {
		return 0
	}
	var s float64
	for k, v := range r.CPU {
		if component == "" || k == component {
			s += v
		}
	}
	return s * 1e6 / float64(r.Completed)
}

// run is the part of the loadtest API's run that the bench reads.
type run struct {
	ID           string     `json:"id"`
	Status       string     `json:"status"`
	Phase        string     `json:"phase"`
	StartedAt    *time.Time `json:"started_at"`
	EndedAt      *time.Time `json:"ended_at"`
	Sent         uint64     `json:"sent"`
	OK           uint64     `json:"ok"`
	Failed       uint64     `json:"failed"`
	Rejected     uint64     `json:"rejected"`
	AchievedRate float64    `json:"achieved_rate"`
	Error        string     `json:"error"`
	LatencyMs    struct {
		P50, P99, Max float64
	} `json:"latency_ms"`
	ByOp   []opCount `json:"by_op"`
	Config struct {
		Users           int   `json:"users"`
		AccountsPerUser int   `json:"accounts_per_user"`
		InitialBalance  int64 `json:"initial_balance"`
	} `json:"config"`
	Verification *struct {
		OK       bool     `json:"ok"`
		Accepted int64    `json:"accepted"`
		Problems []string `json:"problems"`
	} `json:"verification"`
}

// opCount is how many requests of one operation had one outcome.
type opCount struct {
	Op      string `json:"op"`
	Outcome string `json:"outcome"`
	Count   uint64 `json:"count"`
}

// Measure runs the loadtest service at rate and measures the whole system meanwhile.
func (c Config) Measure(ctx context.Context, rate float64) (Result, error) {
	res := Result{Rate: rate, EffectsAfter: -1}
	before, err := c.effects(ctx)
	if err != nil {
		return res, err
	}
	var r run
	body := map[string]any{"users": c.Users, "rate": rate, "duration_s": c.DurationS}
	if c.Workers > 0 {
		body["workers"] = c.Workers
	}
	if err := c.call(ctx, "POST", "/api/v1/runs", body, &r); err != nil {
		return res, err
	}
	res.RunID = r.ID
	fmt.Fprintf(c.Log, "run %s: %v/s for %vs, %d users, %d workers\n", r.ID, rate, c.DurationS, c.Users, c.Workers)

	// The CPU window: from Warmup into the running phase until sending ends.
	var cpu0 CPU
	var done0 uint64
	var t0 time.Time
	for {
		if err := c.poll(ctx, r.ID, &r); err != nil {
			return res, err
		}
		if r.Status != "preparing" && r.Status != "running" {
			break
		}
		if cpu0 == nil && r.StartedAt != nil && time.Since(*r.StartedAt) >= c.Warmup {
			cpu0, done0, t0 = SampleCPU(c.Components), r.OK+r.Failed, time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	if cpu0 == nil || r.EndedAt == nil {
		return res, fmt.Errorf("run %s ended as %s before the window began: %s", r.ID, r.Status, r.Error)
	}
	res.CPU, res.Window = SampleCPU(c.Components).Sub(cpu0), time.Since(t0)
	res.Completed = r.OK + r.Failed - done0
	ended := *r.EndedAt

	// Every effect: an event applied by each consumer group, a notification delivered per side.
	events, notes := expected(r)
	deadline := time.Now().Add(c.EffectsWait)
	for time.Now().Before(deadline) {
		now, err := c.effects(ctx)
		if err == nil && now.sub(before).covers(events, notes) {
			res.EffectsAfter = max(0, time.Since(ended))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Then the verdict of the run itself.
	for r.Phase != "done" {
		if err := c.poll(ctx, r.ID, &r); err != nil {
			return res, err
		}
		time.Sleep(250 * time.Millisecond)
	}
	res.Achieved, res.Sent = r.AchievedRate, r.Sent
	res.P50, res.P99, res.Max = r.LatencyMs.P50, r.LatencyMs.P99, r.LatencyMs.Max
	res.Errors, res.Rejected = r.Failed-r.Rejected, r.Rejected
	if v := r.Verification; v != nil {
		res.Verified, res.Problems = v.OK, v.Problems
	}
	if r.Status != "completed" {
		res.Problems = append(res.Problems, "run "+r.Status+": "+r.Error)
	}
	return res, nil
}

// expected counts the events and notifications a run produced: one event per accepted
// transaction (seed deposits included), a notification per side.
func expected(r run) (events, notifications uint64) {
	if r.Config.InitialBalance > 0 {
		seeds := uint64(r.Config.Users * max(r.Config.AccountsPerUser, 1))
		events, notifications = seeds, seeds
	}
	for _, g := range r.ByOp {
		if g.Outcome != "ok" {
			continue
		}
		events += g.Count
		notifications += g.Count
		if g.Op == "transfer" {
			notifications += g.Count
		}
	}
	return events, notifications
}

// effectCounts are the pipeline's counters: events applied per consumer group, notifications
// delivered.
type effectCounts struct {
	groups    map[string]float64
	delivered float64
}

func (e effectCounts) sub(b effectCounts) effectCounts {
	out := effectCounts{groups: map[string]float64{}, delivered: e.delivered - b.delivered}
	for g, v := range e.groups {
		out.groups[g] = v - b.groups[g]
	}
	return out
}

func (e effectCounts) covers(events, notifications uint64) bool {
	if len(e.groups) < 3 {
		return false
	}
	for _, v := range e.groups {
		if v < float64(events) {
			return false
		}
	}
	return e.delivered >= float64(notifications)
}

func (c Config) effects(ctx context.Context) (effectCounts, error) {
	e := effectCounts{groups: map[string]float64{}}
	err := scrape(ctx, c.ConsumerURL, func(name string, labels map[string]string, v float64) {
		if name == "consumer_events_total" {
			e.groups[labels["group"]] = v
		}
	})
	if err != nil {
		return e, err
	}
	err = scrape(ctx, c.NotifierURL, func(name string, labels map[string]string, v float64) {
		if name == "notifier_deliveries_total" && labels["outcome"] == "delivered" {
			e.delivered = v
		}
	})
	return e, err
}

// scrape reads a service's /metrics and calls f for every counter or gauge sample.
func scrape(ctx context.Context, base string, f func(name string, labels map[string]string, v float64)) error {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return fmt.Errorf("metrics of %s: %w", base, err)
	}
	for name, fam := range families {
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				f(name, labels, m.GetCounter().GetValue())
			case m.GetGauge() != nil:
				f(name, labels, m.GetGauge().GetValue())
			}
		}
	}
	return nil
}

func (c Config) poll(ctx context.Context, id string, r *run) error {
	return c.call(ctx, "GET", "/api/v1/runs/"+id, nil, r)
}

func (c Config) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.LoadtestURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return json.Unmarshal(b, out)
}
