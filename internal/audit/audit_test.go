package audit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"txn/internal/audit"
)

func TestCompare(t *testing.T) {
	a, b, c, d := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	want := map[uuid.UUID]int{a: 2, b: 1, c: 2}

	t.Run("every effect once is ok", func(t *testing.T) {
		diff := audit.Compare("s", want, audit.Counts{a: 2, b: 1, c: 2})
		if !diff.OK() || diff.Expected != 5 || diff.Found != 5 {
			t.Errorf("diff %+v, want ok with 5 expected and found", diff)
		}
	})
	t.Run("a missing effect beside a doubled one is caught though the totals agree", func(t *testing.T) {
		diff := audit.Compare("s", want, audit.Counts{a: 1, b: 2, c: 2})
		if diff.Missing != 1 || diff.Twice != 1 || diff.OK() {
			t.Errorf("diff %+v, want 1 missing and 1 twice", diff)
		}
		if diff.Expected != diff.Found {
			t.Errorf("totals %d and %d, want equal in this case", diff.Expected, diff.Found)
		}
	})
	t.Run("a transaction the ledger does not have is unknown", func(t *testing.T) {
		diff := audit.Compare("s", want, audit.Counts{a: 2, b: 1, c: 2, d: 1})
		if diff.Unknown != 1 || diff.OK() || len(diff.Examples) != 1 || diff.Examples[0] != "unknown "+d.String() {
			t.Errorf("diff %+v, want d unknown", diff)
		}
	})
	t.Run("nothing found is every transaction missing", func(t *testing.T) {
		diff := audit.Compare("s", want, nil)
		if diff.Missing != 3 || diff.Found != 0 || len(diff.Examples) != 3 {
			t.Errorf("diff %+v, want 3 missing with 3 examples", diff)
		}
	})
}

func TestRun(t *testing.T) {
	u1, u2 := uuid.New(), uuid.New()
	dep, tr, wd := uuid.New(), uuid.New(), uuid.New()
	txs := []audit.Transaction{{ID: dep, ToUser: &u1}, {ID: tr, FromUser: &u1, ToUser: &u2}, {ID: wd, FromUser: &u2}}
	var askedUsers []uuid.UUID
	src := audit.Sources{
		Transactions: func(context.Context, string) ([]audit.Transaction, error) { return txs, nil },
		Analytics: func(context.Context, string) (audit.Counts, error) {
			return audit.Counts{dep: 1, tr: 1, wd: 1}, nil
		},
		Activities: func(_ context.Context, users []uuid.UUID) (audit.Counts, error) {
			askedUsers = users
			return audit.Counts{dep: 1, tr: 2, wd: 1}, nil
		},
		Notifications: func(context.Context, []uuid.UUID) (audit.Counts, error) {
			return audit.Counts{dep: 1, tr: 1, wd: 1}, nil
		},
	}

	t.Run("a transfer calls for two per-side effects, the others for one", func(t *testing.T) {
		diffs, n, err := audit.Run(context.Background(), src, "p:")
		if err != nil || n != 3 || len(diffs) != 3 {
			t.Fatalf("Run: %d transactions, %d diffs, %v", n, len(diffs), err)
		}
		if !diffs[0].OK() || !diffs[1].OK() {
			t.Errorf("analytics %v; activities %v; want both ok", diffs[0], diffs[1])
		}
		if diffs[2].Missing != 1 || diffs[2].Examples[0] != "missing "+tr.String() {
			t.Errorf("notifications %v, want the transfer's second one missing", diffs[2])
		}
	})
	t.Run("the read models are asked for each user once", func(t *testing.T) {
		if len(askedUsers) != 2 {
			t.Errorf("asked for %d users, want 2", len(askedUsers))
		}
	})
	t.Run("a store that cannot be read is an error", func(t *testing.T) {
		broken := src
		broken.Activities = func(context.Context, []uuid.UUID) (audit.Counts, error) { return nil, errors.New("down") }
		if _, _, err := audit.Run(context.Background(), broken, "p:"); err == nil {
			t.Error("Run succeeded with an unreadable store")
		}
	})
}
