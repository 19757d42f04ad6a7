package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"txn/internal/postgres"
	"txn/internal/testenv"
)

// migratedDatabase is a fresh database with every migration applied: a pool on it (closed at
// cleanup) and its direct URL.
func migratedDatabase(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, direct := testenv.Database(t)
	if err := postgres.Migrate(ctx, direct); err != nil {
		t.Fatal(err)
	}
	pool, err := postgres.Connect(ctx, direct, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, direct
}
