package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"txn/internal/backoff"
	"txn/internal/event"
)

// Message is one record from the event log.
type Message struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
}

// DeadLetter is a message no retry could apply, with the reason.
type DeadLetter struct {
	Group  string
	Msg    Message
	Reason string
}

// DeadLetters stores dead letters durably (the dead-letter topic).
type DeadLetters interface {
	DeadLetter(ctx context.Context, dls []DeadLetter) error
}

// Sink applies decoded events to one store, idempotently.
type Sink struct {
	Name  string // the consumer group
	Apply func(ctx context.Context, evs []*event.Event) error
	// Ping tells whether the store answers: a message that keeps failing while it does is
	// poison, not a victim of an outage.
	Ping func(ctx context.Context) error
}

// ApplierConfig tunes an Applier; zero values take the defaults.
type ApplierConfig struct {
	Attempts    int           // tries of a whole batch before isolating its events (default 3)
	Backoff     time.Duration // first pause between tries, doubled each time (default 100ms)
	MaxFailures int           // failed rounds of the same batch before its poison is dead-lettered (default 5)
	// Observe, when set, is told of every applied batch and of dead letters.
	Observe func(applied, deadLettered int)
}

// Applier applies batches of messages to a sink. Messages that cannot be decoded go to the
// dead-letter store at once; a batch the sink refuses is retried, then split to find the events
// at fault, which are dead-lettered once the store is known to be up. Process returns nil only
// when every message is applied or dead-lettered: only then may offsets be committed.
type Applier struct {
	sink   Sink
	dlq    DeadLetters
	cfg    ApplierConfig
	failed int   // consecutive failed rounds of the batch starting at offset first
	first  int64 // offset of the first message of that batch
}

// NewApplier applies to sink, dead-lettering into dlq.
func NewApplier(sink Sink, dlq DeadLetters, cfg ApplierConfig) *Applier {
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = 5
	}
	return &Applier{sink: sink, dlq: dlq, cfg: cfg, first: -1}
}

func (p *Applier) Process(ctx context.Context, msgs []Message) error {
	var dead []DeadLetter
	evs := make([]*event.Event, 0, len(msgs))
	origin := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		ev, err := Decode(m.Value)
		if err != nil {
			dead = append(dead, DeadLetter{Group: p.sink.Name, Msg: m, Reason: err.Error()})
			continue
		}
		evs = append(evs, ev)
		origin = append(origin, m)
	}
	if len(evs) > 0 {
		err := p.applyWithRetry(ctx, evs)
		if err != nil {
			poison, err := p.isolate(ctx, evs, origin, err)
			if err != nil {
				return err
			}
			dead = append(dead, poison...)
		}
	}
	if len(dead) > 0 {
		if err := p.dlq.DeadLetter(ctx, dead); err != nil {
			return fmt.Errorf("dead-letter: %w", err)
		}
	}
	p.failed, p.first = 0, -1
	if p.cfg.Observe != nil {
		p.cfg.Observe(len(msgs)-len(dead), len(dead))
	}
	return nil
}

func (p *Applier) applyWithRetry(ctx context.Context, evs []*event.Event) error {
	wait := backoff.New(p.cfg.Backoff, 1<<p.cfg.Attempts*p.cfg.Backoff)
	var err error
	for attempt := 1; attempt <= p.cfg.Attempts; attempt++ {
		if err = p.sink.Apply(ctx, evs); err == nil {
			return nil
		}
		var perm *PermanentError
		if errors.As(err, &perm) || attempt == p.cfg.Attempts {
			break
		}
		if !wait.Wait(ctx) {
			return ctx.Err()
		}
	}
	return err
}

// isolate applies the events one by one after their batch failed, each with its own retries.
// It returns the events at fault as dead letters, or an error as soon as one fails in a way
// that may be the store's: the caller then retries the batch later and commits nothing (the
// events applied meanwhile are applied again, which the sinks make harmless). Only proven
// poison is dead-lettered: an event the sink refused as permanently invalid, or, after
// MaxFailures rounds, one that still fails while the store answers its ping right after.
// Invariant: on a nil error every event was applied or is in the returned dead letters.
func (p *Applier) isolate(ctx context.Context, evs []*event.Event, origin []Message, batchErr error) ([]DeadLetter, error) {
	if origin[0].Offset != p.first {
		p.first, p.failed = origin[0].Offset, 0
	}
	p.failed++
	exhaustive := p.failed >= p.cfg.MaxFailures && p.sink.Ping != nil
	var dead []DeadLetter
	for i, ev := range evs {
		err := p.applyWithRetry(ctx, []*event.Event{ev})
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var perm *PermanentError
		if !errors.As(err, &perm) && !(exhaustive && p.sink.Ping(ctx) == nil) {
			return nil, fmt.Errorf("%s: batch failed (%d rounds): %w", p.sink.Name, p.failed, batchErr)
		}
		dead = append(dead, DeadLetter{Group: p.sink.Name, Msg: origin[i], Reason: err.Error()})
	}
	return dead, nil
}
