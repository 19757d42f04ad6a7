package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"txn/internal/event"
)

func ptr(id uuid.UUID) *uuid.UUID { return &id }

func transferEvent() *event.Event {
	return &event.Event{Version: event.Version, ID: uuid.New(), Type: event.TypeTransactionCompleted,
		OccurredAt: time.Now().UTC(), Transaction: event.Transaction{
			ID: uuid.New(), Type: "transfer", Amount: 2500, Currency: "USD",
			FromAccountID: ptr(uuid.New()), ToAccountID: ptr(uuid.New()),
			FromUserID: ptr(uuid.New()), ToUserID: ptr(uuid.New()), CreatedAt: time.Now().UTC()}}
}

func encode(t *testing.T, ev *event.Event) []byte {
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRejectsWhatIsNotAnEvent(t *testing.T) {
	good := transferEvent()
	if _, err := Decode(encode(t, good)); err != nil {
		t.Fatalf("valid event refused: %v", err)
	}
	cases := map[string]func(*event.Event){
		"version":  func(e *event.Event) { e.Version = 2 },
		"type":     func(e *event.Event) { e.Type = "user.created" },
		"no id":    func(e *event.Event) { e.ID = uuid.Nil },
		"amount":   func(e *event.Event) { e.Transaction.Amount = 0 },
		"currency": func(e *event.Event) { e.Transaction.Currency = "XXX" },
		"tx type":  func(e *event.Event) { e.Transaction.Type = "refund" },
		"owner":    func(e *event.Event) { e.Transaction.ToUserID = nil },
		"accounts": func(e *event.Event) {
			e.Transaction.FromAccountID, e.Transaction.ToAccountID = nil, nil
			e.Transaction.FromUserID, e.Transaction.ToUserID = nil, nil
		},
	}
	for name, mutate := range cases {
		ev := transferEvent()
		mutate(ev)
		_, err := Decode(encode(t, ev))
		var perm *PermanentError
		if !errors.As(err, &perm) {
			t.Errorf("%s: got %v, want a PermanentError", name, err)
		}
	}
	for _, raw := range []string{``, `{`, `[]`, `"x"`, `{"version": "1"}`} {
		if _, err := Decode([]byte(raw)); err == nil {
			t.Errorf("%q decoded", raw)
		}
	}
}

func TestEffectsAreDeterministicAndSigned(t *testing.T) {
	ev := transferEvent()
	a1, a2 := ActivitiesOf(ev), ActivitiesOf(ev)
	if len(a1) != 2 || a1[0].ID != a2[0].ID || a1[1].ID != a2[1].ID || a1[0].ID == a1[1].ID {
		t.Fatalf("activities not stable and distinct: %+v", a1)
	}
	if a1[0].Amount != -2500 || a1[0].UserID != *ev.Transaction.FromUserID || *a1[0].CounterpartyAccountID != *ev.Transaction.ToAccountID {
		t.Errorf("sender's item: %+v", a1[0])
	}
	if a1[1].Amount != 2500 || a1[1].UserID != *ev.Transaction.ToUserID || a1[1].AccountID != *ev.Transaction.ToAccountID {
		t.Errorf("receiver's item: %+v", a1[1])
	}
	t1, t2 := TasksOf(ev), TasksOf(ev)
	if len(t1) != 2 || t1[0].NotificationID != t2[0].NotificationID || t1[0].NotificationID == t1[1].NotificationID {
		t.Fatalf("tasks not stable and distinct: %+v", t1)
	}
	if t1[0].Kind != "transfer_sent" || !strings.Contains(t1[0].Message, "25.00 USD") {
		t.Errorf("task: %+v", t1[0])
	}
	dep := transferEvent()
	dep.Transaction.Type, dep.Transaction.FromAccountID, dep.Transaction.FromUserID = "deposit", nil, nil
	if a := ActivitiesOf(dep); len(a) != 1 || a[0].Amount != 2500 || a[0].CounterpartyAccountID != nil {
		t.Errorf("deposit activity: %+v", a)
	}
	if ts := TasksOf(dep); len(ts) != 1 || ts[0].Kind != "deposit_received" {
		t.Errorf("deposit tasks: %+v", ts)
	}
	if other := transferEvent(); ActivitiesOf(other)[0].ID == a1[0].ID {
		t.Error("two events share an activity id")
	}
}

// sink is an in-memory store that fails as told.
type sink struct {
	applied map[uuid.UUID]int
	fail    func(ev *event.Event) error // per event; nil: accept
	down    bool
}

func (s *sink) apply(_ context.Context, evs []*event.Event) error {
	if s.down {
		return errors.New("connection refused")
	}
	for _, ev := range evs {
		if s.fail != nil {
			if err := s.fail(ev); err != nil {
				return err // a failing event fails its whole batch, as a store would
			}
		}
	}
	for _, ev := range evs {
		s.applied[ev.ID]++
	}
	return nil
}

type dlq struct{ letters []DeadLetter }

func (d *dlq) DeadLetter(_ context.Context, dls []DeadLetter) error {
	d.letters = append(d.letters, dls...)
	return nil
}

func messages(t *testing.T, evs ...*event.Event) []Message {
	var msgs []Message
	for i, ev := range evs {
		msgs = append(msgs, Message{Offset: int64(i), Value: encode(t, ev)})
	}
	return msgs
}

func newProcessor(s *sink, d *dlq) *Applier {
	return NewApplier(Sink{Name: "test", Apply: s.apply, Ping: func(context.Context) error {
		if s.down {
			return errors.New("down")
		}
		return nil
	}}, d, ApplierConfig{Backoff: time.Millisecond, MaxFailures: 3})
}

func TestProcessorDeadLettersMalformedAndKeepsGoing(t *testing.T) {
	s, d := &sink{applied: map[uuid.UUID]int{}}, &dlq{}
	a, b := transferEvent(), transferEvent()
	msgs := messages(t, a, b)
	msgs = append(msgs[:1], append([]Message{{Offset: 9, Value: []byte("not json")}}, msgs[1:]...)...)
	if err := newProcessor(s, d).Process(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if s.applied[a.ID] != 1 || s.applied[b.ID] != 1 || len(d.letters) != 1 || d.letters[0].Msg.Offset != 9 {
		t.Fatalf("applied %v, dead letters %+v", s.applied, d.letters)
	}
}

func TestProcessorIsolatesPoison(t *testing.T) {
	a, poison, b := transferEvent(), transferEvent(), transferEvent()
	s := &sink{applied: map[uuid.UUID]int{}, fail: func(ev *event.Event) error {
		if ev.ID == poison.ID {
			return errors.New("value out of range")
		}
		return nil
	}}
	d := &dlq{}
	p := newProcessor(s, d)
	msgs := messages(t, a, poison, b)
	rounds := 1
	for ; p.Process(context.Background(), msgs) != nil; rounds++ {
		if len(d.letters) != 0 {
			t.Fatalf("round %d: dead-lettered before the poison was proven: %+v", rounds, d.letters)
		}
		if rounds == 10 {
			t.Fatal("the batch never went through")
		}
	}
	t.Run("a failure that may be the store's is proven poison only after MaxFailures rounds", func(t *testing.T) {
		if rounds != 3 {
			t.Errorf("went through in round %d, want 3", rounds)
		}
	})
	t.Run("the healthy events are applied and the poison is not", func(t *testing.T) {
		// Applied again in each round, as a redelivery would be: the sinks are idempotent.
		if s.applied[a.ID] == 0 || s.applied[b.ID] == 0 || s.applied[poison.ID] != 0 {
			t.Errorf("applied %v", s.applied)
		}
	})
	t.Run("only the poison is dead-lettered, with its reason", func(t *testing.T) {
		if len(d.letters) != 1 || d.letters[0].Msg.Offset != 1 || !strings.Contains(d.letters[0].Reason, "out of range") {
			t.Errorf("dead letters %+v", d.letters)
		}
	})
}

func TestProcessorDeadLettersPermanentErrorsAtOnce(t *testing.T) {
	a, poison := transferEvent(), transferEvent()
	s := &sink{applied: map[uuid.UUID]int{}, fail: func(ev *event.Event) error {
		if ev.ID == poison.ID {
			return &PermanentError{Reason: "document too large"}
		}
		return nil
	}}
	d := &dlq{}
	if err := newProcessor(s, d).Process(context.Background(), messages(t, a, poison)); err != nil {
		t.Fatal(err)
	}
	if s.applied[a.ID] != 1 || len(d.letters) != 1 || d.letters[0].Msg.Offset != 1 {
		t.Errorf("applied %v, dead letters %+v", s.applied, d.letters)
	}
}

// The store goes down after the first event of an isolated batch went through: the events
// after it are victims of the outage, not poison, and must not be dead-lettered.
func TestProcessorKeepsHealthyEventsWhenTheStoreFailsMidIsolation(t *testing.T) {
	first := transferEvent()
	down, applied := false, 0
	apply := func(_ context.Context, evs []*event.Event) error {
		switch {
		case down:
			return errors.New("connection refused")
		case len(evs) > 1:
			return errors.New("i/o timeout") // the batch fails, so it is isolated
		case evs[0].ID == first.ID:
			applied++
			return nil
		default:
			down = true
			return errors.New("connection reset by peer")
		}
	}
	ping := func(context.Context) error {
		if down {
			return errors.New("down")
		}
		return nil
	}
	d := &dlq{}
	p := NewApplier(Sink{Name: "test", Apply: apply, Ping: ping}, d, ApplierConfig{Backoff: time.Millisecond, MaxFailures: 3})
	msgs := messages(t, first, transferEvent(), transferEvent())
	for round := 1; round <= 5; round++ {
		if err := p.Process(context.Background(), msgs); err == nil {
			t.Fatalf("round %d: reported done while the store is down", round)
		}
		if len(d.letters) != 0 {
			t.Fatalf("round %d: dead-lettered healthy events: %+v", round, d.letters)
		}
		down = false // up again for the next round
	}
	if applied == 0 {
		t.Error("the first event never went through: the isolation did not run")
	}
}

func TestReversalEffects(t *testing.T) {
	t.Run("a transfer's reversal is decoded and tells both users", func(t *testing.T) {
		ev := transferEvent()
		ev.Transaction.Type = "reversal"
		got, err := Decode(encode(t, ev))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		tasks := TasksOf(got)
		if len(tasks) != 2 || tasks[0].Kind != "reversal_debited" || tasks[1].Kind != "reversal_credited" ||
			tasks[0].UserID != *ev.Transaction.FromUserID || tasks[1].UserID != *ev.Transaction.ToUserID {
			t.Errorf("tasks %+v, want the debited then the credited user", tasks)
		}
		if acts := ActivitiesOf(got); len(acts) != 2 || acts[0].Amount != -2500 || acts[1].Amount != 2500 {
			t.Errorf("activities %+v, want -2500 and +2500", acts)
		}
	})
	t.Run("a deposit's reversal tells only its account's user", func(t *testing.T) {
		ev := transferEvent()
		ev.Transaction.Type = "reversal"
		ev.Transaction.ToAccountID, ev.Transaction.ToUserID = nil, nil
		got, err := Decode(encode(t, ev))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if tasks := TasksOf(got); len(tasks) != 1 || tasks[0].Kind != "reversal_debited" {
			t.Errorf("tasks %+v, want one reversal_debited", tasks)
		}
	})
}

func holdEvent(typ string) *event.Event {
	at := time.Now().UTC()
	return &event.Event{Version: event.Version, ID: uuid.New(), Type: typ, OccurredAt: at, Hold: &event.Hold{
		ID: uuid.New(), Status: "pending", FromAccountID: uuid.New(), FromUserID: uuid.New(),
		ToAccountID: ptr(uuid.New()), ToUserID: ptr(uuid.New()), Amount: 700, Currency: "USD",
		Description: "auth", ExpiresAt: at.Add(time.Hour), CreatedAt: at}}
}

func TestHoldEffects(t *testing.T) {
	t.Run("hold events are decoded", func(t *testing.T) {
		for _, typ := range []string{event.TypeHoldCreated, event.TypeHoldVoided, event.TypeHoldExpired} {
			if _, err := Decode(encode(t, holdEvent(typ))); err != nil {
				t.Errorf("%s refused: %v", typ, err)
			}
		}
	})
	t.Run("a hold event without its hold, owner or amount is poison", func(t *testing.T) {
		for name, mutate := range map[string]func(*event.Event){
			"no hold":    func(e *event.Event) { e.Hold = nil },
			"no owner":   func(e *event.Event) { e.Hold.FromUserID = uuid.Nil },
			"to, no one": func(e *event.Event) { e.Hold.ToUserID = nil },
			"amount":     func(e *event.Event) { e.Hold.Amount = 0 },
		} {
			ev := holdEvent(event.TypeHoldCreated)
			mutate(ev)
			var perm *PermanentError
			if _, err := Decode(encode(t, ev)); !errors.As(err, &perm) {
				t.Errorf("%s: got %v, want a PermanentError", name, err)
			}
		}
	})
	t.Run("analytics count each hold event by its kind", func(t *testing.T) {
		for typ, kind := range map[string]string{event.TypeHoldCreated: KindHold, event.TypeHoldVoided: KindHoldVoided,
			event.TypeHoldExpired: KindHoldExpired} {
			ev := holdEvent(typ)
			row := RowOf(ev)
			if row.Type != kind || row.TransactionID != ev.Hold.ID || row.Amount != 700 || row.Description != "auth" {
				t.Errorf("%s: row %+v, want type %s with the hold's id, amount and description", typ, row, kind)
			}
		}
	})
	t.Run("a capture counts as a capture", func(t *testing.T) {
		ev := transferEvent()
		ev.Transaction.HoldID = ptr(uuid.New())
		if row := RowOf(ev); row.Type != KindCapture {
			t.Errorf("capture's row type %q, want %q", row.Type, KindCapture)
		}
		if tasks := TasksOf(ev); len(tasks) != 2 || tasks[0].Kind != "transfer_sent" || tasks[1].Kind != "transfer_received" {
			t.Errorf("capture's tasks %+v, want both sides told as of a transfer", tasks)
		}
	})
	t.Run("the payer's activity shows the money reserved and released", func(t *testing.T) {
		created, voided := holdEvent(event.TypeHoldCreated), holdEvent(event.TypeHoldVoided)
		a, v := ActivitiesOf(created), ActivitiesOf(voided)
		if len(a) != 1 || a[0].UserID != created.Hold.FromUserID || a[0].Amount != -700 || a[0].Type != KindHold {
			t.Errorf("hold activity %+v, want one item of -700 for the payer", a)
		}
		if len(v) != 1 || v[0].Amount != 700 || v[0].Type != KindHoldVoided {
			t.Errorf("void activity %+v, want one item of +700", v)
		}
	})
	t.Run("hold events notify no one", func(t *testing.T) {
		if tasks := TasksOf(holdEvent(event.TypeHoldCreated)); len(tasks) != 0 {
			t.Errorf("tasks %+v, want none", tasks)
		}
	})
}
