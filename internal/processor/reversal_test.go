package processor_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
)

// TestReversal checks POST /transactions/{id}/reverse (API.md, "Reversals").
func TestReversal(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var tr txJSON
	f.ac.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.aUSD, f.bUSD, 1000, "USD")).JSON(t, &tr)
	reverse := func(t *testing.T, id string, body any, want int, headers ...string) txJSON {
		t.Helper()
		var rev txJSON
		f.admin.Must(t, want, "POST", "/transactions/"+id+"/reverse", body, headers...).JSON(t, &rev)
		return rev
	}

	t.Run("part of a transfer goes back from its receiver to its sender", func(t *testing.T) {
		a, b := balance(t, f.db, f.aUSD), balance(t, f.db, f.bUSD)
		rev := reverse(t, tr.ID, obj("amount", 300, "description", "refund", "metadata", obj("reason", "damaged")), http.StatusCreated)
		if rev.Type != "reversal" || rev.Amount != 300 || rev.Reverses == nil || *rev.Reverses != tr.ID {
			t.Errorf("reversal %+v, want type reversal of 300 reversing %s", rev, tr.ID)
		}
		if rev.FromAccountID == nil || *rev.FromAccountID != f.bUSD || rev.ToAccountID == nil || *rev.ToAccountID != f.aUSD {
			t.Errorf("reversal moves %v -> %v, want %s -> %s", rev.FromAccountID, rev.ToAccountID, f.bUSD, f.aUSD)
		}
		if da, db := balance(t, f.db, f.aUSD)-a, balance(t, f.db, f.bUSD)-b; da != 300 || db != -300 {
			t.Errorf("balances moved %+d and %+d, want +300 and -300", da, db)
		}
		var got txJSON
		f.ac.Must(t, http.StatusOK, "GET", "/transactions/"+rev.ID, nil).JSON(t, &got)
		if got.Reverses == nil || *got.Reverses != tr.ID || got.Metadata["reason"] != "damaged" {
			t.Errorf("read back %+v, want the link and the metadata", got)
		}
	})
	t.Run("more than is left is refused, and nothing moves", func(t *testing.T) {
		before := snapshot(t, f.db)
		r := do(t, f.admin, "POST", "/transactions/"+tr.ID+"/reverse", obj("amount", 701))
		assertProblem(t, r, http.StatusUnprocessableEntity, "amount_exceeds_original")
		assertUnchanged(t, f.db, before)
	})
	t.Run("without an amount, all that is left goes back; then nothing is left", func(t *testing.T) {
		rev := reverse(t, tr.ID, nil, http.StatusCreated)
		if rev.Amount != 700 {
			t.Errorf("reversed %d, want the 700 left", rev.Amount)
		}
		before := snapshot(t, f.db)
		assertProblem(t, do(t, f.admin, "POST", "/transactions/"+tr.ID+"/reverse", obj()), http.StatusUnprocessableEntity, "amount_exceeds_original")
		assertUnchanged(t, f.db, before)
	})
	t.Run("a deposit's reversal takes the money back out; the books stay balanced", func(t *testing.T) {
		var dep txJSON
		f.admin.Must(t, http.StatusCreated, "POST", "/transactions", deposit(f.aUSD2, 250, "USD")).JSON(t, &dep)
		rev := reverse(t, dep.ID, obj("amount", 250), http.StatusCreated)
		if rev.FromAccountID == nil || *rev.FromAccountID != f.aUSD2 || rev.ToAccountID != nil {
			t.Errorf("reversal of a deposit moves %v -> %v, want from %s to outside", rev.FromAccountID, rev.ToAccountID, f.aUSD2)
		}
		if b := balance(t, f.db, f.aUSD2); b != 0 {
			t.Errorf("balance %d after reversing the deposit, want 0", b)
		}
		var rec struct {
			Currencies map[string]struct{ Balanced bool } `json:"currencies"`
		}
		f.admin.Must(t, http.StatusOK, "GET", "/admin/reconciliation", nil).JSON(t, &rec)
		if !rec.Currencies["USD"].Balanced {
			t.Errorf("reconciliation %+v", rec)
		}
	})
	t.Run("the side giving the money back must have it", func(t *testing.T) {
		var dep txJSON
		f.admin.Must(t, http.StatusCreated, "POST", "/transactions", deposit(f.aUSD2, 100, "USD")).JSON(t, &dep)
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", withdrawal(f.aUSD2, 100, "USD"))
		before := snapshot(t, f.db)
		assertProblem(t, do(t, f.admin, "POST", "/transactions/"+dep.ID+"/reverse", obj()), http.StatusUnprocessableEntity, "insufficient_funds")
		assertUnchanged(t, f.db, before)
	})
	t.Run("concurrent reversals never return more than was moved", func(t *testing.T) {
		var x txJSON
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.aUSD, f.bUSD, 100, "USD")).JSON(t, &x)
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for range 20 {
			wg.Go(func() {
				r, err := f.admin.Do("POST", "/transactions/"+x.ID+"/reverse", obj("amount", 30))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				codes[r.Status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		var sum int64
		if err := f.db.QueryRow(context.Background(), `SELECT coalesce(sum(amount), 0) FROM transactions WHERE reverses = $1`, x.ID).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		if codes[201] != 3 || codes[422] != 17 || sum != 90 {
			t.Errorf("answers %v, reversed %d; want 3 reversals of 30 (90) and 17 refusals", codes, sum)
		}
	})
	t.Run("a replay with the same key is the same reversal", func(t *testing.T) {
		var x txJSON
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.aUSD, f.bUSD, 10, "USD")).JSON(t, &x)
		a := reverse(t, x.ID, obj("amount", 4), http.StatusCreated, "Idempotency-Key", "rev-1")
		b := reverse(t, x.ID, obj("amount", 4), http.StatusCreated, "Idempotency-Key", "rev-1")
		if a.ID != b.ID || b.Reverses == nil || *b.Reverses != x.ID {
			t.Errorf("replay %+v, first %+v", b, a)
		}
	})

	var rev txJSON
	f.admin.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.aUSD, f.bUSD, 5, "USD"))
	var list struct{ Data []txJSON }
	f.admin.Must(t, http.StatusOK, "GET", "/transactions?type=reversal&limit=1", nil).JSON(t, &list)
	if len(list.Data) == 1 {
		rev = list.Data[0]
	}
	runRefused(t, f.db, []apiCase{
		{name: "by a user", c: f.ac, method: "POST", path: "/transactions/" + tr.ID + "/reverse", body: obj("amount", 1), status: 403, code: "forbidden"},
		{name: "an unknown transaction", c: f.admin, method: "POST", path: "/transactions/00000000-0000-4000-8000-000000000000/reverse", body: obj(), status: 404, code: "not_found"},
		{name: "a reversal", c: f.admin, method: "POST", path: "/transactions/" + rev.ID + "/reverse", body: obj(), status: 409, code: "conflict"},
		{name: "a zero amount", c: f.admin, method: "POST", path: "/transactions/" + tr.ID + "/reverse", body: obj("amount", 0), status: 400, code: "validation_failed", field: "amount"},
		{name: "an unknown field", c: f.admin, method: "POST", path: "/transactions/" + tr.ID + "/reverse", body: obj("amout", 1), status: 400, code: "invalid_json"},
	})
}
