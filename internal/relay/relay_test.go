package relay_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"txn/internal/kafka"
	"txn/internal/postgres"
	"txn/internal/relay"
	"txn/internal/testenv"
)

func setup(t *testing.T) (direct string, db *pgx.Conn, producer *kafka.Producer, topic string, brokers []string) {
	t.Helper()
	_, direct = testenv.Database(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, direct); err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	brokers = testenv.KafkaBrokers(t)
	topic = testenv.Unique("relaytest")
	producer, err = kafka.NewProducer(brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	return direct, db, producer, topic, brokers
}

func addRow(t *testing.T, ctx context.Context, tx pgx.Tx, name string) {
	t.Helper()
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (event_id, key, payload) VALUES ($1, 'k', json_build_object('name', $2::text))`,
		uuid.New(), name); err != nil {
		t.Fatal(err)
	}
}

// consume reads the topic from the start until want records arrived or time is up.
func consume(t *testing.T, brokers []string, topic string, want int, within time.Duration) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var got []string
	for len(got) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func TestRelayNeverSkipsATransactionStillInFlight(t *testing.T) {
	direct, db, producer, topic, brokers := setup(t)
	ctx := context.Background()

	// A transaction takes its xid and writes its row first, but commits last.
	late, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addRow(t, ctx, late, "late")
	other, err := pgx.Connect(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	for i := 0; i < 50; i++ {
		tx, err := other.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		addRow(t, ctx, tx, fmt.Sprintf("early-%d", i))
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	r := relay.New(postgres.NewOutboxLeader(direct), producer, quietLog(), relay.Config{Batch: 7})
	go r.Run(rctx)

	if got := consume(t, brokers, topic, 1, time.Second); len(got) != 0 {
		t.Fatalf("relayed %d rows past a transaction still in flight: %v", len(got), got)
	}
	if err := late.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := consume(t, brokers, topic, 51, 15*time.Second)
	if len(got) != 51 {
		t.Fatalf("relayed %d rows, want 51", len(got))
	}
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	if seen[`{"name" : "late"}`] != 1 || len(seen) != 51 {
		t.Errorf("each row once, the late one included: %v", seen)
	}
	// The late row was written first, so it has the lowest id and goes first.
	if got[0] != `{"name" : "late"}` {
		t.Errorf("first relayed %s", got[0])
	}
	testenv.Eventually(t, 5*time.Second, func() string {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil || n != 0 {
			return fmt.Sprintf("outbox holds %d rows (%v)", n, err)
		}
		return ""
	})
}

func TestStandbyTakesOver(t *testing.T) {
	direct, db, producer, topic, brokers := setup(t)
	ctx := context.Background()
	var leaders atomic.Int32
	start := func() (context.CancelFunc, *atomic.Bool) {
		c, cancel := context.WithCancel(ctx)
		var leading atomic.Bool
		r := relay.New(postgres.NewOutboxLeader(direct), producer, quietLog(), relay.Config{
			Standby: 100 * time.Millisecond,
			Leading: func(b bool) {
				leading.Store(b)
				if b {
					leaders.Add(1)
				} else {
					leaders.Add(-1)
				}
			}})
		go r.Run(c)
		return cancel, &leading
	}
	stopA, a := start()
	stopB, b := start()
	defer stopB()
	testenv.Eventually(t, 5*time.Second, func() string {
		if a.Load() == b.Load() {
			return "want exactly one of two relays leading"
		}
		return ""
	})
	write := func(name string) {
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		addRow(t, ctx, tx, name)
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	if got := consume(t, brokers, topic, 1, 10*time.Second); len(got) != 1 {
		t.Fatalf("relayed %d, want 1", len(got))
	}
	// The leader dies; the standby must take over.
	if a.Load() {
		stopA()
	} else {
		stopB()
	}
	write("two")
	got := consume(t, brokers, topic, 2, 10*time.Second)
	if len(got) != 2 || leaders.Load() != 1 {
		t.Fatalf("after the leader stopped: relayed %v, %d leading", got, leaders.Load())
	}
	stopA()
}

// TestHealthSaysWhenEventsCannotBeRelayed runs a relay whose broker does not answer, then one
// whose broker does: /readyz and relay_failing read Health.
func TestHealthSaysWhenEventsCannotBeRelayed(t *testing.T) {
	direct, db, producer, topic, brokers := setup(t)
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addRow(t, ctx, tx, "waiting")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	run := func(p relay.Producer) (*relay.Relay, context.CancelFunc) {
		c, cancel := context.WithCancel(ctx)
		r := relay.New(postgres.NewOutboxLeader(direct), p, quietLog(), relay.Config{Standby: 100 * time.Millisecond})
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Run(c) }()
		return r, func() { cancel(); <-done }
	}

	t.Run("a relay that cannot produce reports why", func(t *testing.T) {
		nowhere, err := kafka.NewProducer([]string{testenv.FreeAddr(t)}, topic)
		if err != nil {
			t.Fatal(err)
		}
		defer nowhere.Close()
		r, stop := run(nowhere)
		defer stop()
		testenv.Eventually(t, 45*time.Second, func() string {
			if r.Health() == nil {
				return "Health is nil while the broker is unreachable"
			}
			return ""
		})
	})
	t.Run("a relay that produces is healthy", func(t *testing.T) {
		r, stop := run(producer)
		defer stop()
		if got := consume(t, brokers, topic, 1, 10*time.Second); len(got) != 1 {
			t.Fatalf("relayed %d, want 1", len(got))
		}
		testenv.Eventually(t, 5*time.Second, func() string {
			if err := r.Health(); err != nil {
				return "Health: " + err.Error()
			}
			return ""
		})
	})
}
