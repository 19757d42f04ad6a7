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
// with holds captured, voided and left to expire among the transfers, then checks the books:
// balanced, nothing below its limit, every accepted transaction stored exactly once with its
// entries, nothing stored for a refused one, every balance equal to what the accepted
// transactions imply, every account's held sum equal to its pending holds, and every hold
// settled at most once and never beyond its amount.
func TestBank(t *testing.T) {
	runBank(t, testenv.StartProcessor(t, func(c *processor.Config) { c.UserRate = 0 }))
}

// runBank is TestBank against p: one processor, or several behind a balancer.
func runBank(t *testing.T, p *testenv.Processor) {
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
				if rng.IntN(8) == 0 {
					// A hold, then a capture (sometimes two at once), a void, or its expiry.
					got := holdOne(t, p, keys, rng, pick)
					mu.Lock()
					outcomes = append(outcomes, got...)
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
		counts[fmt.Sprintf("%s %d %s", o.typ, o.status, o.code)]++
		switch {
		case o.typ == "hold" || o.typ == "void":
			if o.status != http.StatusCreated && o.status != http.StatusOK && o.code != "insufficient_funds" &&
				o.code != "same_account" && o.code != "hold_not_pending" {
				t.Errorf("unexpected answer %d %s to %+v", o.status, o.code, o)
			}
		case o.status == http.StatusConflict && o.code == "hold_not_pending": // a capture that lost to another or the expiry
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
	if err := db.QueryRow(ctx, `SELECT count(*) FROM accounts WHERE NOT external AND balance - held < 0`).Scan(&negative); err != nil || negative != 0 {
		t.Errorf("accounts with less than nothing available: %d (%v)", negative, err)
	}
	checkHolds(t, ctx, db)

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

// holdOne holds money from a picked account (to another, or to outside) with its owner's key,
// then captures it (whole or in part; sometimes twice at once, of which one must fail), voids
// it, or leaves it to expire. The outcomes are the hold's creation (typ "hold"), its void (typ
// "void") and its captures, which are transactions.
func holdOne(t *testing.T, p *testenv.Processor, keys []string, rng *rand.Rand, pick func() account) []outcome {
	from := pick()
	owner := p.Client(keys[from.owner])
	body := map[string]any{"from_account_id": from.id, "amount": 1 + rng.Int64N(3_000), "currency": "USD", "expires_in_s": 60}
	var to string
	if rng.IntN(4) != 0 {
		to = pick().id
		body["to_account_id"] = to
	}
	fate := rng.IntN(5) // 0, 1: capture; 2: two captures at once; 3: void; 4: expire
	if fate == 4 {
		body["expires_in_s"] = 1
	}
	resp, err := owner.Do("POST", "/holds", body)
	if err != nil {
		t.Errorf("hold: %v", err)
		return nil
	}
	var h struct {
		ID, Code string
		Amount   int64
	}
	resp.JSON(t, &h)
	out := []outcome{{status: resp.Status, code: h.Code, typ: "hold"}}
	if resp.Status != http.StatusCreated || fate == 4 {
		return out
	}
	if fate == 3 {
		r, err := owner.Do("POST", "/holds/"+h.ID+"/void", nil)
		if err != nil {
			t.Errorf("void: %v", err)
			return out
		}
		var m struct{ Code string }
		r.JSON(t, &m)
		return append(out, outcome{status: r.Status, code: m.Code, typ: "void"})
	}
	capture := map[string]any{}
	if rng.IntN(2) == 0 {
		capture["amount"] = 1 + rng.Int64N(h.Amount)
	}
	n := 1
	if fate == 2 {
		n = 2
	}
	captures := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range captures {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := owner.Do("POST", "/holds/"+h.ID+"/capture", capture)
			if err != nil {
				t.Errorf("capture: %v", err)
				return
			}
			var m struct {
				ID, Type, Code string
				Amount         int64
			}
			r.JSON(t, &m)
			captures[i] = outcome{status: r.Status, code: m.Code, txID: m.ID, typ: "capture", from: from.id, to: to, amount: m.Amount}
			if r.Status == http.StatusCreated {
				captures[i].typ = m.Type // stored as the transfer or withdrawal it is
			}
		}()
	}
	wg.Wait()
	if n == 2 && (captures[0].status == http.StatusCreated) == (captures[1].status == http.StatusCreated) {
		t.Errorf("two captures of hold %s at once answered %d and %d: want exactly one 201", h.ID, captures[0].status, captures[1].status)
	}
	return append(out, captures...)
}

// checkHolds waits for the holds left to expire, then checks every hold and held sum.
func checkHolds(t *testing.T, ctx context.Context, db *pgx.Conn) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var due int
	for {
		if err := db.QueryRow(ctx, `SELECT count(*) FROM holds WHERE status = 'pending' AND expires_at < now()`).Scan(&due); err != nil {
			t.Fatal(err)
		}
		if due == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var statuses map[string]int64
	rows, _ := db.Query(ctx, `SELECT status, count(*) FROM holds GROUP BY status`)
	type kv struct {
		K string
		V int64
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[kv])
	if err != nil {
		t.Fatal(err)
	}
	statuses = map[string]int64{}
	for _, x := range list {
		statuses[x.K] = x.V
	}
	t.Logf("holds by status: %v", statuses)
	for _, c := range []struct{ what, sql string }{
		{"holds past their expiry still pending 15 s later", `SELECT count(*) FROM holds WHERE status = 'pending' AND expires_at < now()`},
		{"accounts whose held sum differs from their pending holds", `SELECT count(*) FROM accounts a
			LEFT JOIN (SELECT from_account_id AS id, sum(amount) AS s FROM holds WHERE status = 'pending' GROUP BY 1) h ON h.id = a.id
			WHERE a.held <> coalesce(h.s, 0)`},
		{"holds captured more than once", `SELECT count(*) FROM (SELECT hold_id FROM transactions WHERE hold_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1) x`},
		{"holds whose capture differs from its record or passes its amount", `SELECT count(*) FROM holds h
			LEFT JOIN transactions t ON t.hold_id = h.id
			WHERE h.captured_amount <> coalesce(t.amount, 0) OR h.captured_amount > h.amount
			   OR (h.status = 'captured') <> (t.id IS NOT NULL)`},
	} {
		var n int
		if err := db.QueryRow(ctx, c.sql).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d (%v)", c.what, n, err)
		}
	}
	for _, st := range []string{"captured", "voided", "expired"} {
		if statuses[st] == 0 {
			t.Errorf("no hold ended %s: the test did not exercise it", st)
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
