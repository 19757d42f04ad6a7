package processor_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestAtomicBatch checks POST /transactions/batch with "atomic": true (API.md, "Atomic
// batches"): every item or none.
func TestAtomicBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	type result struct {
		Status      int    `json:"status"`
		Replayed    bool   `json:"replayed"`
		Transaction txJSON `json:"transaction"`
	}
	type answer struct {
		Results []result `json:"results"`
	}
	keyed := func(item map[string]any, key string) map[string]any { return with(item, "idempotency_key", key) }
	atomic := func(items ...any) map[string]any { return obj("atomic", true, "transactions", items) }

	t.Run("all succeed: 201 and every item applied", func(t *testing.T) {
		a, b := balance(t, f.db, f.aUSD), balance(t, f.db, f.bUSD)
		var got answer
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions/batch", atomic(
			keyed(transfer(f.aUSD, f.bUSD, 100, "USD"), "ok-1"),
			keyed(transfer(f.aUSD, f.aUSD2, 50, "USD"), "ok-2"))).JSON(t, &got)
		if len(got.Results) != 2 || got.Results[0].Status != 201 || got.Results[1].Status != 201 || got.Results[0].Transaction.ID == "" {
			t.Fatalf("results %+v, want two 201s", got.Results)
		}
		if da, db := balance(t, f.db, f.aUSD)-a, balance(t, f.db, f.bUSD)-b; da != -150 || db != 100 {
			t.Errorf("balances moved %d and %d, want -150 and +100", da, db)
		}
	})
	t.Run("the same batch again replays it and writes nothing", func(t *testing.T) {
		before := snapshot(t, f.db)
		var got answer
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions/batch", atomic(
			keyed(transfer(f.aUSD, f.bUSD, 100, "USD"), "ok-1"),
			keyed(transfer(f.aUSD, f.aUSD2, 50, "USD"), "ok-2"))).JSON(t, &got)
		if len(got.Results) != 2 || !got.Results[0].Replayed || !got.Results[1].Replayed {
			t.Errorf("results %+v, want both replayed", got.Results)
		}
		assertUnchanged(t, f.db, before)
	})
	t.Run("one item short of funds: 422 naming it, nothing written", func(t *testing.T) {
		before := snapshot(t, f.db)
		r := do(t, f.ac, "POST", "/transactions/batch", atomic(
			keyed(transfer(f.aUSD, f.bUSD, 1, "USD"), "fix-1"),
			keyed(withdrawal(f.aUSD2, 1_000_000, "USD"), "fix-2"),
			transfer(f.aUSD, f.bUSD, 2, "USD")))
		p := assertProblem(t, r, http.StatusUnprocessableEntity, "insufficient_funds")
		var idx struct{ Index *int }
		r.JSON(t, &idx)
		if idx.Index == nil || *idx.Index != 1 {
			t.Errorf("index missing or not 1: %s", r.Body)
		}
		if !strings.Contains(p.Detail, "has 50 USD") {
			t.Errorf("detail %q is not the failing item's own", p.Detail)
		}
		assertUnchanged(t, f.db, before)
	})
	t.Run("corrected and sent again with the same keys, it is applied", func(t *testing.T) {
		var got answer
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions/batch", atomic(
			keyed(transfer(f.aUSD, f.bUSD, 1, "USD"), "fix-1"),
			keyed(withdrawal(f.aUSD2, 1, "USD"), "fix-2"))).JSON(t, &got)
		if len(got.Results) != 2 || got.Results[0].Replayed || got.Results[1].Replayed {
			t.Errorf("results %+v, want two new transactions", got.Results)
		}
	})
	t.Run("an invalid item: its problem and index, nothing written", func(t *testing.T) {
		before := snapshot(t, f.db)
		r := do(t, f.ac, "POST", "/transactions/batch", atomic(
			transfer(f.aUSD, f.bUSD, 1, "USD"),
			transfer(f.aUSD, f.bUSD, 1, "USD"),
			transfer(f.aUSD, f.bUSD, -5, "USD")))
		assertProblem(t, r, http.StatusBadRequest, "validation_failed", "amount")
		var idx struct{ Index *int }
		r.JSON(t, &idx)
		if idx.Index == nil || *idx.Index != 2 {
			t.Errorf("index missing or not 2: %s", r.Body)
		}
		assertUnchanged(t, f.db, before)
	})
	t.Run("another user's account in one item: 404, nothing written", func(t *testing.T) {
		before := snapshot(t, f.db)
		r := do(t, f.ac, "POST", "/transactions/batch", atomic(
			transfer(f.aUSD, f.bUSD, 1, "USD"),
			transfer(f.bUSD, f.aUSD, 1, "USD")))
		assertProblem(t, r, http.StatusNotFound, "not_found")
		assertUnchanged(t, f.db, before)
	})
	t.Run("atomic must be a boolean", func(t *testing.T) {
		before := snapshot(t, f.db)
		r := do(t, f.ac, "POST", "/transactions/batch", obj("atomic", "yes", "transactions", []any{transfer(f.aUSD, f.bUSD, 1, "USD")}))
		assertProblem(t, r, http.StatusBadRequest, "validation_failed", "atomic")
		assertUnchanged(t, f.db, before)
	})
}
