// Package service runs a background service with its operational endpoints: /healthz (alive),
// /readyz (dependencies) and /metrics (Prometheus), and stops it in order on shutdown.
package service

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// Check is a named readiness check; a failing Required one makes /readyz answer 503.
type Check struct {
	Name     string
	Required bool
	Run      func(ctx context.Context) error
}

// ReadyHandler answers /readyz from checks.
func ReadyHandler(checks func() []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, state := http.StatusOK, "ready"
		results := map[string]string{}
		for _, c := range checks() {
			if err := c.Run(ctx); err != nil {
				results[c.Name] = "down: " + err.Error()
				if c.Required {
					status, state = http.StatusServiceUnavailable, "not ready"
				}
			} else {
				results[c.Name] = "ok"
			}
		}
		WriteJSON(w, status, map[string]any{"status": state, "checks": results})
	}
}

// NewRegistry is a Prometheus registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Service is what a worker gets: a registry for its metrics and a place for its checks.
type Service struct {
	Registry *prometheus.Registry
	mu       sync.Mutex
	checks   []Check
}

// AddCheck adds a readiness check.
func (s *Service) AddCheck(c Check) {
	s.mu.Lock()
	s.checks = append(s.checks, c)
	s.mu.Unlock()
}

func (s *Service) snapshot() []Check {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Check(nil), s.checks...)
}

// Handler serves the operational endpoints.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", ReadyHandler(s.snapshot))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	return mux
}

// Run serves the endpoints on addr and runs work until ctx ends or work fails; then work is
// given its context's cancellation to drain, and the endpoints stop last.
func Run(ctx context.Context, addr string, log *slog.Logger, work func(context.Context, *Service) error) error {
	s := &Service{Registry: NewRegistry()}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := NewHTTPServer(s.Handler(), DefaultHTTPTimeouts, log)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("operational endpoints stopped", "err", err)
		}
	}()
	log.Info("listening", "addr", ln.Addr().String())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return work(gctx, s) })
	err = g.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	log.Info("stopped", "err", err)
	return err
}
