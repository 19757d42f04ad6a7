package report

import (
	"html/template"
)

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

{{- if .Workers}}
<section id="workers">
<h2>Workers</h2>
<table>
<thead><tr><th>Worker</th><th>Share</th><th>State</th><th class="n">Scheduled</th><th class="n">Sent</th><th class="n">OK</th><th class="n">Failed</th><th class="n">Late</th><th class="n">Not sent</th><th>Lost at</th></tr></thead>
<tbody>{{range .Workers}}
<tr><td>{{.Name}}</td><td>{{.Share}}</td><td{{if .Lost}} class="bad"{{end}}>{{.State}}</td><td class="n">{{.Scheduled}}</td><td class="n">{{.Sent}}</td><td class="n">{{.OK}}</td><td class="n">{{.Failed}}</td><td class="n">{{.Late}}</td><td class="n">{{.NotSent}}</td><td>{{.LostAt}}</td></tr>
{{- end}}</tbody>
</table>
<p class="note">Each worker sent its share of the schedule (request i goes to worker i mod n); their histograms were merged before the figures above were computed. A lost worker's unsent share counts as not sent.</p>
</section>
{{- end}}

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
