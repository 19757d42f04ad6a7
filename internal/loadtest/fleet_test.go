package loadtest

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"txn/internal/apierr"
	"txn/internal/loadgen"
)

func TestFleet(t *testing.T) {
	t.Run("a worker's name must be 1 to 100 printable characters", func(t *testing.T) {
		f := NewFleet()
		for _, name := range []string{"", "  ", "a\nb", strings.Repeat("x", 101)} {
			if _, err := f.Register(name); apierr.CodeOf(err) != apierr.CodeValidation {
				t.Errorf("name %q: %v, want validation_failed", name, err)
			}
		}
		if n := len(f.Workers()); n != 0 {
			t.Errorf("%d workers listed after refused names", n)
		}
	})
	t.Run("an unknown worker's heartbeat is not found, so it registers again", func(t *testing.T) {
		_, err := NewFleet().Heartbeat("0193a3f2-7c1e-7d4a-9b1e-3f6c2a1d5e40", WorkerReport{State: WorkerIdle})
		if apierr.CodeOf(err) != apierr.CodeNotFound {
			t.Errorf("heartbeat of an unknown worker: %v", err)
		}
	})
	t.Run("a run claims only idle workers heard of lately, and says how many it lacks", func(t *testing.T) {
		f := NewFleet()
		now := time.Now()
		f.now = func() time.Time { return now }
		a, _ := f.Register("a")
		if _, err := f.Register("b"); err != nil {
			t.Fatal(err)
		}
		now = now.Add(WorkerLostAfter + time.Second)
		if _, err := f.Heartbeat(a.ID, WorkerReport{State: WorkerIdle}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.claim("run", 2); apierr.CodeOf(err) != apierr.CodeConflict || !strings.Contains(err.Error(), "1 are idle") {
			t.Errorf("claim of 2 with one worker heard of lately: %v", err)
		}
		d, err := f.claim("run", 1)
		if err != nil {
			t.Fatal(err)
		}
		if d.workers[0].info.ID != a.ID {
			t.Errorf("claimed %s, want the worker heard of lately", d.workers[0].info.Name)
		}
		if _, err := f.Assignment(a.ID); apierr.CodeOf(err) != apierr.CodeConflict {
			t.Errorf("assignment before the run prepared: %v, want conflict", err)
		}
		orders, err := f.Heartbeat(a.ID, WorkerReport{State: WorkerIdle})
		if err != nil || orders.RunID != "" {
			t.Errorf("orders while the run prepares = %+v, %v: want none yet", orders, err)
		}
	})
	t.Run("a lost worker is refused until it registers again, and a report that does not decode changes nothing", func(t *testing.T) {
		f := NewFleet()
		now := time.Now()
		f.now = func() time.Time { return now }
		w, _ := f.Register("w")
		d, err := f.claim("run", 1)
		if err != nil {
			t.Fatal(err)
		}
		sched, _ := loadgen.Constant(10, 10*time.Second, 0)
		d.begin(Assignment{RunID: "run"}, now, sched)
		bad := WorkerReport{RunID: "run", State: WorkerRunning, Delta: &loadgen.Delta{Lag: loadgen.Buckets{{1000, 0}}}}
		if _, err := f.Heartbeat(w.ID, bad); apierr.CodeOf(err) != apierr.CodeValidation {
			t.Errorf("a report with a broken histogram: %v, want validation_failed", err)
		}
		if got := d.infos()[0].State; got != WorkerAssigned {
			t.Errorf("state after a refused report = %s, want assigned", got)
		}
		if !d.markLost(now.Add(WorkerLostAfter + time.Second)) {
			t.Error("the only worker, unheard of, left the run unfinished")
		}
		info := d.infos()[0]
		if info.State != WorkerLost || info.NotSent != 100 || info.Scheduled != 100 {
			t.Errorf("lost worker = %+v, want its 100 requests not sent", info)
		}
		if _, err := f.Heartbeat(w.ID, WorkerReport{RunID: "run", State: WorkerRunning}); apierr.CodeOf(err) != apierr.CodeNotFound {
			t.Errorf("a lost worker's heartbeat: %v, want not_found", err)
		}
		f.release(d)
		if n := len(f.Workers()); n != 0 {
			t.Errorf("%d workers listed after the run released its lost one", n)
		}
	})
	t.Run("the edge refuses a heartbeat that is not a report, and fleet routes on a service without a fleet", func(t *testing.T) {
		f := NewFleet()
		w, _ := f.Register("w")
		for _, c := range []struct {
			fleet  *Fleet
			method string
			path   string
			body   string
			status int
			code   string
		}{
			{f, "POST", "/api/v1/workers/" + w.ID + "/heartbeat", `{"state": "idle", "extra": 1}`, 400, "invalid_json"},
			{f, "POST", "/api/v1/workers/" + w.ID + "/heartbeat", `[]`, 400, "invalid_json"},
			{f, "POST", "/api/v1/workers/not-a-uuid/heartbeat", `{"state": "idle"}`, 404, "not_found"},
			{f, "POST", "/api/v1/workers", `{"name": ""}`, 400, "validation_failed"},
			{nil, "GET", "/api/v1/workers", ``, 404, "not_found"},
		} {
			h := NewHandler(HandlerDeps{Manager: NewManager(Deps{}), Fleet: c.fleet, AdminToken: "secret", Registry: prometheus.NewRegistry()})
			req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer secret")
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var p struct{ Code string }
			_ = json.Unmarshal(rec.Body.Bytes(), &p)
			if rec.Code != c.status || p.Code != c.code {
				t.Errorf("%s %s %s: %d %s, want %d %s", c.method, c.path, c.body, rec.Code, p.Code, c.status, c.code)
			}
		}
	})
}
