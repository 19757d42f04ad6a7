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

	"github.com/FerretDB/FerretDB/ferretdb"

	"txn/internal/config"
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
	ferretLog := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("component", "ferretdb")

	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))
	// FerretDB's SQLite handler wants a directory URI ending in "/": file:///abs/dir/
	sqliteURL := (&url.URL{Scheme: "file", Path: dir + "/"}).String()

	db, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Logger:    ferretLog,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return fmt.Errorf("start FerretDB: %w", err)
	}
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
