// Package event defines the versioned events the processor writes to its outbox and the
// pipeline carries to Kafka. The format is a contract between services: see docs/events.md.
package event

import (
	"time"

	"github.com/google/uuid"
)

// Version is the schema version of Event; consumers reject versions they do not know.
const Version = 1

// TypeTransactionCompleted is the type of the event every committed transaction yields.
const TypeTransactionCompleted = "transaction.completed"

// The types of the events of a hold's life; its capture is a transaction.completed whose
// transaction names the hold.
const (
	TypeHoldCreated = "hold.created"
	TypeHoldVoided  = "hold.voided"
	TypeHoldExpired = "hold.expired"
)

// Event is one committed fact. ID is unique and stable: every downstream effect is keyed on it.
type Event struct {
	Version    int       `json:"version"`
	ID         uuid.UUID `json:"id"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	RequestID  string    `json:"request_id,omitempty"`
	// Transaction is set for transaction.completed, Hold for the hold events.
	Transaction Transaction `json:"transaction,omitzero"`
	Hold        *Hold       `json:"hold,omitempty"`
}

// Hold is the hold as the event carries it, with the owners of both sides.
type Hold struct {
	ID             uuid.UUID         `json:"id"`
	Status         string            `json:"status"`
	FromAccountID  uuid.UUID         `json:"from_account_id"`
	ToAccountID    *uuid.UUID        `json:"to_account_id"`
	FromUserID     uuid.UUID         `json:"from_user_id"`
	ToUserID       *uuid.UUID        `json:"to_user_id"`
	Amount         int64             `json:"amount"`
	CapturedAmount int64             `json:"captured_amount"`
	Currency       string            `json:"currency"`
	Description    string            `json:"description"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	ExpiresAt      time.Time         `json:"expires_at"`
	CreatedAt      time.Time         `json:"created_at"`
}

// Transaction is the transaction as the event carries it, with the owners of both sides so
// consumers need no lookups.
type Transaction struct {
	ID            uuid.UUID  `json:"id"`
	Type          string     `json:"type"`
	FromAccountID *uuid.UUID `json:"from_account_id"`
	ToAccountID   *uuid.UUID `json:"to_account_id"`
	FromUserID    *uuid.UUID `json:"from_user_id"`
	ToUserID      *uuid.UUID `json:"to_user_id"`
	Amount        int64      `json:"amount"`
	Currency      string     `json:"currency"`
	Description   string     `json:"description"`
	// Metadata is the transaction's string pairs; absent when it has none.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Reverses is, for a reversal, the transaction it reverses.
	Reverses *uuid.UUID `json:"reverses,omitempty"`
	// HoldID is, for a capture, the hold it captured.
	HoldID    *uuid.UUID `json:"hold_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// Key is the partition key: events of one source account stay in order (deposits use the
// receiving account; holds their from account).
func (e *Event) Key() string {
	if e.Hold != nil {
		return e.Hold.FromAccountID.String()
	}
	if e.Transaction.FromAccountID != nil {
		return e.Transaction.FromAccountID.String()
	}
	if e.Transaction.ToAccountID != nil {
		return e.Transaction.ToAccountID.String()
	}
	return e.Transaction.ID.String()
}
