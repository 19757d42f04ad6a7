package processor_test

import (
	"context"
	"net/http"
	"testing"

	"txn/internal/ledger"
)

// TestPurge checks that a tag whose users dealt with untagged users is refused untouched, and
// that a clean tag is deleted whole, with the books still balanced and the users' keys dead.
func TestPurge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	admin := f.admin
	// Clean: two tagged users dealing only with each other and the outside world.
	clean1 := admin.CreateUser(t, "clean1", "purge-clean", "other")
	clean2 := admin.CreateUser(t, "clean2", "purge-clean")
	c1USD := admin.CreateAccount(t, clean1.ID, "USD")
	c1EUR := admin.CreateAccount(t, clean1.ID, "EUR")
	c2USD := admin.CreateAccount(t, clean2.ID, "USD")
	admin.Deposit(t, c1USD, 1_000, "USD")
	admin.Deposit(t, c1EUR, 500, "EUR")
	c1, c2 := f.p.Client(clean1.APIKey), f.p.Client(clean2.APIKey)
	var cleanTx txJSON
	c1.Must(t, http.StatusCreated, "POST", "/transactions", transfer(c1USD, c2USD, 300, "USD"),
		"Idempotency-Key", "clean-1").JSON(t, &cleanTx)
	c2.Must(t, http.StatusCreated, "POST", "/transactions", withdrawal(c2USD, 100, "USD"))
	// a refusal stored under a key of a purged user
	assertProblem(t, do(t, c2, "POST", "/transactions", withdrawal(c2USD, 10_000, "USD"), "Idempotency-Key", "clean-2"),
		http.StatusUnprocessableEntity, "insufficient_funds")

	// Dirty: a tagged user paid an untagged one; another was paid by an untagged one.
	dirty1 := admin.CreateUser(t, "dirty1", "purge-dirty")
	d1USD := admin.CreateAccount(t, dirty1.ID, "USD")
	admin.Deposit(t, d1USD, 1_000, "USD")
	f.p.Client(dirty1.APIKey).Must(t, http.StatusCreated, "POST", "/transactions", transfer(d1USD, f.bUSD, 50, "USD"))
	dirty2 := admin.CreateUser(t, "dirty2", "purge-dirty-in")
	d2EUR := admin.CreateAccount(t, dirty2.ID, "EUR")
	f.ac.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.aEUR, d2EUR, 70, "EUR"))

	for _, tag := range []string{"purge-dirty", "purge-dirty-in"} {
		t.Run("refused "+tag, func(t *testing.T) {
			before := snapshot(t, f.db)
			r := do(t, admin, "POST", "/admin/purge", obj("tag", tag))
			assertProblem(t, r, http.StatusConflict, "conflict")
			assertUnchanged(t, f.db, before)
		})
	}
	runRefused(t, f.db, []apiCase{
		{name: "user purging", c: c1, method: "POST", path: "/admin/purge", body: obj("tag", "purge-clean"), status: 403, code: "forbidden"},
		{name: "invalid tag", c: admin, method: "POST", path: "/admin/purge", body: obj("tag", "a b"), status: 400, code: "validation_failed", field: "tag"},
		{name: "no tag", c: admin, method: "POST", path: "/admin/purge", body: obj(), status: 400, code: "validation_failed", field: "tag"},
		{name: "unknown field", c: admin, method: "POST", path: "/admin/purge", body: obj("tag", "x", "force", true), status: 400, code: "invalid_json"},
		{name: "no token", c: f.anon, method: "POST", path: "/admin/purge", body: obj("tag", "purge-clean"), status: 401, code: "unauthorized"},
	})

	t.Run("unknown tag", func(t *testing.T) {
		before := snapshot(t, f.db)
		var res ledger.PurgeResult
		admin.Must(t, http.StatusOK, "POST", "/admin/purge", obj("tag", "nobody-has-this")).JSON(t, &res)
		if res != (ledger.PurgeResult{}) {
			t.Errorf("purged %+v", res)
		}
		assertUnchanged(t, f.db, before)
	})

	t.Run("clean", func(t *testing.T) {
		before := snapshot(t, f.db)
		keep := map[string]int64{}
		for _, id := range []string{f.aUSD, f.aUSD2, f.aEUR, f.bUSD, d1USD, d2EUR} {
			keep[id] = balance(t, f.db, id)
		}
		var res ledger.PurgeResult
		admin.Must(t, http.StatusOK, "POST", "/admin/purge", obj("tag", "purge-clean")).JSON(t, &res)
		if want := (ledger.PurgeResult{Users: 2, Accounts: 3, Transactions: 4}); res != want {
			t.Errorf("purged %+v, want %+v", res, want)
		}
		// two users, three accounts, four transactions with their entries and both keys gone;
		// the outbox keeps the events that were published
		want := map[string]int64{"users": -2, "accounts": -3, "transactions": -4, "entries": -8, "outbox": 0, "idempotency_keys": -2}
		if d := rowDelta(t, f.db, before); d["users"] != want["users"] || d["accounts"] != want["accounts"] ||
			d["transactions"] != want["transactions"] || d["entries"] != want["entries"] ||
			d["idempotency_keys"] != want["idempotency_keys"] || d["outbox"] != 0 {
			t.Errorf("purge changed row counts by %v, want %v", d, want)
		}
		for id, b := range keep {
			if got := balance(t, f.db, id); got != b {
				t.Errorf("account %s of a kept user: balance %d, was %d", id, got, b)
			}
		}

		var rec struct {
			Currencies map[string]struct {
				AccountsTotal int64 `json:"accounts_total"`
				ExternalTotal int64 `json:"external_total"`
				Sum           int64 `json:"sum"`
				Balanced      bool  `json:"balanced"`
			} `json:"currencies"`
		}
		admin.Must(t, http.StatusOK, "GET", "/admin/reconciliation", nil).JSON(t, &rec)
		wantTotals := map[string]int64{
			"USD": keep[f.aUSD] + keep[f.aUSD2] + keep[f.bUSD] + keep[d1USD],
			"EUR": keep[f.aEUR] + keep[d2EUR],
		}
		for cur, total := range wantTotals {
			c := rec.Currencies[cur]
			if !c.Balanced || c.Sum != 0 || c.AccountsTotal != total || c.ExternalTotal != -total {
				t.Errorf("reconciliation %s: %+v, want accounts_total %d balanced", cur, c, total)
			}
		}
		var orphans int
		if err := f.db.QueryRow(context.Background(), `SELECT
				(SELECT count(*) FROM users WHERE tags @> ARRAY['purge-clean']) +
				(SELECT count(*) FROM idempotency_keys WHERE scope = ANY($1)) +
				(SELECT count(*) FROM entries WHERE transaction_id = $2)`,
			[]string{clean1.ID, clean2.ID}, cleanTx.ID).Scan(&orphans); err != nil || orphans != 0 {
			t.Errorf("%d rows of the purged users left (%v)", orphans, err)
		}

		// their keys are dead at once, their things are gone
		assertProblem(t, do(t, c1, "GET", "/users/"+clean1.ID, nil), http.StatusUnauthorized, "unauthorized")
		assertProblem(t, do(t, c2, "POST", "/transactions", withdrawal(c2USD, 1, "USD")), http.StatusUnauthorized, "unauthorized")
		for _, path := range []string{"/users/" + clean1.ID, "/users/" + clean2.ID, "/accounts/" + c1USD, "/accounts/" + c1EUR,
			"/accounts/" + c2USD, "/accounts/" + c2USD + "/entries", "/transactions/" + cleanTx.ID} {
			assertProblem(t, do(t, admin, "GET", path, nil), http.StatusNotFound, "not_found")
		}
		// the dirty users are still there
		admin.Must(t, http.StatusOK, "GET", "/users/"+dirty1.ID, nil)
		admin.Must(t, http.StatusOK, "GET", "/accounts/"+d2EUR, nil)
	})
}
