// Package notifier wires the notifier service: notification tasks from RabbitMQ, delivered to
// the users' inboxes (MongoDB) and webhooks, with retries through the queue's delay queues.
package notifier

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"txn/internal/backoff"
	"txn/internal/config"
	"txn/internal/mongo"
	"txn/internal/notify"
	"txn/internal/postgres"
	"txn/internal/rabbitmq"
	"txn/internal/service"
)

// Config is the notifier's configuration.
type Config struct {
	Addr        string
	RabbitURL   string
	Topology    rabbitmq.Topology
	Workers     int
	Prefetch    int
	MaxAttempts int
	MongoURL    string
	DatabaseURL string // through PgBouncer: webhook targets
	MaxConns    int
	// WebhookTimeout bounds each webhook call; AllowPrivate lets webhooks target loopback
	// and private addresses.
	WebhookTimeout time.Duration
	AllowPrivate   bool
	TargetTTL      time.Duration // how long a user's webhook target is cached
	Lease          time.Duration // how long a claim on a notification holds
	DrainTimeout   time.Duration
}

// FromEnv reads the configuration; the defaults fit the local stack.
func FromEnv(env *config.Env) (Config, error) {
	c := Config{
		Addr:      env.Setting("NOTIFIER_ADDR"),
		RabbitURL: env.Setting("RABBITMQ_URL"),
		Topology: rabbitmq.Topology{
			Exchange:    env.String("RABBITMQ_EXCHANGE", ""),
			Queue:       env.String("RABBITMQ_QUEUE", ""),
			RetryDelays: env.Durations("NOTIFY_RETRY_DELAYS", nil),
		},
		Workers:        env.Int("NOTIFY_WORKERS", 32),
		Prefetch:       env.Int("NOTIFY_PREFETCH", 0),
		MaxAttempts:    env.Int("NOTIFY_MAX_ATTEMPTS", 6),
		MongoURL:       env.Setting("MONGO_URL"),
		DatabaseURL:    env.Setting("DATABASE_URL"),
		MaxConns:       env.Int("DATABASE_MAX_CONNS", 8),
		WebhookTimeout: env.Duration("WEBHOOK_TIMEOUT", 5*time.Second),
		AllowPrivate:   env.Bool("WEBHOOK_ALLOW_PRIVATE", false),
		TargetTTL:      env.Duration("WEBHOOK_TARGET_TTL", 5*time.Second),
		DrainTimeout:   env.Duration("SHUTDOWN_TIMEOUT", 15*time.Second),
	}
	// The lease outlasts a whole attempt: the webhook call and the inbox and database round trips.
	c.Lease = env.Duration("NOTIFY_LEASE", c.WebhookTimeout+10*time.Second)
	if err := env.Err(); err != nil {
		return c, err
	}
	switch {
	case c.MaxAttempts < 1:
		return c, fmt.Errorf("NOTIFY_MAX_ATTEMPTS=%d: must be at least 1", c.MaxAttempts)
	case c.WebhookTimeout <= 0:
		return c, fmt.Errorf("WEBHOOK_TIMEOUT=%s: must be positive", c.WebhookTimeout)
	case c.Lease <= c.WebhookTimeout:
		return c, fmt.Errorf("NOTIFY_LEASE=%s: must be longer than WEBHOOK_TIMEOUT (%s)", c.Lease, c.WebhookTimeout)
	}
	return c, nil
}

type metrics struct {
	deliveries *prometheus.CounterVec
	attempts   *prometheus.CounterVec
	call       prometheus.Histogram
	lag        prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "notifier_deliveries_total",
			Help: "Handled notification tasks by outcome: delivered, duplicate (delivered already), dropped (the user is gone), retry, parked."},
			[]string{"outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "notifier_webhook_attempts_total",
			Help: "Webhook calls by result: ok, http_4xx, http_5xx, redirect, timeout, refused, error."},
			[]string{"result"}),
		call: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "notifier_webhook_duration_seconds",
			Help: "Duration of webhook calls.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "notifier_delivery_latency_seconds",
			Help:    "From the transaction to its notification being delivered, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 17)}),
	}
	reg.MustRegister(m.deliveries, m.attempts, m.call, m.lag)
	return m
}

func (m *metrics) observe(r notify.Result) {
	m.deliveries.WithLabelValues(r.Outcome).Inc()
	if r.Class != "" {
		m.attempts.WithLabelValues(r.Class).Inc()
		m.call.Observe(r.Call.Seconds())
	}
	if r.Outcome == "delivered" {
		m.lag.Observe(r.Lag.Seconds())
	}
}

// Run runs the notifier until ctx ends, then lets the deliveries in progress finish.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	return service.Run(ctx, cfg.Addr, log, func(ctx context.Context, svc *service.Service) error {
		m := newMetrics(svc.Registry)
		inbox, err := mongo.Open(ctx, cfg.MongoURL)
		if err != nil {
			return err
		}
		defer inbox.Close(context.Background())
		pool, err := postgres.Connect(ctx, cfg.DatabaseURL, int32(cfg.MaxConns))
		if err != nil {
			return err
		}
		defer pool.Close()
		users := postgres.NewStore(pool)
		svc.AddCheck(service.Check{Name: "mongo", Required: true, Run: inbox.Ping})
		svc.AddCheck(service.Check{Name: "postgres", Run: users.Ping})

		// Wait for MongoDB rather than fail: nothing can be delivered without the inbox.
		for wait := backoff.New(500*time.Millisecond, 10*time.Second); ; {
			ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := inbox.EnsureNotificationIndexes(ictx)
			cancel()
			if err == nil {
				break
			}
			pause := wait.Next()
			log.Warn("inbox unavailable; retrying", "err", err, "in", pause)
			if !backoff.Sleep(ctx, pause) {
				return nil
			}
		}

		n := notify.New(notify.Config{MaxAttempts: cfg.MaxAttempts, Lease: cfg.Lease}, inbox,
			notify.NewTargetCache(users, cfg.TargetTTL, 0), notify.NewWebhookSender(cfg.WebhookTimeout, cfg.AllowPrivate))
		consumer, err := rabbitmq.NewConsumer(rabbitmq.ConsumerConfig{URL: cfg.RabbitURL, Topology: cfg.Topology,
			Workers: cfg.Workers, Prefetch: cfg.Prefetch, MaxAttempts: cfg.MaxAttempts,
			DrainTimeout: cfg.DrainTimeout, Name: "txn-notifier"}, log)
		if err != nil {
			return err
		}
		return consumer.Consume(ctx, func(ctx context.Context, d rabbitmq.Delivery) rabbitmq.Outcome {
			r := n.Handle(ctx, d.Task, d.Attempt)
			m.observe(r)
			switch r.Action {
			case notify.Retry:
				log.Debug("delivery failed; retrying", "notification_id", d.MessageID, "attempt", d.Attempt, "reason", r.Reason)
				return rabbitmq.Retry(r.Reason)
			case notify.Park:
				return rabbitmq.Park(r.Reason) // the consumer logs it
			}
			return rabbitmq.Done()
		})
	})
}
