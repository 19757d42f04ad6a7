package loadtest

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"txn/internal/apidocs"
	"txn/internal/apierr"
	"txn/internal/httpedge"
	"txn/internal/loadgen"
	"txn/internal/service"
)

// HandlerDeps is what the HTTP edge needs.
type HandlerDeps struct {
	Manager    *Manager
	AdminToken string
	UI         http.Handler // the web UI, served at GET /
	Registry   *prometheus.Registry
	Checks     []service.Check
	Log        *slog.Logger
	Fleet      *Fleet // the load workers; nil: the service takes none
}

type server struct{ HandlerDeps }

// apiRoutes is the API (API.md, "Loadtest"); every route takes the admin token.
var apiRoutes = []struct {
	pattern string
	handle  func(*server, http.ResponseWriter, *http.Request) error
}{
	{"POST /api/v1/runs", (*server).createRun},
	{"GET /api/v1/runs", (*server).listRuns},
	{"GET /api/v1/runs/{id}", (*server).getRun},
	{"PATCH /api/v1/runs/{id}", (*server).patchRun},
	{"GET /api/v1/runs/{id}/timeseries", (*server).timeseries},
	{"GET /api/v1/runs/{id}/histogram", (*server).histogram},
	{"GET /api/v1/runs/{id}/compare/{base}", (*server).compare},
	{"GET /api/v1/runs/{id}/report", (*server).report},
	{"POST /api/v1/runs/{id}/stop", (*server).stopRun},
	{"DELETE /api/v1/runs/{id}/data", (*server).deleteData},
	{"POST /api/v1/workers", (*server).joinFleet},
	{"GET /api/v1/workers", (*server).listWorkers},
	{"POST /api/v1/workers/{id}/heartbeat", (*server).heartbeat},
	{"GET /api/v1/workers/{id}/assignment", (*server).assignment},
}

// pageRoutes are the routes outside the API.
var pageRoutes = []struct {
	pattern string
	handler func(HandlerDeps) http.Handler
}{
	{"GET /", func(d HandlerDeps) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/api/") { // an API path no route matched
				httpedge.WriteError(w, apierr.Errorf(apierr.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
				return
			}
			d.UI.ServeHTTP(w, r)
		})
	}},
	{"GET /healthz", func(HandlerDeps) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			service.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})
	}},
	{"GET /readyz", func(d HandlerDeps) http.Handler {
		return service.ReadyHandler(func() []service.Check { return d.Checks })
	}},
	{"GET /metrics", func(d HandlerDeps) http.Handler { return promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}) }},
}

// Routes lists the method and pattern of every route the handler serves.
func Routes() []string {
	var out []string
	for _, r := range pageRoutes {
		out = append(out, r.pattern)
	}
	for _, r := range apiRoutes {
		out = append(out, r.pattern)
	}
	return append(out, apidocs.Patterns...)
}

// NewHandler serves the API, the web UI and the operational endpoints.
func NewHandler(d HandlerDeps) http.Handler {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.UI == nil {
		d.UI = http.NotFoundHandler()
	}
	s := &server{d}
	mux := http.NewServeMux()
	apidocs.Mount(mux, apidocs.LoadtestSpec, "txn loadtest API")
	for _, r := range pageRoutes {
		mux.Handle(r.pattern, r.handler(d))
	}
	for _, r := range apiRoutes {
		h := r.handle
		mux.Handle(r.pattern, s.authed(func(w http.ResponseWriter, r *http.Request) error { return h(s, w, r) }))
	}
	return mux
}

func (s *server) authed(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := httpedge.Bearer(r)
		if !ok || s.AdminToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.AdminToken)) != 1 {
			httpedge.WriteError(w, apierr.Errorf(apierr.CodeUnauthorized, "the admin token is required"))
			return
		}
		if err := h(w, r); err != nil {
			if r.Context().Err() != nil {
				s.Log.Info("the client went away", "method", r.Method, "path", r.URL.Path, "err", err)
				return
			}
			var e *apierr.Error
			if !errors.As(err, &e) || e.Code == apierr.CodeUnavailable {
				s.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			httpedge.WriteError(w, err)
		}
	})
}

// decodeConfig reads a run configuration: a JSON object with known fields only.
func decodeConfig(w http.ResponseWriter, r *http.Request) (Config, error) {
	// Fields left out keep API.md's defaults; decoding only overwrites what the body names.
	c := Config{InitialBalance: DefaultBalance}
	body, err := httpedge.ReadBody(w, r, 64<<10)
	if err == nil {
		err = httpedge.DecodeObject(body, &c)
	}
	return c, err
}

func (s *server) createRun(w http.ResponseWriter, r *http.Request) error {
	c, err := decodeConfig(w, r)
	if err != nil {
		return err
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return err
	}
	run, err := s.Manager.Start(c)
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusCreated, run)
	return nil
}

func (s *server) listRuns(w http.ResponseWriter, r *http.Request) error {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return apierr.Invalid(apierr.FieldError{Field: "limit", Message: "must be an integer from 1 to 200"})
		}
		limit = n
	}
	runs, next, err := s.Manager.List(r.Context(), limit, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	out := struct {
		Data       []Run   `json:"data"`
		NextCursor *string `json:"next_cursor"`
	}{Data: runs}
	if out.Data == nil {
		out.Data = []Run{}
	}
	if next != "" {
		out.NextCursor = &next
	}
	service.WriteJSON(w, http.StatusOK, out)
	return nil
}

// runID is the {id} (or another name) of the path; what is not a UUID names no run.
func runID(r *http.Request, name ...string) (string, error) {
	key := "id"
	if len(name) > 0 {
		key = name[0]
	}
	id, err := uuid.Parse(r.PathValue(key))
	if err != nil {
		return "", errNotFound(r.PathValue(key))
	}
	return id.String(), nil
}

func (s *server) getRun(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	run, err := s.Manager.Get(r.Context(), id)
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusOK, run)
	return nil
}

// patchRun changes a running run's rate: {"rate"} (API.md).
func (s *server) patchRun(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	var in struct {
		Rate *float64 `json:"rate"`
	}
	body, err := httpedge.ReadBody(w, r, 4<<10)
	if err == nil {
		err = httpedge.DecodeObject(body, &in)
	}
	if err != nil {
		return err
	}
	if in.Rate == nil || !(*in.Rate >= 0) || *in.Rate > MaxRate {
		return apierr.Invalid(apierr.FieldError{Field: "rate", Message: fmt.Sprintf("must be a number of requests per second from 0 to %d", MaxRate)})
	}
	run, err := s.Manager.SetRate(r.Context(), id, *in.Rate)
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusOK, run)
	return nil
}

func (s *server) timeseries(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	pts, err := s.Manager.Timeseries(r.Context(), id)
	if err != nil {
		return err
	}
	if pts == nil {
		pts = []loadgen.Point{}
	}
	service.WriteJSON(w, http.StatusOK, map[string][]loadgen.Point{"points": pts})
	return nil
}

func (s *server) histogram(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	ps, err := s.Manager.Histogram(r.Context(), id)
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []loadgen.Percentile{}
	}
	service.WriteJSON(w, http.StatusOK, map[string][]loadgen.Percentile{"percentiles": ps})
	return nil
}

func (s *server) compare(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	baseID, err := runID(r, "base")
	if err != nil {
		return err
	}
	run, err := s.Manager.Get(r.Context(), id)
	if err != nil {
		return err
	}
	base, err := s.Manager.Get(r.Context(), baseID)
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusOK, Compare(run, base))
	return nil
}

func (s *server) stopRun(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	run, err := s.Manager.Stop(r.Context(), id)
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusAccepted, run)
	return nil
}

// report answers the run's self-contained HTML report (API.md); ?download=1 asks the browser
// to save it.
func (s *server) report(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	rec, err := s.Manager.Record(r.Context(), id)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := WriteReport(&b, rec); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Nothing on the page may load anything, whatever a run's name holds.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	if r.URL.Query().Get("download") != "" {
		w.Header().Set("Content-Disposition", `attachment; filename="loadtest-`+id+`.html"`)
	}
	_, err = w.Write(b.Bytes())
	return err
}

// cleanupWriteTimeout replaces the server's write timeout for a data deletion.
const cleanupWriteTimeout = 15 * time.Minute

func (s *server) deleteData(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	// Deleting a big run's data from the document store can take minutes.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(cleanupWriteTimeout))
	res, err := s.Manager.DeleteData(r.Context(), id)
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusOK, res)
	return nil
}

// A cursor is the created_at (Unix microseconds) and id of the last run of a page.
func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + ":" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	if c == "" {
		return time.Time{}, "", nil
	}
	bad := apierr.Invalid(apierr.FieldError{Field: "cursor", Message: "is not a cursor this list returned"})
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	us, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || uuid.Validate(id) != nil {
		return time.Time{}, "", bad
	}
	return time.UnixMicro(n).UTC(), id, nil
}
