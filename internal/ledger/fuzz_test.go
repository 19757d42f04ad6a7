package ledger

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// FuzzApply plans batches built from arbitrary bytes against a few accounts and checks the
// money invariants on every plan: each request decided once (a transaction or an error), no
// customer balance below zero, each transaction's entries summing to zero, the balances
// written equal to the starting ones plus the entries, and the total unchanged.
func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 1, 2, 50, 1, 0, 2, 200, 2, 3, 1, 10})
	f.Add([]byte{3, 0, 1, 255, 0, 1, 0, 1, 4, 2, 2, 7, 1, 2, 0, 0})
	f.Add([]byte{0, 0, 0, 1, 5, 1, 1, 1, 5, 1, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		users := []uuid.UUID{uuid.New(), uuid.New()}
		external := ExternalAccountID("USD")
		accounts := []*AccountState{
			{ID: uuid.New(), UserID: users[0], Currency: "USD", Balance: 100},
			{ID: uuid.New(), UserID: users[1], Currency: "USD", Balance: 0},
			{ID: uuid.New(), UserID: users[1], Currency: "EUR", Balance: 50},
			{ID: external, Currency: "USD", Balance: -100, External: true},
		}
		st := &BatchState{Accounts: map[uuid.UUID]*AccountState{}, Keys: map[KeyRef]*KeyRecord{}}
		before := map[uuid.UUID]int64{}
		for _, a := range accounts {
			copied := *a
			st.Accounts[a.ID] = &copied
			before[a.ID] = a.Balance
		}
		var batch []*Pending
		for i := 0; i+4 <= len(data) && len(batch) < 64; i += 4 {
			op, from, to, amount := data[i]%4, accounts[int(data[i+1])%3], accounts[int(data[i+2])%3], int64(data[i+3])
			p := &Pending{Caller: Caller{Admin: op == 3}, Req: TxRequest{Amount: amount, Currency: "USD"}}
			switch op {
			case 0, 3:
				p.Req.Type, p.Req.From, p.Req.To = Transfer, from.ID, to.ID
				p.Caller.UserID = from.UserID
			case 1:
				p.Req.Type, p.Req.To, p.Caller = Deposit, to.ID, Caller{Admin: true}
			case 2:
				p.Req.Type, p.Req.From, p.Caller = Withdrawal, from.ID, Caller{UserID: from.UserID}
			}
			if data[i+3]%3 == 0 {
				p.Key = "k" + string(rune('a'+data[i+1]%3))
			}
			if p.Req.Validate(p.Caller) != nil {
				continue // refused before planning, as the API does
			}
			batch = append(batch, p)
		}
		plan := Apply(batch, st, time.Now(), uuid.New)

		for i, p := range batch {
			if (p.Result.Tx == nil) == (p.Result.Err == nil) {
				t.Fatalf("request %d: result %+v, want exactly one of a transaction and an error", i, p.Result)
			}
		}
		sums := map[uuid.UUID]int64{}
		moved := map[uuid.UUID]int64{}
		for _, e := range plan.Entries {
			sums[e.TransactionID] += e.Amount
			moved[e.AccountID] += e.Amount
		}
		for tx, s := range sums {
			if s != 0 {
				t.Fatalf("transaction %s: entries sum to %d", tx, s)
			}
		}
		var total, totalBefore int64
		for id, b := range before {
			after := b + moved[id]
			if nb, ok := plan.Balances[id]; ok && nb != after {
				t.Fatalf("account %s: balance written %d, entries imply %d", id, nb, after)
			}
			if !st.Accounts[id].External && after < 0 {
				t.Fatalf("account %s: balance %d below zero", id, after)
			}
			total, totalBefore = total+after, totalBefore+b
		}
		if total != totalBefore {
			t.Fatalf("total %d, was %d: money created or destroyed", total, totalBefore)
		}
	})
}
