package ledger

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"txn/internal/event"
)

// holdBook is a book with one pending hold of 300 from alice's aUSD to bob's bUSD.
func holdBook(t *testing.T) (*book, *Hold) {
	t.Helper()
	b := newBook()
	b.st.Holds = map[uuid.UUID]*Hold{}
	p := pending(b.alice, "", TxRequest{Type: HoldCreate, From: b.aUSD, To: b.bUSD, Amount: 300, Currency: "USD", ExpiresIn: time.Hour})
	Apply([]*Pending{p}, b.st, now, seqIDs())
	if p.Result.Err != nil {
		t.Fatalf("creating the hold: %v", p.Result.Err)
	}
	h := *p.Result.Hold
	b.st.Holds[h.ID] = &h
	return b, &h
}

func settle(c Caller, typ TxType, h *Hold, amount int64) *Pending {
	return pending(c, "", TxRequest{Type: typ, Hold: h.ID, Amount: amount}) // as the service sends them
}

func TestApplyHolds(t *testing.T) {
	t.Run("a hold reserves available money without moving it", func(t *testing.T) {
		b := newBook()
		hold := func(amount int64) *Pending {
			return pending(b.alice, "", TxRequest{Type: HoldCreate, From: b.aUSD, Amount: amount, Currency: "USD", ExpiresIn: time.Minute})
		}
		batch := []*Pending{hold(600), hold(500), tr2(b, 500)}
		plan := Apply(batch, b.st, now, seqIDs())
		if codes := resultCodes(batch); !slices.Equal(codes, []Code{"", CodeInsufficientFunds, CodeInsufficientFunds}) {
			t.Fatalf("results %v: 600 of 1000 held leaves 400 for a hold or a transfer", codes)
		}
		if a := b.st.Accounts[b.aUSD]; a.Balance != 1000 || a.Held != 600 {
			t.Errorf("balance %d held %d, want 1000 and 600", a.Balance, a.Held)
		}
		if plan.Held[b.aUSD] != 600 || len(plan.Holds) != 1 || len(plan.Transactions) != 0 {
			t.Errorf("plan held %v holds %d transactions %d, want 600, 1, 0", plan.Held, len(plan.Holds), len(plan.Transactions))
		}
		h := batch[0].Result.Hold
		if h.Status != HoldPending || !h.ExpiresAt.Equal(now.Add(time.Minute)) || h.ToAccountID != nil {
			t.Errorf("hold %+v, want pending, expiring in a minute, without a to account", h)
		}
		if ev := plan.Events[0]; ev.Type != event.TypeHoldCreated || ev.Hold == nil || ev.Hold.FromUserID != b.alice.UserID {
			t.Errorf("event %+v, want hold.created with alice as owner", ev)
		}
	})
	t.Run("only the owner of the from account may hold its money", func(t *testing.T) {
		b := newBook()
		p := pending(b.bob, "", TxRequest{Type: HoldCreate, From: b.aUSD, Amount: 1, Currency: "USD", ExpiresIn: time.Minute})
		Apply([]*Pending{p}, b.st, now, seqIDs())
		if ErrorCode(p.Result.Err) != CodeNotFound {
			t.Errorf("bob holding alice's money: %v, want not_found", p.Result.Err)
		}
	})
	t.Run("a capture moves what it names and releases the rest", func(t *testing.T) {
		b, h := holdBook(t)
		p := settle(b.alice, HoldCapture, h, 120)
		plan := Apply([]*Pending{p}, b.st, now, seqIDs())
		if p.Result.Err != nil {
			t.Fatalf("capture: %v", p.Result.Err)
		}
		tx := p.Result.Tx
		if tx.Type != Transfer || tx.Amount != 120 || tx.HoldID == nil || *tx.HoldID != h.ID {
			t.Errorf("transaction %+v, want a transfer of 120 naming the hold", tx)
		}
		if a := b.st.Accounts[b.aUSD]; a.Balance != 880 || a.Held != 0 {
			t.Errorf("alice: balance %d held %d, want 880 and 0", a.Balance, a.Held)
		}
		if got := b.st.Accounts[b.bUSD].Balance; got != 220 {
			t.Errorf("bob's balance %d, want 220", got)
		}
		if len(plan.HoldSets) != 1 || plan.HoldSets[0] != (HoldSet{ID: h.ID, Status: HoldCaptured, Captured: 120}) {
			t.Errorf("hold writes %+v, want captured 120", plan.HoldSets)
		}
		if ev := plan.Events[0].Transaction; ev.HoldID == nil || *ev.HoldID != h.ID {
			t.Errorf("event %+v, want the capture to name its hold", ev)
		}
	})
	t.Run("a hold is captured once and never beyond its amount", func(t *testing.T) {
		b, h := holdBook(t)
		batch := []*Pending{settle(b.alice, HoldCapture, h, 301), settle(b.alice, HoldCapture, h, 0),
			settle(b.alice, HoldCapture, h, 1), settle(b.alice, HoldVoid, h, 0)}
		Apply(batch, b.st, now, seqIDs())
		want := []Code{CodeAmountExceedsHold, "", CodeHoldNotPending, CodeHoldNotPending}
		if codes := resultCodes(batch); !slices.Equal(codes, want) {
			t.Errorf("results %v, want %v", codes, want)
		}
		if batch[1].Result.Tx.Amount != 300 {
			t.Errorf("a capture without amount moved %d, want the whole 300", batch[1].Result.Tx.Amount)
		}
	})
	t.Run("a void releases the hold", func(t *testing.T) {
		b, h := holdBook(t)
		p := settle(b.alice, HoldVoid, h, 0)
		plan := Apply([]*Pending{p}, b.st, now, seqIDs())
		if p.Result.Err != nil || p.Result.Hold.Status != HoldVoided {
			t.Fatalf("void: %+v", p.Result)
		}
		if a := b.st.Accounts[b.aUSD]; a.Balance != 1000 || a.Held != 0 || plan.Held[b.aUSD] != 0 {
			t.Errorf("alice: balance %d held %d planned %v, want 1000, 0, 0", a.Balance, a.Held, plan.Held)
		}
		if plan.Events[0].Type != event.TypeHoldVoided {
			t.Errorf("event %s, want hold.voided", plan.Events[0].Type)
		}
	})
	t.Run("the receiver may not settle a hold: it does not exist for it", func(t *testing.T) {
		b, h := holdBook(t)
		batch := []*Pending{settle(b.bob, HoldCapture, h, 0), settle(b.bob, HoldVoid, h, 0)}
		Apply(batch, b.st, now, seqIDs())
		if codes := resultCodes(batch); !slices.Equal(codes, []Code{CodeNotFound, CodeNotFound}) {
			t.Errorf("results %v, want not_found twice", codes)
		}
	})
	t.Run("a hold past its expiry is not pending: only the expiry may settle it", func(t *testing.T) {
		b, h := holdBook(t)
		later := h.ExpiresAt
		batch := []*Pending{settle(b.alice, HoldCapture, h, 0), settle(b.alice, HoldVoid, h, 0),
			settle(Caller{Admin: true}, HoldExpire, h, 0), settle(Caller{Admin: true}, HoldExpire, h, 0)}
		plan := Apply(batch, b.st, later, seqIDs())
		want := []Code{CodeHoldNotPending, CodeHoldNotPending, "", CodeHoldNotPending}
		if codes := resultCodes(batch); !slices.Equal(codes, want) {
			t.Errorf("results %v, want %v (the second expiry finds it expired)", codes, want)
		}
		if len(plan.Events) != 1 || plan.Events[0].Type != event.TypeHoldExpired {
			t.Errorf("events %v, want one hold.expired", plan.Events)
		}
		if b.st.Accounts[b.aUSD].Held != 0 {
			t.Errorf("held %d after the expiry, want 0", b.st.Accounts[b.aUSD].Held)
		}
	})
	t.Run("an expiry before the hold's time does nothing", func(t *testing.T) {
		b, h := holdBook(t)
		p := settle(Caller{Admin: true}, HoldExpire, h, 0)
		plan := Apply([]*Pending{p}, b.st, now, seqIDs())
		if ErrorCode(p.Result.Err) != CodeHoldNotPending || len(plan.Events) != 0 || b.st.Accounts[b.aUSD].Held != 300 {
			t.Errorf("early expiry: %v, %d events, held %d; want hold_not_pending, none, 300",
				p.Result.Err, len(plan.Events), b.st.Accounts[b.aUSD].Held)
		}
	})
	t.Run("a capture to a frozen account fails and keeps the hold", func(t *testing.T) {
		b, h := holdBook(t)
		b.st.Accounts[b.bUSD].Status = AccountFrozen
		p := settle(b.alice, HoldCapture, h, 0)
		plan := Apply([]*Pending{p}, b.st, now, seqIDs())
		if ErrorCode(p.Result.Err) != CodeAccountFrozen || h.Status != HoldPending || b.st.Accounts[b.aUSD].Held != 300 || len(plan.HoldSets) != 0 {
			t.Errorf("capture to a frozen account: %v, hold %s, held %d", p.Result.Err, h.Status, b.st.Accounts[b.aUSD].Held)
		}
	})
}

// tr2 is a transfer of amount from alice's aUSD to bob.
func tr2(b *book, amount int64) *Pending {
	return pending(b.alice, "", tr(b.aUSD, b.bUSD, amount, "USD"))
}
