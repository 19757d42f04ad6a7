package loadtest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Thresholds are pass/fail limits on a run, for CI. Zero values are unchecked.
type Thresholds struct {
	MaxP99 time.Duration
	// MaxErrorRate is the largest share of sent requests that may end in an error (see
	// Run.ErrorRate: rejections by a business rule are not errors); negative: unchecked.
	MaxErrorRate float64
	// MinAchievedRatio is the smallest achieved rate, as a share of the schedule's rate.
	MinAchievedRatio float64
}

// NoThresholds checks nothing.
var NoThresholds = Thresholds{MaxErrorRate: -1}

// ParseRate parses a share: "0.1%" or "0.001".
func ParseRate(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a share (e.g. 0.1%% or 0.001)", s)
	}
	if pct {
		v /= 100
	}
	if !(v >= 0 && v <= 1) {
		return 0, fmt.Errorf("%q is not a share from 0 to 1 (0%% to 100%%)", s)
	}
	return v, nil
}

// ParseRatio parses a ratio in (0, 1], e.g. "0.99".
func ParseRatio(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !(v > 0 && v <= 1) {
		return 0, fmt.Errorf("%q is not a ratio above 0, at most 1 (e.g. 0.99)", s)
	}
	return v, nil
}

// ParseLatency parses a positive duration such as "50ms" or "0.5ms".
func ParseLatency(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration (e.g. 50ms)", s)
	}
	return d, nil
}

// Check returns what run broke, one line each; none when it passed.
func (t Thresholds) Check(run Run) []string {
	var broken []string
	if t.MaxP99 > 0 {
		limit := float64(t.MaxP99) / float64(time.Millisecond)
		if run.LatencyMs.P99 > limit {
			broken = append(broken, fmt.Sprintf("p99 latency %.3f ms is over %.3f ms", run.LatencyMs.P99, limit))
		}
	}
	if t.MaxErrorRate >= 0 && run.ErrorRate > t.MaxErrorRate {
		broken = append(broken, fmt.Sprintf("error rate %.4f%% is over %.4f%%", 100*run.ErrorRate, 100*t.MaxErrorRate))
	}
	if t.MinAchievedRatio > 0 {
		if ratio := run.AchievedRatio(); ratio < t.MinAchievedRatio {
			broken = append(broken, fmt.Sprintf("achieved %.1f req/s, %.4f of the scheduled %.1f, under %.4f",
				run.AchievedRate, ratio, run.ScheduledRate, t.MinAchievedRatio))
		}
	}
	return broken
}
