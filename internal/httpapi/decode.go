package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"txn/internal/ledger"
)

const (
	maxBody      = 64 << 10
	maxBatchBody = 4 << 20
)

// txRequestJSON is a transaction request as clients send it.
type txRequestJSON struct {
	Type          string          `json:"type"`
	FromAccountID *string         `json:"from_account_id"`
	ToAccountID   *string         `json:"to_account_id"`
	Amount        json.RawMessage `json:"amount"`
	Currency      string          `json:"currency"`
	Description   string          `json:"description"`
	Metadata      ledger.Metadata `json:"metadata"`
	// IdempotencyKey is only read in batch items; single requests use the header.
	IdempotencyKey *string `json:"idempotency_key,omitempty"`
}

// optionalID parses an id field that may be absent (uuid.Nil), adding to fields when it is
// not a UUID.
func optionalID(field string, s *string, fields *[]ledger.FieldError) uuid.UUID {
	if s == nil {
		return uuid.Nil
	}
	id, err := parseUUID(*s)
	if err != nil || id == uuid.Nil {
		*fields = append(*fields, ledger.FieldError{Field: field, Message: "must be a UUID"})
	}
	return id
}

func (j *txRequestJSON) toRequest() (ledger.TxRequest, error) {
	var fields []ledger.FieldError
	req := ledger.TxRequest{Type: ledger.TxType(j.Type), Currency: j.Currency, Description: j.Description, Metadata: j.Metadata}
	req.From = optionalID("from_account_id", j.FromAccountID, &fields)
	req.To = optionalID("to_account_id", j.ToAccountID, &fields)
	amount, msg := ledger.ParseAmount(j.Amount)
	if msg != "" {
		fields = append(fields, ledger.FieldError{Field: "amount", Message: msg})
	}
	req.Amount = amount
	if j.Type == "" {
		fields = append(fields, ledger.FieldError{Field: "type", Message: "is required"})
	}
	if j.Currency == "" {
		fields = append(fields, ledger.FieldError{Field: "currency", Message: "is required"})
	}
	if len(fields) > 0 {
		return req, ledger.Invalid(fields...)
	}
	return req, nil
}

func parseListParams(r *http.Request) (ledger.ListParams, error) {
	p := ledger.ListParams{Limit: 50, Cursor: r.URL.Query().Get("cursor")}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			return p, ledger.Invalid(ledger.FieldError{Field: "limit", Message: "must be an integer from 1 to 200"})
		}
		p.Limit = n
	}
	return p, nil
}

// pathID parses the {id} in a path; a malformed id names nothing, so it is not found.
func pathID(r *http.Request, what string) (uuid.UUID, error) {
	id, err := parseUUID(r.PathValue("id"))
	if err != nil {
		return uuid.Nil, ledger.Errorf(ledger.CodeNotFound, "%s %s not found", what, r.PathValue("id"))
	}
	return id, nil
}

// parseUUID accepts a UUID in its canonical 36-character form only: uuid.Parse also takes
// braces, a urn:uuid: prefix and 32 bare digits, and one id should have one spelling.
func parseUUID(s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.Nil, errors.New("not a canonical UUID")
	}
	return uuid.Parse(s)
}

type listJSON[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func list[T any](p ledger.Page[T]) listJSON[T] {
	out := listJSON[T]{Data: p.Items}
	if p.Next != "" {
		out.NextCursor = &p.Next
	}
	return out
}
