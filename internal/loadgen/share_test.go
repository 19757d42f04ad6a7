package loadgen

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestShare(t *testing.T) {
	t.Run("the parts of a split count every request once", func(t *testing.T) {
		for _, total := range []uint64{0, 1, 2, 3, 10, 1001} {
			var sum uint64
			for i := range 3 {
				sum += Share{Index: i, Count: 3}.Of(total)
			}
			if sum != total {
				t.Errorf("shares of %d requests add to %d", total, sum)
			}
		}
	})
	t.Run("a share outside its count is refused", func(t *testing.T) {
		for _, s := range []Share{{Index: 3, Count: 3}, {Index: -1, Count: 2}, {Index: 0, Count: -1}} {
			if _, err := NewRunner(Config{Schedule: constant(10, time.Second, 0), Workers: 1, Share: s}, noop); err == nil {
				t.Errorf("share %+v accepted", s)
			}
		}
	})
	t.Run("runners of three shares, started together, send each request once at its time", func(t *testing.T) {
		sched := constant(3000, 400*time.Millisecond, 0)
		start := time.Now().Add(50 * time.Millisecond)
		var mu sync.Mutex
		sentBy := map[uint64]int{}
		var wg sync.WaitGroup
		results := make([]Result, 3)
		for i := range 3 {
			r, err := NewRunner(Config{Schedule: sched, Workers: 8, Share: Share{Index: i, Count: 3}, Start: start},
				func(_ context.Context, seq uint64) Outcome {
					if early := time.Until(start.Add(sched.At(seq))); early > 0 {
						t.Errorf("request %d went out %v before its time", seq, early)
					}
					mu.Lock()
					sentBy[seq] = i + 1
					mu.Unlock()
					return Outcome{}
				})
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				res, err := r.Run(context.Background())
				if err != nil {
					t.Error(err)
				}
				results[i] = res
			})
		}
		wg.Wait()
		if got := uint64(len(sentBy)); got != sched.Total() {
			t.Errorf("%d distinct requests sent, want the schedule's %d", got, sched.Total())
		}
		for seq, by := range sentBy {
			if want := int(seq%3) + 1; by != want {
				t.Errorf("request %d sent by runner %d, want %d", seq, by, want)
			}
		}
		var sent uint64
		for i, res := range results {
			sent += res.Sent
			if want := (Share{Index: i, Count: 3}).Of(sched.Total()); res.Scheduled != want || res.Sent != want {
				t.Errorf("runner %d: scheduled %d, sent %d, want %d", i, res.Scheduled, res.Sent, want)
			}
			if !res.Started.Equal(start) {
				t.Errorf("runner %d started at %v, want the shared start %v", i, res.Started, start)
			}
		}
		if sent != sched.Total() {
			t.Errorf("the runners sent %d together, want %d", sent, sched.Total())
		}
	})
	t.Run("a rate change at a point of the schedule applies there, not when it is asked", func(t *testing.T) {
		sched := constant(1000, 600*time.Millisecond, 0)
		r, err := NewRunner(Config{Schedule: sched, Workers: 4}, noop)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan Result)
		go func() { res, _ := r.Run(context.Background()); done <- res }()
		for r.Recorder() == nil {
			time.Sleep(time.Millisecond)
		}
		next, err := r.SetRateAt(300*time.Millisecond, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := next.Expected(300 * time.Millisecond); got != 300 {
			t.Errorf("the new schedule issues %v requests before the change, want the old 300", got)
		}
		if res := <-done; res.Sent != 300 {
			t.Errorf("sent %d with the rate at 0 from 0.3 s, want 300", res.Sent)
		}
	})
}
