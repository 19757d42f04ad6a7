package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"txn/internal/testenv"
)

// TestTwoConsumersShareTheEventsAndSurviveAKill runs two consumers in the same groups: both
// apply events (the topic's partitions are split between them), and when one is SIGKILLed the
// other takes its partitions over, every read model ending with each transaction's effects
// exactly once.
func TestTwoConsumersShareTheEventsAndSurviveAKill(t *testing.T) {
	pl := startPipeline(t, 1)
	second, secondURL := pl.startConsumer(t)
	tasks := pl.drainTasks(t)
	stop := make(chan struct{})
	var n int64
	loaded := make(chan struct{})
	go func() { n = pl.load(t, 8, stop, 1<<30); close(loaded) }()

	t.Run("both consumers apply events", func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, func() string {
			a, b := testenv.MetricSum(t, pl.consumerURL, "consumer_events_total"), testenv.MetricSum(t, secondURL, "consumer_events_total")
			if a == 0 || b == 0 {
				return fmt.Sprintf("events applied: %.0f and %.0f", a, b)
			}
			return ""
		})
	})
	second.Kill()
	time.Sleep(1500 * time.Millisecond) // transactions keep flowing to the survivor
	close(stop)
	<-loaded
	t.Run("after one is killed every effect is there once", func(t *testing.T) {
		t.Logf("%d transactions accepted", n)
		pl.converge(t, tasks, 90*time.Second)
	})
}

// TestTwoNotifiersShareTheQueueAndSurviveAKill runs two notifiers on one queue: both deliver,
// and when one is SIGKILLed mid-stream the other delivers what it held, every notification
// ending delivered once in the inbox and accepted by its webhook.
func TestTwoNotifiersShareTheQueueAndSurviveAKill(t *testing.T) {
	r := startNotifier(t, "NOTIFY_LEASE=3s")
	second, secondURL := r.another()
	hooked, all := r.mixedTasks(answer(http.StatusOK), 400)
	done := r.publishPaced(all)

	t.Run("both notifiers deliver", func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, func() string {
			a, b := testenv.MetricSum(t, "http://"+r.addr, "notifier_deliveries_total"), testenv.MetricSum(t, secondURL, "notifier_deliveries_total")
			if a == 0 || b == 0 {
				return fmt.Sprintf("deliveries: %.0f and %.0f", a, b)
			}
			return ""
		})
	})
	second.Kill()
	<-done
	t.Run("after one is killed every notification is delivered once", func(t *testing.T) {
		r.waitStatus("delivered", len(all), 120*time.Second)
		seen, dups := r.recv.accepted(ids(hooked))
		if seen != len(hooked) {
			t.Errorf("receiver accepted %d of %d notifications", seen, len(hooked))
		}
		t.Logf("%d notifications, one notifier killed: all delivered, %d webhook calls repeated (the webhook-id lets a receiver drop them)", len(all), dups)
	})
}
