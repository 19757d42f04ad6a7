package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"txn/internal/loadgen"
	"txn/internal/loadtest"
)

// The load tester's history: one summary row per run (rewritten as the run goes on; the
// latest version wins) and the log of every request it sent.
const (
	runsTable     = "loadtest_runs"
	requestsTable = "loadtest_requests"
)

// runsSchema keeps every save of a run; readers take the row with the highest version per id
// with argMax, which, unlike FINAL with a WHERE on status, cannot return an outdated row, and
// a ReplacingMergeTree lets merges drop the old ones.
const runsSchema = `CREATE TABLE IF NOT EXISTS %s (
	id         String,
	status     String,
	created_at DateTime('UTC'),
	created_us Int64,
	version    UInt64,
	run          String,
	timeseries   String,
	distribution String DEFAULT '[]'
) ENGINE = ReplacingMergeTree(version)
ORDER BY id`

// requestsSchema: one row per generated request. Times are microseconds since the epoch; the
// DateTime column is the scheduled second, for partitions and range pruning.
const requestsSchema = `CREATE TABLE IF NOT EXISTS %s (
	run_id         String,
	seq            UInt64,
	scheduled_at   DateTime('UTC'),
	scheduled_us   Int64,
	sent_us        Int64,
	latency_us     Int64,
	op             String,
	status         UInt16,
	error_code     String,
	transaction_id String
) ENGINE = MergeTree
PARTITION BY toYYYYMM(scheduled_at)
ORDER BY (run_id, scheduled_at, seq)`

// LoadtestHistory is the load tester's history tables, on a Store's connection.
type LoadtestHistory struct {
	s        *Store
	runs     string
	requests string

	mu      sync.Mutex
	version uint64
}

// LoadtestHistory creates the history tables if missing and returns them.
func (s *Store) LoadtestHistory(ctx context.Context) (*LoadtestHistory, error) {
	h := &LoadtestHistory{s: s,
		runs:     "`" + s.database + "`.`" + runsTable + "`",
		requests: "`" + s.database + "`.`" + requestsTable + "`"}
	for _, q := range []string{fmt.Sprintf(runsSchema, h.runs), fmt.Sprintf(requestsSchema, h.requests)} {
		if err := s.conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("clickhouse: create loadtest history: %w", err)
		}
	}
	// A table made before the distribution was kept gains it (18.16 has no ADD COLUMN IF NOT
	// EXISTS).
	var has uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = 'distribution'",
		s.database, runsTable).Scan(&has); err != nil {
		return nil, fmt.Errorf("clickhouse: read loadtest history columns: %w", err)
	}
	if has == 0 {
		if err := s.conn.Exec(ctx, "ALTER TABLE "+h.runs+" ADD COLUMN distribution String DEFAULT '[]'"); err != nil &&
			!strings.Contains(err.Error(), "already exists") { // another service instance added it meanwhile
			return nil, fmt.Errorf("clickhouse: add the distribution column: %w", err)
		}
	}
	return h, nil
}

// nextVersion is the time in microseconds, but always above the last one given, so two saves
// within a microsecond still order.
func (h *LoadtestHistory) nextVersion() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.version = max(h.version+1, uint64(time.Now().UnixMicro()))
	return h.version
}

// SaveRun stores the latest record of a run.
func (h *LoadtestHistory) SaveRun(ctx context.Context, rec loadtest.Record) error {
	r := rec.Run
	run, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("clickhouse: encode run: %w", err)
	}
	points, dist := rec.Points, rec.Distribution
	if points == nil {
		points = []loadgen.Point{}
	}
	if dist == nil {
		dist = []loadgen.Percentile{}
	}
	ts, err := json.Marshal(points)
	if err != nil {
		return fmt.Errorf("clickhouse: encode timeseries: %w", err)
	}
	hist, err := json.Marshal(dist)
	if err != nil {
		return fmt.Errorf("clickhouse: encode distribution: %w", err)
	}
	us := r.CreatedAt.UnixMicro()
	// A native batch rather than bound VALUES: the documents are JSON, full of quotes.
	batch, err := h.s.conn.PrepareBatch(ctx, "INSERT INTO "+h.runs+" (id, status, created_at, created_us, version, run, timeseries, distribution)")
	if err != nil {
		return fmt.Errorf("clickhouse: save run: %w", err)
	}
	defer batch.Close()
	if err := batch.Append(r.ID, r.Status, time.Unix(floorDiv(us, 1e6), 0).UTC(), us, h.nextVersion(), string(run), string(ts), string(hist)); err != nil {
		return fmt.Errorf("clickhouse: save run: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("clickhouse: save run: %w", err)
	}
	return nil
}

// latest is every run's latest row.
func (h *LoadtestHistory) latest() string {
	return "(SELECT id, argMax(status, version) AS status, argMax(created_us, version) AS created_us, " +
		"argMax(run, version) AS run FROM " + h.runs + " GROUP BY id)"
}

// Runs lists runs newest first: those created before (before, beforeID) when before is set,
// with one of statuses when any are given.
func (h *LoadtestHistory) Runs(ctx context.Context, statuses []string, before time.Time, beforeID string, limit int) ([]loadtest.Run, error) {
	var conds []string
	var args []any
	if len(statuses) > 0 {
		// One placeholder per value: a bound slice becomes an array, which 18.16 rejects in IN.
		conds = append(conds, "status IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(statuses)), ", ")+")")
		for _, st := range statuses {
			args = append(args, st)
		}
	}
	if !before.IsZero() {
		us := before.UnixMicro()
		conds = append(conds, "(created_us < ? OR (created_us = ? AND id < ?))")
		args = append(args, us, us, beforeID)
	}
	rows, err := h.s.conn.Query(ctx, "SELECT run FROM "+h.latest()+where(conds)+
		fmt.Sprintf(" ORDER BY created_us DESC, id DESC LIMIT %d", limit), args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: list runs: %w", err)
	}
	defer rows.Close()
	var runs []loadtest.Run
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("clickhouse: list runs: %w", err)
		}
		var r loadtest.Run
		if err := json.Unmarshal([]byte(doc), &r); err != nil {
			return nil, fmt.Errorf("clickhouse: decode run: %w", err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: list runs: %w", err)
	}
	return runs, nil
}

// Record is a run's latest record; nil when there is no such run.
func (h *LoadtestHistory) Record(ctx context.Context, id string) (*loadtest.Record, error) {
	rows, err := h.s.conn.Query(ctx, "SELECT run, timeseries, distribution FROM "+h.runs+" WHERE id = ? ORDER BY version DESC LIMIT 1", id)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read run: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var run, ts, dist string
	if err := rows.Scan(&run, &ts, &dist); err != nil {
		return nil, fmt.Errorf("clickhouse: read run: %w", err)
	}
	var rec loadtest.Record
	if err := json.Unmarshal([]byte(run), &rec.Run); err != nil {
		return nil, fmt.Errorf("clickhouse: decode run %s: %w", id, err)
	}
	if err := json.Unmarshal([]byte(ts), &rec.Points); err != nil {
		return nil, fmt.Errorf("clickhouse: decode timeseries of %s: %w", id, err)
	}
	if err := json.Unmarshal([]byte(dist), &rec.Distribution); err != nil {
		return nil, fmt.Errorf("clickhouse: decode distribution of %s: %w", id, err)
	}
	return &rec, nil
}

// InsertRequests writes request records of a run in one native INSERT.
func (h *LoadtestHistory) InsertRequests(ctx context.Context, runID string, recs []loadgen.Record) error {
	n := len(recs)
	if n == 0 {
		return nil
	}
	runIDs, ops, codes, txIDs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	seqs := make([]uint64, n)
	seconds := make([]time.Time, n)
	scheduled, sent, latency := make([]int64, n), make([]int64, n), make([]int64, n)
	statuses := make([]uint16, n)
	for i, r := range recs {
		us := r.Intended.UnixMicro()
		runIDs[i], seqs[i], seconds[i], scheduled[i] = runID, r.Seq, time.Unix(floorDiv(us, 1e6), 0).UTC(), us
		sent[i], latency[i] = r.Sent.UnixMicro(), r.Latency.Microseconds()
		ops[i], statuses[i], codes[i], txIDs[i] = r.Op, uint16(r.Status), r.Code, r.TxID
	}
	batch, err := h.s.conn.PrepareBatch(ctx, "INSERT INTO "+h.requests+
		" (run_id, seq, scheduled_at, scheduled_us, sent_us, latency_us, op, status, error_code, transaction_id)")
	if err != nil {
		return fmt.Errorf("clickhouse: prepare request log insert: %w", err)
	}
	defer batch.Close()
	for i, c := range []any{runIDs, seqs, seconds, scheduled, sent, latency, ops, statuses, codes, txIDs} {
		if err := batch.Column(i).Append(c); err != nil {
			return fmt.Errorf("clickhouse: append request log column %d: %w", i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert %d request records: %w", n, err)
	}
	return nil
}

// CountRequests counts the logged requests of a run.
func (h *LoadtestHistory) CountRequests(ctx context.Context, runID string) (uint64, error) {
	var n uint64
	if err := h.s.conn.QueryRow(ctx, "SELECT count() FROM "+h.requests+" WHERE run_id = ?", runID).Scan(&n); err != nil {
		return 0, fmt.Errorf("clickhouse: count requests: %w", err)
	}
	return n, nil
}
