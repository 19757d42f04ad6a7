package ledger

import (
	"maps"
	"slices"
	"testing"
)

func grouped(g *AtomicGroup, ps ...*Pending) []*Pending {
	for _, p := range ps {
		p.Group = g
	}
	return ps
}

func TestApplyAtomicGroup(t *testing.T) {
	t.Run("a group whose requests all succeed is applied whole", func(t *testing.T) {
		b := newBook()
		before := b.balances()
		batch := grouped(&AtomicGroup{},
			pending(b.alice, "", tr(b.aUSD, b.bUSD, 600, "USD")),
			pending(b.alice, "", tr(b.aUSD, b.aUSD2, 400, "USD")))
		plan := Apply(batch, b.st, now, seqIDs())
		checkPlan(t, b, before, plan)
		if codes := resultCodes(batch); !slices.Equal(codes, []Code{"", ""}) {
			t.Errorf("results %v, want both applied", codes)
		}
	})

	t.Run("one failure takes back the whole group and leaves its neighbours alone", func(t *testing.T) {
		b := newBook()
		before := b.balances()
		g := &AtomicGroup{}
		batch := []*Pending{pending(b.bob, "", tr(b.bUSD, b.aUSD2, 10, "USD"))} // alone, before
		batch = append(batch, grouped(g,
			pending(b.alice, "k1", tr(b.aUSD, b.bUSD, 600, "USD")),
			pending(b.alice, "", tr(b.aUSD, b.aUSD2, 500, "USD")), // 400 left: fails
			pending(b.alice, "", tr(b.aUSD2, b.bUSD, 1, "USD")))...)
		batch = append(batch, pending(b.alice, "", tr(b.aUSD, b.bUSD, 1000, "USD"))) // alone, after: the 1000 is still there
		plan := Apply(batch, b.st, now, seqIDs())
		checkPlan(t, b, before, plan)
		codes := resultCodes(batch)
		want := []Code{"", CodeInsufficientFunds, CodeInsufficientFunds, CodeInsufficientFunds, ""}
		if !slices.Equal(codes, want) {
			t.Fatalf("results %v, want %v", codes, want)
		}
		if len(plan.Transactions) != 2 {
			t.Errorf("%d transactions written, want the two outside the group", len(plan.Transactions))
		}
		if b.st.Accounts[b.aUSD].Balance != 0 || b.st.Accounts[b.bUSD].Balance != 100-10+1000 || b.st.Accounts[b.aUSD2].Balance != 10 {
			t.Errorf("balances %v", b.balances())
		}
		if len(plan.Keys) != 0 {
			t.Errorf("keys %v stored for a group that failed: they must stay unused", plan.Keys)
		}
		if len(plan.Released) != 1 || plan.Released[0].Key != "k1" {
			t.Errorf("released %v, want the group's key k1", plan.Released)
		}
		if g.Failed != batch[2] {
			t.Errorf("the group names %+v as its cause, want its second request", g.Failed)
		}
	})

	t.Run("a key of a failed group can be used again in the same batch", func(t *testing.T) {
		b := newBook()
		bad := grouped(&AtomicGroup{},
			pending(b.alice, "k", tr(b.aUSD, b.bUSD, 5, "USD")),
			pending(b.alice, "", tr(b.aUSD, b.bUSD, 5000, "USD")))
		retry := grouped(&AtomicGroup{}, pending(b.alice, "k", tr(b.aUSD, b.bUSD, 5, "USD")))
		batch := append(bad, retry...)
		plan := Apply(batch, b.st, now, seqIDs())
		if r := batch[2].Result; r.Tx == nil || r.Replayed {
			t.Fatalf("retry %+v, want applied afresh", r)
		}
		if len(plan.Keys) != 1 || len(plan.Transactions) != 1 {
			t.Errorf("%d keys and %d transactions, want 1 and 1", len(plan.Keys), len(plan.Transactions))
		}
	})

	t.Run("the plan's balances are those of before the group", func(t *testing.T) {
		b := newBook()
		batch := []*Pending{pending(b.alice, "", tr(b.aUSD, b.bUSD, 100, "USD"))}
		batch = append(batch, grouped(&AtomicGroup{},
			pending(b.alice, "", tr(b.aUSD, b.bUSD, 100, "USD")),
			pending(b.alice, "", tr(b.aEUR, b.bUSD, 1, "EUR")))...) // currency mismatch
		plan := Apply(batch, b.st, now, seqIDs())
		want := map[string]int64{"aUSD": 900, "bUSD": 200}
		got := map[string]int64{"aUSD": plan.Balances[b.aUSD], "bUSD": plan.Balances[b.bUSD]}
		if !maps.Equal(got, want) {
			t.Errorf("planned balances %v, want %v", got, want)
		}
		if _, ok := plan.Balances[b.aEUR]; ok {
			t.Error("an account only the failed group touched is in the plan")
		}
	})
}
