// Package pipeline turns transaction events into their downstream effects: an analytics row,
// activity items for each side's user and a notification task per affected user. Every effect
// has an id derived from the event id, so applying an event twice changes nothing.
package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"txn/internal/event"
	"txn/internal/ledger"
)

// PermanentError marks input that no retry can fix: it goes to the dead-letter topic.
type PermanentError struct{ Reason string }

func (e *PermanentError) Error() string { return "permanent: " + e.Reason }

// Decode parses and checks one event.
func Decode(b []byte) (*event.Event, error) {
	var ev event.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, &PermanentError{Reason: "not an event: " + err.Error()}
	}
	switch {
	case ev.Version != event.Version:
		return nil, &PermanentError{Reason: fmt.Sprintf("unknown event version %d", ev.Version)}
	case ev.ID == uuid.Nil:
		return nil, &PermanentError{Reason: "event without id"}
	}
	var reason string
	switch ev.Type {
	case event.TypeTransactionCompleted:
		reason = checkTransaction(&ev.Transaction)
	case event.TypeHoldCreated, event.TypeHoldVoided, event.TypeHoldExpired:
		reason = checkHold(ev.Hold)
	default:
		reason = fmt.Sprintf("unknown event type %q", ev.Type)
	}
	if reason != "" {
		return nil, &PermanentError{Reason: reason}
	}
	return &ev, nil
}

func checkTransaction(t *event.Transaction) string {
	switch {
	case t.ID == uuid.Nil:
		return "event without transaction id"
	case t.Amount < 1 || !ledger.ValidCurrency(t.Currency):
		return "event with an invalid amount or currency"
	case t.FromAccountID == nil && t.ToAccountID == nil:
		return "event without accounts"
	case (t.FromAccountID != nil) != (t.FromUserID != nil) || (t.ToAccountID != nil) != (t.ToUserID != nil):
		return "event with an account but no owner"
	}
	switch ledger.TxType(t.Type) {
	case ledger.Deposit, ledger.Withdrawal, ledger.Transfer, ledger.Reversal:
		return ""
	}
	return fmt.Sprintf("unknown transaction type %q", t.Type)
}

func checkHold(h *event.Hold) string {
	switch {
	case h == nil || h.ID == uuid.Nil || h.FromAccountID == uuid.Nil || h.FromUserID == uuid.Nil:
		return "hold event without hold, account or owner"
	case h.Amount < 1 || !ledger.ValidCurrency(h.Currency):
		return "hold event with an invalid amount or currency"
	case (h.ToAccountID != nil) != (h.ToUserID != nil):
		return "hold event with an account but no owner"
	}
	return ""
}

// The analytics and activity types of what is not a plain transaction: a hold's events, and a
// transaction that captured a hold.
const (
	KindHold        = "hold"
	KindHoldVoided  = "hold_voided"
	KindHoldExpired = "hold_expired"
	KindCapture     = "capture"
)

// MovesMoney reports whether analytics rows of kind are transactions: a hold's events only
// reserve and release money.
func MovesMoney(kind string) bool {
	return kind != KindHold && kind != KindHoldVoided && kind != KindHoldExpired
}

// holdKind is the analytics and activity type of a hold event.
func holdKind(evType string) string {
	switch evType {
	case event.TypeHoldVoided:
		return KindHoldVoided
	case event.TypeHoldExpired:
		return KindHoldExpired
	}
	return KindHold
}

// txKind is the analytics and activity type of a transaction: captures count apart from the
// transfers and withdrawals they are.
func txKind(t *event.Transaction) string {
	if t.HoldID != nil {
		return KindCapture
	}
	return t.Type
}

// AnalyticsRow is one transaction in the analytics store, keyed by its event id.
type AnalyticsRow struct {
	EventID       uuid.UUID
	TransactionID uuid.UUID
	Type          string
	Currency      string
	Amount        int64
	FromAccountID uuid.UUID // uuid.Nil when absent
	ToAccountID   uuid.UUID
	FromUserID    uuid.UUID
	ToUserID      uuid.UUID
	Description   string
	CreatedAt     time.Time
}

func nz(p *uuid.UUID) uuid.UUID {
	if p == nil {
		return uuid.Nil
	}
	return *p
}

// RowOf is the event's analytics row; a hold event's row carries the hold's id and amount.
func RowOf(ev *event.Event) AnalyticsRow {
	if h := ev.Hold; h != nil {
		return AnalyticsRow{EventID: ev.ID, TransactionID: h.ID, Type: holdKind(ev.Type), Currency: h.Currency,
			Amount: h.Amount, FromAccountID: h.FromAccountID, ToAccountID: nz(h.ToAccountID),
			FromUserID: h.FromUserID, ToUserID: nz(h.ToUserID), Description: h.Description, CreatedAt: ev.OccurredAt}
	}
	t := ev.Transaction
	return AnalyticsRow{EventID: ev.ID, TransactionID: t.ID, Type: txKind(&t), Currency: t.Currency, Amount: t.Amount,
		FromAccountID: nz(t.FromAccountID), ToAccountID: nz(t.ToAccountID),
		FromUserID: nz(t.FromUserID), ToUserID: nz(t.ToUserID),
		Description: t.Description, CreatedAt: t.CreatedAt}
}

// Activity is one item of a user's activity feed (API.md), signed for that user.
type Activity struct {
	ID                    string     `json:"id"`
	UserID                uuid.UUID  `json:"-"`
	EventID               uuid.UUID  `json:"event_id"`
	TransactionID         uuid.UUID  `json:"transaction_id"`
	Type                  string     `json:"type"`
	Amount                int64      `json:"amount"`
	Currency              string     `json:"currency"`
	AccountID             uuid.UUID  `json:"account_id"`
	CounterpartyAccountID *uuid.UUID `json:"counterparty_account_id"`
	CreatedAt             time.Time  `json:"created_at"`
}

var effectNS = uuid.MustParse("3b0f1d6a-5c2e-4e8b-9f7a-1d2c3b4a5e6f")

// effectID derives a stable id for one effect of an event: the event id's first 8 bytes (its
// UUIDv7 millisecond time and version), then 8 bytes of a SHA-1 of the event id and what.
// Effects are thus ordered by time like their events: the stores' _id indexes take them near
// their end instead of at random pages, which under load cost a page write per document.
func effectID(eventID uuid.UUID, what string) uuid.UUID {
	h := uuid.NewSHA1(effectNS, append(eventID[:], what...))
	id := eventID
	copy(id[8:], h[8:]) // h[8] carries the RFC 4122 variant bits, as eventID[8] did
	return id
}

// ActivitiesOf gives each side's user its item: a deposit its receiver, a withdrawal its
// sender, a transfer both; a hold's events go to the user whose money it reserves, with the
// amount reserved (negative) or released.
func ActivitiesOf(ev *event.Event) []Activity {
	if h := ev.Hold; h != nil {
		amount := h.Amount
		if ev.Type == event.TypeHoldCreated {
			amount = -amount
		}
		return []Activity{{ID: effectID(ev.ID, "activity:hold").String(), UserID: h.FromUserID, EventID: ev.ID,
			TransactionID: h.ID, Type: holdKind(ev.Type), Amount: amount, Currency: h.Currency,
			AccountID: h.FromAccountID, CounterpartyAccountID: h.ToAccountID, CreatedAt: ev.OccurredAt}}
	}
	t := ev.Transaction
	kind := txKind(&t)
	var out []Activity
	if t.FromAccountID != nil {
		out = append(out, Activity{ID: effectID(ev.ID, "activity:debit").String(), UserID: *t.FromUserID,
			EventID: ev.ID, TransactionID: t.ID, Type: kind, Amount: -t.Amount, Currency: t.Currency,
			AccountID: *t.FromAccountID, CounterpartyAccountID: t.ToAccountID, CreatedAt: t.CreatedAt})
	}
	if t.ToAccountID != nil {
		out = append(out, Activity{ID: effectID(ev.ID, "activity:credit").String(), UserID: *t.ToUserID,
			EventID: ev.ID, TransactionID: t.ID, Type: kind, Amount: t.Amount, Currency: t.Currency,
			AccountID: *t.ToAccountID, CounterpartyAccountID: t.FromAccountID, CreatedAt: t.CreatedAt})
	}
	return out
}

// Task asks the notifier to tell one user about one transaction.
type Task struct {
	NotificationID uuid.UUID `json:"notification_id"`
	EventID        uuid.UUID `json:"event_id"`
	UserID         uuid.UUID `json:"user_id"`
	TransactionID  uuid.UUID `json:"transaction_id"`
	Kind           string    `json:"kind"`
	Message        string    `json:"message"`
	Amount         int64     `json:"amount"`
	Currency       string    `json:"currency"`
	CreatedAt      time.Time `json:"created_at"`
	RequestID      string    `json:"request_id,omitempty"`
}

// TasksOf notifies each side's user once per transaction (a capture as the transfer or
// withdrawal it is). A transfer between two accounts of the same user still gives that user
// two notifications: one sent, one received. A hold's events notify no one: its capture does.
func TasksOf(ev *event.Event) []Task {
	if ev.Hold != nil {
		return nil
	}
	t := ev.Transaction
	amount := ledger.FormatAmount(t.Amount, t.Currency)
	task := func(side string, user uuid.UUID, kind, msg string) Task {
		return Task{NotificationID: effectID(ev.ID, "notification:"+side), EventID: ev.ID, UserID: user,
			TransactionID: t.ID, Kind: kind, Message: msg, Amount: t.Amount, Currency: t.Currency,
			CreatedAt: t.CreatedAt, RequestID: ev.RequestID}
	}
	var out []Task
	switch ledger.TxType(t.Type) {
	case ledger.Deposit:
		out = append(out, task("credit", *t.ToUserID, "deposit_received", "Deposit of "+amount+" received"))
	case ledger.Withdrawal:
		out = append(out, task("debit", *t.FromUserID, "withdrawal_completed", "Withdrawal of "+amount+" completed"))
	case ledger.Transfer:
		out = append(out,
			task("debit", *t.FromUserID, "transfer_sent", "Transfer of "+amount+" sent"),
			task("credit", *t.ToUserID, "transfer_received", "Transfer of "+amount+" received"))
	case ledger.Reversal:
		// A side outside the ledger (a reversed deposit or withdrawal) has no user to tell.
		if t.FromUserID != nil {
			out = append(out, task("debit", *t.FromUserID, "reversal_debited", "Reversal of "+amount+" taken back"))
		}
		if t.ToUserID != nil {
			out = append(out, task("credit", *t.ToUserID, "reversal_credited", "Reversal of "+amount+" returned"))
		}
	}
	return out
}

// Ports the consumer writes through; each must be idempotent on the ids it is given.
type (
	AnalyticsWriter interface {
		InsertTransactions(ctx context.Context, rows []AnalyticsRow) error
	}
	ActivityWriter interface {
		UpsertActivities(ctx context.Context, items []Activity) error
	}
	TaskPublisher interface {
		PublishTasks(ctx context.Context, tasks []Task) error
	}
)

// Analytics is the answer of GET /admin/analytics.
type Analytics struct {
	From   time.Time       `json:"from"`
	To     time.Time       `json:"to"`
	Total  Volume          `json:"total"`
	ByType []TypeAnalytics `json:"by_type"`
}

type Volume struct {
	Count  int64 `json:"count"`
	Volume int64 `json:"volume"`
}

type TypeAnalytics struct {
	Type     string `json:"type"`
	Currency string `json:"currency"`
	Count    int64  `json:"count"`
	Volume   int64  `json:"volume"`
}
