// Package backoff is the system's one schedule for waiting between attempts: exponential, with
// a cap and with jitter, so that many clients that failed together (every consumer when a store
// restarts) do not retry in lockstep.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff hands out the pauses between attempts. The n-th pause is drawn uniformly from
// [d/2, d] where d = Min·2ⁿ, capped at Max ("equal jitter": never shorter than half the step,
// so the schedule still backs off). Its zero value is not usable; New makes one. Not safe for
// concurrent use: each retry loop owns its own.
type Backoff struct {
	min, max, step time.Duration
}

// New returns a schedule starting at min and capped at max (max >= min > 0).
func New(min, max time.Duration) *Backoff {
	return &Backoff{min: min, max: max, step: min}
}

// Next returns the pause before the next attempt and advances the schedule.
func (b *Backoff) Next() time.Duration {
	d := b.step
	b.step = min(2*b.step, b.max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// Reset starts the schedule over, after a success.
func (b *Backoff) Reset() { b.step = b.min }

// Wait pauses for Next, or until ctx ends; it reports whether the pause ran its course.
func (b *Backoff) Wait(ctx context.Context) bool {
	return Sleep(ctx, b.Next())
}

// Sleep pauses for d, or until ctx ends; it reports whether the pause ran its course.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
