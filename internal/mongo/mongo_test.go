package mongo_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"

	"txn/internal/ledger"
	"txn/internal/mongo"
	"txn/internal/pipeline"
	"txn/internal/testenv"
)

// newStore opens a Store on a database of its own, dropped when tb ends.
func newStore(tb testing.TB) *mongo.Store {
	tb.Helper()
	base := testenv.MongoURL(tb)
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("MONGO_URL %s: %v", base, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	db := "test_" + hex.EncodeToString(b)
	u.Path = "/" + db
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := mongo.Open(ctx, u.String())
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close(ctx)
		tb.Fatalf("MongoDB is not reachable at %s (start the servers with `make test`): %v", base, err)
	}
	if got := s.DatabaseName(); got != db {
		tb.Fatalf("store uses database %q, want %q from the URL", got, db)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.DropDatabase(ctx); err != nil {
			tb.Logf("drop database %s: %v", db, err)
		}
		_ = s.Close(ctx)
	})
	if err := s.EnsureIndexes(ctx); err != nil {
		tb.Fatal(err)
	}
	return s
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// item is one activity of user at, with microseconds as Postgres gives them.
func item(user uuid.UUID, amount int64, at time.Time) pipeline.Activity {
	a := pipeline.Activity{ID: uuid.NewString(), UserID: user, EventID: uuid.New(), TransactionID: uuid.New(),
		Type: "transfer", Amount: amount, Currency: "USD", AccountID: uuid.New(), CreatedAt: at}
	if amount%2 == 0 { // half with a counterparty, half without (deposits and withdrawals)
		cp := uuid.New()
		a.CounterpartyAccountID = &cp
	}
	return a
}

func count(tb testing.TB, s *mongo.Store) int64 {
	tb.Helper()
	n, err := s.CountActivities(ctxT(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// all reads a user's whole feed, page by page.
func all(t *testing.T, s *mongo.Store, user uuid.UUID, limit int) (items []pipeline.Activity, pages int) {
	t.Helper()
	p := ledger.ListParams{Limit: limit}
	for {
		page, err := s.Activities(ctxT(t), user, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) > limit {
			t.Fatalf("page of %d items, limit %d", len(page.Items), limit)
		}
		items = append(items, page.Items...)
		pages++
		if page.Next == "" {
			return items, pages
		}
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		p.Cursor = page.Next
	}
}

// newestFirst is the feed's order: created_at (to the millisecond BSON keeps) descending,
// then id descending.
func newestFirst(items []pipeline.Activity) []pipeline.Activity {
	out := slices.Clone(items)
	slices.SortFunc(out, func(a, b pipeline.Activity) int {
		if c := b.CreatedAt.Truncate(time.Millisecond).Compare(a.CreatedAt.Truncate(time.Millisecond)); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out
}

func equal(a, b pipeline.Activity) bool {
	cp := func(p *uuid.UUID) string {
		if p == nil {
			return "<nil>"
		}
		return p.String()
	}
	return a.ID == b.ID && a.UserID == b.UserID && a.EventID == b.EventID && a.TransactionID == b.TransactionID &&
		a.Type == b.Type && a.Amount == b.Amount && a.Currency == b.Currency && a.AccountID == b.AccountID &&
		cp(a.CounterpartyAccountID) == cp(b.CounterpartyAccountID) && a.CreatedAt.Equal(b.CreatedAt) &&
		a.CreatedAt.Location() == time.UTC
}

func assertFeed(t *testing.T, got, want []pipeline.Activity) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("feed has %d items, want %d", len(got), len(want))
	}
	for i := range want {
		if !equal(got[i], want[i]) {
			t.Fatalf("item %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestUpsertTwiceWritesOnce(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	user := uuid.New()
	base := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC) // sub-millisecond part must survive
	var items []pipeline.Activity
	for i := range 10 {
		items = append(items, item(user, int64(i+1), base.Add(time.Duration(i)*time.Second)))
	}
	if err := s.UpsertActivities(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertActivities(ctx, items); err != nil {
		t.Fatalf("second write of the same items: %v", err)
	}
	// A redelivered batch overlapping new items: the old ones are skipped, the new ones written.
	extra := item(user, 99, base.Add(time.Hour))
	if err := s.UpsertActivities(ctx, append(slices.Clone(items[:5]), extra, extra)); err != nil {
		t.Fatalf("mixed batch: %v", err)
	}
	if err := s.UpsertActivities(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	if n := count(t, s); n != 11 {
		t.Fatalf("%d documents, want 11", n)
	}
	got, _ := all(t, s, user, 200)
	assertFeed(t, got, newestFirst(append(items, extra)))
}

// The stored document is part of the contract with whoever reads MongoDB directly.
func TestDocumentAndIndexes(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	a := item(uuid.New(), -1234, time.Date(2026, 3, 1, 12, 0, 0, 987654000, time.UTC))
	if a.CounterpartyAccountID == nil {
		t.Fatal("want an item with a counterparty")
	}
	if err := s.UpsertActivities(ctx, []pipeline.Activity{a}); err != nil {
		t.Fatal(err)
	}
	m, err := s.RawActivity(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"_id": a.ID, "user_id": a.UserID.String(), "event_id": a.EventID.String(),
		"transaction_id": a.TransactionID.String(), "type": a.Type, "amount": int64(-1234), "currency": "USD",
		"account_id": a.AccountID.String(), "counterparty_account_id": a.CounterpartyAccountID.String(),
		"created_at": bson.NewDateTimeFromTime(a.CreatedAt), "created_at_sub_ms_ns": int32(654000)}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("field %s = %#v (%T), want %#v (%T)", k, m[k], m[k], v, v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("document has fields %v, want %d", m, len(want))
	}

	if err := s.EnsureIndexes(ctx); err != nil { // again: idempotent
		t.Fatal(err)
	}
	idx, err := s.IndexKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantKey := bson.D{{Key: "user_id", Value: int32(1)}, {Key: "created_at", Value: int32(-1)}, {Key: "_id", Value: int32(-1)}}
	if got := fmt.Sprint(idx["user_feed"]); got != fmt.Sprint(wantKey) {
		t.Fatalf("index user_feed = %v, want %v (all: %v)", got, wantKey, idx)
	}
}

func TestFeedHoldsOnlyTheUsersItemsNewestFirst(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	alice, bob := uuid.New(), uuid.New()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// A transfer from Alice to Bob gives each one item, signed for that user.
	tr := pipeline.Activity{ID: uuid.NewString(), EventID: uuid.New(), TransactionID: uuid.New(), Type: "transfer",
		Currency: "EUR", CreatedAt: base.Add(3 * time.Minute)}
	aliceAcc, bobAcc := uuid.New(), uuid.New()
	debit, credit := tr, tr
	debit.UserID, debit.Amount, debit.AccountID, debit.CounterpartyAccountID = alice, -2500, aliceAcc, &bobAcc
	credit.ID, credit.UserID, credit.Amount, credit.AccountID, credit.CounterpartyAccountID = uuid.NewString(), bob, 2500, bobAcc, &aliceAcc
	deposit := item(alice, 10000, base)
	deposit.Type, deposit.CounterpartyAccountID = "deposit", nil
	withdrawal := item(alice, -700, base.Add(5*time.Minute))
	withdrawal.Type, withdrawal.CounterpartyAccountID = "withdrawal", nil
	bobDeposit := item(bob, 400, base.Add(time.Minute))

	if err := s.UpsertActivities(ctx, []pipeline.Activity{deposit, credit, debit, bobDeposit, withdrawal}); err != nil {
		t.Fatal(err)
	}
	got, _ := all(t, s, alice, 50)
	assertFeed(t, got, []pipeline.Activity{withdrawal, debit, deposit})
	if got[0].Amount != -700 || got[1].Amount != -2500 || got[2].Amount != 10000 {
		t.Fatalf("amounts %d %d %d, want -700 -2500 10000", got[0].Amount, got[1].Amount, got[2].Amount)
	}
	got, _ = all(t, s, bob, 50)
	assertFeed(t, got, []pipeline.Activity{credit, bobDeposit})

	page, err := s.Activities(ctx, uuid.New(), ledger.ListParams{Limit: 50})
	if err != nil || page.Items == nil || len(page.Items) != 0 || page.Next != "" {
		t.Fatalf("a user without activity: %+v, %v; want an empty, non-nil page", page, err)
	}
}

func TestPaginationAcrossEqualTimes(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	user := uuid.New()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// 7 items, three sharing one instant and two another, so pages break inside a tie.
	at := []time.Time{t0, t0, t0, t0.Add(time.Second), t0.Add(time.Second), t0.Add(2 * time.Second), t0.Add(-time.Hour)}
	var items []pipeline.Activity
	for i, a := range at {
		items = append(items, item(user, int64(i+1), a))
	}
	// Another user's items at the same instants must not leak in.
	other := uuid.New()
	var noise []pipeline.Activity
	for _, a := range at {
		noise = append(noise, item(other, 5, a))
	}
	if err := s.UpsertActivities(ctx, append(items, noise...)); err != nil {
		t.Fatal(err)
	}
	got, pages := all(t, s, user, 3)
	if pages != 3 {
		t.Fatalf("%d pages, want 3 (3+3+1)", pages)
	}
	assertFeed(t, got, newestFirst(items))

	// An exact multiple of the limit ends without an empty trailing page.
	got, pages = all(t, s, user, 7)
	if pages != 1 || len(got) != 7 {
		t.Fatalf("limit 7: %d pages, %d items; want 1 page of 7", pages, len(got))
	}
}

func TestBadCursor(t *testing.T) {
	s := newStore(t)
	for _, c := range []string{"not*base64!", "AAAA", base64.RawURLEncoding.EncodeToString([]byte{1, 2, 3, 4, 5, 6, 7, 8}),
		base64.RawURLEncoding.EncodeToString([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xfe})} {
		_, err := s.Activities(ctxT(t), uuid.New(), ledger.ListParams{Limit: 10, Cursor: c})
		var le *ledger.Error
		if !errors.As(err, &le) || le.Code != ledger.CodeValidation || len(le.Fields) != 1 || le.Fields[0].Field != "cursor" {
			t.Errorf("cursor %q: got %v, want a validation error on field cursor", c, err)
		}
	}
}

func TestDeleteActivities(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	a, b, keep := uuid.New(), uuid.New(), uuid.New()
	now := time.Now()
	var items []pipeline.Activity
	for i := range 4 {
		items = append(items, item(a, 1, now.Add(time.Duration(i)*time.Second)), item(keep, 2, now))
	}
	items = append(items, item(b, 3, now))
	if err := s.UpsertActivities(ctx, items); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteActivities(ctx, []uuid.UUID{a, b, uuid.New()})
	if err != nil || n != 5 {
		t.Fatalf("delete = %d, %v; want 5", n, err)
	}
	for _, u := range []uuid.UUID{a, b} {
		if got, _ := all(t, s, u, 50); len(got) != 0 {
			t.Fatalf("user %s still has %d items", u, len(got))
		}
	}
	if got, _ := all(t, s, keep, 50); len(got) != 4 {
		t.Fatalf("untouched user has %d items, want 4", len(got))
	}
	if n, err := s.DeleteActivities(ctx, []uuid.UUID{a, b}); err != nil || n != 0 {
		t.Fatalf("second delete = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteActivities(ctx, nil); err != nil || n != 0 {
		t.Fatalf("delete of no users = %d, %v; want 0", n, err)
	}
}

// The stand-in refuses a delete that matched more than 32,766 documents (SQLite's limit on
// bound variables); a run's cleanup must still remove every document of its users.
func TestDeleteActivitiesOfAUserWithManyDocuments(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 33,000 documents")
	}
	s := newStore(t)
	ctx := ctxT(t)
	heavy, light, keep := uuid.New(), uuid.New(), uuid.New()
	now := time.Now()
	const many = 33000
	for start := 0; start < many; start += 1000 {
		items := make([]pipeline.Activity, 0, 1000)
		for i := start; i < start+1000; i++ {
			items = append(items, item(heavy, int64(i+1), now.Add(time.Duration(i)*time.Microsecond)))
		}
		if err := s.UpsertActivities(ctx, items); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UpsertActivities(ctx, []pipeline.Activity{item(light, 1, now), item(keep, 2, now)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteActivities(ctx, []uuid.UUID{heavy, light})
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	t.Run("every document of the users is deleted and counted", func(t *testing.T) {
		if n != many+1 {
			t.Errorf("deleted %d, want %d", n, many+1)
		}
		if c := count(t, s); c != 1 {
			t.Errorf("%d documents left, want the untouched user's 1", c)
		}
	})
	t.Run("another user's documents stay", func(t *testing.T) {
		if got, _ := all(t, s, keep, 50); len(got) != 1 {
			t.Errorf("untouched user has %d items, want 1", len(got))
		}
	})
}

func TestBulkWrite5000(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	items := batch(5000, time.Now())
	start := time.Now()
	if err := s.UpsertActivities(ctx, items); err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	start = time.Now()
	if err := s.UpsertActivities(ctx, items); err != nil {
		t.Fatal(err)
	}
	again := time.Since(start)
	t.Logf("5,000 items: written in %v (%.0f docs/s), rewritten (all duplicates) in %v (%.0f docs/s)",
		first.Round(time.Millisecond), 5000/first.Seconds(), again.Round(time.Millisecond), 5000/again.Seconds())
	if n := count(t, s); n != 5000 {
		t.Fatalf("%d documents, want 5000", n)
	}
}

// A partial failure must be an error: only batches whose every failure is a duplicate succeed.
func TestOnlyDuplicates(t *testing.T) {
	dup := driver.BulkWriteError{WriteError: driver.WriteError{Code: 11000, Message: "E11000 duplicate key error"}}
	other := driver.BulkWriteError{WriteError: driver.WriteError{Code: 2, Message: "bad value"}}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{driver.BulkWriteException{WriteErrors: []driver.BulkWriteError{dup, dup}}, true},
		{fmt.Errorf("wrapped: %w", driver.BulkWriteException{WriteErrors: []driver.BulkWriteError{dup}}), true},
		{driver.BulkWriteException{WriteErrors: []driver.BulkWriteError{dup, other}}, false},
		{driver.BulkWriteException{WriteErrors: []driver.BulkWriteError{dup}, WriteConcernError: &driver.WriteConcernError{Code: 64}}, false},
		{driver.BulkWriteException{}, false},
		{errors.New("connection reset"), false},
		{context.DeadlineExceeded, false},
	} {
		if got := mongo.OnlyDuplicates(c.err); got != c.want {
			t.Errorf("onlyDuplicates(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestPingClosedPortFailsQuickly(t *testing.T) {
	testenv.Integration(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	s, err := mongo.Open(context.Background(), "mongodb://"+addr+"/txn")
	if err != nil {
		t.Fatalf("Open must not need the server: %v", err)
	}
	defer func() { _ = s.Close(context.Background()) }()
	start := time.Now()
	err = s.Ping(context.Background()) // no deadline: the store's own timeouts must bound it
	took := time.Since(start)
	if err == nil {
		t.Fatal("ping of a closed port succeeded")
	}
	if took > 5*time.Second {
		t.Fatalf("ping of a closed port took %v", took)
	}
	t.Logf("ping of a closed port failed in %v: %v", took.Round(time.Millisecond), err)
	// Writes fail the same way rather than hang.
	if err := s.UpsertActivities(context.Background(), batch(3, time.Now())); err == nil {
		t.Fatal("write to a closed port succeeded")
	}
}

// batch makes n items spread over 100 users.
func batch(n int, at time.Time) []pipeline.Activity {
	users := make([]uuid.UUID, 100)
	for i := range users {
		users[i] = uuid.New()
	}
	out := make([]pipeline.Activity, n)
	for i := range out {
		out[i] = item(users[i%len(users)], int64(i+1), at.Add(time.Duration(i)*time.Microsecond))
	}
	return out
}

// BenchmarkUpsertActivities writes fresh 2,000-item batches, as the consumer does.
//
// Choosing the write (FerretDB v1 locally, 2 cores, batches of 1,000-5,000): unordered inserts
// ran at ~7,500-13,000 docs/s fresh and ~5,500-8,000 docs/s when every item was already stored
// (duplicate keys); unordered ReplaceOne upserts by _id took 13.9 s for 1,000 fresh documents
// (~70 docs/s) and hung the database once the documents existed. Hence inserts.
func BenchmarkUpsertActivities(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	const size = 2000
	batches := make([][]pipeline.Activity, b.N)
	for i := range batches {
		batches[i] = batch(size, time.Now())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.UpsertActivities(ctx, batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "docs/s")
}
