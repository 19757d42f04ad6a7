package loadtest

import (
	"strings"
	"testing"
	"time"

	"txn/internal/loadgen"
)

func TestParseThresholds(t *testing.T) {
	for in, want := range map[string]float64{"0.1%": 0.001, "5%": 0.05, "0.001": 0.001, "0": 0, "100%": 1, " 1% ": 0.01} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "%", "abc", "-1%", "101%", "1.5", "NaN"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
	for in, want := range map[string]time.Duration{"50ms": 50 * time.Millisecond, "0.001ms": time.Microsecond, "1s": time.Second} {
		if got, err := ParseLatency(in); err != nil || got != want {
			t.Errorf("ParseLatency(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "50", "0ms", "-1ms", "fast"} {
		if _, err := ParseLatency(bad); err == nil {
			t.Errorf("ParseLatency(%q) accepted", bad)
		}
	}
	if got, err := ParseRatio("0.99"); err != nil || got != 0.99 {
		t.Errorf("ParseRatio(0.99) = %v, %v", got, err)
	}
	for _, bad := range []string{"0", "1.01", "x", "-0.5"} {
		if _, err := ParseRatio(bad); err == nil {
			t.Errorf("ParseRatio(%q) accepted", bad)
		}
	}
}

func TestThresholdsCheck(t *testing.T) {
	run := Run{Sent: 1000, AchievedRate: 980, ScheduledRate: 1000, LatencyMs: loadgen.Latency{P99: 12.5}}
	run.fill(loadgen.Summary{Sent: 1000, OK: 990, Failed: 10, Latency: loadgen.Latency{P99: 12.5},
		Errors: map[string]uint64{"insufficient_funds": 8, "timeout": 2}}, 0)
	if run.Rejected != 8 || run.ErrorRate != 0.002 {
		t.Fatalf("rejected %d, error rate %v", run.Rejected, run.ErrorRate)
	}
	if broken := NoThresholds.Check(run); len(broken) != 0 {
		t.Errorf("no thresholds, broken: %v", broken)
	}
	pass := Thresholds{MaxP99: 13 * time.Millisecond, MaxErrorRate: 0.002, MinAchievedRatio: 0.98}
	if broken := pass.Check(run); len(broken) != 0 {
		t.Errorf("broken: %v", broken)
	}
	fail := Thresholds{MaxP99: 12 * time.Millisecond, MaxErrorRate: 0.001, MinAchievedRatio: 0.99}
	broken := fail.Check(run)
	if len(broken) != 3 || !strings.Contains(broken[0], "p99") || !strings.Contains(broken[1], "error rate") ||
		!strings.Contains(broken[2], "achieved") {
		t.Errorf("broken: %q", broken)
	}
}
