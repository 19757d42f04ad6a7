package service

import (
	"log/slog"
	"net/http"
	"time"
)

// HTTPTimeouts bound how long one client may hold a connection at each stage, so that slow or
// stalled clients (headers or a body sent a byte at a time, responses never read, connections
// left open) are cut off instead of accumulating.
type HTTPTimeouts struct {
	ReadHeader time.Duration // until the request's headers are in
	Read       time.Duration // until the whole request, body included, is in
	Write      time.Duration // from the end of the headers until the response is written
	Idle       time.Duration // a kept-alive connection waiting for its next request
}

// DefaultHTTPTimeouts suit every HTTP server of the system: bodies are at most a few MiB and
// answers take milliseconds. A handler that legitimately needs longer extends its own write
// deadline with http.ResponseController.
var DefaultHTTPTimeouts = HTTPTimeouts{ReadHeader: 5 * time.Second, Read: 30 * time.Second,
	Write: 60 * time.Second, Idle: 2 * time.Minute}

// maxHeaderBytes bounds a request's headers (Go's default is 1 MiB).
const maxHeaderBytes = 64 << 10

// NewHTTPServer returns a server for handler with timeouts t and bounded headers, logging its
// connection errors to log at warn level.
func NewHTTPServer(handler http.Handler, t HTTPTimeouts, log *slog.Logger) *http.Server {
	return &http.Server{Handler: handler, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read,
		WriteTimeout: t.Write, IdleTimeout: t.Idle, MaxHeaderBytes: maxHeaderBytes,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}
