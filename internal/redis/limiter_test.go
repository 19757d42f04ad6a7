package redis_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"txn/internal/redis"
	"txn/internal/testenv"
)

// TestLimiterSharesTheLimitAcrossInstances runs limiters on one Redis, as processors would, and
// floods them together: each whole second lets the limit through, within 10 %, whether one
// instance decides or three.
func TestLimiterSharesTheLimitAcrossInstances(t *testing.T) {
	url, prefix := testenv.Redis(t)
	rdb, err := redis.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	const limit = 300
	start := func(prefix string) (*redis.Limiter, context.CancelFunc) {
		l := redis.NewLimiter(rdb, prefix, func(string) int { return limit })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { l.Run(ctx); close(done) }()
		stop := func() { cancel(); <-done }
		t.Cleanup(stop)
		return l, stop
	}
	// flood has 4 goroutines per limiter ask for 2.5 s and returns what was let through in each
	// whole second.
	flood := func(ls ...*redis.Limiter) []int {
		var mu sync.Mutex
		perSec := map[int64]int{}
		deadline := time.Now().Add(2500 * time.Millisecond)
		var wg sync.WaitGroup
		for _, l := range ls {
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(deadline) {
						if ok, _ := l.Allow("user", 1); ok {
							mu.Lock()
							perSec[time.Now().Unix()]++
							mu.Unlock()
						} else {
							time.Sleep(time.Millisecond)
						}
					}
				}()
			}
		}
		wg.Wait()
		first, last := int64(1<<62), int64(0)
		for s := range perSec {
			first, last = min(first, s), max(last, s)
		}
		var whole []int
		for s := first + 1; s < last; s++ {
			whole = append(whole, perSec[s])
		}
		return whole
	}
	within := func(t *testing.T, whole []int) {
		t.Helper()
		if len(whole) == 0 {
			t.Fatal("no whole second measured")
		}
		for i, n := range whole {
			if n < limit*9/10 || n > limit*11/10 {
				t.Errorf("second %d let %d through, want %d ± 10 %%", i+1, n, limit)
			}
		}
	}

	t.Run("one instance lets the limit through each second", func(t *testing.T) {
		l, _ := start(prefix + "one:")
		within(t, flood(l))
	})
	three := prefix + "three:"
	a, _ := start(three)
	b, stopB := start(three)
	c, _ := start(three)
	t.Run("each instance learns how many are alive", func(t *testing.T) {
		poll(t, "three limiters alive", func() bool { return a.Peers() == 3 && b.Peers() == 3 && c.Peers() == 3 })
	})
	t.Run("three instances together let the limit through each second", func(t *testing.T) {
		whole := flood(a, b, c)
		t.Logf("let through per whole second: %v", whole)
		within(t, whole)
	})
	t.Run("a stopped instance leaves the others at once", func(t *testing.T) {
		stopB()
		poll(t, "two limiters alive", func() bool { return a.Peers() == 2 && c.Peers() == 2 })
	})
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
