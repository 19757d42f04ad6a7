package kafka

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"txn/internal/backoff"
	"txn/internal/pipeline"
)

// ConsumerConfig configures one consumer group.
type ConsumerConfig struct {
	Brokers []string
	Topic   string
	Group   string
	// InstanceID makes this a static member of the group: restarted after a crash with the
	// same id, it takes its partitions back at once instead of after the dead member's session
	// timeout. Each replica needs its own (the hostname by default); "" means a dynamic member.
	InstanceID string
	// MaxBatch and Linger bound how much is gathered before the batch is processed
	// (defaults 5000 and 200ms).
	MaxBatch int
	Linger   time.Duration
}

// Consumer reads one topic in one group and commits offsets only after the batch was applied
// (or dead-lettered): a crash re-delivers, and the effects are idempotent.
type Consumer struct {
	cfg  ConsumerConfig
	opts []kgo.Opt
	cl   *kgo.Client
	log  *slog.Logger
	// Rebuilds counts clients replaced after fetches failed for rebuildAfter.
	Rebuilds atomic.Int64
}

// rebuildAfter is how long fetches may fail without a record before the client is replaced:
// a broker that came back changed (a topic under another id) can leave a client failing for
// good, while a new one learns the cluster afresh and rejoins the group at its committed
// offsets.
const rebuildAfter = 10 * time.Second

func NewConsumer(cfg ConsumerConfig, log *slog.Logger) (*Consumer, error) {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 5000
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 200 * time.Millisecond
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.AllowAutoTopicCreation(),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &Consumer{cfg: cfg, opts: opts, cl: cl, log: log.With("group", cfg.Group)}, nil
}

// Run consumes until ctx ends. process must return nil only when the whole batch is durable;
// on error the same batch is offered again after a pause, and nothing is committed.
func (c *Consumer) Run(ctx context.Context, process func(context.Context, []pipeline.Message) error) error {
	defer func() { c.cl.Close() }()
	wait := backoff.New(100*time.Millisecond, 10*time.Second)
	for {
		recs, err := c.gather(ctx)
		if err != nil {
			return nil // ctx ended
		}
		msgs := make([]pipeline.Message, len(recs))
		for i, r := range recs {
			msgs[i] = pipeline.Message{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value}
		}
		for {
			err := process(ctx, msgs)
			if err == nil {
				wait.Reset()
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			pause := wait.Next()
			c.log.Warn("batch not applied; retrying", "records", len(msgs), "err", err, "in", pause)
			if !backoff.Sleep(ctx, pause) {
				return nil
			}
		}
		if err := c.cl.CommitRecords(ctx, recs...); err != nil && ctx.Err() == nil {
			// The partitions moved to another member meanwhile: it re-applies, idempotently.
			c.log.Warn("offset commit failed", "err", err)
		}
	}
}

// gather polls until MaxBatch records, or Linger after the first one.
func (c *Consumer) gather(ctx context.Context) ([]*kgo.Record, error) {
	var recs []*kgo.Record
	var until, failingSince time.Time
	for len(recs) < c.cfg.MaxBatch {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if !until.IsZero() {
			if !time.Now().Before(until) {
				break
			}
			pctx, cancel = context.WithDeadline(ctx, until)
		}
		fetches := c.cl.PollRecords(pctx, c.cfg.MaxBatch-len(recs))
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		failed := false
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				c.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
				failed = true
			}
		})
		fetches.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		switch {
		case !failed || len(recs) > 0:
			failingSince = time.Time{}
		case failingSince.IsZero():
			failingSince = time.Now()
		case time.Since(failingSince) > rebuildAfter:
			// Nothing is held uncommitted (no records yet): the new client starts from the
			// group's committed offsets.
			c.rebuild()
			failingSince = time.Time{}
		}
		if len(recs) > 0 && until.IsZero() {
			until = time.Now().Add(c.cfg.Linger)
		}
	}
	return recs, nil
}

// rebuild replaces the client with a new one; the old one leaves the group as it closes.
func (c *Consumer) rebuild() {
	cl, err := kgo.NewClient(c.opts...)
	if err != nil {
		return // the options were valid once: keep the old client
	}
	c.cl.Close()
	c.cl = cl
	c.Rebuilds.Add(1)
	c.log.Warn("consumer client rebuilt after fetches kept failing")
}

// DeadLetterWriter implements pipeline.DeadLetters on a dead-letter topic: the original record
// with the reason and its origin in headers.
type DeadLetterWriter struct {
	p     *Producer
	topic string
}

func NewDeadLetterWriter(p *Producer, topic string) *DeadLetterWriter {
	return &DeadLetterWriter{p: p, topic: topic}
}

func (w *DeadLetterWriter) DeadLetter(ctx context.Context, dls []pipeline.DeadLetter) error {
	recs := make([]*kgo.Record, len(dls))
	for i, d := range dls {
		recs[i] = &kgo.Record{Topic: w.topic, Key: d.Msg.Key, Value: d.Msg.Value, Headers: []kgo.RecordHeader{
			{Key: "reason", Value: []byte(d.Reason)},
			{Key: "group", Value: []byte(d.Group)},
			{Key: "partition", Value: []byte(strconv.Itoa(int(d.Msg.Partition)))},
			{Key: "offset", Value: []byte(strconv.FormatInt(d.Msg.Offset, 10))},
		}}
	}
	return w.p.ProduceRecords(ctx, recs)
}

// Lag returns how many records each group has yet to commit on topic.
func Lag(ctx context.Context, brokers []string, topic string, groups ...string) (map[string]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	lags, err := adm.Lag(ctx, groups...)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, g := range groups {
		var total int64
		if l, ok := lags[g]; ok {
			for _, parts := range l.Lag {
				for _, pl := range parts {
					if pl.Lag > 0 {
						total += pl.Lag
					}
				}
			}
		}
		out[g] = total
	}
	return out, nil
}
