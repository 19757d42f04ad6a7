package loadtest

// Comparison is GET /runs/{id}/compare/{base}: a run's main figures beside a baseline's.
type Comparison struct {
	Run     string             `json:"run"`
	Base    string             `json:"base"`
	Metrics []ComparisonMetric `json:"metrics"`
}

// ComparisonMetric is one figure of both runs. Change is (run - base) / base, null when base
// is 0; Worse says the run did worse on it than the base.
type ComparisonMetric struct {
	Name   string   `json:"name"`
	Run    float64  `json:"run"`
	Base   float64  `json:"base"`
	Change *float64 `json:"change"`
	Worse  bool     `json:"worse"`
}

// noise is the relative change under which a figure is not called worse: runs on a shared
// machine differ by that much without anything changing.
const noise = 0.01

// Compare compares run with base on throughput, latency and errors. A lower achieved rate is
// worse only when the run was scheduled at least as high as the base; otherwise the achieved
// ratio (achieved over scheduled) is the fair comparison.
func Compare(run, base Run) Comparison {
	c := Comparison{Run: run.ID, Base: base.ID}
	add := func(name string, r, b float64, worse bool) {
		m := ComparisonMetric{Name: name, Run: r, Base: b, Worse: worse}
		if b != 0 {
			ch := (r - b) / b
			m.Change = &ch
		}
		c.Metrics = append(c.Metrics, m)
	}
	lower := func(r, b float64) bool { return r < b*(1-noise) }
	higher := func(r, b float64) bool { return r > b*(1+noise) }
	sameSchedule := run.ScheduledRate >= base.ScheduledRate*(1-noise)
	add("achieved_rate", run.AchievedRate, base.AchievedRate, sameSchedule && lower(run.AchievedRate, base.AchievedRate))
	add("achieved_ratio", run.AchievedRatio(), base.AchievedRatio(), lower(run.AchievedRatio(), base.AchievedRatio()))
	add("p50_ms", run.LatencyMs.P50, base.LatencyMs.P50, higher(run.LatencyMs.P50, base.LatencyMs.P50))
	add("p90_ms", run.LatencyMs.P90, base.LatencyMs.P90, higher(run.LatencyMs.P90, base.LatencyMs.P90))
	add("p99_ms", run.LatencyMs.P99, base.LatencyMs.P99, higher(run.LatencyMs.P99, base.LatencyMs.P99))
	add("max_ms", run.LatencyMs.Max, base.LatencyMs.Max, higher(run.LatencyMs.Max, base.LatencyMs.Max))
	// Error rates are small shares: a change under 0.01 percentage point is noise.
	add("error_rate", run.ErrorRate, base.ErrorRate, run.ErrorRate > base.ErrorRate+0.0001)
	return c
}
