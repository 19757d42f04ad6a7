package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"txn/internal/loadtest"
	"txn/internal/testenv"
)

// startWorkers starts n `loadtest worker` processes joined to s and waits until the service
// lists them idle.
func startWorkers(t *testing.T, s *service, p *testenv.Processor, n int) []*testenv.Proc {
	t.Helper()
	procs := make([]*testenv.Proc, n)
	for i := range procs {
		procs[i] = testenv.StartCommand(t, "loadtest", []string{"worker", "-name", fmt.Sprintf("w%d", i+1)},
			"LOADTEST_URL=http://"+s.cfg.Addr, "TXN_ADMIN_TOKEN="+p.AdminToken)
	}
	testenv.Eventually(t, 30*time.Second, func() string {
		if idle := s.idleWorkers(); idle != n {
			return fmt.Sprintf("%d idle workers listed, want %d", idle, n)
		}
		return ""
	})
	return procs
}

func (s *service) idleWorkers() int {
	var list struct{ Workers []loadtest.WorkerInfo }
	s.api.Must(s.t, http.StatusOK, "GET", "/workers", nil).JSON(s.t, &list)
	idle := 0
	for _, w := range list.Workers {
		if w.State == loadtest.WorkerIdle {
			idle++
		}
	}
	return idle
}

// moneyVerified checks what verification says of the money (analytics never fill here).
func moneyVerified(t *testing.T, r loadtest.Run) {
	t.Helper()
	v := r.Verification
	if v == nil {
		t.Fatalf("run %s has no verification", r.ID)
	}
	if !v.Balanced {
		t.Errorf("the processor's books do not balance: %v", v.Problems)
	}
	if !v.BalancesMatch {
		t.Errorf("the run's accounts hold %d, the workers' requests account for %d: %v", v.ActualBalanceTotal, v.ExpectedBalanceTotal, v.Problems)
	}
	if v.Unresolved != 0 {
		t.Errorf("%d requests never got a definite answer", v.Unresolved)
	}
}

func TestDistributedLoad(t *testing.T) {
	p := testenv.StartProcessor(t, nil)
	s := newService(t, p)
	s.start()
	workers := startWorkers(t, s, p, 3)
	done := func(r loadtest.Run) bool { return r.Phase == loadtest.PhaseDone }
	mix := map[string]float64{"transfer": 0.6, "deposit": 0.1, "withdrawal": 0.1, "hold": 0.1, "read": 0.1}

	t.Run("a run asking for more workers than are idle is refused", func(t *testing.T) {
		s.api.Must(t, http.StatusConflict, "POST", "/runs", map[string]any{"users": 5, "rate": 10, "duration_s": 2, "workers": 4})
	})

	t.Run("three workers send the schedule together, and the service merges what they measured", func(t *testing.T) {
		var r loadtest.Run
		s.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{"users": 40, "rate": 300, "duration_s": 5, "workers": 3,
			"mix": mix, "thresholds": []map[string]any{{"metric": "p99_ms", "max": 60000}, {"metric": "error_rate", "max": 0.5, "window_s": 2},
				{"metric": "achieved_ratio", "min": 0.8, "window_s": 2}}}).JSON(t, &r)
		r = s.until(r.ID, done)
		if r.Status != loadtest.StatusCompleted {
			t.Fatalf("status %s (%s)", r.Status, r.Error)
		}
		if r.Sent != r.Scheduled {
			t.Errorf("the workers sent %d of the %d scheduled", r.Sent, r.Scheduled)
		}
		if r.OK+r.Failed != r.Sent {
			t.Errorf("ok %d + failed %d != sent %d: answers missing from the merge", r.OK, r.Failed, r.Sent)
		}
		if len(r.Workers) != 3 {
			t.Fatalf("the run shows %d workers, want 3", len(r.Workers))
		}
		var sum uint64
		for _, w := range r.Workers {
			sum += w.Sent
			if w.State != loadtest.WorkerDone {
				t.Errorf("worker %s (%s) ended %s", w.Name, w.Share, w.State)
			}
			if w.Sent != w.Scheduled || w.Scheduled == 0 {
				t.Errorf("worker %s sent %d of its share's %d", w.Name, w.Sent, w.Scheduled)
			}
		}
		if sum != r.Sent {
			t.Errorf("the workers' counts add to %d, the run's to %d", sum, r.Sent)
		}
		if r.LatencyMs.P50 <= 0 || r.LatencyMs.Max < r.LatencyMs.P99 {
			t.Errorf("merged latencies %+v", r.LatencyMs)
		}
		var ts struct {
			Points []struct{ Sent, OK, Failed uint64 }
		}
		s.api.Must(t, http.StatusOK, "GET", "/runs/"+r.ID+"/timeseries", nil).JSON(t, &ts)
		var pointsSent, pointsDone uint64
		for _, pt := range ts.Points {
			pointsSent += pt.Sent
			pointsDone += pt.OK + pt.Failed
		}
		if pointsSent != r.Sent || pointsDone != r.Sent {
			t.Errorf("the merged timeseries counts %d sent and %d answered, the run %d", pointsSent, pointsDone, r.Sent)
		}
		// Judged on the merged measurements: whether a threshold passes depends on how busy the
		// machine is, so what is checked is that each was judged on what the workers measured.
		for _, th := range r.Thresholds {
			if th.Passed == nil || th.Observed == nil {
				t.Errorf("threshold %s was not judged", th)
				continue
			}
			within := (th.Max == nil || *th.Observed <= *th.Max) && (th.Min == nil || *th.Observed >= *th.Min)
			if *th.Passed != within {
				t.Errorf("threshold %s judged passed=%v with %v observed", th, *th.Passed, *th.Observed)
			}
			if th.Metric == "achieved_ratio" && !(*th.Observed > 0) {
				t.Errorf("threshold %s observed %v: the workers' answers did not reach the judge", th, *th.Observed)
			}
		}
		t.Logf("sent %d of %d by %d+%d+%d; p50 %.1f ms, p99 %.1f ms; accepted %d", r.Sent, r.Scheduled,
			r.Workers[0].Sent, r.Workers[1].Sent, r.Workers[2].Sent, r.LatencyMs.P50, r.LatencyMs.P99, r.Verification.Accepted)
		moneyVerified(t, r)
		if r.Verification.Holds == nil || r.Verification.Holds.Created == 0 {
			t.Errorf("the workers' holds were not counted: %+v", r.Verification.Holds)
		}
		testenv.Eventually(t, 10*time.Second, func() string {
			if n := s.idleWorkers(); n != 3 {
				return fmt.Sprintf("%d workers idle after the run, want 3", n)
			}
			return ""
		})
	})

	t.Run("a rate change reaches every worker at the same point of the schedule", func(t *testing.T) {
		var r loadtest.Run
		s.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{"users": 20, "rate": 200, "duration_s": 8, "workers": 3}).JSON(t, &r)
		s.until(r.ID, func(r loadtest.Run) bool { return r.Status == loadtest.StatusRunning && r.Sent > 100 })
		s.api.Must(t, http.StatusOK, "PATCH", "/runs/"+r.ID, map[string]any{"rate": 20})
		r = s.until(r.ID, done)
		if r.Scheduled >= 1600 || r.Scheduled < 200 {
			t.Errorf("scheduled %d after lowering 200/s to 20/s, want between 200 and 1600", r.Scheduled)
		}
		if r.Sent != r.Scheduled {
			t.Errorf("the workers sent %d, the changed schedule has %d", r.Sent, r.Scheduled)
		}
		t.Logf("sent %d, scheduled %d after the change", r.Sent, r.Scheduled)
		if r.TargetRate != 20 {
			t.Errorf("target rate %v, want 20", r.TargetRate)
		}
		moneyVerified(t, r)
	})

	t.Run("a stop reaches every worker", func(t *testing.T) {
		var r loadtest.Run
		s.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{"users": 20, "rate": 150, "duration_s": 60, "workers": 3}).JSON(t, &r)
		s.until(r.ID, func(r loadtest.Run) bool { return r.Status == loadtest.StatusRunning && r.Sent > 150 })
		s.api.Must(t, http.StatusAccepted, "POST", "/runs/"+r.ID+"/stop", nil)
		r = s.until(r.ID, done)
		if r.Status != loadtest.StatusStopped {
			t.Errorf("status %s after a stop", r.Status)
		}
		if r.Sent >= r.Scheduled/2 {
			t.Errorf("sent %d of %d: the workers did not stop", r.Sent, r.Scheduled)
		}
		for _, w := range r.Workers {
			if w.State != loadtest.WorkerDone {
				t.Errorf("worker %s ended %s", w.Name, w.State)
			}
		}
		moneyVerified(t, r)
	})

	t.Run("a worker killed mid-run is reported lost, its share not sent, and the money still verifies", func(t *testing.T) {
		var r loadtest.Run
		s.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{"users": 40, "rate": 300, "duration_s": 12, "workers": 3,
			"mix": mix}).JSON(t, &r)
		s.until(r.ID, func(r loadtest.Run) bool { return r.Status == loadtest.StatusRunning && r.Sent > 600 })
		workers[1].Kill()
		r = s.until(r.ID, done)
		if r.Status != loadtest.StatusCompleted {
			t.Errorf("status %s (%s)", r.Status, r.Error)
		}
		var lost []loadtest.WorkerInfo
		for _, w := range r.Workers {
			if w.State == loadtest.WorkerLost {
				lost = append(lost, w)
			} else if w.State != loadtest.WorkerDone || w.Sent != w.Scheduled {
				t.Errorf("surviving worker %s: %s, sent %d of %d", w.Name, w.State, w.Sent, w.Scheduled)
			}
		}
		if len(lost) != 1 || lost[0].Name != "w2" {
			t.Fatalf("lost workers %+v, want w2 alone", lost)
		}
		if lost[0].LostAt == nil || lost[0].NotSent == 0 || lost[0].Sent+lost[0].NotSent != lost[0].Scheduled {
			t.Errorf("lost worker shows sent %d, not sent %d of %d, lost at %v", lost[0].Sent, lost[0].NotSent, lost[0].Scheduled, lost[0].LostAt)
		}
		if r.Sent >= r.Scheduled {
			t.Errorf("sent %d of %d: the lost share counted as sent", r.Sent, r.Scheduled)
		}
		if !r.Behind || !strings.Contains(r.BehindDetail, "worker w2 lost") {
			t.Errorf("behind %v (%q): want the shortfall put down to the lost worker", r.Behind, r.BehindDetail)
		}
		t.Logf("sent %d of %d; lost worker: sent %d, not sent %d of %d; %d of its requests resent; accepted %d",
			r.Sent, r.Scheduled, lost[0].Sent, lost[0].NotSent, lost[0].Scheduled, r.Verification.LostWorkerRequests, r.Verification.Accepted)
		moneyVerified(t, r)
		if r.Verification.LostWorkerRequests == 0 {
			t.Error("the lost worker's due requests were not resent to learn their fate")
		}
	})
}
