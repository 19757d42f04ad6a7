// Package report renders one load-test run as a single self-contained HTML page, to attach
// to a ticket: inline CSS, charts drawn server-side as inline SVG, no script and no reference
// to any other URL, so it reads the same offline, in a mail client or printed.
package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
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
	ExpectedBalanceTotal, ActualBalanceTotal int64
	Ambiguous, Unresolved                    int64
	Problems                                 []string
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
		events.Value = fmtInt(*e) + " of " + fmtInt(v.Accepted)
		events.Bad = *e != v.Accepted
	}
	return &verificationView{
		OK: v.OK,
		Facts: []fact{
			{"Reconciliation balances in every currency", yesNo(v.Balanced), !v.Balanced},
			{"Transactions accepted", fmtInt(v.Accepted), false},
			events,
			{"Balance total expected", fmtInt(v.ExpectedBalanceTotal), false},
			{"Balance total actual", fmtInt(v.ActualBalanceTotal), !v.BalancesMatch},
			{"Balances match", yesNo(v.BalancesMatch), !v.BalancesMatch},
			{"Ambiguous requests (resent with their idempotency key)", fmtInt(v.Ambiguous), false},
			{"Unresolved requests (still no definite answer)", fmtInt(v.Unresolved), v.Unresolved > 0},
		},
		Problems: v.Problems,
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Number formats: latencies always in ms, rates per second, thousands separated, so values
// compare at a glance across the page.

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

func fmtDuration(d time.Duration) string {
	s := max(d, 0).Seconds()
	switch {
	case s < 60:
		return strconv.FormatFloat(s, 'f', 1, 64) + " s"
	case s < 3600:
		return fmt.Sprintf("%d min %02d s", int(s)/60, int(s)%60)
	}
	return fmt.Sprintf("%d h %02d min %02d s", int(s)/3600, int(s)/60%60, int(s)%60)
}

// fmtFixed formats v with dec decimals and thousands separators.
func fmtFixed(v float64, dec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	s := strconv.FormatFloat(math.Abs(v), 'f', dec, 64)
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if v < 0 && strings.Trim(s, "0.") != "" {
		b.WriteByte('-')
	}
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}

// fmtNum formats v with as few decimals as it needs, up to 3.
func fmtNum(v float64) string {
	s := fmtFixed(v, 3)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func fmtCount(n uint64) string { return fmtFixed(float64(n), 0) }

func fmtInt(n int64) string {
	if n < 0 {
		return "-" + fmtCount(uint64(-n))
	}
	return fmtCount(uint64(n))
}

// fmtMs keeps three significant digits below 100 ms and whole milliseconds above.
func fmtMs(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	dec := 0
	switch a := math.Abs(v); {
	case a == 0:
	case a < 1:
		dec = 3
	case a < 10:
		dec = 2
	case a < 100:
		dec = 1
	}
	return fmtFixed(v, dec) + " ms"
}

func fmtRate(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	dec := 0
	switch a := math.Abs(v); {
	case a == 0 || a >= 100:
	case a >= 10:
		dec = 1
	default:
		dec = 2
	}
	return fmtFixed(v, dec) + "/s"
}

// fmtPct formats a share (0..1) as a percentage, with enough decimals to tell a small share
// from none.
func fmtPct(share float64) string {
	if math.IsNaN(share) || math.IsInf(share, 0) {
		return "–"
	}
	p := share * 100
	dec := 2
	switch a := math.Abs(p); {
	case a == 0:
		dec = 0
	case a < 0.1:
		dec = 3
	}
	return fmtFixed(p, dec) + "%"
}

// page is the report. The CSS is inline and the SVG styled by class, so the file stands alone
// and stays small; print rules keep figures whole and colours on.
var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Load test report – {{.Title}}</title>
<style>
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#111827;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;-webkit-print-color-adjust:exact;print-color-adjust:exact}
main{max-width:1148px;margin:0 auto;padding:24px;background:#fff}
h1{font-size:24px;margin:0}
h2{font-size:18px;margin:28px 0 10px;padding-bottom:4px;border-bottom:2px solid #e5e7eb}
h3{font-size:15px;margin:0}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
thead th{background:#f9fafb;font-weight:600;border-bottom:1px solid #d1d5db}
td.n,th.n{text-align:right}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f3f4f6;padding:1px 4px;border-radius:3px}
.head{display:flex;align-items:center;gap:14px;flex-wrap:wrap}
.badge{display:inline-block;padding:3px 12px;border-radius:999px;font-weight:700;font-size:14px;letter-spacing:.03em;text-transform:uppercase;color:#fff}
.badge.pass{background:#15803d}.badge.fail{background:#b91c1c}.badge.pending{background:#6b7280}
.reasons{margin:8px 0 0;padding-left:20px;color:#991b1b}
.meta{margin:8px 0 0;color:#4b5563}
.meta span{margin-right:18px;white-space:nowrap}
.notice{margin:18px 0 0;padding:10px 14px;border:1px solid #f59e0b;border-left:6px solid #d97706;background:#fffbeb;border-radius:4px}
.cards{display:grid;grid-template-columns:1.4fr 1fr 1fr;gap:16px;align-items:start}
.cards table{width:100%}
.cards th,.facts th{font-weight:400;color:#4b5563;white-space:nowrap}
.cards td,.facts td{text-align:right;font-weight:600;white-space:nowrap}
.facts{min-width:560px}
.cards caption{text-align:left;font-weight:600;padding:0 10px 4px;color:#374151}
dl.kv{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:2px 14px;margin:0}
dl.kv dt{color:#4b5563}dl.kv dd{margin:0;font-weight:600;overflow-wrap:anywhere}
td.pass{color:#15803d;font-weight:700}td.fail{color:#b91c1c;font-weight:700}td.pending{color:#6b7280}
figure{margin:0 0 22px;break-inside:avoid}
.caption{margin:2px 0 6px;color:#4b5563;font-size:13px}
.note{margin:6px 0 0;color:#6b7280;font-size:12.5px}
.legend{display:flex;flex-wrap:wrap;gap:4px 18px;font-size:13px;margin:0 0 2px 80px}
.legend span{display:inline-flex;align-items:center;gap:6px}
.empty{padding:28px;text-align:center;color:#6b7280;border:1px dashed #d1d5db;border-radius:4px}
svg.chart{display:block;width:100%;height:auto}
svg.chart text{font-size:11px;fill:#4b5563}
svg.chart .yt{text-anchor:end}svg.chart .xt{text-anchor:middle}
svg.chart .al{text-anchor:middle;font-size:12px;fill:#111827}
svg.chart .g{stroke:#e5e7eb;stroke-width:1}
svg.chart .ax{fill:none;stroke:#9ca3af;stroke-width:1}
svg.chart .s{stroke-linejoin:round;stroke-linecap:round}
.errtable{margin-top:8px}
.ok{color:#15803d;font-weight:700}.bad{color:#b91c1c;font-weight:700}
td.bad{color:#b91c1c}
footer{margin-top:28px;padding-top:10px;border-top:1px solid #e5e7eb;color:#4b5563;font-size:12.5px}
@page{size:A4;margin:12mm}
@media print{
body{background:#fff;font-size:10.5px}
main{max-width:none;padding:0}
h1{font-size:19px}h2{font-size:14px;margin-top:16px;break-after:avoid}h3{font-size:12px}
.badge{font-size:11px}
.caption,.legend,.note,footer{font-size:9.5px}
.legend{margin-left:52px}
code{font-size:9.5px}
svg.chart text{font-size:15px}svg.chart .al{font-size:16px}
.cards,table,.notice{break-inside:avoid}
.cards th,.cards td{white-space:normal}
}
</style>
</head>
<body>
<main>
<header>
<div class="head"><h1>{{.Title}}</h1><span class="badge {{.Badge.Class}}">{{.Badge.Label}}</span></div>
{{- with .Badge.Reasons}}
<ul class="reasons">{{range .}}<li>{{.}}</li>{{end}}</ul>
{{- end}}
<p class="meta"><span>Run <code>{{.ID}}</code></span> <span>Status <b>{{.Status}}</b></span>{{range .Times}} <span>{{.Label}} <b>{{.Value}}</b></span>{{end}}</p>
<p class="meta">Report generated {{.Generated}}</p>
</header>
{{- with .Behind}}
<div class="notice" role="note"><b>The load generator did not keep up.</b> {{.}}</div>
{{- end}}

<section id="summary">
<h2>Summary</h2>
<div class="cards">
<table><caption>Requests</caption>{{range .Requests}}<tr><th>{{.Label}}</th><td>{{.Value}}</td></tr>{{end}}</table>
<table><caption>Rates</caption>{{range .Rates}}<tr><th>{{.Label}}</th><td>{{.Value}}</td></tr>{{end}}</table>
<table><caption>Latency</caption>{{range .Latencies}}<tr><th>{{.Label}}</th><td>{{.Value}}</td></tr>{{end}}</table>
</div>
<p class="note">Failed counts every request that did not succeed; rejections by business rules (such as insufficient funds) are the system's correct answer, so the error rate leaves them out. Latency is from each request's scheduled send time (see the footnote).</p>
</section>

<section id="configuration">
<h2>Configuration</h2>
{{- if .Config}}
<dl class="kv">{{range .Config}}<dt>{{.Label}}</dt><dd>{{.Value}}</dd>{{end}}</dl>
{{- else}}
<p class="empty">No configuration recorded.</p>
{{- end}}
</section>

<section id="thresholds">
<h2>Thresholds</h2>
{{- if .Thresholds}}
<table>
<thead><tr><th>Metric</th><th>Condition</th><th>Window</th><th>Abort</th><th class="n">Observed</th><th>Result</th></tr></thead>
<tbody>{{range .Thresholds}}
<tr><td><code>{{.Metric}}</code></td><td>{{.Condition}}</td><td>{{.Window}}</td><td>{{.Abort}}</td><td class="n">{{.Observed}}</td><td class="{{.Class}}">{{.Result}}</td></tr>
{{- end}}</tbody>
</table>
{{- else}}
<p class="empty">No thresholds were set.</p>
{{- end}}
</section>

<section id="charts">
<h2>Charts</h2>
{{- range .Charts}}
<figure id="{{.ID}}">
<h3>{{.Title}}</h3>
<p class="caption">{{.Caption}}</p>
{{- if .Empty}}
<p class="empty">{{.Empty}}</p>
{{- else}}
<div class="legend">{{range .Legend}}<span><svg width="24" height="10" aria-hidden="true"><line x1="1" y1="5" x2="23" y2="5" stroke="{{.Colour}}" stroke-width="{{.Width}}" stroke-dasharray="{{.Dash}}"/></svg>{{.Name}}</span>{{end}}</div>
{{.SVG}}
{{- end}}
{{- if .ErrorTable}}{{template "errors" $}}{{end}}
</figure>
{{- end}}
</section>

<section id="verification">
<h2>Verification</h2>
{{- with .Verification}}
<p>Result: {{if .OK}}<span class="ok">OK</span>{{else}}<span class="bad">FAILED</span>{{end}}</p>
<table class="facts">{{range .Facts}}<tr><th>{{.Label}}</th><td class="n{{if .Bad}} bad{{end}}">{{.Value}}</td></tr>{{end}}</table>
{{- if .Problems}}
<h3 style="margin-top:12px">Problems</h3>
<ul>{{range .Problems}}<li>{{.}}</li>{{end}}</ul>
{{- end}}
{{- else}}
<p class="empty">No verification result.</p>
{{- end}}
</section>

<footer>
<p><b>Latency</b> is measured from each request's <em>scheduled</em> send time to its answer, not from when it actually left, so a stall in the generator or the system under test counts in full for every request it delayed: coordinated omission does not hide it. Percentiles over time are of the requests scheduled in each second. All latencies are in milliseconds, rates in requests per second.</p>
<p>Run {{.ID}} · report generated {{.Generated}}.</p>
</footer>
</main>
</body>
</html>
{{define "errors"}}
{{- if .Errors}}
<table class="errtable">
<thead><tr><th>Error code</th><th class="n">Count</th><th class="n">Share of sent</th></tr></thead>
<tbody>{{range .Errors}}<tr><td><code>{{.Code}}</code></td><td class="n">{{.Count}}</td><td class="n">{{.Share}}</td></tr>{{end}}</tbody>
</table>
{{- end}}
{{end}}`))
