// Package e2e tests the services together, as processes, against the real servers.
package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"txn/internal/processor"
	"txn/internal/rabbitmq"
	"txn/internal/testenv"
)

// pipeline is the processor (in process) with relays and a consumer as processes, on a topic,
// consumer groups, ClickHouse and MongoDB databases and RabbitMQ queues of their own.
type pipeline struct {
	t           *testing.T
	p           *testenv.Processor
	admin       *testenv.Client
	topic       string
	brokers     []string
	chAddr      string
	chDB        string
	mongoURL    string
	mongoDB     string
	topology    rabbitmq.Topology
	rabbit      string
	relays      []*testenv.Proc
	consumer    *testenv.Proc
	consumerURL string   // the first consumer's operational endpoints
	consumerEnv []string // what consumers are started with, but their address
}

func startPipeline(t *testing.T, relays int) *pipeline {
	t.Helper()
	pl := &pipeline{t: t, topic: testenv.Unique("events"), brokers: testenv.KafkaBrokers(t),
		chAddr: testenv.ClickHouseAddr(t), chDB: testenv.Unique("e2e"), rabbit: testenv.RabbitURL(t)}
	pl.mongoURL, pl.mongoDB = uniqueMongoURL(t)
	q := testenv.Unique("notifications")
	pl.topology = rabbitmq.Topology{Exchange: q, Queue: q, RetryDelays: []time.Duration{time.Second}}
	pl.p = testenv.StartProcessor(t, func(c *processor.Config) {
		c.UserRate = 0
		c.MongoURL, c.ClickHouseAddr, c.ClickHouseDB = pl.mongoURL, pl.chAddr, pl.chDB
	})
	pl.admin = pl.p.Client(pl.p.AdminToken)
	for i := 0; i < relays; i++ {
		pl.relays = append(pl.relays, testenv.StartProc(t, "relay",
			"DATABASE_DIRECT_URL="+pl.p.DirectURL, "KAFKA_BROKERS="+strings.Join(pl.brokers, ","),
			"KAFKA_TOPIC="+pl.topic, "RELAY_ADDR="+testenv.FreeAddr(t), "LOG_LEVEL="+serviceLogLevel))
	}
	pl.consumerEnv = []string{"KAFKA_BROKERS=" + strings.Join(pl.brokers, ","), "KAFKA_TOPIC=" + pl.topic,
		"CONSUMER_GROUP_PREFIX=" + pl.topic + "-",
		"CLICKHOUSE_ADDR=" + pl.chAddr, "CLICKHOUSE_DATABASE=" + pl.chDB, "MONGO_URL=" + pl.mongoURL,
		"RABBITMQ_URL=" + pl.rabbit, "RABBITMQ_EXCHANGE=" + q, "RABBITMQ_QUEUE=" + q,
		"CONSUMER_LINGER=100ms", "LOG_LEVEL=" + serviceLogLevel}
	pl.consumer, pl.consumerURL = pl.startConsumer(t)
	t.Cleanup(pl.cleanup)
	return pl
}

// startConsumer starts a consumer (one more in the same groups, after the first); it returns it
// and its operational endpoints' base URL.
func (pl *pipeline) startConsumer(t *testing.T) (*testenv.Proc, string) {
	t.Helper()
	addr := testenv.FreeAddr(t)
	p := testenv.StartProc(t, "consumer", append([]string{"CONSUMER_ADDR=" + addr}, pl.consumerEnv...)...)
	testenv.WaitHTTP(t, "http://"+addr+"/healthz", 30*time.Second)
	return p, "http://" + addr
}

func (pl *pipeline) cleanup() {
	ctx := context.Background()
	if conn, err := ch.Open(&ch.Options{Addr: []string{pl.chAddr}}); err == nil {
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pl.chDB)
		_ = conn.Close()
	}
	if c, err := mongodrv.Connect(options.Client().ApplyURI(pl.mongoURL)); err == nil {
		_ = c.Database(pl.mongoDB).Drop(ctx)
		_ = c.Disconnect(ctx)
	}
	if conn, err := amqp.Dial(pl.rabbit); err == nil {
		if ch, err := conn.Channel(); err == nil {
			for _, q := range []string{pl.topology.Queue, pl.topology.Queue + ".parked", pl.topology.RetryQueue(0)} {
				_, _ = ch.QueueDelete(q, false, false, false)
			}
			_ = ch.ExchangeDelete(pl.topology.Exchange, false, false)
		}
		_ = conn.Close()
	}
}

// load creates users and accounts, then sends random deposits, withdrawals and transfers from
// several clients until stop is closed; it returns how many were answered 201.
func (pl *pipeline) load(t *testing.T, clients int, stop <-chan struct{}, max int) int64 {
	t.Helper()
	var accounts []string
	for u := 0; u < 8; u++ {
		usr := pl.admin.CreateUser(t, fmt.Sprintf("pipe%d", u))
		for i := 0; i < 3; i++ {
			id := pl.admin.CreateAccount(t, usr.ID, "USD")
			pl.admin.Deposit(t, id, 1_000_000, "USD")
			accounts = append(accounts, id)
		}
	}
	var ok atomic.Int64
	var sent atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for sent.Add(1) <= int64(max) {
				select {
				case <-stop:
					return
				default:
				}
				a, b := accounts[rng.IntN(len(accounts))], accounts[rng.IntN(len(accounts))]
				body := map[string]any{"type": "transfer", "from_account_id": a, "to_account_id": b, "amount": 1 + rng.IntN(500), "currency": "USD"}
				switch rng.IntN(6) {
				case 0:
					body = map[string]any{"type": "deposit", "to_account_id": a, "amount": 1 + rng.IntN(500), "currency": "USD"}
				case 1:
					body = map[string]any{"type": "withdrawal", "from_account_id": a, "amount": 1 + rng.IntN(500), "currency": "USD"}
				}
				resp, err := pl.admin.Do("POST", "/transactions", body)
				if err != nil {
					t.Errorf("load: %v", err)
					return
				}
				if resp.Status == http.StatusCreated {
					ok.Add(1)
				}
			}
		}(c)
	}
	wg.Wait()
	return ok.Load()
}

// truth is what PostgreSQL says the read models must hold.
type truth struct {
	transactions, activity, volume, signedSum int64
}

func (pl *pipeline) truth(t *testing.T) truth {
	t.Helper()
	ctx := context.Background()
	db, err := pgx.Connect(ctx, pl.p.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	var tr truth
	err = db.QueryRow(ctx, `SELECT count(*), coalesce(sum(CASE WHEN type = 'transfer' THEN 2 ELSE 1 END), 0),
			coalesce(sum(amount), 0),
			coalesce(sum(CASE type WHEN 'deposit' THEN amount WHEN 'withdrawal' THEN -amount ELSE 0 END), 0)
		FROM transactions`).Scan(&tr.transactions, &tr.activity, &tr.volume, &tr.signedSum)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// observed reads what the read models hold.
func (pl *pipeline) observed(t *testing.T, tasks *taskSink) (analytics truth, activity truth, distinctTasks, dupTasks int64) {
	t.Helper()
	ctx := context.Background()
	var a struct {
		Total struct{ Count, Volume int64 } `json:"total"`
	}
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if r, err := pl.admin.Do("GET", "/admin/analytics?from="+from+"&to="+to, nil); err == nil && r.Status == 200 {
		r.JSON(t, &a)
	}
	analytics = truth{transactions: a.Total.Count, volume: a.Total.Volume}
	c, err := mongodrv.Connect(options.Client().ApplyURI(pl.mongoURL))
	if err == nil {
		defer c.Disconnect(ctx)
		coll := c.Database(pl.mongoDB).Collection("activity")
		n, _ := coll.CountDocuments(ctx, bson.D{})
		activity.activity = n
		cur, err := coll.Aggregate(ctx, mongodrv.Pipeline{{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil},
			{Key: "sum", Value: bson.D{{Key: "$sum", Value: "$amount"}}}}}}})
		if err == nil {
			var out []struct {
				Sum int64 `bson:"sum"`
			}
			_ = cur.All(ctx, &out)
			if len(out) == 1 {
				activity.signedSum = out[0].Sum
			}
		}
	}
	distinctTasks, dupTasks = tasks.counts()
	return
}

// taskSink drains the notification queue, counting distinct message ids and duplicates.
type taskSink struct {
	mu    sync.Mutex
	seen  map[string]int
	dups  int64
	kinds map[string][]string // the kinds of the tasks by transaction id
}

// kindsOf returns the kinds of the tasks seen so far by transaction id.
func (s *taskSink) kindsOf() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]string, len(s.kinds))
	for id, k := range s.kinds {
		out[id] = slices.Sorted(slices.Values(k))
	}
	return out
}

func (s *taskSink) counts() (int64, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.seen)), s.dups
}

func (pl *pipeline) drainTasks(t *testing.T) *taskSink {
	t.Helper()
	s := &taskSink{seen: map[string]int{}, kinds: map[string][]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			conn, err := amqp.Dial(pl.rabbit)
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			ch, err := conn.Channel()
			var msgs <-chan amqp.Delivery
			if err == nil {
				_, err = ch.QueueDeclarePassive(pl.topology.Queue, true, false, false, false, nil)
			}
			if err == nil {
				msgs, err = ch.Consume(pl.topology.Queue, "", true, false, false, false, nil)
			}
			if err != nil {
				_ = conn.Close()
				time.Sleep(200 * time.Millisecond)
				continue
			}
			for open := true; open && ctx.Err() == nil; {
				select {
				case d, ok := <-msgs:
					if !ok {
						open = false
						break
					}
					tasks, err := rabbitmq.DecodeTasks(d.Body)
					if err != nil || (len(tasks) == 1 && tasks[0].NotificationID.String() != d.MessageId) {
						t.Errorf("message %q: %s: %v", d.MessageId, d.Body, err)
					}
					s.mu.Lock()
					for _, task := range tasks {
						id := task.NotificationID.String()
						s.seen[id]++
						if s.seen[id] > 1 {
							s.dups++
						} else {
							tx := task.TransactionID.String()
							s.kinds[tx] = append(s.kinds[tx], task.Kind)
						}
					}
					s.mu.Unlock()
				case <-ctx.Done():
				}
			}
			_ = conn.Close()
		}
	}()
	return s
}

// converge waits until every read model matches PostgreSQL, then checks nothing more arrives.
func (pl *pipeline) converge(t *testing.T, tasks *taskSink, within time.Duration) (dups int64) {
	t.Helper()
	want := pl.truth(t)
	check := func() string {
		an, ac, distinct, d := pl.observed(t, tasks)
		dups = d
		switch {
		case an.transactions != want.transactions || an.volume != want.volume:
			return fmt.Sprintf("analytics %d transactions / volume %d, want %d / %d", an.transactions, an.volume, want.transactions, want.volume)
		case ac.activity != want.activity || ac.signedSum != want.signedSum:
			return fmt.Sprintf("activity %d items / net %d, want %d / %d", ac.activity, ac.signedSum, want.activity, want.signedSum)
		case distinct != want.activity:
			return fmt.Sprintf("%d distinct notification tasks, want %d", distinct, want.activity)
		}
		return ""
	}
	testenv.Eventually(t, within, check)
	time.Sleep(time.Second) // nothing more may come: not one doubled effect
	if msg := check(); msg != "" {
		t.Fatalf("after converging: %s", msg)
	}
	t.Logf("%d transactions, %d activity items, %d notification tasks (%d redelivered duplicates)",
		want.transactions, want.activity, want.activity, dups)
	return dups
}

func TestPipelineDeliversEveryTransactionOnce(t *testing.T) {
	pl := startPipeline(t, 1)
	tasks := pl.drainTasks(t)
	stop := make(chan struct{})
	n := pl.load(t, 8, stop, 1500)
	t.Logf("%d transactions accepted", n)
	if dups := pl.converge(t, tasks, 60*time.Second); dups != 0 {
		t.Errorf("%d duplicate notification tasks without any crash", dups)
	}
	// The read endpoint serves the feed.
	var feed struct {
		Data []map[string]any `json:"data"`
	}
	users := pl.admin.Must(t, http.StatusOK, "GET", "/users?limit=1", nil)
	var list struct {
		Data []struct{ ID string } `json:"data"`
	}
	users.JSON(t, &list)
	pl.admin.Must(t, http.StatusOK, "GET", "/users/"+list.Data[0].ID+"/activity?limit=5", nil).JSON(t, &feed)
	if len(feed.Data) != 5 {
		t.Errorf("activity feed: %d items, want 5", len(feed.Data))
	}
}

func TestPipelineSurvivesCrashes(t *testing.T) {
	pl := startPipeline(t, 2)
	tasks := pl.drainTasks(t)
	stop := make(chan struct{})
	var n int64
	loaded := make(chan struct{})
	go func() { n = pl.load(t, 8, stop, 1<<30); close(loaded) }()
	// Kill at random moments while transactions flow: a relay (the other stands by and takes
	// over), then the consumer, several times, restarting each.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 6; i++ {
		time.Sleep(time.Duration(400+rng.IntN(800)) * time.Millisecond)
		if i%2 == 0 {
			pl.relays[rng.IntN(len(pl.relays))].Restart()
		} else {
			pl.consumer.Restart()
		}
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-loaded
	t.Logf("%d transactions accepted during 6 crashes", n)
	pl.converge(t, tasks, 90*time.Second)
}

func TestMalformedEventGoesToDeadLetters(t *testing.T) {
	pl := startPipeline(t, 1)
	tasks := pl.drainTasks(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(pl.brokers...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	bad := []*kgo.Record{
		{Topic: pl.topic, Key: []byte("x"), Value: []byte(`{"version": 1, "type": "transaction.completed"`)},
		{Topic: pl.topic, Key: []byte("y"), Value: []byte(`{"version": 9}`)},
	}
	if err := cl.ProduceSync(ctx, bad...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	pl.load(t, 4, stop, 200)
	pl.converge(t, tasks, 60*time.Second) // the good events went through

	dl, err := kgo.NewClient(kgo.SeedBrokers(pl.brokers...), kgo.ConsumeTopics(pl.topic+".dlq"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	// Three groups each dead-letter the two bad records.
	reasons := map[string]int{}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for n := 0; n < 6 && dctx.Err() == nil; {
		dl.PollFetches(dctx).EachRecord(func(r *kgo.Record) {
			n++
			for _, h := range r.Headers {
				if h.Key == "reason" {
					reasons[string(r.Key)+": "+string(h.Value)]++
				}
			}
		})
	}
	if len(reasons) != 2 {
		t.Fatalf("dead letters: %v", reasons)
	}
	for r, n := range reasons {
		if n != 3 || !strings.Contains(r, "permanent") {
			t.Errorf("dead letter %q seen %d times, want once per group (3)", r, n)
		}
	}
}

// serviceLogLevel is the services' LOG_LEVEL; TEST_SERVICE_LOG=info shows more when debugging.
var serviceLogLevel = func() string {
	if l := os.Getenv("TEST_SERVICE_LOG"); l != "" {
		return l
	}
	return "warn"
}()
