package loadgen

import (
	"context"
	"sync"
	"testing"
	"time"
)

func noop(context.Context, uint64) Outcome { return Outcome{Op: "noop"} }

func TestRunnerFeedAndCounts(t *testing.T) {
	feed := NewFeed(1000)
	r, err := NewRunner(Config{Schedule: constant(2000, 250*time.Millisecond, 0), Workers: 4, Feed: feed},
		func(_ context.Context, seq uint64) Outcome {
			if seq%10 == 0 {
				return Outcome{Op: "transfer", Status: 422, Code: "insufficient_funds"}
			}
			return Outcome{Op: "transfer", Status: 201, TxID: "tx"}
		})
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	var wg sync.WaitGroup
	wg.Go(func() {
		for rec := range feed.C() { // ends when Run closes the feed
			recs = append(recs, rec)
		}
	})
	res, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if res.Scheduled != 500 || res.Sent != 500 || res.OK != 450 || res.Failed != 50 || res.Stopped {
		t.Fatalf("result = %+v", res)
	}
	if res.Summary.Errors["insufficient_funds"] != 50 || res.Summary.OK != 450 || res.Summary.Sent != 500 {
		t.Errorf("summary = %+v", res.Summary)
	}
	if len(recs) != 500 || res.Dropped != 0 {
		t.Fatalf("%d records, %d dropped", len(recs), res.Dropped)
	}
	seen := map[uint64]bool{}
	for _, rec := range recs {
		if seen[rec.Seq] || rec.Sent.Before(rec.Intended) || rec.Done.Before(rec.Sent) || rec.Latency != rec.Done.Sub(rec.Intended) {
			t.Fatalf("bad record %+v", rec)
		}
		seen[rec.Seq] = true
		if (rec.Seq%10 == 0) != (rec.Code == "insufficient_funds") {
			t.Fatalf("record %+v", rec)
		}
	}
	if p := r.Points(); len(p) != 1 || p[0].Sent != 500 || p[0].OK+p[0].Failed != 500 {
		t.Errorf("points = %+v", p)
	}
}

func TestRunnerFeedNeverBlocks(t *testing.T) {
	feed := NewFeed(10) // nobody reads it
	r, _ := NewRunner(Config{Schedule: constant(1000, 100*time.Millisecond, 0), Workers: 2, Feed: feed}, noop)
	res, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 100 || res.Dropped != 90 || len(feed.C()) != 10 {
		t.Fatalf("sent %d, dropped %d, buffered %d", res.Sent, res.Dropped, len(feed.C()))
	}
}

// A target slower than the arrival rate: requests wait in line, go out late,
// and their latency counts the wait; none is skipped.
func TestRunnerSlowTargetQueues(t *testing.T) {
	r, _ := NewRunner(Config{Schedule: constant(200, 200*time.Millisecond, 0), Workers: 1},
		func(context.Context, uint64) Outcome { time.Sleep(10 * time.Millisecond); return Outcome{} })
	res, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 40 requests of 10 ms take 400 ms on one worker: the last waited ~200 ms.
	if res.Sent != 40 || res.Late < 30 {
		t.Fatalf("sent %d late %d", res.Sent, res.Late)
	}
	if res.Summary.Latency.Max < 180 {
		t.Errorf("max latency %v ms: the time in line was not counted", res.Summary.Latency.Max)
	}
	if el := res.Ended.Sub(res.Started); el < 350*time.Millisecond {
		t.Errorf("running phase %v should stretch to the last send", el)
	}
	if res.AchievedRate > 0.7*res.TargetRate {
		t.Errorf("achieved %v of target %v: falling behind must show", res.AchievedRate, res.TargetRate)
	}
}

func TestRunnerStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r, _ := NewRunner(Config{Schedule: constant(1000, 10*time.Second, 0), Workers: 4}, noop)
	begin := time.Now()
	res, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(begin) > 2*time.Second || !res.Stopped {
		t.Fatalf("stopped %v after %v", res.Stopped, time.Since(begin))
	}
	if res.Sent < 200 || res.Sent > 400 || res.OK != res.Sent {
		t.Errorf("sent %d ok %d in 300 ms at 1000/s", res.Sent, res.OK)
	}
	if !raceEnabled && (res.AchievedRate < 900 || res.AchievedRate > 1100) {
		t.Errorf("achieved rate %v over the stopped run, want ~1000", res.AchievedRate)
	}
	if _, err := r.Run(context.Background()); err == nil {
		t.Error("a second Run should fail")
	}
}

func TestRunnerDrainCancelsStragglers(t *testing.T) {
	r, _ := NewRunner(Config{Schedule: constant(100, 50*time.Millisecond, 0), Workers: 10, Drain: 100 * time.Millisecond},
		func(ctx context.Context, _ uint64) Outcome {
			<-ctx.Done() // a target that never answers
			return Outcome{Code: "canceled"}
		})
	begin := time.Now()
	res, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(begin); el > time.Second {
		t.Fatalf("run took %v despite a 100 ms drain", el)
	}
	if res.Sent != 5 || res.Failed != 5 || res.Summary.Errors["canceled"] != 5 {
		t.Errorf("result = %+v", res)
	}
}

func TestNewRunnerRejects(t *testing.T) {
	if _, err := NewRunner(Config{Schedule: constant(1, time.Second, 0)}, noop); err == nil {
		t.Error("0 workers accepted")
	}
	if _, err := NewRunner(Config{Schedule: Schedule{}, Workers: 1}, noop); err == nil {
		t.Error("0 rate accepted")
	}
	if _, err := NewRunner(Config{Schedule: constant(1, time.Second, 0), Workers: 1}, nil); err == nil {
		t.Error("nil work accepted")
	}
}

func TestRunnerRampUpPoints(t *testing.T) {
	// 2000/s reached by a ramp over the whole 2 s: 500 requests in the first
	// second, 1500 in the second.
	r, _ := NewRunner(Config{Schedule: constant(2000, 2*time.Second, 2*time.Second), Workers: 4}, noop)
	res, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := r.Points()
	var sent uint64
	for _, pt := range p {
		sent += pt.Sent
	}
	// Sends count in the second they went out (a late one may fall after the
	// end); answers count in their intended second.
	if res.Sent != 2000 || sent != 2000 || len(p) < 2 || p[0].OK != 500 || p[1].OK != 1500 {
		t.Fatalf("sent %d, points %+v", res.Sent, p)
	}
	if p[0].Target != 500 || p[1].Target != 1500 {
		t.Errorf("targets %v and %v, want 500 and 1500", p[0].Target, p[1].Target)
	}
	if res.TargetRate != 2000 || res.AchievedRate < 950 || res.AchievedRate > 1001 {
		t.Errorf("target %v achieved %v: a full ramp averages half the rate", res.TargetRate, res.AchievedRate)
	}
}

// constant is a schedule the test knows to be valid.
func constant(rate float64, d, ramp time.Duration) Schedule {
	s, err := Constant(rate, d, ramp)
	if err != nil {
		panic(err)
	}
	return s
}

func TestRunnerSetRate(t *testing.T) {
	t.Run("before the run it is refused", func(t *testing.T) {
		r, _ := NewRunner(Config{Schedule: constant(10, time.Second, 0), Workers: 1}, noop)
		if _, err := r.SetRate(20); err != ErrNotRunning {
			t.Errorf("SetRate before Run: %v, want ErrNotRunning", err)
		}
	})
	t.Run("a slow schedule wakes for a faster rate and sends it to the end", func(t *testing.T) {
		// 1/s for 2 s: request 0 at once, the next due at 1 s; at 0.5 s the rate becomes 400/s.
		r, _ := NewRunner(Config{Schedule: constant(1, 2*time.Second, 0), Workers: 8}, noop)
		go func() {
			time.Sleep(500 * time.Millisecond)
			if _, err := r.SetRate(400); err != nil {
				t.Errorf("SetRate: %v", err)
			}
		}()
		res, err := r.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// 1 before the change, then about 400/s for about 1.5 s.
		if res.Scheduled < 550 || res.Scheduled > 650 || res.Sent != res.Scheduled {
			t.Errorf("scheduled %d, sent %d; want about 600 each", res.Scheduled, res.Sent)
		}
		if res.TargetRate != 400 {
			t.Errorf("target rate %v, want 400", res.TargetRate)
		}
	})
	t.Run("rate 0 ends the sending", func(t *testing.T) {
		r, _ := NewRunner(Config{Schedule: constant(100, 2*time.Second, 0), Workers: 4}, noop)
		go func() {
			time.Sleep(300 * time.Millisecond)
			_, _ = r.SetRate(0)
		}()
		res, _ := r.Run(context.Background())
		if res.Sent < 20 || res.Sent > 45 {
			t.Errorf("sent %d, want about 30", res.Sent)
		}
	})
}
