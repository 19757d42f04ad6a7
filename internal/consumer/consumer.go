// Package consumer wires the consumer service: three independent Kafka consumer groups that
// turn transaction events into analytics rows (ClickHouse), activity items (MongoDB) and
// notification tasks (RabbitMQ). Each group commits its offsets only once its effects are
// durable, so one store being down holds back only its own group.
package consumer

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"txn/internal/backoff"
	"txn/internal/clickhouse"
	"txn/internal/config"
	"txn/internal/event"
	"txn/internal/kafka"
	"txn/internal/mongo"
	"txn/internal/pipeline"
	"txn/internal/rabbitmq"
	"txn/internal/service"
)

// Config is the consumer's configuration.
type Config struct {
	Addr           string
	Brokers        []string
	Topic          string
	DLQTopic       string
	GroupPrefix    string
	InstanceID     string
	ClickHouseAddr string
	ClickHouseDB   string
	MongoURL       string
	RabbitURL      string
	Topology       rabbitmq.Topology
	MaxBatch       int
	Linger         time.Duration
}

// FromEnv reads the configuration; the defaults fit the local stack.
func FromEnv(env *config.Env) (Config, error) {
	c := Config{
		Addr:           env.Setting("CONSUMER_ADDR"),
		Brokers:        kafka.Brokers(env.Setting("KAFKA_BROKERS")),
		Topic:          env.Setting("KAFKA_TOPIC"),
		GroupPrefix:    env.String("CONSUMER_GROUP_PREFIX", "txn-"),
		InstanceID:     env.String("CONSUMER_INSTANCE_ID", hostname()),
		ClickHouseAddr: env.Setting("CLICKHOUSE_ADDR"),
		ClickHouseDB:   env.Setting("CLICKHOUSE_DATABASE"),
		MongoURL:       env.Setting("MONGO_URL"),
		RabbitURL:      env.Setting("RABBITMQ_URL"),
		Topology: rabbitmq.Topology{
			Exchange: env.String("RABBITMQ_EXCHANGE", ""),
			Queue:    env.String("RABBITMQ_QUEUE", ""),
		},
		MaxBatch: env.Int("CONSUMER_BATCH", 5000),
		Linger:   env.Duration("CONSUMER_LINGER", 200*time.Millisecond),
	}
	c.DLQTopic = env.String("KAFKA_DLQ_TOPIC", c.Topic+".dlq")
	return c, env.Err()
}

// opened is a group's store, ready: how to apply events to it, check it and close it.
type opened struct {
	apply func(ctx context.Context, evs []*event.Event) error
	ping  func(ctx context.Context) error
	close func()
}

// group is one consumer group and how to open its store.
type group struct {
	name string
	open func(ctx context.Context) (opened, error)
}

func (c Config) groups() []group {
	return []group{
		{"analytics", func(ctx context.Context) (opened, error) {
			s, err := clickhouse.Open(ctx, c.ClickHouseAddr, c.ClickHouseDB)
			if err != nil {
				return opened{}, err
			}
			return opened{ping: s.Ping, close: func() { _ = s.Close() },
				apply: func(ctx context.Context, evs []*event.Event) error {
					rows := make([]pipeline.AnalyticsRow, len(evs))
					for i, ev := range evs {
						rows[i] = pipeline.RowOf(ev)
					}
					return s.InsertTransactions(ctx, rows)
				}}, nil
		}},
		{"activity", func(ctx context.Context) (opened, error) {
			s, err := mongo.Open(ctx, c.MongoURL)
			if err != nil {
				return opened{}, err
			}
			if err := s.EnsureIndexes(ctx); err != nil {
				_ = s.Close(context.Background())
				return opened{}, err
			}
			return opened{ping: s.Ping, close: func() { _ = s.Close(context.Background()) },
				apply: func(ctx context.Context, evs []*event.Event) error {
					var items []pipeline.Activity
					for _, ev := range evs {
						items = append(items, pipeline.ActivitiesOf(ev)...)
					}
					return s.UpsertActivities(ctx, items)
				}}, nil
		}},
		{"notifications", func(ctx context.Context) (opened, error) {
			p, err := rabbitmq.NewPublisher(rabbitmq.PublisherConfig{URL: c.RabbitURL, Topology: c.Topology, Name: "txn-consumer"})
			if err != nil {
				return opened{}, err
			}
			if err := p.Ping(ctx); err != nil {
				_ = p.Close()
				return opened{}, err
			}
			return opened{ping: p.Ping, close: func() { _ = p.Close() },
				apply: func(ctx context.Context, evs []*event.Event) error {
					var tasks []pipeline.Task
					for _, ev := range evs {
						tasks = append(tasks, pipeline.TasksOf(ev)...)
					}
					return p.PublishTasks(ctx, tasks)
				}}, nil
		}},
	}
}

type metrics struct {
	events, dead *prometheus.CounterVec
	lag          *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consumer_events_total",
			Help: "Events applied, by consumer group."}, []string{"group"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consumer_dead_letters_total",
			Help: "Messages sent to the dead-letter topic, by consumer group."}, []string{"group"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "consumer_lag_records",
			Help: "Records on the topic not yet committed, by consumer group."}, []string{"group"}),
	}
	reg.MustRegister(m.events, m.dead, m.lag)
	return m
}

// Run runs the consumer service until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	return service.Run(ctx, cfg.Addr, log, func(ctx context.Context, svc *service.Service) error {
		m := newMetrics(svc.Registry)
		producer, err := kafka.NewProducer(cfg.Brokers, cfg.DLQTopic)
		if err != nil {
			return err
		}
		defer producer.Close()
		svc.AddCheck(service.Check{Name: "kafka", Required: true, Run: producer.Ping})
		dlq := kafka.NewDeadLetterWriter(producer, cfg.DLQTopic)

		g, ctx := errgroup.WithContext(ctx)
		var names []string
		for _, grp := range cfg.groups() {
			grp := grp
			name := cfg.GroupPrefix + grp.name
			names = append(names, name)
			g.Go(func() error { return runGroup(ctx, cfg, grp, name, dlq, svc, m, log.With("group", name)) })
		}
		g.Go(func() error { watchLag(ctx, cfg, names, m, log); return nil })
		return g.Wait()
	})
}

func runGroup(ctx context.Context, cfg Config, grp group, name string, dlq pipeline.DeadLetters,
	svc *service.Service, m *metrics, log *slog.Logger) error {
	// Wait for the store rather than fail: the other groups go on meanwhile.
	var st opened
	for wait := backoff.New(500*time.Millisecond, 10*time.Second); ; {
		var err error
		if st, err = grp.open(ctx); err == nil {
			break
		}
		pause := wait.Next()
		log.Warn("store unavailable; retrying", "err", err, "in", pause)
		if !backoff.Sleep(ctx, pause) {
			return nil
		}
	}
	defer st.close()
	svc.AddCheck(service.Check{Name: grp.name, Run: st.ping})
	proc := pipeline.NewApplier(pipeline.Sink{Name: name, Apply: st.apply, Ping: st.ping}, dlq,
		pipeline.ApplierConfig{Observe: func(applied, dead int) {
			m.events.WithLabelValues(name).Add(float64(applied))
			if dead > 0 {
				m.dead.WithLabelValues(name).Add(float64(dead))
				log.Warn("messages dead-lettered", "count", dead)
			}
		}})
	c, err := kafka.NewConsumer(kafka.ConsumerConfig{Brokers: cfg.Brokers, Topic: cfg.Topic, Group: name,
		InstanceID: cfg.InstanceID, MaxBatch: cfg.MaxBatch, Linger: cfg.Linger}, log)
	if err != nil {
		return err
	}
	log.Info("consuming", "topic", cfg.Topic)
	return c.Run(ctx, proc.Process)
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

func watchLag(ctx context.Context, cfg Config, groups []string, m *metrics, log *slog.Logger) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		lags, err := kafka.Lag(lctx, cfg.Brokers, cfg.Topic, groups...)
		cancel()
		if err != nil {
			log.Debug("lag unavailable", "err", err)
			continue
		}
		for g, l := range lags {
			m.lag.WithLabelValues(g).Set(float64(l))
		}
	}
}
