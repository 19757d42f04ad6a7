package ledger

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"txn/internal/event"
)

// Pending is one transaction request waiting in the group-commit queue.
type Pending struct {
	Caller    Caller
	Req       TxRequest
	Key       string // Idempotency-Key, "" when none
	RequestID string
	Group     *AtomicGroup // nil: decided alone
	Result    Result
}

// AtomicGroup marks the requests of an atomic batch: consecutive in their batch, applied all
// or none. Apply sets Failed to the request that failed the group, if one did.
type AtomicGroup struct{ Failed *Pending }

// Result is the outcome of one request. Exactly one of Tx, Hold and Err is set.
type Result struct {
	Tx       *Transaction
	Hold     *Hold // the answer of a request that creates, voids or expires a hold
	Err      *Error
	Replayed bool
}

// KeyRef names an idempotency key: keys are scoped to their caller.
type KeyRef struct{ Scope, Key string }

// KeyRecord is the stored outcome of the first request made with a key.
type KeyRecord struct {
	Hash [32]byte
	Tx   *Transaction
	Hold *Hold
	Err  *Error
}

// AccountState is a locked account as a batch sees it.
type AccountState struct {
	ID             uuid.UUID
	UserID         uuid.UUID // zero for external accounts
	Currency       string
	Balance        int64
	External       bool
	Status         AccountStatus
	OverdraftLimit int64
	Held           int64 // the sum of the account's pending holds
}

// ReversalBase is a transaction that a reversal in the batch reverses: its amount and how much
// of it was reversed already, read with its accounts locked.
type ReversalBase struct {
	Amount, Reversed int64
}

// BatchState is what the store read, under lock, before a batch is planned.
type BatchState struct {
	Accounts map[uuid.UUID]*AccountState
	// Reversals holds the transactions reversed by requests of the batch.
	Reversals map[uuid.UUID]*ReversalBase
	// Holds holds the holds the batch's requests capture, void or expire, read after their
	// from account was locked (every change of a hold locks it first).
	Holds map[uuid.UUID]*Hold
	// Keys holds outcomes committed by earlier batches for keys this batch carries.
	Keys map[KeyRef]*KeyRecord
}

// KeyWrite is an idempotency outcome to store.
type KeyWrite struct {
	Ref    KeyRef
	Record KeyRecord
}

// Plan is everything one batch writes, in one database transaction.
type Plan struct {
	Transactions []Transaction
	Entries      []Entry
	Balances     map[uuid.UUID]int64 // new balances of the accounts that changed
	Events       []event.Event
	Keys         []KeyWrite
	// Released are keys claimed for a failed atomic group: they stay unused, so the claim
	// the store made for them is dropped.
	Released []KeyRef
	// The hold side, empty for batches without hold requests: holds created, holds settled,
	// and the new held sums of the accounts whose pending holds changed.
	Holds    []Hold
	HoldSets []HoldSet
	Held     map[uuid.UUID]int64
}

// AccountIDs lists the accounts a batch must lock: both sides of every request and the
// external account of each currency deposited or withdrawn.
func AccountIDs(batch []*Pending) []uuid.UUID {
	seen := make(map[uuid.UUID]struct{}, 2*len(batch))
	ids := make([]uuid.UUID, 0, 2*len(batch))
	add := func(id uuid.UUID) {
		if id == uuid.Nil {
			return
		}
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			ids = append(ids, id)
		}
	}
	for _, p := range batch {
		r := p.Req
		add(r.From)
		add(r.To)
		switch r.Type {
		case Transfer, HoldCreate:
		case HoldCapture, HoldVoid, HoldExpire: // they name only their hold: the store adds its accounts
		default:
			add(ExternalAccountID(r.Currency))
		}
	}
	return ids
}

// Keys lists the distinct idempotency keys a batch carries.
func Keys(batch []*Pending) []KeyRef {
	seen := map[KeyRef]struct{}{}
	var refs []KeyRef
	for _, p := range batch {
		if p.Key == "" {
			continue
		}
		ref := KeyRef{p.Caller.Scope(), p.Key}
		if _, ok := seen[ref]; !ok {
			seen[ref] = struct{}{}
			refs = append(refs, ref)
		}
	}
	return refs
}

// Apply decides every request of a batch in order against the locked state, setting each
// Pending's Result and returning what must be written. A failing request changes nothing and
// never affects its neighbours, except within an atomic group (consecutive requests sharing
// one Group), which is applied all or none. newID must return unique ids; now is the batch's
// commit time.
func Apply(batch []*Pending, st *BatchState, now time.Time, newID func() uuid.UUID) *Plan {
	a := &applier{st: st, plan: &Plan{Balances: map[uuid.UUID]int64{}}, now: now, newID: newID,
		local: map[KeyRef]*KeyRecord{}}
	for i := 0; i < len(batch); {
		g := batch[i].Group
		if g == nil {
			a.one(batch[i])
			i++
			continue
		}
		j := i + 1
		for j < len(batch) && batch[j].Group == g {
			j++
		}
		a.group(batch[i:j])
		i = j
	}
	return a.plan
}

// applier is one Apply: the state, the plan so far, and the outcomes of keys first used in
// this batch, for duplicates later in the same batch.
type applier struct {
	st    *BatchState
	plan  *Plan
	now   time.Time
	newID func() uuid.UUID
	local map[KeyRef]*KeyRecord
}

// one decides one request: a replay of its key's outcome, or apply.
func (a *applier) one(p *Pending) {
	var ref KeyRef
	var hash [32]byte
	if p.Key != "" {
		ref = KeyRef{p.Caller.Scope(), p.Key}
		hash = p.Req.Hash()
		rec := a.st.Keys[ref]
		if rec == nil {
			rec = a.local[ref]
		}
		if rec != nil {
			if rec.Hash != hash {
				p.Result = Result{Err: Errorf(CodeKeyReused,
					"Idempotency-Key %q was first used with a different request", p.Key)}
			} else {
				p.Result = Result{Tx: rec.Tx, Hold: rec.Hold, Err: rec.Err, Replayed: true}
			}
			return
		}
	}
	p.Result = a.decide(p)
	if p.Key != "" {
		rec := KeyRecord{Hash: hash, Tx: p.Result.Tx, Hold: p.Result.Hold, Err: p.Result.Err}
		a.local[ref] = &rec
		a.plan.Keys = append(a.plan.Keys, KeyWrite{Ref: ref, Record: rec})
	}
}

// decide applies one request to the state and the plan.
func (a *applier) decide(p *Pending) Result {
	var r Result
	switch p.Req.Type {
	case HoldCreate:
		r.Hold, r.Err = a.createHold(p)
	case HoldVoid, HoldExpire:
		r.Hold, r.Err = a.releaseHold(p)
	case HoldCapture:
		r.Tx, r.Err = a.captureHold(p)
	default:
		r.Tx, r.Err = apply(p, a.st, a.plan, a.now, a.newID)
	}
	return r
}

// group applies an atomic group: when one of its requests fails, everything the group did
// is taken back (balances, writes, the outcomes of its keys, which stay unused so a corrected
// batch may reuse them) and every request of the group fails with the first failure.
// Replays count as applied: their transactions were committed by an earlier batch. Groups
// hold deposits, withdrawals and transfers only, which leave holds as they are.
func (a *applier) group(items []*Pending) {
	plan := a.plan
	nTx, nEntries, nEvents, nKeys := len(plan.Transactions), len(plan.Entries), len(plan.Events), len(plan.Keys)
	type saved struct {
		balance, planned int64
		wasPlanned       bool
	}
	before := map[uuid.UUID]saved{}
	for _, id := range AccountIDs(items) {
		if acc := a.st.Accounts[id]; acc != nil {
			v, ok := plan.Balances[id]
			before[id] = saved{balance: acc.Balance, planned: v, wasPlanned: ok}
		}
	}
	for i, p := range items {
		a.one(p)
		if p.Result.Err == nil {
			continue
		}
		for id, b := range before {
			a.st.Accounts[id].Balance = b.balance
			if b.wasPlanned {
				plan.Balances[id] = b.planned
			} else {
				delete(plan.Balances, id)
			}
		}
		for _, kw := range plan.Keys[nKeys:] {
			delete(a.local, kw.Ref)
			if a.st.Keys[kw.Ref] == nil {
				plan.Released = append(plan.Released, kw.Ref)
			}
		}
		plan.Transactions, plan.Entries = plan.Transactions[:nTx], plan.Entries[:nEntries]
		plan.Events, plan.Keys = plan.Events[:nEvents], plan.Keys[:nKeys]
		failed := p.Result.Err
		for k, q := range items {
			if k != i {
				q.Result = Result{Err: &Error{Code: failed.Code, Detail: fmt.Sprintf(
					"not applied: request %d of the atomic batch failed: %s", i, failed.Detail)}}
			}
		}
		p.Result = Result{Err: failed}
		p.Group.Failed = p
		return
	}
	items[0].Group.Failed = nil
}

// sides finds a request's customer accounts and checks that the caller may debit from, that
// they differ, hold the request's currency and are active.
func sides(p *Pending, st *BatchState) (from, to *AccountState, err *Error) {
	r := p.Req
	account := func(id uuid.UUID) *AccountState {
		a := st.Accounts[id]
		if a == nil || a.External {
			return nil
		}
		return a
	}
	if r.From != uuid.Nil {
		// Only the owner (or the admin) may debit an account; to anyone else it does not exist.
		if from = account(r.From); from == nil || !p.Caller.CanAccess(from.UserID) {
			return nil, nil, Errorf(CodeNotFound, "account %s not found", r.From)
		}
	}
	if r.To != uuid.Nil {
		if to = account(r.To); to == nil {
			return nil, nil, Errorf(CodeNotFound, "account %s not found", r.To)
		}
	}
	if r.From != uuid.Nil && r.From == r.To {
		return nil, nil, Errorf(CodeSameAccount, "a transfer needs two different accounts")
	}
	for _, a := range []*AccountState{from, to} {
		if a != nil && a.Currency != r.Currency {
			return nil, nil, Errorf(CodeCurrencyMismatch, "account %s holds %s, not %s", a.ID, a.Currency, r.Currency)
		}
	}
	for _, a := range []*AccountState{from, to} {
		if a != nil && (a.Status == AccountFrozen || a.Status == AccountClosed) {
			return nil, nil, Errorf(CodeAccountFrozen, "account %s is %s", a.ID, a.Status)
		}
	}
	return from, to, nil
}

func insufficient(a *AccountState, currency string, amount int64) *Error {
	return Errorf(CodeInsufficientFunds, "account %s has %d %s available (overdraft limit %d), %d needed",
		a.ID, a.Balance-a.Held, currency, a.OverdraftLimit, amount)
}

func apply(p *Pending, st *BatchState, plan *Plan, now time.Time, newID func() uuid.UUID) (*Transaction, *Error) {
	r := p.Req
	from, to, err := sides(p, st)
	if err != nil {
		return nil, err
	}
	amount := r.Amount
	var base *ReversalBase
	switch r.Type {
	case Deposit:
		from = st.Accounts[ExternalAccountID(r.Currency)]
	case Withdrawal:
		to = st.Accounts[ExternalAccountID(r.Currency)]
	case Reversal:
		// The money goes back the way it came: a side without a customer account is outside.
		if from == nil {
			from = st.Accounts[ExternalAccountID(r.Currency)]
		}
		if to == nil {
			to = st.Accounts[ExternalAccountID(r.Currency)]
		}
		if base = st.Reversals[r.Reverses]; base == nil {
			return nil, Errorf(CodeNotFound, "transaction %s not found", r.Reverses)
		}
		left := base.Amount - base.Reversed
		if amount == 0 {
			amount = left
		}
		if left == 0 || amount > left {
			return nil, Errorf(CodeAmountExceedsOriginal, "transaction %s moved %d %s, %d of it reversed already: %d cannot be reversed",
				r.Reverses, base.Amount, r.Currency, base.Reversed, amount)
		}
	}
	if from == nil || to == nil {
		// The external account is created with the first customer account of its currency,
		// so this means the account vanished; report it as such.
		return nil, Errorf(CodeNotFound, "no account in %s to move money against", r.Currency)
	}
	if !from.External && from.Balance-from.Held-amount < -from.OverdraftLimit {
		return nil, insufficient(from, r.Currency, amount)
	}
	if to.Balance > MaxBalance-amount || from.Balance < -MaxBalance+amount {
		return nil, Errorf(CodeBalanceLimit, "a balance in %s would pass %d", r.Currency, MaxBalance)
	}
	from.Balance -= amount
	to.Balance += amount
	plan.Balances[from.ID] = from.Balance
	plan.Balances[to.ID] = to.Balance

	tx := Transaction{
		ID: newID(), Type: r.Type, Status: StatusCompleted,
		Amount: amount, Currency: r.Currency, Description: r.Description, Metadata: r.Metadata, CreatedAt: now,
	}
	if r.From != uuid.Nil {
		tx.FromAccountID = &r.From
	}
	if r.To != uuid.Nil {
		tx.ToAccountID = &r.To
	}
	if base != nil {
		base.Reversed += amount
		tx.Reverses = &r.Reverses
	}
	if r.Hold != uuid.Nil {
		tx.HoldID = &r.Hold
	}
	plan.Transactions = append(plan.Transactions, tx)
	plan.Entries = append(plan.Entries,
		Entry{TransactionID: tx.ID, AccountID: from.ID, Amount: -amount, BalanceAfter: from.Balance, CreatedAt: now},
		Entry{TransactionID: tx.ID, AccountID: to.ID, Amount: amount, BalanceAfter: to.Balance, CreatedAt: now},
	)
	plan.Events = append(plan.Events, newEvent(newID(), p.RequestID, &tx, from, to))
	return &tx, nil
}

func newEvent(id uuid.UUID, requestID string, tx *Transaction, from, to *AccountState) event.Event {
	et := event.Transaction{
		ID: tx.ID, Type: string(tx.Type), FromAccountID: tx.FromAccountID, ToAccountID: tx.ToAccountID,
		Amount: tx.Amount, Currency: tx.Currency, Description: tx.Description, Metadata: tx.Metadata, Reverses: tx.Reverses, HoldID: tx.HoldID, CreatedAt: tx.CreatedAt,
	}
	if tx.FromAccountID != nil {
		u := from.UserID
		et.FromUserID = &u
	}
	if tx.ToAccountID != nil {
		u := to.UserID
		et.ToUserID = &u
	}
	return event.Event{Version: event.Version, ID: id, Type: event.TypeTransactionCompleted,
		OccurredAt: tx.CreatedAt, RequestID: requestID, Transaction: et}
}
