package redis_test

import (
	"context"
	"testing"
	"time"

	"txn/internal/redis"
	"txn/internal/testenv"
)

// TestLimiterSharesTheLimitAcrossInstances runs two limiters on one Redis, as two processors
// would: what one allowed counts against the other once both have synced.
func TestLimiterSharesTheLimitAcrossInstances(t *testing.T) {
	url, prefix := testenv.Redis(t)
	rdb, err := redis.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	const limit = 100
	newLimiter := func() *redis.Limiter {
		l := redis.NewLimiter(rdb, prefix, func(string) int { return limit })
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go l.Run(ctx)
		return l
	}
	a, b := newLimiter(), newLimiter()
	allow := func(l *redis.Limiter, n int) (ok int) {
		for range n {
			if allowed, _ := l.Allow("user", 1); allowed {
				ok++
			}
		}
		return ok
	}
	synced := func(l *redis.Limiter, want int64) func() bool {
		return func() bool {
			n, done := l.Counted("user")
			return done && n >= want
		}
	}
	// Start early in a second, so the whole exchange fits in one window.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	start := time.Now().Unix()

	if got := allow(a, 60); got != 60 {
		t.Fatalf("instance A allowed %d of its first 60", got)
	}
	poll(t, "A's counts in Redis", synced(a, 60))
	if got := allow(b, 1); got != 1 {
		t.Fatalf("instance B refused its first request")
	}
	poll(t, "B learning what A allowed", synced(b, 61))
	got := allow(b, limit)
	if time.Now().Unix() != start {
		t.Skip("the exchange crossed a second boundary on a slow machine; nothing to judge")
	}
	if want := limit - 61; got != want {
		t.Errorf("instance B allowed %d more once it knew of A's 60 and its own 1, want %d", got, want)
	}
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
