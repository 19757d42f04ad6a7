package clickhouse_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"txn/internal/clickhouse"
	"txn/internal/pipeline"
	"txn/internal/testenv"
)

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// openStore opens a Store on a fresh database, dropped when tb ends.
func openStore(tb testing.TB) *clickhouse.Store {
	tb.Helper()
	addr := testenv.ClickHouseAddr(tb)
	db := "test_" + randomHex()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := clickhouse.Open(ctx, addr, db)
	if err != nil {
		tb.Fatalf("ClickHouse is not reachable at %s (start the servers with `make test`): %v", addr, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
			tb.Logf("drop database %s: %v", db, err)
		}
		s.Close()
	})
	return s
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func row(typ, currency string, amount int64, at time.Time) pipeline.AnalyticsRow {
	r := pipeline.AnalyticsRow{EventID: uuid.New(), TransactionID: uuid.New(), Type: typ,
		Currency: currency, Amount: amount, Description: "test", CreatedAt: at}
	if typ != "deposit" {
		r.FromAccountID, r.FromUserID = uuid.New(), uuid.New()
	}
	if typ != "withdrawal" {
		r.ToAccountID, r.ToUserID = uuid.New(), uuid.New()
	}
	return r
}

func insert(t testing.TB, s *clickhouse.Store, rows []pipeline.AnalyticsRow) {
	t.Helper()
	if err := s.InsertTransactions(testCtx(t), rows); err != nil {
		t.Fatal(err)
	}
}

// expected is Analytics computed in Go over distinct rows.
func expected(rows []pipeline.AnalyticsRow, from, to time.Time) (pipeline.Volume, map[[2]string]pipeline.Volume) {
	var total pipeline.Volume
	by := map[[2]string]pipeline.Volume{}
	for _, r := range rows {
		if r.CreatedAt.Before(from) || !r.CreatedAt.Before(to) {
			continue
		}
		total.Count++
		total.Volume += r.Amount
		k := [2]string{r.Type, r.Currency}
		v := by[k]
		v.Count++
		v.Volume += r.Amount
		by[k] = v
	}
	return total, by
}

func checkAnalytics(t *testing.T, s *clickhouse.Store, rows []pipeline.AnalyticsRow, from, to time.Time) {
	t.Helper()
	got, err := s.Analytics(testCtx(t), from, to)
	if err != nil {
		t.Fatal(err)
	}
	total, by := expected(rows, from, to)
	if got.Total != total {
		t.Errorf("[%s, %s): total %+v, want %+v", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), got.Total, total)
	}
	if len(got.ByType) != len(by) {
		t.Errorf("[%s, %s): %d buckets %+v, want %d %+v", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano),
			len(got.ByType), got.ByType, len(by), by)
	}
	for _, b := range got.ByType {
		if want := by[[2]string{b.Type, b.Currency}]; (pipeline.Volume{Count: b.Count, Volume: b.Volume}) != want {
			t.Errorf("bucket %s/%s: %+v, want %+v", b.Type, b.Currency, b, want)
		}
	}
	if got.ByType == nil {
		t.Error("ByType is nil: the API wants [] for no buckets")
	}
}

func TestInsertIsIdempotent(t *testing.T) {
	s := openStore(t)
	ctx := testCtx(t)
	base := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	var rows []pipeline.AnalyticsRow
	types, currencies := []string{"deposit", "withdrawal", "transfer"}, []string{"USD", "EUR", "RUB"}
	for i := range 300 {
		rows = append(rows, row(types[i%3], currencies[i/3%3], int64(i+1)*101, base.Add(time.Duration(i)*time.Second+123456*time.Microsecond)))
	}
	// A redelivered batch, and duplicates inside one batch.
	insert(t, s, rows)
	insert(t, s, rows)
	insert(t, s, append(rows[:50:50], rows[:50]...))

	from, to := base.Add(-time.Hour), base.Add(time.Hour)
	checkAnalytics(t, s, rows, from, to)
	if got, _ := s.Analytics(ctx, from, to); got.Total.Count != 300 || len(got.ByType) != 9 {
		t.Fatalf("analytics %+v, want 300 events in 9 buckets", got)
	}

	// The merge really collapses duplicates on (created_at, event_id): no FINAL needed after it.
	if err := s.Exec(ctx, "OPTIMIZE TABLE "+s.Table()+" FINAL"); err != nil {
		t.Fatal(err)
	}
	stored, err := s.QueryCount(ctx, "SELECT count() FROM "+s.Table())
	if err != nil {
		t.Fatal(err)
	}
	if stored != 300 {
		t.Errorf("%d rows after OPTIMIZE FINAL, want 300", stored)
	}
	checkAnalytics(t, s, rows, from, to)

	// Empty and inverted ranges answer nothing; no rows is not an error.
	checkAnalytics(t, s, rows, to, to)
	checkAnalytics(t, s, rows, to, from)
	if err := s.InsertTransactions(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

func TestAnalyticsBoundariesAreExact(t *testing.T) {
	s := openStore(t)
	// Across a second boundary and a month (partition) boundary.
	edge := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	us := time.Microsecond
	var rows []pipeline.AnalyticsRow
	for i, d := range []time.Duration{-time.Second, -1000 * us, -2 * us, -us, 0, us, 2 * us, 999999 * us, time.Second} {
		rows = append(rows, row("transfer", "USD", int64(1)<<i, edge.Add(d)))
	}
	insert(t, s, rows)
	insert(t, s, rows)
	for _, r := range [][2]time.Duration{
		{-us, us},                    // the microsecond before the edge and the edge
		{0, us},                      // the edge alone
		{us, 999999 * us},            // inside one second, both ends exclusive of neighbours
		{-time.Second, time.Second},  // whole seconds: the upper one excluded
		{-2 * us, 0},                 // January only
		{0, time.Second + us},        // February only
		{-500 * time.Nanosecond, us}, // sub-microsecond bounds round up: the edge only
		{-us, 500 * time.Nanosecond}, // -1µs and the edge (edge < edge+0.5µs)
		{us, us},                     // empty
		{-time.Hour, time.Hour},      // everything
	} {
		checkAnalytics(t, s, rows, edge.Add(r[0]), edge.Add(r[1]))
	}
	// A zero bound is open.
	checkAnalytics(t, s, rows, time.Time{}, edge)
	got, err := s.Analytics(testCtx(t), edge, time.Time{})
	if err != nil || got.Total.Count != 5 {
		t.Errorf("[edge, ∞): %+v %v, want 5 events", got.Total, err)
	}
}

func TestCountTransactions(t *testing.T) {
	s := openStore(t)
	ctx := testCtx(t)
	base := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	alice, bob, carol := uuid.New(), uuid.New(), uuid.New()
	mk := func(typ, desc string, from, to uuid.UUID, at time.Duration) pipeline.AnalyticsRow {
		r := row(typ, "EUR", 100, base.Add(at))
		r.Description, r.FromUserID, r.ToUserID = desc, from, to
		return r
	}
	rows := []pipeline.AnalyticsRow{
		mk("deposit", "loadtest run-1 #1", uuid.Nil, alice, 0),
		mk("transfer", "loadtest run-1 #2", alice, bob, time.Second),
		mk("withdrawal", "loadtest run-1 #3", bob, uuid.Nil, 2*time.Second),
		mk("transfer", "loadtest run-10 #1", carol, bob, 3*time.Second),
		mk("transfer", "it's 100% _odd_", carol, carol, 4*time.Second),
		mk("deposit", "", uuid.Nil, carol, 5*time.Second),
	}
	insert(t, s, rows)
	insert(t, s, rows)
	// Thousands of ids make the query longer than the default max_query_size.
	many := []uuid.UUID{alice}
	for range 10000 {
		many = append(many, uuid.New())
	}
	for _, c := range []struct {
		name string
		f    clickhouse.Filter
		want int64
	}{
		{"all", clickhouse.Filter{}, 6},
		{"alice either side", clickhouse.Filter{UserIDs: []uuid.UUID{alice}}, 2},
		{"bob either side", clickhouse.Filter{UserIDs: []uuid.UUID{bob}}, 3},
		{"alice or bob", clickhouse.Filter{UserIDs: []uuid.UUID{alice, bob}}, 4},
		{"carol, to herself once", clickhouse.Filter{UserIDs: []uuid.UUID{carol}}, 3},
		{"unknown user", clickhouse.Filter{UserIDs: []uuid.UUID{uuid.New()}}, 0},
		{"10,001 ids", clickhouse.Filter{UserIDs: many}, 2},
		{"prefix", clickhouse.Filter{DescriptionPrefix: "loadtest run-1 "}, 3},
		{"prefix shared by two runs", clickhouse.Filter{DescriptionPrefix: "loadtest run-1"}, 4},
		{"prefix with quote and wildcards", clickhouse.Filter{DescriptionPrefix: "it's 100% _"}, 1},
		{"% is no wildcard", clickhouse.Filter{DescriptionPrefix: "%"}, 0},
		{"time range", clickhouse.Filter{From: base.Add(time.Second), To: base.Add(3 * time.Second)}, 2},
		{"from only", clickhouse.Filter{From: base.Add(4 * time.Second)}, 2},
		{"to only", clickhouse.Filter{To: base.Add(time.Second)}, 1},
		{"prefix and user", clickhouse.Filter{DescriptionPrefix: "loadtest run-1", UserIDs: []uuid.UUID{carol}}, 1},
		{"prefix, user and time", clickhouse.Filter{DescriptionPrefix: "loadtest", UserIDs: []uuid.UUID{bob}, To: base.Add(2 * time.Second)}, 1},
	} {
		got, err := s.CountTransactions(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestDeleteTransactions(t *testing.T) {
	s := openStore(t)
	ctx := testCtx(t)
	base := time.Date(2024, 6, 30, 23, 59, 0, 0, time.UTC) // rows in June and July partitions
	var rows, keep []pipeline.AnalyticsRow
	var runUsers []uuid.UUID
	for i := range 200 {
		r := row("transfer", "USD", 10, base.Add(time.Duration(i)*time.Second))
		switch i % 4 {
		case 0:
			r.Description = fmt.Sprintf("loadtest run-a #%d", i)
		case 1:
			runUsers = append(runUsers, r.FromUserID)
		case 2:
			runUsers = append(runUsers, r.ToUserID)
		default:
			r.Description = fmt.Sprintf("loadtest run-b #%d", i)
			keep = append(keep, r)
		}
		rows = append(rows, r)
	}
	insert(t, s, rows)
	insert(t, s, rows)

	if err := s.DeleteTransactions(ctx, clickhouse.Filter{}); !errors.Is(err, clickhouse.ErrEmptyFilter) {
		t.Fatalf("empty filter: %v, want clickhouse.ErrEmptyFilter", err)
	}
	start := time.Now()
	if err := s.DeleteTransactions(ctx, clickhouse.Filter{DescriptionPrefix: "loadtest run-a "}); err != nil {
		t.Fatal(err)
	}
	t.Logf("delete by prefix: %v", time.Since(start))
	if n, err := s.CountTransactions(ctx, clickhouse.Filter{DescriptionPrefix: "loadtest run-a"}); err != nil || n != 0 {
		t.Fatalf("after delete by prefix: %d %v, want 0", n, err)
	}
	// More ids than one statement takes: several mutations.
	ids := append([]uuid.UUID(nil), runUsers...)
	for range 2 * clickhouse.DeleteChunk {
		ids = append(ids, uuid.New())
	}
	start = time.Now()
	if err := s.DeleteTransactions(ctx, clickhouse.Filter{UserIDs: ids}); err != nil {
		t.Fatal(err)
	}
	t.Logf("delete by %d user ids: %v", len(ids), time.Since(start))
	if n, err := s.CountTransactions(ctx, clickhouse.Filter{}); err != nil || n != int64(len(keep)) {
		t.Fatalf("after deletes: %d %v, want %d", n, err, len(keep))
	}
	checkAnalytics(t, s, keep, base.Add(-time.Hour), base.Add(time.Hour))

	// A delete matching nothing still returns.
	if err := s.DeleteTransactions(ctx, clickhouse.Filter{DescriptionPrefix: "nothing", From: base}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountTransactions(ctx, clickhouse.Filter{}); n != int64(len(keep)) {
		t.Fatalf("after an empty delete: %d, want %d", n, len(keep))
	}
}

func rowsAt(n int, base time.Time) []pipeline.AnalyticsRow {
	rows := make([]pipeline.AnalyticsRow, n)
	types := []string{"deposit", "withdrawal", "transfer"}
	for i := range rows {
		rows[i] = row(types[i%3], "USD", int64(i%1000+1), base.Add(time.Duration(i)*time.Millisecond))
		rows[i].Description = fmt.Sprintf("loadtest run-bench #%d", i)
	}
	return rows
}

func TestInsert10000Rows(t *testing.T) {
	s := openStore(t)
	base := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	rows := rowsAt(10000, base)
	start := time.Now()
	insert(t, s, rows)
	t.Logf("inserted 10,000 rows in one batch in %v", time.Since(start))
	checkAnalytics(t, s, rows, base, base.Add(time.Hour))
}

func TestPingClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := clickhouse.Connect(addr, "nowhere")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping of a closed port succeeded")
	}
	if _, err := clickhouse.Open(ctx, addr, "nowhere"); err == nil || !strings.Contains(err.Error(), "ping") {
		t.Fatalf("Open of a closed port: %v, want a ping error", err)
	}
	if _, err := clickhouse.Open(ctx, addr, "no-dashes"); err == nil {
		t.Fatal("Open accepted an invalid database name")
	}
}

// BenchmarkInsertTransactions inserts 5,000-row batches of new events.
func BenchmarkInsertTransactions(b *testing.B) {
	s := openStore(b)
	ctx := context.Background()
	const batch = 5000
	base := time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		rows := rowsAt(batch, base)
		b.StartTimer()
		if err := s.InsertTransactions(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
}

// Services start together (consumer and processor) and create the same schema at once.
func TestOpenConcurrently(t *testing.T) {
	addr := testenv.ClickHouseAddr(t)
	ctx := testCtx(t)
	for round := range 20 {
		db := fmt.Sprintf("test_%s_%d", randomHex(), round)
		errs := make(chan error, 8)
		for range cap(errs) {
			go func() {
				s, err := clickhouse.Open(ctx, addr, db)
				if err == nil {
					s.Close()
				}
				errs <- err
			}()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}
		s, err := clickhouse.Open(ctx, addr, db)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Exec(ctx, "DROP DATABASE `"+db+"`"); err != nil {
			t.Error(err)
		}
		s.Close()
	}
}
