// Package config reads settings from environment variables: each has a default that works with
// the local stack, and a malformed value is an error, never silently the default.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env collects lookups and the first errors, so a service reports every bad variable at once.
type Env struct {
	lookup func(string) (string, bool)
	errs   []error
}

// New reads from getenv (os.Getenv-like; nil means the process environment).
func New(getenv func(string) string) *Env {
	if getenv == nil {
		return &Env{lookup: os.LookupEnv}
	}
	return &Env{lookup: func(k string) (string, bool) { v := getenv(k); return v, v != "" }}
}

func (e *Env) String(key, def string) string {
	if v, ok := e.lookup(key); ok && v != "" {
		return v
	}
	return def
}

func (e *Env) Int(key string, def int) int {
	v, ok := e.lookup(key)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: not an integer", key, v))
		return def
	}
	return n
}

func (e *Env) Bool(key string, def bool) bool {
	v, ok := e.lookup(key)
	if !ok || v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: not a boolean", key, v))
		return def
	}
	return b
}

func (e *Env) Duration(key string, def time.Duration) time.Duration {
	v, ok := e.lookup(key)
	if !ok || v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: not a duration (e.g. 500ms)", key, v))
		return def
	}
	return d
}

// Durations reads a comma-separated list of durations (e.g. "1s,5s,25s").
func (e *Env) Durations(key string, def []time.Duration) []time.Duration {
	v, ok := e.lookup(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	var out []time.Duration
	for _, s := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			e.errs = append(e.errs, fmt.Errorf("%s=%q: not a list of positive durations (e.g. 1s,5s,25s)", key, v))
			return def
		}
		out = append(out, d)
	}
	return out
}

// Err returns every malformed variable met so far.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Logger builds the JSON logger every service uses, at LOG_LEVEL (debug, info, warn, error).
func (e *Env) Logger(service string) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(e.String("LOG_LEVEL", "info")))); err != nil {
		e.errs = append(e.errs, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("service", service)
}
