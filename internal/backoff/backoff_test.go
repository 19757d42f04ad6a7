package backoff_test

import (
	"context"
	"testing"
	"time"

	"txn/internal/backoff"
)

func TestSchedule(t *testing.T) {
	t.Run("pauses double from the minimum, jittered within the upper half of each step", func(t *testing.T) {
		b := backoff.New(100*time.Millisecond, time.Second)
		for _, step := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
			step *= time.Millisecond
			if d := b.Next(); d < step/2 || d > step {
				t.Errorf("pause %s, want within [%s, %s]", d, step/2, step)
			}
		}
	})
	t.Run("pauses are not all equal", func(t *testing.T) {
		seen := map[time.Duration]bool{}
		for range 20 {
			seen[backoff.New(time.Second, time.Second).Next()] = true
		}
		if len(seen) < 2 {
			t.Errorf("20 first pauses took %d distinct values: no jitter", len(seen))
		}
	})
	t.Run("reset starts over", func(t *testing.T) {
		b := backoff.New(10*time.Millisecond, time.Second)
		for range 5 {
			b.Next()
		}
		b.Reset()
		if d := b.Next(); d > 10*time.Millisecond {
			t.Errorf("first pause after reset %s, want at most 10ms", d)
		}
	})
	t.Run("a cancelled context ends the wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if backoff.New(time.Hour, time.Hour).Wait(ctx) {
			t.Error("Wait reported a full pause on a cancelled context")
		}
	})
}
