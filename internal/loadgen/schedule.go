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

// Stage moves the arrival rate linearly from where the previous stage ended (0
// at the start) to Rate over Duration, as k6's stages do.
type Stage struct {
	Duration time.Duration
	Rate     float64
}

// Schedule is an arrival rate over time: piecewise linear, made of stages. It
// is immutable; a rate change makes a new one that keeps the past.
type Schedule struct {
	segs []segment
}

type segment struct {
	start, dur time.Duration
	from, to   float64 // requests per second at the start and the end
	before     float64 // requests the schedule issues before the segment
}

// count is how many requests the segment issues in its first tau seconds.
func (g segment) count(tau float64) float64 {
	d := g.dur.Seconds()
	return g.from*tau + (g.to-g.from)*tau*tau/(2*d)
}

func (g segment) rateAt(tau float64) float64 {
	return g.from + (g.to-g.from)*tau/g.dur.Seconds()
}

// Constant is rate requests per second for duration, reached by a linear ramp
// from 0 over its first rampUp (0 for none).
func Constant(rate float64, duration, rampUp time.Duration) (Schedule, error) {
	switch {
	case !(rate > 0) || math.IsInf(rate, 0):
		return Schedule{}, fmt.Errorf("loadgen: rate must be a positive number, got %v", rate)
	case duration <= 0:
		return Schedule{}, errors.New("loadgen: duration must be positive")
	case rampUp < 0 || rampUp > duration:
		return Schedule{}, errors.New("loadgen: ramp-up must be between 0 and the duration")
	}
	var segs []segment
	if rampUp > 0 {
		segs = append(segs, segment{dur: rampUp, from: 0, to: rate})
	}
	if rest := duration - rampUp; rest > 0 {
		segs = append(segs, segment{dur: rest, from: rate, to: rate})
	}
	return build(segs)
}

// Stages is the schedule of the given stages, one after the other.
func Stages(stages []Stage) (Schedule, error) {
	if len(stages) == 0 {
		return Schedule{}, errors.New("loadgen: no stages")
	}
	segs := make([]segment, len(stages))
	from := 0.0
	for i, st := range stages {
		if st.Duration <= 0 {
			return Schedule{}, fmt.Errorf("loadgen: stage %d: duration must be positive", i)
		}
		if !(st.Rate >= 0) || math.IsInf(st.Rate, 0) {
			return Schedule{}, fmt.Errorf("loadgen: stage %d: rate must be a number of at least 0, got %v", i, st.Rate)
		}
		segs[i] = segment{dur: st.Duration, from: from, to: st.Rate}
		from = st.Rate
	}
	return build(segs)
}

// build places segments one after the other.
func build(segs []segment) (Schedule, error) {
	var at time.Duration
	var total float64
	for i := range segs {
		segs[i].start, segs[i].before = at, total
		total += segs[i].count(segs[i].dur.Seconds())
		at += segs[i].dur
	}
	if total < 1 {
		return Schedule{}, errors.New("loadgen: the schedule issues no request")
	}
	return Schedule{segs: segs}, nil
}

// Duration is the whole running phase.
func (s Schedule) Duration() time.Duration {
	if len(s.segs) == 0 {
		return 0
	}
	g := s.segs[len(s.segs)-1]
	return g.start + g.dur
}

// Peak is the highest rate of the schedule.
func (s Schedule) Peak() float64 {
	peak := 0.0
	for _, g := range s.segs {
		peak = max(peak, g.from, g.to)
	}
	return peak
}

// Expected is the number of requests the schedule issues in [0, t): the
// integral of the arrival rate.
func (s Schedule) Expected(t time.Duration) float64 {
	var n float64
	for _, g := range s.segs {
		if t <= g.start {
			break
		}
		n = g.before + g.count(min(t-g.start, g.dur).Seconds())
	}
	return n
}

// Total is the number of requests in the schedule: those whose intended time
// falls in [0, Duration).
func (s Schedule) Total() uint64 {
	n := s.Expected(s.Duration())
	// Rounding noise must not add or drop a request when n is whole.
	if r := math.Round(n); math.Abs(n-r) < 1e-6 {
		return uint64(r)
	}
	return uint64(math.Ceil(n))
}

// At is the intended send time of request i (from 0), as an offset from the
// start of the run: the moment the expected count reaches i. It is
// Duration for an i the schedule does not issue.
func (s Schedule) At(i uint64) time.Duration {
	n := float64(i)
	for k, g := range s.segs {
		end := g.before + g.count(g.dur.Seconds())
		if n >= end && k < len(s.segs)-1 {
			continue
		}
		m := n - g.before
		// Solve count(tau) = m: a*tau² + b*tau = m, in the form that is stable
		// when a is 0 or small.
		a, b := (g.to-g.from)/(2*g.dur.Seconds()), g.from
		if b <= 0 && a <= 0 {
			return s.Duration() // a last stage at rate 0
		}
		disc := max(b*b+4*a*m, 0) // rounding may take it just below 0 at a falling stage's end
		tau := 0.0
		if m > 0 {
			tau = 2 * m / (b + math.Sqrt(disc))
		}
		return g.start + time.Duration(math.Round(tau*1e9))
	}
	return s.Duration()
}

// RateAt is the target arrival rate at offset t.
func (s Schedule) RateAt(t time.Duration) float64 {
	for _, g := range s.segs {
		if t >= g.start && t < g.start+g.dur {
			return g.rateAt((t - g.start).Seconds())
		}
	}
	return 0
}

// WithRateFrom is s until t, then rate (at least 0) until s's end: the same
// requests before t, so a running schedule can change its rate at t.
func (s Schedule) WithRateFrom(t time.Duration, rate float64) Schedule {
	end := s.Duration()
	if t < 0 {
		t = 0
	}
	if t >= end {
		return s
	}
	var out Schedule
	for _, g := range s.segs {
		if g.start >= t {
			break
		}
		if g.start+g.dur > t { // cut at t
			cut := g
			cut.dur = t - g.start
			cut.to = g.rateAt(cut.dur.Seconds())
			g = cut
		}
		out.segs = append(out.segs, g)
	}
	// The new rate holds from t: a step, as a segment of constant rate.
	out.segs = append(out.segs, segment{start: t, dur: end - t, from: rate, to: rate, before: s.Expected(t)})
	return out
}
