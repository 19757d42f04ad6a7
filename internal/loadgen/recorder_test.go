package loadgen

import (
	"math"
	"sync/atomic"
	"testing"
	"time"
)

func near(got, want, relTol float64) bool { return math.Abs(got-want) <= relTol*want }

func TestRecorderPercentiles(t *testing.T) {
	t0 := time.Now()
	r := NewRecorder(t0, 4, time.Millisecond)
	// 1, 2, ..., 1000 ms, spread over shards, half of them "transfer".
	for i := 1; i <= 1000; i++ {
		op := "deposit"
		if i%2 == 0 {
			op = "transfer"
		}
		r.Record(i, t0, time.Duration(i)*time.Millisecond, op, "")
	}
	l := r.Latency("", "")
	// 3 significant digits: every value is within 0.1 %.
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"p50", l.P50, 500}, {"p90", l.P90, 900}, {"p99", l.P99, 990}, {"p999", l.P999, 999}, {"max", l.Max, 1000},
	} {
		if !near(c.got, c.want, 0.001) {
			t.Errorf("%s = %v ms, want %v", c.name, c.got, c.want)
		}
	}
	if l := r.Latency("transfer", OutcomeOK); !near(l.Max, 1000, 0.001) || !near(l.P50, 500, 0.002) {
		t.Errorf("transfer latency = %+v", l)
	}
	if l := r.Latency("deposit", ""); !near(l.Max, 999, 0.001) {
		t.Errorf("deposit max = %v, want 999", l.Max)
	}
	// Fractions of a millisecond survive.
	r2 := NewRecorder(t0, 1, time.Millisecond)
	r2.Record(0, t0, 250*time.Microsecond, "x", "")
	if got := r2.Latency("", "").Max; got != 0.25 {
		t.Errorf("max of 250 µs = %v ms", got)
	}
	// Beyond the histogram's range counts as its top.
	r2.Record(0, t0, 2*time.Minute, "x", "")
	if got := r2.Latency("", "").Max; !near(got, 60000, 0.001) {
		t.Errorf("max of 2 min = %v ms, want 60000", got)
	}
}

func TestRecorderSummaryGroups(t *testing.T) {
	t0 := time.Now()
	r := NewRecorder(t0, 2, time.Millisecond)
	for i := range 10 {
		r.Sent(i, t0, t0)
		code := ""
		switch {
		case i < 3:
			code = "insufficient_funds"
		case i == 3:
			code = "http_503"
		}
		r.Record(i, t0, time.Duration(i+1)*time.Millisecond, "transfer", code)
	}
	r.Sent(0, t0, t0.Add(5*time.Millisecond)) // late
	r.Record(0, t0, 7*time.Millisecond, "", "")
	s := r.Summary()
	if s.Sent != 11 || s.Late != 1 || s.OK != 7 || s.Failed != 4 {
		t.Fatalf("summary counts = %+v", s)
	}
	if s.Errors["insufficient_funds"] != 3 || s.Errors["http_503"] != 1 || len(s.Errors) != 2 {
		t.Errorf("errors = %v", s.Errors)
	}
	if !near(s.SendLag.Max, 5, 0.001) {
		t.Errorf("send lag max = %v ms", s.SendLag.Max)
	}
	want := []Group{
		{Op: "request", Outcome: "ok", Count: 1},
		{Op: "transfer", Outcome: "http_503", Count: 1},
		{Op: "transfer", Outcome: "insufficient_funds", Count: 3},
		{Op: "transfer", Outcome: "ok", Count: 6},
	}
	if len(s.Groups) != len(want) {
		t.Fatalf("groups = %+v", s.Groups)
	}
	for i, g := range s.Groups {
		if g.Op != want[i].Op || g.Outcome != want[i].Outcome || g.Count != want[i].Count {
			t.Errorf("group %d = %+v, want %+v", i, g, want[i])
		}
	}
	if g := s.Groups[2]; !near(g.Latency.Max, 3, 0.001) {
		t.Errorf("insufficient_funds max = %v", g.Latency.Max)
	}
}

func TestRecorderPerSecond(t *testing.T) {
	t0 := time.Now()
	r := NewRecorder(t0, 3, time.Millisecond)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	// Second 0: 10 requests of 10 ms, sent on time.
	for i := range 10 {
		r.Sent(i, at(500*time.Millisecond), at(500*time.Millisecond))
		r.Record(i, at(500*time.Millisecond), 10*time.Millisecond, "transfer", "")
	}
	// Intended in second 0, sent 300 ms late in second 1: sent and late in
	// second 1, its latency in second 0, the load it was part of.
	r.Sent(0, at(900*time.Millisecond), at(1200*time.Millisecond))
	r.Record(0, at(900*time.Millisecond), 400*time.Millisecond, "transfer", "")
	// Sent on time at 0.95 s, answered at 1.65 s: in flight at the end of second 0.
	r.Sent(1, at(950*time.Millisecond), at(950*time.Millisecond))
	r.Record(1, at(950*time.Millisecond), 700*time.Millisecond, "transfer", "")
	// Second 1: 20 requests, 100 ms each, one failing.
	for i := range 20 {
		r.Sent(i, at(1500*time.Millisecond), at(1500*time.Millisecond))
		code := ""
		if i == 0 {
			code = "timeout"
		}
		r.Record(i, at(1500*time.Millisecond), 100*time.Millisecond, "deposit", code)
	}
	// Second 2, half of it in the running phase: 5 sent.
	for i := range 5 {
		r.Sent(i, at(2100*time.Millisecond), at(2100*time.Millisecond))
		r.Record(i, at(2100*time.Millisecond), time.Millisecond, "deposit", "")
	}
	r.SetEnd(at(2500 * time.Millisecond))

	p := r.Points()
	if len(p) != 3 {
		t.Fatalf("%d points, want 3: %+v", len(p), p)
	}
	type want struct {
		sent, answered, inFlight, ok, failed, late uint64
		rate, p50, p99, max                        float64
	}
	check := func(i int, w want) {
		t.Helper()
		g := p[i]
		if !g.T.Equal(at(time.Duration(i) * time.Second)) {
			t.Errorf("point %d: t = %v", i, g.T)
		}
		got := want{g.Sent, g.Answered, g.InFlight, g.OK, g.Failed, g.Late, g.Rate, g.P50Ms, g.P99Ms, g.MaxMs}
		if got.sent != w.sent || got.answered != w.answered || got.inFlight != w.inFlight || got.ok != w.ok ||
			got.failed != w.failed || got.late != w.late {
			t.Errorf("point %d counts: got %+v, want %+v", i, got, w)
		}
		if !near(g.Rate, w.rate, 1e-9) || !near(g.P50Ms, w.p50, 0.001) || !near(g.P99Ms, w.p99, 0.5) || !near(g.MaxMs, w.max, 0.5) {
			t.Errorf("point %d rate and latency: got %+v, want %+v", i, got, w)
		}
	}
	t.Run("second 0: sent and answered by their own times, latencies by intended time", func(t *testing.T) {
		check(0, want{sent: 11, answered: 10, inFlight: 1, ok: 12, late: 0, rate: 11, p50: 10, p99: 700, max: 700})
	})
	t.Run("second 1: the late send and the answer that came in it", func(t *testing.T) {
		check(1, want{sent: 21, answered: 22, inFlight: 0, ok: 19, failed: 1, late: 1, rate: 21, p50: 100, p99: 100, max: 100})
	})
	t.Run("second 2: 5 sent in half a second", func(t *testing.T) {
		check(2, want{sent: 5, answered: 5, ok: 5, rate: 10, p50: 1, p99: 1, max: 1})
	})
	t.Run("errors by code per second", func(t *testing.T) {
		if p[1].Errors["timeout"] != 1 || len(p[0].Errors) != 0 {
			t.Errorf("errors: second 0 %v, second 1 %v", p[0].Errors, p[1].Errors)
		}
	})
	t.Run("p90 and p95 lie between p50 and max", func(t *testing.T) {
		for i, g := range p {
			if g.P90Ms < g.P50Ms || g.P95Ms < g.P90Ms || g.MaxMs < g.P95Ms {
				t.Errorf("point %d: p50 %v p90 %v p95 %v max %v", i, g.P50Ms, g.P90Ms, g.P95Ms, g.MaxMs)
			}
		}
	})
	// Restricted to one operation and outcome.
	d := r.PointsFor("deposit", "timeout")
	if d[1].Failed != 1 || d[1].OK != 0 || d[0].Failed != 0 || !near(d[1].P99Ms, 100, 0.001) {
		t.Errorf("deposit/timeout points = %+v", d)
	}
}

// The cost a worker pays per request: Sent plus Record, workers spread over
// shards as a Runner does.
func BenchmarkRecorderSentRecord(b *testing.B) {
	t0 := time.Now()
	r := NewRecorder(t0, 8, time.Millisecond)
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		w := int(next.Add(1))
		i := 0
		for pb.Next() {
			intended := t0.Add(time.Duration(i%5000) * time.Millisecond)
			r.Sent(w, intended, intended.Add(50*time.Microsecond))
			r.Record(w, intended, time.Duration(200+i%3000)*time.Microsecond, "transfer", "")
			i++
		}
	})
}

func TestRecorderWindowAndDistribution(t *testing.T) {
	t0 := time.Now()
	r := NewRecorder(t0, 2, time.Millisecond)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for sec := range 3 {
		for i := range 100 {
			intended := at(time.Duration(sec)*time.Second + time.Duration(i)*time.Millisecond)
			r.Sent(i, intended, intended)
			code := ""
			if sec == 2 && i < 10 {
				code = "http_503"
			}
			r.Record(i, intended, time.Duration(sec+1)*10*time.Millisecond, "transfer", code)
		}
	}
	t.Run("a window holds only its seconds", func(t *testing.T) {
		w := r.Window(1, 3)
		if w.Sent != 200 || w.OK != 190 || w.Failed != 10 || w.Errors["http_503"] != 10 {
			t.Errorf("window %+v, want 200 sent, 190 ok, 10 http_503", w)
		}
		if !near(w.Latency.P50, 20, 0.05) || !near(w.Latency.Max, 30, 0.05) {
			t.Errorf("window latency %+v, want p50 20 ms, max 30 ms", w.Latency)
		}
	})
	t.Run("a window past the end is empty", func(t *testing.T) {
		if w := r.Window(5, 9); w.Sent != 0 || w.OK != 0 {
			t.Errorf("window %+v", w)
		}
	})
	t.Run("the distribution runs from the fastest to the slowest", func(t *testing.T) {
		d := r.Distribution()
		if len(d) != len(DistributionPercentiles) || d[0].P != 0 || !near(d[0].Ms, 10, 0.05) ||
			d[len(d)-1].P != 100 || !near(d[len(d)-1].Ms, 30, 0.05) {
			t.Fatalf("distribution %+v", d)
		}
		for i := 1; i < len(d); i++ {
			if d[i].Ms < d[i-1].Ms {
				t.Errorf("p%v %v ms below p%v %v ms", d[i].P, d[i].Ms, d[i-1].P, d[i-1].Ms)
			}
		}
	})
}
