package loadgen

import (
	"math"
	"testing"
	"time"
)

func mustConstant(t *testing.T, rate float64, d, ramp time.Duration) Schedule {
	t.Helper()
	s, err := Constant(rate, d, ramp)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScheduleConstant(t *testing.T) {
	s := mustConstant(t, 1000, 4*time.Second, 0)
	if got := s.Total(); got != 4000 {
		t.Fatalf("Total = %d, want 4000", got)
	}
	for i, want := range map[uint64]time.Duration{0: 0, 1: time.Millisecond, 1500: 1500 * time.Millisecond, 3999: 3999 * time.Millisecond} {
		if got := s.At(i); got != want {
			t.Errorf("At(%d) = %v, want %v", i, got, want)
		}
	}
}

func TestScheduleRampUp(t *testing.T) {
	// 100/s for 10 s, the first 4 s ramping from 0: 200 requests during the
	// ramp (the area of the triangle), then 100/s for 6 s.
	s := mustConstant(t, 100, 10*time.Second, 4*time.Second)
	if got := s.Total(); got != 800 {
		t.Fatalf("Total = %d, want 800", got)
	}
	// During the ramp n(t) = rate*t²/(2*ramp), so request i goes at sqrt(2*i*ramp/rate).
	cases := map[uint64]time.Duration{
		0:   0,
		2:   400 * time.Millisecond, // sqrt(2*2*4/100)
		50:  2 * time.Second,        // half-way through the ramp: a quarter of its requests
		200: 4 * time.Second,        // the ramp's end
		201: 4010 * time.Millisecond,
		300: 5 * time.Second,
		799: 9990 * time.Millisecond,
	}
	for i, want := range cases {
		if got := s.At(i); absDur(got-want) > time.Microsecond {
			t.Errorf("At(%d) = %v, want %v", i, got, want)
		}
	}
	assertPerSecond(t, s, []float64{12.5, 37.5, 62.5, 87.5, 100, 100, 100, 100, 100, 100})
	if r := s.RateAt(time.Second); r != 25 {
		t.Errorf("RateAt(1s) = %v, want 25", r)
	}
	if r := s.RateAt(5 * time.Second); r != 100 {
		t.Errorf("RateAt(5s) = %v, want 100", r)
	}
}

// assertPerSecond checks that At is increasing, within the duration, and
// issues about want[s] requests in second s.
func assertPerSecond(t *testing.T, s Schedule, want []float64) {
	t.Helper()
	perSecond := make([]int, len(want))
	prev := time.Duration(-1)
	for i := range s.Total() {
		at := s.At(i)
		if at <= prev || at >= s.Duration() {
			t.Fatalf("At(%d) = %v after %v, duration %v", i, at, prev, s.Duration())
		}
		prev = at
		perSecond[at/time.Second]++
	}
	for sec, n := range perSecond {
		if math.Abs(float64(n)-want[sec]) > 1 {
			t.Errorf("second %d: %d requests, want about %v", sec, n, want[sec])
		}
	}
}

func TestScheduleFractional(t *testing.T) {
	// 2.5 requests in [0, 1 s): the ones at 0, 0.4 and 0.8 s.
	s := mustConstant(t, 2.5, time.Second, 0)
	if got := s.Total(); got != 3 {
		t.Fatalf("Total = %d, want 3", got)
	}
	if got := s.At(2); got != 800*time.Millisecond {
		t.Errorf("At(2) = %v", got)
	}
	// Ramp over the whole duration: half the requests of a constant rate.
	s = mustConstant(t, 1000, 2*time.Second, 2*time.Second)
	if got := s.Total(); got != 1000 {
		t.Errorf("full ramp Total = %d, want 1000", got)
	}
}

func TestScheduleStages(t *testing.T) {
	// Up to 100/s in 2 s, hold 2 s, down to 20/s in 2 s, then 0 for 1 s.
	s, err := Stages([]Stage{{2 * time.Second, 100}, {2 * time.Second, 100}, {2 * time.Second, 20}, {time.Second, 0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the total is the area under the rate", func(t *testing.T) {
		// 100 + 200 + (100+20)/2*2 + 20/2*1
		if got := s.Total(); got != 430 {
			t.Errorf("Total = %d, want 430", got)
		}
	})
	t.Run("each second issues the rate's average over it", func(t *testing.T) {
		assertPerSecond(t, s, []float64{25, 75, 100, 100, 80, 40, 10})
	})
	t.Run("duration and peak", func(t *testing.T) {
		if s.Duration() != 7*time.Second || s.Peak() != 100 {
			t.Errorf("duration %v, peak %v; want 7s, 100", s.Duration(), s.Peak())
		}
	})
	t.Run("the rate between stages", func(t *testing.T) {
		if r := s.RateAt(5 * time.Second); math.Abs(r-60) > 1e-9 {
			t.Errorf("RateAt(5s) = %v, want 60", r)
		}
	})
}

func TestScheduleWithRateFrom(t *testing.T) {
	s := mustConstant(t, 100, 10*time.Second, 0)
	c := s.WithRateFrom(4*time.Second, 300)
	t.Run("the requests before the change keep their times", func(t *testing.T) {
		for i := uint64(0); i < 400; i++ {
			if c.At(i) != s.At(i) {
				t.Fatalf("At(%d) moved from %v to %v", i, s.At(i), c.At(i))
			}
		}
	})
	t.Run("the new rate holds until the end", func(t *testing.T) {
		if got := c.Total(); got != 400+1800 {
			t.Errorf("Total = %d, want 2200", got)
		}
		if c.Duration() != 10*time.Second || c.RateAt(9*time.Second) != 300 {
			t.Errorf("duration %v, rate at 9s %v", c.Duration(), c.RateAt(9*time.Second))
		}
	})
	t.Run("a change during a ramp cuts it where it was", func(t *testing.T) {
		r := mustConstant(t, 100, 10*time.Second, 4*time.Second).WithRateFrom(2*time.Second, 10)
		// 50 requests in the first 2 s of the ramp (0 to 50/s), then 10/s for 8 s.
		if got := r.Total(); got != 130 {
			t.Errorf("Total = %d, want 130", got)
		}
	})
	t.Run("rate 0 sends nothing more", func(t *testing.T) {
		if got := s.WithRateFrom(3*time.Second, 0).Total(); got != 300 {
			t.Errorf("Total = %d, want 300", got)
		}
	})
}

func TestScheduleInvalid(t *testing.T) {
	for name, mk := range map[string]func() error{
		"rate 0":              func() error { _, err := Constant(0, time.Second, 0); return err },
		"rate NaN":            func() error { _, err := Constant(math.NaN(), time.Second, 0); return err },
		"rate +Inf":           func() error { _, err := Constant(math.Inf(1), time.Second, 0); return err },
		"duration 0":          func() error { _, err := Constant(10, 0, 0); return err },
		"negative ramp":       func() error { _, err := Constant(10, time.Second, -1); return err },
		"ramp over duration":  func() error { _, err := Constant(10, time.Second, 2*time.Second); return err },
		"no stages":           func() error { _, err := Stages(nil); return err },
		"stage of 0 s":        func() error { _, err := Stages([]Stage{{0, 10}}); return err },
		"negative stage rate": func() error { _, err := Stages([]Stage{{time.Second, -1}}); return err },
		"stages issuing none": func() error { _, err := Stages([]Stage{{time.Second, 0}}); return err },
	} {
		if mk() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
