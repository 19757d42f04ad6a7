package loadtest

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"txn/internal/apierr"
	"txn/internal/loadgen"
)

// Threshold metrics (API.md, "Loadtest additions").
const (
	MetricP50           = "p50_ms"
	MetricP90           = "p90_ms"
	MetricP99           = "p99_ms"
	MetricErrorRate     = "error_rate"
	MetricAchievedRatio = "achieved_ratio"
	MaxThresholds       = 20
)

// Threshold is a pass/fail limit on a run. Without WindowS it is judged on the whole run at its
// end; with it, every second over the last WindowS seconds of the running phase, and it fails
// if any window broke it. Abort ends the run as aborted as soon as it breaks.
type Threshold struct {
	Metric  string   `json:"metric"`
	Max     *float64 `json:"max,omitempty"`
	Min     *float64 `json:"min,omitempty"`
	WindowS float64  `json:"window_s,omitempty"`
	Abort   bool     `json:"abort"`
	// Observed is the whole run's value, or the worst window's; nil until judged.
	Observed *float64 `json:"observed"`
	Passed   *bool    `json:"passed"`
}

// validateThresholds reports what is wrong with ts as field errors (thresholds[i].field).
func validateThresholds(ts []Threshold, durationS float64) []apierr.FieldError {
	var f []apierr.FieldError
	if len(ts) > MaxThresholds {
		return append(f, apierr.FieldError{Field: "thresholds", Message: fmt.Sprintf("at most %d", MaxThresholds)})
	}
	for i, t := range ts {
		bad := func(field, msg string) {
			f = append(f, apierr.FieldError{Field: fmt.Sprintf("thresholds[%d].%s", i, field), Message: msg})
		}
		switch t.Metric {
		case MetricP50, MetricP90, MetricP99:
			if t.Max == nil || t.Min != nil || !(*t.Max > 0) || math.IsInf(*t.Max, 0) {
				bad("max", "a latency threshold takes max, a number of milliseconds above 0")
			}
		case MetricErrorRate:
			if t.Max == nil || t.Min != nil || !(*t.Max >= 0 && *t.Max <= 1) {
				bad("max", "error_rate takes max, a share from 0 to 1")
			}
		case MetricAchievedRatio:
			if t.Min == nil || t.Max != nil || !(*t.Min > 0 && *t.Min <= 1) {
				bad("min", "achieved_ratio takes min, a share above 0, at most 1")
			}
		default:
			bad("metric", "must be one of p50_ms, p90_ms, p99_ms, error_rate, achieved_ratio")
		}
		if !(t.WindowS >= 0) || (t.WindowS > 0 && (t.WindowS < 1 || t.WindowS > durationS || t.WindowS != math.Trunc(t.WindowS))) {
			bad("window_s", "must be a whole number of seconds from 1 to the run's duration (or left out: the whole run)")
		}
	}
	return f
}

// broken reports whether v breaks t.
func (t Threshold) broken(v float64) bool {
	if t.Max != nil {
		return v > *t.Max
	}
	return t.Min != nil && v < *t.Min
}

// worse reports whether a is worse than b for t's metric.
func (t Threshold) worse(a, b float64) bool {
	if t.Min != nil {
		return a < b
	}
	return a > b
}

// String is the threshold as a person reads it, e.g. "p99_ms < 50 over 10 s, abort".
func (t Threshold) String() string {
	s := t.Metric
	if t.Max != nil {
		s += " < " + strconv.FormatFloat(*t.Max, 'g', -1, 64)
	} else if t.Min != nil {
		s += " > " + strconv.FormatFloat(*t.Min, 'g', -1, 64)
	}
	if t.WindowS > 0 {
		s += fmt.Sprintf(" over %g s", t.WindowS)
	}
	if t.Abort {
		s += ", abort"
	}
	return s
}

// measures is what thresholds are judged on: over a window or the whole run.
type measures struct {
	latency   loadgen.Latency
	errorRate float64
	achieved  float64 // achieved ratio
	completed uint64  // requests with an answer: none means nothing to judge
}

func (m measures) value(metric string) float64 {
	switch metric {
	case MetricP50:
		return m.latency.P50
	case MetricP90:
		return m.latency.P90
	case MetricP99:
		return m.latency.P99
	case MetricErrorRate:
		return m.errorRate
	}
	return m.achieved
}

// errorShare is the share of completed requests that failed other than by a business rule.
func errorShare(ok, failed uint64, errors map[string]uint64) float64 {
	if ok+failed == 0 {
		return 0
	}
	bad := failed
	for code, n := range errors {
		if rejections[code] {
			bad -= min(n, bad)
		}
	}
	return float64(bad) / float64(ok+failed)
}

// judge records value v against threshold i; windowed thresholds keep their worst window. It
// returns whether v broke it.
func judge(t *Threshold, v float64) bool {
	if t.Observed == nil || t.worse(v, *t.Observed) {
		t.Observed = &v
	}
	broke := t.broken(v)
	passed := !broke && (t.Passed == nil || *t.Passed)
	t.Passed = &passed
	return broke
}

// ParseThreshold parses a threshold as the CLI takes it, k6-like: "p99_ms<50",
// "error_rate<0.01", "achieved_ratio>0.99", optionally followed by ",window=10s" and ",abort".
func ParseThreshold(s string) (Threshold, error) {
	parts := strings.Split(s, ",")
	var t Threshold
	cond := strings.ReplaceAll(parts[0], " ", "")
	name, val, op := "", "", ""
	for _, o := range []string{"<", ">"} {
		if n, v, ok := strings.Cut(cond, o); ok {
			name, val, op = n, v, o
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(val, "%"), 64)
	if op == "" || err != nil {
		return t, fmt.Errorf("threshold %q: want metric<value or metric>value, e.g. p99_ms<50", s)
	}
	if strings.HasSuffix(val, "%") {
		v /= 100
	}
	t.Metric = name
	if op == "<" {
		t.Max = &v
	} else {
		t.Min = &v
	}
	for _, opt := range parts[1:] {
		opt = strings.TrimSpace(opt)
		switch {
		case opt == "abort":
			t.Abort = true
		case strings.HasPrefix(opt, "window="):
			d, err := time.ParseDuration(strings.TrimPrefix(opt, "window="))
			if err != nil || d < time.Second {
				return t, fmt.Errorf("threshold %q: window must be a duration of at least 1s, e.g. window=10s", s)
			}
			t.WindowS = d.Seconds()
		default:
			return t, fmt.Errorf("threshold %q: unknown option %q (window=10s, abort)", s, opt)
		}
	}
	if f := validateThresholds([]Threshold{t}, MaxDurationS); len(f) > 0 {
		return t, fmt.Errorf("threshold %q: %s %s", s, strings.TrimPrefix(f[0].Field, "thresholds[0]."), f[0].Message)
	}
	return t, nil
}
