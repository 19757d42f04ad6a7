package loadtest_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"txn/internal/loadtest"
	"txn/internal/testenv"
)

// Requests whose answer was lost, some applied and some never received, are settled by
// resending them with their idempotency keys: each is then applied exactly once, and the
// books the verification checks match the processor's.
func TestSettleResolvesLostAnswers(t *testing.T) {
	p := testenv.StartProcessor(t, nil)
	ctx := context.Background()
	id := uuid.NewString()
	cfg := loadtest.Config{Users: 5, Rate: 1, DurationS: 1, InitialBalance: 10_000}.WithDefaults()
	x, err := loadtest.NewExecution(id, cfg, loadtest.ExecutionDeps{Target: loadtest.Target{URL: p.URL, AdminToken: p.AdminToken}})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if err := x.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	applied := x.LoseAnswers(ctx, 40)
	if applied == 0 {
		t.Fatal("no request applied")
	}
	x.Settle(ctx)
	v := x.Verify(ctx)
	if !v.OK || v.Ambiguous != 40 || v.Unresolved != 0 || !v.BalancesMatch || v.EventsInAnalytics != nil {
		t.Fatalf("verification %+v", v)
	}
	conn, err := pgx.Connect(ctx, p.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM transactions WHERE description LIKE $1", loadtest.DescriptionPrefix(id)+"%").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != v.Accepted || n <= int64(5+applied) {
		t.Errorf("%d transactions stored, %d accepted (%d applied before settling)", n, v.Accepted, applied)
	}
}
