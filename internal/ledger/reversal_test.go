package ledger

import (
	"slices"
	"testing"

	"github.com/google/uuid"
)

func TestApplyReversal(t *testing.T) {
	b := newBook()
	origID := b.aUSD // any id: the state says what it moved
	b.st.Reversals = map[uuid.UUID]*ReversalBase{origID: {Amount: 100, Reversed: 30}}
	admin := Caller{Admin: true}
	rev := func(amount int64) *Pending {
		return pending(admin, "", TxRequest{Type: Reversal, Reverses: origID, From: b.bUSD, To: b.aUSD, Amount: amount, Currency: "USD"})
	}
	batch := []*Pending{rev(50), rev(30), rev(0), rev(0)}
	plan := Apply(batch, b.st, now, seqIDs())
	codes := resultCodes(batch)
	want := []Code{"", CodeAmountExceedsOriginal, "", CodeAmountExceedsOriginal}
	if !slices.Equal(codes, want) {
		t.Fatalf("results %v, want %v (70 left: 50, then 30 is too much, then the 20 left, then nothing)", codes, want)
	}
	if batch[2].Result.Tx.Amount != 20 {
		t.Errorf("the default amount was %d, want the 20 left", batch[2].Result.Tx.Amount)
	}
	if ev := plan.Events[0].Transaction; ev.Reverses == nil || *ev.Reverses != origID || ev.Type != "reversal" {
		t.Errorf("event %+v, want a reversal naming the original", ev)
	}
	if b.st.Reversals[origID].Reversed != 100 {
		t.Errorf("reversed %d in all, want 100", b.st.Reversals[origID].Reversed)
	}
}
