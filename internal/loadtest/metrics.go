package loadtest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the load tester's Prometheus metrics.
type Metrics struct {
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	runs       *prometheus.CounterVec
	logWritten prometheus.Counter
	logDropped prometheus.Counter
}

// NewMetrics registers the metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "loadtest_requests_total",
			Help: "Generated requests completed, by operation and outcome (ok or the error code)."}, []string{"op", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "loadtest_request_duration_seconds",
			Help:    "Latency of generated requests, from their scheduled send time to their answer.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10}}, []string{"op"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "loadtest_runs_total",
			Help: "Runs ended, by status."}, []string{"status"}),
		logWritten: prometheus.NewCounter(prometheus.CounterOpts{Name: "loadtest_request_log_written_total",
			Help: "Request records written to the request log."}),
		logDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "loadtest_request_log_dropped_total",
			Help: "Request records lost: the writer fell behind or the store failed."}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.runs, m.logWritten, m.logDropped)
	}
	return m
}

func (m *Metrics) observe(op, outcome string, latency time.Duration) {
	m.requests.WithLabelValues(op, outcome).Inc()
	m.latency.WithLabelValues(op).Observe(latency.Seconds())
}
