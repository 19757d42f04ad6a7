// Package ledger is the domain of the payments core: users, accounts and double-entry
// transactions, the rules that guard the money, and the group-commit batcher that applies
// concurrent transaction requests together. It imports no driver; stores implement its ports.
package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
)

// TxType is the kind of a transaction.
type TxType string

const (
	Deposit    TxType = "deposit"
	Withdrawal TxType = "withdrawal"
	Transfer   TxType = "transfer"
	// Reversal moves (part of) another transaction's amount back the way it came.
	Reversal TxType = "reversal"
)

// The kinds of requests that act on holds. They are requests only: a capture's transaction
// is a transfer or a withdrawal, and the others move no money.
const (
	HoldCreate  TxType = "hold"
	HoldCapture TxType = "hold_capture"
	HoldVoid    TxType = "hold_void"
	HoldExpire  TxType = "hold_expire"
)

// Caller is who makes a request: the admin, or one user through its API key.
type Caller struct {
	Admin  bool
	UserID uuid.UUID
}

// Scope is the string idempotency keys and rate limits are scoped to.
func (c Caller) Scope() string {
	if c.Admin {
		return "admin"
	}
	return c.UserID.String()
}

// CanAccess reports whether the caller may see resources owned by userID.
func (c Caller) CanAccess(userID uuid.UUID) bool { return c.Admin || c.UserID == userID }

type User struct {
	ID         uuid.UUID `json:"id"`
	Name       string    `json:"name"`
	Email      string    `json:"email"`
	WebhookURL *string   `json:"webhook_url"`
	Tags       []string  `json:"tags"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// NewUser is what creating a user returns: the user plus its secrets, shown only once.
type NewUser struct {
	User
	APIKey        string `json:"api_key"`
	WebhookSecret string `json:"webhook_secret"`
}

type Account struct {
	ID       uuid.UUID `json:"id"`
	UserID   uuid.UUID `json:"user_id"`
	Currency string    `json:"currency"`
	Balance  int64     `json:"balance"`
	// Available is what a debit may use before the overdraft limit: the balance less the
	// pending holds on the account.
	Available      int64         `json:"available"`
	Status         AccountStatus `json:"status"`
	OverdraftLimit int64         `json:"overdraft_limit"`
	CreatedAt      time.Time     `json:"created_at"`
}

// AccountStatus is an account's state: only an active one takes part in transactions.
type AccountStatus string

const (
	AccountActive AccountStatus = "active"
	AccountFrozen AccountStatus = "frozen"
	AccountClosed AccountStatus = "closed"
)

// AccountPatch changes an account's state or limit; nil fields stay as they are.
type AccountPatch struct {
	Status         *AccountStatus
	OverdraftLimit *int64
}

type Transaction struct {
	ID            uuid.UUID  `json:"id"`
	Type          TxType     `json:"type"`
	Status        string     `json:"status"`
	FromAccountID *uuid.UUID `json:"from_account_id"`
	ToAccountID   *uuid.UUID `json:"to_account_id"`
	Amount        int64      `json:"amount"`
	Currency      string     `json:"currency"`
	Description   string     `json:"description"`
	Metadata      Metadata   `json:"metadata"`
	// Reverses is the transaction a reversal reverses.
	Reverses *uuid.UUID `json:"reverses,omitempty"`
	// HoldID is the hold a capture captured.
	HoldID    *uuid.UUID `json:"hold_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// StatusCompleted is the only status a stored transaction has: it is applied whole or not at all.
const StatusCompleted = "completed"

type Entry struct {
	TransactionID uuid.UUID `json:"transaction_id"`
	AccountID     uuid.UUID `json:"-"`
	Amount        int64     `json:"amount"`
	BalanceAfter  int64     `json:"balance_after"`
	CreatedAt     time.Time `json:"created_at"`
}

// TxRequest is a validated request to move money. Zero ids mean "absent".
type TxRequest struct {
	Type        TxType
	From        uuid.UUID
	To          uuid.UUID
	Amount      int64
	Currency    string
	Description string
	Metadata    Metadata
	Reverses    uuid.UUID // for a reversal: the transaction reversed; Amount 0 means all that is left
	// Hold is the hold a capture, void or expiry acts on (a capture's Amount 0 means all).
	Hold uuid.UUID
	// ExpiresIn is how long a new hold stays pending.
	ExpiresIn time.Duration
}

// Hash identifies the request's content, to tell an idempotent replay from a reused key.
func (r TxRequest) Hash() [32]byte {
	h := sha256.New()
	h.Write([]byte(r.Type))
	h.Write([]byte{0})
	h.Write(r.From[:])
	h.Write(r.To[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(r.Amount))
	h.Write(n[:])
	h.Write([]byte(r.Currency))
	h.Write([]byte{0})
	h.Write([]byte(r.Description))
	// Only when present, so other requests keep the hashes stored before these existed.
	if r.Reverses != uuid.Nil {
		h.Write([]byte{1})
		h.Write(r.Reverses[:])
	}
	if r.Hold != uuid.Nil {
		h.Write([]byte{2})
		h.Write(r.Hold[:])
	}
	if r.ExpiresIn != 0 {
		binary.BigEndian.PutUint64(n[:], uint64(r.ExpiresIn))
		h.Write([]byte{3})
		h.Write(n[:])
	}
	if len(r.Metadata) > 0 { // sorting allocates; most requests carry none
		for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
			h.Write([]byte{0})
			h.Write([]byte(k))
			h.Write([]byte{0})
			h.Write([]byte(r.Metadata[k]))
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// externalNS derives the per-currency external account ids, so every process knows them
// without a lookup.
var externalNS = uuid.MustParse("6f1c3d2e-8a4b-4c59-9d7e-2b1a0f3e4d5c")

// ExternalAccountID is the id of the account that deposits and withdrawals in currency move
// money against; its balance is minus the money that entered the system in that currency.
func ExternalAccountID(currency string) uuid.UUID {
	return uuid.NewSHA1(externalNS, []byte("external:"+currency))
}

// Page is one page of a list; Next is the cursor for the following page, "" at the end.
type Page[T any] struct {
	Items []T
	Next  string
}

// ListParams bounds a list query.
type ListParams struct {
	Limit  int
	Cursor string
}

// CurrencyBalance is one currency's line of the reconciliation.
type CurrencyBalance struct {
	AccountsTotal int64 `json:"accounts_total"`
	ExternalTotal int64 `json:"external_total"`
	Sum           int64 `json:"sum"`
	Balanced      bool  `json:"balanced"`
	// EntriesSum is the sum of every entry in the currency; zero when double entry holds.
	EntriesSum int64 `json:"entries_sum"`
	// AccountsMatchingEntries is false when some account's balance differs from its entries.
	AccountsMatchingEntries bool `json:"accounts_match_entries"`
}

// PurgeResult counts what a purge removed.
type PurgeResult struct {
	Users        int64 `json:"users"`
	Accounts     int64 `json:"accounts"`
	Transactions int64 `json:"transactions"`
}

// BalanceAt is an account's balance after every entry created at or before At.
type BalanceAt struct {
	AccountID uuid.UUID `json:"account_id"`
	At        time.Time `json:"at"`
	Balance   int64     `json:"balance"`
}

// StatementLine is an entry of a statement, with its transaction's type and description.
type StatementLine struct {
	Entry
	Type        TxType `json:"type"`
	Description string `json:"description"`
}

// Statement is an account's entries created in [From, To), oldest first, between the balance
// before them (Opening) and after them (Closing = Opening + their amounts).
type Statement struct {
	AccountID      uuid.UUID       `json:"account_id"`
	Currency       string          `json:"currency"`
	From           time.Time       `json:"from"`
	To             time.Time       `json:"to"`
	OpeningBalance int64           `json:"opening_balance"`
	ClosingBalance int64           `json:"closing_balance"`
	Entries        []StatementLine `json:"entries"`
}

// MaxStatementSpan bounds a statement's period, so one request reads a bounded share of an
// account's history.
const MaxStatementSpan = 366 * 24 * time.Hour

// TxFilter selects transactions to list; zero fields select all.
type TxFilter struct {
	AccountID uuid.UUID // transactions with an entry on this account
	Type      TxType
	From, To  time.Time // created in [From, To)
	Metadata  Metadata  // carrying every one of these pairs
}
