package httpapi

import (
	"net/http"
	"strings"

	"github.com/google/uuid"

	"txn/internal/ledger"
)

// listTransactions answers GET /transactions?account_id=&type=&from=&to=&metadata.<key>=<value>.
// An unknown parameter is refused: a misspelt filter would silently widen the list.
func (s *server) listTransactions(w http.ResponseWriter, r *http.Request) error {
	p, err := parseListParams(r)
	if err != nil {
		return err
	}
	f, err := parseTxFilter(r)
	if err != nil {
		return err
	}
	page, err := s.Ledger.Transactions(r.Context(), caller(r), f, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(page))
	return nil
}

func parseTxFilter(r *http.Request) (ledger.TxFilter, error) {
	var f ledger.TxFilter
	var fields []ledger.FieldError
	bad := func(field, msg string) { fields = append(fields, ledger.FieldError{Field: field, Message: msg}) }
	for name, values := range r.URL.Query() {
		if len(values) > 1 {
			bad(name, "must be given once")
			continue
		}
		v := values[0]
		switch {
		case name == "limit" || name == "cursor":
		case name == "account_id":
			id, err := parseUUID(v)
			if err != nil || id == uuid.Nil {
				bad(name, "must be a UUID")
			}
			f.AccountID = id
		case name == "type":
			f.Type = ledger.TxType(v)
			if f.Type != ledger.Deposit && f.Type != ledger.Withdrawal && f.Type != ledger.Transfer && f.Type != ledger.Reversal {
				bad(name, `must be "deposit", "withdrawal", "transfer" or "reversal"`)
			}
		case name == "from" || name == "to":
			t, err := queryTime(r, name)
			if err != nil {
				return f, err
			}
			if name == "from" {
				f.From = t.UTC()
			} else {
				f.To = t.UTC()
			}
		case strings.HasPrefix(name, "metadata."):
			key := strings.TrimPrefix(name, "metadata.")
			if !ledger.ValidMetadataKey(key) {
				bad(name, "names a metadata key: 1-40 characters of A-Z, a-z, 0-9, _, . and -")
				continue
			}
			if f.Metadata == nil {
				f.Metadata = ledger.Metadata{}
			}
			f.Metadata[key] = v
		default:
			bad(name, "is not a filter of this list (account_id, type, from, to, metadata.<key>, limit, cursor)")
		}
	}
	if len(fields) > 0 {
		return f, ledger.Invalid(fields...)
	}
	return f, nil
}
