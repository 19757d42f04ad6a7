// Package kafka is the Kafka adapter (franz-go): the relay's producer, and consumer groups that
// commit offsets only after their effects are durable.
package kafka

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"txn/internal/relay"
)

// Brokers splits a comma-separated broker list.
func Brokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// Producer writes to one topic with franz-go's idempotent producer (acks from all in-sync
// replicas), so retries inside the client never duplicate or reorder a partition.
type Producer struct {
	opts []kgo.Opt
	mu   sync.Mutex
	cl   *kgo.Client
	// Rebuilds counts clients replaced after a failed produce.
	Rebuilds atomic.Int64
}

func NewProducer(brokers []string, topic string) (*Producer, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.AllowAutoTopicCreation(),
		kgo.ProduceRequestTimeout(10 * time.Second),
		kgo.RecordDeliveryTimeout(30 * time.Second),
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &Producer{opts: opts, cl: cl}, nil
}

func (p *Producer) client() *kgo.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cl
}

// rebuild replaces failed, the client a produce failed on, with a new one (unless a
// concurrent call already did). A broker that came back changed (a topic under another id,
// other leaders or producer epochs) can leave a long-lived client failing for good; a new
// client learns the cluster afresh.
func (p *Producer) rebuild(failed *kgo.Client) {
	p.mu.Lock()
	if p.cl != failed {
		p.mu.Unlock()
		return
	}
	cl, err := kgo.NewClient(p.opts...)
	if err != nil {
		p.mu.Unlock()
		return // the options were valid once: keep the old client
	}
	p.cl = cl
	p.mu.Unlock()
	p.Rebuilds.Add(1)
	failed.Close()
}

// Produce implements relay.Producer: keyed by account, so one account's events share a
// partition and keep their order.
func (p *Producer) Produce(ctx context.Context, recs []relay.Record) error {
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Key: []byte(r.Key), Value: r.Payload}
	}
	return p.ProduceRecords(ctx, krs)
}

// ProduceRecords writes records and waits until every one is acknowledged.
func (p *Producer) ProduceRecords(ctx context.Context, recs []*kgo.Record) error {
	cl := p.client()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		if ctx.Err() == nil {
			p.rebuild(cl)
		}
		return fmt.Errorf("kafka produce: %w", err)
	}
	return nil
}

// Ping checks that a broker answers.
func (p *Producer) Ping(ctx context.Context) error { return p.client().Ping(ctx) }

func (p *Producer) Close() { p.client().Close() }
