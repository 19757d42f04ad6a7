package processor_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"
)

// BenchmarkHistory times GET /accounts/{id}/balance?at= and a month's statement, through the
// processor, for an account with 100,000 entries spread over a year (about 8,200 a month), and
// reports their p50 and p99 in ms:
//
//	go test -run '^$' -bench History -benchtime 200x ./internal/processor/
func BenchmarkHistory(b *testing.B) {
	f := newFixture(b, nil)
	acc := f.admin.CreateAccount(b, f.alice.ID, "USD")
	const n = 100_000
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	step := 365 * 24 * time.Hour / n
	// Seeded in SQL: 100,000 deposits through the API would time the write path, not this.
	// Four entries of 100 other accounts come between two of this account's, as in a ledger
	// that holds more than one account, so the planner sees the table a real one would; ids
	// are time-ordered like the processor's UUIDv7s.
	_, err := f.db.Exec(context.Background(), `
		WITH tx AS (
			INSERT INTO transactions (id, type, to_account_id, amount, currency, description, created_at)
			SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING
					substring(int8send((extract(epoch FROM $2::timestamptz + i * $3::interval) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 'hex')::uuid,
				'deposit',
				CASE WHEN i % 5 = 0 THEN $1::uuid ELSE ('00000000-0000-4000-8000-' || lpad((i % 100)::text, 12, '0'))::uuid END,
				1, 'USD', 'seed', $2::timestamptz + i * $3::interval
			FROM generate_series(1, 5 * $4::int) i
			RETURNING id, to_account_id, created_at)
		INSERT INTO entries (transaction_id, account_id, amount, balance_after, created_at, type, description)
		SELECT id, to_account_id, 1, row_number() OVER (PARTITION BY to_account_id ORDER BY created_at), created_at, 'deposit', 'seed'
		FROM tx ORDER BY created_at`,
		acc, start, step/5, n)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.db.Exec(context.Background(), `ANALYZE entries; ANALYZE transactions`); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	timed := func(b *testing.B, name string, path func() string) {
		b.Run(name, func(b *testing.B) {
			lat := make([]float64, 0, b.N)
			for b.Loop() {
				p := path()
				t0 := time.Now()
				f.ac.Must(b, http.StatusOK, "GET", p, nil)
				lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
			}
			slices.Sort(lat)
			b.ReportMetric(lat[len(lat)/2], "p50-ms")
			b.ReportMetric(lat[min(len(lat)-1, len(lat)*99/100)], "p99-ms")
		})
	}
	timed(b, "balance-at", func() string {
		at := start.Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
		return "/accounts/" + acc + "/balance?at=" + rfc(at)
	})
	timed(b, "month-statement", func() string {
		from := start.AddDate(0, rng.IntN(11), 0)
		return "/accounts/" + acc + "/statement?from=" + rfc(from) + "&to=" + rfc(from.AddDate(0, 1, 0))
	})
}
