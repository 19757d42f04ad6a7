package processor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"txn/internal/processor"
	"txn/internal/testenv"
)

// --- shared helpers of the processor's integration tests ---

// fixture is a processor on a fresh database with two users, their accounts and a handle on
// the database itself, to prove what a request wrote (or did not).
type fixture struct {
	p      *testenv.Processor
	db     *pgxpool.Pool
	admin  *testenv.Client
	anon   *testenv.Client // sends no Authorization header
	alice  testenv.User
	bob    testenv.User
	ac, bc *testenv.Client // alice's and bob's own keys

	aUSD, aUSD2, aEUR, bUSD string // funded 10000, 0, 5000, 10000
}

func newFixture(t testing.TB, change func(*processor.Config)) *fixture {
	t.Helper()
	p := testenv.StartProcessor(t, func(c *processor.Config) {
		c.MaxConns = 8 // the servers are shared: take only what these tests need
		if change != nil {
			change(c)
		}
	})
	f := &fixture{p: p, db: openDB(t, p), admin: p.Client(p.AdminToken), anon: p.Client("")}
	// Runs before the processor stops (cleanups run last first): a connection the client dialed
	// but never used would hold the server's graceful shutdown for 5 s.
	t.Cleanup(f.admin.HTTP.CloseIdleConnections)
	f.alice = f.admin.CreateUser(t, "alice")
	f.bob = f.admin.CreateUser(t, "bob")
	f.ac, f.bc = p.Client(f.alice.APIKey), p.Client(f.bob.APIKey)
	f.aUSD = f.admin.CreateAccount(t, f.alice.ID, "USD")
	f.aUSD2 = f.admin.CreateAccount(t, f.alice.ID, "USD")
	f.aEUR = f.admin.CreateAccount(t, f.alice.ID, "EUR")
	f.bUSD = f.admin.CreateAccount(t, f.bob.ID, "USD")
	f.admin.Deposit(t, f.aUSD, 10_000, "USD")
	f.admin.Deposit(t, f.aEUR, 5_000, "EUR")
	f.admin.Deposit(t, f.bUSD, 10_000, "USD")
	return f
}

// openDB connects straight to the processor's database.
func openDB(t testing.TB, p *testenv.Processor) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(p.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 2
	db, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// tables are every table a request may write.
var tables = []string{"users", "accounts", "transactions", "entries", "outbox", "idempotency_keys", "holds"}

// dbState is what the database holds: row counts, a digest of every table's content (so an
// UPDATE shows too) and every balance.
type dbState struct {
	Rows     map[string]int64
	Digests  map[string]string
	Balances map[string]int64
}

func snapshot(t testing.TB, db *pgxpool.Pool) dbState {
	t.Helper()
	ctx := context.Background()
	s := dbState{Rows: map[string]int64{}, Digests: map[string]string{}, Balances: map[string]int64{}}
	for _, tbl := range tables {
		var n int64
		var digest string
		err := db.QueryRow(ctx, `SELECT count(*), coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '')
			FROM `+tbl+` x`).Scan(&n, &digest)
		if err != nil {
			t.Fatalf("snapshot %s: %v", tbl, err)
		}
		s.Rows[tbl], s.Digests[tbl] = n, digest
	}
	rows, err := db.Query(ctx, `SELECT id::text, balance FROM accounts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var b int64
		if err := rows.Scan(&id, &b); err != nil {
			t.Fatal(err)
		}
		s.Balances[id] = b
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// assertUnchanged fails t when the database differs from before.
func assertUnchanged(t testing.TB, db *pgxpool.Pool, before dbState) {
	t.Helper()
	after := snapshot(t, db)
	for _, tbl := range tables {
		if before.Rows[tbl] != after.Rows[tbl] || before.Digests[tbl] != after.Digests[tbl] {
			t.Errorf("table %s changed: %d rows before, %d after", tbl, before.Rows[tbl], after.Rows[tbl])
		}
	}
	if !maps.Equal(before.Balances, after.Balances) {
		t.Errorf("balances changed: before %v, after %v", before.Balances, after.Balances)
	}
}

// rowDelta returns how many rows each table gained since before.
func rowDelta(t testing.TB, db *pgxpool.Pool, before dbState) map[string]int64 {
	t.Helper()
	after := snapshot(t, db)
	d := map[string]int64{}
	for _, tbl := range tables {
		d[tbl] = after.Rows[tbl] - before.Rows[tbl]
	}
	return d
}

func do(t testing.TB, c *testenv.Client, method, path string, body any, headers ...string) *testenv.Response {
	t.Helper()
	r, err := c.Do(method, path, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// problem is an API error answer.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// checkProblem reports how the problem p (answered with status) differs from the expected one:
// status and code, the document's own status, its descriptive fields, and the invalid fields
// the errors list must name.
func checkProblem(p problem, status int, wantStatus int, code string, fields ...string) []string {
	var errs []string
	if status != wantStatus || p.Status != wantStatus || p.Code != code {
		errs = append(errs, fmt.Sprintf("answer %d (document %d, code %q), want %d %q", status, p.Status, p.Code, wantStatus, code))
	}
	if p.Type == "" || p.Title == "" || p.Detail == "" {
		errs = append(errs, fmt.Sprintf("problem without type, title or detail: %+v", p))
	}
	if code == "validation_failed" && len(p.Errors) == 0 {
		errs = append(errs, "validation_failed without an errors list")
	}
	for _, f := range fields {
		if !slices.ContainsFunc(p.Errors, func(e struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		}) bool {
			return e.Field == f && e.Message != ""
		}) {
			errs = append(errs, fmt.Sprintf("errors %+v do not name field %q", p.Errors, f))
		}
	}
	return errs
}

// assertProblem checks a problem+json answer: status, code, content type and fields.
func assertProblem(t testing.TB, r *testenv.Response, status int, code string, fields ...string) problem {
	t.Helper()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", r.Header.Get("Content-Type"))
	}
	var p problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("status %d, body is not a problem document: %v: %.300s", r.Status, err, r.Body)
	}
	for _, e := range checkProblem(p, r.Status, status, code, fields...) {
		t.Errorf("%s; body %.500s", e, r.Body)
	}
	return p
}

// apiCase is one request the API must refuse without writing anything.
type apiCase struct {
	name    string
	c       *testenv.Client
	method  string
	path    string
	body    any
	headers []string
	status  int
	code    string
	field   string // for validation_failed: the field the errors must name
}

// runRefused runs each case in turn, checking the answer and that the database is unchanged.
func runRefused(t *testing.T, db *pgxpool.Pool, cases []apiCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, db)
			r := do(t, tc.c, tc.method, tc.path, tc.body, tc.headers...)
			var fields []string
			if tc.field != "" {
				fields = append(fields, tc.field)
			}
			assertProblem(t, r, tc.status, tc.code, fields...)
			assertUnchanged(t, db, before)
		})
	}
}

// obj builds a JSON object from key, value pairs.
func obj(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// with returns a copy of m with the given pairs set (a nil value deletes the key).
func with(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func transfer(from, to string, amount any, currency string) map[string]any {
	return obj("type", "transfer", "from_account_id", from, "to_account_id", to, "amount", amount, "currency", currency)
}

func deposit(to string, amount any, currency string) map[string]any {
	return obj("type", "deposit", "to_account_id", to, "amount", amount, "currency", currency)
}

func withdrawal(from string, amount any, currency string) map[string]any {
	return obj("type", "withdrawal", "from_account_id", from, "amount", amount, "currency", currency)
}

// txJSON is a transaction as the API answers it.
type txJSON struct {
	ID            string            `json:"id"`
	Type          string            `json:"type"`
	Status        string            `json:"status"`
	FromAccountID *string           `json:"from_account_id"`
	ToAccountID   *string           `json:"to_account_id"`
	Amount        int64             `json:"amount"`
	Currency      string            `json:"currency"`
	Description   string            `json:"description"`
	Metadata      map[string]string `json:"metadata"`
	Reverses      *string           `json:"reverses"`
	CreatedAt     string            `json:"created_at"`
}

// balance reads an account's balance straight from the database.
func balance(t testing.TB, db *pgxpool.Pool, account string) int64 {
	t.Helper()
	var b int64
	if err := db.QueryRow(context.Background(), `SELECT balance FROM accounts WHERE id = $1`, account).Scan(&b); err != nil {
		t.Fatalf("balance of %s: %v", account, err)
	}
	return b
}

// TestMain runs the package in a zone other than UTC: API.md wants every time in UTC, which a
// host in UTC would never prove.
func TestMain(m *testing.M) {
	time.Local = time.FixedZone("UTC+5", 5*60*60)
	os.Exit(m.Run())
}

// assertUTC checks that a time in an answer is RFC 3339 in UTC.
func assertUTC(t testing.TB, what, s string) {
	t.Helper()
	if ts, err := time.Parse(time.RFC3339Nano, s); err != nil || !strings.HasSuffix(s, "Z") || ts.IsZero() {
		t.Errorf("%s %q is not an RFC 3339 UTC time (%v)", what, s, err)
	}
}

// --- 1. input handling, auth and limits ---
