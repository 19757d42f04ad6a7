package loadtest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"txn/internal/ledger"
)

// runWorld is the state Cleanup works on, kept in memory: the ledger's users
// of one tag and the read models' items per user. The stores' own deletions
// are tested in their packages against the real servers; this is the order
// of the steps.
type runWorld struct {
	mu            sync.Mutex
	users         []ledger.User
	activity      map[uuid.UUID]int64
	notifications map[uuid.UUID]int64
	failPurge     error
}

func newRunWorld(n int) *runWorld {
	w := &runWorld{activity: map[uuid.UUID]int64{}, notifications: map[uuid.UUID]int64{}}
	for range n {
		u := ledger.User{ID: uuid.New()}
		w.users = append(w.users, u)
		w.activity[u.ID] = 3
		w.notifications[u.ID] = 2
	}
	return w
}

func (w *runWorld) UsersByTag(context.Context, string) ([]ledger.User, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ledger.User(nil), w.users...), nil
}

func (w *runWorld) Purge(context.Context, string) (ledger.PurgeResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failPurge != nil {
		return ledger.PurgeResult{}, w.failPurge
	}
	n := int64(len(w.users))
	w.users = nil
	return ledger.PurgeResult{Users: n, Accounts: n}, nil
}

func (w *runWorld) deleter(items map[uuid.UUID]int64) func(context.Context, []uuid.UUID) (int64, error) {
	return func(_ context.Context, users []uuid.UUID) (int64, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		var n int64
		for _, u := range users {
			n += items[u]
			delete(items, u)
		}
		return n, nil
	}
}

func (w *runWorld) cleaners() Cleaners {
	return Cleaners{Activities: w.deleter(w.activity), Notifications: w.deleter(w.notifications)}
}

func (w *runWorld) left() (activity, notifications int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.activity), len(w.notifications)
}

func TestCleanup(t *testing.T) {
	t.Run("items the pipeline writes while the purge runs are swept after it", func(t *testing.T) {
		w := newRunWorld(4)
		late := w.users[0].ID
		res, err := Cleanup(context.Background(), w, "run", w.cleaners(), func(step string) {
			if strings.HasPrefix(step, "purging") {
				// The run's last events reach the read models after their first sweep.
				w.mu.Lock()
				w.activity[late], w.notifications[late] = 2, 1
				w.mu.Unlock()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if a, n := w.left(); a != 0 || n != 0 {
			t.Errorf("%d users' activity and %d users' notifications left", a, n)
		}
		if res.Activities != 4*3+2 {
			t.Errorf("activities deleted %d, want 14 (both sweeps)", res.Activities)
		}
		if res.Notifications == nil {
			t.Errorf("notifications deleted: null, want 9")
		} else if *res.Notifications != 4*2+1 {
			t.Errorf("notifications deleted %d, want 9 (both sweeps)", *res.Notifications)
		}
		if res.Users != 4 {
			t.Errorf("users purged %d, want 4", res.Users)
		}
	})

	t.Run("a cleanup whose purge failed finds the users again when repeated", func(t *testing.T) {
		w := newRunWorld(2)
		w.failPurge = errors.New("processor unavailable")
		if _, err := Cleanup(context.Background(), w, "run", w.cleaners(), nil); err == nil {
			t.Fatal("the purge's failure was not reported")
		}
		w.mu.Lock()
		w.failPurge = nil
		w.activity[w.users[1].ID] = 1 // written meanwhile
		w.mu.Unlock()
		res, err := Cleanup(context.Background(), w, "run", w.cleaners(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Users != 2 || res.Activities != 1 {
			t.Errorf("repeat purged %d users and deleted %d activities, want 2 and 1", res.Users, res.Activities)
		}
	})

	t.Run("without an inbox to clean, notifications are reported as unknown", func(t *testing.T) {
		w := newRunWorld(1)
		res, err := Cleanup(context.Background(), w, "run", Cleaners{Activities: w.deleter(w.activity)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Notifications != nil {
			t.Errorf("notifications %d, want null", *res.Notifications)
		}
	})
}
