package report

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

func ptr[T any](v T) *T { return &v }

// sample is a realistic run of n seconds at 1,000/s: a latency spike and http_503s in the
// middle, one threshold failing, verification ok.
func sample(n int) Data {
	start := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	end := start.Add(time.Duration(n) * time.Second)
	d := Data{GeneratedAt: end.Add(20 * time.Second), Run: Run{
		ID: "run-7f3a", Name: "transfers at 1k/s", Status: "completed",
		CreatedAt: start.Add(-30 * time.Second), StartedAt: &start, EndedAt: &end,
		Config:    []KV{{"users", "1000"}, {"rate", "1000/s"}, {"duration", "600 s"}},
		Scheduled: uint64(n) * 1000, TargetRate: 1000, ScheduledRate: 1000, AchievedRate: 998.7,
		Latency: Latency{P50: 3.21, P90: 7.8, P99: 61.4, P999: 812, Max: 6996.4},
		Thresholds: []Threshold{
			{Metric: "p99_ms", Max: ptr(50.0), Observed: ptr(61.4), Passed: ptr(false)},
			{Metric: "error_rate", Max: ptr(0.01), WindowS: 10, Abort: true, Observed: ptr(0.0021), Passed: ptr(true)},
			{Metric: "achieved_ratio", Min: ptr(0.99), Observed: ptr(0.9987), Passed: ptr(true)},
		},
		Verification: &Verification{OK: true, Balanced: true, BalancesMatch: true, Accepted: 598000,
			EventsInAnalytics: ptr(int64(598000)), ExpectedBalanceTotal: 100000000, ActualBalanceTotal: 100000000,
			Ambiguous: 12},
		Errors: map[string]uint64{},
	}}
	for i := range n {
		spike := i >= n/2 && i < n/2+20
		p := Point{T: start.Add(time.Duration(i) * time.Second), Sent: 1000, Answered: 1000, InFlight: 4,
			Rate: 1000, Target: 1000, P50Ms: 3 + float64(i%7)/10, P90Ms: 7.5, P95Ms: 11, P99Ms: 40, MaxMs: 95,
			Errors: map[string]uint64{}}
		if spike {
			p.P50Ms, p.P90Ms, p.P95Ms, p.P99Ms, p.MaxMs = 900, 3100, 4200, 6100, 6996.4
			p.Answered, p.InFlight = 300, 3000
			p.Errors["http_503"] = 60
		}
		p.Failed = p.Errors["http_503"]
		p.OK = p.Sent - p.Failed
		d.Run.Sent += p.Sent
		d.Run.OK += p.OK
		d.Run.Failed += p.Failed
		d.Run.Errors["http_503"] += p.Failed
		d.Points = append(d.Points, p)
	}
	d.Run.ErrorRate = float64(d.Run.Failed) / float64(max(d.Run.Sent, 1))
	for _, p := range []float64{0, 50, 90, 99, 99.9, 99.99, 99.999, 100} {
		d.Percentiles = append(d.Percentiles, Percentile{P: p, Ms: 0.8 + math.Pow(10, nines(p))})
	}
	return d
}

func render(t *testing.T, d Data) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, d); err != nil {
		t.Fatalf("Render: %v", err)
	}
	return b.String()
}

func TestRenderStructure(t *testing.T) {
	t.Run("output parses as HTML with one html, head, body and the sections in order", func(t *testing.T) {
		out := render(t, sample(600))
		doc, err := html.Parse(strings.NewReader(out))
		if err != nil {
			t.Fatalf("the report does not parse as HTML: %v", err)
		}
		var ids []string
		var svgs int
		for n := range doc.Descendants() {
			if n.Type == html.ElementNode && n.Data == "section" {
				ids = append(ids, attr(n, "id"))
			}
			if n.Type == html.ElementNode && n.Data == "svg" && attr(n, "class") == "chart" {
				svgs++
			}
		}
		want := "summary configuration thresholds charts verification"
		if got := strings.Join(ids, " "); got != want {
			t.Errorf("sections are %q, want %q", got, want)
		}
		if svgs != 5 {
			t.Errorf("%d charts drawn, want 5 (throughput, in flight, latency, distribution, errors)", svgs)
		}
	})
}

func TestRenderSelfContained(t *testing.T) {
	t.Run("nothing refers to another URL: no script, link, src or href but # anchors", func(t *testing.T) {
		out := render(t, sample(600))
		for _, s := range []string{"http://", "https://", "url(", "@import", "javascript:"} {
			if strings.Contains(out, s) {
				t.Errorf("the report contains %q", s)
			}
		}
		doc, err := html.Parse(strings.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		for n := range doc.Descendants() {
			if n.Type != html.ElementNode {
				continue
			}
			switch n.Data {
			case "script", "link", "img", "iframe", "object", "embed", "image", "use", "base":
				t.Errorf("the report has a <%s> element", n.Data)
			}
			for _, a := range n.Attr {
				switch strings.ToLower(a.Key) {
				case "src", "href", "srcset", "action", "poster", "data", "xlink:href":
					if !strings.HasPrefix(a.Val, "#") {
						t.Errorf("<%s %s=%q> refers to something outside the page", n.Data, a.Key, a.Val)
					}
				}
			}
		}
	})
}

func TestRenderEscapes(t *testing.T) {
	t.Run("user strings are escaped", func(t *testing.T) {
		d := sample(60)
		d.Run.Name = `<script>alert(1)</script>`
		d.Run.Status, d.Run.Error = "failed", `<img src=x onerror=alert(2)>`
		d.Run.Verification.Problems = []string{`<b>bold</b> & "quoted"`}
		d.Run.Errors[`<i>code</i>`] = 3
		d.Points[5].Errors[`<i>code</i>`] = 3
		out := render(t, d)
		for _, raw := range []string{"<script", "<img", "<b>bold", "<i>code"} {
			if strings.Contains(out, raw) {
				t.Errorf("%q comes out unescaped", raw)
			}
		}
		for _, esc := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x", "&lt;b&gt;bold&lt;/b&gt; &amp;", "&lt;i&gt;code&lt;/i&gt;"} {
			if !strings.Contains(out, esc) {
				t.Errorf("escaped %q is missing", esc)
			}
		}
	})

	t.Run("a run without a name is titled by its id", func(t *testing.T) {
		d := sample(10)
		d.Run.Name = ""
		if out := render(t, d); !strings.Contains(out, "<h1>Run run-7f3a</h1>") {
			t.Error(`the title is not "Run run-7f3a"`)
		}
	})
}

func TestVerdict(t *testing.T) {
	t.Run("completed, every threshold passed and verification ok: passed", func(t *testing.T) {
		d := sample(60)
		d.Run.Thresholds[0].Passed = ptr(true)
		d.Run.Thresholds = append(d.Run.Thresholds, Threshold{Metric: "p50_ms", Max: ptr(5.0)}) // not judged
		b := verdict(d.Run)
		if b.Label != "passed" || b.Class != "pass" || len(b.Reasons) != 0 {
			t.Errorf("verdict is %+v, want passed with no reason", b)
		}
		if out := render(t, d); !strings.Contains(out, `<span class="badge pass">passed</span>`) {
			t.Error("the page has no green passed badge")
		}
	})

	t.Run("a failed threshold fails the run and is named", func(t *testing.T) {
		b := verdict(sample(60).Run)
		if b.Label != "failed" || b.Class != "fail" {
			t.Fatalf("verdict is %+v, want failed", b)
		}
		if len(b.Reasons) != 1 || !strings.Contains(b.Reasons[0], "p99_ms < 50") || !strings.Contains(b.Reasons[0], "61.4 ms") {
			t.Errorf("reasons %q do not name p99_ms < 50 and its observed 61.4 ms", b.Reasons)
		}
	})

	t.Run("failed verification fails the run", func(t *testing.T) {
		d := sample(60)
		d.Run.Thresholds = nil
		d.Run.Verification.OK, d.Run.Verification.Problems = false, []string{"balances differ"}
		if b := verdict(d.Run); b.Label != "failed" || len(b.Reasons) != 1 || !strings.Contains(b.Reasons[0], "verification") {
			t.Errorf("verdict is %+v, want failed because of verification", b)
		}
	})

	t.Run("aborted shows aborted with the reason", func(t *testing.T) {
		d := sample(60)
		d.Run.Status, d.Run.AbortReason = "aborted", "p99_ms over 50 for 10 s"
		b := verdict(d.Run)
		if b.Label != "aborted" || b.Class != "fail" || !strings.Contains(b.Reasons[0], "p99_ms over 50 for 10 s") {
			t.Errorf("verdict is %+v, want aborted with its reason first", b)
		}
		if out := render(t, d); !strings.Contains(out, "aborted: p99_ms over 50 for 10 s") {
			t.Error("the page does not show the abort reason")
		}
	})

	t.Run("unfinished runs are grey", func(t *testing.T) {
		for _, status := range []string{"preparing", "running"} {
			d := sample(10)
			d.Run.Status, d.Run.EndedAt = status, nil
			if b := verdict(d.Run); b.Class != "pending" || b.Label != status {
				t.Errorf("a %s run's verdict is %+v, want a grey %s", status, b, status)
			}
		}
	})

	t.Run("stopped and failed runs are failed", func(t *testing.T) {
		for _, status := range []string{"stopped", "failed"} {
			d := sample(10)
			d.Run.Status, d.Run.Thresholds = status, nil
			if b := verdict(d.Run); b.Class != "fail" || b.Label != "failed" || len(b.Reasons) == 0 {
				t.Errorf("a %s run's verdict is %+v, want failed with a reason", status, b)
			}
		}
	})
}

func TestRenderContent(t *testing.T) {
	t.Run("the notice shows only when the generator fell behind", func(t *testing.T) {
		d := sample(10)
		if strings.Contains(render(t, d), `class="notice"`) {
			t.Error("a notice shows though the generator kept up")
		}
		d.Run.BehindDetail = "achieved 91% of the scheduled rate"
		if out := render(t, d); !strings.Contains(out, `class="notice"`) || !strings.Contains(out, "achieved 91% of the scheduled rate") {
			t.Error("the behind notice or its detail is missing")
		}
	})

	t.Run("thresholds table shows condition, window, abort, observed and result", func(t *testing.T) {
		out := render(t, sample(60))
		for _, s := range []string{"p99_ms &lt; 50", "achieved_ratio &gt; 0.99", "error_rate &lt; 0.01 (1%)",
			"whole run", "last 10 s", "61.4 ms", "0.21%", "0.9987", ">FAIL<", ">PASS<"} {
			if !strings.Contains(out, s) {
				t.Errorf("the thresholds table lacks %q", s)
			}
		}
	})

	t.Run("latencies stay in ms with thousands separators, rates per second", func(t *testing.T) {
		out := render(t, sample(60))
		for _, s := range []string{"6,996 ms", "812 ms", "61.4 ms", "3.21 ms", "999/s", "1,000/s", "60,000"} {
			if !strings.Contains(out, s) {
				t.Errorf("the page lacks %q", s)
			}
		}
		if strings.Contains(out, "7.00 s") || strings.Contains(out, "6.99 s") {
			t.Error("a latency is shown in seconds")
		}
	})

	t.Run("the errors table lists each code with its count", func(t *testing.T) {
		out := render(t, sample(600))
		if !strings.Contains(out, "<code>http_503</code></td><td class=\"n\">1,200</td>") {
			t.Error("the errors table lacks http_503 with 1,200")
		}
	})
	t.Run("the workers section shows only for runs workers sent, a lost one marked with its unsent share", func(t *testing.T) {
		if out := render(t, sample(60)); strings.Contains(out, `id="workers"`) {
			t.Error("a run the service sent shows a workers section")
		}
		d := sample(60)
		lost := time.Date(2026, 3, 14, 10, 0, 30, 0, time.UTC)
		d.Run.Workers = []Worker{
			{Name: "gen-1", Share: "1/2", State: "done", Scheduled: 30000, Sent: 30000, OK: 29990, Failed: 10},
			{Name: "gen-2", Share: "2/2", State: "lost", Scheduled: 30000, Sent: 14200, OK: 14200, NotSent: 15800, LostAt: &lost},
		}
		d.Run.Verification.LostWorkerRequests = 15100
		out := render(t, d)
		if !strings.Contains(out, `<td>gen-2</td><td>2/2</td><td class="bad">lost</td>`) {
			t.Error("the lost worker's row is not marked lost")
		}
		if !strings.Contains(out, `<td class="n">15,800</td><td>2026-03-14 10:00:30 UTC</td>`) {
			t.Error("the lost worker's row lacks its unsent share and when it was lost")
		}
		if !strings.Contains(out, "Requests lost workers may have sent (resent with their idempotency key)</th><td class=\"n\">15,100") {
			t.Error("the verification lacks the requests resent for the lost worker")
		}
		if b := verdict(d.Run); b.Class != "fail" || !strings.Contains(strings.Join(b.Reasons, ";"), "worker gen-2 was lost: 15,800 of its requests were not sent") {
			t.Errorf("verdict of a run that lost a worker = %+v, want failed naming it", b)
		}
	})
}

func TestRenderEdgeCases(t *testing.T) {
	edge := []struct {
		name string
		data func() Data
	}{
		{"0 points", func() Data {
			d := sample(0)
			d.Percentiles = nil
			return d
		}},
		{"1 point", func() Data { return sample(1) }},
		{"3,600 points", func() Data { return sample(3600) }},
		{"all zero values", func() Data {
			d := sample(30)
			for i := range d.Points {
				d.Points[i] = Point{T: d.Points[i].T}
			}
			d.Run = Run{ID: "z", Status: "completed"}
			d.Percentiles = []Percentile{{0, 0}, {50, 0}, {100, 0}}
			return d
		}},
		{"huge and invalid values", func() Data {
			d := sample(30)
			d.Points[3].MaxMs, d.Points[4].Rate, d.Points[5].P99Ms = math.MaxFloat64, math.Inf(1), math.NaN()
			d.Points[6].InFlight, d.Run.Sent = math.MaxUint64, math.MaxUint64
			d.Run.Latency.Max, d.Run.ErrorRate = math.Inf(1), math.NaN()
			d.Percentiles = append(d.Percentiles, Percentile{99.9999, 1e300}, Percentile{math.NaN(), 1})
			return d
		}},
		{"times missing", func() Data {
			d := sample(20)
			for i := range d.Points {
				d.Points[i].T = time.Time{}
			}
			d.Run.StartedAt, d.Run.EndedAt = nil, nil
			return d
		}},
	}
	for _, e := range edge {
		t.Run(e.name+" renders without NaN or Inf", func(t *testing.T) {
			out := render(t, e.data())
			for _, bad := range []string{"NaN", "Inf"} {
				if i := strings.Index(out, bad); i >= 0 {
					t.Errorf("%q at %q", bad, out[max(0, i-80):min(len(out), i+20)])
				}
			}
			if _, err := html.Parse(strings.NewReader(out)); err != nil {
				t.Errorf("does not parse: %v", err)
			}
		})
	}

}

func TestRenderSize(t *testing.T) {
	t.Run("a 600-point run stays under 200 KB", func(t *testing.T) {
		if n := len(render(t, sample(600))); n >= 200<<10 {
			t.Errorf("the report is %d bytes", n)
		}
	})

	t.Run("3,600 points are merged into at most 600 drawn per series, keeping the spike", func(t *testing.T) {
		d := sample(3600)
		out := render(t, d)
		if !strings.Contains(out, "Each drawn point is the highest of 6 seconds.") {
			t.Error("the latency chart does not say points were merged")
		}
		vals := reduce(column(d.Points, func(p Point) float64 { return p.MaxMs }), bucket(len(d.Points)), true)
		top := 0.0
		for _, v := range vals {
			top = max(top, v)
		}
		if len(vals) > maxDrawn || top != 6996.4 {
			t.Errorf("merged to %d points with max %v, want ≤ %d keeping 6996.4", len(vals), top, maxDrawn)
		}
	})
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func TestFormat(t *testing.T) {
	cases := []struct{ got, want string }{
		{fmtMs(6996.4), "6,996 ms"},
		{fmtMs(0.4123), "0.412 ms"},
		{fmtMs(0), "0 ms"},
		{fmtRate(1421.3), "1,421/s"},
		{fmtPct(0.00021), "0.021%"},
		{fmtCount(1234567), "1,234,567"},
		{fmtInt(-1234), "-1,234"},
		{ninesLabel(3), "99.9%"},
		{ninesLabel(2), "99%"},
		{clock(605, false), "10:05"},
		{fmtDuration(3725 * time.Second), "1 h 02 min 05 s"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("formatted as %q, want %q", c.got, c.want)
			}
		})
	}
}
