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

// Compare compares run with base on throughput, latency and errors.
func Compare(run, base Run) Comparison {
	c := Comparison{Run: run.ID, Base: base.ID}
	add := func(name string, r, b float64, higherIsBetter bool) {
		m := ComparisonMetric{Name: name, Run: r, Base: b}
		if b != 0 {
			ch := (r - b) / b
			m.Change = &ch
		}
		if higherIsBetter {
			m.Worse = r < b
		} else {
			m.Worse = r > b
		}
		c.Metrics = append(c.Metrics, m)
	}
	add("achieved_rate", run.AchievedRate, base.AchievedRate, true)
	add("achieved_ratio", run.AchievedRatio(), base.AchievedRatio(), true)
	add("p50_ms", run.LatencyMs.P50, base.LatencyMs.P50, false)
	add("p90_ms", run.LatencyMs.P90, base.LatencyMs.P90, false)
	add("p99_ms", run.LatencyMs.P99, base.LatencyMs.P99, false)
	add("max_ms", run.LatencyMs.Max, base.LatencyMs.Max, false)
	add("error_rate", run.ErrorRate, base.ErrorRate, false)
	return c
}
