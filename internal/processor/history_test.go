package processor_test

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type entryJSON struct {
	TransactionID string `json:"transaction_id"`
	Amount        int64  `json:"amount"`
	BalanceAfter  int64  `json:"balance_after"`
	CreatedAt     string `json:"created_at"`
	Type          string `json:"type"`
	Description   string `json:"description"`
}

type statementJSON struct {
	AccountID      string      `json:"account_id"`
	Currency       string      `json:"currency"`
	From           string      `json:"from"`
	To             string      `json:"to"`
	OpeningBalance int64       `json:"opening_balance"`
	ClosingBalance int64       `json:"closing_balance"`
	Entries        []entryJSON `json:"entries"`
}

func rfc(t time.Time) string { return url.QueryEscape(t.UTC().Format(time.RFC3339Nano)) }

// TestHistory checks the balance at a point in time and statements (API.md, "Point in time and
// statements") against entries written through the API.
func TestHistory(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	acc := f.admin.CreateAccount(t, f.alice.ID, "USD")
	f.admin.Deposit(t, acc, 1000, "USD")
	f.ac.Must(t, http.StatusCreated, "POST", "/transactions", with(withdrawal(acc, 300, "USD"), "description", "=HYPERLINK(\"x\")"))
	f.ac.Must(t, http.StatusCreated, "POST", "/transactions", transfer(acc, f.bUSD, 200, "USD"))
	// The account's history, oldest first: balances 1000, 700, 500.
	var list struct{ Data []entryJSON }
	f.ac.Must(t, http.StatusOK, "GET", "/accounts/"+acc+"/entries", nil).JSON(t, &list)
	if len(list.Data) != 3 {
		t.Fatalf("%d entries, want 3", len(list.Data))
	}
	var at [3]time.Time
	for i := range 3 {
		e := list.Data[2-i]
		ts, err := time.Parse(time.RFC3339Nano, e.CreatedAt)
		if err != nil {
			t.Fatal(err)
		}
		at[i] = ts
	}
	balanceAt := func(t *testing.T, when time.Time) int64 {
		t.Helper()
		var b struct {
			AccountID string `json:"account_id"`
			At        string `json:"at"`
			Balance   int64  `json:"balance"`
		}
		f.ac.Must(t, http.StatusOK, "GET", "/accounts/"+acc+"/balance?at="+rfc(when), nil).JSON(t, &b)
		if b.AccountID != acc {
			t.Errorf("balance names account %s, want %s", b.AccountID, acc)
		}
		return b.Balance
	}

	t.Run("before the first entry the balance is 0", func(t *testing.T) {
		if b := balanceAt(t, at[0].Add(-time.Microsecond)); b != 0 {
			t.Errorf("balance %d, want 0", b)
		}
	})
	t.Run("at an entry's time the balance includes it", func(t *testing.T) {
		for i, want := range []int64{1000, 700, 500} {
			if b := balanceAt(t, at[i]); b != want {
				t.Errorf("balance at entry %d's time %d, want %d", i, b, want)
			}
		}
	})
	t.Run("long after the last entry the balance is the account's", func(t *testing.T) {
		if b := balanceAt(t, time.Now().Add(time.Hour)); b != 500 {
			t.Errorf("balance %d, want 500", b)
		}
	})
	t.Run("a time with an offset means the same instant", func(t *testing.T) {
		local := at[1].In(time.FixedZone("", 5*3600+1800)).Format(time.RFC3339Nano)
		var b struct{ Balance int64 }
		f.ac.Must(t, http.StatusOK, "GET", "/accounts/"+acc+"/balance?at="+url.QueryEscape(local), nil).JSON(t, &b)
		if b.Balance != 700 {
			t.Errorf("balance at %s: %d, want 700", local, b.Balance)
		}
	})

	t.Run("a statement holds the entries of [from, to), oldest first, between its balances", func(t *testing.T) {
		var st statementJSON
		f.ac.Must(t, http.StatusOK, "GET", "/accounts/"+acc+"/statement?from="+rfc(at[1])+"&to="+rfc(at[2]), nil).JSON(t, &st)
		if st.AccountID != acc || st.Currency != "USD" {
			t.Errorf("statement of %s in %s, want %s in USD", st.AccountID, st.Currency, acc)
		}
		if len(st.Entries) != 1 || st.Entries[0].Amount != -300 || st.Entries[0].Type != "withdrawal" {
			t.Errorf("entries %+v, want the withdrawal of 300 alone", st.Entries)
		}
		if st.OpeningBalance != 1000 || st.ClosingBalance != 700 {
			t.Errorf("opening %d closing %d, want 1000 and 700", st.OpeningBalance, st.ClosingBalance)
		}
	})
	t.Run("a statement over the whole history adds up", func(t *testing.T) {
		var st statementJSON
		f.ac.Must(t, http.StatusOK, "GET", "/accounts/"+acc+"/statement?from="+rfc(at[0].Add(-time.Hour))+"&to="+rfc(time.Now().Add(time.Hour)), nil).JSON(t, &st)
		sum := st.OpeningBalance
		for i, e := range st.Entries {
			sum += e.Amount
			if i > 0 && e.CreatedAt < st.Entries[i-1].CreatedAt {
				t.Errorf("entry %d is older than the one before", i)
			}
		}
		if len(st.Entries) != 3 || st.OpeningBalance != 0 || st.ClosingBalance != 500 || sum != st.ClosingBalance {
			t.Errorf("%d entries, opening %d, closing %d, opening+entries %d; want 3, 0, 500, 500", len(st.Entries), st.OpeningBalance, st.ClosingBalance, sum)
		}
	})
	t.Run("each line is its entry with its transaction's type and description", func(t *testing.T) {
		var st statementJSON
		f.ac.Must(t, http.StatusOK, "GET", "/accounts/"+acc+"/statement?from="+rfc(at[0])+"&to="+rfc(time.Now().Add(time.Hour)), nil).JSON(t, &st)
		if len(st.Entries) != len(list.Data) {
			t.Fatalf("%d lines, want %d", len(st.Entries), len(list.Data))
		}
		for i, l := range st.Entries {
			e := list.Data[len(list.Data)-1-i]
			var tx struct {
				Type, Description string
				CreatedAt         string `json:"created_at"`
			}
			f.ac.Must(t, http.StatusOK, "GET", "/transactions/"+l.TransactionID, nil).JSON(t, &tx)
			if l.TransactionID != e.TransactionID || l.Amount != e.Amount || l.BalanceAfter != e.BalanceAfter || l.CreatedAt != e.CreatedAt {
				t.Errorf("line %d %+v, want the entry %+v", i, l, e)
			}
			if l.Type != tx.Type || l.Description != tx.Description || l.CreatedAt != tx.CreatedAt {
				t.Errorf("line %d type %q description %q at %s, want the transaction's %q %q %s", i, l.Type, l.Description, l.CreatedAt, tx.Type, tx.Description, tx.CreatedAt)
			}
		}
	})
	t.Run("an empty period has no entries and equal balances", func(t *testing.T) {
		var st statementJSON
		f.ac.Must(t, http.StatusOK, "GET", "/accounts/"+acc+"/statement?from="+rfc(time.Now().Add(time.Hour))+"&to="+rfc(time.Now().Add(2*time.Hour)), nil).JSON(t, &st)
		if st.Entries == nil || len(st.Entries) != 0 || st.OpeningBalance != 500 || st.ClosingBalance != 500 {
			t.Errorf("statement %+v, want [] between 500 and 500", st)
		}
	})
	t.Run("as CSV, a header row and one row per entry, formulas kept as text", func(t *testing.T) {
		r := f.ac.Must(t, http.StatusOK, "GET", "/accounts/"+acc+"/statement?from="+rfc(at[0])+"&to="+rfc(time.Now().Add(time.Hour)), nil, "Accept", "text/csv")
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("Content-Type %q, want text/csv", ct)
		}
		rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
		if err != nil {
			t.Fatalf("not CSV: %v: %s", err, r.Body)
		}
		if len(rows) != 4 || strings.Join(rows[0], ",") != "created_at,transaction_id,type,amount,balance_after,description" {
			t.Fatalf("rows %q, want a header and 3 entries", rows)
		}
		if rows[2][2] != "withdrawal" || rows[2][3] != "-300" || rows[2][4] != "700" {
			t.Errorf("second entry %q, want the withdrawal of 300 leaving 700", rows[2])
		}
		if rows[2][5] != `'=HYPERLINK("x")` {
			t.Errorf("description %q, want it quoted as text", rows[2][5])
		}
	})

	bad := "/accounts/" + acc
	runRefused(t, f.db, []apiCase{
		{name: "balance without at", c: f.ac, method: "GET", path: bad + "/balance", status: 400, code: "validation_failed", field: "at"},
		{name: "balance at a date without a time", c: f.ac, method: "GET", path: bad + "/balance?at=2026-01-01", status: 400, code: "validation_failed", field: "at"},
		{name: "statement without from", c: f.ac, method: "GET", path: bad + "/statement?to=2026-01-01T00:00:00Z", status: 400, code: "validation_failed", field: "from"},
		{name: "statement ending before it starts", c: f.ac, method: "GET", path: bad + "/statement?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", status: 400, code: "validation_failed", field: "to"},
		{name: "statement over more than 366 days", c: f.ac, method: "GET", path: bad + "/statement?from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", status: 400, code: "validation_failed", field: "to"},
		{name: "another user's balance", c: f.bc, method: "GET", path: bad + "/balance?at=2026-01-01T00:00:00Z", status: 404, code: "not_found"},
		{name: "another user's statement", c: f.bc, method: "GET", path: bad + "/statement?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z", status: 404, code: "not_found"},
		{name: "an unknown account's balance", c: f.admin, method: "GET", path: "/accounts/00000000-0000-4000-8000-000000000000/balance?at=2026-01-01T00:00:00Z", status: 404, code: "not_found"},
	})
}
