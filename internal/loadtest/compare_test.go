package loadtest

import (
	"testing"

	"txn/internal/loadgen"
)

func TestCompare(t *testing.T) {
	worse := func(c Comparison) map[string]bool {
		out := map[string]bool{}
		for _, m := range c.Metrics {
			out[m.Name] = m.Worse
		}
		return out
	}
	base := Run{ID: "b", AchievedRate: 40, ScheduledRate: 40, LatencyMs: loadgen.Latency{P50: 10, P99: 50}, ErrorRate: 0.001}

	t.Run("a healthy ramp that sent less than a steady base is not worse", func(t *testing.T) {
		ramp := Run{ID: "r", AchievedRate: 32, ScheduledRate: 32, LatencyMs: base.LatencyMs, ErrorRate: base.ErrorRate}
		if w := worse(Compare(ramp, base)); w["achieved_rate"] || w["achieved_ratio"] {
			t.Errorf("worse: %v", w)
		}
	})
	t.Run("falling behind the same schedule is worse", func(t *testing.T) {
		slow := Run{ID: "s", AchievedRate: 30, ScheduledRate: 40, LatencyMs: base.LatencyMs, ErrorRate: base.ErrorRate}
		if w := worse(Compare(slow, base)); !w["achieved_rate"] || !w["achieved_ratio"] {
			t.Errorf("worse: %v", w)
		}
	})
	t.Run("changes within noise are not worse", func(t *testing.T) {
		near := base
		near.LatencyMs.P99 = 50.3
		near.ErrorRate = 0.00105
		if w := worse(Compare(near, base)); w["p99_ms"] || w["error_rate"] {
			t.Errorf("worse: %v", w)
		}
	})
	t.Run("slower and more errors are worse, with the change", func(t *testing.T) {
		bad := base
		bad.LatencyMs.P99, bad.ErrorRate = 75, 0.01
		c := Compare(bad, base)
		w := worse(c)
		if !w["p99_ms"] || !w["error_rate"] {
			t.Errorf("worse: %v", w)
		}
		for _, m := range c.Metrics {
			if m.Name == "p99_ms" && (m.Change == nil || *m.Change != 0.5) {
				t.Errorf("p99 change %v, want 0.5", m.Change)
			}
		}
	})
}
