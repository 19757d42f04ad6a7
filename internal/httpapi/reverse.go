package httpapi

import (
	"encoding/json"
	"net/http"

	"txn/internal/httpedge"
	"txn/internal/ledger"
)

// idempotencyKey reads the optional Idempotency-Key header.
func idempotencyKey(r *http.Request) (string, error) {
	v, ok := r.Header["Idempotency-Key"]
	if !ok {
		return "", nil
	}
	if v[0] == "" {
		return "", ledger.Invalid(ledger.FieldError{Field: "Idempotency-Key", Message: "must be 1-255 characters"})
	}
	return v[0], ledger.ValidateKey(v[0])
}

// reverseTransaction answers POST /transactions/{id}/reverse: 201 with the reversal, which
// moves the amount (by default all that is not reversed yet) back the way it came.
func (s *server) reverseTransaction(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "transaction")
	if err != nil {
		return err
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	var in struct {
		Amount      json.RawMessage `json:"amount"`
		Description string          `json:"description"`
		Metadata    ledger.Metadata `json:"metadata"`
	}
	if err := httpedge.DecodeOptional(w, r, maxBody, &in); err != nil { // no body reverses everything, undescribed
		return err
	}
	rev := ledger.ReverseInput{Description: in.Description, Metadata: in.Metadata}
	if in.Amount != nil {
		amount, msg := ledger.ParseAmount(in.Amount)
		if msg != "" {
			return ledger.Invalid(ledger.FieldError{Field: "amount", Message: msg})
		}
		rev.Amount = amount
	}
	p, err := s.Ledger.Reverse(r.Context(), caller(r), id, rev, key, RequestID(r.Context()))
	if err != nil {
		return err
	}
	writeResult(w, p, http.StatusCreated)
	return nil
}
