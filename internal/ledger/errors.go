package ledger

import "txn/internal/apierr"

// The ledger's errors are the APIs' shared vocabulary (internal/apierr), with codes of its own.
type (
	Code       = apierr.Code
	Error      = apierr.Error
	FieldError = apierr.FieldError
)

const (
	CodeInvalidJSON            = apierr.CodeInvalidJSON
	CodeValidation             = apierr.CodeValidation
	CodeUnauthorized           = apierr.CodeUnauthorized
	CodeForbidden              = apierr.CodeForbidden
	CodeNotFound               = apierr.CodeNotFound
	CodeConflict               = apierr.CodeConflict
	CodeBodyTooLarge           = apierr.CodeBodyTooLarge
	CodeUnsupportedMedia       = apierr.CodeUnsupportedMedia
	CodeRateLimited            = apierr.CodeRateLimited
	CodeUnavailable            = apierr.CodeUnavailable
	CodeKeyInUse          Code = "idempotency_key_in_use"
	CodeInsufficientFunds Code = "insufficient_funds"
	CodeCurrencyMismatch  Code = "currency_mismatch"
	CodeSameAccount       Code = "same_account"
	CodeKeyReused         Code = "idempotency_key_reused"
	CodeBalanceLimit      Code = "balance_limit"
	// CodeAmountExceedsOriginal: reversals would return more than the transaction moved.
	CodeAmountExceedsOriginal Code = "amount_exceeds_original"
	// CodeAccountFrozen: a debit or credit touches a frozen or closed account.
	CodeAccountFrozen Code = "account_frozen"
	// CodeBalanceNotZero: closing an account that still holds money or has pending holds.
	CodeBalanceNotZero Code = "balance_not_zero"
	// CodeHoldNotPending: capturing or voiding a hold that is captured, voided or expired.
	CodeHoldNotPending Code = "hold_not_pending"
	// CodeAmountExceedsHold: capturing more than the hold reserves.
	CodeAmountExceedsHold Code = "amount_exceeds_hold"
	// CodeOutcomeUnknown: the write may or may not have been applied; retrying with the same
	// Idempotency-Key tells which.
	CodeOutcomeUnknown Code = "outcome_unknown"
)

var (
	// Errorf builds an *Error.
	Errorf = apierr.Errorf
	// Invalid builds a validation error for the given fields.
	Invalid = apierr.Invalid
	// ErrorCode returns the Code of err, or "" when err is not an *Error.
	ErrorCode = apierr.CodeOf
)

// ErrNotFound is returned by stores when a row does not exist.
var ErrNotFound = &Error{Code: CodeNotFound, Detail: "not found"}
