// Package httpedge is the HTTP edge the services share: problem+json answers (RFC 9457) for
// internal/apierr errors, strict JSON body decoding, and bearer tokens. It knows no domain: a
// service with codes of its own (the processor's 422s) passes their statuses and titles.
package httpedge

import (
	"errors"
	"net/http"
	"strings"

	"txn/internal/apierr"
	"txn/internal/service"
)

// Statuses are the HTTP statuses of the shared codes (API.md, "Errors").
var Statuses = map[apierr.Code]int{
	apierr.CodeInvalidJSON:      http.StatusBadRequest,
	apierr.CodeValidation:       http.StatusBadRequest,
	apierr.CodeUnauthorized:     http.StatusUnauthorized,
	apierr.CodeForbidden:        http.StatusForbidden,
	apierr.CodeNotFound:         http.StatusNotFound,
	apierr.CodeConflict:         http.StatusConflict,
	apierr.CodeBodyTooLarge:     http.StatusRequestEntityTooLarge,
	apierr.CodeUnsupportedMedia: http.StatusUnsupportedMediaType,
	apierr.CodeRateLimited:      http.StatusTooManyRequests,
	apierr.CodeUnavailable:      http.StatusServiceUnavailable,
}

// Titles are the problem titles of the shared codes.
var Titles = map[apierr.Code]string{
	apierr.CodeInvalidJSON:      "Invalid JSON",
	apierr.CodeValidation:       "Validation failed",
	apierr.CodeUnauthorized:     "Unauthorized",
	apierr.CodeForbidden:        "Forbidden",
	apierr.CodeNotFound:         "Not found",
	apierr.CodeConflict:         "Conflict",
	apierr.CodeBodyTooLarge:     "Body too large",
	apierr.CodeUnsupportedMedia: "Unsupported media type",
	apierr.CodeRateLimited:      "Rate limited",
	apierr.CodeUnavailable:      "Service unavailable",
}

// Problem is an RFC 9457 problem document with the API's error code.
type Problem struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail"`
	Code   apierr.Code         `json:"code"`
	Errors []apierr.FieldError `json:"errors,omitempty"`
	// Index names the failing item of an atomic batch.
	Index *int `json:"index,omitempty"`
}

// NewProblem is e's problem document with the given status and title.
func NewProblem(e *apierr.Error, status int, title string) Problem {
	return Problem{Type: "https://txn.dev/problems/" + string(e.Code), Title: title, Status: status,
		Detail: e.Detail, Code: e.Code, Errors: e.Fields}
}

// WriteProblem answers p as application/problem+json; a 429 gets a Retry-After if it has none.
func WriteProblem(w http.ResponseWriter, p Problem) {
	if p.Status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	service.WriteJSONType(w, p.Status, "application/problem+json", p)
}

// WriteError answers err as problem+json when it is an *apierr.Error with a shared code; any
// other error is a 503 that carries its text (for services whose callers are operators).
func WriteError(w http.ResponseWriter, err error) {
	var e *apierr.Error
	if !errors.As(err, &e) || Statuses[e.Code] == 0 {
		e = apierr.Errorf(apierr.CodeUnavailable, "%v", err)
	}
	WriteProblem(w, NewProblem(e, Statuses[e.Code], Titles[e.Code]))
}

// Bearer returns the token of an "Authorization: Bearer <token>" header (the scheme in any
// case), and whether there was one.
func Bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
