package httpapi

import (
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// routeMux is the server's ServeMux, remembering every pattern registered on it: Routes then
// lists exactly what NewServer serves, with no second table to keep in step.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// routed is NewServer's handler, with the patterns its mux registered.
type routed struct {
	http.Handler
	routes []string
}

// Routes returns the patterns the processor's router registers, in registration order; the
// OpenAPI test compares them with the spec's operations.
func Routes() []string {
	h := NewServer(Deps{Registry: prometheus.NewRegistry()})
	return slices.Clone(h.(routed).routes)
}
