// Package app wires the loadtest command: the service (API, web UI, live state in Redis,
// history in ClickHouse, cleanup of MongoDB and ClickHouse read models) and the CLI, which runs
// the same engine against a processor with no store at all.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"txn/internal/backoff"
	"txn/internal/clickhouse"
	"txn/internal/config"
	"txn/internal/loadtest"
	"txn/internal/loadtest/web"
	"txn/internal/mongo"
	"txn/internal/redis"
	"txn/internal/service"
)

// Config is the service's configuration.
type Config struct {
	Addr           string
	Target         loadtest.Target
	RedisURL       string
	RedisPrefix    string
	ClickHouseAddr string
	ClickHouseDB   string
	MongoURL       string
	// VerifyTimeout bounds the wait for the pipeline to bring a run's transactions to analytics.
	VerifyTimeout time.Duration
	LogBuffer     int
	LiveTTL       time.Duration
}

// FromEnv reads the configuration; the defaults fit the local stack, except the admin token,
// which must be the processor's.
func FromEnv(env *config.Env) (Config, error) {
	c := Config{
		Addr: env.Setting("LOADTEST_ADDR"),
		Target: loadtest.Target{
			URL:        env.Setting("PROCESSOR_URL"),
			AdminToken: env.String("TXN_ADMIN_TOKEN", ""),
		},
		RedisURL:       env.Setting("REDIS_URL"),
		RedisPrefix:    env.Setting("REDIS_PREFIX"),
		ClickHouseAddr: env.Setting("CLICKHOUSE_ADDR"),
		ClickHouseDB:   env.Setting("CLICKHOUSE_DATABASE"),
		MongoURL:       env.Setting("MONGO_URL"),
		VerifyTimeout:  env.Duration("LOADTEST_VERIFY_TIMEOUT", 60*time.Second),
		LogBuffer:      env.Int("LOADTEST_LOG_BUFFER", 1<<16),
		LiveTTL:        env.Duration("LOADTEST_LIVE_TTL", 24*time.Hour),
	}
	err := env.Err()
	if c.Target.AdminToken == "" {
		err = errors.Join(err, errors.New("TXN_ADMIN_TOKEN must be set: the processor's admin token, which the API also takes"))
	}
	return c, err
}

// Main runs the loadtest command: the service with no arguments or "serve", the CLI with
// "run". It returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		env := config.New(nil)
		log := env.Logger("loadtest")
		service.StartPprof(env, log)
		cfg, err := FromEnv(env)
		if err == nil {
			err = Run(ctx, cfg, log)
		}
		if err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 1
		}
		return 0
	case "run":
		return runCLI(ctx, args, stdout, stderr)
	case "audit":
		return auditCLI(ctx, args, stdout, stderr)
	case "worker":
		return workerCLI(ctx, args, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "loadtest: unknown command %q\n%s", cmd, usage)
	return 2
}

const usage = `Usage:
  loadtest [serve]     the loadtest service: API and web UI on LOADTEST_ADDR (default 127.0.0.1:8001)
  loadtest run [flags] one run against PROCESSOR_URL with TXN_ADMIN_TOKEN, no store needed; exits 0
                       when it passed, 1 when a threshold broke or verification failed, 2 on bad
                       usage, 3 when the run failed (see loadtest run -h)
  loadtest audit RUN   a run's transactions in PostgreSQL compared one by one with their analytics
                       rows, activity items and notifications; exits 1 on any difference
  loadtest worker      a load worker: joins the service at LOADTEST_URL (default
                       http://127.0.0.1:8001) with TXN_ADMIN_TOKEN and sends its share of each run
                       that asks for workers (see loadtest worker -h)
`

// retryStartup retries fn while the servers come up, for up to a minute.
func retryStartup(ctx context.Context, log *slog.Logger, what string, fn func(ctx context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for wait := backoff.New(250*time.Millisecond, 5*time.Second); ; {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(actx)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		pause := wait.Next()
		log.Warn(what+": retrying", "err", err, "in", pause)
		if !backoff.Sleep(ctx, pause) {
			return ctx.Err()
		}
	}
}

// Run serves the loadtest service on cfg.Addr until ctx ends. A run in progress then ends as
// failed (interrupted), and is recorded before the stores close.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	rdb, err := redis.Connect(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	defer rdb.Close()
	live := redis.NewLoadtestLive(rdb, cfg.RedisPrefix+"loadtest:", cfg.LiveTTL)
	ch, hist, err := openClickHouse(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer ch.Close()
	mg, err := mongo.Open(ctx, cfg.MongoURL) // connects lazily
	if err != nil {
		return fmt.Errorf("MONGO_URL: %w", err)
	}
	defer func() { _ = mg.Close(context.Background()) }()

	reg := service.NewRegistry()
	fleet := loadtest.NewFleet()
	m := newManager(cfg, live, hist, ch, mg, fleet, reg, log)
	if err := retryStartup(ctx, log, "recover unfinished runs", m.Recover); err != nil {
		return fmt.Errorf("recover unfinished runs: %w", err)
	}
	handler := loadtest.NewHandler(loadtest.HandlerDeps{
		Manager: m, Fleet: fleet, AdminToken: cfg.Target.AdminToken, UI: web.Handler(), Registry: reg, Log: log,
		Checks: []service.Check{
			{Name: "redis", Required: true, Run: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
			{Name: "clickhouse", Required: true, Run: ch.Ping},
			{Name: "mongodb", Run: mg.Ping},
			{Name: "processor", Run: processorHealth(cfg.Target.URL)},
		},
	})
	return serve(ctx, cfg, handler, m, log)
}

// openClickHouse opens the analytics store and the runs' history in it, retrying while
// ClickHouse starts.
func openClickHouse(ctx context.Context, cfg Config, log *slog.Logger) (*clickhouse.Store, *clickhouse.LoadtestHistory, error) {
	var ch *clickhouse.Store
	var hist *clickhouse.LoadtestHistory
	err := retryStartup(ctx, log, "open ClickHouse", func(ctx context.Context) (err error) {
		if ch == nil {
			if ch, err = clickhouse.Open(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDB); err != nil {
				return err
			}
		}
		hist, err = ch.LoadtestHistory(ctx)
		return err
	})
	if err != nil && ch != nil {
		_ = ch.Close()
	}
	return ch, hist, err
}

// newManager wires the run manager to its stores: live state in Redis, history and the
// pipeline's analytics in ClickHouse, the read models it cleans in MongoDB.
func newManager(cfg Config, live *redis.LoadtestLive, hist *clickhouse.LoadtestHistory, ch *clickhouse.Store,
	mg *mongo.Store, fleet *loadtest.Fleet, reg *prometheus.Registry, log *slog.Logger) *loadtest.Manager {
	return loadtest.NewManager(loadtest.Deps{
		Target:  cfg.Target,
		Live:    live,
		History: hist,
		Analytics: func(ctx context.Context, prefix string) (int64, error) {
			return ch.CountTransactions(ctx, clickhouse.Filter{DescriptionPrefix: prefix})
		},
		Cleaners: loadtest.Cleaners{
			Activities:    mg.DeleteActivities,
			Notifications: mg.DeleteNotifications,
			Analytics: func(ctx context.Context, users []uuid.UUID, prefix string) error {
				return ch.DeleteTransactions(ctx, clickhouse.Filter{UserIDs: users, DescriptionPrefix: prefix})
			},
		},
		AnalyticsWait: cfg.VerifyTimeout,
		LogBuffer:     cfg.LogBuffer,
		Metrics:       loadtest.NewMetrics(reg),
		Log:           log,
		Fleet:         fleet,
	})
}

// processorHealth checks the processor at url answers /healthz with 200.
func processorHealth(url string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("processor answered %d", resp.StatusCode)
		}
		return nil
	}
}

// serve answers on cfg.Addr and runs the manager until ctx ends; the API answers until the
// run in progress is recorded.
func serve(ctx context.Context, cfg Config, handler http.Handler, m *loadtest.Manager, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := service.NewHTTPServer(handler, service.DefaultHTTPTimeouts, log)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		log.Info("listening", "addr", ln.Addr().String(), "processor", cfg.Target.URL)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		err := m.Run(gctx)
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return errors.Join(err, srv.Shutdown(sctx))
	})
	err = g.Wait()
	log.Info("stopped", "err", err)
	return err
}
