package httpapi

import (
	"encoding/json"
	"net/http"

	"txn/internal/httpedge"
	"txn/internal/ledger"
)

type batchItemJSON struct {
	Status      int                 `json:"status"`
	Transaction *ledger.Transaction `json:"transaction,omitempty"`
	Error       *httpedge.Problem   `json:"error,omitempty"`
	Replayed    bool                `json:"replayed,omitempty"`
}

func itemError(err error) batchItemJSON {
	e, _ := err.(*ledger.Error)
	if e == nil {
		e = ledger.Errorf(ledger.CodeValidation, "%v", err)
	}
	p := problemOf(e)
	return batchItemJSON{Status: p.Status, Error: &p}
}

// createBatch applies up to 1000 requests in order in one group-commit job: each independent
// (200, a result per item), or with "atomic": true all or none (201 with every result, or the
// first failing item's problem with its index, and nothing written).
func (s *server) createBatch(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	if _, ok := r.Header["Idempotency-Key"]; ok {
		return ledger.Invalid(ledger.FieldError{Field: "Idempotency-Key",
			Message: "is not taken for a batch: give each item an idempotency_key"})
	}
	body, err := httpedge.ReadBody(w, r, maxBatchBody)
	if err != nil {
		return err
	}
	var in struct {
		Transactions []json.RawMessage `json:"transactions"`
		Atomic       bool              `json:"atomic"`
	}
	if err := httpedge.DecodeObject(body, &in); err != nil {
		return err
	}
	if len(in.Transactions) == 0 || len(in.Transactions) > 1000 {
		return ledger.Invalid(ledger.FieldError{Field: "transactions", Message: "must hold 1 to 1000 requests"})
	}
	// Each item is a request to the rate limit; the batch's own request was counted on entry.
	if err := s.charge(w, c, int64(len(in.Transactions)-1)); err != nil {
		return err
	}
	out, pending, index := batchItems(r, c, in.Transactions)
	if in.Atomic {
		if i := firstFailed(out); i >= 0 {
			writeItemProblem(w, out[i], i) // an invalid item: nothing was submitted
			return nil
		}
		g := &ledger.AtomicGroup{}
		for _, p := range pending {
			p.Group = g
		}
	}
	if len(pending) > 0 {
		if err := s.Ledger.Execute(r.Context(), pending); err != nil {
			return err
		}
	}
	for k, p := range pending {
		i := index[k]
		if p.Result.Err != nil {
			out[i] = itemError(p.Result.Err)
		} else {
			out[i] = batchItemJSON{Status: http.StatusCreated, Transaction: p.Result.Tx}
		}
		out[i].Replayed = p.Result.Replayed
	}
	if !in.Atomic {
		writeJSON(w, http.StatusOK, map[string]any{"results": out})
		return nil
	}
	// Every item of a failed group carries the failure; the group names its cause.
	for k, p := range pending {
		if p == pending[0].Group.Failed {
			writeItemProblem(w, out[index[k]], index[k])
			return nil
		}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"results": out})
	return nil
}

// batchItems decodes and validates a batch's items: out holds the answers of those refused,
// pending the others, whose positions in the batch are in index.
func batchItems(r *http.Request, c ledger.Caller, raws []json.RawMessage) (out []batchItemJSON, pending []*ledger.Pending, index []int) {
	out = make([]batchItemJSON, len(raws))
	pending = make([]*ledger.Pending, 0, len(raws))
	index = make([]int, 0, len(raws))
	for i, raw := range raws {
		var item txRequestJSON
		if err := httpedge.DecodeObject(raw, &item); err != nil {
			out[i] = itemError(err)
			continue
		}
		req, err := item.toRequest()
		if err == nil {
			err = req.Validate(c)
		}
		key := ""
		if err == nil && item.IdempotencyKey != nil {
			key = *item.IdempotencyKey
			if key == "" {
				err = ledger.Invalid(ledger.FieldError{Field: "idempotency_key", Message: "must be 1-255 characters"})
			} else {
				err = ledger.ValidateKey(key)
			}
		}
		if err != nil {
			out[i] = itemError(err)
			continue
		}
		pending = append(pending, &ledger.Pending{Caller: c, Req: req, Key: key, RequestID: RequestID(r.Context())})
		index = append(index, i)
	}
	return out, pending, index
}

// firstFailed is the index of the first item answered with a problem, or -1.
func firstFailed(out []batchItemJSON) int {
	for i, o := range out {
		if o.Error != nil {
			return i
		}
	}
	return -1
}

// writeItemProblem answers an atomic batch with item i's problem, naming its index.
func writeItemProblem(w http.ResponseWriter, item batchItemJSON, i int) {
	p := *item.Error
	p.Index = &i
	httpedge.WriteProblem(w, p)
}
