// Package loadgen is the measuring core of an open-loop load generator.
//
// A Schedule fixes when every request is meant to go out; a Runner releases
// each request at that time to a bounded pool of workers, never waiting for
// earlier responses, and times it from the intended send time, so a stalled
// target shows up in the latencies instead of silently slowing the sending
// (no coordinated omission). A Recorder keeps HDR histograms for the whole run
// and for each second of it, and a Feed hands every completed request to a slow
// writer without ever blocking the workers.
//
// The package imports no driver: what a request does is a caller-supplied Work
// function.
package loadgen

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Schedule is a constant arrival rate over Duration, optionally reached by a
// linear ramp from 0 over the first RampUp of it.
type Schedule struct {
	Rate     float64       // requests per second once ramped up
	Duration time.Duration // the whole running phase, ramp-up included
	RampUp   time.Duration // linear ramp from 0 to Rate; 0 for none
}

// Validate reports a schedule that cannot be run.
func (s Schedule) Validate() error {
	switch {
	case !(s.Rate > 0) || math.IsInf(s.Rate, 0):
		return fmt.Errorf("loadgen: rate must be a positive number, got %v", s.Rate)
	case s.Duration <= 0:
		return errors.New("loadgen: duration must be positive")
	case s.RampUp < 0 || s.RampUp > s.Duration:
		return errors.New("loadgen: ramp-up must be between 0 and the duration")
	}
	return nil
}

// expected is the number of requests the schedule issues in [0, t): the
// integral of the arrival rate.
func (s Schedule) expected(t time.Duration) float64 {
	sec, ramp := t.Seconds(), s.RampUp.Seconds()
	if sec <= 0 {
		return 0
	}
	if sec < ramp {
		return s.Rate * sec * sec / (2 * ramp)
	}
	return s.Rate * (sec - ramp/2)
}

// Total is the number of requests in the schedule: those whose intended time
// falls in [0, Duration).
func (s Schedule) Total() uint64 {
	n := s.expected(s.Duration)
	// Rounding noise must not add or drop a request when n is whole.
	if r := math.Round(n); math.Abs(n-r) < 1e-6 {
		return uint64(r)
	}
	return uint64(math.Ceil(n))
}

// At is the intended send time of request i (from 0), as an offset from the
// start of the run: the moment the expected count reaches i.
func (s Schedule) At(i uint64) time.Duration {
	ramp := s.RampUp.Seconds()
	n := float64(i)
	var sec float64
	if rampN := s.Rate * ramp / 2; n < rampN {
		sec = math.Sqrt(2 * n * ramp / s.Rate)
	} else {
		sec = ramp + (n-rampN)/s.Rate
	}
	return time.Duration(math.Round(sec * 1e9))
}

// RateAt is the target arrival rate at offset t.
func (s Schedule) RateAt(t time.Duration) float64 {
	if t < 0 || t >= s.Duration {
		return 0
	}
	if t < s.RampUp {
		return s.Rate * t.Seconds() / s.RampUp.Seconds()
	}
	return s.Rate
}
