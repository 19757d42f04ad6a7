package loadtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The edge's refusals, which answer before any store or the processor is involved.
func TestHandlerRefusals(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "<html>ui</html>") })
	h := NewHandler(HandlerDeps{Manager: NewManager(Deps{}), AdminToken: "secret", UI: ui, Registry: prometheus.NewRegistry()})
	do := func(method, path, token, ctype, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	problem := func(w *httptest.ResponseRecorder, status int, code string, fields ...string) {
		t.Helper()
		var p struct {
			Status int
			Code   string
			Errors []struct{ Field string }
		}
		if w.Code != status || w.Header().Get("Content-Type") != "application/problem+json" ||
			json.Unmarshal(w.Body.Bytes(), &p) != nil || p.Code != code || p.Status != status {
			t.Errorf("got %d %s %s, want %d %s", w.Code, w.Header().Get("Content-Type"), w.Body, status, code)
			return
		}
		for i, f := range fields {
			if i >= len(p.Errors) || p.Errors[i].Field != f {
				t.Errorf("fields %+v, want %v", p.Errors, fields)
			}
		}
	}
	const js = "application/json"
	problem(do("GET", "/api/v1/runs", "", "", ""), 401, "unauthorized")
	problem(do("GET", "/api/v1/runs", "wrong", "", ""), 401, "unauthorized")
	problem(do("POST", "/api/v1/runs", "secret", "text/plain", `{}`), 415, "unsupported_media_type")
	problem(do("POST", "/api/v1/runs", "secret", js, `[1]`), 400, "invalid_json")
	problem(do("POST", "/api/v1/runs", "secret", js, `{"users": 1} {}`), 400, "invalid_json")
	problem(do("POST", "/api/v1/runs", "secret", js, `{"users": 1, "rate": 1, "duration_s": 1, "extra": true}`), 400, "invalid_json")
	problem(do("POST", "/api/v1/runs", "secret", js, `{"users": "many"}`), 400, "validation_failed", "users")
	problem(do("POST", "/api/v1/runs", "secret", js, `{"users": 0, "rate": -1, "duration_s": 0}`), 400, "validation_failed",
		"users", "rate", "duration_s")
	problem(do("POST", "/api/v1/runs", "secret", js, `{"users": 5, "rate": 10, "duration_s": 1, "mix": {"transfer": 0.9}}`), 400,
		"validation_failed", "mix")
	problem(do("POST", "/api/v1/runs", "secret", js, `{"users": 5, "rate": 10, "duration_s": 1, "mix": {"refund": 1}}`), 400, "invalid_json")
	problem(do("GET", "/api/v1/runs/not-a-uuid", "secret", "", ""), 404, "not_found")
	problem(do("GET", "/api/v1/nothing", "secret", "", ""), 404, "not_found")
	if w := do("GET", "/", "", "", ""); w.Code != 200 || !strings.Contains(w.Body.String(), "ui") {
		t.Errorf("UI: %d %s", w.Code, w.Body)
	}
	if w := do("GET", "/healthz", "", "", ""); w.Code != 200 {
		t.Errorf("healthz: %d", w.Code)
	}
	if w := do("GET", "/metrics", "", "", ""); w.Code != 200 {
		t.Errorf("metrics: %d", w.Code)
	}
}

func TestRoutes(t *testing.T) {
	want := []string{"GET /", "GET /healthz", "GET /readyz", "GET /metrics", "POST /api/v1/runs", "GET /api/v1/runs",
		"GET /api/v1/runs/{id}", "PATCH /api/v1/runs/{id}", "GET /api/v1/runs/{id}/timeseries", "GET /api/v1/runs/{id}/histogram",
		"GET /api/v1/runs/{id}/compare/{base}", "GET /api/v1/runs/{id}/report", "POST /api/v1/runs/{id}/stop", "DELETE /api/v1/runs/{id}/data",
		"POST /api/v1/workers", "GET /api/v1/workers", "POST /api/v1/workers/{id}/heartbeat", "GET /api/v1/workers/{id}/assignment",
		"GET /openapi.json", "GET /docs", "GET /docs/{asset}"}
	if got := Routes(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Routes() = %q", got)
	}
}
