// Package mongo is the MongoDB adapter: users' activity feeds, written by the consumer in
// unordered bulk writes and read by the processor newest first with keyset pagination.
//
// Locally MongoDB is FerretDB v1 (cmd/mongolocal); docker compose runs real MongoDB. The package
// uses only what both support: single-document writes in unordered bulks (no multi-document
// transactions), finds with $or and compound sorts, compound indexes.
package mongo

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"txn/internal/audit"
	"txn/internal/ledger"
	"txn/internal/pipeline"
)

const (
	defaultDatabase = "txn"
	activityColl    = "activity"
	defaultLimit    = 50
	// deleteChunk bounds the $in list of one delete, keeping the command document small.
	deleteChunk = 1000
)

// Store is the activity read model. It implements pipeline.ActivityWriter.
type Store struct {
	client   *mongo.Client
	activity *mongo.Collection
	inbox    inboxWriters // the notification inbox's batched inserts (notifications.go)
}

var _ pipeline.ActivityWriter = (*Store)(nil)

// Open prepares a client for url (a mongodb:// connection string whose path names the
// database, "txn" when absent). It does not contact the server: the driver connects lazily
// and reconnects by itself, so a service can start while MongoDB is down and Ping reports it.
func Open(ctx context.Context, url string) (*Store, error) {
	cs, err := connstring.ParseAndValidate(url)
	if err != nil {
		return nil, fmt.Errorf("mongo: %w", err)
	}
	db := cs.Database
	if db == "" {
		db = defaultDatabase
	}
	// Short selection and connect timeouts (the driver waits 30 s by default) so an unreachable
	// server fails a write or a readiness check within seconds; options in the URL still win.
	opts := options.Client().
		SetServerSelectionTimeout(3 * time.Second).
		SetConnectTimeout(3 * time.Second).
		ApplyURI(url)
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: %w", err)
	}
	return &Store{client: client, activity: client.Database(db).Collection(activityColl)}, nil
}

// Close disconnects, waiting for in-flight operations until ctx ends.
func (s *Store) Close(ctx context.Context) error { return s.client.Disconnect(ctx) }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error { return s.client.Ping(ctx, nil) }

// EnsureIndexes creates the indexes the queries rely on; it is idempotent.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	// Serves a user's feed newest first with the keyset of Activities, and by its user_id
	// prefix DeleteActivities.
	_, err := s.activity.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "user_id", Value: 1}, {Key: "created_at", Value: -1}, {Key: "_id", Value: -1}},
		Options: options.Index().SetName("user_feed"),
	})
	if err != nil {
		return fmt.Errorf("mongo: create activity index: %w", err)
	}
	return nil
}

// activityDoc is an Activity as stored. Ids are strings, as the API shows them.
type activityDoc struct {
	ID                    string    `bson:"_id"`
	UserID                string    `bson:"user_id"`
	EventID               string    `bson:"event_id"`
	TransactionID         string    `bson:"transaction_id"`
	Type                  string    `bson:"type"`
	Amount                int64     `bson:"amount"`
	Currency              string    `bson:"currency"`
	AccountID             string    `bson:"account_id"`
	CounterpartyAccountID *string   `bson:"counterparty_account_id"`
	CreatedAt             time.Time `bson:"created_at"`
	// BSON dates hold milliseconds but transactions carry microseconds: the rest is kept here
	// so the feed shows the transaction's exact time. Sorting needs only created_at and _id.
	CreatedAtSubMs int32 `bson:"created_at_sub_ms_ns"`
}

func toDoc(a pipeline.Activity) activityDoc {
	d := activityDoc{
		ID: a.ID, UserID: a.UserID.String(), EventID: a.EventID.String(), TransactionID: a.TransactionID.String(),
		Type: a.Type, Amount: a.Amount, Currency: a.Currency, AccountID: a.AccountID.String(),
		CreatedAt:      a.CreatedAt.UTC().Truncate(time.Millisecond),
		CreatedAtSubMs: int32(a.CreatedAt.Nanosecond() % int(time.Millisecond)),
	}
	if a.CounterpartyAccountID != nil {
		s := a.CounterpartyAccountID.String()
		d.CounterpartyAccountID = &s
	}
	return d
}

func (d activityDoc) activity() (pipeline.Activity, error) {
	a := pipeline.Activity{ID: d.ID, Type: d.Type, Amount: d.Amount, Currency: d.Currency,
		CreatedAt: d.CreatedAt.UTC().Add(time.Duration(d.CreatedAtSubMs))}
	var err error
	parse := func(s string) uuid.UUID {
		id, e := uuid.Parse(s)
		if e != nil && err == nil {
			err = fmt.Errorf("mongo: activity %s: bad id %q: %w", d.ID, s, e)
		}
		return id
	}
	a.UserID, a.EventID, a.TransactionID, a.AccountID = parse(d.UserID), parse(d.EventID), parse(d.TransactionID), parse(d.AccountID)
	if d.CounterpartyAccountID != nil {
		id := parse(*d.CounterpartyAccountID)
		a.CounterpartyAccountID = &id
	}
	return a, err
}

// UpsertActivities writes items in one unordered bulk insert. Items are keyed by their
// deterministic id, so an item already stored fails with a duplicate key, which means "done":
// redelivery changes nothing. Any other failure, even of one item in a partly applied batch,
// is returned, and the caller retries the whole batch.
//
// Why inserts, not upserts by _id: on FerretDB v1 (SQLite) a bulk of 1,000 upserts took 13.9 s
// against ~0.1 s for 1,000 inserts, and a bulk of upserts matching existing documents hung the
// database for good (its update holds each statement's iterator open until the command ends,
// exhausting its 100-connection pool). Real MongoDB handles both; inserts suit both.
func (s *Store) UpsertActivities(ctx context.Context, items []pipeline.Activity) error {
	if len(items) == 0 {
		return nil
	}
	docs := make([]activityDoc, len(items))
	for i, a := range items {
		docs[i] = toDoc(a)
	}
	_, err := s.activity.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil || onlyDuplicates(err) {
		return nil
	}
	return fmt.Errorf("mongo: write %d activities: %w", len(items), err)
}

// onlyDuplicates reports whether err is a bulk write whose every failure is a duplicate key
// and which has no write concern error. mongo.IsDuplicateKeyError is not enough: it is true
// when any one of the failures is a duplicate. A duplicate can only be of _id, the
// collection's one unique index (FerretDB's message does not name the index to check it).
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}

// Activities lists a user's feed newest first (see newestFirst).
func (s *Store) Activities(ctx context.Context, userID uuid.UUID, p ledger.ListParams) (ledger.Page[pipeline.Activity], error) {
	docs, next, err := newestFirst(ctx, s.activity, userID, p, func(d activityDoc) (time.Time, string) { return d.CreatedAt, d.ID })
	if err != nil {
		return ledger.Page[pipeline.Activity]{}, err
	}
	page := ledger.Page[pipeline.Activity]{Items: make([]pipeline.Activity, 0, len(docs)), Next: next}
	for _, d := range docs {
		a, err := d.activity()
		if err != nil {
			return ledger.Page[pipeline.Activity]{}, err
		}
		page.Items = append(page.Items, a)
	}
	return page, nil
}

// newestFirst reads one page of a user's documents in coll: created_at descending, then _id
// descending to order documents of the same millisecond, which the cursor also carries so no
// document is skipped or repeated across pages. key gives a document's created_at and _id.
func newestFirst[D any](ctx context.Context, coll *mongo.Collection, userID uuid.UUID, p ledger.ListParams,
	key func(D) (time.Time, string)) (docs []D, next string, err error) {
	limit := p.Limit
	if limit < 1 {
		limit = defaultLimit // 0 would mean "no limit" to MongoDB
	}
	filter := bson.D{{Key: "user_id", Value: userID.String()}}
	if p.Cursor != "" {
		at, id, err := decodeCursor(p.Cursor)
		if err != nil {
			return nil, "", err
		}
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "created_at", Value: bson.D{{Key: "$lt", Value: at}}}},
			bson.D{{Key: "created_at", Value: at}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: id}}}},
		}})
	}
	cur, err := coll.Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(limit)+1)) // one more tells whether another page follows
	if err != nil {
		return nil, "", fmt.Errorf("mongo: find %s: %w", coll.Name(), err)
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, "", fmt.Errorf("mongo: read %s: %w", coll.Name(), err)
	}
	if len(docs) > limit {
		docs = docs[:limit]
		at, id := key(docs[limit-1])
		next = encodeCursor(at, id)
	}
	return docs, next, nil
}

// DeleteActivities removes every activity of the given users and returns how many it removed.
func (s *Store) DeleteActivities(ctx context.Context, userIDs []uuid.UUID) (int64, error) {
	return deleteByUsers(ctx, s.activity, userIDs, "activities")
}

// deleteByUsers deletes the documents of the given users, a chunk of users per statement.
//
// The local stand-in (FerretDB on SQLite) binds every _id a delete matched as one SQL variable
// and refuses a statement that matched more than SQLite allows (32,766): a refused chunk is
// halved, and the documents of a single user with more than that are deleted a page of _ids at
// a time. Real MongoDB never refuses, so it always takes the first path.
func deleteByUsers(ctx context.Context, coll *mongo.Collection, userIDs []uuid.UUID, what string) (int64, error) {
	var deleted int64
	chunk := deleteChunk
	for len(userIDs) > 0 {
		n := min(chunk, len(userIDs))
		ids := uuidStrings(userIDs[:n])
		res, err := coll.DeleteMany(ctx, bson.D{{Key: "user_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		switch {
		case err == nil:
			deleted += res.DeletedCount
			userIDs = userIDs[n:]
		case matchedTooMany(err) && n > 1:
			chunk = n / 2
		case matchedTooMany(err):
			d, err := deleteInPages(ctx, coll, bson.D{{Key: "user_id", Value: ids[0]}})
			deleted += d
			if err != nil {
				return deleted, fmt.Errorf("mongo: delete %s: %w", what, err)
			}
			userIDs = userIDs[1:]
		default:
			return deleted, fmt.Errorf("mongo: delete %s: %w", what, err)
		}
	}
	return deleted, nil
}

// deletePage bounds how many documents deleteInPages removes per statement: well under
// SQLite's 32,766 variables.
const deletePage = 20000

// deleteInPages deletes the documents matching filter, the oldest deletePage at a time: it
// finds the created_at of the deletePage-th oldest and deletes those created before it. Not by
// _id: the stand-in commits (and fsyncs) each delete statement on its own and compares every
// document it scans with each element of an $in list.
func deleteInPages(ctx context.Context, coll *mongo.Collection, filter bson.D) (int64, error) {
	var deleted int64
	for {
		var edge struct {
			CreatedAt time.Time `bson:"created_at"`
		}
		err := coll.FindOne(ctx, filter, options.FindOne().
			SetSort(bson.D{{Key: "created_at", Value: 1}}).SetSkip(deletePage-1).
			SetProjection(bson.D{{Key: "created_at", Value: 1}})).Decode(&edge)
		if errors.Is(err, mongo.ErrNoDocuments) {
			res, err := coll.DeleteMany(ctx, filter) // fewer than deletePage are left
			if err != nil {
				return deleted, err
			}
			return deleted + res.DeletedCount, nil
		}
		if err != nil {
			return deleted, err
		}
		n := int64(0)
		for _, op := range []string{"$lt", "$lte"} { // $lte only if every one shares edge's time
			res, err := coll.DeleteMany(ctx, append(filter[:len(filter):len(filter)],
				bson.E{Key: "created_at", Value: bson.D{{Key: op, Value: edge.CreatedAt}}}))
			if err != nil {
				return deleted, err
			}
			if n = res.DeletedCount; n > 0 {
				break
			}
		}
		if n == 0 {
			return deleted, fmt.Errorf("no progress deleting documents created up to %s", edge.CreatedAt)
		}
		deleted += n
	}
}

// matchedTooMany reports whether err is the stand-in refusing a delete that matched more
// documents than SQLite can bind in one statement.
func matchedTooMany(err error) bool {
	return strings.Contains(err.Error(), "too many SQL variables")
}

// --- cursor: base64url of created_at (Unix milliseconds, 8 bytes big-endian) then the _id ---

var badCursor = ledger.Invalid(ledger.FieldError{Field: "cursor", Message: "is not a cursor this list returned"})

func encodeCursor(at time.Time, id string) string {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), uint64(at.UnixMilli()))
	return base64.RawURLEncoding.EncodeToString(append(b, id...))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) <= 8 || !utf8.Valid(b[8:]) {
		return time.Time{}, "", badCursor
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[:8]))).UTC(), string(b[8:]), nil
}

// ActivityCounts counts the users' activity items per transaction, for an audit.
func (s *Store) ActivityCounts(ctx context.Context, userIDs []uuid.UUID) (audit.Counts, error) {
	return countByTransaction(ctx, s.activity, userIDs)
}

// countByTransaction counts the users' documents per transaction_id, a chunk of users per query.
// Documents of a hold's events (typed as such) are not a transaction's and are left out.
func countByTransaction(ctx context.Context, coll *mongo.Collection, userIDs []uuid.UUID) (audit.Counts, error) {
	counts := audit.Counts{}
	for len(userIDs) > 0 {
		n := min(deleteChunk, len(userIDs))
		cur, err := coll.Find(ctx, bson.D{{Key: "user_id", Value: bson.D{{Key: "$in", Value: uuidStrings(userIDs[:n])}}}},
			options.Find().SetProjection(bson.D{{Key: "transaction_id", Value: 1}, {Key: "type", Value: 1}}))
		if err != nil {
			return nil, fmt.Errorf("mongo: count %s: %w", coll.Name(), err)
		}
		for cur.Next(ctx) {
			var doc struct {
				TransactionID string `bson:"transaction_id"`
				Type          string `bson:"type"`
			}
			if err := cur.Decode(&doc); err != nil {
				_ = cur.Close(ctx)
				return nil, fmt.Errorf("mongo: count %s: %w", coll.Name(), err)
			}
			if !pipeline.MovesMoney(doc.Type) {
				continue
			}
			id, err := uuid.Parse(doc.TransactionID)
			if err != nil {
				_ = cur.Close(ctx)
				return nil, fmt.Errorf("mongo: %s transaction id %q: %w", coll.Name(), doc.TransactionID, err)
			}
			counts[id]++
		}
		if err := cur.Err(); err != nil {
			return nil, fmt.Errorf("mongo: count %s: %w", coll.Name(), err)
		}
		_ = cur.Close(ctx)
		userIDs = userIDs[n:]
	}
	return counts, nil
}

func uuidStrings(ids []uuid.UUID) bson.A {
	out := make(bson.A, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
