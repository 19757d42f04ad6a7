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
// books the verification checks match the processor's. A hold operation whose answers were
// lost (its hold's, or its capture's or void's) is resent whole: its hold is created once and
// captured or voided once.
func TestSettleResolvesLostAnswers(t *testing.T) {
	p := testenv.StartProcessor(t, nil)
	ctx := context.Background()
	id := uuid.NewString()
	mix := loadtest.Mix{Transfer: 0.4, Deposit: 0.1, Withdrawal: 0.1, Hold: 0.4}
	cfg := loadtest.Config{Users: 5, Rate: 1, DurationS: 1, InitialBalance: 10_000, Mix: &mix, Seed: 7}.WithDefaults()
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
	h := v.Holds
	if h == nil || h.Captured == 0 || h.Voided == 0 || h.Pending != 0 || h.Held != 0 ||
		h.Created != h.Captured+h.Voided || v.ExpectedInAnalytics != v.Accepted+h.Created+h.Voided {
		t.Fatalf("holds %+v, verification %+v", h, v)
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
	t.Logf("holds %+v; %d transactions accepted; %d requests applied before settling", *h, v.Accepted, applied)
	// Settling applied what never reached the processor: more than had been applied before.
	if n != v.Accepted || n+h.Created+h.Voided <= int64(5+applied) {
		t.Errorf("%d transactions stored, %d accepted, %+v holds (%d requests applied before settling)", n, v.Accepted, h, applied)
	}
	holds := holdsByStatus(t, conn, loadtest.DescriptionPrefix(id))
	if holds["captured"] != h.Captured || holds["voided"] != h.Voided || len(holds) != 2 {
		t.Errorf("holds stored by status %v, the run booked %+v", holds, h)
	}
}

// holdsByStatus counts the holds whose description starts with prefix by status.
func holdsByStatus(t *testing.T, conn *pgx.Conn, prefix string) map[string]int64 {
	t.Helper()
	rows, _ := conn.Query(context.Background(), "SELECT status, count(*) FROM holds WHERE description LIKE $1 GROUP BY status", prefix+"%")
	out := map[string]int64{}
	var status string
	var n int64
	_, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		out[status] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
