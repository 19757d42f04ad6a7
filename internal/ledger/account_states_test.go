package ledger

import (
	"slices"
	"testing"
)

func TestApplyAccountStates(t *testing.T) {
	b := newBook()
	b.st.Accounts[b.bUSD].Status = AccountFrozen
	b.st.Accounts[b.aUSD2].OverdraftLimit = 300
	batch := []*Pending{
		pending(b.alice, "", tr(b.aUSD, b.bUSD, 1, "USD")),    // to a frozen account
		pending(b.bob, "", tr(b.bUSD, b.aUSD, 1, "USD")),      // from a frozen account
		pending(b.alice, "", tr(b.aUSD2, b.aUSD, 300, "USD")), // 0 - 300 = -300: within the limit
		pending(b.alice, "", tr(b.aUSD2, b.aUSD, 1, "USD")),   // past it
		pending(Caller{Admin: true}, "", TxRequest{Type: Deposit, To: b.aUSD2, Amount: 50, Currency: "USD"}),
	}
	Apply(batch, b.st, now, seqIDs())
	want := []Code{CodeAccountFrozen, CodeAccountFrozen, "", CodeInsufficientFunds, ""}
	if codes := resultCodes(batch); !slices.Equal(codes, want) {
		t.Errorf("results %v, want %v", codes, want)
	}
	if got := b.st.Accounts[b.aUSD2].Balance; got != -250 {
		t.Errorf("balance %d, want -250", got)
	}
}

func TestCheckAccountPatch(t *testing.T) {
	status := func(s AccountStatus) *AccountStatus { return &s }
	limit := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		name  string
		a     Account
		patch AccountPatch
		code  Code
	}{
		{"freeze", Account{Status: AccountActive, Balance: 5, Available: 5}, AccountPatch{Status: status(AccountFrozen)}, ""},
		{"close holding money", Account{Status: AccountActive, Balance: 5, Available: 5}, AccountPatch{Status: status(AccountClosed)}, CodeBalanceNotZero},
		{"close overdrawn", Account{Status: AccountActive, Balance: -5, Available: -5, OverdraftLimit: 10}, AccountPatch{Status: status(AccountClosed)}, CodeBalanceNotZero},
		{"close with a pending hold", Account{Status: AccountActive, Available: -5, OverdraftLimit: 10}, AccountPatch{Status: status(AccountClosed)}, CodeBalanceNotZero},
		{"close at zero", Account{Status: AccountFrozen}, AccountPatch{Status: status(AccountClosed)}, ""},
		{"reopen", Account{Status: AccountClosed}, AccountPatch{Status: status(AccountActive)}, CodeConflict},
		{"limit below use", Account{Status: AccountActive, Balance: -50, Available: -50, OverdraftLimit: 100}, AccountPatch{OverdraftLimit: limit(49)}, CodeConflict},
		{"limit at use", Account{Status: AccountActive, Balance: -50, Available: -50, OverdraftLimit: 100}, AccountPatch{OverdraftLimit: limit(50)}, ""},
		{"limit below use with holds", Account{Status: AccountActive, Balance: 0, Available: -50, OverdraftLimit: 100}, AccountPatch{OverdraftLimit: limit(49)}, CodeConflict},
	} {
		a := tc.a
		if got := ErrorCode(CheckAccountPatch(&a, tc.patch)); got != tc.code {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.code)
		}
	}
}
