package processor_test

import (
	"context"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"txn/internal/processor"
	"txn/internal/testenv"
)

// TestIdempotencyConcurrent sends the same request under the same key from 20 goroutines at
// once, as a user and as the admin, and then split between two processor instances on the
// same database: exactly one transaction is stored, and every answer is it (first or replayed)
// or 409.
func TestIdempotencyConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	second := testenv.StartProcessor(t, func(c *processor.Config) {
		c.DatabaseURL, c.DirectURL, c.AdminToken = f.p.Config.DatabaseURL, f.p.Config.DirectURL, f.p.AdminToken
	})
	rounds := []struct {
		name    string
		clients []*testenv.Client // request i goes through clients[i%len(clients)]
	}{
		{"a user", []*testenv.Client{f.ac}},
		{"the admin", []*testenv.Client{f.admin}},
		{"a user through two instances", []*testenv.Client{f.ac, second.Client(f.alice.APIKey)}},
	}
	for _, round := range rounds {
		t.Run(round.name, func(t *testing.T) {
			key := "concurrent-" + uuid.NewString()
			before := snapshot(t, f.db)
			a0, b0 := balance(t, f.db, f.aUSD), balance(t, f.db, f.bUSD)
			const n = 20
			answers := make([]*testenv.Response, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					c := round.clients[i%len(round.clients)]
					r, err := c.Do("POST", "/transactions", transfer(f.aUSD, f.bUSD, 250, "USD"), "Idempotency-Key", key)
					if err != nil {
						t.Errorf("request %d: %v", i, err)
						return
					}
					answers[i] = r
				}()
			}
			close(start)
			wg.Wait()
			if t.Failed() {
				return
			}

			var first *testenv.Response
			ids := map[string]int{}
			fresh, inUse := 0, 0
			for i, r := range answers {
				switch r.Status {
				case http.StatusCreated:
					var tx txJSON
					r.JSON(t, &tx)
					ids[tx.ID]++
					if r.Header.Get("Idempotent-Replayed") != "true" {
						fresh++
						first = r
					}
				case http.StatusConflict:
					inUse++
					assertProblem(t, r, http.StatusConflict, "idempotency_key_in_use")
				default:
					t.Errorf("answer %d: %d %s", i, r.Status, r.Body)
				}
			}
			if len(ids) != 1 || fresh != 1 {
				t.Fatalf("transaction ids %v, %d answers not replayed; want one id, applied once", ids, fresh)
			}
			for i, r := range answers {
				if r.Status == http.StatusCreated && string(r.Body) != string(first.Body) {
					t.Errorf("answer %d differs from the first: %s vs %s", i, r.Body, first.Body)
				}
			}
			t.Logf("%d applied, %d replayed, %d in use", fresh, n-fresh-inUse, inUse)

			want := map[string]int64{"users": 0, "accounts": 0, "transactions": 1, "entries": 2, "outbox": 1, "idempotency_keys": 1, "holds": 0}
			if d := rowDelta(t, f.db, before); !maps.Equal(d, want) {
				t.Errorf("wrote %v, want %v", d, want)
			}
			if a, b := balance(t, f.db, f.aUSD), balance(t, f.db, f.bUSD); a != a0-250 || b != b0+250 {
				t.Errorf("balances %d, %d; want %d, %d", a, b, a0-250, b0+250)
			}
			var stored string
			if err := f.db.QueryRow(context.Background(), `SELECT transaction_id::text FROM idempotency_keys WHERE key = $1`,
				key).Scan(&stored); err != nil {
				t.Fatal(err)
			}
			for id := range ids {
				if stored != id {
					t.Errorf("key stored with transaction %s, answered %s", stored, id)
				}
			}
		})
	}
}

// TestIdempotencyReplays checks what is stored under a key and what is not.
func TestIdempotencyReplays(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)

	t.Run("422 replayed after funding", func(t *testing.T) {
		empty := f.admin.CreateAccount(t, f.bob.ID, "USD")
		req := withdrawal(empty, 500, "USD")
		first := do(t, f.bc, "POST", "/transactions", req, "Idempotency-Key", "w1")
		assertProblem(t, first, http.StatusUnprocessableEntity, "insufficient_funds")
		f.admin.Deposit(t, empty, 1_000, "USD")
		before := snapshot(t, f.db)
		again := do(t, f.bc, "POST", "/transactions", req, "Idempotency-Key", "w1")
		assertProblem(t, again, http.StatusUnprocessableEntity, "insufficient_funds")
		if again.Header.Get("Idempotent-Replayed") != "true" || string(again.Body) != string(first.Body) {
			t.Errorf("replay %q %s, first %s", again.Header.Get("Idempotent-Replayed"), again.Body, first.Body)
		}
		assertUnchanged(t, f.db, before)
		// a new key applies it
		f.bc.Must(t, http.StatusCreated, "POST", "/transactions", req, "Idempotency-Key", "w2")
		if b := balance(t, f.db, empty); b != 500 {
			t.Errorf("balance %d, want 500", b)
		}
	})

	t.Run("404 replayed", func(t *testing.T) {
		req := transfer(f.aUSD, uuid.NewString(), 5, "USD")
		first := do(t, f.ac, "POST", "/transactions", req, "Idempotency-Key", "nf")
		assertProblem(t, first, http.StatusNotFound, "not_found")
		before := snapshot(t, f.db)
		again := do(t, f.ac, "POST", "/transactions", req, "Idempotency-Key", "nf")
		assertProblem(t, again, http.StatusNotFound, "not_found")
		if again.Header.Get("Idempotent-Replayed") != "true" || string(again.Body) != string(first.Body) {
			t.Errorf("replay %q %s, first %s", again.Header.Get("Idempotent-Replayed"), again.Body, first.Body)
		}
		assertUnchanged(t, f.db, before)
	})

	t.Run("reused with a different request", func(t *testing.T) {
		req := transfer(f.aUSD, f.bUSD, 10, "USD")
		first := f.ac.Must(t, http.StatusCreated, "POST", "/transactions", req, "Idempotency-Key", "r1")
		variants := []map[string]any{
			transfer(f.aUSD, f.bUSD, 11, "USD"),
			transfer(f.aUSD2, f.bUSD, 10, "USD"),
			transfer(f.aUSD, f.aUSD2, 10, "USD"),
			with(req, "description", "changed"),
			withdrawal(f.aUSD, 10, "USD"),
			transfer(f.aEUR, f.bUSD, 10, "EUR"),
		}
		for i, v := range variants {
			before := snapshot(t, f.db)
			r := do(t, f.ac, "POST", "/transactions", v, "Idempotency-Key", "r1")
			assertProblem(t, r, http.StatusUnprocessableEntity, "idempotency_key_reused")
			if r.Header.Get("Idempotent-Replayed") != "" {
				t.Errorf("variant %d: a refusal marked as replayed", i)
			}
			assertUnchanged(t, f.db, before)
		}
		// the first request still replays
		again := f.ac.Must(t, http.StatusCreated, "POST", "/transactions", req, "Idempotency-Key", "r1")
		if string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay %s, first %s", again.Body, first.Body)
		}
	})

	t.Run("refusals before validation are not stored", func(t *testing.T) {
		good := transfer(f.aUSD, f.bUSD, 3, "USD")
		for _, tc := range []struct {
			name   string
			c      *testenv.Client
			body   any
			h      []string
			status int
			code   string
		}{
			{"400", f.ac, with(good, "amount", 0), nil, 400, "validation_failed"},
			{"403", f.ac, deposit(f.aUSD, 3, "USD"), nil, 403, "forbidden"},
			{"415", f.ac, mustJSON(t, good), []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
			{"413", f.ac, with(good, "description", strings.Repeat("x", 70_000)), nil, 413, "body_too_large"},
		} {
			key := "retry-" + tc.name
			before := snapshot(t, f.db)
			r := do(t, tc.c, "POST", "/transactions", tc.body, append([]string{"Idempotency-Key", key}, tc.h...)...)
			assertProblem(t, r, tc.status, tc.code)
			assertUnchanged(t, f.db, before)
			r = f.ac.Must(t, http.StatusCreated, "POST", "/transactions", good, "Idempotency-Key", key)
			if r.Header.Get("Idempotent-Replayed") != "" {
				t.Errorf("%s: the retry after a %s was replayed", key, tc.name)
			}
		}
	})

	t.Run("keys are scoped per caller", func(t *testing.T) {
		before := snapshot(t, f.db)
		const key = "shared-key"
		var ta, tb, tadm txJSON
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.aUSD, f.bUSD, 12, "USD"), "Idempotency-Key", key).JSON(t, &ta)
		f.bc.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.bUSD, f.aUSD, 34, "USD"), "Idempotency-Key", key).JSON(t, &tb)
		f.admin.Must(t, http.StatusCreated, "POST", "/transactions", deposit(f.aUSD, 56, "USD"), "Idempotency-Key", key).JSON(t, &tadm)
		// even the same request by another caller is its own transaction
		var tb2 txJSON
		r := f.bc.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.bUSD, f.aUSD, 34, "USD"), "Idempotency-Key", key)
		r.JSON(t, &tb2)
		if r.Header.Get("Idempotent-Replayed") != "true" || tb2.ID != tb.ID {
			t.Errorf("bob's replay: %s", r.Body)
		}
		if ta.ID == tb.ID || tb.ID == tadm.ID || ta.ID == tadm.ID || ta.Amount != 12 || tb.Amount != 34 || tadm.Amount != 56 {
			t.Errorf("same key, three callers: %+v %+v %+v", ta, tb, tadm)
		}
		want := map[string]int64{"users": 0, "accounts": 0, "transactions": 3, "entries": 6, "outbox": 3, "idempotency_keys": 3, "holds": 0}
		if d := rowDelta(t, f.db, before); !maps.Equal(d, want) {
			t.Errorf("wrote %v, want %v", d, want)
		}
	})
}

// TestIdempotencyKeysExpire checks that a key's first answer is kept for KeyTTL and no longer:
// then the key is free for a new request.
func TestIdempotencyKeysExpire(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *processor.Config) { c.KeyTTL, c.KeySweep = time.Second, 100*time.Millisecond })
	key := []string{"Idempotency-Key", "expiring"}
	f.ac.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.aUSD, f.bUSD, 1, "USD"), key...)
	t.Run("within the TTL the key holds its first request", func(t *testing.T) {
		r, err := f.ac.Do("POST", "/transactions", transfer(f.aUSD, f.bUSD, 2, "USD"), key...)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == http.StatusCreated {
			t.Skip("the key expired already: the machine is too slow for a one-second TTL")
		}
		assertProblem(t, r, http.StatusUnprocessableEntity, "idempotency_key_reused")
	})
	t.Run("after the TTL the key takes a new request", func(t *testing.T) {
		testenv.Eventually(t, 15*time.Second, func() string {
			r, err := f.ac.Do("POST", "/transactions", transfer(f.aUSD, f.bUSD, 3, "USD"), key...)
			if err != nil {
				return err.Error()
			}
			if r.Status != http.StatusCreated {
				return "the key still holds: " + strconv.Itoa(r.Status)
			}
			return ""
		})
	})
}
