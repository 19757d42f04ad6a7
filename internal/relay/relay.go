// Package relay moves outbox rows to the event log. Exactly one relay leads at a time (the
// others stand by and take over when it dies); rows are removed only after the log acknowledged
// them, so a crash between the two re-sends a batch and never loses one: consumers are
// idempotent on the event id.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"txn/internal/backoff"
)

// Record is one outbox row.
type Record struct {
	ID        int64
	Key       string
	Payload   []byte
	CreatedAt time.Time
}

// Session is the leader's hold on the outbox; it ends when its connection does.
type Session interface {
	// Fetch returns the oldest rows that can no longer be preceded by a row of a transaction
	// still in flight, in commit order per account.
	Fetch(ctx context.Context, limit int) ([]Record, error)
	Delete(ctx context.Context, ids []int64) error
	Close()
}

// Leader hands out the outbox to one relay at a time.
type Leader interface {
	// TryLead returns a Session if this relay now leads, or ErrNotLeader.
	TryLead(ctx context.Context) (Session, error)
}

// ErrNotLeader means another relay leads.
var ErrNotLeader = errors.New("relay: another relay leads")

// Producer writes records to the log and returns once every one is acknowledged.
type Producer interface {
	Produce(ctx context.Context, recs []Record) error
}

// Config tunes a Relay; zero values take the defaults.
type Config struct {
	Batch   int           // rows per round (default 1000)
	Poll    time.Duration // wait when the outbox is empty (default 10ms)
	Standby time.Duration // how often a standby tries to take over (default 1s)
	// Observe, when set, is told of every round: rows relayed and the age of the oldest.
	Observe func(n int, lag time.Duration)
	// Leading, when set, is told when this relay starts and stops leading.
	Leading func(bool)
}

// Relay is one candidate relay.
type Relay struct {
	cfg      Config
	leader   Leader
	producer Producer
	log      *slog.Logger

	mu           sync.Mutex
	failure      error     // the last round's or leadership attempt's error; nil once one succeeds
	failingSince time.Time // when the current run of failures began
}

func New(leader Leader, producer Producer, log *slog.Logger, cfg Config) *Relay {
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 10 * time.Millisecond
	}
	if cfg.Standby <= 0 {
		cfg.Standby = time.Second
	}
	return &Relay{cfg: cfg, leader: leader, producer: producer, log: log}
}

// Run stands by or leads until ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	for {
		s, err := r.leader.TryLead(ctx)
		switch {
		case err == nil:
			r.log.Info("relay leads")
			r.leading(true)
			err = r.lead(ctx, s)
			s.Close()
			r.leading(false)
			if ctx.Err() == nil {
				r.log.Warn("relay stopped leading", "err", err)
				r.failed(err)
			}
		case errors.Is(err, ErrNotLeader):
			r.failed(nil) // another relay leads: this one has nothing to fail at
		case ctx.Err() == nil:
			r.log.Warn("relay cannot reach the outbox", "err", err)
			r.failed(err)
		}
		if !backoff.Sleep(ctx, r.cfg.Standby) {
			return nil
		}
	}
}

// failed records the outcome of a round or a leadership attempt: err, or nil for a success.
func (r *Relay) failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil && r.failure == nil {
		r.failingSince = time.Now()
	}
	r.failure = err
}

// Health returns why this relay cannot move events to the log (the outbox then grows, and
// nothing is lost), or nil when its last round or leadership attempt succeeded.
func (r *Relay) Health() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failure == nil {
		return nil
	}
	return fmt.Errorf("relay failing for %s: %w", time.Since(r.failingSince).Round(time.Second), r.failure)
}

func (r *Relay) leading(b bool) {
	if r.cfg.Leading != nil {
		r.cfg.Leading(b)
	}
}

func (r *Relay) lead(ctx context.Context, s Session) error {
	ids := make([]int64, 0, r.cfg.Batch)
	for {
		n, lag, err := r.round(ctx, s, ids)
		if err != nil {
			return err
		}
		r.failed(nil)
		if r.cfg.Observe != nil {
			r.cfg.Observe(n, lag)
		}
		if n < r.cfg.Batch && !backoff.Sleep(ctx, r.cfg.Poll) {
			return ctx.Err()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// round relays one batch: fetch, produce, delete. Shutdown does not cut a round short: rows
// Kafka has acknowledged are deleted before the relay stops, so a graceful stop sends nothing
// twice (a crash between produce and delete still may; consumers are idempotent).
func (r *Relay) round(ctx context.Context, s Session, ids []int64) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), roundTimeout)
	defer cancel()
	recs, err := s.Fetch(ctx, r.cfg.Batch)
	if err != nil || len(recs) == 0 {
		return 0, 0, err
	}
	if err := r.producer.Produce(ctx, recs); err != nil {
		return 0, 0, err
	}
	ids = ids[:0]
	for _, rec := range recs {
		ids = append(ids, rec.ID)
	}
	if err := s.Delete(ctx, ids); err != nil {
		return 0, 0, err
	}
	return len(recs), time.Since(recs[0].CreatedAt), nil
}

// roundTimeout bounds one round, so a hung broker or database cannot hold a stopping relay.
const roundTimeout = 30 * time.Second
