package ledger

import (
	"time"

	"github.com/google/uuid"

	"txn/internal/event"
)

// HoldStatus is a hold's state: pending until captured, voided or expired, then final.
type HoldStatus string

const (
	HoldPending  HoldStatus = "pending"
	HoldCaptured HoldStatus = "captured"
	HoldVoided   HoldStatus = "voided"
	HoldExpired  HoldStatus = "expired"
)

// Hold is money reserved on an account (a two-phase transfer, as a card authorisation): it
// counts against the account's available balance until it is captured (moved, in one
// transaction), voided or expired (released).
type Hold struct {
	ID             uuid.UUID  `json:"id"`
	Status         HoldStatus `json:"status"`
	FromAccountID  uuid.UUID  `json:"from_account_id"`
	ToAccountID    *uuid.UUID `json:"to_account_id"`
	Amount         int64      `json:"amount"`
	CapturedAmount int64      `json:"captured_amount"`
	Currency       string     `json:"currency"`
	Description    string     `json:"description"`
	Metadata       Metadata   `json:"metadata"`
	ExpiresAt      time.Time  `json:"expires_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

// Hold expiry bounds (API.md), and the default.
const (
	MinHoldExpiry     = time.Second
	MaxHoldExpiry     = 30 * 24 * time.Hour
	DefaultHoldExpiry = time.Hour
)

// HoldSet is a settled hold to write: its final status and what was captured.
type HoldSet struct {
	ID       uuid.UUID
	Status   HoldStatus
	Captured int64
}

// setHeld records an account's new sum of pending holds.
func (p *Plan) setHeld(a *AccountState) {
	if p.Held == nil {
		p.Held = map[uuid.UUID]int64{}
	}
	p.Held[a.ID] = a.Held
}

// createHold reserves the request's amount on its from account, as a withdrawal (no to
// account) or a transfer would debit it, and records the pending hold.
func (a *applier) createHold(p *Pending) (*Hold, *Error) {
	r := p.Req
	from, to, err := sides(p, a.st)
	if err != nil {
		return nil, err
	}
	if from.Balance-from.Held-r.Amount < -from.OverdraftLimit {
		return nil, insufficient(from, r.Currency, r.Amount)
	}
	from.Held += r.Amount
	a.plan.setHeld(from)
	h := Hold{ID: a.newID(), Status: HoldPending, FromAccountID: r.From, Amount: r.Amount, Currency: r.Currency,
		Description: r.Description, Metadata: r.Metadata, ExpiresAt: a.now.Add(r.ExpiresIn), CreatedAt: a.now}
	if to != nil {
		h.ToAccountID = &r.To
	}
	a.plan.Holds = append(a.plan.Holds, h)
	a.plan.Events = append(a.plan.Events, holdEvent(a.newID(), p.RequestID, event.TypeHoldCreated, a.now, &h, from, to))
	return &h, nil
}

// settleable returns the request's hold and its from account if the request may settle it
// now: not_found for a hold the caller may not debit; hold_not_pending for one that is no
// longer pending, or, for a capture or void, past its expiry, or, for an expiry, not yet due
// (the expiry runs on the hold's time, so any instance may sweep it, once).
func (a *applier) settleable(p *Pending) (*Hold, *AccountState, *Error) {
	h := a.st.Holds[p.Req.Hold]
	if h == nil {
		return nil, nil, Errorf(CodeNotFound, "hold %s not found", p.Req.Hold)
	}
	from := a.st.Accounts[h.FromAccountID]
	if from == nil || !p.Caller.CanAccess(from.UserID) {
		return nil, nil, Errorf(CodeNotFound, "hold %s not found", p.Req.Hold)
	}
	due := !a.now.Before(h.ExpiresAt)
	switch {
	case h.Status != HoldPending:
		return nil, nil, Errorf(CodeHoldNotPending, "hold %s is %s", h.ID, h.Status)
	case p.Req.Type == HoldExpire && !due:
		return nil, nil, Errorf(CodeHoldNotPending, "hold %s is not due before %s", h.ID, h.ExpiresAt.Format(time.RFC3339))
	case p.Req.Type != HoldExpire && due:
		return nil, nil, Errorf(CodeHoldNotPending, "hold %s expired at %s", h.ID, h.ExpiresAt.Format(time.RFC3339))
	}
	return h, from, nil
}

// releaseHold voids a pending hold, or expires one whose time has come, releasing its money.
func (a *applier) releaseHold(p *Pending) (*Hold, *Error) {
	h, from, err := a.settleable(p)
	if err != nil {
		return nil, err
	}
	status, evType := HoldVoided, event.TypeHoldVoided
	if p.Req.Type == HoldExpire {
		status, evType = HoldExpired, event.TypeHoldExpired
	}
	from.Held -= h.Amount
	a.plan.setHeld(from)
	h.Status = status
	a.plan.HoldSets = append(a.plan.HoldSets, HoldSet{ID: h.ID, Status: status})
	var to *AccountState
	if h.ToAccountID != nil {
		to = a.st.Accounts[*h.ToAccountID]
	}
	a.plan.Events = append(a.plan.Events, holdEvent(a.newID(), p.RequestID, evType, a.now, h, from, to))
	out := *h
	return &out, nil
}

// captureHold moves (part of) a pending hold's amount as a transfer to its to account, or a
// withdrawal without one, and releases the rest.
func (a *applier) captureHold(p *Pending) (*Transaction, *Error) {
	h, from, err := a.settleable(p)
	if err != nil {
		return nil, err
	}
	amount := p.Req.Amount
	if amount == 0 {
		amount = h.Amount
	}
	if amount > h.Amount {
		return nil, Errorf(CodeAmountExceedsHold, "hold %s reserves %d %s: %d cannot be captured", h.ID, h.Amount, h.Currency, amount)
	}
	move := *p
	move.Req = TxRequest{Type: Withdrawal, From: h.FromAccountID, Amount: amount, Currency: h.Currency,
		Description: h.Description, Metadata: h.Metadata, Hold: h.ID}
	if h.ToAccountID != nil {
		move.Req.Type, move.Req.To = Transfer, *h.ToAccountID
	}
	from.Held -= h.Amount // the reserved money is what the move takes
	tx, err := apply(&move, a.st, a.plan, a.now, a.newID)
	if err != nil {
		from.Held += h.Amount
		return nil, err
	}
	a.plan.setHeld(from)
	h.Status, h.CapturedAmount = HoldCaptured, amount
	a.plan.HoldSets = append(a.plan.HoldSets, HoldSet{ID: h.ID, Status: HoldCaptured, Captured: amount})
	return tx, nil
}

func holdEvent(id uuid.UUID, requestID, typ string, at time.Time, h *Hold, from, to *AccountState) event.Event {
	eh := &event.Hold{ID: h.ID, Status: string(h.Status), FromAccountID: h.FromAccountID, FromUserID: from.UserID,
		ToAccountID: h.ToAccountID, Amount: h.Amount, CapturedAmount: h.CapturedAmount, Currency: h.Currency,
		Description: h.Description, Metadata: h.Metadata, ExpiresAt: h.ExpiresAt, CreatedAt: h.CreatedAt}
	if to != nil {
		u := to.UserID
		eh.ToUserID = &u
	}
	return event.Event{Version: event.Version, ID: id, Type: typ, OccurredAt: at, RequestID: requestID, Hold: eh}
}
