package postgres_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"txn/internal/ledger"
	"txn/internal/postgres"
)

// TestStatementInEveryExecMode checks that a statement reads the same lines whether rows come
// in binary (decoded by hand) or as text (the simple protocol, through pgx's Scan).
func TestStatementInEveryExecMode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seed, direct := migratedDatabase(t)
	// PostgreSQL counts binary times from 2000: the period starts before it and ends after.
	acc, start := uuid.New(), time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)
	_, err := seed.Exec(ctx, `INSERT INTO entries (transaction_id, account_id, amount, balance_after, created_at, type, description)
		VALUES (gen_random_uuid(), $1, 500, 500, '1999-12-01 00:00:00+00', 'deposit', ''),
			(gen_random_uuid(), $1, -200, 300, '1999-12-31 23:59:59.999999+00', 'withdrawal', 'café "au lait"'),
			(gen_random_uuid(), $1, 50, 350, '2000-01-01 00:00:01.5+00', 'reversal', 'undo'),
			(gen_random_uuid(), $1, 9223372036854775000, 9223372036854775350, '2026-12-04 10:00:00+00', 'transfer', '')`,
		acc)
	if err != nil {
		t.Fatal(err)
	}
	read := func(t *testing.T, mode string) ledger.Statement {
		t.Helper()
		pool, err := postgres.Connect(ctx, direct+"?default_query_exec_mode="+mode, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		st := ledger.Statement{AccountID: acc, From: start, To: start.AddDate(30, 0, 0)}
		if err := postgres.NewStore(pool).Statement(ctx, &st); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		return st
	}
	binary, text := read(t, "cache_describe"), read(t, "simple_protocol")

	t.Run("the period's lines, oldest first, with the balance before them", func(t *testing.T) {
		if binary.OpeningBalance != 500 || len(binary.Entries) != 3 {
			t.Fatalf("opening %d with %d lines, want 500 with 3", binary.OpeningBalance, len(binary.Entries))
		}
		l := binary.Entries[1]
		want := []any{int64(50), int64(350), time.Date(2000, 1, 1, 0, 0, 1, 5e8, time.UTC), ledger.Reversal, "undo", acc}
		if got := []any{l.Amount, l.BalanceAfter, l.CreatedAt, l.Type, l.Description, l.AccountID}; !reflect.DeepEqual(got, want) {
			t.Errorf("second line %v, want %v", got, want)
		}
		first := binary.Entries[0]
		if !first.CreatedAt.Equal(time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)) || first.Description != `café "au lait"` {
			t.Errorf("first line at %s described %q, want 1999-12-31T23:59:59.999999Z and the description as written", first.CreatedAt, first.Description)
		}
		if binary.Entries[2].Amount != 9223372036854775000 || binary.Entries[2].Description != "" {
			t.Errorf("last line %+v, want the amount as written and no description", binary.Entries[2])
		}
	})
	t.Run("binary and text rows read alike", func(t *testing.T) {
		if !reflect.DeepEqual(binary, text) {
			t.Errorf("binary %+v\ntext   %+v", binary, text)
		}
	})
}
