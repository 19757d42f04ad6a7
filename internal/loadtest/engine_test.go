package loadtest

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"txn/internal/testenv"
)

// Requests whose answer was lost, some applied and some never received, are settled by
// resending them with their idempotency keys: each is then applied exactly once, and the
// books the verification checks match the processor's.
func TestSettleResolvesLostAnswers(t *testing.T) {
	p := testenv.StartProcessor(t, nil)
	ctx := context.Background()
	id := uuid.NewString()
	cfg := Config{Users: 5, Rate: 1, DurationS: 1, InitialBalance: 10_000}.WithDefaults()
	x := NewExecution(id, cfg, Target{URL: p.URL, AdminToken: p.AdminToken})
	defer x.Close()
	if err := x.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	x.picker = NewPicker(cfg, len(x.accounts), x.seed)
	applied := 0
	for seq := range uint64(40) {
		if seq%2 == 0 { // the request reached the processor, its answer did not come back
			_, token, key, body := x.request(seq)
			if a := x.gen.Send(ctx, token, key, body); a.Status == http.StatusCreated {
				applied++
			}
		}
		x.ambiguous = append(x.ambiguous, seq)
		x.ambiguousTotal.Add(1)
	}
	if applied == 0 {
		t.Fatal("no request applied")
	}
	x.Settle(ctx)
	v := x.Verify(ctx, nil, 0)
	if !v.OK || v.Ambiguous != 40 || v.Unresolved != 0 || !v.BalancesMatch || v.EventsInAnalytics != nil {
		t.Fatalf("verification %+v", v)
	}
	conn, err := pgx.Connect(ctx, p.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM transactions WHERE description LIKE $1", DescriptionPrefix(id)+"%").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != v.Accepted || n <= int64(5+applied) {
		t.Errorf("%d transactions stored, %d accepted (%d applied before settling)", n, v.Accepted, applied)
	}
}
