package sysbench

import (
	"context"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestEffectsAreReadFromTheServicesMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consumer_events_total"}, []string{"group"})
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "notifier_deliveries_total"}, []string{"outcome"})
	reg.MustRegister(events, deliveries)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	c := Config{ConsumerURL: srv.URL, NotifierURL: srv.URL}

	before, err := c.effects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"txn-analytics", "txn-activity", "txn-notifications"} {
		events.WithLabelValues(g).Add(10)
	}
	deliveries.WithLabelValues("delivered").Add(17)
	deliveries.WithLabelValues("duplicate").Add(5)
	now, err := c.effects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := now.sub(before)
	t.Run("every effect counted", func(t *testing.T) {
		if !got.covers(10, 17) {
			t.Errorf("%+v does not cover 10 events and 17 notifications", got)
		}
	})
	t.Run("duplicates are not deliveries", func(t *testing.T) {
		if got.covers(10, 18) {
			t.Errorf("%+v covers 18 notifications: duplicates were counted", got)
		}
	})
	t.Run("a group behind holds it back", func(t *testing.T) {
		events.WithLabelValues("txn-analytics").Add(1)
		later, _ := c.effects(context.Background())
		if later.sub(before).covers(11, 17) {
			t.Error("11 events covered while two groups applied 10")
		}
	})
}

func TestExpectedEffectsOfARun(t *testing.T) {
	var r run
	r.Config.Users, r.Config.AccountsPerUser, r.Config.InitialBalance = 10, 2, 100
	r.ByOp = append(r.ByOp,
		opCount{"transfer", "ok", 50},
		opCount{"deposit", "ok", 7},
		opCount{"withdrawal", "insufficient_funds", 3})
	events, notes := expected(r)
	if events != 20+50+7 {
		t.Errorf("events %d, want 77: 20 seed deposits, 57 accepted", events)
	}
	if notes != 20+100+7 {
		t.Errorf("notifications %d, want 127: one per seed and deposit, two per transfer", notes)
	}
}

func TestCPUOfThisProcessIsCounted(t *testing.T) {
	comps := []Component{{Name: "self", Roots: func() []int { return []int{os.Getpid()} }}}
	before := SampleCPU(comps)
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	used := SampleCPU(comps).Sub(before)["self"]
	if used < 0.1 {
		t.Errorf("300 ms of spinning counted as %.2f s of CPU", used)
	}
}
