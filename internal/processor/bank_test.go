package processor_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"txn/internal/processor"
	"txn/internal/testenv"
)

// TestBank has many concurrent clients move money at random among accounts, a few of them hot,
// then checks the books: balanced, nothing negative, every accepted transaction stored exactly
// once with its entries, nothing stored for a refused one, and every balance equal to what the
// accepted transactions imply.
func TestBank(t *testing.T) {
	p := testenv.StartProcessor(t, func(c *processor.Config) { c.UserRate = 0 })
	admin := p.Client(p.AdminToken)

	const (
		users       = 12
		perUser     = 5 // 60 accounts
		clients     = 40
		duration    = 5 * time.Second
		seedBalance = 10_000
	)
	var accounts []account
	keys := make([]string, users)
	for u := 0; u < users; u++ {
		usr := admin.CreateUser(t, fmt.Sprintf("bank%d", u), "bank")
		keys[u] = usr.APIKey
		for i := 0; i < perUser; i++ {
			id := admin.CreateAccount(t, usr.ID, "USD")
			admin.Deposit(t, id, seedBalance, "USD")
			accounts = append(accounts, account{id, u})
		}
	}
	hot := accounts[:3]

	var (
		mu       sync.Mutex
		outcomes []outcome
	)
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 42))
			pick := func() account {
				if rng.IntN(3) == 0 {
					return hot[rng.IntN(len(hot))]
				}
				return accounts[rng.IntN(len(accounts))]
			}
			var mine []outcome // accepted, to reverse
			for n := 0; time.Now().Before(deadline); n++ {
				var o outcome
				body := map[string]any{"currency": "USD"}
				client := admin
				if len(mine) > 0 && rng.IntN(20) == 0 {
					// A reversal of one of this client's accepted transactions, whole or in part.
					o := reverseOne(t, admin, rng, mine[rng.IntN(len(mine))])
					mu.Lock()
					outcomes = append(outcomes, o)
					mu.Unlock()
					continue
				}
				if rng.IntN(10) == 0 {
					// An atomic batch of transfers: all of them are accepted, or none.
					got := atomicTransfers(t, admin, rng, pick)
					mu.Lock()
					outcomes = append(outcomes, got...)
					mu.Unlock()
					continue
				}
				switch r := rng.IntN(10); {
				case r < 8:
					from, to := pick(), pick()
					o = outcome{typ: "transfer", from: from.id, to: to.id}
					body["from_account_id"], body["to_account_id"] = from.id, to.id
					if rng.IntN(2) == 0 {
						client = p.Client(keys[from.owner]) // the owner itself, not the admin
					}
				case r < 9:
					to := pick()
					o = outcome{typ: "deposit", to: to.id}
					body["to_account_id"] = to.id
				default:
					from := pick()
					o = outcome{typ: "withdrawal", from: from.id}
					body["from_account_id"] = from.id
					client = p.Client(keys[from.owner])
				}
				o.amount = 1 + rng.Int64N(3_000)
				body["type"], body["amount"] = o.typ, o.amount
				var headers []string
				if rng.IntN(4) == 0 {
					o.key = fmt.Sprintf("bank-%d-%d", c, n)
					headers = []string{"Idempotency-Key", o.key}
				}
				resp, err := client.Do("POST", "/transactions", body, headers...)
				if err != nil {
					t.Errorf("client %d: %v", c, err)
					return
				}
				o.status = resp.Status
				var m struct {
					ID   string `json:"id"`
					Code string `json:"code"`
				}
				resp.JSON(t, &m)
				o.txID, o.code = m.ID, m.Code
				if o.key != "" && rng.IntN(2) == 0 {
					// Retry as a client that lost the answer: same status, same body, no new effect.
					again, err := client.Do("POST", "/transactions", body, headers...)
					if err != nil {
						t.Errorf("client %d retry: %v", c, err)
						return
					}
					if again.Status != resp.Status || string(again.Body) != string(resp.Body) ||
						again.Header.Get("Idempotent-Replayed") != "true" {
						t.Errorf("replay of %s: %d %s (replayed=%q), first %d %s", o.key, again.Status,
							again.Body, again.Header.Get("Idempotent-Replayed"), resp.Status, resp.Body)
					}
				}
				if o.status == http.StatusCreated {
					mine = append(mine, o)
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()

	// Every answer is a success or an expected refusal: no 5xx, no deadlock, no conflict.
	accepted := map[string]outcome{}
	counts := map[string]int{}
	for _, o := range outcomes {
		counts[fmt.Sprintf("%d %s", o.status, o.code)]++
		switch {
		case o.status == http.StatusCreated:
			if _, dup := accepted[o.txID]; dup {
				t.Errorf("transaction id %s answered twice", o.txID)
			}
			accepted[o.txID] = o
		case o.status == http.StatusUnprocessableEntity && (o.code == "insufficient_funds" || o.code == "same_account" || o.code == "amount_exceeds_original"):
		default:
			t.Errorf("unexpected answer %d %s to %+v", o.status, o.code, o)
		}
	}
	t.Logf("%d requests in %s by %d clients: %v", len(outcomes), duration, clients, counts)
	if len(accepted) < 1000 {
		t.Errorf("only %d transactions accepted: the test did not exercise the ledger", len(accepted))
	}

	// The books, read straight from PostgreSQL.
	ctx := context.Background()
	db, err := pgx.Connect(ctx, p.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)

	var rec struct {
		Currencies map[string]struct {
			Sum      int64 `json:"sum"`
			Balanced bool  `json:"balanced"`
		} `json:"currencies"`
	}
	admin.Must(t, http.StatusOK, "GET", "/admin/reconciliation", nil).JSON(t, &rec)
	if usd := rec.Currencies["USD"]; !usd.Balanced || usd.Sum != 0 {
		t.Errorf("reconciliation: %+v", rec.Currencies)
	}
	var negative int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM accounts WHERE NOT external AND balance < 0`).Scan(&negative); err != nil || negative != 0 {
		t.Errorf("negative balances: %d (%v)", negative, err)
	}

	// Exactly the accepted transactions exist (the seed deposits aside), each with two entries
	// that cancel out.
	rows, _ := db.Query(ctx, `SELECT t.id::text, t.type, coalesce(t.from_account_id::text, ''),
			coalesce(t.to_account_id::text, ''), t.amount, count(e.id), coalesce(sum(e.amount), 0)
		FROM transactions t LEFT JOIN entries e ON e.transaction_id = t.id
		GROUP BY t.id`)
	type stored struct {
		id, typ, from, to string
		amount, entries   int64
		entrySum          int64
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (stored, error) {
		var s stored
		err := r.Scan(&s.id, &s.typ, &s.from, &s.to, &s.amount, &s.entries, &s.entrySum)
		return s, err
	})
	if err != nil {
		t.Fatal(err)
	}
	seeds := len(accounts)
	if len(all) != len(accepted)+seeds {
		t.Errorf("%d transactions stored, want %d accepted + %d seed deposits", len(all), len(accepted), seeds)
	}
	expected := map[string]int64{}
	for _, a := range accounts {
		expected[a.id] = seedBalance
	}
	for _, s := range all {
		if s.entries != 2 || s.entrySum != 0 {
			t.Errorf("transaction %s has %d entries summing to %d", s.id, s.entries, s.entrySum)
		}
		o, ok := accepted[s.id]
		if !ok {
			continue // a seed deposit, or reported below as missing from the answers
		}
		if o.typ != s.typ || o.from != s.from || o.to != s.to || o.amount != s.amount {
			t.Errorf("transaction %s stored as %+v, answered as %+v", s.id, s, o)
		}
		delete(accepted, s.id)
		if o.from != "" {
			expected[o.from] -= o.amount
		}
		if o.to != "" {
			expected[o.to] += o.amount
		}
	}
	for id := range accepted {
		t.Errorf("transaction %s was answered 201 but is not stored", id)
	}
	for _, a := range accounts {
		if got := admin.Balance(t, a.id); got != expected[a.id] {
			t.Errorf("account %s: balance %d, accepted transactions imply %d", a.id, got, expected[a.id])
		}
	}
}

type account struct {
	id    string
	owner int
}

// outcome is one answered request of the bank test.
type outcome struct {
	status int
	code   string
	txID   string
	typ    string
	from   string
	to     string
	amount int64
	key    string
}

// atomicTransfers sends an atomic batch of 2-4 transfers among picked accounts: 201 gives one
// accepted outcome per transfer, a refusal one outcome carrying its code.
func atomicTransfers(t *testing.T, admin *testenv.Client, rng *rand.Rand, pick func() account) []outcome {
	n := 2 + rng.IntN(3)
	items := make([]any, n)
	planned := make([]outcome, n)
	for i := range n {
		from, to := pick(), pick()
		planned[i] = outcome{typ: "transfer", from: from.id, to: to.id, amount: 1 + rng.Int64N(5_000)}
		items[i] = map[string]any{"type": "transfer", "from_account_id": from.id, "to_account_id": to.id,
			"amount": planned[i].amount, "currency": "USD"}
	}
	resp, err := admin.Do("POST", "/transactions/batch", map[string]any{"atomic": true, "transactions": items})
	if err != nil {
		t.Errorf("atomic batch: %v", err)
		return nil
	}
	if resp.Status != http.StatusCreated {
		var m struct {
			Code  string `json:"code"`
			Index *int   `json:"index"`
		}
		resp.JSON(t, &m)
		if m.Index == nil {
			t.Errorf("atomic batch refused without an index: %s", resp.Body)
		}
		return []outcome{{status: resp.Status, code: m.Code, typ: "atomic"}}
	}
	var got struct {
		Results []struct {
			Status      int `json:"status"`
			Transaction struct {
				ID string `json:"id"`
			} `json:"transaction"`
		} `json:"results"`
	}
	resp.JSON(t, &got)
	if len(got.Results) != n {
		t.Errorf("atomic batch of %d answered %d results", n, len(got.Results))
		return nil
	}
	for i, r := range got.Results {
		planned[i].status, planned[i].txID = r.Status, r.Transaction.ID
	}
	return planned
}

// reverseOne reverses (part of) an accepted transaction; the outcome carries the reversal's
// own sides, as answered.
func reverseOne(t *testing.T, admin *testenv.Client, rng *rand.Rand, of outcome) outcome {
	body := map[string]any{}
	if rng.IntN(2) == 0 {
		body["amount"] = 1 + rng.Int64N(of.amount)
	}
	resp, err := admin.Do("POST", "/transactions/"+of.txID+"/reverse", body)
	if err != nil {
		t.Errorf("reversal: %v", err)
		return outcome{}
	}
	var m struct {
		ID            string  `json:"id"`
		Code          string  `json:"code"`
		FromAccountID *string `json:"from_account_id"`
		ToAccountID   *string `json:"to_account_id"`
		Amount        int64   `json:"amount"`
	}
	resp.JSON(t, &m)
	o := outcome{status: resp.Status, code: m.Code, txID: m.ID, typ: "reversal", amount: m.Amount}
	if m.FromAccountID != nil {
		o.from = *m.FromAccountID
	}
	if m.ToAccountID != nil {
		o.to = *m.ToAccountID
	}
	return o
}
