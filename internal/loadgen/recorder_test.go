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
	// Intended in second 0, sent 300 ms late in second 1: it belongs to
	// second 0, the load it was part of.
	r.Sent(0, at(900*time.Millisecond), at(1200*time.Millisecond))
	r.Record(0, at(900*time.Millisecond), 400*time.Millisecond, "transfer", "")
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
	check := func(i int, sent, ok, failed, late uint64, rate, p50, p99 float64) {
		t.Helper()
		g := p[i]
		if !g.T.Equal(at(time.Duration(i) * time.Second)) {
			t.Errorf("point %d: t = %v", i, g.T)
		}
		if g.Sent != sent || g.OK != ok || g.Failed != failed || g.Late != late {
			t.Errorf("point %d: sent/ok/failed/late = %d/%d/%d/%d, want %d/%d/%d/%d", i, g.Sent, g.OK, g.Failed, g.Late, sent, ok, failed, late)
		}
		if !near(g.Rate, rate, 1e-9) || !near(g.P50Ms, p50, 0.001) || !near(g.P99Ms, p99, 0.001) {
			t.Errorf("point %d: rate %v p50 %v p99 %v, want %v %v %v", i, g.Rate, g.P50Ms, g.P99Ms, rate, p50, p99)
		}
	}
	check(0, 11, 11, 0, 1, 11, 10, 400)
	check(1, 20, 19, 1, 0, 20, 100, 100)
	check(2, 5, 5, 0, 0, 10, 1, 1) // 5 sent in half a second
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
