package loadtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"txn/internal/audit"
	"txn/internal/clickhouse"
	"txn/internal/loadtest"
	"txn/internal/mongo"
	"txn/internal/pipeline"
	"txn/internal/postgres"
	"txn/internal/processor"
	"txn/internal/rabbitmq"
	"txn/internal/testenv"
)

// startPipeline starts a processor (in process) whose events reach ClickHouse through a relay
// and a consumer (as processes), on a topic, databases and queues of their own, and returns it
// with the analytics store and the activity store's URL.
func startPipeline(t *testing.T) (*testenv.Processor, *clickhouse.Store, string) {
	t.Helper()
	topic, brokers := testenv.Unique("events"), strings.Join(testenv.KafkaBrokers(t), ",")
	chAddr, chDB, rabbit, q := testenv.ClickHouseAddr(t), testenv.Unique("loadtest"), testenv.RabbitURL(t), testenv.Unique("notifications")
	mongoURL := strings.TrimSuffix(strings.Split(testenv.MongoURL(t), "?")[0], "/")
	mongoURL = mongoURL[:strings.LastIndex(mongoURL, "/")+1] + chDB
	t.Cleanup(func() { dropPipeline(chAddr, chDB, mongoURL, rabbit, q) })
	p := testenv.StartProcessor(t, func(c *processor.Config) { c.UserRate = 0 })
	testenv.StartProc(t, "relay", "DATABASE_DIRECT_URL="+p.DirectURL, "KAFKA_BROKERS="+brokers,
		"KAFKA_TOPIC="+topic, "RELAY_ADDR="+testenv.FreeAddr(t), "LOG_LEVEL=warn")
	testenv.StartProc(t, "consumer", "KAFKA_BROKERS="+brokers, "KAFKA_TOPIC="+topic,
		"CONSUMER_GROUP_PREFIX="+topic+"-", "CONSUMER_ADDR="+testenv.FreeAddr(t),
		"CLICKHOUSE_ADDR="+chAddr, "CLICKHOUSE_DATABASE="+chDB, "MONGO_URL="+mongoURL,
		"RABBITMQ_URL="+rabbit, "RABBITMQ_EXCHANGE="+q, "RABBITMQ_QUEUE="+q, "CONSUMER_LINGER=100ms", "LOG_LEVEL=warn")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := clickhouse.Open(ctx, chAddr, chDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return p, store, mongoURL
}

// dropPipeline deletes what startPipeline's services created.
func dropPipeline(chAddr, chDB, mongoURL, rabbit, q string) {
	ctx := context.Background()
	if conn, err := ch.Open(&ch.Options{Addr: []string{chAddr}}); err == nil {
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+chDB)
		_ = conn.Close()
	}
	if c, err := mongodrv.Connect(options.Client().ApplyURI(mongoURL)); err == nil {
		_ = c.Database(chDB).Drop(ctx)
		_ = c.Disconnect(ctx)
	}
	if conn, err := amqp.Dial(rabbit); err == nil {
		if c, err := conn.Channel(); err == nil {
			top := rabbitmq.Topology{Exchange: q, Queue: q}
			queues := []string{q, q + ".parked"}
			for i := range rabbitmq.DefaultRetryDelays {
				queues = append(queues, top.RetryQueue(i))
			}
			for _, name := range queues {
				_, _ = c.QueueDelete(name, false, false, false)
			}
			_ = c.ExchangeDelete(q, false, false)
		}
		_ = conn.Close()
	}
}

// A run whose mix holds holds verifies through the whole pipeline: its money adds up, every
// hold is captured or voided, and the analytics hold a row per transaction and per hold event
// (a hold and its capture, or a hold and its void). A shortfall of the holds' rows made up by
// a surplus of others fails it; its cleanup leaves none of its holds, transactions or rows.
func TestRunWithHoldsVerifiesThroughThePipeline(t *testing.T) {
	p, store, mongoURL := startPipeline(t)
	ctx := context.Background()
	id := uuid.NewString()
	prefix := loadtest.DescriptionPrefix(id)
	count := func(ctx context.Context, prefix string) (int64, error) {
		return store.CountTransactions(ctx, clickhouse.Filter{DescriptionPrefix: prefix})
	}
	mix := loadtest.Mix{Transfer: 0.3, Deposit: 0.1, Withdrawal: 0.1, Read: 0.1, Hold: 0.4}
	cfg := loadtest.Config{Users: 10, AccountsPerUser: 2, Rate: 100, DurationS: 2, InitialBalance: 20_000, Mix: &mix, Seed: 11}.WithDefaults()
	target := loadtest.Target{URL: p.URL, AdminToken: p.AdminToken}
	x, err := loadtest.NewExecution(id, cfg, loadtest.ExecutionDeps{Target: target, Analytics: count, AnalyticsWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if err := x.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := x.Generate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	x.Settle(ctx)
	v := x.Verify(ctx)
	h := v.Holds
	if !v.OK || h == nil || h.Captured == 0 || h.Voided == 0 || h.Pending != 0 || h.Held != 0 || v.EventsInAnalytics == nil {
		t.Fatalf("verification %+v, holds %+v", v, h)
	}
	t.Logf("%d sent, %d ok; %d transactions accepted, %d rows in analytics after %d ms; holds %+v",
		res.Sent, res.OK, v.Accepted, *v.EventsInAnalytics, v.AnalyticsWaitMs, *h)
	if want := v.Accepted + h.Created + h.Voided + h.Expired; v.ExpectedInAnalytics != want || *v.EventsInAnalytics != want {
		t.Errorf("analytics hold %d rows, expected %d; want the %d transactions and %d hold events",
			*v.EventsInAnalytics, v.ExpectedInAnalytics, v.Accepted, h.Created+h.Voided+h.Expired)
	}
	checkStoredHolds(t, p, prefix, v)

	t.Run("the audit finds every transaction's rows and items once, holds' aside", func(t *testing.T) {
		auditAnalyticsAndActivity(t, p, store, mongoURL, prefix)
	})
	t.Run("a shortfall of rows of one kind made up by others fails", func(t *testing.T) {
		forgeAnalytics(t, store, target, id)
		x.SetAnalyticsWait(time.Second)
		again := x.Verify(ctx)
		if again.OK || *again.EventsInAnalytics != v.ExpectedInAnalytics ||
			!strings.Contains(strings.Join(again.Problems, "; "), "holds' rows, want") {
			t.Errorf("verification %+v of rows as many as expected but of the wrong kinds", again)
		}
	})

	t.Run("cleanup leaves none of the run's holds, transactions and rows", func(t *testing.T) {
		cleanupRun(t, p, store, id, v.Accepted)
	})
}

// cleanupRun cleans run id away and checks that nothing of it is left.
func cleanupRun(t *testing.T, p *testenv.Processor, store *clickhouse.Store, id string, accepted int64) {
	t.Helper()
	ctx := context.Background()
	ledger := loadtest.NewLedgerClient(p.URL, p.AdminToken, 4, 10*time.Second)
	defer ledger.CloseIdleConnections()
	cleaned, err := loadtest.Cleanup(ctx, ledger, id, loadtest.Cleaners{
		Analytics: func(ctx context.Context, users []uuid.UUID, prefix string) error {
			return store.DeleteTransactions(ctx, clickhouse.Filter{UserIDs: users, DescriptionPrefix: prefix})
		},
	}, nil)
	if err != nil || cleaned.Users != 10 || cleaned.Accounts != 20 || cleaned.Transactions != accepted {
		t.Errorf("cleanup %+v, %v; want 10 users, 20 accounts, %d transactions", cleaned, err, accepted)
	}
	prefix := loadtest.DescriptionPrefix(id)
	if n, err := store.CountTransactions(ctx, clickhouse.Filter{DescriptionPrefix: prefix}); err != nil || n != 0 {
		t.Errorf("%d analytics rows left: %v", n, err)
	}
	checkStoredHolds(t, p, prefix, nil)
}

// checkStoredHolds compares the run's holds and transactions in PostgreSQL with what its
// verification v booked; with v nil, there must be none.
func checkStoredHolds(t *testing.T, p *testenv.Processor, prefix string, v *loadtest.Verification) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	holds := holdsByStatus(t, conn, prefix)
	var txs, captured int64
	if err := conn.QueryRow(ctx, `SELECT count(*), coalesce(sum(amount) FILTER (WHERE hold_id IS NOT NULL), 0)
		FROM transactions WHERE description LIKE $1`, prefix+"%").Scan(&txs, &captured); err != nil {
		t.Fatal(err)
	}
	if v == nil {
		if len(holds) != 0 || txs != 0 {
			t.Errorf("holds %v and %d transactions left", holds, txs)
		}
		return
	}
	h := v.Holds
	if holds["captured"] != h.Captured || holds["voided"] != h.Voided || holds["pending"] != 0 || txs != v.Accepted ||
		captured != h.CapturedAmount {
		t.Errorf("stored: holds %v, %d transactions, %d captured; the run booked holds %+v, %d transactions",
			holds, txs, captured, h, v.Accepted)
	}
}

// forgeAnalytics swaps, in analytics, the seed deposits' rows of one of run id's users for as
// many rows that look like its holds': the total stays, the kinds do not.
func forgeAnalytics(t *testing.T, store *clickhouse.Store, target loadtest.Target, id string) {
	t.Helper()
	ctx := context.Background()
	ledger := loadtest.NewLedgerClient(target.URL, target.AdminToken, 1, 10*time.Second)
	defer ledger.CloseIdleConnections()
	users, err := ledger.UsersByTag(ctx, id)
	if err != nil || len(users) == 0 {
		t.Fatalf("users %v: %v", users, err)
	}
	u := users[0].ID
	seeds := clickhouse.Filter{UserIDs: []uuid.UUID{u}, DescriptionPrefix: loadtest.DescriptionPrefix(id) + "seed"}
	n, err := store.CountTransactions(ctx, seeds)
	if err != nil || n == 0 {
		t.Fatalf("%d seed rows: %v", n, err)
	}
	if err := store.DeleteTransactions(ctx, seeds); err != nil {
		t.Fatal(err)
	}
	var rows []pipeline.AnalyticsRow
	for range n {
		rows = append(rows, pipeline.AnalyticsRow{EventID: uuid.New(), TransactionID: uuid.New(), Type: pipeline.KindHold,
			Currency: "USD", Amount: 1, FromAccountID: uuid.New(), FromUserID: u,
			Description: loadtest.DescriptionPrefix(id) + loadtest.HoldMark + "forged", CreatedAt: time.Now().UTC()})
	}
	if err := store.InsertTransactions(ctx, rows); err != nil {
		t.Fatal(err)
	}
}

// auditAnalyticsAndActivity waits until the audit finds every transaction of prefix once in
// analytics and activity: the rows and items of holds' events are not transactions' and must
// not count as unknown ones. (No notifier runs here.)
func auditAnalyticsAndActivity(t *testing.T, p *testenv.Processor, store *clickhouse.Store, mongoURL, prefix string) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, p.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	mg, err := mongo.Open(ctx, mongoURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mg.Close(ctx) }()
	src := audit.Sources{
		Transactions: postgres.NewStore(pool).TransactionsByDescriptionPrefix,
		Analytics: func(ctx context.Context, prefix string) (audit.Counts, error) {
			return store.TransactionCounts(ctx, clickhouse.Filter{DescriptionPrefix: prefix})
		},
		Activities:    mg.ActivityCounts,
		Notifications: func(context.Context, []uuid.UUID) (audit.Counts, error) { return audit.Counts{}, nil },
	}
	testenv.Eventually(t, time.Minute, func() string {
		diffs, n, err := audit.Run(ctx, src, prefix)
		if err != nil {
			return err.Error()
		}
		for _, d := range diffs[:2] { // analytics, activities
			if !d.OK() {
				return fmt.Sprintf("%d transactions: %v", n, d)
			}
		}
		return ""
	})
}
