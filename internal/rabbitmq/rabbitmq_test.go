package rabbitmq

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestConfig(t *testing.T) {
	top := Topology{RetryDelays: []time.Duration{time.Second, 5 * time.Second}}.withDefaults()
	if top.Exchange != "txn.notifications" || top.Queue != "notifications" || top.RoutingKey != "notifications" ||
		top.ParkingQueue != "notifications.parked" || top.RetryQueue(0) != "notifications.retry.1s" ||
		top.RetryQueue(7) != "notifications.retry.5s" {
		t.Errorf("defaults: %+v, retry queues %s, %s", top, top.RetryQueue(0), top.RetryQueue(7))
	}
	cfg, err := ConsumerConfig{URL: "amqp://localhost/", Topology: top}.withDefaults()
	if err != nil || cfg.MaxAttempts != 3 || cfg.Workers != 8 || cfg.Prefetch != 16 {
		t.Errorf("consumer defaults: %+v, %v", cfg, err)
	}
	for _, bad := range []ConsumerConfig{
		{URL: "amqp://localhost/", Workers: 4, Prefetch: 2},
		{URL: "amqp://localhost/", Topology: Topology{RetryDelays: []time.Duration{time.Microsecond}}},
		{URL: "http://localhost/"},
		{},
	} {
		if _, err := NewConsumer(bad, nil); err == nil {
			t.Errorf("NewConsumer(%+v) accepted", bad)
		}
	}
	for h, want := range map[any]int{nil: 1, int64(3): 3, int32(2): 2, int8(0): 1, "4": 1} {
		if got := attemptOf(amqp.Table{HeaderAttempt: h}); got != want {
			t.Errorf("attemptOf(%v) = %d, want %d", h, got, want)
		}
	}
}
