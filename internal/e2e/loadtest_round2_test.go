package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"txn/internal/loadgen"
	"txn/internal/loadtest"
	"txn/internal/testenv"
)

// TestLoadtestRunShapesThresholdsAndReports drives the loadtest API's round-2 features
// against the whole system: names, stages, thresholds judged live and at the end, an abort,
// a rate change while running, the distribution, comparison, report and cleanup job.
func TestLoadtestRunShapesThresholdsAndReports(t *testing.T) {
	pl := startPipeline(t, 1)
	lt := startLoadtest(t, pl)
	done := func(r loadtest.Run) bool { return r.Phase == loadtest.PhaseDone }

	// A run whose rate is changed while it runs, with thresholds every healthy run passes.
	var changed loadtest.Run
	lt.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{
		"name": "rate change", "users": 20, "rate": 50, "duration_s": 6,
		"thresholds": []map[string]any{
			{"metric": "p99_ms", "max": 60_000, "window_s": 2},
			{"metric": "error_rate", "max": 0.5},
			{"metric": "achieved_ratio", "min": 0.5},
		},
	}).JSON(t, &changed)
	lt.watch(t, changed.ID, time.Minute, func(r loadtest.Run) bool { return r.Status == loadtest.StatusRunning && r.Sent >= 50 })
	var patched loadtest.Run
	lt.api.Must(t, http.StatusOK, "PATCH", "/runs/"+changed.ID, map[string]any{"rate": 150}).JSON(t, &patched)
	changed, _ = lt.watch(t, changed.ID, 2*time.Minute, done)

	t.Run("a rate change takes effect and the target follows it", func(t *testing.T) {
		if patched.TargetRate != 150 || changed.TargetRate != 150 {
			t.Errorf("target rate %v after the PATCH, %v at the end; want 150", patched.TargetRate, changed.TargetRate)
		}
		if changed.Scheduled <= 400 || changed.Sent != changed.Scheduled {
			t.Errorf("scheduled %d, sent %d: more than 6 s at 50/s, all sent", changed.Scheduled, changed.Sent)
		}
		var ts struct{ Points []loadgen.Point }
		lt.api.Must(t, http.StatusOK, "GET", "/runs/"+changed.ID+"/timeseries", nil).JSON(t, &ts)
		// Seconds 0-5 are the schedule's (a late send may add a point after them).
		if n := len(ts.Points); n < 6 || ts.Points[0].Target != 50 || ts.Points[5].Target != 150 {
			t.Errorf("targets by second: %v", targets(ts.Points))
		}
	})
	t.Run("the name is kept and listed", func(t *testing.T) {
		if changed.Name != "rate change" || lt.list(t)[0].Name != "rate change" {
			t.Errorf("name %q, listed %q", changed.Name, lt.list(t)[0].Name)
		}
	})
	t.Run("every threshold is judged with what it observed", func(t *testing.T) {
		if len(changed.Thresholds) != 3 {
			t.Fatalf("%d thresholds", len(changed.Thresholds))
		}
		for _, th := range changed.Thresholds {
			if th.Passed == nil || !*th.Passed || th.Observed == nil {
				t.Errorf("%s: passed %v observed %v", th, th.Passed, th.Observed)
			}
		}
		if changed.Status != loadtest.StatusCompleted || changed.Verification == nil || !changed.Verification.OK {
			t.Errorf("status %s, verification %+v", changed.Status, changed.Verification)
		}
	})
	t.Run("a rate change after the run is a conflict", func(t *testing.T) {
		lt.api.Must(t, http.StatusConflict, "PATCH", "/runs/"+changed.ID, map[string]any{"rate": 10})
		lt.api.Must(t, http.StatusBadRequest, "PATCH", "/runs/"+changed.ID, map[string]any{"rate": -1})
		lt.api.Must(t, http.StatusNotFound, "PATCH", "/runs/"+testenv.Unique("x"), map[string]any{"rate": 10})
	})

	// A staged run that a threshold with abort ends after its first whole second.
	var aborted loadtest.Run
	lt.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{
		"users": 10, "stages": []map[string]any{{"duration_s": 2, "rate": 100}, {"duration_s": 4, "rate": 100}},
		"thresholds": []map[string]any{{"metric": "p50_ms", "max": 0.001, "window_s": 1, "abort": true}},
	}).JSON(t, &aborted)
	aborted, _ = lt.watch(t, aborted.ID, 2*time.Minute, done)

	t.Run("stages report their peak and sum", func(t *testing.T) {
		if aborted.Config.Rate != 100 || aborted.Config.DurationS != 6 {
			t.Errorf("rate %v, duration %v; want 100, 6", aborted.Config.Rate, aborted.Config.DurationS)
		}
	})
	t.Run("a broken threshold with abort ends the run as aborted, still verified", func(t *testing.T) {
		if aborted.Status != loadtest.StatusAborted || !strings.Contains(aborted.AbortReason, "p50_ms < 0.001 over 1 s") {
			t.Errorf("status %s, abort reason %q", aborted.Status, aborted.AbortReason)
		}
		if aborted.Sent >= aborted.Scheduled {
			t.Errorf("sent %d of %d: not cut short", aborted.Sent, aborted.Scheduled)
		}
		if aborted.Verification == nil || !aborted.Verification.OK {
			t.Errorf("verification %+v", aborted.Verification)
		}
	})
	t.Run("stages refuse a ramp-up", func(t *testing.T) {
		r := lt.api.Must(t, http.StatusBadRequest, "POST", "/runs", map[string]any{
			"users": 1, "ramp_up_s": 1, "stages": []map[string]any{{"duration_s": 2, "rate": 10}}, "mix": map[string]float64{"deposit": 1}})
		if !strings.Contains(string(r.Body), `"ramp_up_s"`) {
			t.Errorf("problem %s does not name ramp_up_s", r.Body)
		}
	})

	t.Run("the distribution runs from p0 to p100 and never falls", func(t *testing.T) {
		var h struct{ Percentiles []loadgen.Percentile }
		lt.api.Must(t, http.StatusOK, "GET", "/runs/"+changed.ID+"/histogram", nil).JSON(t, &h)
		ps := h.Percentiles
		if len(ps) < 6 || ps[0].P != 0 || ps[len(ps)-1].P != 100 {
			t.Fatalf("percentiles %+v", ps)
		}
		seen := map[float64]bool{}
		for i, p := range ps {
			seen[p.P] = true
			if i > 0 && p.Ms < ps[i-1].Ms {
				t.Errorf("p%v %v ms under p%v %v ms", p.P, p.Ms, ps[i-1].P, ps[i-1].Ms)
			}
		}
		for _, want := range []float64{50, 90, 99, 99.9, 99.99, 100} {
			if !seen[want] {
				t.Errorf("no p%v", want)
			}
		}
	})
	t.Run("a comparison gives each metric of both runs", func(t *testing.T) {
		var c loadtest.Comparison
		lt.api.Must(t, http.StatusOK, "GET", "/runs/"+aborted.ID+"/compare/"+changed.ID, nil).JSON(t, &c)
		names := map[string]loadtest.ComparisonMetric{}
		for _, m := range c.Metrics {
			names[m.Name] = m
		}
		for _, n := range []string{"achieved_rate", "p50_ms", "p99_ms", "error_rate"} {
			if _, ok := names[n]; !ok {
				t.Errorf("no %s in %+v", n, c.Metrics)
			}
		}
		if m := names["p50_ms"]; m.Run != aborted.LatencyMs.P50 || m.Base != changed.LatencyMs.P50 {
			t.Errorf("p50_ms %+v, runs have %v and %v", m, aborted.LatencyMs.P50, changed.LatencyMs.P50)
		}
		lt.api.Must(t, http.StatusNotFound, "GET", "/runs/"+aborted.ID+"/compare/"+testenv.Unique("x"), nil)
	})
	t.Run("the report is one self-contained page", func(t *testing.T) {
		r := lt.api.Must(t, http.StatusOK, "GET", "/runs/"+aborted.ID+"/report", nil)
		page := string(r.Body)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("content type %q", ct)
		}
		if !strings.Contains(page, aborted.ID) || !strings.Contains(page, "<svg") || strings.Contains(page, "<script") ||
			strings.Contains(page, "http://") || strings.Contains(page, "https://") {
			t.Errorf("the report is not a self-contained page of the run (%d bytes)", len(page))
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("CSP %q", csp)
		}
	})

	t.Run("a cleanup goes on when its request goes away, and the run shows it", func(t *testing.T) {
		impatient := *lt.api
		impatient.HTTP = &http.Client{Timeout: 20 * time.Millisecond}
		_, _ = impatient.Do("DELETE", "/runs/"+aborted.ID+"/data", nil)
		var last *loadtest.CleanupResult
		testenv.Eventually(t, 2*time.Minute, func() string {
			last = lt.run(t, aborted.ID).Cleanup
			if last == nil || last.Status != loadtest.CleanupDone {
				return "cleanup " + cleanupState(last)
			}
			return ""
		})
		if last.Users != 10 || last.Transactions < 10 || last.StartedAt.IsZero() {
			t.Errorf("cleanup %+v", last)
		}
		if ids := runUserIDs(t, pl, aborted.ID); len(ids) != 0 {
			t.Errorf("%d users left", len(ids))
		}
	})
	lt.api.Must(t, http.StatusOK, "DELETE", "/runs/"+changed.ID+"/data", nil)
}

func targets(ps []loadgen.Point) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = p.Target
	}
	return out
}

func cleanupState(c *loadtest.CleanupResult) string {
	if c == nil {
		return "not started"
	}
	return c.Status + " " + c.Step + " " + c.Error
}
