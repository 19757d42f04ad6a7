package processor_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"

	"txn/internal/testenv"
)

// TestAccounts checks opening and reading accounts: a user may omit user_id, the admin names it.
func TestAccounts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	type account struct {
		ID        string `json:"id"`
		UserID    string `json:"user_id"`
		Currency  string `json:"currency"`
		Balance   int64  `json:"balance"`
		CreatedAt string `json:"created_at"`
	}
	for _, tc := range []struct {
		name string
		c    *testenv.Client
		body map[string]any
	}{
		{"user for itself", f.ac, obj("currency", "JPY")},
		{"user naming itself", f.ac, obj("user_id", f.alice.ID, "currency", "EUR")},
		{"admin for a user", f.admin, obj("user_id", f.alice.ID, "currency", "RUB")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, f.db)
			var a account
			tc.c.Must(t, http.StatusCreated, "POST", "/accounts", tc.body).JSON(t, &a)
			if a.UserID != f.alice.ID || a.Currency != tc.body["currency"] || a.Balance != 0 || uuid.Validate(a.ID) != nil {
				t.Errorf("opened %+v", a)
			}
			var got account
			f.ac.Must(t, http.StatusOK, "GET", "/accounts/"+a.ID, nil).JSON(t, &got)
			if got != a {
				t.Errorf("read %+v, opened %+v", got, a)
			}
			assertUTC(t, "account created_at", got.CreatedAt)
			if d := rowDelta(t, f.db, before); d["accounts"] < 1 || d["accounts"] > 2 || d["transactions"] != 0 {
				t.Errorf("opening an account wrote %v", d)
			}
		})
	}
	// the first JPY account brought the JPY external account with it: a deposit works
	var a struct {
		Data []account `json:"data"`
	}
	f.ac.Must(t, http.StatusOK, "GET", "/users/"+f.alice.ID+"/accounts", nil).JSON(t, &a)
	for _, acc := range a.Data {
		if acc.Currency == "JPY" {
			f.admin.Deposit(t, acc.ID, 5, "JPY")
			if b := balance(t, f.db, acc.ID); b != 5 {
				t.Errorf("JPY balance %d", b)
			}
		}
	}
}
