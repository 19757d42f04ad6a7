package loadgen

import (
	"math"
	"testing"
	"time"
)

func TestScheduleConstant(t *testing.T) {
	s := Schedule{Rate: 1000, Duration: 4 * time.Second}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
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
	s := Schedule{Rate: 100, Duration: 10 * time.Second, RampUp: 4 * time.Second}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
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
	// Requests per second follow the ramp: 12.5, 37.5, 62.5, 87.5, then 100.
	perSecond := make([]int, 10)
	prev := time.Duration(-1)
	for i := range s.Total() {
		at := s.At(i)
		if at <= prev || at >= s.Duration {
			t.Fatalf("At(%d) = %v after %v, duration %v", i, at, prev, s.Duration)
		}
		prev = at
		perSecond[at/time.Second]++
	}
	want := []float64{12.5, 37.5, 62.5, 87.5, 100, 100, 100, 100, 100, 100}
	for sec, n := range perSecond {
		if math.Abs(float64(n)-want[sec]) > 1 {
			t.Errorf("second %d: %d requests, want about %v", sec, n, want[sec])
		}
	}
	if r := s.RateAt(time.Second); r != 25 {
		t.Errorf("RateAt(1s) = %v, want 25", r)
	}
	if r := s.RateAt(5 * time.Second); r != 100 {
		t.Errorf("RateAt(5s) = %v, want 100", r)
	}
}

func TestScheduleFractional(t *testing.T) {
	// 2.5 requests in [0, 1 s): the ones at 0, 0.4 and 0.8 s.
	s := Schedule{Rate: 2.5, Duration: time.Second}
	if got := s.Total(); got != 3 {
		t.Fatalf("Total = %d, want 3", got)
	}
	if got := s.At(2); got != 800*time.Millisecond {
		t.Errorf("At(2) = %v", got)
	}
	// Ramp over the whole duration: half the requests of a constant rate.
	s = Schedule{Rate: 1000, Duration: 2 * time.Second, RampUp: 2 * time.Second}
	if got := s.Total(); got != 1000 {
		t.Errorf("full ramp Total = %d, want 1000", got)
	}
}

func TestScheduleValidate(t *testing.T) {
	for _, s := range []Schedule{
		{Rate: 0, Duration: time.Second},
		{Rate: math.NaN(), Duration: time.Second},
		{Rate: math.Inf(1), Duration: time.Second},
		{Rate: 10, Duration: 0},
		{Rate: 10, Duration: time.Second, RampUp: -1},
		{Rate: 10, Duration: time.Second, RampUp: 2 * time.Second},
	} {
		if s.Validate() == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
