package service

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"txn/internal/config"
)

// StartPprof serves net/http/pprof on $PPROF_ADDR when it is set (off by default). Profiling
// stays off the public listeners: it is for operators, on a private address.
func StartPprof(env *config.Env, log *slog.Logger) {
	addr := env.String("PPROF_ADDR", "")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// A CPU profile or trace streams for as many seconds as asked.
	srv := NewHTTPServer(mux, HTTPTimeouts{ReadHeader: DefaultHTTPTimeouts.ReadHeader,
		Read: DefaultHTTPTimeouts.Read, Write: 10 * time.Minute, Idle: DefaultHTTPTimeouts.Idle}, log)
	srv.Addr = addr
	go func() { log.Warn("pprof stopped", "err", srv.ListenAndServe()) }()
}
