package processor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"txn/internal/testenv"
)

// TestInstancesBehindTheBalancer runs three processor processes on one database behind HAProxy,
// configured as `PROCESSORS=3 make up` configures it, and checks that they behave as one.
func TestInstancesBehindTheBalancer(t *testing.T) {
	broker := testenv.StartPrivateBroker(t)
	topic := testenv.Unique("instances")
	b := testenv.StartBalanced(t, 3, "RATE_LIMIT_RPS=0", "KAFKA_BROKERS="+broker.Addr, "KAFKA_TOPIC="+topic)
	admin := b.Client(b.AdminToken)
	ctx := context.Background()
	db, err := pgxpool.New(ctx, b.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	events := newEventLog(t, broker.Addr, topic)

	t.Run("requests are shared among the instances", func(t *testing.T) {
		before := requestCounts(t, b)
		for range 30 {
			admin.Must(t, http.StatusOK, "GET", "/users?limit=1", nil)
		}
		after := requestCounts(t, b)
		for i := range b.URLs {
			if got := after[i] - before[i]; got < 5 {
				t.Errorf("instance %d served %.0f of 30 requests, want about 10", i, got)
			}
		}
	})
	t.Run("the bank's invariants hold through the balancer", func(t *testing.T) {
		runBank(t, &b.Processor)
	})
	t.Run("one key sent to every instance at once makes one transaction", func(t *testing.T) {
		acc := admin.CreateAccount(t, admin.CreateUser(t, "race").ID, "USD")
		key := testenv.Unique("race")
		var wg sync.WaitGroup
		var mu sync.Mutex
		ids, fresh := map[string]bool{}, 0
		start := make(chan struct{})
		for i := range 15 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := b.InstanceClient(i%3, b.AdminToken)
				<-start
				r, err := c.Do("POST", "/transactions", deposit(acc, 40, "USD"), "Idempotency-Key", key)
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				if r.Status == http.StatusConflict {
					return // idempotency_key_in_use: the first is still being applied
				}
				var tx txJSON
				r.JSON(t, &tx)
				mu.Lock()
				defer mu.Unlock()
				ids[tx.ID] = true
				if r.Status == http.StatusCreated && r.Header.Get("Idempotent-Replayed") != "true" {
					fresh++
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(ids) != 1 || fresh != 1 {
			t.Errorf("answers name transactions %v, %d applied; want one, applied once", ids, fresh)
		}
		if got := balance(t, db, acc); got != 40 {
			t.Errorf("balance %d, want 40: the deposit once", got)
		}
	})
	t.Run("one relay leads, the others stand by, and every transaction reaches Kafka", func(t *testing.T) {
		if lead := leaders(t, b); len(lead) != 1 {
			t.Errorf("instances %v lead the relay, want one", lead)
		}
		events.waitFor(t, db)
	})
	t.Run("a SIGKILLed instance costs no acknowledged transaction and only its in-flight requests", func(t *testing.T) {
		killDuringLoad(t, b, db, 1)
		b.Instances[1].Start()
		testenv.WaitHTTP(t, b.URLs[1]+"/readyz", 60*time.Second)
	})
	t.Run("when the leading relay dies another takes over", func(t *testing.T) {
		before := leaders(t, b)
		if len(before) != 1 {
			t.Fatalf("instances %v lead the relay, want one", before)
		}
		lead := before[0]
		b.Instances[lead].Kill()
		// Straight to a survivor: this is about the relay, and a request the balancer sends in
		// the instant after a kill may go down with an idle connection to the dead instance.
		other := b.InstanceClient((lead+1)%3, b.AdminToken)
		acc := other.CreateAccount(t, other.CreateUser(t, "after").ID, "USD")
		for range 20 {
			other.Must(t, http.StatusCreated, "POST", "/transactions", deposit(acc, 5, "USD"))
		}
		testenv.Eventually(t, 30*time.Second, func() string {
			if now := leaders(t, b); len(now) != 1 {
				return fmt.Sprintf("surviving instances %v lead, want one", now)
			}
			return ""
		})
		events.waitFor(t, db)
		b.Instances[lead].Start()
		testenv.WaitHTTP(t, b.URLs[lead]+"/readyz", 60*time.Second)
		if now := leaders(t, b); len(now) != 1 {
			t.Errorf("with the killed instance back, instances %v lead, want one", now)
		}
	})
}

// killDuringLoad sends deposits through the balancer from 16 clients for 3 s, half of them
// with idempotency keys, SIGKILLs instance victim after 1 s, and checks: every deposit answered
// 201 is stored; the requests that failed are at most those in flight (16); no deposit without a
// key is stored twice (the balancer re-sends a request only if it could not send it); and once
// each failed keyed one is sent again with its key, every key has exactly one deposit. (Go's
// client itself re-sends a keyed request whose reused connection broke, as it does for GETs.)
func killDuringLoad(t *testing.T, b *testenv.Balanced, db *pgxpool.Pool, victim int) {
	admin := b.Client(b.AdminToken)
	owner := admin.CreateUser(t, "kill").ID
	keyed, unkeyed := admin.CreateAccount(t, owner, "USD"), admin.CreateAccount(t, owner, "USD")
	type sent struct {
		key, id string // key "" for an unkeyed deposit
		ok      bool
	}
	var (
		mu         sync.Mutex
		all        []sent
		stop, dead atomic.Bool
		after      atomic.Int64 // 201s after the kill
	)
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				s, to, headers := sent{}, unkeyed, []string(nil)
				if c%2 == 0 {
					s.key, to = fmt.Sprintf("kill-%d-%d", c, n), keyed
					headers = []string{"Idempotency-Key", s.key}
				}
				r, err := admin.Do("POST", "/transactions", deposit(to, 1, "USD"), headers...)
				if err == nil && r.Status == http.StatusCreated {
					var tx txJSON
					r.JSON(t, &tx)
					s.id, s.ok = tx.ID, true
					if dead.Load() {
						after.Add(1)
					}
				}
				mu.Lock()
				all = append(all, s)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)
	b.Instances[victim].Kill()
	dead.Store(true)
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()

	var acked []string
	var failedKeys []string
	sentKeyed, sentUnkeyed, ackedUnkeyed := 0, 0, 0
	for _, s := range all {
		if s.key != "" {
			sentKeyed++
		} else {
			sentUnkeyed++
		}
		switch {
		case s.ok:
			acked = append(acked, s.id)
			if s.key == "" {
				ackedUnkeyed++
			}
		case s.key != "":
			failedKeys = append(failedKeys, s.key)
		}
	}
	failed := len(all) - len(acked)
	t.Logf("%d sent, %d acknowledged (%d after the kill), %d failed (%d with a key)", len(all), len(acked), after.Load(), failed, len(failedKeys))
	var stored int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM transactions WHERE id::text = ANY($1)`, acked).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(acked) {
		t.Errorf("%d of %d acknowledged deposits stored", stored, len(acked))
	}
	if failed > 16 {
		t.Errorf("%d requests failed, more than the 16 that can have been in flight", failed)
	}
	if after.Load() == 0 {
		t.Error("no deposit acknowledged after the kill: the other instances did not take the load")
	}
	if got := balance(t, db, unkeyed); got < int64(ackedUnkeyed) || got > int64(sentUnkeyed) {
		t.Errorf("%d unkeyed deposits stored, want between the %d acknowledged and the %d sent", got, ackedUnkeyed, sentUnkeyed)
	}
	for _, k := range failedKeys {
		admin.Do("POST", "/transactions", deposit(keyed, 1, "USD"), "Idempotency-Key", k) // applied or replayed
	}
	if got := balance(t, db, keyed); got != int64(sentKeyed) {
		t.Errorf("%d keyed deposits stored after resending the failed ones, want %d: one per key", got, sentKeyed)
	}
}

// leaders lists the instances whose relay leads, skipping any that is down.
func leaders(t *testing.T, b *testenv.Balanced) []int {
	var out []int
	for i, u := range b.URLs {
		if b.Instances[i].Alive() && testenv.MetricSum(t, u, "relay_leader") == 1 {
			out = append(out, i)
		}
	}
	return out
}

// requestCounts is each instance's count of API requests served.
func requestCounts(t *testing.T, b *testenv.Balanced) []float64 {
	out := make([]float64, len(b.URLs))
	for i, u := range b.URLs {
		out[i] = testenv.MetricSum(t, u, "http_request_duration_seconds_count")
	}
	return out
}

// eventLog reads a topic's events as they arrive, remembering the transactions they name.
type eventLog struct {
	cl  *kgo.Client
	txs map[string]bool
}

func newEventLog(t *testing.T, broker, topic string) *eventLog {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &eventLog{cl: cl, txs: map[string]bool{}}
}

// waitFor reads events until every transaction in db has one.
func (l *eventLog) waitFor(t *testing.T, db *pgxpool.Pool) {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT id::text FROM transactions`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		l.cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			var e struct {
				Transaction struct{ ID string } `json:"transaction"`
			}
			if json.Unmarshal(r.Value, &e) == nil && e.Transaction.ID != "" {
				l.txs[e.Transaction.ID] = true
			}
		})
		missing := 0
		for _, id := range ids {
			if !l.txs[id] {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Sprintf("%d of %d transactions not in Kafka yet", missing, len(ids))
		}
		return ""
	})
}

// TestRateLimitAcrossInstances checks that a user's limit holds across three processors behind
// the balancer: in every whole second of a flood far above it, the requests let through are
// within 10 % of the limit.
func TestRateLimitAcrossInstances(t *testing.T) {
	const limit = 200
	b := testenv.StartBalanced(t, 3, fmt.Sprintf("RATE_LIMIT_RPS=%d", limit), "RELAY_ENABLED=false")
	admin := b.Client(b.AdminToken)
	u := admin.CreateUser(t, "flood")
	acc := admin.CreateAccount(t, u.ID, "USD")
	user := b.Client(u.APIKey)
	var (
		mu       sync.Mutex
		perSec   = map[int64]int{} // requests let through, by the second they were sent in
		limited  atomic.Int64
		deadline = time.Now().Add(4 * time.Second)
	)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				sent := time.Now().Unix()
				r, err := user.Do("GET", "/accounts/"+acc, nil)
				switch {
				case err != nil:
					t.Errorf("request: %v", err)
					return
				case r.Status == http.StatusOK:
					mu.Lock()
					perSec[sent]++
					mu.Unlock()
				case r.Status == http.StatusTooManyRequests:
					limited.Add(1)
					time.Sleep(2 * time.Millisecond) // still far above the limit, without starving the processors of CPU
				default:
					t.Errorf("status %d: %s", r.Status, r.Body)
					return
				}
			}
		}()
	}
	wg.Wait()
	first, last := int64(1<<62), int64(0)
	for s := range perSec {
		first, last = min(first, s), max(last, s)
	}
	t.Logf("let through by second: %v; %d limited", perSec, limited.Load())
	if limited.Load() == 0 {
		t.Fatal("nothing was limited: the flood did not reach the limit")
	}
	for s := first + 1; s < last; s++ { // whole seconds only
		if n := perSec[s]; n < limit*9/10 || n > limit*11/10 {
			t.Errorf("second %d let %d requests through, want %d ± 10 %%", s-first, n, limit)
		}
	}
}
