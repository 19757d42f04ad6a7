package processor_test

import (
	"net/http"
	"testing"

	"txn/internal/processor"
	"txn/internal/testenv"
)

// With MongoDB and ClickHouse unreachable, their read endpoints answer 503 while users,
// accounts and transactions go on as usual.
func TestReadModelsDownDoNotStopTransactions(t *testing.T) {
	p := testenv.StartProcessor(t, func(c *processor.Config) {
		c.MongoURL = "mongodb://" + testenv.FreeAddr(t) + "/txn"
		c.ClickHouseAddr = testenv.FreeAddr(t)
		c.ClickHouseDB = "txn"
	})
	admin := p.Client(p.AdminToken)
	u := admin.CreateUser(t, "reader")
	a := admin.CreateAccount(t, u.ID, "USD")
	b := admin.CreateAccount(t, u.ID, "USD")
	admin.Deposit(t, a, 1000, "USD")
	user := p.Client(u.APIKey)
	for _, path := range []string{"/users/" + u.ID + "/activity", "/users/" + u.ID + "/notifications", "/admin/analytics"} {
		c := admin
		if path != "/admin/analytics" {
			c = user
		}
		r := c.Must(t, http.StatusServiceUnavailable, "GET", path, nil)
		if m := r.Map(t); m["code"] != "unavailable" || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %s", path, r.Body)
		}
	}
	user.Must(t, http.StatusCreated, "POST", "/transactions", map[string]any{
		"type": "transfer", "from_account_id": a, "to_account_id": b, "amount": 400, "currency": "USD"})
	if got := user.Balance(t, b); got != 400 {
		t.Errorf("balance %d after the transfer, want 400", got)
	}
	// Authorization still comes first: another user's feed is not found, not unavailable.
	other := admin.CreateUser(t, "other")
	user.Must(t, http.StatusNotFound, "GET", "/users/"+other.ID+"/activity", nil)
	user.Must(t, http.StatusNotFound, "GET", "/users/"+other.ID+"/notifications", nil)
	admin.Must(t, http.StatusBadRequest, "GET", "/admin/analytics?from=yesterday", nil)
}
