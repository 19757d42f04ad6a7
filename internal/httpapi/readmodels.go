package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"txn/internal/ledger"
	"txn/internal/notify"
	"txn/internal/pipeline"
)

// ActivityReader serves users' activity feeds (MongoDB).
type ActivityReader interface {
	Activities(ctx context.Context, userID uuid.UUID, p ledger.ListParams) (ledger.Page[pipeline.Activity], error)
}

// NotificationReader serves users' notification inboxes (MongoDB).
type NotificationReader interface {
	Notifications(ctx context.Context, userID uuid.UUID, p ledger.ListParams) (ledger.Page[notify.Notification], error)
}

// AnalyticsReader serves transaction analytics (ClickHouse).
type AnalyticsReader interface {
	Analytics(ctx context.Context, from, to time.Time) (pipeline.Analytics, error)
}

var errReadModelDown = ledger.Errorf(ledger.CodeUnavailable, "this read model is unavailable right now; transactions are not affected")

// The read models are eventually consistent copies: when their store is down these answer
// 503 while the write path goes on.

func (s *server) listActivity(w http.ResponseWriter, r *http.Request) error {
	var read func(context.Context, uuid.UUID, ledger.ListParams) (ledger.Page[pipeline.Activity], error)
	if s.Activity != nil {
		read = s.Activity.Activities
	}
	return listUserReadModel(s, w, r, "activity", read)
}

func (s *server) listNotifications(w http.ResponseWriter, r *http.Request) error {
	var read func(context.Context, uuid.UUID, ledger.ListParams) (ledger.Page[notify.Notification], error)
	if s.Notifications != nil {
		read = s.Notifications.Notifications
	}
	return listUserReadModel(s, w, r, "notifications", read)
}

// listUserReadModel answers a page of a user's read model to the admin or the user; read is
// nil when the read model is not configured.
func listUserReadModel[T any](s *server, w http.ResponseWriter, r *http.Request, what string,
	read func(context.Context, uuid.UUID, ledger.ListParams) (ledger.Page[T], error)) error {
	id, err := pathID(r, "user")
	if err != nil {
		return err
	}
	p, err := parseListParams(r)
	if err != nil {
		return err
	}
	if _, err := s.Ledger.User(r.Context(), caller(r), id); err != nil {
		return err
	}
	if read == nil {
		return errReadModelDown
	}
	page, err := read(r.Context(), id, p)
	if err != nil {
		if ledger.ErrorCode(err) == ledger.CodeValidation {
			return err
		}
		s.Logger.WarnContext(r.Context(), what+" store failed", "err", err)
		return errReadModelDown
	}
	writeJSON(w, http.StatusOK, list(page))
	return nil
}

func (s *server) analytics(w http.ResponseWriter, r *http.Request) error {
	if !caller(r).Admin {
		return ledger.Errorf(ledger.CodeForbidden, "this action needs the admin token")
	}
	to := time.Now().UTC()
	from := to.Add(-time.Hour)
	var fields []ledger.FieldError
	parse := func(name string, dst *time.Time) {
		if v := r.URL.Query().Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				fields = append(fields, ledger.FieldError{Field: name, Message: "must be an RFC 3339 time"})
				return
			}
			*dst = t.UTC()
		}
	}
	parse("from", &from)
	parse("to", &to)
	if len(fields) == 0 && !from.Before(to) {
		fields = append(fields, ledger.FieldError{Field: "from", Message: "must be before to"})
	}
	if len(fields) > 0 {
		return ledger.Invalid(fields...)
	}
	if s.Analytics == nil {
		return errReadModelDown
	}
	a, err := s.Analytics.Analytics(r.Context(), from, to)
	if err != nil {
		s.Logger.WarnContext(r.Context(), "analytics store failed", "err", err)
		return errReadModelDown
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}
