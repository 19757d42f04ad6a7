package postgres_test

import (
	"context"
	"testing"
	"time"

	"txn/internal/postgres"
	"txn/internal/testenv"
)

// TestMigrationsGoDownAndUp checks that every migration's Down undoes its Up: all of them go
// up, down to nothing, and up again.
func TestMigrationsGoDownAndUp(t *testing.T) {
	_, direct := testenv.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := postgres.MigrateDownAndUp(ctx, direct); err != nil {
		t.Fatal(err)
	}
}
