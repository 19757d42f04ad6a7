package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"txn/internal/ledger"
)

// The statement's hand-written JSON is byte for byte what encoding/json writes.
func TestAppendStatementJSON(t *testing.T) {
	at := time.Date(2026, 1, 31, 23, 59, 59, 123456000, time.UTC)
	for _, desc := range []string{"", "rent", `say "hi"`, `back\\slash`, "tab\there", "<b>&amp;</b>", "café ☕", "line\nbreak", "\x00\x1f", "\u2028"} {
		t.Run(desc, func(t *testing.T) {
			st := &ledger.Statement{AccountID: uuid.New(), Currency: "USD", From: at.Add(-time.Hour), To: at,
				OpeningBalance: -5, ClosingBalance: 995, Entries: []ledger.StatementLine{
					{Entry: ledger.Entry{TransactionID: uuid.New(), Amount: 1000, BalanceAfter: 995, CreatedAt: at.Add(-time.Minute)}, Type: ledger.Deposit, Description: desc},
					{Entry: ledger.Entry{TransactionID: uuid.New(), Amount: -1, BalanceAfter: 994, CreatedAt: at.Add(-time.Second).Truncate(time.Second)}, Type: ledger.Transfer, Description: desc},
				}}
			want, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(appendStatementJSON(nil, st)); got != string(want)+"\n" {
				t.Errorf("hand-written\n%s\nencoding/json\n%s", got, want)
			}
		})
	}
	t.Run("no entries is an empty list", func(t *testing.T) {
		st := &ledger.Statement{AccountID: uuid.New(), Currency: "EUR", From: at, To: at.Add(time.Hour), Entries: []ledger.StatementLine{}}
		want, _ := json.Marshal(st)
		if got := string(appendStatementJSON(nil, st)); got != string(want)+"\n" {
			t.Errorf("hand-written\n%s\nencoding/json\n%s", got, want)
		}
	})
}
