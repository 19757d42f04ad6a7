// Package report renders one load-test run as a single self-contained HTML page, to attach
// to a ticket: inline CSS, charts drawn server-side as inline SVG, no script and no reference
// to any other URL, so it reads the same offline, in a mail client or printed.
package report

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Data is everything the page shows about one run.
type Data struct {
	Run         Run
	Points      []Point      // one per second of the running phase, in order
	Percentiles []Percentile // latency distribution; may be empty
	GeneratedAt time.Time
}

// Run is the run's outcome, as the caller's API shows it.
type Run struct {
	ID, Name, Status   string // status: preparing|running|completed|stopped|failed|aborted
	Error, AbortReason string
	CreatedAt          time.Time
	StartedAt, EndedAt *time.Time
	Config             []KV // label/value pairs, already formatted by the caller
	Sent, OK, Failed   uint64
	Rejected           uint64 // failures that are a business rule's correct answer
	Scheduled          uint64
	ErrorRate          float64           // 0..1
	TargetRate         float64           // requests/s
	ScheduledRate      float64           // requests/s
	AchievedRate       float64           // requests/s
	Latency            Latency           // ms
	Errors             map[string]uint64 // failures by code
	Thresholds         []Threshold
	Verification       *Verification // nil when not verified
	BehindDetail       string        // "" when the generator kept up
	Workers            []Worker      // the load workers that sent it; none when the service did
}

// Worker is one load worker's part in the run.
type Worker struct {
	Name, Share, State                         string // state: done, lost, ...
	Scheduled, Sent, OK, Failed, Late, NotSent uint64
	LostAt                                     *time.Time
}

// KV is one labelled value.
type KV struct{ Label, Value string }

// Latency is a run's latency summary in milliseconds.
type Latency struct{ P50, P90, P99, P999, Max float64 }

// Threshold is a pass/fail limit and how the run fared against it.
type Threshold struct {
	Metric   string // p50_ms|p90_ms|p99_ms|error_rate|achieved_ratio
	Max, Min *float64
	WindowS  float64 // 0: judged on the whole run
	Abort    bool
	Observed *float64
	Passed   *bool // nil: not judged yet
}

// Verification is what was checked once the run was over.
type Verification struct {
	OK, Balanced, BalancesMatch              bool
	Accepted                                 int64
	EventsInAnalytics                        *int64
	ExpectedInAnalytics                      int64 // 0 in runs recorded before it: Accepted stands for it
	ExpectedBalanceTotal, ActualBalanceTotal int64
	Ambiguous, Unresolved                    int64
	LostWorkerRequests                       int64  // resent for lost workers
	Holds                                    *Holds // nil when the mix has none
	Problems                                 []string
}

// Holds is what became of a run's hold operations.
type Holds struct {
	Created, Captured, CapturedAmount, Voided, Expired, Pending, Held int64
}

// Point is one second of the running phase.
type Point struct {
	T                                    time.Time
	Sent, Answered, InFlight, OK, Failed uint64
	Errors                               map[string]uint64
	Rate, Target                         float64
	P50Ms, P90Ms, P95Ms, P99Ms, MaxMs    float64
}

// Percentile is one point of the latency distribution: P percent (0 to 100) of the requests
// took at most Ms milliseconds.
type Percentile struct{ P, Ms float64 }

// Render writes the report for d to w.
func Render(w io.Writer, d Data) error {
	return page.Execute(w, newView(d))
}

// view is the page's content, formatted; html/template escapes every string in it.
type view struct {
	Title, ID, Status string
	Badge             badge
	Times             []KV
	Generated         string
	Behind            string
	Requests, Rates   []KV
	Latencies         []KV
	Config            []KV
	Thresholds        []thresholdRow
	Charts            []chart
	Errors            []errorRow
	Verification      *verificationView
	Workers           []workerRow
}

type workerRow struct {
	Name, Share, State, Scheduled, Sent, OK, Failed, Late, NotSent, LostAt string
	Lost                                                                   bool
}

type thresholdRow struct {
	Metric, Condition, Window, Abort, Observed, Result, Class string
}

type errorRow struct{ Code, Count, Share string }

type verificationView struct {
	OK       bool
	Facts    []fact
	Problems []string
}

type fact struct {
	Label, Value string
	Bad          bool
}

func newView(d Data) view {
	r := d.Run
	v := view{
		Title:        r.Name,
		ID:           r.ID,
		Status:       r.Status,
		Badge:        verdict(r),
		Times:        times(r, d.GeneratedAt),
		Generated:    fmtTime(d.GeneratedAt),
		Behind:       r.BehindDetail,
		Config:       r.Config,
		Thresholds:   thresholdRows(r.Thresholds),
		Charts:       charts(d),
		Errors:       errorRows(r),
		Verification: verification(r.Verification),
		Workers:      workerRows(r.Workers),
	}
	if v.Title == "" {
		v.Title = "Run " + r.ID
	}
	v.Requests, v.Rates, v.Latencies = summary(r, d.GeneratedAt)
	return v
}

// badge is the run's verdict: Class is pass, fail or pending.
type badge struct {
	Label, Class string
	Reasons      []string
}

// verdict passes a run only when it completed, every judged threshold passed and the
// verification found nothing; anything else that is over is a failure, with the reasons.
func verdict(r Run) badge {
	var reasons []string
	switch r.Status {
	case "aborted":
		reasons = append(reasons, "aborted: "+orDefault(r.AbortReason, "no reason recorded"))
	case "failed":
		reasons = append(reasons, "the run failed: "+orDefault(r.Error, "no error recorded"))
	case "stopped":
		reasons = append(reasons, "stopped before its schedule ended")
	case "completed":
	default: // preparing, running or unknown: nothing to judge yet
		return badge{Label: orDefault(r.Status, "unknown"), Class: "pending"}
	}
	if r.Status != "failed" && r.Error != "" {
		reasons = append(reasons, "error: "+r.Error)
	}
	for _, t := range r.Thresholds {
		if t.Passed != nil && !*t.Passed {
			reasons = append(reasons, "threshold "+condition(t)+" failed (observed "+observed(t)+")")
		}
	}
	if v := r.Verification; v != nil && !v.OK {
		reasons = append(reasons, fmt.Sprintf("verification failed (%d problems)", len(v.Problems)))
	}
	for _, w := range r.Workers {
		if w.State == "lost" { // its share never went out: not the load asked for
			reasons = append(reasons, fmt.Sprintf("worker %s was lost: %s of its requests were not sent", w.Name, fmtCount(w.NotSent)))
		}
	}
	switch {
	case r.Status == "aborted":
		return badge{Label: "aborted", Class: "fail", Reasons: reasons}
	case len(reasons) > 0:
		return badge{Label: "failed", Class: "fail", Reasons: reasons}
	case r.Verification == nil:
		// Not a failure, but nothing proves the ledger is right either.
		return badge{Label: "not verified", Class: "pending", Reasons: []string{"completed, but verification has no result"}}
	}
	return badge{Label: "passed", Class: "pass"}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func times(r Run, now time.Time) []KV {
	kv := []KV{{"Created", fmtTime(r.CreatedAt)}}
	if r.StartedAt != nil {
		kv = append(kv, KV{"Started", fmtTime(*r.StartedAt)})
	}
	if r.EndedAt != nil {
		kv = append(kv, KV{"Ended", fmtTime(*r.EndedAt)})
	}
	if d := duration(r, now); d != "" {
		kv = append(kv, KV{"Duration", d})
	}
	return kv
}

// duration is from start to end, or to now while the run goes on.
func duration(r Run, now time.Time) string {
	if r.StartedAt == nil {
		return ""
	}
	if r.EndedAt != nil {
		return fmtDuration(r.EndedAt.Sub(*r.StartedAt))
	}
	if now.IsZero() {
		return ""
	}
	return fmtDuration(now.Sub(*r.StartedAt)) + " so far"
}

func summary(r Run, now time.Time) (req, rates, lat []KV) {
	sent := KV{"Sent", fmtCount(r.Sent)}
	if r.Scheduled > 0 {
		sent = KV{"Sent / scheduled", fmtCount(r.Sent) + " / " + fmtCount(r.Scheduled) +
			" (" + fmtPct(float64(r.Sent)/float64(r.Scheduled)) + ")"}
	}
	req = []KV{
		sent,
		{"OK", fmtCount(r.OK)},
		{"Failed", fmtCount(r.Failed) + ofSent(r.Failed, r.Sent)},
		{"Rejected by business rules", fmtCount(r.Rejected)},
		{"Error rate", fmtPct(r.ErrorRate)},
	}
	rates = []KV{
		{"Target rate", fmtRate(r.TargetRate)},
		{"Scheduled rate", fmtRate(r.ScheduledRate)},
		{"Achieved rate", fmtRate(r.AchievedRate)},
		{"Duration", orDefault(duration(r, now), "not started")},
	}
	l := r.Latency
	lat = []KV{{"p50", fmtMs(l.P50)}, {"p90", fmtMs(l.P90)}, {"p99", fmtMs(l.P99)}, {"p99.9", fmtMs(l.P999)}, {"max", fmtMs(l.Max)}}
	return req, rates, lat
}

func ofSent(n, sent uint64) string {
	if sent == 0 {
		return ""
	}
	return " (" + fmtPct(float64(n)/float64(sent)) + ")"
}

func thresholdRows(ts []Threshold) []thresholdRow {
	rows := make([]thresholdRow, 0, len(ts))
	for _, t := range ts {
		row := thresholdRow{Metric: t.Metric, Condition: condition(t), Window: "whole run", Abort: "no",
			Observed: observed(t), Result: "not judged", Class: "pending"}
		if t.WindowS > 0 {
			row.Window = "last " + fmtNum(t.WindowS) + " s"
		}
		if t.Abort {
			row.Abort = "yes"
		}
		if t.Passed != nil {
			row.Result, row.Class = "PASS", "pass"
			if !*t.Passed {
				row.Result, row.Class = "FAIL", "fail"
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// condition is what the threshold requires, as the API writes it ("p99_ms < 50"); an error
// rate also shows as a percentage, as elsewhere on the page.
func condition(t Threshold) string {
	var parts []string
	limit := func(op string, v float64) {
		s := t.Metric + " " + op + " " + strconv.FormatFloat(v, 'g', -1, 64)
		if t.Metric == "error_rate" {
			s += " (" + fmtNum(v*100) + "%)"
		}
		parts = append(parts, s)
	}
	if t.Max != nil {
		limit("<", *t.Max)
	}
	if t.Min != nil {
		limit(">", *t.Min)
	}
	if len(parts) == 0 {
		return t.Metric + " (no limit)"
	}
	return strings.Join(parts, " and ")
}

// observed formats a threshold's observed value in the metric's unit.
func observed(t Threshold) string {
	if t.Observed == nil {
		return "–"
	}
	v := *t.Observed
	switch {
	case strings.HasSuffix(t.Metric, "_ms"):
		return fmtMs(v)
	case t.Metric == "error_rate":
		return fmtPct(v)
	}
	return strings.TrimRight(strings.TrimRight(fmtFixed(v, 4), "0"), ".")
}

func errorRows(r Run) []errorRow {
	codes := make([]string, 0, len(r.Errors))
	for c := range r.Errors {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		a, b := r.Errors[codes[i]], r.Errors[codes[j]]
		return a > b || a == b && codes[i] < codes[j]
	})
	rows := make([]errorRow, 0, len(codes))
	for _, c := range codes {
		row := errorRow{Code: c, Count: fmtCount(r.Errors[c]), Share: "–"}
		if r.Sent > 0 {
			row.Share = fmtPct(float64(r.Errors[c]) / float64(r.Sent))
		}
		rows = append(rows, row)
	}
	return rows
}

func verification(v *Verification) *verificationView {
	if v == nil {
		return nil
	}
	events := fact{Label: "Transactions found in analytics", Value: "not checked"}
	if e := v.EventsInAnalytics; e != nil {
		want := v.ExpectedInAnalytics
		if want == 0 {
			want = v.Accepted
		}
		events.Value = fmtInt(*e) + " of " + fmtInt(want)
		events.Bad = *e != want
		if v.Holds != nil {
			events.Label = "Transactions and hold events found in analytics"
		}
	}
	facts := []fact{
		{"Reconciliation balances in every currency", yesNo(v.Balanced), !v.Balanced},
		{"Transactions accepted", fmtInt(v.Accepted), false},
		events,
		{"Balance total expected", fmtInt(v.ExpectedBalanceTotal), false},
		{"Balance total actual", fmtInt(v.ActualBalanceTotal), !v.BalancesMatch},
		{"Balances match", yesNo(v.BalancesMatch), !v.BalancesMatch},
		{"Ambiguous requests (resent with their idempotency key)", fmtInt(v.Ambiguous), false},
		{"Unresolved requests (still no definite answer)", fmtInt(v.Unresolved), v.Unresolved > 0},
	}
	if v.LostWorkerRequests > 0 {
		facts = append(facts, fact{"Requests lost workers may have sent (resent with their idempotency key)", fmtInt(v.LostWorkerRequests), false})
	}
	if h := v.Holds; h != nil {
		facts = append(facts,
			fact{"Holds created, captured, voided, expired", fmtInt(h.Created) + ", " + fmtInt(h.Captured) + ", " +
				fmtInt(h.Voided) + ", " + fmtInt(h.Expired), false},
			fact{"Amount captured", fmtInt(h.CapturedAmount), false},
			fact{"Holds left pending (amount still reserved)", fmtInt(h.Pending) + " (" + fmtInt(h.Held) + ")",
				h.Pending > 0 || h.Held != 0})
	}
	return &verificationView{OK: v.OK, Facts: facts, Problems: v.Problems}
}

func workerRows(ws []Worker) []workerRow {
	rows := make([]workerRow, len(ws))
	for i, w := range ws {
		rows[i] = workerRow{Name: w.Name, Share: w.Share, State: w.State, Scheduled: fmtCount(w.Scheduled),
			Sent: fmtCount(w.Sent), OK: fmtCount(w.OK), Failed: fmtCount(w.Failed), Late: fmtCount(w.Late),
			NotSent: "–", LostAt: "–", Lost: w.State == "lost"}
		if w.LostAt != nil {
			rows[i].NotSent, rows[i].LostAt = fmtCount(w.NotSent), fmtTime(*w.LostAt)
		}
	}
	return rows
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Number formats: latencies always in ms, rates per second, thousands separated, so values
// compare at a glance across the page.
