// Command kafkalocal is a local stand-in for Apache Kafka. It is not Kafka: it is franz-go's
// kfake (github.com/twmb/franz-go/pkg/kfake), a fake broker that speaks the Kafka wire
// protocol, run as a standalone program with a data directory so that topics (with their
// ids), records and committed consumer-group offsets survive a restart, a SIGKILL included
// (see topics.go for the one gap it closes).
//
// It exists because Debian has no Kafka package: scripts/stack.sh runs it for `make up` and
// `make test`, and Kafka clients (franz-go, librdkafka) talk to it as to a broker. It is one
// single-threaded broker without replication, listening on 127.0.0.1 only, with auto topic
// creation and fsync after every write. Use it for local runs and tests, never to judge
// Kafka's behaviour or performance; `docker compose up` runs real Apache Kafka.
//
// Usage:
//
//	kafkalocal [-port 59092] [-data-dir .state/kafka] [-partitions 3] [-log-level error]
//
// The port and the data directory default to $KAFKA_PORT and $KAFKA_DATA_DIR when set.
// SIGINT or SIGTERM closes the broker cleanly (its state is saved); a second signal kills it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"txn/internal/config"
	"txn/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, stop, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kafkalocal:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done. unsignal restores default signal handling once shutdown has
// begun, so that a second signal ends the process at once.
func run(ctx context.Context, unsignal func(), args []string, getenv func(string) string, stderr io.Writer) error {
	env := config.New(getenv)
	defaultPort, defaultDir := env.Int("KAFKA_PORT", 59092), env.String("KAFKA_DATA_DIR", ".state/kafka")
	if err := env.Err(); err != nil {
		return err
	}
	flags := flag.NewFlagSet("kafkalocal", flag.ContinueOnError)
	flags.SetOutput(stderr)
	port := flags.Int("port", defaultPort, "port to listen on, on 127.0.0.1 ($KAFKA_PORT)")
	dataDir := flags.String("data-dir", defaultDir, "directory for topics, records and offsets ($KAFKA_DATA_DIR)")
	partitions := flags.Int("partitions", 3, "partitions of auto-created topics")
	logLevel := flags.String("log-level", "error", "broker log level: none, error, warn, info, debug")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		return errors.New("a data directory is required (-data-dir or $KAFKA_DATA_DIR)")
	}
	level, err := parseLevel(*logLevel)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	service.StartPprof(env, log)

	cluster, err := kfake.NewCluster(
		kfake.Ports(*port),
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(*partitions),
		kfake.AllowAutoTopicCreation(),
		kfake.DataDir(*dataDir),
		kfake.SyncWrites(),
		kfake.WithLogger(kfake.BasicLogger(stderr, level)),
	)
	if err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	log.Info("kafkalocal (kfake, a Kafka stand-in) listening",
		"addr", strings.Join(cluster.ListenAddrs(), ","), "data_dir", *dataDir)

	watchCtx, stopWatching := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		keepTopics(watchCtx, cluster.ListenAddrs()[0], *dataDir, 250*time.Millisecond, log)
	}()

	<-ctx.Done()
	unsignal()
	log.Info("shutting down: saving state")
	stopWatching()
	<-watched // the cluster writes topics.json itself as it closes
	cluster.Close()
	log.Info("stopped")
	return nil
}

func parseLevel(s string) (kfake.LogLevel, error) {
	switch strings.ToLower(s) {
	case "none":
		return kfake.LogLevelNone, nil
	case "error":
		return kfake.LogLevelError, nil
	case "warn":
		return kfake.LogLevelWarn, nil
	case "info":
		return kfake.LogLevelInfo, nil
	case "debug":
		return kfake.LogLevelDebug, nil
	}
	return 0, fmt.Errorf("unknown log level %q (none, error, warn, info, debug)", s)
}
