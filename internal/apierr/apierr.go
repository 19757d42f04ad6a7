// Package apierr is the error vocabulary the services' APIs share: a code, a human detail and,
// for validation, the fields at fault. It knows nothing of HTTP; the edge (internal/httpedge)
// maps codes to statuses, and each service adds the codes of its own domain.
package apierr

import (
	"errors"
	"fmt"
)

// Code classifies an Error.
type Code string

// Codes every service's API may answer (API.md, "Errors").
const (
	CodeInvalidJSON      Code = "invalid_json"
	CodeValidation       Code = "validation_failed"
	CodeUnauthorized     Code = "unauthorized"
	CodeForbidden        Code = "forbidden"
	CodeNotFound         Code = "not_found"
	CodeConflict         Code = "conflict"
	CodeBodyTooLarge     Code = "body_too_large"
	CodeUnsupportedMedia Code = "unsupported_media_type"
	CodeRateLimited      Code = "rate_limited"
	CodeUnavailable      Code = "unavailable"
)

// FieldError names one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an API error with a code, a human detail and, for validation, the fields at fault.
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

// CodeOf returns the Code of err, or "" when err is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
