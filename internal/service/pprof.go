package service

import (
	"log/slog"
	"net/http"
	"net/http/pprof"

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
	go func() { log.Warn("pprof stopped", "err", http.ListenAndServe(addr, mux)) }()
}
