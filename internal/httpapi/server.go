// Package httpapi is the processor's HTTP edge: routing, authentication, rate limits, request
// decoding and the mapping of domain errors to problem+json answers (API.md).
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"txn/internal/apidocs"
	"txn/internal/httpedge"
	"txn/internal/ledger"
	"txn/internal/service"
)

// RateLimiter decides whether a caller may make n more requests, counting them if so.
type RateLimiter interface {
	Allow(scope string, n int64) (ok bool, retryAfter time.Duration)
}

// Deps is what the server needs.
type Deps struct {
	Ledger  *ledger.Service
	Limiter RateLimiter // optional
	// The read models; nil ones answer 503.
	Activity      ActivityReader
	Notifications NotificationReader
	Analytics     AnalyticsReader
	Checks        []service.Check
	Logger        *slog.Logger
	Registry      *prometheus.Registry
}

type server struct {
	Deps
	requests *prometheus.HistogramVec
}

type ctxKey int

const (
	callerKey ctxKey = iota
	requestIDKey
)

// RequestID returns the id the request was given (X-Request-Id), or "".
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

func caller(r *http.Request) ledger.Caller { return r.Context().Value(callerKey).(ledger.Caller) }

// NewServer returns the processor's handler.
func NewServer(d Deps) http.Handler {
	s := &server{Deps: d}
	s.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "HTTP requests by route and status.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
	}, []string{"route", "status"})
	d.Registry.MustRegister(s.requests)

	mux := newRouteMux()
	api := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, s.authed(h))
	}
	api("POST /api/v1/users", s.createUser)
	api("GET /api/v1/users", s.listUsers)
	api("GET /api/v1/users/{id}", s.getUser)
	api("PATCH /api/v1/users/{id}", s.updateUser)
	api("GET /api/v1/users/{id}/accounts", s.listAccounts)
	api("POST /api/v1/accounts", s.createAccount)
	api("GET /api/v1/accounts/{id}", s.getAccount)
	api("PATCH /api/v1/accounts/{id}", s.updateAccount)
	api("GET /api/v1/accounts/{id}/entries", s.listEntries)
	api("GET /api/v1/accounts/{id}/balance", s.getBalanceAt)
	api("GET /api/v1/accounts/{id}/statement", s.getStatement)
	api("POST /api/v1/transactions", s.createTransaction)
	api("GET /api/v1/transactions", s.listTransactions)
	api("POST /api/v1/transactions/batch", s.createBatch)
	api("GET /api/v1/transactions/{id}", s.getTransaction)
	api("POST /api/v1/transactions/{id}/reverse", s.reverseTransaction)
	api("POST /api/v1/holds", s.createHold)
	api("GET /api/v1/holds/{id}", s.getHold)
	api("POST /api/v1/holds/{id}/capture", s.captureHold)
	api("POST /api/v1/holds/{id}/void", s.voidHold)
	api("GET /api/v1/admin/reconciliation", s.reconciliation)
	api("POST /api/v1/admin/purge", s.purge)
	api("GET /api/v1/users/{id}/activity", s.listActivity)
	api("GET /api/v1/users/{id}/notifications", s.listNotifications)
	api("GET /api/v1/admin/analytics", s.analytics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", service.ReadyHandler(func() []service.Check { return d.Checks }))
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}))
	apidocs.Mount(mux, apidocs.ProcessorSpec, "txn processor API")
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, ledger.Errorf(ledger.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	return routed{s.observe(mux), mux.patterns}
}

// statusWriter remembers the status a handler wrote, for metrics and logs.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// observe gives every request an id, recovers panics, and records duration by route.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.Logger.ErrorContext(r.Context(), "panic", "panic", p, "path", r.URL.Path, "request_id", id)
				if sw.status == 0 {
					writeProblem(sw, ledger.Errorf(ledger.CodeUnavailable, "internal error"))
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			s.requests.WithLabelValues(route, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
			if status >= 500 {
				s.Logger.WarnContext(r.Context(), "request", "method", r.Method, "route", route, "status", status,
					"ms", time.Since(start).Milliseconds(), "request_id", id)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// charge counts n requests against c's rate limit: a 429 with Retry-After when they do not fit.
func (s *server) charge(w http.ResponseWriter, c ledger.Caller, n int64) error {
	if s.Limiter == nil {
		return nil
	}
	if ok, after := s.Limiter.Allow(c.Scope(), n); !ok {
		w.Header().Set("Retry-After", retryAfterSeconds(after))
		if n > 1 {
			return ledger.Errorf(ledger.CodeRateLimited,
				"over the rate limit for this caller: a batch counts one request per item (%d more here)", n)
		}
		return ledger.Errorf(ledger.CodeRateLimited, "over the rate limit for this caller")
	}
	return nil
}

// authed authenticates, applies the caller's rate limit and renders the handler's error.
func (s *server) authed(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := func() error {
			token, ok := httpedge.Bearer(r)
			if !ok {
				return ledger.Errorf(ledger.CodeUnauthorized, "a valid bearer token is required")
			}
			c, err := s.Ledger.Authenticate(r.Context(), token)
			if err != nil {
				return err
			}
			if err := s.charge(w, c, 1); err != nil {
				return err
			}
			return h(w, r.WithContext(context.WithValue(r.Context(), callerKey, c)))
		}()
		if err != nil {
			writeProblem(w, asDomain(r, s.Logger, err))
		}
	})
}
