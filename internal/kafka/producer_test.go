package kafka_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"txn/internal/kafka"
	"txn/internal/pipeline"
	"txn/internal/relay"
	"txn/internal/testenv"
)

// TestProducerRecoversFromABrokerThatCameBackChanged kills the broker and brings it back
// empty, so the topic the producer knew returns under another id: produces fail until the
// producer has rebuilt its client, then go through again.
func TestProducerRecoversFromABrokerThatCameBackChanged(t *testing.T) {
	broker := testenv.StartPrivateBroker(t)
	addr := broker.Addr
	p, err := kafka.NewProducer([]string{addr}, testenv.Unique("events"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	testenv.Eventually(t, 20*time.Second, produced(p, `"before"`))

	broker.Kill()
	if err := os.RemoveAll(broker.Dir); err != nil {
		t.Fatal(err)
	}
	broker.Start()
	testenv.Eventually(t, 30*time.Second, produced(p, `"after"`))
	if p.Rebuilds.Load() == 0 {
		t.Log("the producer went through without rebuilding its client")
	}
}

// TestConsumerRecoversFromABrokerThatCameBackChanged: as above, for a consumer group member,
// which must go on receiving what is produced after the broker came back.
func TestConsumerRecoversFromABrokerThatCameBackChanged(t *testing.T) {
	broker := testenv.StartPrivateBroker(t)
	addr := broker.Addr
	topic := testenv.Unique("events")
	p, err := kafka.NewProducer([]string{addr}, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := kafka.NewConsumer(kafka.ConsumerConfig{Brokers: []string{addr}, Topic: topic, Group: testenv.Unique("group"),
		Linger: 10 * time.Millisecond}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx, func(_ context.Context, msgs []pipeline.Message) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				seen[string(m.Value)] = true
			}
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	received := func(payload string) func() string {
		return func() string {
			mu.Lock()
			defer mu.Unlock()
			if !seen[payload] {
				return payload + " not received"
			}
			return ""
		}
	}
	testenv.Eventually(t, 20*time.Second, produced(p, `"before"`))
	testenv.Eventually(t, 20*time.Second, received(`"before"`))

	broker.Kill()
	if err := os.RemoveAll(broker.Dir); err != nil {
		t.Fatal(err)
	}
	broker.Start()
	testenv.Eventually(t, 30*time.Second, produced(p, `"after"`))
	testenv.Eventually(t, 45*time.Second, received(`"after"`))
}

// produced is a condition for testenv.Eventually: one record with payload written through p.
func produced(p *kafka.Producer, payload string) func() string {
	return func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Produce(ctx, []relay.Record{{Key: "k", Payload: []byte(payload)}}); err != nil {
			return "produce " + payload + ": " + err.Error()
		}
		return ""
	}
}
