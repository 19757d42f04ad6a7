package ledger

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// CreateAccount opens an account; a user may omit userID to open one for itself.
func (s *Service) CreateAccount(ctx context.Context, c Caller, userID uuid.UUID, currency string, overdraftLimit int64) (*Account, error) {
	var fields []FieldError
	if overdraftLimit < 0 || overdraftLimit > MaxAmount {
		fields = append(fields, FieldError{Field: "overdraft_limit", Message: "must be an integer from 0 to 1000000000000"})
	}
	if userID == uuid.Nil {
		if c.Admin {
			fields = append(fields, FieldError{Field: "user_id", Message: "is required"})
		} else {
			userID = c.UserID
		}
	}
	if !ValidCurrency(currency) {
		fields = append(fields, FieldError{Field: "currency", Message: "must be an ISO 4217 currency code"})
	}
	if len(fields) > 0 {
		return nil, Invalid(fields...)
	}
	if !c.CanAccess(userID) {
		return nil, notFound("user", userID)
	}
	if overdraftLimit != 0 && !c.Admin {
		return nil, errForbidden
	}
	a := &Account{ID: uuid.Must(uuid.NewV7()), UserID: userID, Currency: currency, Status: AccountActive,
		OverdraftLimit: overdraftLimit, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := s.store.CreateAccount(ctx, a); err == ErrNotFound {
		return nil, notFound("user", userID)
	} else if err != nil {
		return nil, err
	}
	return a, nil
}

func (s *Service) Account(ctx context.Context, c Caller, id uuid.UUID) (*Account, error) {
	a, err := s.store.Account(ctx, id)
	if err == ErrNotFound || (err == nil && !c.CanAccess(a.UserID)) {
		return nil, notFound("account", id)
	}
	return a, err
}

// UpdateAccount freezes, unfreezes or closes an account, or changes its overdraft limit. Admin
// only. Errors: forbidden, validation_failed, not_found, conflict (closed accounts stay closed;
// a limit the balance already goes past), balance_not_zero (closing an account holding money).
func (s *Service) UpdateAccount(ctx context.Context, c Caller, id uuid.UUID, patch AccountPatch) (*Account, error) {
	if !c.Admin {
		return nil, errForbidden
	}
	var fields []FieldError
	if st := patch.Status; st != nil && *st != AccountActive && *st != AccountFrozen && *st != AccountClosed {
		fields = append(fields, FieldError{Field: "status", Message: `must be "active", "frozen" or "closed"`})
	}
	if l := patch.OverdraftLimit; l != nil && (*l < 0 || *l > MaxAmount) {
		fields = append(fields, FieldError{Field: "overdraft_limit", Message: "must be an integer from 0 to 1000000000000"})
	}
	if len(fields) > 0 {
		return nil, Invalid(fields...)
	}
	a, err := s.store.UpdateAccount(ctx, id, patch)
	if err == ErrNotFound {
		return nil, notFound("account", id)
	}
	return a, err
}

// CheckAccountPatch applies patch to a (read with its row locked) or says why it cannot be.
func CheckAccountPatch(a *Account, patch AccountPatch) error {
	if a.Status == AccountClosed {
		return Errorf(CodeConflict, "account %s is closed: it cannot be changed or reopened", a.ID)
	}
	if l := patch.OverdraftLimit; l != nil {
		if a.Available < -*l {
			return Errorf(CodeConflict, "account %s has %d available: an overdraft limit of %d is below what it uses", a.ID, a.Available, *l)
		}
		a.OverdraftLimit = *l
	}
	if st := patch.Status; st != nil {
		if *st == AccountClosed && a.Balance != 0 {
			return Errorf(CodeBalanceNotZero, "account %s has a balance of %d: bring it to 0 before closing", a.ID, a.Balance)
		}
		if *st == AccountClosed && a.Available != a.Balance {
			return Errorf(CodeBalanceNotZero, "account %s has %d on pending holds: capture or void them before closing",
				a.ID, a.Balance-a.Available)
		}
		a.Status = *st
	}
	return nil
}

func (s *Service) Accounts(ctx context.Context, c Caller, userID uuid.UUID, p ListParams) (Page[Account], error) {
	if _, err := s.User(ctx, c, userID); err != nil {
		return Page[Account]{}, err
	}
	return s.store.Accounts(ctx, userID, p)
}

func (s *Service) Entries(ctx context.Context, c Caller, accountID uuid.UUID, p ListParams) (Page[Entry], error) {
	if _, err := s.Account(ctx, c, accountID); err != nil {
		return Page[Entry]{}, err
	}
	return s.store.Entries(ctx, accountID, p)
}

// BalanceAt is account id's balance at a point in time. Errors: not_found (no such account,
// or not the caller's).
func (s *Service) BalanceAt(ctx context.Context, c Caller, id uuid.UUID, at time.Time) (*BalanceAt, error) {
	if _, err := s.Account(ctx, c, id); err != nil {
		return nil, err
	}
	at = at.UTC()
	b, err := s.store.BalanceAt(ctx, id, at)
	if err != nil {
		return nil, err
	}
	return &BalanceAt{AccountID: id, At: at, Balance: b}, nil
}

// Statement is account id's statement over [from, to). Errors: validation_error (to not after
// from, or a period longer than MaxStatementSpan), not_found (no such account, or not the
// caller's).
func (s *Service) Statement(ctx context.Context, c Caller, id uuid.UUID, from, to time.Time) (*Statement, error) {
	from, to = from.UTC(), to.UTC()
	switch {
	case !to.After(from):
		return nil, Invalid(FieldError{Field: "to", Message: "must be after from"})
	case to.Sub(from) > MaxStatementSpan:
		return nil, Invalid(FieldError{Field: "to", Message: "must be at most 366 days after from"})
	}
	a, err := s.Account(ctx, c, id)
	if err != nil {
		return nil, err
	}
	st := &Statement{AccountID: id, Currency: a.Currency, From: from, To: to, Entries: []StatementLine{}}
	if err := s.store.Statement(ctx, st); err != nil {
		return nil, err
	}
	st.ClosingBalance = st.OpeningBalance
	for _, e := range st.Entries {
		st.ClosingBalance += e.Amount
	}
	return st, nil
}
