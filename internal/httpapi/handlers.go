package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/google/uuid"

	"txn/internal/httpedge"
	"txn/internal/ledger"
)

// --- users ---

func (s *server) createUser(w http.ResponseWriter, r *http.Request) error {
	body, err := httpedge.ReadBody(w, r, maxBody)
	if err != nil {
		return err
	}
	var in struct {
		Name       string   `json:"name"`
		Email      string   `json:"email"`
		WebhookURL *string  `json:"webhook_url"`
		Tags       []string `json:"tags"`
	}
	if err := httpedge.DecodeObject(body, &in); err != nil {
		return err
	}
	u, err := s.Ledger.CreateUser(r.Context(), caller(r), ledger.NewUserInput{
		Name: in.Name, Email: in.Email, WebhookURL: in.WebhookURL, Tags: in.Tags})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, u)
	return nil
}

func (s *server) getUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "user")
	if err != nil {
		return err
	}
	u, err := s.Ledger.User(r.Context(), caller(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (s *server) listUsers(w http.ResponseWriter, r *http.Request) error {
	p, err := parseListParams(r)
	if err != nil {
		return err
	}
	page, err := s.Ledger.Users(r.Context(), caller(r), r.URL.Query().Get("tag"), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(page))
	return nil
}

func (s *server) updateUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "user")
	if err != nil {
		return err
	}
	body, err := httpedge.ReadBody(w, r, maxBody)
	if err != nil {
		return err
	}
	// A map, to tell a field set to null (clear it) from a field left out (keep it).
	var in map[string]json.RawMessage
	if err := httpedge.DecodeObject(body, &in); err != nil {
		return err
	}
	var patch ledger.UserPatch
	for k, v := range in {
		switch k {
		case "name":
			var name string
			if err := json.Unmarshal(v, &name); err != nil || string(v) == "null" {
				return ledger.Invalid(ledger.FieldError{Field: "name", Message: "must be a string"})
			}
			patch.Name = &name
		case "webhook_url":
			var url *string
			if err := json.Unmarshal(v, &url); err != nil {
				return ledger.Invalid(ledger.FieldError{Field: "webhook_url", Message: "must be a string or null"})
			}
			patch.WebhookURL = &url
		default:
			return ledger.Errorf(ledger.CodeInvalidJSON, "unknown field %q", k)
		}
	}
	u, err := s.Ledger.UpdateUser(r.Context(), caller(r), id, patch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

// --- accounts ---

func (s *server) createAccount(w http.ResponseWriter, r *http.Request) error {
	body, err := httpedge.ReadBody(w, r, maxBody)
	if err != nil {
		return err
	}
	var in struct {
		UserID         *string `json:"user_id"`
		Currency       string  `json:"currency"`
		OverdraftLimit int64   `json:"overdraft_limit"`
	}
	if err := httpedge.DecodeObject(body, &in); err != nil {
		return err
	}
	var userID uuid.UUID
	if in.UserID != nil {
		if userID, err = parseUUID(*in.UserID); err != nil {
			return ledger.Invalid(ledger.FieldError{Field: "user_id", Message: "must be a UUID"})
		}
	}
	a, err := s.Ledger.CreateAccount(r.Context(), caller(r), userID, in.Currency, in.OverdraftLimit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

// updateAccount answers PATCH /accounts/{id} {"status"?, "overdraft_limit"?}.
func (s *server) updateAccount(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "account")
	if err != nil {
		return err
	}
	body, err := httpedge.ReadBody(w, r, maxBody)
	if err != nil {
		return err
	}
	var in struct {
		Status         *ledger.AccountStatus `json:"status"`
		OverdraftLimit *int64                `json:"overdraft_limit"`
	}
	if err := httpedge.DecodeObject(body, &in); err != nil {
		return err
	}
	a, err := s.Ledger.UpdateAccount(r.Context(), caller(r), id, ledger.AccountPatch{Status: in.Status, OverdraftLimit: in.OverdraftLimit})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *server) getAccount(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "account")
	if err != nil {
		return err
	}
	a, err := s.Ledger.Account(r.Context(), caller(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *server) listAccounts(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "user")
	if err != nil {
		return err
	}
	p, err := parseListParams(r)
	if err != nil {
		return err
	}
	page, err := s.Ledger.Accounts(r.Context(), caller(r), id, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(page))
	return nil
}

func (s *server) listEntries(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "account")
	if err != nil {
		return err
	}
	p, err := parseListParams(r)
	if err != nil {
		return err
	}
	page, err := s.Ledger.Entries(r.Context(), caller(r), id, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(page))
	return nil
}

// --- transactions ---

func (s *server) createTransaction(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	body, err := httpedge.ReadBody(w, r, maxBody)
	if err != nil {
		return err
	}
	var in txRequestJSON
	if err := httpedge.DecodeObject(body, &in); err != nil {
		return err
	}
	if in.IdempotencyKey != nil {
		return ledger.Errorf(ledger.CodeInvalidJSON, `unknown field "idempotency_key": use the Idempotency-Key header`)
	}
	req, err := in.toRequest()
	if err != nil {
		return err
	}
	if err := req.Validate(c); err != nil {
		return err
	}
	p := &ledger.Pending{Caller: c, Req: req, Key: key, RequestID: RequestID(r.Context())}
	if err := s.Ledger.Execute(r.Context(), []*ledger.Pending{p}); err != nil {
		return err
	}
	writeResult(w, p, http.StatusCreated)
	return nil
}

func (s *server) getTransaction(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "transaction")
	if err != nil {
		return err
	}
	tx, err := s.Ledger.Transaction(r.Context(), caller(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tx)
	return nil
}

// --- admin ---

func (s *server) reconciliation(w http.ResponseWriter, r *http.Request) error {
	rec, err := s.Ledger.Reconcile(r.Context(), caller(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"currencies": rec})
	return nil
}

func (s *server) purge(w http.ResponseWriter, r *http.Request) error {
	body, err := httpedge.ReadBody(w, r, maxBody)
	if err != nil {
		return err
	}
	var in struct {
		Tag string `json:"tag"`
	}
	if err := httpedge.DecodeObject(body, &in); err != nil {
		return err
	}
	res, err := s.Ledger.Purge(r.Context(), caller(r), in.Tag)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
