// Package processor wires the processor service: stores, group commit, rate limits, HTTP.
package processor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"txn/internal/clickhouse"
	"txn/internal/config"
	"txn/internal/httpapi"
	"txn/internal/kafka"
	"txn/internal/ledger"
	"txn/internal/mongo"
	"txn/internal/postgres"
	"txn/internal/redis"

	"txn/internal/relay"
	"txn/internal/service"

	goredis "github.com/redis/go-redis/v9"
)

// Config is the processor's configuration; FromEnv reads it from the environment.
type Config struct {
	Addr            string
	DatabaseURL     string // through PgBouncer
	DirectURL       string // straight to PostgreSQL, for migrations
	MaxConns        int
	RedisURL        string
	RedisPrefix     string
	AdminToken      string
	UserRate        int // requests per second per user; 0: unlimited
	AdminRate       int
	AllowPrivate    bool
	Batch           ledger.BatcherConfig
	ShutdownTimeout time.Duration
	HTTPTimeouts    service.HTTPTimeouts
	// CommitResolveTimeout bounds the search for the outcome of a commit whose connection
	// failed before answering, after which the answer is 503 outcome_unknown (0: 10 s).
	CommitResolveTimeout time.Duration
	// KeyTTL is how long an idempotency key's first answer is kept (0: forever); the sweep
	// runs every KeySweep.
	KeyTTL   time.Duration
	KeySweep time.Duration
	// RelayEnabled runs an outbox relay candidate in the process (one leads at a time).
	RelayEnabled bool
	KafkaBrokers string
	KafkaTopic   string
	// The read models' stores; empty ones answer 503.
	MongoURL       string
	ClickHouseAddr string
	ClickHouseDB   string
}

// FromEnv reads the configuration; every variable has a default that fits the local stack.
func FromEnv(env *config.Env) (Config, error) {
	c := Config{
		Addr:         env.Setting("PROCESSOR_ADDR"),
		DatabaseURL:  env.Setting("DATABASE_URL"),
		DirectURL:    env.Setting("DATABASE_DIRECT_URL"),
		MaxConns:     env.Int("DATABASE_MAX_CONNS", 16),
		RedisURL:     env.Setting("REDIS_URL"),
		RedisPrefix:  env.Setting("REDIS_PREFIX"),
		AdminToken:   env.String("TXN_ADMIN_TOKEN", ""),
		UserRate:     env.Int("RATE_LIMIT_RPS", 1000),
		AdminRate:    env.Int("ADMIN_RATE_LIMIT_RPS", 0),
		AllowPrivate: env.Bool("WEBHOOK_ALLOW_PRIVATE", false),
		HTTPTimeouts: service.DefaultHTTPTimeouts,
		Batch: ledger.BatcherConfig{
			MaxBatch: env.Int("BATCH_MAX", 512),
			Workers:  env.Int("BATCH_WORKERS", 2),
			Linger:   env.Duration("BATCH_LINGER", 0),
		},
		ShutdownTimeout: env.Duration("SHUTDOWN_TIMEOUT", 15*time.Second),
		KeyTTL:          env.Duration("IDEMPOTENCY_KEY_TTL", 24*time.Hour),
		KeySweep:        time.Minute,
		RelayEnabled:    env.Bool("RELAY_ENABLED", true),
		KafkaBrokers:    env.Setting("KAFKA_BROKERS"),
		KafkaTopic:      env.Setting("KAFKA_TOPIC"),
		MongoURL:        env.Setting("MONGO_URL"),
		ClickHouseAddr:  env.Setting("CLICKHOUSE_ADDR"),
		ClickHouseDB:    env.Setting("CLICKHOUSE_DATABASE"),
	}
	return c, env.Err()
}

// Run serves the processor on cfg.Addr until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.AdminToken == "" {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		cfg.AdminToken = hex.EncodeToString(b)
		log.Warn("TXN_ADMIN_TOKEN is not set: generated one for this run", "admin_token", cfg.AdminToken)
	}
	app, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	return app.Serve(ctx, ln)
}

// App is a wired processor: tests build it exactly as the command does.
type App struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	store   *postgres.Store
	batcher *ledger.Batcher
	limiter *redis.Limiter
	relay   *relay.Relay
	ledger  *ledger.Service
	closers []func()
}

// New migrates the database and wires every part; Serve then runs it.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	a := &App{cfg: cfg, log: log}
	store, rdb, err := a.connect(ctx)
	if err != nil {
		return nil, err
	}
	reg := service.NewRegistry()
	m := newMetrics(reg)
	a.startWritePath(store, m)
	a.startLimiter(rdb, reg)
	svc := a.newLedger(store, rdb, m, reg)
	a.ledger = svc
	if cfg.RelayEnabled {
		r, closeRelay, err := NewRelay(RelayConfig{DirectURL: cfg.DirectURL, Brokers: kafka.Brokers(cfg.KafkaBrokers),
			Topic: cfg.KafkaTopic}, log, reg)
		if err != nil {
			a.Close()
			return nil, err
		}
		a.relay = r
		a.closers = append(a.closers, closeRelay)
	}
	checks := []service.Check{
		{Name: "postgres", Required: true, Run: store.Ping},
		{Name: "redis", Run: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
	}
	if a.relay != nil {
		// Not required: requests are still served, their events wait in the outbox.
		checks = append(checks, service.Check{Name: "relay", Run: func(context.Context) error { return a.relay.Health() }})
	}
	deps := httpapi.Deps{Ledger: svc, Limiter: a.limiter, Logger: log, Registry: reg, Checks: checks}
	a.openReadModels(&deps)
	a.handler = httpapi.NewServer(deps)
	return a, nil
}

// connect migrates the schema and opens PostgreSQL (through PgBouncer) and Redis.
func (a *App) connect(ctx context.Context) (*postgres.Store, *goredis.Client, error) {
	cfg := a.cfg
	if err := postgres.Migrate(ctx, cfg.DirectURL); err != nil {
		return nil, nil, err
	}
	pool, err := postgres.Connect(ctx, cfg.DatabaseURL, int32(cfg.MaxConns))
	if err != nil {
		return nil, nil, err
	}
	a.closers = append(a.closers, pool.Close)
	store := postgres.NewStore(pool)
	a.store = store
	store.CommitResolveTimeout = cfg.CommitResolveTimeout
	rdb, err := redis.Connect(cfg.RedisURL)
	if err != nil {
		a.Close()
		return nil, nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	a.closers = append(a.closers, func() { _ = rdb.Close() })
	return store, rdb, nil
}

// startWritePath starts the group-commit batcher over store, observed by m.
func (a *App) startWritePath(store *postgres.Store, m *metrics) {
	log := a.log
	store.OnAmbiguousCommit = func(committed bool, cause error) {
		m.ambiguous.WithLabelValues(fmt.Sprint(committed)).Inc()
		log.Warn("commit outcome looked up after a connection failure", "committed", committed, "err", cause)
	}
	batchCfg := a.cfg.Batch
	batchCfg.Observe = func(size int, took time.Duration, err error) {
		m.batchSize.Observe(float64(size))
		m.batchSeconds.Observe(took.Seconds())
		if err != nil {
			m.batchErrors.Inc()
			log.Error("batch failed", "size", size, "err", err)
		}
	}
	a.batcher = ledger.NewBatcher(store, batchCfg)
}

// startLimiter sets up the per-caller rate limiter in Redis.
func (a *App) startLimiter(rdb *goredis.Client, reg *prometheus.Registry) {
	cfg, log := a.cfg, a.log
	a.limiter = redis.NewLimiter(rdb, cfg.RedisPrefix, func(scope string) int {
		if scope == "admin" {
			return cfg.AdminRate
		}
		return cfg.UserRate
	})
	a.limiter.OnFailOpen = func(err error) {
		if err != nil {
			log.Error("rate limit fails open: Redis is unreachable", "err", err)
		} else {
			log.Info("rate limit enforced again: Redis is back")
		}
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "ratelimit_fail_open_total", Help: "Requests allowed unchecked while Redis was unreachable.",
	}, func() float64 { return float64(a.limiter.FailedOpen.Load()) }))
}

// newLedger is the ledger service over store and the batcher, with the API-key cache in Redis.
func (a *App) newLedger(store *postgres.Store, rdb *goredis.Client, m *metrics, reg *prometheus.Registry) *ledger.Service {
	cfg, log := a.cfg, a.log
	svc := ledger.NewService(store, a.batcher, ledger.Config{
		AdminToken:           cfg.AdminToken,
		AllowPrivateWebhooks: cfg.AllowPrivate,
		KeyCache:             redis.NewKeyCache(rdb, cfg.RedisPrefix),
		OnCacheError: func(op string, err error) {
			m.cacheErrors.WithLabelValues(op).Inc()
			log.Debug("API key cache unavailable", "op", op, "err", err)
		},
	})
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "apikey_store_lookups_total", Help: "API keys read from PostgreSQL (misses of both caches).",
	}, func() float64 { return float64(svc.KeyLookups()) }))
	return svc
}

// openReadModels sets the read models' readers the configuration names; each store is opened
// on first use, so the processor starts without them.
func (a *App) openReadModels(deps *httpapi.Deps) {
	cfg := a.cfg
	if cfg.MongoURL != "" {
		l := &lazy[*mongo.Store]{open: func(ctx context.Context) (*mongo.Store, error) { return mongo.Open(ctx, cfg.MongoURL) }}
		deps.Activity, deps.Notifications = activityReader{l}, notificationReader{l}
		a.closers = append(a.closers, func() { l.close(func(s *mongo.Store) { _ = s.Close(context.Background()) }) })
	}
	if cfg.ClickHouseAddr != "" {
		l := &lazy[*clickhouse.Store]{open: func(ctx context.Context) (*clickhouse.Store, error) {
			return clickhouse.Open(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDB)
		}}
		deps.Analytics = analyticsReader{l}
		a.closers = append(a.closers, func() { l.close(func(s *clickhouse.Store) { _ = s.Close() }) })
	}
}

// Serve answers on ln until ctx ends, then stops in order: stop taking requests and finish
// those in flight, then drain the batcher (requests in flight still need it).
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := service.NewHTTPServer(a.handler, a.cfg.HTTPTimeouts, a.log)
	batchCtx, stopBatcher := context.WithCancel(context.Background())
	defer stopBatcher()
	batchDone := make(chan error, 1)
	go func() { batchDone <- a.batcher.Run(batchCtx) }()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.limiter.Run(gctx) })
	if a.relay != nil {
		g.Go(func() error { return a.relay.Run(gctx) })
	}
	if a.cfg.KeyTTL > 0 {
		g.Go(func() error { a.sweepKeys(gctx); return nil })
	}
	g.Go(func() error { a.expireHolds(gctx); return nil })
	g.Go(func() error {
		a.log.Info("listening", "addr", ln.Addr().String())
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		a.log.Info("shutting down: finishing requests in flight")
		sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	err := g.Wait()
	stopBatcher()
	<-batchDone
	a.log.Info("stopped")
	return err
}

// sweepKeys deletes expired idempotency keys every KeySweep until ctx ends, a few thousand
// per statement so that no sweep holds many row locks or runs long beside the write path.
// Every instance sweeps; concurrent sweeps only find less to do.
func (a *App) sweepKeys(ctx context.Context) {
	every := a.cfg.KeySweep
	if every <= 0 {
		every = time.Minute
	}
	const chunk = 5000
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		cutoff := time.Now().Add(-a.cfg.KeyTTL)
		for ctx.Err() == nil {
			n, err := a.store.DeleteKeysBefore(ctx, cutoff, chunk)
			if err != nil {
				a.log.Warn("idempotency key sweep failed", "err", err)
				break
			}
			if n < chunk {
				break
			}
		}
	}
}

// holdExpiryEvery is how often each instance looks for holds past their expiry: a hold is
// expired at most about this long after its time.
const holdExpiryEvery = time.Second

// expireHolds expires due holds every holdExpiryEvery until ctx ends, in batches of a few
// hundred through group commit. Every instance runs it; a hold is expired once whoever finds
// it first.
func (a *App) expireHolds(ctx context.Context) {
	const chunk = 500
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(holdExpiryEvery):
		}
		for ctx.Err() == nil {
			n, err := a.ledger.ExpireHolds(ctx, chunk)
			if err != nil {
				if ctx.Err() == nil {
					a.log.Warn("hold expiry failed", "err", err)
				}
				break
			}
			if n < chunk {
				break
			}
		}
	}
}

// Close releases the stores; call it after Serve returned.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

type metrics struct {
	batchSize    prometheus.Histogram
	batchSeconds prometheus.Histogram
	batchErrors  prometheus.Counter
	cacheErrors  *prometheus.CounterVec
	ambiguous    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ledger_batch_size",
			Help: "Transaction requests per group-commit batch.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ledger_batch_duration_seconds",
			Help: "Time to commit one batch.", Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14)}),
		batchErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_batch_errors_total",
			Help: "Batches that failed and were not applied."}),
		cacheErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "apikey_cache_errors_total",
			Help: "API key cache operations that failed (Redis unreachable)."}, []string{"op"}),
		ambiguous: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledger_ambiguous_commits_total",
			Help: "Commits whose outcome was looked up after the connection failed."}, []string{"committed"}),
	}
	reg.MustRegister(m.batchSize, m.batchSeconds, m.batchErrors, m.cacheErrors, m.ambiguous)
	return m
}
