package processor

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"txn/internal/clickhouse"
	"txn/internal/ledger"
	"txn/internal/mongo"
	"txn/internal/notify"
	"txn/internal/pipeline"
)

// lazy opens a store on first use and again after a failed attempt (at most once a second),
// so the processor starts and takes transactions while a read model's store is down.
type lazy[T any] struct {
	open func(ctx context.Context) (T, error)
	mu   sync.Mutex
	v    T
	ok   bool
	last time.Time
	err  error
}

func (l *lazy[T]) get(ctx context.Context) (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ok {
		return l.v, nil
	}
	if time.Since(l.last) < time.Second && l.err != nil {
		return l.v, l.err
	}
	l.last = time.Now()
	octx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	l.v, l.err = l.open(octx)
	l.ok = l.err == nil
	return l.v, l.err
}

func (l *lazy[T]) close(fn func(T)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ok {
		fn(l.v)
	}
}

type activityReader struct{ s *lazy[*mongo.Store] }

func (r activityReader) Activities(ctx context.Context, userID uuid.UUID, p ledger.ListParams) (ledger.Page[pipeline.Activity], error) {
	s, err := r.s.get(ctx)
	if err != nil {
		return ledger.Page[pipeline.Activity]{}, err
	}
	return s.Activities(ctx, userID, p)
}

// notificationReader shares activityReader's store: both read models live in one database.
type notificationReader struct{ s *lazy[*mongo.Store] }

func (r notificationReader) Notifications(ctx context.Context, userID uuid.UUID, p ledger.ListParams) (ledger.Page[notify.Notification], error) {
	s, err := r.s.get(ctx)
	if err != nil {
		return ledger.Page[notify.Notification]{}, err
	}
	return s.Notifications(ctx, userID, p)
}

type analyticsReader struct{ s *lazy[*clickhouse.Store] }

func (r analyticsReader) Analytics(ctx context.Context, from, to time.Time) (pipeline.Analytics, error) {
	s, err := r.s.get(ctx)
	if err != nil {
		return pipeline.Analytics{}, err
	}
	return s.Analytics(ctx, from, to)
}
