// Package notify delivers notifications: every one goes to the user's inbox, and to the user's
// webhook when it has one, signed per Standard Webhooks (docs/webhooks.md). It decides what one
// delivery attempt does and what happens next (done, retry later, give up); the inbox store, the
// webhook targets and the queue that redelivers tasks are ports.
//
// At most one worker attempts a webhook delivery at a time: it first claims the notification in
// the inbox (a lease with an expiry), so a duplicate task or a redelivery waits for the holder
// and then finds it delivered. Only a holder that dies mid-attempt, or outlives its lease, can
// cause a second POST. A notification whose only channel is the inbox needs no claim: its one
// write, keyed by the notification id, is the delivery, and a duplicate finds it there.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"txn/internal/backoff"
	"txn/internal/ledger"
	"txn/internal/pipeline"
)

// Status is a notification's delivery status.
type Status string

const (
	Pending   Status = "pending"   // not yet on every channel; retries may follow
	Delivered Status = "delivered" // on every channel the user has
	Failed    Status = "failed"    // attempts ran out; the task is parked
)

// Notification is one user's notice of one transaction, as the inbox shows it (API.md).
type Notification struct {
	ID            uuid.UUID  `json:"id"`
	UserID        uuid.UUID  `json:"-"`
	TransactionID uuid.UUID  `json:"transaction_id"`
	Kind          string     `json:"kind"`
	Message       string     `json:"message"`
	Status        Status     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastError     *string    `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
}

// FromTask is the task's notification before any attempt.
func FromTask(t pipeline.Task) Notification {
	return Notification{ID: t.NotificationID, UserID: t.UserID, TransactionID: t.TransactionID,
		Kind: t.Kind, Message: t.Message, Status: Pending, CreatedAt: t.CreatedAt}
}

// Payload is the JSON body POSTed to a webhook: the notification without its delivery state,
// which would be stale by the time the receiver reads it. The same every attempt.
type Payload struct {
	ID            uuid.UUID `json:"id"`
	UserID        uuid.UUID `json:"user_id"`
	TransactionID uuid.UUID `json:"transaction_id"`
	Kind          string    `json:"kind"`
	Message       string    `json:"message"`
	Amount        int64     `json:"amount"`
	Currency      string    `json:"currency"`
	CreatedAt     time.Time `json:"created_at"`
}

func PayloadOf(t pipeline.Task) Payload {
	return Payload{ID: t.NotificationID, UserID: t.UserID, TransactionID: t.TransactionID, Kind: t.Kind,
		Message: t.Message, Amount: t.Amount, Currency: t.Currency, CreatedAt: t.CreatedAt}
}

// Claim is what Inbox.Claim found.
type Claim struct {
	Won         bool      // the caller holds the lease and makes the attempt
	Delivered   bool      // delivered already: nothing to do
	LeasedUntil time.Time // else another holder has it until then
	// When won: the claim's number (1 for the first attempt, +1 per claim) and whether the
	// inbox holds the notification already.
	Generation int
	Recorded   bool
}

// Outcome is what an attempt achieved.
type Outcome struct {
	Status    Status
	LastError string    // why the attempt failed (not Delivered)
	At        time.Time // when it was delivered (Delivered)
}

// ErrRecorded is Inbox.Record's answer for a notification the inbox holds already.
var ErrRecorded = errors.New("notify: the notification is in the inbox already")

// Ports.
type (
	Inbox interface {
		// Record writes n to the inbox with its final outcome in one step, for a notification
		// no other channel waits on; ErrRecorded when the inbox holds it already.
		Record(ctx context.Context, n Notification, o Outcome) error
		// Claim leases n to the caller until until for one attempt, unless it is delivered
		// or another holder's lease runs at now. Idempotent on n.ID.
		Claim(ctx context.Context, n Notification, now, until time.Time) (Claim, error)
		// Finish records in the inbox the outcome of the attempt c was won for, and ends
		// its lease. It never overwrites Delivered, nor a later claim's outcome.
		Finish(ctx context.Context, n Notification, c Claim, o Outcome) error
	}
	// Targets tells where a user's notifications go: url is nil for an inbox-only user.
	Targets interface {
		WebhookTarget(ctx context.Context, userID uuid.UUID) (url *string, secret string, err error)
	}
	Webhook interface {
		// Send POSTs body, signed; a nil error means the receiver answered 2xx in time.
		Send(ctx context.Context, url, secret, id string, body []byte) error
	}
)

// Action is what the queue does with the task after an attempt.
type Action int

const (
	Done  Action = iota // acknowledge
	Retry               // again after the next backoff step
	Park                // give up: to the parking queue
)

// Result is one handled task, for the queue and the metrics.
type Result struct {
	Action  Action
	Reason  string        // why it is retried or parked
	Outcome string        // "delivered", "duplicate", "dropped" (the user is gone), "retry" or "parked"
	Class   string        // the webhook call's class (see SendError), "" if none was made
	Call    time.Duration // how long the webhook call took
	Lag     time.Duration // transaction to delivery, when delivered
}

// Config tunes a Notifier.
type Config struct {
	// MaxAttempts is how many attempts a task gets before it is parked and marked failed;
	// the queue must park at the same count.
	MaxAttempts int
	// Lease is how long a claim holds: it must outlast a whole attempt (target lookup,
	// webhook timeout, recording the outcome), else a slow holder may be doubled.
	Lease time.Duration
}

// Notifier handles notification tasks.
type Notifier struct {
	cfg     Config
	inbox   Inbox
	targets Targets
	webhook Webhook
	now     func() time.Time
}

func New(cfg Config, inbox Inbox, targets Targets, webhook Webhook) *Notifier {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	return &Notifier{cfg: cfg, inbox: inbox, targets: targets, webhook: webhook, now: time.Now}
}

// pollLease bounds the wait between looks at another holder's lease: a live holder releases it
// within one attempt, a dead one only when it expires.
const pollLease = 250 * time.Millisecond

// Handle makes one attempt at the task, its attempt-th delivery from the queue.
func (n *Notifier) Handle(ctx context.Context, t pipeline.Task, attempt int) Result {
	note := FromTask(t)
	if r, done := n.inboxOnly(ctx, t, note, attempt); done {
		return r
	}
	for {
		now := n.now()
		c, err := n.inbox.Claim(ctx, note, now, now.Add(n.cfg.Lease))
		switch {
		case err != nil:
			// Nothing recorded, nothing sent: the next attempt starts over.
			return n.failed(attempt, "inbox: "+err.Error())
		case c.Delivered:
			return Result{Action: Done, Outcome: "duplicate"}
		case c.Won:
			return n.deliver(ctx, t, note, c, attempt)
		}
		// Another worker holds it (a duplicate task, or a redelivery after a crash): wait for
		// it rather than retry through the queue, which would spend attempts on waiting.
		wait := min(max(c.LeasedUntil.Sub(now), 10*time.Millisecond), pollLease)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return n.failed(attempt, "interrupted while another worker held the notification")
		}
	}
}

// inboxOnly delivers a notification whose user has no webhook with a single inbox write. It is
// not done when the user has a webhook (or it cannot tell), or when the inbox holds the
// notification already: delivered, or pending from an attempt at a webhook since removed,
// which the claim path sorts out.
func (n *Notifier) inboxOnly(ctx context.Context, t pipeline.Task, note Notification, attempt int) (Result, bool) {
	url, _, err := n.targets.WebhookTarget(ctx, t.UserID)
	if errors.Is(err, ledger.ErrNotFound) {
		// The user existed when its transaction committed, so it was purged since (a load
		// test's cleanup): nobody is left to tell, and an inbox entry would outlive the user.
		return Result{Action: Done, Outcome: "dropped"}, true
	}
	if err != nil || url != nil {
		return Result{}, false
	}
	at := n.now()
	note.Attempts = attempt
	switch err := n.inbox.Record(ctx, note, Outcome{Status: Delivered, At: at}); {
	case err == nil:
		return Result{Action: Done, Outcome: "delivered", Lag: at.Sub(t.CreatedAt)}, true
	case errors.Is(err, ErrRecorded):
		return Result{}, false
	default:
		return n.failed(attempt, "inbox: "+err.Error()), true
	}
}

// deliver makes the attempt the caller holds the claim of, and records its outcome.
func (n *Notifier) deliver(ctx context.Context, t pipeline.Task, note Notification, c Claim, attempt int) Result {
	var res Result
	detail := "" // logged with the outcome, never stored
	errMsg := func() string {
		url, secret, err := n.targets.WebhookTarget(ctx, t.UserID)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
			return "" // the user is gone (purged): the inbox is its only channel
		case err != nil:
			return "webhook target: " + err.Error()
		case url == nil:
			return ""
		}
		body, err := json.Marshal(PayloadOf(t))
		if err != nil {
			return "encode payload: " + err.Error()
		}
		start := n.now()
		err = n.webhook.Send(ctx, *url, secret, note.ID.String(), body)
		res.Call, res.Class = n.now().Sub(start), ClassOf(err)
		if se := (*SendError)(nil); errors.As(err, &se) && se.Detail != "" {
			detail = " (" + se.Detail + ")"
		}
		if err != nil {
			return err.Error()
		}
		return ""
	}()
	if errMsg == "" {
		at := n.now()
		if err := n.finish(ctx, note, c, Outcome{Status: Delivered, At: at}); err != nil {
			// Delivered but not recorded: the retry finds the lease, waits it out and sends
			// again. Rare (MongoDB lost in the middle of an attempt), and at least once holds.
			r := n.failed(attempt, "delivered, but recording it failed: "+err.Error())
			r.Call, r.Class = res.Call, res.Class
			return r
		}
		res.Action, res.Outcome, res.Lag = Done, "delivered", at.Sub(t.CreatedAt)
		return res
	}
	r := n.failed(attempt, errMsg+detail)
	status := Pending
	if r.Action == Park {
		status = Failed
	}
	if err := n.finish(ctx, note, c, Outcome{Status: status, LastError: errMsg}); err != nil {
		r.Reason += "; recording it failed: " + err.Error() // the lease expires, the next attempt goes on
	}
	r.Call, r.Class = res.Call, res.Class
	return r
}

// failed is a failed attempt's result: retry, or park once the attempts are spent.
func (n *Notifier) failed(attempt int, reason string) Result {
	if attempt >= n.cfg.MaxAttempts {
		return Result{Action: Park, Outcome: "parked", Reason: fmt.Sprintf("gave up after %d attempts: %s", attempt, reason)}
	}
	return Result{Action: Retry, Outcome: "retry", Reason: reason}
}

// finish records an outcome, retrying briefly: a lost record costs a second POST later.
func (n *Notifier) finish(ctx context.Context, note Notification, c Claim, o Outcome) error {
	var err error
	wait := backoff.New(50*time.Millisecond, time.Second)
	for range 6 {
		if err = n.inbox.Finish(ctx, note, c, o); err == nil || !wait.Wait(ctx) {
			return err
		}
	}
	return err
}
