package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"txn/internal/httpedge"
	"txn/internal/ledger"
)

// writeResult answers with a request's result from group commit: status and its transaction
// or hold, or its problem; a replay says so.
func writeResult(w http.ResponseWriter, p *ledger.Pending, status int) {
	if p.Result.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	switch {
	case p.Result.Err != nil:
		writeProblem(w, p.Result.Err)
	case p.Result.Hold != nil:
		writeJSON(w, status, p.Result.Hold)
	default:
		writeJSON(w, status, p.Result.Tx)
	}
}

// createHold answers POST /holds: 201 with the pending hold.
func (s *server) createHold(w http.ResponseWriter, r *http.Request) error {
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	body, err := httpedge.ReadBody(w, r, maxBody)
	if err != nil {
		return err
	}
	var in struct {
		FromAccountID *string         `json:"from_account_id"`
		ToAccountID   *string         `json:"to_account_id"`
		Amount        json.RawMessage `json:"amount"`
		Currency      string          `json:"currency"`
		Description   string          `json:"description"`
		ExpiresInS    json.RawMessage `json:"expires_in_s"`
		Metadata      ledger.Metadata `json:"metadata"`
	}
	if err := httpedge.DecodeObject(body, &in); err != nil {
		return err
	}
	hold := ledger.HoldInput{Currency: in.Currency, Description: in.Description, Metadata: in.Metadata}
	var fields []ledger.FieldError
	hold.From = optionalID("from_account_id", in.FromAccountID, &fields)
	hold.To = optionalID("to_account_id", in.ToAccountID, &fields)
	amount, msg := ledger.ParseAmount(in.Amount)
	if msg != "" {
		fields = append(fields, ledger.FieldError{Field: "amount", Message: msg})
	}
	hold.Amount = amount
	if in.ExpiresInS != nil {
		n, err := strconv.ParseInt(string(in.ExpiresInS), 10, 64)
		if err != nil || n < 1 || n > int64(ledger.MaxHoldExpiry/time.Second) {
			fields = append(fields, ledger.FieldError{Field: "expires_in_s", Message: "must be an integer from 1 to 2592000"})
		}
		hold.ExpiresIn = time.Duration(n) * time.Second
	}
	if len(fields) > 0 {
		return ledger.Invalid(fields...)
	}
	p, err := s.Ledger.CreateHold(r.Context(), caller(r), hold, key, RequestID(r.Context()))
	if err != nil {
		return err
	}
	writeResult(w, p, http.StatusCreated)
	return nil
}

func (s *server) getHold(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "hold")
	if err != nil {
		return err
	}
	h, err := s.Ledger.Hold(r.Context(), caller(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

// captureHold answers POST /holds/{id}/capture: 201 with the transaction that moved the
// money; no body captures the whole hold.
func (s *server) captureHold(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "hold")
	if err != nil {
		return err
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	var in struct {
		Amount json.RawMessage `json:"amount"`
	}
	if err := httpedge.DecodeOptional(w, r, maxBody, &in); err != nil {
		return err
	}
	var amount int64
	if in.Amount != nil {
		var msg string
		if amount, msg = ledger.ParseAmount(in.Amount); msg != "" {
			return ledger.Invalid(ledger.FieldError{Field: "amount", Message: msg})
		}
	}
	p, err := s.Ledger.CaptureHold(r.Context(), caller(r), id, amount, key, RequestID(r.Context()))
	if err != nil {
		return err
	}
	writeResult(w, p, http.StatusCreated)
	return nil
}

// voidHold answers POST /holds/{id}/void: 200 with the voided hold.
func (s *server) voidHold(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "hold")
	if err != nil {
		return err
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	p, err := s.Ledger.VoidHold(r.Context(), caller(r), id, key, RequestID(r.Context()))
	if err != nil {
		return err
	}
	writeResult(w, p, http.StatusOK)
	return nil
}
