// Package kafka is the Kafka adapter (franz-go): the relay's producer, and consumer groups that
// commit offsets only after their effects are durable.
package kafka

import (
	"context"
	"fmt"
	"strings"
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
	cl    *kgo.Client
	topic string
}

func NewProducer(brokers []string, topic string) (*Producer, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.AllowAutoTopicCreation(),
		kgo.ProduceRequestTimeout(10*time.Second),
		kgo.RecordDeliveryTimeout(30*time.Second),
	)
	if err != nil {
		return nil, err
	}
	return &Producer{cl: cl, topic: topic}, nil
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
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("kafka produce: %w", err)
	}
	return nil
}

// Ping checks that a broker answers.
func (p *Producer) Ping(ctx context.Context) error { return p.cl.Ping(ctx) }

func (p *Producer) Close() { p.cl.Close() }
