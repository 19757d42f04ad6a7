package kafka_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"txn/internal/kafka"
	"txn/internal/relay"
	"txn/internal/testenv"
)

// TestProducerRecoversFromABrokerThatCameBackChanged kills the broker and brings it back
// empty, so the topic the producer knew returns under another id: produces fail until the
// producer has rebuilt its client, then go through again.
func TestProducerRecoversFromABrokerThatCameBackChanged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own broker")
	}
	addr := testenv.FreeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	dir := t.TempDir()
	broker := testenv.StartProc(t, "kafkalocal", "KAFKA_PORT="+port, "KAFKA_DATA_DIR="+dir, "PPROF_ADDR=")
	p, err := kafka.NewProducer([]string{addr}, testenv.Unique("events"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	produce := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return p.Produce(ctx, []relay.Record{{Key: "k", Payload: []byte(`{}`)}})
	}
	testenv.Eventually(t, 20*time.Second, func() string {
		if err := produce(); err != nil {
			return "first produce: " + err.Error()
		}
		return ""
	})

	broker.Kill()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	broker.Start()
	testenv.Eventually(t, 30*time.Second, func() string {
		if err := produce(); err != nil {
			return "produce after the broker came back: " + err.Error()
		}
		return ""
	})
	if p.Rebuilds.Load() == 0 {
		t.Log("the producer went through without rebuilding its client")
	}
}
