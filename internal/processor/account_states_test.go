package processor_test

import (
	"net/http"
	"testing"
)

type accountJSON struct {
	ID             string `json:"id"`
	Balance        int64  `json:"balance"`
	Available      int64  `json:"available"`
	Status         string `json:"status"`
	OverdraftLimit int64  `json:"overdraft_limit"`
}

// TestAccountStates checks account states and overdraft limits (API.md, "Ledger additions").
func TestAccountStates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	read := func(t *testing.T, id string) accountJSON {
		t.Helper()
		var a accountJSON
		f.admin.Must(t, http.StatusOK, "GET", "/accounts/"+id, nil).JSON(t, &a)
		return a
	}
	patch := func(t *testing.T, id string, body map[string]any, want int) {
		t.Helper()
		if r := do(t, f.admin, "PATCH", "/accounts/"+id, body); r.Status != want {
			t.Fatalf("PATCH %v: %d %s, want %d", body, r.Status, r.Body, want)
		}
	}

	t.Run("a new account is active, without overdraft, all of its balance available", func(t *testing.T) {
		if a := read(t, f.aUSD); a.Status != "active" || a.OverdraftLimit != 0 || a.Available != a.Balance || a.Balance != 10_000 {
			t.Errorf("account %+v", a)
		}
	})
	t.Run("with an overdraft limit a debit may take the balance down to minus the limit", func(t *testing.T) {
		var a accountJSON
		f.admin.Must(t, http.StatusCreated, "POST", "/accounts", obj("user_id", f.alice.ID, "currency", "USD", "overdraft_limit", 500)).JSON(t, &a)
		if a.OverdraftLimit != 500 {
			t.Fatalf("opened %+v, want overdraft_limit 500", a)
		}
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", withdrawal(a.ID, 500, "USD"))
		if b := balance(t, f.db, a.ID); b != -500 {
			t.Errorf("balance %d, want -500", b)
		}
		before := snapshot(t, f.db)
		assertProblem(t, do(t, f.ac, "POST", "/transactions", withdrawal(a.ID, 1, "USD")), 422, "insufficient_funds")
		assertUnchanged(t, f.db, before)
		// Lowering the limit below what the balance uses is refused; raising it works.
		assertProblem(t, do(t, f.admin, "PATCH", "/accounts/"+a.ID, obj("overdraft_limit", 100)), 409, "conflict")
		patch(t, a.ID, obj("overdraft_limit", 600), http.StatusOK)
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", withdrawal(a.ID, 100, "USD"))
	})
	t.Run("a frozen account neither gives nor takes money until unfrozen", func(t *testing.T) {
		patch(t, f.bUSD, obj("status", "frozen"), http.StatusOK)
		if a := read(t, f.bUSD); a.Status != "frozen" {
			t.Errorf("status %q, want frozen", a.Status)
		}
		before := snapshot(t, f.db)
		assertProblem(t, do(t, f.ac, "POST", "/transactions", transfer(f.aUSD, f.bUSD, 1, "USD")), 422, "account_frozen")
		assertProblem(t, do(t, f.bc, "POST", "/transactions", transfer(f.bUSD, f.aUSD, 1, "USD")), 422, "account_frozen")
		assertProblem(t, do(t, f.admin, "POST", "/transactions", deposit(f.bUSD, 1, "USD")), 422, "account_frozen")
		assertUnchanged(t, f.db, before)
		patch(t, f.bUSD, obj("status", "active"), http.StatusOK)
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.aUSD, f.bUSD, 1, "USD"))
	})
	t.Run("closing needs a zero balance; a closed account stays closed", func(t *testing.T) {
		acc := f.admin.CreateAccount(t, f.alice.ID, "USD")
		f.admin.Deposit(t, acc, 50, "USD")
		assertProblem(t, do(t, f.admin, "PATCH", "/accounts/"+acc, obj("status", "closed")), 409, "balance_not_zero")
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", withdrawal(acc, 50, "USD"))
		patch(t, acc, obj("status", "closed"), http.StatusOK)
		assertProblem(t, do(t, f.admin, "POST", "/transactions", deposit(acc, 1, "USD")), 422, "account_frozen")
		assertProblem(t, do(t, f.admin, "PATCH", "/accounts/"+acc, obj("status", "active")), 409, "conflict")
	})

	runRefused(t, f.db, []apiCase{
		{name: "a user sets an overdraft limit", c: f.ac, method: "POST", path: "/accounts", body: obj("currency", "USD", "overdraft_limit", 10), status: 403, code: "forbidden"},
		{name: "a negative overdraft limit", c: f.admin, method: "POST", path: "/accounts", body: obj("user_id", f.alice.ID, "currency", "USD", "overdraft_limit", -1), status: 400, code: "validation_failed", field: "overdraft_limit"},
		{name: "a user changes an account", c: f.ac, method: "PATCH", path: "/accounts/" + f.aUSD, body: obj("status", "frozen"), status: 403, code: "forbidden"},
		{name: "an unknown status", c: f.admin, method: "PATCH", path: "/accounts/" + f.aUSD, body: obj("status", "paused"), status: 400, code: "validation_failed", field: "status"},
		{name: "an unknown account", c: f.admin, method: "PATCH", path: "/accounts/00000000-0000-4000-8000-000000000000", body: obj("status", "frozen"), status: 404, code: "not_found"},
		{name: "an unknown field", c: f.admin, method: "PATCH", path: "/accounts/" + f.aUSD, body: obj("state", "frozen"), status: 400, code: "invalid_json"},
	})
}
