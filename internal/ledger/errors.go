package ledger

import (
	"errors"
	"fmt"
)

// Code classifies an Error; the HTTP edge maps each to a status (API.md).
type Code string

const (
	CodeInvalidJSON       Code = "invalid_json"
	CodeValidation        Code = "validation_failed"
	CodeUnauthorized      Code = "unauthorized"
	CodeForbidden         Code = "forbidden"
	CodeNotFound          Code = "not_found"
	CodeConflict          Code = "conflict"
	CodeKeyInUse          Code = "idempotency_key_in_use"
	CodeBodyTooLarge      Code = "body_too_large"
	CodeUnsupportedMedia  Code = "unsupported_media_type"
	CodeInsufficientFunds Code = "insufficient_funds"
	CodeCurrencyMismatch  Code = "currency_mismatch"
	CodeSameAccount       Code = "same_account"
	CodeKeyReused         Code = "idempotency_key_reused"
	CodeBalanceLimit      Code = "balance_limit"
	CodeRateLimited       Code = "rate_limited"
	CodeUnavailable       Code = "unavailable"
	// CodeOutcomeUnknown: the write may or may not have been applied; retrying with the same
	// Idempotency-Key tells which.
	CodeOutcomeUnknown Code = "outcome_unknown"
)

// FieldError names one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a domain error with a code, a human detail and, for validation, the fields at fault.
type Error struct {
	Code   Code
	Detail string
	Fields []FieldError
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Detail }

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Invalid builds a validation error for the given fields.
func Invalid(fields ...FieldError) *Error {
	detail := "the request is invalid"
	if len(fields) == 1 {
		detail = fields[0].Field + " " + fields[0].Message
	}
	return &Error{Code: CodeValidation, Detail: detail, Fields: fields}
}

// ErrorCode returns the Code of err, or "" when err is not an *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// ErrNotFound is returned by stores when a row does not exist.
var ErrNotFound = &Error{Code: CodeNotFound, Detail: "not found"}
