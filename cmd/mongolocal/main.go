// Command mongolocal is a local stand-in for MongoDB. It is not MongoDB: it is FerretDB v1
// (github.com/FerretDB/FerretDB/ferretdb), embedded, which speaks the MongoDB wire protocol and
// keeps its data in SQLite files in a data directory.
//
// It exists because Debian has no MongoDB package: scripts/stack.sh runs it for `make up` and
// `make test`, and MongoDB drivers (mongo-driver/v2) talk to it as to a server. FerretDB covers
// the commands this project uses (inserts, bulk writes, finds, updates, unique and compound
// indexes, aggregations) but not all of MongoDB: notably no multi-document transactions, and
// different performance. Use it for local runs and tests, never to judge MongoDB's behaviour or
// performance; `docker compose up` runs real MongoDB.
//
// Usage:
//
//	mongolocal [-port 57017] [-data-dir .state/mongo] [-log-level warn]
//
// It listens on 127.0.0.1 only. The port and the data directory default to $MONGO_PORT and
// $MONGO_DATA_DIR when set. SIGINT or SIGTERM closes it cleanly; a second signal kills it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"

	"txn/internal/config"
	"txn/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, stop, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mongolocal:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done. unsignal restores default signal handling once shutdown has
// begun, so that a second signal ends the process at once.
func run(ctx context.Context, unsignal func(), args []string, getenv func(string) string, stderr io.Writer) error {
	env := config.New(getenv)
	defaultPort, defaultDir := env.Int("MONGO_PORT", 57017), env.String("MONGO_DATA_DIR", ".state/mongo")
	if err := env.Err(); err != nil {
		return err
	}
	flags := flag.NewFlagSet("mongolocal", flag.ContinueOnError)
	flags.SetOutput(stderr)
	port := flags.Int("port", defaultPort, "port to listen on, on 127.0.0.1 ($MONGO_PORT)")
	dataDir := flags.String("data-dir", defaultDir, "directory for the SQLite data files ($MONGO_DATA_DIR)")
	logLevel := flags.String("log-level", "warn", "FerretDB's log level: debug, info, warn, error")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		return errors.New("a data directory is required (-data-dir or $MONGO_DATA_DIR)")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	service.StartPprof(env, log)
	ferretLog := slog.New(lazyAttrs{h: slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})}).With("component", "ferretdb")

	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))
	// FerretDB's SQLite handler wants a directory URI ending in "/": file:///abs/dir/. Its own
	// pragmas (WAL, a busy timeout, synchronous FULL by default: every commit is fsynced) are
	// kept; these add a page cache large enough for the indexes' hot pages, keep the statement
	// journal of each multi-row INSERT in memory instead of a temporary file, and checkpoint the
	// WAL every 64 MiB instead of every 4 MiB (a page written many times between checkpoints
	// is copied back once; checkpoints took a sixth of the stand-in's CPU under load).
	sqliteURL := (&url.URL{Scheme: "file", Path: dir + "/", RawQuery: url.Values{
		"_pragma": {"temp_store(memory)", "cache_size(-32768)", "wal_autocheckpoint(16384)"},
	}.Encode()}).String()

	db, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Logger:    ferretLog,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return fmt.Errorf("start FerretDB: %w", err)
	}
	keepDataDir(ctx, dir, log)
	log.Info("mongolocal (FerretDB, a MongoDB stand-in) listening", "addr", addr, "data_dir", dir)
	go func() {
		<-ctx.Done()
		unsignal()
		log.Info("shutting down")
	}()
	err = db.Run(ctx) // returns once ctx is done and every connection is closed
	log.Info("stopped")
	return err
}

// keepDataDir removes the journals dropped databases left behind and indexes the _id lookups
// of the collections already there (seconds for a large one) before serving, then keeps
// indexing the collections created while it serves.
func keepDataDir(ctx context.Context, dir string, log *slog.Logger) {
	if err := removeOrphanJournals(dir); err != nil {
		log.Warn("remove journals of dropped databases", "err", err)
	}
	if err := indexAll(ctx, dir); err != nil {
		log.Warn("index _id lookups", "err", err)
	}
	go keepIDIndexes(ctx, dir, 250*time.Millisecond, log)
}

// lazyAttrs defers a logger's attributes until a record is actually handled. FerretDB attaches
// each SQL statement's arguments (whole documents) with Logger.With before a Debug call that is
// off; a TextHandler formats them at once, which cost a seventh of the stand-in's CPU.
type lazyAttrs struct {
	h     slog.Handler
	attrs []slog.Attr
}

func (l lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	return l.resolve().Handle(ctx, r)
}

func (l lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return lazyAttrs{h: l.h, attrs: append(l.attrs[:len(l.attrs):len(l.attrs)], attrs...)}
}

func (l lazyAttrs) WithGroup(name string) slog.Handler {
	return lazyAttrs{h: l.resolve().WithGroup(name)}
}

func (l lazyAttrs) resolve() slog.Handler {
	if len(l.attrs) == 0 {
		return l.h
	}
	return l.h.WithAttrs(l.attrs)
}
