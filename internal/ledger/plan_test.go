package ledger

import (
	"encoding/binary"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

// book is a hand-built BatchState: two users' accounts and the external accounts.
type book struct {
	st           *BatchState
	alice, bob   Caller
	aUSD, aUSD2  uuid.UUID // 1000, 0
	aEUR, bUSD   uuid.UUID // 500, 100
	gbp          uuid.UUID // alice's, in a currency whose external account the state lacks
	extUSD, extE uuid.UUID
}

func newBook() *book {
	b := &book{alice: Caller{UserID: uuid.New()}, bob: Caller{UserID: uuid.New()},
		aUSD: uuid.New(), aUSD2: uuid.New(), aEUR: uuid.New(), bUSD: uuid.New(), gbp: uuid.New(),
		extUSD: ExternalAccountID("USD"), extE: ExternalAccountID("EUR")}
	b.st = &BatchState{Accounts: map[uuid.UUID]*AccountState{}, Keys: map[KeyRef]*KeyRecord{}}
	add := func(id, user uuid.UUID, cur string, bal int64) {
		b.st.Accounts[id] = &AccountState{ID: id, UserID: user, Currency: cur, Balance: bal, External: user == uuid.Nil}
	}
	add(b.aUSD, b.alice.UserID, "USD", 1000)
	add(b.aUSD2, b.alice.UserID, "USD", 0)
	add(b.aEUR, b.alice.UserID, "EUR", 500)
	add(b.bUSD, b.bob.UserID, "USD", 100)
	add(b.gbp, b.alice.UserID, "GBP", 0)
	add(b.extUSD, uuid.Nil, "USD", -1100)
	add(b.extE, uuid.Nil, "EUR", -500)
	return b
}

// balances copies the state's balances.
func (b *book) balances() map[uuid.UUID]int64 {
	m := map[uuid.UUID]int64{}
	for id, a := range b.st.Accounts {
		m[id] = a.Balance
	}
	return m
}

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// seqIDs returns a newID that counts, so ids are predictable and unique.
func seqIDs() func() uuid.UUID {
	var n uint64
	return func() uuid.UUID {
		n++
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[8:], n)
		return id
	}
}

func pending(c Caller, key string, r TxRequest) *Pending {
	return &Pending{Caller: c, Req: r, Key: key, RequestID: "req"}
}

func tr(from, to uuid.UUID, amount int64, cur string) TxRequest {
	return TxRequest{Type: Transfer, From: from, To: to, Amount: amount, Currency: cur}
}

// checkPlan verifies what holds for every plan: per transaction two entries summing to zero,
// balance_after equal to the running balance, one event per transaction, and final balances
// equal to the state's.
func checkPlan(t *testing.T, b *book, before map[uuid.UUID]int64, plan *Plan) {
	t.Helper()
	running := maps.Clone(before)
	if len(plan.Entries) != 2*len(plan.Transactions) || len(plan.Events) != len(plan.Transactions) {
		t.Fatalf("%d transactions, %d entries, %d events", len(plan.Transactions), len(plan.Entries), len(plan.Events))
	}
	for i, tx := range plan.Transactions {
		debit, credit := plan.Entries[2*i], plan.Entries[2*i+1]
		if debit.TransactionID != tx.ID || credit.TransactionID != tx.ID {
			t.Errorf("entries of %s belong to %s and %s", tx.ID, debit.TransactionID, credit.TransactionID)
		}
		if debit.Amount != -tx.Amount || credit.Amount != tx.Amount || debit.Amount+credit.Amount != 0 {
			t.Errorf("transaction %s of %d: entries %d and %d", tx.ID, tx.Amount, debit.Amount, credit.Amount)
		}
		for _, e := range []Entry{debit, credit} {
			running[e.AccountID] += e.Amount
			if e.BalanceAfter != running[e.AccountID] || !e.CreatedAt.Equal(now) {
				t.Errorf("entry %+v: balance_after should be %d", e, running[e.AccountID])
			}
		}
		ev := plan.Events[i]
		if ev.Transaction.ID != tx.ID || ev.ID == tx.ID || ev.Transaction.Amount != tx.Amount || ev.RequestID != "req" {
			t.Errorf("event %+v for transaction %+v", ev, tx)
		}
		if tx.Status != StatusCompleted || !tx.CreatedAt.Equal(now) {
			t.Errorf("transaction %+v", tx)
		}
	}
	for id, bal := range plan.Balances {
		if running[id] != bal || b.st.Accounts[id].Balance != bal {
			t.Errorf("account %s: planned balance %d, entries give %d, state %d", id, bal, running[id], b.st.Accounts[id].Balance)
		}
	}
	for id, bal := range running {
		if _, changed := plan.Balances[id]; !changed && before[id] != bal {
			t.Errorf("account %s changed but is not in the plan's balances", id)
		}
	}
	var sum int64
	for _, a := range b.st.Accounts {
		sum += a.Balance
		if !a.External && a.Balance < 0 {
			t.Errorf("account %s is negative: %d", a.ID, a.Balance)
		}
	}
	if sum != 0 {
		t.Errorf("balances sum to %d", sum)
	}
}

func TestApplyFailureBetweenSuccesses(t *testing.T) {
	b := newBook()
	before := b.balances()
	batch := []*Pending{
		pending(b.alice, "", tr(b.aUSD, b.bUSD, 300, "USD")), // 1000 -> 700
		pending(b.alice, "", tr(b.aUSD, b.bUSD, 800, "USD")), // 700 < 800
		pending(b.alice, "", tr(b.aUSD, b.bUSD, 700, "USD")), // 700 -> 0
	}
	plan := Apply(batch, b.st, now, seqIDs())
	checkPlan(t, b, before, plan)
	if batch[0].Result.Tx == nil || batch[2].Result.Tx == nil || batch[0].Result.Err != nil || batch[2].Result.Err != nil {
		t.Fatalf("good requests failed: %+v, %+v", batch[0].Result, batch[2].Result)
	}
	if batch[1].Result.Tx != nil || ErrorCode(batch[1].Result.Err) != CodeInsufficientFunds {
		t.Errorf("middle request: %+v", batch[1].Result)
	}
	if len(plan.Transactions) != 2 || plan.Transactions[0].ID != batch[0].Result.Tx.ID || plan.Transactions[1].ID != batch[2].Result.Tx.ID {
		t.Errorf("planned %+v", plan.Transactions)
	}
	if b.st.Accounts[b.aUSD].Balance != 0 || b.st.Accounts[b.bUSD].Balance != 1100 {
		t.Errorf("balances %d, %d; want 0, 1100", b.st.Accounts[b.aUSD].Balance, b.st.Accounts[b.bUSD].Balance)
	}
	want := []int64{700, 400, 0, 1100} // balance_after of debit, credit, debit, credit
	for i, e := range plan.Entries {
		if e.BalanceAfter != want[i] {
			t.Errorf("entry %d: balance_after %d, want %d", i, e.BalanceAfter, want[i])
		}
	}
	if len(plan.Keys) != 0 {
		t.Errorf("keys written without keys: %+v", plan.Keys)
	}
}

func TestApplyDepositAndWithdrawal(t *testing.T) {
	b := newBook()
	before := b.balances()
	admin := Caller{Admin: true}
	batch := []*Pending{
		pending(admin, "", TxRequest{Type: Deposit, To: b.aUSD2, Amount: 250, Currency: "USD"}),
		pending(b.alice, "", TxRequest{Type: Withdrawal, From: b.aUSD2, Amount: 50, Currency: "USD"}),
		pending(b.alice, "", TxRequest{Type: Withdrawal, From: b.aUSD2, Amount: 201, Currency: "USD"}), // 200 left
		pending(admin, "", TxRequest{Type: Withdrawal, From: b.bUSD, Amount: 100, Currency: "USD"}),    // the admin may
	}
	plan := Apply(batch, b.st, now, seqIDs())
	checkPlan(t, b, before, plan)
	codes := resultCodes(batch)
	if !slices.Equal(codes, []Code{"", "", CodeInsufficientFunds, ""}) {
		t.Fatalf("results %v", codes)
	}
	dep, wd := batch[0].Result.Tx, batch[1].Result.Tx
	if dep.FromAccountID != nil || dep.ToAccountID == nil || *dep.ToAccountID != b.aUSD2 ||
		wd.ToAccountID != nil || wd.FromAccountID == nil || *wd.FromAccountID != b.aUSD2 {
		t.Errorf("deposit %+v, withdrawal %+v", dep, wd)
	}
	if plan.Entries[0].AccountID != b.extUSD || plan.Entries[3].AccountID != b.extUSD {
		t.Errorf("deposits and withdrawals must move money against the external account: %+v", plan.Entries)
	}
	if got := b.st.Accounts[b.extUSD].Balance; got != -1100-250+50+100 {
		t.Errorf("external USD balance %d", got)
	}
	ev := plan.Events[0].Transaction
	if ev.FromUserID != nil || ev.ToUserID == nil || *ev.ToUserID != b.alice.UserID {
		t.Errorf("deposit event users: from %v to %v", ev.FromUserID, ev.ToUserID)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// resultCodes lists the batch's error codes, "" for a success; a result that is not exactly
// one of a transaction, a hold and an error shows as NOT-EXACTLY-ONE.
func resultCodes(batch []*Pending) []Code {
	codes := make([]Code, len(batch))
	for i, p := range batch {
		if set := btoi(p.Result.Tx != nil) + btoi(p.Result.Hold != nil) + btoi(p.Result.Err != nil); set != 1 {
			codes[i] = "NOT-EXACTLY-ONE"
			continue
		}
		if p.Result.Err != nil {
			codes[i] = p.Result.Err.Code
		}
	}
	return codes
}

func TestApplyRefusals(t *testing.T) {
	missing := uuid.New()
	for _, tc := range []struct {
		name string
		req  func(b *book) (Caller, TxRequest)
		code Code
	}{
		{"currency mismatch on the debit", func(b *book) (Caller, TxRequest) { return b.alice, tr(b.aUSD, b.bUSD, 1, "EUR") }, CodeCurrencyMismatch},
		{"transfer to an account in another currency", func(b *book) (Caller, TxRequest) { return b.alice, tr(b.aUSD, b.aEUR, 1, "USD") }, CodeCurrencyMismatch},
		{"deposit in another currency", func(b *book) (Caller, TxRequest) {
			return Caller{Admin: true}, TxRequest{Type: Deposit, To: b.aUSD, Amount: 1, Currency: "EUR"}
		}, CodeCurrencyMismatch},
		{"withdrawal in another currency", func(b *book) (Caller, TxRequest) {
			return b.alice, TxRequest{Type: Withdrawal, From: b.aEUR, Amount: 1, Currency: "USD"}
		}, CodeCurrencyMismatch},
		{"same account", func(b *book) (Caller, TxRequest) { return b.alice, tr(b.aUSD, b.aUSD, 1, "USD") }, CodeSameAccount},
		{"same account by the admin", func(b *book) (Caller, TxRequest) { return Caller{Admin: true}, tr(b.aUSD, b.aUSD, 1, "USD") }, CodeSameAccount},
		{"debiting another user's account", func(b *book) (Caller, TxRequest) { return b.alice, tr(b.bUSD, b.aUSD, 1, "USD") }, CodeNotFound},
		{"withdrawing from another user's account", func(b *book) (Caller, TxRequest) {
			return b.bob, TxRequest{Type: Withdrawal, From: b.aUSD, Amount: 1, Currency: "USD"}
		}, CodeNotFound},
		{"same foreign account", func(b *book) (Caller, TxRequest) { return b.bob, tr(b.aUSD, b.aUSD, 1, "USD") }, CodeNotFound},
		{"missing from", func(b *book) (Caller, TxRequest) { return Caller{Admin: true}, tr(missing, b.aUSD, 1, "USD") }, CodeNotFound},
		{"missing to", func(b *book) (Caller, TxRequest) { return b.alice, tr(b.aUSD, missing, 1, "USD") }, CodeNotFound},
		{"from the external account", func(b *book) (Caller, TxRequest) { return Caller{Admin: true}, tr(b.extUSD, b.aUSD, 1, "USD") }, CodeNotFound},
		{"to the external account", func(b *book) (Caller, TxRequest) { return b.alice, tr(b.aUSD, b.extUSD, 1, "USD") }, CodeNotFound},
		{"deposit without an external account", func(b *book) (Caller, TxRequest) {
			return Caller{Admin: true}, TxRequest{Type: Deposit, To: b.gbp, Amount: 1, Currency: "GBP"}
		}, CodeNotFound},
		{"insufficient funds", func(b *book) (Caller, TxRequest) { return b.bob, tr(b.bUSD, b.aUSD, 101, "USD") }, CodeInsufficientFunds},
		{"insufficient funds by the admin", func(b *book) (Caller, TxRequest) {
			return Caller{Admin: true}, TxRequest{Type: Withdrawal, From: b.aUSD2, Amount: 1, Currency: "USD"}
		}, CodeInsufficientFunds},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBook()
			before := b.balances()
			c, req := tc.req(b)
			p := pending(c, "", req)
			plan := Apply([]*Pending{p}, b.st, now, seqIDs())
			if p.Result.Tx != nil || ErrorCode(p.Result.Err) != tc.code || p.Result.Err.Detail == "" {
				t.Errorf("result %+v, want %s", p.Result, tc.code)
			}
			if len(plan.Transactions)+len(plan.Entries)+len(plan.Events)+len(plan.Balances)+len(plan.Keys) != 0 {
				t.Errorf("a refusal planned writes: %+v", plan)
			}
			for id, bal := range before {
				if b.st.Accounts[id].Balance != bal {
					t.Errorf("a refusal changed account %s: %d -> %d", id, bal, b.st.Accounts[id].Balance)
				}
			}
		})
	}
}

func TestApplyIdempotencyInBatch(t *testing.T) {
	b := newBook()
	before := b.balances()
	first := tr(b.aUSD, b.bUSD, 100, "USD")
	batch := []*Pending{
		pending(b.alice, "k", first),
		pending(b.alice, "k", first),                          // replay of the first
		pending(b.alice, "k", tr(b.aUSD, b.bUSD, 101, "USD")), // reused
		pending(b.bob, "k", tr(b.bUSD, b.aUSD, 50, "USD")),    // bob's own key
		pending(b.alice, "e", tr(b.aUSD2, b.bUSD, 5, "USD")),  // insufficient, stored
		pending(b.alice, "e", tr(b.aUSD2, b.bUSD, 5, "USD")),  // replayed as the same refusal
		pending(b.alice, "", first),                           // no key: applied again
	}
	plan := Apply(batch, b.st, now, seqIDs())
	checkPlan(t, b, before, plan)
	codes := resultCodes(batch)
	if !slices.Equal(codes, []Code{"", "", CodeKeyReused, "", CodeInsufficientFunds, CodeInsufficientFunds, ""}) {
		t.Fatalf("results %v", codes)
	}
	replayed := []bool{false, true, false, false, false, true, false}
	for i, p := range batch {
		if p.Result.Replayed != replayed[i] {
			t.Errorf("request %d: replayed %v, want %v", i, p.Result.Replayed, replayed[i])
		}
	}
	if batch[1].Result.Tx.ID != batch[0].Result.Tx.ID || batch[5].Result.Err.Detail != batch[4].Result.Err.Detail {
		t.Error("replays differ from the first answers")
	}
	if batch[6].Result.Tx.ID == batch[0].Result.Tx.ID || batch[3].Result.Tx.ID == batch[0].Result.Tx.ID {
		t.Error("distinct requests share a transaction")
	}
	if len(plan.Transactions) != 3 {
		t.Errorf("%d transactions, want 3", len(plan.Transactions))
	}
	// one record per distinct key, with its first outcome
	if len(plan.Keys) != 3 {
		t.Fatalf("key writes %+v", plan.Keys)
	}
	for _, kw := range plan.Keys {
		switch kw.Ref {
		case KeyRef{b.alice.Scope(), "k"}:
			if kw.Record.Tx == nil || kw.Record.Tx.ID != batch[0].Result.Tx.ID || kw.Record.Hash != first.Hash() {
				t.Errorf("alice's k: %+v", kw.Record)
			}
		case KeyRef{b.bob.Scope(), "k"}:
			if kw.Record.Tx == nil || kw.Record.Tx.ID != batch[3].Result.Tx.ID {
				t.Errorf("bob's k: %+v", kw.Record)
			}
		case KeyRef{b.alice.Scope(), "e"}:
			if kw.Record.Tx != nil || ErrorCode(kw.Record.Err) != CodeInsufficientFunds {
				t.Errorf("alice's e: %+v", kw.Record)
			}
		default:
			t.Errorf("unexpected key %+v", kw.Ref)
		}
	}
	if got := b.st.Accounts[b.aUSD].Balance; got != 1000-100-100+50 {
		t.Errorf("alice's balance %d", got)
	}
}

func TestApplyCommittedKeys(t *testing.T) {
	b := newBook()
	before := b.balances()
	req := tr(b.aUSD, b.bUSD, 100, "USD")
	earlier := &Transaction{ID: uuid.New(), Type: Transfer, Status: StatusCompleted, Amount: 100, Currency: "USD"}
	refusal := Errorf(CodeInsufficientFunds, "earlier refusal")
	b.st.Keys[KeyRef{b.alice.Scope(), "done"}] = &KeyRecord{Hash: req.Hash(), Tx: earlier}
	b.st.Keys[KeyRef{b.alice.Scope(), "refused"}] = &KeyRecord{Hash: req.Hash(), Err: refusal}
	batch := []*Pending{
		pending(b.alice, "done", req),
		pending(b.alice, "done", tr(b.aUSD, b.bUSD, 99, "USD")),
		pending(b.alice, "refused", req), // replayed even though it would succeed now
	}
	plan := Apply(batch, b.st, now, seqIDs())
	checkPlan(t, b, before, plan)
	if r := batch[0].Result; !r.Replayed || r.Tx != earlier || r.Err != nil {
		t.Errorf("committed key: %+v", r)
	}
	if r := batch[1].Result; r.Replayed || ErrorCode(r.Err) != CodeKeyReused {
		t.Errorf("committed key, other request: %+v", r)
	}
	if r := batch[2].Result; !r.Replayed || r.Err != refusal || r.Tx != nil {
		t.Errorf("committed refusal: %+v", r)
	}
	if len(plan.Transactions)+len(plan.Keys)+len(plan.Balances) != 0 {
		t.Errorf("replays planned writes: %+v", plan)
	}
}

func TestAccountIDsAndKeys(t *testing.T) {
	b := newBook()
	admin := Caller{Admin: true}
	batch := []*Pending{
		pending(b.alice, "k", tr(b.aUSD, b.bUSD, 1, "USD")),
		pending(b.bob, "k", tr(b.bUSD, b.aUSD, 1, "USD")),
		pending(b.alice, "k", tr(b.aUSD, b.bUSD, 1, "USD")),
		pending(admin, "", TxRequest{Type: Deposit, To: b.aEUR, Amount: 1, Currency: "EUR"}),
		pending(b.alice, "", TxRequest{Type: Withdrawal, From: b.aUSD2, Amount: 1, Currency: "USD"}),
	}
	ids := AccountIDs(batch)
	want := []uuid.UUID{b.aUSD, b.bUSD, b.aEUR, b.extE, b.aUSD2, b.extUSD}
	if !slices.Equal(ids, want) {
		t.Errorf("AccountIDs = %v, want %v", ids, want)
	}
	if got := AccountIDs([]*Pending{pending(b.alice, "", tr(b.aUSD, b.bUSD, 1, "USD"))}); !slices.Equal(got, []uuid.UUID{b.aUSD, b.bUSD}) {
		t.Errorf("a transfer locks %v, want only its two accounts", got)
	}
	keys := Keys(batch)
	wantKeys := []KeyRef{{b.alice.Scope(), "k"}, {b.bob.Scope(), "k"}}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("Keys = %v, want %v", keys, wantKeys)
	}
	if ExternalAccountID("USD") == ExternalAccountID("EUR") || ExternalAccountID("USD") != b.extUSD {
		t.Error("external account ids must be stable and differ per currency")
	}
	if admin.Scope() != "admin" || b.alice.Scope() != b.alice.UserID.String() {
		t.Errorf("scopes %q %q", admin.Scope(), b.alice.Scope())
	}
}

func TestApplyBalanceLimit(t *testing.T) {
	// In balanced books the external account, minus every customer balance, reaches the limit
	// first: put it 20 short of it.
	b := newBook()
	b.st.Accounts[b.aUSD2].Balance = MaxBalance - 1120
	b.st.Accounts[b.extUSD].Balance = -(MaxBalance - 20)
	admin := Caller{Admin: true}
	batch := []*Pending{
		pending(admin, "", TxRequest{Type: Deposit, To: b.aUSD2, Amount: 21, Currency: "USD"}),
		pending(admin, "", TxRequest{Type: Deposit, To: b.aUSD2, Amount: 20, Currency: "USD"}),
	}
	before := b.balances()
	plan := Apply(batch, b.st, now, seqIDs())
	if got := resultCodes(batch); got[0] != CodeBalanceLimit || got[1] != "" {
		t.Fatalf("codes %v, want [balance_limit, ok]", got)
	}
	checkPlan(t, b, before, plan)
	if got := b.st.Accounts[b.extUSD].Balance; got != -MaxBalance {
		t.Errorf("external balance %d, want %d", got, -MaxBalance)
	}
}
