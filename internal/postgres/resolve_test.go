package postgres_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"txn/internal/ledger"
	"txn/internal/postgres"
)

// TestResolveAmbiguousCommit checks how a batch whose COMMIT got no answer is settled from its
// transaction id, including the id a crash gave to another transaction.
func TestResolveAmbiguousCommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, _ := migratedDatabase(t)
	s := postgres.NewStore(pool)
	cause := errors.New("connection lost at COMMIT")

	// xidOf runs a transaction that writes key (if any) and commits it, or rolls it back; it
	// returns its id.
	xidOf := func(key string, commit bool) string {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var xid string
		if err := tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&xid); err != nil {
			t.Fatal(err)
		}
		if key != "" {
			if _, err := tx.Exec(ctx, "INSERT INTO idempotency_keys (scope, key, request_hash) VALUES ('test', $1, '\\x00')", key); err != nil {
				t.Fatal(err)
			}
		}
		end := tx.Rollback
		if commit {
			end = tx.Commit
		}
		if err := end(ctx); err != nil {
			t.Fatal(err)
		}
		return xid
	}

	t.Run("committed with its row: applied", func(t *testing.T) {
		xid := xidOf("k1", true)
		if err := s.ResolveAmbiguous(ctx, xid, nil, "test", "k1", cause); err != nil {
			t.Errorf("resolve: %v, want applied", err)
		}
	})
	t.Run("rolled back: not applied", func(t *testing.T) {
		xid := xidOf("k2", false)
		if err := s.ResolveAmbiguous(ctx, xid, nil, "test", "k2", cause); !errors.Is(err, postgres.ErrAmbiguous) || isUnknown(err) {
			t.Errorf("resolve: %v, want not applied", err)
		}
	})
	t.Run("committed by another transaction that reused the id: not applied", func(t *testing.T) {
		xid := xidOf("other", true) // stands for the id a crash handed on
		lost := uuid.New()
		start := time.Now()
		err := s.ResolveAmbiguous(ctx, xid, &lost, "", "", cause)
		if !errors.Is(err, postgres.ErrAmbiguous) || isUnknown(err) {
			t.Errorf("resolve: %v, want not applied", err)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("took %v to decide", el)
		}
	})
	t.Run("an id past any the server gave: not applied", func(t *testing.T) {
		cur, _ := strconv.ParseUint(xidOf("", true), 10, 64)
		future := strconv.FormatUint(cur+1_000_000, 10)
		if err := s.ResolveAmbiguous(ctx, future, nil, "test", "none", cause); !errors.Is(err, postgres.ErrAmbiguous) || isUnknown(err) {
			t.Errorf("resolve: %v, want not applied", err)
		}
	})
}

func isUnknown(err error) bool {
	var e *ledger.Error
	return errors.As(err, &e) && e.Code == ledger.CodeOutcomeUnknown
}
