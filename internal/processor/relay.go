package processor

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"txn/internal/kafka"
	"txn/internal/postgres"
	"txn/internal/relay"
)

// RelayConfig configures the outbox relay.
type RelayConfig struct {
	DirectURL string // the outbox is read on a direct connection holding the leader lock
	Brokers   []string
	Topic     string
}

// NewRelay builds an outbox relay candidate with its metrics registered on reg; run it with
// Run and call the returned close function after.
func NewRelay(cfg RelayConfig, log *slog.Logger, reg prometheus.Registerer) (*relay.Relay, func(), error) {
	producer, err := kafka.NewProducer(cfg.Brokers, cfg.Topic)
	if err != nil {
		return nil, nil, err
	}
	relayed := prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_events_total",
		Help: "Outbox events written to Kafka and removed from the outbox."})
	batch := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "relay_batch_size",
		Help: "Events per relay round.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)})
	lag := prometheus.NewGauge(prometheus.GaugeOpts{Name: "relay_lag_seconds",
		Help: "Age of the oldest event in the last relay round (0 when the outbox was empty)."})
	leading := prometheus.NewGauge(prometheus.GaugeOpts{Name: "relay_leader",
		Help: "1 while this process is the relay that leads."})
	reg.MustRegister(relayed, batch, lag, leading, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "relay_producer_rebuilds_total", Help: "Kafka clients the relay replaced after a failed produce."},
		func() float64 { return float64(producer.Rebuilds.Load()) }))
	r := relay.New(postgres.NewOutboxLeader(cfg.DirectURL), producer, log.With("part", "relay"), relay.Config{
		Observe: func(n int, l time.Duration) {
			if n > 0 {
				relayed.Add(float64(n))
				batch.Observe(float64(n))
			}
			lag.Set(l.Seconds())
		},
		Leading: func(b bool) {
			if b {
				leading.Set(1)
			} else {
				leading.Set(0)
			}
		},
	})
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "relay_failing",
		Help: "1 while this relay's rounds fail (the outbox grows until they succeed again)."},
		func() float64 {
			if r.Health() != nil {
				return 1
			}
			return 0
		}))
	return r, producer.Close, nil
}

// RunRelay runs a relay until ctx ends.
func RunRelay(ctx context.Context, cfg RelayConfig, log *slog.Logger, reg prometheus.Registerer) error {
	r, closeFn, err := NewRelay(cfg, log, reg)
	if err != nil {
		return err
	}
	defer closeFn()
	return r.Run(ctx)
}
