package mongo_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"txn/internal/ledger"
	"txn/internal/notify"
)

func note(user uuid.UUID, at time.Time) notify.Notification {
	return notify.Notification{ID: uuid.New(), UserID: user, TransactionID: uuid.New(), Kind: "transfer_received",
		Message: "Transfer of 1.00 USD received", Status: notify.Pending, CreatedAt: at}
}

func TestClaimLeasesOnceAndRecordsOutcomes(t *testing.T) {
	s := newStore(t)
	if err := s.EnsureNotificationIndexes(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	n := note(uuid.New(), time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC))
	now := time.Now()

	// The first claim wins; another, while its lease runs, does not.
	c1, err := s.Claim(ctx, n, now, now.Add(time.Minute))
	if err != nil || !c1.Won || c1.Generation != 1 || c1.Recorded {
		t.Fatalf("first claim: %+v, %v", c1, err)
	}
	c, err := s.Claim(ctx, n, now, now.Add(time.Minute))
	if err != nil || c.Won || c.Delivered || c.LeasedUntil.Before(now.Add(59*time.Second)) {
		t.Fatalf("claim of a leased notification: %+v, %v", c, err)
	}
	if _, err := s.Notification(ctx, n.ID); err != ledger.ErrNotFound {
		t.Fatalf("recorded before its first attempt ended: %v", err)
	}

	// A failed attempt records it pending with the error and ends the lease.
	if err := s.Finish(ctx, n, c1, notify.Outcome{Status: notify.Pending, LastError: "webhook answered 500"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Notification(ctx, n.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != notify.Pending || got.Attempts != 1 || got.LastError == nil || *got.LastError != "webhook answered 500" ||
		got.DeliveredAt != nil || !got.CreatedAt.Equal(n.CreatedAt) || got.UserID != n.UserID ||
		got.TransactionID != n.TransactionID || got.Kind != n.Kind || got.Message != n.Message {
		t.Fatalf("after a failed attempt: %+v, from %+v", got, n)
	}
	c2, err := s.Claim(ctx, n, now, now.Add(time.Minute))
	if err != nil || !c2.Won || c2.Generation != 2 || !c2.Recorded {
		t.Fatalf("claim after the first attempt: %+v, %v", c2, err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	if err := s.Finish(ctx, n, c2, notify.Outcome{Status: notify.Delivered, At: at}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Notification(ctx, n.ID)
	if got.Status != notify.Delivered || got.Attempts != 2 || got.DeliveredAt == nil || !got.DeliveredAt.Equal(at) ||
		got.LastError == nil {
		t.Fatalf("after delivery: %+v (the last error stays)", got)
	}
	// Delivered is final: no claim wins, no late outcome overwrites it.
	c, err = s.Claim(ctx, n, now, now.Add(time.Minute))
	if err != nil || !c.Delivered || c.Won {
		t.Fatalf("claim of a delivered notification: %+v, %v", c, err)
	}
	if err := s.Finish(ctx, n, c1, notify.Outcome{Status: notify.Failed, LastError: "late"}); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.Notification(ctx, n.ID); got.Status != notify.Delivered {
		t.Fatalf("a late failure overwrote delivered: %+v", got)
	}
}

func TestRecordWritesAFinalNotificationOnce(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	n := note(uuid.New(), time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC))
	at := time.Now().UTC().Truncate(time.Millisecond)
	if err := s.Record(ctx, n, notify.Outcome{Status: notify.Delivered, At: at}); err != nil {
		t.Fatalf("Record: %v", err)
	}
	got, err := s.Notification(ctx, n.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != notify.Delivered || got.Attempts != 1 || got.DeliveredAt == nil || !got.DeliveredAt.Equal(at) ||
		got.LastError != nil || !got.CreatedAt.Equal(n.CreatedAt) || got.UserID != n.UserID || got.Message != n.Message {
		t.Fatalf("recorded: %+v, from %+v", got, n)
	}
	t.Run("a second record finds it there and changes nothing", func(t *testing.T) {
		err := s.Record(ctx, n, notify.Outcome{Status: notify.Failed, LastError: "late"})
		if !errors.Is(err, notify.ErrRecorded) {
			t.Fatalf("second Record: %v, want ErrRecorded", err)
		}
		if again, _ := s.Notification(ctx, n.ID); again.Status != notify.Delivered {
			t.Fatalf("after a second Record: %+v", again)
		}
	})
	t.Run("a claim and its outcome afterwards leave it delivered", func(t *testing.T) {
		now := time.Now()
		c, err := s.Claim(ctx, n, now, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		// Generation 1 has no claim document: the claim wins, and Finish leaves delivered alone.
		if c.Won {
			if err := s.Finish(ctx, n, c, notify.Outcome{Status: notify.Pending, LastError: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		if again, _ := s.Notification(ctx, n.ID); again.Status != notify.Delivered {
			t.Fatalf("after a claim and its outcome: %+v", again)
		}
	})
}

func TestExpiredLeaseCanBeTakenOver(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	for _, deadFinishesFirst := range []bool{false, true} {
		n := note(uuid.New(), time.Now())
		now := time.Now()
		dead, err := s.Claim(ctx, n, now, now.Add(200*time.Millisecond))
		if err != nil || !dead.Won {
			t.Fatalf("claim: %+v, %v", dead, err)
		}
		later := now.Add(time.Second)
		next, err := s.Claim(ctx, n, later, later.Add(time.Minute))
		if err != nil || !next.Won || next.Generation != 2 || next.Recorded {
			t.Fatalf("claim after the lease expired: %+v, %v", next, err)
		}
		// Whichever records first, the later claim's outcome is what stays.
		stale := func() {
			if err := s.Finish(ctx, n, dead, notify.Outcome{Status: notify.Pending, LastError: "stale"}); err != nil {
				t.Fatal(err)
			}
		}
		if deadFinishesFirst {
			stale()
		}
		if err := s.Finish(ctx, n, next, notify.Outcome{Status: notify.Failed, LastError: "current"}); err != nil {
			t.Fatal(err)
		}
		if !deadFinishesFirst {
			stale()
		}
		if got, _ := s.Notification(ctx, n.ID); got.Status != notify.Failed || got.Attempts != 2 || *got.LastError != "current" {
			t.Fatalf("dead holder finished first: %v: %+v", deadFinishesFirst, got)
		}
	}
}

func TestConcurrentClaimsHaveOneWinner(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	user := uuid.New()
	for round := range 10 {
		n := note(user, time.Now())
		if round%2 == 1 {
			// After a failed first attempt: the race is for the second generation.
			now := time.Now()
			c, err := s.Claim(ctx, n, now, now.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Finish(ctx, n, c, notify.Outcome{Status: notify.Pending, LastError: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				now := time.Now()
				c, err := s.Claim(ctx, n, now, now.Add(time.Minute))
				if err != nil {
					t.Errorf("claim %d: %v", i, err)
					return
				}
				if c.Won {
					mu.Lock()
					won++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("round %d: %d of 8 concurrent claims won, want 1", round, won)
		}
	}
}

func TestNotificationsNewestFirst(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	user := uuid.New()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	record := func(n notify.Notification) {
		now := time.Now()
		c, err := s.Claim(ctx, n, now, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(ctx, n, c, notify.Outcome{Status: notify.Delivered, At: now}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []uuid.UUID
	for i := range 7 {
		n := note(user, base.Add(time.Duration(i)*time.Second))
		record(n)
		ids = append(ids, n.ID)
	}
	record(note(uuid.New(), base)) // another user's
	var got []uuid.UUID
	p := ledger.ListParams{Limit: 3}
	for pages := 0; ; pages++ {
		page, err := s.Notifications(ctx, user, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range page.Items {
			got = append(got, n.ID)
		}
		if page.Next == "" || pages > 5 {
			break
		}
		p.Cursor = page.Next
	}
	if len(got) != 7 {
		t.Fatalf("%d notifications, want 7", len(got))
	}
	for i := range got {
		if got[i] != ids[6-i] {
			t.Fatalf("position %d: %s, want %s (newest first)", i, got[i], ids[6-i])
		}
	}
	if _, err := s.Notifications(ctx, user, ledger.ListParams{Limit: 3, Cursor: "nonsense!"}); ledger.ErrorCode(err) != ledger.CodeValidation {
		t.Fatalf("bad cursor: %v", err)
	}
}
