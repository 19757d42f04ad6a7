package mongo

// The notification inbox: one document per notification, written by the notifier with
// single-document operations (FerretDB v1 deadlocks on bulk upserts that match existing
// documents), read by the processor newest first like the activity feed. A notification is in
// the inbox once its first attempt is over: delivered, or pending with the error.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"txn/internal/audit"
	"txn/internal/ledger"
	"txn/internal/notify"
)

const (
	notificationsColl = "notifications"
	claimsColl        = "notification_claims"
)

var _ notify.Inbox = (*Store)(nil)

func (s *Store) notifications() *mongo.Collection {
	return s.activity.Database().Collection(notificationsColl)
}

func (s *Store) notificationClaims() *mongo.Collection {
	return s.activity.Database().Collection(claimsColl)
}

// inboxWriters gathers the inbox's concurrent inserts into unordered bulk inserts, one per
// collection in flight at a time: FerretDB commits (and syncs) once per command, so a bulk
// costs little more than one insert. Its zero value is ready; the writers start on first use.
//
// It also bounds the finds and updates of the rare paths in flight: on FerretDB each scans a
// collection while holding a connection, and many at once slow each other to a crawl.
type inboxWriters struct {
	once                  sync.Once
	notifications, claims *insertBatcher
	scans                 chan struct{}
}

func (s *Store) writers() *inboxWriters {
	s.inbox.once.Do(func() {
		s.inbox.notifications = &insertBatcher{coll: s.notifications()}
		s.inbox.claims = &insertBatcher{coll: s.notificationClaims()}
		s.inbox.scans = make(chan struct{}, 4)
	})
	return &s.inbox
}

// scan runs f as one of the bounded finds and updates.
func (s *Store) scan(ctx context.Context, f func() error) error {
	w := s.writers()
	select {
	case w.scans <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.scans }()
	return f()
}

// insertBatcher inserts documents for concurrent callers: whatever arrives while a bulk insert
// is in flight goes in the next one.
type insertBatcher struct {
	coll    *mongo.Collection
	mu      sync.Mutex
	queue   []insertRequest
	running bool
}

type insertRequest struct {
	doc  any
	done chan error // nil, errDuplicate or the failure
}

var errDuplicate = errors.New("mongo: duplicate _id")

// insert inserts doc; errDuplicate means a document with its _id exists.
func (b *insertBatcher) insert(ctx context.Context, doc any) error {
	req := insertRequest{doc: doc, done: make(chan error, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, req)
	start := !b.running
	b.running = true
	b.mu.Unlock()
	if start {
		go b.run()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err() // the insert may still happen: callers are idempotent
	}
}

func (b *insertBatcher) run() {
	for {
		b.mu.Lock()
		batch := b.queue
		b.queue = nil
		if len(batch) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		docs := make([]any, len(batch))
		for i, r := range batch {
			docs[i] = r.doc
		}
		// Not any caller's context: the bulk is theirs together.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := b.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		cancel()
		errs := make([]error, len(batch))
		var bwe mongo.BulkWriteException
		switch {
		case err == nil:
		case errors.As(err, &bwe) && bwe.WriteConcernError == nil:
			for _, we := range bwe.WriteErrors {
				if we.Index >= 0 && we.Index < len(errs) {
					errs[we.Index] = errDuplicate
					if we.Code != 11000 {
						errs[we.Index] = fmt.Errorf("insert into %s: %w", b.coll.Name(), we)
					}
				}
			}
		default:
			for i := range errs {
				errs[i] = fmt.Errorf("insert into %s: %w", b.coll.Name(), err)
			}
		}
		for i, r := range batch {
			r.done <- errs[i]
		}
	}
}

// EnsureNotificationIndexes creates the inbox's index; it is idempotent.
func (s *Store) EnsureNotificationIndexes(ctx context.Context) error {
	_, err := s.notifications().Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "user_id", Value: 1}, {Key: "created_at", Value: -1}, {Key: "_id", Value: -1}},
		Options: options.Index().SetName("user_inbox"),
	})
	if err != nil {
		return fmt.Errorf("mongo: create notifications index: %w", err)
	}
	return nil
}

// notificationDoc is a notification as stored. Generation is the latest claim whose outcome
// it records, Attempts the claims made so far (an attempt cut short by a crash counts).
type notificationDoc struct {
	ID             string     `bson:"_id"`
	UserID         string     `bson:"user_id"`
	TransactionID  string     `bson:"transaction_id"`
	Kind           string     `bson:"kind"`
	Message        string     `bson:"message"`
	Status         string     `bson:"status"`
	Attempts       int        `bson:"attempts"`
	LastError      *string    `bson:"last_error"`
	CreatedAt      time.Time  `bson:"created_at"`
	CreatedAtSubMs int32      `bson:"created_at_sub_ms_ns"` // as in activityDoc
	DeliveredAt    *time.Time `bson:"delivered_at"`
	Generation     int        `bson:"generation"`
}

func (d notificationDoc) notification() (notify.Notification, error) {
	n := notify.Notification{Kind: d.Kind, Message: d.Message, Status: notify.Status(d.Status),
		Attempts: d.Attempts, LastError: d.LastError, DeliveredAt: d.DeliveredAt,
		CreatedAt: d.CreatedAt.UTC().Add(time.Duration(d.CreatedAtSubMs))}
	if n.DeliveredAt != nil {
		at := n.DeliveredAt.UTC()
		n.DeliveredAt = &at
	}
	var err error
	for _, f := range []struct {
		dst *uuid.UUID
		s   string
	}{{&n.ID, d.ID}, {&n.UserID, d.UserID}, {&n.TransactionID, d.TransactionID}} {
		if *f.dst, err = uuid.Parse(f.s); err != nil {
			return n, fmt.Errorf("mongo: notification %s: bad id %q: %w", d.ID, f.s, err)
		}
	}
	return n, nil
}

// Why the inbox is written this way: on FerretDB v1 (SQLite) only an insert is cheap. Finds
// and updates, even by _id, scan the whole collection (its _id index is on another expression
// than its lookups), and an update also holds a connection while it scans. So the common
// case, a notification delivered at its first attempt, costs two inserts, batched with other
// workers' in bulk inserts: its claim, then its final state. Finds and updates are left to
// the rare paths (retries, duplicates, takeovers), each by _id alone, the one filter FerretDB
// pushes down; the conditions a filter would check atomically on MongoDB are checked by a
// read just before, which FerretDB does no better (it too evaluates an update's filter and
// writes in separate steps).

// maxAbandoned bounds the claims in a row whose holders died without recording anything.
const maxAbandoned = 16

// Claim leases n for one attempt (see notify.Inbox). Exclusivity rests on inserts alone: a
// claim is the insert of notification_claims document "<notification id>/<generation>", which
// only one claimant can make. A generation is over once the notification records it, or
// once its lease has run out.
func (s *Store) Claim(ctx context.Context, n notify.Notification, now, until time.Time) (notify.Claim, error) {
	id := n.ID.String()
	// The common case, a notification never seen: one insert.
	won, held, err := s.claimGeneration(ctx, id, 1, now, until)
	if err != nil || won {
		return notify.Claim{Won: won, Generation: 1}, err
	}
	var d struct {
		Status     string `bson:"status"`
		Generation int    `bson:"generation"`
	}
	err = s.scan(ctx, func() error {
		return s.notifications().FindOne(ctx, bson.D{{Key: "_id", Value: id}}, options.FindOne().SetProjection(
			bson.D{{Key: "status", Value: 1}, {Key: "generation", Value: 1}})).Decode(&d)
	})
	recorded := err == nil
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		if !held.IsZero() {
			return notify.Claim{LeasedUntil: held}, nil // the first attempt is in flight
		}
	case err != nil:
		return notify.Claim{}, fmt.Errorf("mongo: read notification %s: %w", id, err)
	case d.Status == string(notify.Delivered):
		return notify.Claim{Delivered: true}, nil
	}
	for gen := max(d.Generation+1, 2); gen <= d.Generation+maxAbandoned; gen++ {
		won, held, err := s.claimGeneration(ctx, id, gen, now, until)
		switch {
		case err != nil:
			return notify.Claim{}, err
		case won:
			return notify.Claim{Won: true, Generation: gen, Recorded: recorded}, nil
		case !held.IsZero():
			return notify.Claim{LeasedUntil: held}, nil
		}
	}
	return notify.Claim{}, fmt.Errorf("mongo: notification %s: %d abandoned claims in a row", id, maxAbandoned)
}

// claimGeneration inserts the claim of one generation. If it exists, held is when its lease
// ends, or zero if it has ended.
func (s *Store) claimGeneration(ctx context.Context, id string, gen int, now, until time.Time) (won bool, held time.Time, err error) {
	key := id + "/" + strconv.Itoa(gen)
	err = s.writers().claims.insert(ctx, bson.D{{Key: "_id", Value: key}, {Key: "until", Value: until}})
	if err == nil {
		return true, time.Time{}, nil
	}
	if err != errDuplicate {
		return false, time.Time{}, fmt.Errorf("mongo: claim notification %s: %w", key, err)
	}
	var c struct {
		Until time.Time `bson:"until"`
	}
	if err := s.scan(ctx, func() error {
		return s.notificationClaims().FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&c)
	}); err != nil {
		return false, time.Time{}, fmt.Errorf("mongo: read claim %s: %w", key, err)
	}
	if c.Until.After(now) {
		return false, c.Until, nil
	}
	return false, time.Time{}, nil
}

// Record inserts n with its final outcome (see notify.Inbox), as its generation 1.
func (s *Store) Record(ctx context.Context, n notify.Notification, o notify.Outcome) error {
	doc := newNotificationDoc(n, o, 1)
	doc.Attempts = max(n.Attempts, 1)
	switch err := s.writers().notifications.insert(ctx, doc); {
	case err == errDuplicate:
		return notify.ErrRecorded
	case err != nil:
		return fmt.Errorf("mongo: record notification %s: %w", doc.ID, err)
	}
	return nil
}

// newNotificationDoc is n as stored once generation gen had outcome o.
func newNotificationDoc(n notify.Notification, o notify.Outcome, gen int) notificationDoc {
	doc := notificationDoc{ID: n.ID.String(), UserID: n.UserID.String(), TransactionID: n.TransactionID.String(),
		Kind: n.Kind, Message: n.Message, Status: string(o.Status), Attempts: gen,
		CreatedAt:      n.CreatedAt.UTC().Truncate(time.Millisecond),
		CreatedAtSubMs: int32(n.CreatedAt.Nanosecond() % int(time.Millisecond)),
		Generation:     gen}
	if o.Status == notify.Delivered {
		doc.DeliveredAt = &o.At
	} else {
		doc.LastError = &o.LastError
	}
	return doc
}

// Finish records the outcome of the attempt c was won for (see notify.Inbox): the
// notification's first record is an insert; later ones update it unless it is delivered or a
// later generation recorded its own outcome already.
func (s *Store) Finish(ctx context.Context, n notify.Notification, c notify.Claim, o notify.Outcome) error {
	coll := s.notifications()
	id := n.ID.String()
	doc := newNotificationDoc(n, o, c.Generation)
	set := bson.D{{Key: "status", Value: doc.Status}, {Key: "attempts", Value: doc.Attempts}, {Key: "generation", Value: doc.Generation}}
	if o.Status == notify.Delivered {
		set = append(set, bson.E{Key: "delivered_at", Value: o.At}) // last_error stays: why earlier attempts failed
	} else {
		set = append(set, bson.E{Key: "last_error", Value: o.LastError})
	}
	if !c.Recorded {
		err := s.writers().notifications.insert(ctx, doc)
		if err == nil {
			return nil
		}
		if err != errDuplicate {
			return fmt.Errorf("mongo: record notification %s: %w", id, err)
		}
		// Recorded meanwhile by a later generation (this one's lease ran out).
	}
	var d struct {
		Status     string `bson:"status"`
		Generation int    `bson:"generation"`
	}
	return s.scan(ctx, func() error {
		err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, options.FindOne().SetProjection(
			bson.D{{Key: "status", Value: 1}, {Key: "generation", Value: 1}})).Decode(&d)
		if err != nil {
			return fmt.Errorf("mongo: read notification %s: %w", id, err)
		}
		if d.Status == string(notify.Delivered) || d.Generation > c.Generation {
			return nil
		}
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}}); err != nil {
			return fmt.Errorf("mongo: record outcome of notification %s: %w", id, err)
		}
		return nil
	})
}

// Notifications lists a user's inbox newest first, paged like Activities.
// DeleteNotifications deletes the given users' inbox (their claims are short-lived leases and
// expire on their own).
func (s *Store) DeleteNotifications(ctx context.Context, userIDs []uuid.UUID) (int64, error) {
	return deleteByUsers(ctx, s.notifications(), userIDs, "notifications")
}

func (s *Store) Notifications(ctx context.Context, userID uuid.UUID, p ledger.ListParams) (ledger.Page[notify.Notification], error) {
	docs, next, err := newestFirst(ctx, s.notifications(), userID, p, func(d notificationDoc) (time.Time, string) { return d.CreatedAt, d.ID })
	if err != nil {
		return ledger.Page[notify.Notification]{}, err
	}
	page := ledger.Page[notify.Notification]{Items: make([]notify.Notification, 0, len(docs)), Next: next}
	for _, d := range docs {
		n, err := d.notification()
		if err != nil {
			return ledger.Page[notify.Notification]{}, err
		}
		page.Items = append(page.Items, n)
	}
	return page, nil
}

// Notification reads one notification; ledger.ErrNotFound when there is none.
func (s *Store) Notification(ctx context.Context, id uuid.UUID) (notify.Notification, error) {
	var d notificationDoc
	err := s.notifications().FindOne(ctx, bson.D{{Key: "_id", Value: id.String()}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return notify.Notification{}, ledger.ErrNotFound
	}
	if err != nil {
		return notify.Notification{}, fmt.Errorf("mongo: read notification %s: %w", id, err)
	}
	return d.notification()
}

// NotificationCounts counts the users' inbox notifications per transaction, for an audit.
func (s *Store) NotificationCounts(ctx context.Context, userIDs []uuid.UUID) (audit.Counts, error) {
	return countByTransaction(ctx, s.notifications(), userIDs)
}
