package ledger

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// HoldInput is a request to reserve money: To absent captures as a withdrawal.
type HoldInput struct {
	From, To    uuid.UUID
	Amount      int64
	Currency    string
	Description string
	Metadata    Metadata
	ExpiresIn   time.Duration // 0: DefaultHoldExpiry
}

// CreateHold reserves in.Amount on in.From through group commit, decided against the locked
// account as a debit would be. The caller must be allowed to debit in.From. Errors:
// validation_failed, and, as the request's result, not_found, same_account,
// currency_mismatch, account_frozen, insufficient_funds.
func (s *Service) CreateHold(ctx context.Context, c Caller, in HoldInput, key, requestID string) (*Pending, error) {
	if in.ExpiresIn == 0 {
		in.ExpiresIn = DefaultHoldExpiry
	}
	r := TxRequest{Type: HoldCreate, From: in.From, To: in.To, Amount: in.Amount, Currency: in.Currency,
		Description: in.Description, Metadata: in.Metadata, ExpiresIn: in.ExpiresIn}
	var fields []FieldError
	if in.From == uuid.Nil {
		fields = append(fields, FieldError{Field: "from_account_id", Message: "is required"})
	}
	fields = append(fields, r.amountErrors()...)
	if in.ExpiresIn < MinHoldExpiry || in.ExpiresIn > MaxHoldExpiry || in.ExpiresIn%time.Second != 0 {
		fields = append(fields, FieldError{Field: "expires_in_s", Message: "must be an integer from 1 to 2592000"})
	}
	if len(fields) > 0 {
		return nil, Invalid(fields...)
	}
	p := &Pending{Caller: c, Key: key, RequestID: requestID, Req: r}
	return p, s.batcher.Submit(ctx, []*Pending{p})
}

// Hold returns a hold to the admin or the owner of either side. Errors: not_found.
func (s *Service) Hold(ctx context.Context, c Caller, id uuid.UUID) (*Hold, error) {
	h, owners, err := s.store.Hold(ctx, id)
	if err == ErrNotFound {
		return nil, notFound("hold", id)
	} else if err != nil {
		return nil, err
	}
	if c.Admin {
		return h, nil
	}
	for _, o := range owners {
		if o == c.UserID {
			return h, nil
		}
	}
	return nil, notFound("hold", id)
}

// CaptureHold moves amount (0: all) of a pending hold through group commit and releases the
// rest. The admin or the owner of the hold's from account may. Errors: validation_failed, and,
// as the request's result, not_found, hold_not_pending, amount_exceeds_hold, account_frozen.
func (s *Service) CaptureHold(ctx context.Context, c Caller, id uuid.UUID, amount int64, key, requestID string) (*Pending, error) {
	if amount < 0 || amount > MaxAmount {
		return nil, Invalid(FieldError{Field: "amount", Message: "must be an integer from 1 to 1000000000000"})
	}
	return s.settleHold(ctx, c, TxRequest{Type: HoldCapture, Hold: id, Amount: amount}, key, requestID)
}

// VoidHold releases a pending hold through group commit. The admin or the owner of the hold's
// from account may. Errors, as the request's result: not_found, hold_not_pending.
func (s *Service) VoidHold(ctx context.Context, c Caller, id uuid.UUID, key, requestID string) (*Pending, error) {
	return s.settleHold(ctx, c, TxRequest{Type: HoldVoid, Hold: id}, key, requestID)
}

// settleHold submits req, which names only its hold: the batch locks the hold's accounts and
// decides, under that lock, whether the caller may settle it.
func (s *Service) settleHold(ctx context.Context, c Caller, req TxRequest, key, requestID string) (*Pending, error) {
	p := &Pending{Caller: c, Req: req, Key: key, RequestID: requestID}
	return p, s.batcher.Submit(ctx, []*Pending{p})
}

// ExpireHolds expires up to limit pending holds whose time has passed, through group commit,
// and returns how many it expired. Every instance may run it: a hold another batch expired
// first is left as it is, so each expires once.
func (s *Service) ExpireHolds(ctx context.Context, limit int) (int, error) {
	due, err := s.store.DueHolds(ctx, time.Now(), limit)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	items := make([]*Pending, len(due))
	for i, id := range due {
		items[i] = &Pending{Caller: Caller{Admin: true}, Req: TxRequest{Type: HoldExpire, Hold: id}, RequestID: "hold-expiry"}
	}
	if err := s.batcher.Submit(ctx, items); err != nil {
		return 0, err
	}
	n := 0
	for _, p := range items {
		if p.Result.Err == nil {
			n++
		}
	}
	return n, nil
}
