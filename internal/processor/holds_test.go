package processor_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
	"txn/internal/processor"
	"txn/internal/testenv"
)

// holdJSON is a hold as the API answers it.
type holdJSON struct {
	ID             string            `json:"id"`
	Status         string            `json:"status"`
	FromAccountID  string            `json:"from_account_id"`
	ToAccountID    *string           `json:"to_account_id"`
	Amount         int64             `json:"amount"`
	CapturedAmount int64             `json:"captured_amount"`
	Currency       string            `json:"currency"`
	Description    string            `json:"description"`
	Metadata       map[string]string `json:"metadata"`
	ExpiresAt      string            `json:"expires_at"`
	CreatedAt      string            `json:"created_at"`
}

// accountView is what GET /accounts/{id} says of the money.
type accountView struct {
	Balance   int64 `json:"balance"`
	Available int64 `json:"available"`
}

func (f *fixture) account(t *testing.T, id string) accountView {
	t.Helper()
	var a accountView
	f.admin.Must(t, http.StatusOK, "GET", "/accounts/"+id, nil).JSON(t, &a)
	return a
}

func (f *fixture) hold(t *testing.T, body map[string]any, headers ...string) holdJSON {
	t.Helper()
	var h holdJSON
	f.ac.Must(t, http.StatusCreated, "POST", "/holds", body, headers...).JSON(t, &h)
	return h
}

// outboxTypes counts the outbox's events about id (a hold or a transaction) by type.
func outboxTypes(t *testing.T, f *fixture, id string) map[string]int {
	t.Helper()
	rows, err := f.db.Query(context.Background(), `SELECT payload->>'type' FROM outbox
		WHERE payload->'hold'->>'id' = $1 OR payload->'transaction'->>'id' = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatal(err)
		}
		out[typ]++
	}
	return out
}

// TestHolds checks holds, captures and voids (API.md, "Holds").
func TestHolds(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	carol := f.admin.CreateUser(t, "carol")
	cc := f.p.Client(carol.APIKey)

	t.Run("a hold reserves available money and moves none", func(t *testing.T) {
		before := f.account(t, f.aUSD)
		h := f.hold(t, obj("from_account_id", f.aUSD, "to_account_id", f.bUSD, "amount", 2500, "currency", "USD",
			"description", "card auth", "metadata", obj("order", "42")))
		if h.Status != "pending" || h.Amount != 2500 || h.CapturedAmount != 0 || h.Metadata["order"] != "42" {
			t.Errorf("hold %+v, want pending 2500 with its metadata", h)
		}
		after := f.account(t, f.aUSD)
		if after.Balance != before.Balance || after.Available != before.Available-2500 {
			t.Errorf("account %+v after a hold of 2500 on %+v: the balance stays, available drops", after, before)
		}
		exp, err := time.Parse(time.RFC3339Nano, h.ExpiresAt)
		if created, _ := time.Parse(time.RFC3339Nano, h.CreatedAt); err != nil || exp.Sub(created) != time.Hour {
			t.Errorf("expires_at %s, created_at %s: want an hour by default", h.ExpiresAt, h.CreatedAt)
		}
		if n := outboxTypes(t, f, h.ID)["hold.created"]; n != 1 {
			t.Errorf("%d hold.created events, want 1", n)
		}
	})
	t.Run("either side's owner and the admin see a hold; anyone else finds none", func(t *testing.T) {
		h := f.hold(t, obj("from_account_id", f.aUSD, "to_account_id", f.bUSD, "amount", 1, "currency", "USD"))
		f.ac.Must(t, http.StatusOK, "GET", "/holds/"+h.ID, nil)
		f.bc.Must(t, http.StatusOK, "GET", "/holds/"+h.ID, nil)
		f.admin.Must(t, http.StatusOK, "GET", "/holds/"+h.ID, nil)
		assertProblem(t, do(t, cc, "GET", "/holds/"+h.ID, nil), http.StatusNotFound, "not_found")
	})
	t.Run("a hold beyond what is available is refused and writes nothing", func(t *testing.T) {
		avail := f.account(t, f.aUSD).Available
		before := snapshot(t, f.db)
		r := do(t, f.ac, "POST", "/holds", obj("from_account_id", f.aUSD, "amount", avail+1, "currency", "USD"))
		assertProblem(t, r, http.StatusUnprocessableEntity, "insufficient_funds")
		assertUnchanged(t, f.db, before)
	})
	t.Run("held money cannot be transferred", func(t *testing.T) {
		avail := f.account(t, f.aUSD).Available
		before := snapshot(t, f.db)
		r := do(t, f.ac, "POST", "/transactions", transfer(f.aUSD, f.bUSD, avail+1, "USD"))
		assertProblem(t, r, http.StatusUnprocessableEntity, "insufficient_funds")
		assertUnchanged(t, f.db, before)
	})
	t.Run("a partial capture moves that much as a transfer and releases the rest", func(t *testing.T) {
		h := f.hold(t, obj("from_account_id", f.aUSD, "to_account_id", f.bUSD, "amount", 1000, "currency", "USD", "description", "taxi"))
		a, b := f.account(t, f.aUSD), f.account(t, f.bUSD)
		var tx struct {
			txJSON
			HoldID *string `json:"hold_id"`
		}
		f.ac.Must(t, http.StatusCreated, "POST", "/holds/"+h.ID+"/capture", obj("amount", 640)).JSON(t, &tx)
		if tx.Type != "transfer" || tx.Amount != 640 || tx.HoldID == nil || *tx.HoldID != h.ID || tx.Description != "taxi" {
			t.Errorf("capture %+v, want a transfer of 640 naming the hold, with its description", tx)
		}
		a2, b2 := f.account(t, f.aUSD), f.account(t, f.bUSD)
		if a2.Balance != a.Balance-640 || a2.Available != a.Available+1000-640 || b2.Balance != b.Balance+640 {
			t.Errorf("after the capture alice %+v (was %+v), bob %+v (was %+v)", a2, a, b2, b)
		}
		var got holdJSON
		f.ac.Must(t, http.StatusOK, "GET", "/holds/"+h.ID, nil).JSON(t, &got)
		if got.Status != "captured" || got.CapturedAmount != 640 {
			t.Errorf("hold after the capture %+v, want captured 640", got)
		}
		var read struct {
			HoldID *string `json:"hold_id"`
		}
		f.bc.Must(t, http.StatusOK, "GET", "/transactions/"+tx.ID, nil).JSON(t, &read)
		if read.HoldID == nil || *read.HoldID != h.ID {
			t.Errorf("the transaction read back names hold %v, want %s", read.HoldID, h.ID)
		}
		before := snapshot(t, f.db)
		assertProblem(t, do(t, f.ac, "POST", "/holds/"+h.ID+"/capture", nil), http.StatusConflict, "hold_not_pending")
		assertProblem(t, do(t, f.ac, "POST", "/holds/"+h.ID+"/void", nil), http.StatusConflict, "hold_not_pending")
		assertUnchanged(t, f.db, before)
	})
	t.Run("a hold without a receiver is captured as a withdrawal", func(t *testing.T) {
		h := f.hold(t, obj("from_account_id", f.aUSD, "amount", 300, "currency", "USD"))
		var tx txJSON
		f.ac.Must(t, http.StatusCreated, "POST", "/holds/"+h.ID+"/capture", nil).JSON(t, &tx)
		if tx.Type != "withdrawal" || tx.Amount != 300 || tx.ToAccountID != nil {
			t.Errorf("capture %+v, want a withdrawal of the whole 300", tx)
		}
	})
	t.Run("capturing more than the hold is refused and writes nothing", func(t *testing.T) {
		h := f.hold(t, obj("from_account_id", f.aUSD, "amount", 300, "currency", "USD"))
		before := snapshot(t, f.db)
		r := do(t, f.ac, "POST", "/holds/"+h.ID+"/capture", obj("amount", 301))
		assertProblem(t, r, http.StatusUnprocessableEntity, "amount_exceeds_hold")
		assertUnchanged(t, f.db, before)
	})
	t.Run("a void releases the money; the hold then takes no capture", func(t *testing.T) {
		a := f.account(t, f.aUSD)
		h := f.hold(t, obj("from_account_id", f.aUSD, "amount", 700, "currency", "USD"))
		var v holdJSON
		f.ac.Must(t, http.StatusOK, "POST", "/holds/"+h.ID+"/void", nil).JSON(t, &v)
		if v.Status != "voided" {
			t.Errorf("void answered %+v, want status voided", v)
		}
		if got := f.account(t, f.aUSD); got != a {
			t.Errorf("account %+v after hold and void, want %+v", got, a)
		}
		assertProblem(t, do(t, f.ac, "POST", "/holds/"+h.ID+"/capture", nil), http.StatusConflict, "hold_not_pending")
		if n := outboxTypes(t, f, h.ID)["hold.voided"]; n != 1 {
			t.Errorf("%d hold.voided events, want 1", n)
		}
	})
	t.Run("only the payer's owner or the admin settles a hold", func(t *testing.T) {
		h := f.hold(t, obj("from_account_id", f.aUSD, "to_account_id", f.bUSD, "amount", 5, "currency", "USD"))
		before := snapshot(t, f.db)
		for _, settle := range []string{"/capture", "/void"} { // by the receiver
			assertProblem(t, do(t, f.bc, "POST", "/holds/"+h.ID+settle, nil), http.StatusNotFound, "not_found")
		}
		assertProblem(t, do(t, cc, "POST", "/holds/"+h.ID+"/void", nil), http.StatusNotFound, "not_found")
		assertUnchanged(t, f.db, before)
		f.admin.Must(t, http.StatusOK, "POST", "/holds/"+h.ID+"/void", nil)
	})
	t.Run("a repeated key replays the first answer", func(t *testing.T) {
		body := obj("from_account_id", f.aUSD, "amount", 11, "currency", "USD")
		h := f.hold(t, body, "Idempotency-Key", "hold-once")
		before := snapshot(t, f.db)
		r := f.ac.Must(t, http.StatusCreated, "POST", "/holds", body, "Idempotency-Key", "hold-once")
		var again holdJSON
		r.JSON(t, &again)
		if again.ID != h.ID || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay answered hold %s (replayed %q), want %s", again.ID, r.Header.Get("Idempotent-Replayed"), h.ID)
		}
		assertUnchanged(t, f.db, before)
		var tx txJSON
		f.ac.Must(t, http.StatusCreated, "POST", "/holds/"+h.ID+"/capture", nil, "Idempotency-Key", "capture-once").JSON(t, &tx)
		var tx2 txJSON
		r = f.ac.Must(t, http.StatusCreated, "POST", "/holds/"+h.ID+"/capture", nil, "Idempotency-Key", "capture-once")
		r.JSON(t, &tx2)
		if tx2.ID != tx.ID || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("capture replay answered %s, want %s", tx2.ID, tx.ID)
		}
		assertProblem(t, do(t, f.ac, "POST", "/holds", with(body, "amount", 12), "Idempotency-Key", "hold-once"),
			http.StatusUnprocessableEntity, "idempotency_key_reused")
	})
	t.Run("concurrent captures of one hold: exactly one moves money", func(t *testing.T) {
		h := f.hold(t, obj("from_account_id", f.aUSD, "to_account_id", f.bUSD, "amount", 50, "currency", "USD"))
		a := f.account(t, f.aUSD)
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[int]int{}
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := f.ac.Do("POST", "/holds/"+h.ID+"/capture", obj("amount", 50))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				statuses[r.Status]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if statuses[http.StatusCreated] != 1 || statuses[http.StatusConflict] != 19 {
			t.Errorf("answers %v, want one 201 and 19 409", statuses)
		}
		if got := f.account(t, f.aUSD); got.Balance != a.Balance-50 || got.Available != a.Available {
			t.Errorf("account %+v after one capture of 50 from %+v", got, a)
		}
	})
	t.Run("an account with a pending hold cannot be closed", func(t *testing.T) {
		var acc struct {
			ID string `json:"id"`
		}
		f.admin.Must(t, http.StatusCreated, "POST", "/accounts", obj("user_id", f.alice.ID, "currency", "USD", "overdraft_limit", 10)).JSON(t, &acc)
		h := f.hold(t, obj("from_account_id", acc.ID, "amount", 5, "currency", "USD"))
		if got := f.account(t, acc.ID); got.Balance != 0 || got.Available != -5 {
			t.Errorf("account %+v, want balance 0 and 5 held into the overdraft", got)
		}
		before := snapshot(t, f.db)
		r := do(t, f.admin, "PATCH", "/accounts/"+acc.ID, obj("status", "closed"))
		assertProblem(t, r, http.StatusConflict, "balance_not_zero")
		assertUnchanged(t, f.db, before)
		f.ac.Must(t, http.StatusOK, "POST", "/holds/"+h.ID+"/void", nil)
		f.admin.Must(t, http.StatusOK, "PATCH", "/accounts/"+acc.ID, obj("status", "closed"))
	})
}

// TestHoldRefusals checks that bad hold requests get the documented error and write nothing.
func TestHoldRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	base := obj("from_account_id", f.aUSD, "to_account_id", f.bUSD, "amount", 10, "currency", "USD")
	tooMany := map[string]any{}
	for i := range 21 {
		tooMany[string(rune('a'+i))] = "v"
	}
	var h holdJSON
	f.ac.Must(t, http.StatusCreated, "POST", "/holds", base).JSON(t, &h)
	missing := "/holds/0193a000-0000-7000-8000-000000000000"
	runRefused(t, f.db, []apiCase{
		{name: "expires_in_s 0", c: f.ac, method: "POST", path: "/holds", body: with(base, "expires_in_s", 0), status: 400, code: "validation_failed", field: "expires_in_s"},
		{name: "expires_in_s past 30 days", c: f.ac, method: "POST", path: "/holds", body: with(base, "expires_in_s", 2592001), status: 400, code: "validation_failed", field: "expires_in_s"},
		{name: "expires_in_s not an integer", c: f.ac, method: "POST", path: "/holds", body: with(base, "expires_in_s", 1.5), status: 400, code: "validation_failed", field: "expires_in_s"},
		{name: "expires_in_s a string", c: f.ac, method: "POST", path: "/holds", body: with(base, "expires_in_s", "60"), status: 400, code: "validation_failed", field: "expires_in_s"},
		{name: "no from account", c: f.ac, method: "POST", path: "/holds", body: with(base, "from_account_id", nil), status: 400, code: "validation_failed", field: "from_account_id"},
		{name: "amount 0", c: f.ac, method: "POST", path: "/holds", body: with(base, "amount", 0), status: 400, code: "validation_failed", field: "amount"},
		{name: "bad currency", c: f.ac, method: "POST", path: "/holds", body: with(base, "currency", "usd"), status: 400, code: "validation_failed", field: "currency"},
		{name: "too many metadata keys", c: f.ac, method: "POST", path: "/holds", body: with(base, "metadata", tooMany), status: 400, code: "validation_failed", field: "metadata"},
		{name: "unknown field", c: f.ac, method: "POST", path: "/holds", body: with(base, "expires_in", 60), status: 400, code: "invalid_json"},
		{name: "another user's account", c: f.bc, method: "POST", path: "/holds", body: base, status: 404, code: "not_found"},
		{name: "same account", c: f.ac, method: "POST", path: "/holds", body: with(base, "to_account_id", f.aUSD), status: 422, code: "same_account"},
		{name: "currency mismatch", c: f.ac, method: "POST", path: "/holds", body: with(base, "to_account_id", f.aEUR), status: 422, code: "currency_mismatch"},
		{name: "no such hold", c: f.ac, method: "POST", path: missing + "/capture", status: 404, code: "not_found"},
		{name: "not a hold id", c: f.ac, method: "GET", path: "/holds/nope", status: 404, code: "not_found"},
		{name: "capture amount 0", c: f.ac, method: "POST", path: "/holds/" + h.ID + "/capture", body: obj("amount", 0), status: 400, code: "validation_failed", field: "amount"},
		{name: "capture amount negative", c: f.ac, method: "POST", path: "/holds/" + h.ID + "/capture", body: obj("amount", -5), status: 400, code: "validation_failed", field: "amount"},
		{name: "no token", c: f.anon, method: "POST", path: "/holds", body: base, status: 401, code: "unauthorized"},
	})
}

// TestHoldExpiry checks that a pending hold past its expiry is expired by the processor within
// seconds, once, releasing its money.
func TestHoldExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	a := f.account(t, f.aUSD)
	h := f.hold(t, obj("from_account_id", f.aUSD, "amount", 400, "currency", "USD", "expires_in_s", 1))
	deadline := time.Now().Add(10 * time.Second)
	var got holdJSON
	for {
		f.ac.Must(t, http.StatusOK, "GET", "/holds/"+h.ID, nil).JSON(t, &got)
		if got.Status != "pending" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Run("the hold is expired within seconds", func(t *testing.T) {
		if got.Status != "expired" {
			t.Fatalf("status %q 10 s after a 1 s hold, want expired", got.Status)
		}
	})
	t.Run("its money is available again", func(t *testing.T) {
		if now := f.account(t, f.aUSD); now != a {
			t.Errorf("account %+v after the expiry, want %+v", now, a)
		}
	})
	t.Run("it takes no capture or void", func(t *testing.T) {
		before := snapshot(t, f.db)
		assertProblem(t, do(t, f.ac, "POST", "/holds/"+h.ID+"/capture", nil), http.StatusConflict, "hold_not_pending")
		assertProblem(t, do(t, f.ac, "POST", "/holds/"+h.ID+"/void", nil), http.StatusConflict, "hold_not_pending")
		assertUnchanged(t, f.db, before)
	})
	t.Run("one hold.expired event", func(t *testing.T) {
		if n := outboxTypes(t, f, h.ID)["hold.expired"]; n != 1 {
			t.Errorf("%d hold.expired events, want 1", n)
		}
	})
}

// TestHoldExpiryAcrossInstances has three processors on one database expire the same holds:
// each hold is expired once, with one event, and its money released once.
func TestHoldExpiryAcrossInstances(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for range 2 {
		testenv.StartProcessor(t, func(c *processor.Config) {
			c.MaxConns = 4
			c.DatabaseURL, c.DirectURL, c.AdminToken = f.p.Config.DatabaseURL, f.p.Config.DirectURL, f.p.AdminToken
		})
	}
	a := f.account(t, f.aUSD)
	const holds = 200
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < holds; i += 8 {
				r, err := f.ac.Do("POST", "/holds", obj("from_account_id", f.aUSD, "amount", 7, "currency", "USD", "expires_in_s", 1))
				if err != nil || r.Status != http.StatusCreated {
					t.Errorf("hold %d: %v %v", i, err, r)
					return
				}
			}
		}()
	}
	wg.Wait()
	ctx := context.Background()
	var pending int
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := f.db.QueryRow(ctx, `SELECT count(*) FROM holds WHERE status = 'pending'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Run("every hold is expired", func(t *testing.T) {
		var expired int
		if err := f.db.QueryRow(ctx, `SELECT count(*) FROM holds WHERE status = 'expired'`).Scan(&expired); err != nil || expired != holds {
			t.Errorf("%d expired, %d pending (%v), want %d expired", expired, pending, err, holds)
		}
		var late float64
		_ = f.db.QueryRow(ctx, `SELECT extract(epoch FROM max(updated_at - expires_at)) FROM holds`).Scan(&late)
		t.Logf("the latest expiry came %.2f s after its time", late)
	})
	t.Run("each with one event", func(t *testing.T) {
		var events, distinct int
		err := f.db.QueryRow(ctx, `SELECT count(*), count(DISTINCT payload->'hold'->>'id') FROM outbox WHERE payload->>'type' = 'hold.expired'`).Scan(&events, &distinct)
		if err != nil || events != holds || distinct != holds {
			t.Errorf("%d hold.expired events for %d holds (%v), want %d for %d", events, distinct, err, holds, holds)
		}
	})
	t.Run("their money released once", func(t *testing.T) {
		if got := f.account(t, f.aUSD); got != a {
			t.Errorf("account %+v after the expiries, want %+v", got, a)
		}
	})
}
