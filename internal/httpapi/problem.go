package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"txn/internal/httpedge"
	"txn/internal/ledger"
	"txn/internal/service"
)

// statusOf maps domain error codes to HTTP statuses (API.md).
var statusOf = map[ledger.Code]int{
	ledger.CodeInvalidJSON:           http.StatusBadRequest,
	ledger.CodeValidation:            http.StatusBadRequest,
	ledger.CodeUnauthorized:          http.StatusUnauthorized,
	ledger.CodeForbidden:             http.StatusForbidden,
	ledger.CodeNotFound:              http.StatusNotFound,
	ledger.CodeConflict:              http.StatusConflict,
	ledger.CodeKeyInUse:              http.StatusConflict,
	ledger.CodeBodyTooLarge:          http.StatusRequestEntityTooLarge,
	ledger.CodeUnsupportedMedia:      http.StatusUnsupportedMediaType,
	ledger.CodeInsufficientFunds:     http.StatusUnprocessableEntity,
	ledger.CodeCurrencyMismatch:      http.StatusUnprocessableEntity,
	ledger.CodeSameAccount:           http.StatusUnprocessableEntity,
	ledger.CodeKeyReused:             http.StatusUnprocessableEntity,
	ledger.CodeBalanceLimit:          http.StatusUnprocessableEntity,
	ledger.CodeAmountExceedsOriginal: http.StatusUnprocessableEntity,
	ledger.CodeAccountFrozen:         http.StatusUnprocessableEntity,
	ledger.CodeBalanceNotZero:        http.StatusConflict,
	ledger.CodeHoldNotPending:        http.StatusConflict,
	ledger.CodeAmountExceedsHold:     http.StatusUnprocessableEntity,
	ledger.CodeRateLimited:           http.StatusTooManyRequests,
	ledger.CodeUnavailable:           http.StatusServiceUnavailable,
	ledger.CodeOutcomeUnknown:        http.StatusServiceUnavailable,
}

var titles = map[ledger.Code]string{
	ledger.CodeInvalidJSON:           "Invalid JSON",
	ledger.CodeValidation:            "Validation failed",
	ledger.CodeUnauthorized:          "Unauthorized",
	ledger.CodeForbidden:             "Forbidden",
	ledger.CodeNotFound:              "Not found",
	ledger.CodeConflict:              "Conflict",
	ledger.CodeKeyInUse:              "Idempotency key in use",
	ledger.CodeBodyTooLarge:          "Body too large",
	ledger.CodeUnsupportedMedia:      "Unsupported media type",
	ledger.CodeInsufficientFunds:     "Insufficient funds",
	ledger.CodeCurrencyMismatch:      "Currency mismatch",
	ledger.CodeSameAccount:           "Same account",
	ledger.CodeKeyReused:             "Idempotency key reused",
	ledger.CodeBalanceLimit:          "Balance limit",
	ledger.CodeAmountExceedsOriginal: "Amount exceeds the original",
	ledger.CodeAccountFrozen:         "Account frozen",
	ledger.CodeBalanceNotZero:        "Balance not zero",
	ledger.CodeHoldNotPending:        "Hold not pending",
	ledger.CodeAmountExceedsHold:     "Amount exceeds the hold",
	ledger.CodeRateLimited:           "Rate limited",
	ledger.CodeUnavailable:           "Service unavailable",
	ledger.CodeOutcomeUnknown:        "Outcome unknown",
}

func problemOf(e *ledger.Error) httpedge.Problem {
	return httpedge.NewProblem(e, statusOf[e.Code], titles[e.Code])
}

// asDomain turns any error into a domain error; unknown ones become 503 unavailable (a
// dependency failed) and are logged with their cause.
func asDomain(r *http.Request, log *slog.Logger, err error) *ledger.Error {
	var e *ledger.Error
	if errors.As(err, &e) && statusOf[e.Code] != 0 {
		if e.Code == ledger.CodeUnavailable {
			log.ErrorContext(r.Context(), "request failed", "err", err, "path", r.URL.Path)
		}
		return e
	}
	log.ErrorContext(r.Context(), "request failed", "err", err, "path", r.URL.Path)
	return ledger.Errorf(ledger.CodeUnavailable, "a dependency failed; the request was not applied")
}

// WriteError answers err as problem+json; an error without a known code is a 503 that carries
// its text (for services whose callers are operators, such as the load tester).
func WriteError(w http.ResponseWriter, err error) {
	var e *ledger.Error
	if !errors.As(err, &e) || statusOf[e.Code] == 0 {
		e = ledger.Errorf(ledger.CodeUnavailable, "%v", err)
	}
	writeProblem(w, e)
}

func writeProblem(w http.ResponseWriter, e *ledger.Error) { httpedge.WriteProblem(w, problemOf(e)) }

func writeJSON(w http.ResponseWriter, status int, v any) { service.WriteJSON(w, status, v) }

func writeJSONType(w http.ResponseWriter, status int, ctype string, v any) {
	service.WriteJSONType(w, status, ctype, v)
}

func retryAfterSeconds(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}
