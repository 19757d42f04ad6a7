package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// okServer is the trivial endpoint: 200 "ok" on 127.0.0.1. While a stall
// gate is set, every request blocks until it is opened.
type okServer struct {
	*httptest.Server
	gate atomic.Pointer[chan struct{}]
}

func newOKServer(t *testing.T) *okServer {
	s := &okServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if g := s.gate.Load(); g != nil {
			<-*g
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(s.Close)
	return s
}

// stall blocks every request arriving in [at, at+d) until at+d.
func (s *okServer) stall(at time.Time, d time.Duration) {
	time.AfterFunc(time.Until(at), func() {
		g := make(chan struct{})
		s.gate.Store(&g)
		time.AfterFunc(d, func() {
			s.gate.Store(nil)
			close(g)
		})
	})
}

func runHTTP(t *testing.T, url string, sched Schedule, workers int) (Result, []Point) {
	t.Helper()
	client, err := NewClient(url, workers, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	r, err := NewRunner(Config{Schedule: sched, Workers: workers}, HTTPGet(client, "/", "get"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l := res.Summary.Latency
	t.Logf("target %.0f/s achieved %.1f/s (%.3f%%), sent %d/%d, ok %d, failed %d %v, late %d (send lag p99 %.3f ms, max %.1f ms), latency p50 %.3f p90 %.3f p99 %.3f p999 %.3f max %.3f ms",
		res.TargetRate, res.AchievedRate, 100*(res.AchievedRate/res.TargetRate-1), res.Sent, res.Scheduled, res.OK, res.Failed, res.Summary.Errors,
		res.Late, res.Summary.SendLag.P99, res.Summary.SendLag.Max, l.P50, l.P90, l.P99, l.P999, l.Max)
	return res, r.Points()
}

// A 1 s stall of the target must show as ~1 s latencies: the requests due
// during it are still sent on schedule (or wait in line for a worker) and are
// timed from their intended send time, not from when they got out.
func TestNoCoordinatedOmission(t *testing.T) {
	if testing.Short() {
		t.Skip("4 s load test")
	}
	sched := constant(1000, 4*time.Second, 0)
	var res Result
	var pts []Point
	for attempt := 1; ; attempt++ {
		srv := newOKServer(t)
		// 50 workers are far fewer than the ~1000 requests due during the
		// stall, so most of them wait in line: that wait must count too.
		srv.stall(time.Now().Add(1500*time.Millisecond), time.Second)
		before := sampleCPU()
		res, pts = runHTTP(t, srv.URL, sched, 50)
		others := before.othersShare(sampleCPU())
		// The first second, before the stall, must go out on time, and the
		// backlog after it drain at the machine's speed, for the rest to be
		// judged: when other tests starve this one of CPU, try again.
		if len(pts) > 0 && pts[0].Late <= 100 && (res.Summary.Latency.P50 <= 100 || others < 0.5) {
			break
		}
		if attempt == 3 {
			t.Skip("the machine was too busy to judge in 3 tries: the generator fell behind, or other processes held the CPUs")
		}
		t.Logf("attempt %d: the generator fell behind before the stall (other work on the machine); again", attempt)
	}

	if res.Sent != sched.Total() || res.Sent != 4000 {
		t.Errorf("sent %d of %d scheduled: sends were skipped", res.Sent, sched.Total())
	}
	if res.Failed != 0 {
		t.Errorf("%d failed: %v", res.Failed, res.Summary.Errors)
	}
	l := res.Summary.Latency
	// A quarter of the requests fall in the stall, with latencies spread
	// over 0-1 s, so the top 1 % (40 requests) waited ~0.96 s or more.
	if l.Max < 950 {
		t.Errorf("max %v ms, want >= ~1000 ms", l.Max)
	}
	if l.P99 < 500 {
		t.Errorf("p99 %v ms hides the stall", l.P99)
	}
	if l.P50 > 100 {
		t.Errorf("p50 %v ms: the stall should touch only a quarter of the requests", l.P50)
	}
	// Those that queued behind busy workers went out late, and say so.
	if res.Late < 500 {
		t.Errorf("only %d late sends", res.Late)
	}
	// Per second, the stall shows where its load was due: seconds 1 and 2.
	// A fifth point may follow, holding only answers that came back after
	// the 4 s of sending.
	if len(pts) < 4 || len(pts) > 5 {
		t.Fatalf("%d points for a 4 s run, want 4 (or 5 with late answers)", len(pts))
	}
	worst := 0
	for i, p := range pts {
		t.Logf("second %d: sent %d answered %d ok %d rate %.0f late %d p50 %.3f ms p99 %.3f ms", i, p.Sent, p.Answered, p.OK, p.Rate, p.Late, p.P50Ms, p.P99Ms)
		if i >= 4 {
			// Requests counted by their due time (OK, Failed): none was due after 4 s. A send
			// may still go out then, late, when the machine held the generator back.
			if p.OK+p.Failed != 0 || p.Sent != p.Late {
				t.Errorf("second %d: sent %d (%d late), ok %d, failed %d: nothing was due after 4 s", i, p.Sent, p.Late, p.OK, p.Failed)
			}
			continue
		}
		if p.P99Ms > pts[worst].P99Ms {
			worst = i
		}
	}
	if pts[worst].P99Ms < 900 || (worst != 1 && worst != 2) {
		t.Errorf("per-second p99 does not show the stall in seconds 1-2 (worst is second %d)", worst)
	}
}

// At 20,000 requests/s against the trivial endpoint the generator keeps up:
// every request goes out, and the running phase does not stretch past the
// schedule by more than 1 %. The endpoint runs in this process; the two need
// about one of the machine's 2 cores at this rate. The machine is shared: a
// run that loses the CPUs to other processes for a few hundred ms cannot
// catch up within 1 %, through no fault of the generator. So up to three runs
// are made, each logged with the share of the machine the other processes
// took; one within 1 % passes. If all miss, the test fails when any of them
// had at least a core to itself (others under 50 %), and otherwise reports
// the measurements and skips as inconclusive.
func TestAchievedRate(t *testing.T) {
	if testing.Short() {
		t.Skip("3-9 s load test")
	}
	srv := newOKServer(t)
	d := 3 * time.Second
	if raceEnabled {
		d = time.Second // it falls far behind; keep the run short
	}
	sched := constant(20000, d, 0)
	var misses []string
	fair := false
	for attempt := 1; attempt <= 3; attempt++ {
		before := sampleCPU()
		res, _ := runHTTP(t, srv.URL, sched, 64)
		others := before.othersShare(sampleCPU())
		t.Logf("attempt %d: other processes used %.0f%% of the machine", attempt, 100*others)
		if res.Failed != 0 {
			t.Fatalf("%d failed: %v", res.Failed, res.Summary.Errors)
		}
		if raceEnabled {
			t.Skip("race detector: rate not asserted, it would measure the detector's overhead")
		}
		if res.Sent != res.Scheduled {
			t.Fatalf("sent %d of %d", res.Sent, res.Scheduled)
		}
		dev := res.AchievedRate/res.TargetRate - 1
		if dev >= -0.01 && dev <= 0.01 {
			return
		}
		fair = fair || others < 0.5
		misses = append(misses, fmt.Sprintf("achieved %.1f/s (%.2f%%) with others using %.0f%% of the machine", res.AchievedRate, 100*dev, 100*others))
	}
	if !fair {
		t.Skipf("inconclusive, other processes held the CPUs in every run: %s", strings.Join(misses, "; "))
	}
	t.Errorf("target %.0f/s not held within 1%% in 3 runs: %s", sched.Peak(), strings.Join(misses, "; "))
}
