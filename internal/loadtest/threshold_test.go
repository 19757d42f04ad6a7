package loadtest

import (
	"strings"
	"testing"
)

func fp(v float64) *float64 { return &v }

func TestParseThreshold(t *testing.T) {
	t.Run("k6-like conditions with options", func(t *testing.T) {
		for in, want := range map[string]Threshold{
			"p99_ms<50":                     {Metric: MetricP99, Max: fp(50)},
			"error_rate<0.1%":               {Metric: MetricErrorRate, Max: fp(0.001)},
			"achieved_ratio > 0.99":         {Metric: MetricAchievedRatio, Min: fp(0.99)},
			"p90_ms<20,window=10s,abort":    {Metric: MetricP90, Max: fp(20), WindowS: 10, Abort: true},
			"p50_ms<1.5, abort":             {Metric: MetricP50, Max: fp(1.5), Abort: true},
			"error_rate<0.05,window=1m0s":   {Metric: MetricErrorRate, Max: fp(0.05), WindowS: 60},
			"achieved_ratio>0.9,window=2s":  {Metric: MetricAchievedRatio, Min: fp(0.9), WindowS: 2},
			"p99_ms<1000000,window=24h0m0s": {Metric: MetricP99, Max: fp(1e6), WindowS: 86400},
		} {
			got, err := ParseThreshold(in)
			if err != nil || got.String() != want.String() {
				t.Errorf("ParseThreshold(%q) = %v, %v; want %v", in, got, err, want)
			}
		}
	})
	t.Run("refused", func(t *testing.T) {
		for _, bad := range []string{"", "p99_ms", "p99_ms=5", "p99_ms>5", "error_rate<2", "achieved_ratio<0.9",
			"latency<5", "p99_ms<abc", "p99_ms<5,window=0.5s", "p99_ms<5,fast", "p99_ms<-1"} {
			if _, err := ParseThreshold(bad); err == nil {
				t.Errorf("ParseThreshold(%q) accepted", bad)
			}
		}
	})
}

func TestValidateThresholds(t *testing.T) {
	ok := []Threshold{{Metric: MetricP99, Max: fp(50), WindowS: 5, Abort: true}, {Metric: MetricAchievedRatio, Min: fp(0.99)}}
	if f := validateThresholds(ok, 10); len(f) != 0 {
		t.Errorf("valid thresholds refused: %v", f)
	}
	for name, c := range map[string]struct {
		t     Threshold
		field string
	}{
		"unknown metric":         {Threshold{Metric: "p42", Max: fp(1)}, "thresholds[0].metric"},
		"latency without max":    {Threshold{Metric: MetricP50, Min: fp(1)}, "thresholds[0].max"},
		"error rate over 1":      {Threshold{Metric: MetricErrorRate, Max: fp(1.5)}, "thresholds[0].max"},
		"ratio with max":         {Threshold{Metric: MetricAchievedRatio, Max: fp(0.5)}, "thresholds[0].min"},
		"window longer than run": {Threshold{Metric: MetricP99, Max: fp(1), WindowS: 11}, "thresholds[0].window_s"},
		"window of a fraction":   {Threshold{Metric: MetricP99, Max: fp(1), WindowS: 1.5}, "thresholds[0].window_s"},
		"window negative":        {Threshold{Metric: MetricP99, Max: fp(1), WindowS: -1}, "thresholds[0].window_s"},
	} {
		f := validateThresholds([]Threshold{c.t}, 10)
		if len(f) != 1 || f[0].Field != c.field {
			t.Errorf("%s: %v, want one error on %s", name, f, c.field)
		}
	}
	many := make([]Threshold, MaxThresholds+1)
	if f := validateThresholds(many, 10); len(f) != 1 || f[0].Field != "thresholds" {
		t.Errorf("%d thresholds: %v", len(many), f)
	}
}

func TestJudge(t *testing.T) {
	t.Run("a windowed threshold keeps its worst window and fails once broken", func(t *testing.T) {
		th := Threshold{Metric: MetricP99, Max: fp(50), WindowS: 5}
		for _, v := range []float64{10, 70, 20} {
			judge(&th, v)
		}
		if *th.Observed != 70 || *th.Passed {
			t.Errorf("observed %v passed %v; want 70, false", *th.Observed, *th.Passed)
		}
	})
	t.Run("a min threshold's worst is the lowest", func(t *testing.T) {
		th := Threshold{Metric: MetricAchievedRatio, Min: fp(0.9)}
		judge(&th, 0.95)
		judge(&th, 0.92)
		if *th.Observed != 0.92 || !*th.Passed {
			t.Errorf("observed %v passed %v; want 0.92, true", *th.Observed, *th.Passed)
		}
	})
	t.Run("refusals by a business rule are no errors", func(t *testing.T) {
		if got := errorShare(90, 10, map[string]uint64{"insufficient_funds": 8, "http_503": 2}); got != 0.02 {
			t.Errorf("error share %v, want 0.02", got)
		}
	})
	t.Run("Broken names the threshold and what it observed", func(t *testing.T) {
		th := Threshold{Metric: MetricP99, Max: fp(5)}
		judge(&th, 7)
		if b := Broken(Run{Thresholds: []Threshold{th}}); len(b) != 1 || !strings.Contains(b[0], "p99_ms < 5: observed 7") {
			t.Errorf("Broken = %q", b)
		}
	})
}
