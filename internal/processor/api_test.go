package processor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"txn/internal/ledger"
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

func newFixture(t *testing.T, change func(*processor.Config)) *fixture {
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
var tables = []string{"users", "accounts", "transactions", "entries", "outbox", "idempotency_keys"}

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
	ID            string  `json:"id"`
	Type          string  `json:"type"`
	Status        string  `json:"status"`
	FromAccountID *string `json:"from_account_id"`
	ToAccountID   *string `json:"to_account_id"`
	Amount        int64   `json:"amount"`
	Currency      string  `json:"currency"`
	Description   string  `json:"description"`
	CreatedAt     string  `json:"created_at"`
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

// TestRefusedRequests sends requests the API must refuse and checks each answer's status, code,
// content type and named field, and that the database did not change at all.
func TestRefusedRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	const txPath = "/transactions"
	ok := transfer(f.aUSD, f.bUSD, 100, "USD") // a request alice may make
	validRaw, _ := json.Marshal(ok)
	missing := uuid.NewString()
	var aliceDeposit txJSON
	do(t, f.admin, "POST", txPath, deposit(f.aUSD2, 1, "USD")).JSON(t, &aliceDeposit)

	bad := func(name string, body any, code, field string) apiCase {
		return apiCase{name: name, c: f.ac, method: "POST", path: txPath, body: body,
			status: http.StatusBadRequest, code: code, field: field}
	}
	amount := func(name string, raw string) apiCase {
		return bad("amount "+name, with(ok, "amount", json.Number(raw)), "validation_failed", "amount")
	}
	refused := func(name string, c *testenv.Client, body any, status int, code string) apiCase {
		return apiCase{name: name, c: c, method: "POST", path: txPath, body: body, status: status, code: code}
	}

	cases := []apiCase{
		// not one JSON object
		bad("malformed JSON", `{"type": "transfer", "amount": `, "invalid_json", ""),
		bad("not JSON", `type=transfer&amount=1`, "invalid_json", ""),
		bad("empty body", ``, "invalid_json", ""),
		bad("array", `[`+string(validRaw)+`]`, "invalid_json", ""),
		bad("string", `"transfer"`, "invalid_json", ""),
		bad("number", `42`, "invalid_json", ""),
		bad("null", `null`, "invalid_json", ""),
		bad("trailing garbage", string(validRaw)+` x`, "invalid_json", ""),
		bad("two objects", string(validRaw)+string(validRaw), "invalid_json", ""),
		bad("unknown field", with(ok, "memo", "hi"), "invalid_json", ""),
		bad("idempotency_key in a single body", with(ok, "idempotency_key", "k1"), "invalid_json", ""),
		// one reading of the body only: a repeated name or another case is refused, not resolved
		bad("amount given twice", `{"type":"transfer","from_account_id":"`+f.aUSD+`","to_account_id":"`+f.bUSD+
			`","amount":1,"amount":5000,"currency":"USD"}`, "invalid_json", "amount"),
		bad("type given twice", `{"type":"transfer","type":"transfer","from_account_id":"`+f.aUSD+
			`","to_account_id":"`+f.bUSD+`","amount":1,"currency":"USD"}`, "invalid_json", "type"),
		bad("Amount capitalised", `{"type":"transfer","from_account_id":"`+f.aUSD+`","to_account_id":"`+f.bUSD+
			`","Amount":1,"currency":"USD"}`, "invalid_json", "Amount"),
		bad("CURRENCY in capitals", `{"type":"transfer","from_account_id":"`+f.aUSD+`","to_account_id":"`+f.bUSD+
			`","amount":1,"CURRENCY":"USD"}`, "invalid_json", "CURRENCY"),
		bad("unknown field named", with(ok, "memo", "hi"), "invalid_json", "memo"),
		// wrong types
		bad("amount as string", with(ok, "amount", "100"), "validation_failed", "amount"),
		bad("amount as boolean", with(ok, "amount", true), "validation_failed", "amount"),
		bad("amount as object", with(ok, "amount", obj("value", 1)), "validation_failed", "amount"),
		bad("amount null", with(ok, "amount", json.RawMessage("null")), "validation_failed", "amount"),
		bad("amount missing", with(ok, "amount", nil), "validation_failed", "amount"),
		bad("type as number", with(ok, "type", 1), "validation_failed", "type"),
		bad("type missing", with(ok, "type", nil), "validation_failed", "type"),
		bad("type unknown", with(ok, "type", "refund"), "validation_failed", "type"),
		bad("type capitalised", with(ok, "type", "Transfer"), "validation_failed", "type"),
		bad("from_account_id as number", with(ok, "from_account_id", 12345), "validation_failed", "from_account_id"),
		bad("to_account_id as array", with(ok, "to_account_id", []string{f.bUSD}), "validation_failed", "to_account_id"),
		bad("currency as number", with(ok, "currency", 840), "validation_failed", "currency"),
		bad("description as object", with(ok, "description", obj()), "validation_failed", "description"),
		// amounts
		amount("zero", "0"),
		amount("negative zero", "-0"),
		amount("negative", "-100"),
		amount("fractional 1.5", "1.5"),
		amount("fractional 1.0", "1.0"),
		amount("exponent 1e3", "1e3"),
		amount("exponent 1E3", "1E3"),
		amount("over the limit", "1000000000001"),
		amount("int64 max", "9223372036854775807"),
		amount("int64 max + 1", "9223372036854775808"),
		amount("20 digits", "99999999999999999999"),
		amount("int64 min - 1", "-9223372036854775809"),
		// currencies
		bad("unknown currency", with(ok, "currency", "ZZZ"), "validation_failed", "currency"),
		bad("lower-case currency", with(ok, "currency", "usd"), "validation_failed", "currency"),
		bad("currency too long", with(ok, "currency", "USDX"), "validation_failed", "currency"),
		bad("currency missing", with(ok, "currency", nil), "validation_failed", "currency"),
		// description
		bad("description over 500 characters", with(ok, "description", strings.Repeat("é", 501)), "validation_failed", "description"),
		bad("description with a NUL character", with(ok, "description", "a\x00b"), "validation_failed", "description"),
		// account ids and which ones each type takes
		bad("malformed from_account_id", with(ok, "from_account_id", "not-a-uuid"), "validation_failed", "from_account_id"),
		bad("short to_account_id", with(ok, "to_account_id", "1234"), "validation_failed", "to_account_id"),
		bad("empty from_account_id", with(ok, "from_account_id", ""), "validation_failed", "from_account_id"),
		bad("nil UUID to_account_id", with(ok, "to_account_id", uuid.Nil.String()), "validation_failed", "to_account_id"),
		bad("transfer without from", with(ok, "from_account_id", nil), "validation_failed", "from_account_id"),
		bad("transfer without to", with(ok, "to_account_id", nil), "validation_failed", "to_account_id"),
		bad("withdrawal with to", with(withdrawal(f.aUSD, 1, "USD"), "to_account_id", f.bUSD), "validation_failed", "to_account_id"),
		bad("withdrawal without from", with(withdrawal(f.aUSD, 1, "USD"), "from_account_id", nil), "validation_failed", "from_account_id"),
		{name: "deposit without to", c: f.admin, method: "POST", path: txPath, body: with(deposit(f.aUSD, 1, "USD"), "to_account_id", nil),
			status: 400, code: "validation_failed", field: "to_account_id"},
		{name: "deposit with from", c: f.admin, method: "POST", path: txPath, body: with(deposit(f.aUSD, 1, "USD"), "from_account_id", f.bUSD),
			status: 400, code: "validation_failed", field: "from_account_id"},
		// who may do what
		refused("user making a deposit", f.ac, deposit(f.aUSD, 100, "USD"), 403, "forbidden"),
		refused("user debiting another user's account", f.ac, transfer(f.bUSD, f.aUSD, 100, "USD"), 404, "not_found"),
		refused("user withdrawing from another user's account", f.ac, withdrawal(f.bUSD, 100, "USD"), 404, "not_found"),
		refused("nonexistent from account", f.ac, transfer(missing, f.aUSD, 100, "USD"), 404, "not_found"),
		refused("nonexistent to account", f.ac, transfer(f.aUSD, missing, 100, "USD"), 404, "not_found"),
		refused("deposit to nonexistent account", f.admin, deposit(missing, 100, "USD"), 404, "not_found"),
		refused("transfer from the external account", f.admin, transfer(ledger.ExternalAccountID("USD").String(), f.aUSD, 100, "USD"), 404, "not_found"),
		refused("deposit to the external account", f.admin, deposit(ledger.ExternalAccountID("USD").String(), 100, "USD"), 404, "not_found"),
		// rules of the ledger
		refused("deposit currency mismatch", f.admin, deposit(f.aUSD, 100, "EUR"), 422, "currency_mismatch"),
		refused("deposit in a currency with no account", f.admin, deposit(f.aUSD, 100, "JPY"), 422, "currency_mismatch"),
		refused("withdrawal currency mismatch", f.ac, withdrawal(f.aUSD, 100, "EUR"), 422, "currency_mismatch"),
		refused("transfer USD to EUR account", f.ac, transfer(f.aUSD, f.aEUR, 100, "USD"), 422, "currency_mismatch"),
		refused("transfer EUR to USD account", f.ac, transfer(f.aEUR, f.aUSD, 100, "EUR"), 422, "currency_mismatch"),
		refused("transfer to the same account", f.ac, transfer(f.aUSD, f.aUSD, 100, "USD"), 422, "same_account"),
		refused("transfer over the balance", f.ac, transfer(f.aUSD, f.bUSD, 10_001, "USD"), 422, "insufficient_funds"),
		refused("withdrawal over the balance", f.ac, withdrawal(f.aUSD, 1_000_000_000_000, "USD"), 422, "insufficient_funds"),
		refused("transfer from an empty account", f.ac, transfer(f.aUSD2, f.aUSD, 2, "USD"), 422, "insufficient_funds"),
		// content type and size
		{name: "text/plain", c: f.ac, method: "POST", path: txPath, body: validRaw, headers: []string{"Content-Type", "text/plain"},
			status: 415, code: "unsupported_media_type"},
		{name: "no content type", c: f.ac, method: "POST", path: txPath, body: validRaw, headers: []string{"Content-Type", ""},
			status: 415, code: "unsupported_media_type"},
		{name: "JSON-like content type", c: f.ac, method: "POST", path: txPath, body: validRaw, headers: []string{"Content-Type", "application/json-patch+json"},
			status: 415, code: "unsupported_media_type"},
		{name: "body over 64 KiB", c: f.ac, method: "POST", path: txPath, body: with(ok, "description", strings.Repeat("x", 65<<10)),
			status: 413, code: "body_too_large"},
		// Idempotency-Key
		{name: "empty Idempotency-Key", c: f.ac, method: "POST", path: txPath, body: ok, headers: []string{"Idempotency-Key", ""},
			status: 400, code: "validation_failed", field: "Idempotency-Key"},
		{name: "Idempotency-Key over 255 characters", c: f.ac, method: "POST", path: txPath, body: ok,
			headers: []string{"Idempotency-Key", strings.Repeat("k", 256)}, status: 400, code: "validation_failed", field: "Idempotency-Key"},
		{name: "Idempotency-Key with a space", c: f.ac, method: "POST", path: txPath, body: ok, headers: []string{"Idempotency-Key", "my key"},
			status: 400, code: "validation_failed", field: "Idempotency-Key"},
		{name: "Idempotency-Key not ASCII", c: f.ac, method: "POST", path: txPath, body: ok, headers: []string{"Idempotency-Key", "ключ"},
			status: 400, code: "validation_failed", field: "Idempotency-Key"},
	}

	// authentication: on a write and on a read
	auth := []struct {
		name    string
		headers []string
	}{
		{"no Authorization", nil},
		{"Basic scheme", []string{"Authorization", "Basic " + f.alice.APIKey}},
		{"Bearer without token", []string{"Authorization", "Bearer "}},
		{"token without scheme", []string{"Authorization", f.alice.APIKey}},
		{"unknown API key", []string{"Authorization", "Bearer tk_" + strings.Repeat("A", 43)}},
		{"malformed token", []string{"Authorization", "Bearer not a token"}},
		{"admin token with a suffix", []string{"Authorization", "Bearer " + f.p.AdminToken + "x"}},
		{"API key truncated", []string{"Authorization", "Bearer " + f.alice.APIKey[:len(f.alice.APIKey)-1]}},
	}
	for _, a := range auth {
		cases = append(cases,
			apiCase{name: "401 write: " + a.name, c: f.anon, method: "POST", path: txPath, body: deposit(f.aUSD, 1, "USD"),
				headers: a.headers, status: 401, code: "unauthorized"},
			apiCase{name: "401 read: " + a.name, c: f.anon, method: "GET", path: "/users/" + f.alice.ID,
				headers: a.headers, status: 401, code: "unauthorized"})
	}

	// admin-only endpoints
	newUser := obj("name", "mallory", "email", "mallory@example.com")
	cases = append(cases,
		apiCase{name: "user creating a user", c: f.ac, method: "POST", path: "/users", body: newUser, status: 403, code: "forbidden"},
		apiCase{name: "user listing users", c: f.ac, method: "GET", path: "/users", status: 403, code: "forbidden"},
		apiCase{name: "user reading the reconciliation", c: f.ac, method: "GET", path: "/admin/reconciliation", status: 403, code: "forbidden"},
		apiCase{name: "user purging", c: f.ac, method: "POST", path: "/admin/purge", body: obj("tag", "x"), status: 403, code: "forbidden"},
	)

	// other users' resources, and resources that do not exist
	notFound := func(name string, c *testenv.Client, method, path string, body any) apiCase {
		return apiCase{name: name, c: c, method: method, path: path, body: body, status: 404, code: "not_found"}
	}
	cases = append(cases,
		notFound("another user's user", f.bc, "GET", "/users/"+f.alice.ID, nil),
		notFound("patching another user", f.bc, "PATCH", "/users/"+f.alice.ID, obj("name", "eve")),
		notFound("another user's accounts", f.bc, "GET", "/users/"+f.alice.ID+"/accounts", nil),
		notFound("another user's account", f.bc, "GET", "/accounts/"+f.aUSD, nil),
		notFound("another user's entries", f.bc, "GET", "/accounts/"+f.aUSD+"/entries", nil),
		notFound("another user's transaction", f.bc, "GET", "/transactions/"+aliceDeposit.ID, nil),
		notFound("opening an account for another user", f.bc, "POST", "/accounts", obj("user_id", f.alice.ID, "currency", "USD")),
		notFound("an external account", f.ac, "GET", "/accounts/"+ledger.ExternalAccountID("USD").String(), nil),
		notFound("nonexistent user", f.admin, "GET", "/users/"+missing, nil),
		notFound("patching a nonexistent user", f.admin, "PATCH", "/users/"+missing, obj("name", "x")),
		notFound("accounts of a nonexistent user", f.admin, "GET", "/users/"+missing+"/accounts", nil),
		notFound("account for a nonexistent user", f.admin, "POST", "/accounts", obj("user_id", missing, "currency", "USD")),
		notFound("account in a new currency for a nonexistent user", f.admin, "POST", "/accounts", obj("user_id", missing, "currency", "CHF")),
		notFound("nonexistent account", f.admin, "GET", "/accounts/"+missing, nil),
		notFound("entries of a nonexistent account", f.admin, "GET", "/accounts/"+missing+"/entries", nil),
		notFound("nonexistent transaction", f.admin, "GET", "/transactions/"+missing, nil),
		notFound("malformed user id", f.admin, "GET", "/users/not-a-uuid", nil),
		notFound("malformed account id", f.admin, "GET", "/accounts/123", nil),
		notFound("malformed transaction id", f.admin, "GET", "/transactions/xyz", nil),
		notFound("unknown route", f.admin, "GET", "/nothing-here", nil),
	)

	// accounts
	cases = append(cases,
		apiCase{name: "account with lower-case currency", c: f.admin, method: "POST", path: "/accounts",
			body: obj("user_id", f.alice.ID, "currency", "usd"), status: 400, code: "validation_failed", field: "currency"},
		apiCase{name: "account with unknown currency", c: f.ac, method: "POST", path: "/accounts",
			body: obj("currency", "ABC"), status: 400, code: "validation_failed", field: "currency"},
		apiCase{name: "account with malformed user_id", c: f.admin, method: "POST", path: "/accounts",
			body: obj("user_id", "nope", "currency", "USD"), status: 400, code: "validation_failed", field: "user_id"},
		apiCase{name: "admin account without user_id", c: f.admin, method: "POST", path: "/accounts",
			body: obj("currency", "USD"), status: 400, code: "validation_failed", field: "user_id"},
		apiCase{name: "account with unknown field", c: f.admin, method: "POST", path: "/accounts",
			body: obj("user_id", f.alice.ID, "currency", "USD", "balance", 100), status: 400, code: "invalid_json"},
		apiCase{name: "account as text/plain", c: f.admin, method: "POST", path: "/accounts",
			body: `{"currency":"USD"}`, headers: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type"},
		apiCase{name: "account body over 64 KiB", c: f.ac, method: "POST", path: "/accounts",
			body: obj("currency", strings.Repeat("U", 65<<10)), status: 413, code: "body_too_large"},
		apiCase{name: "account body an array", c: f.ac, method: "POST", path: "/accounts",
			body: `[{"currency":"USD"}]`, status: 400, code: "invalid_json"},
	)

	// lists
	for _, path := range []string{"/users", "/users/" + f.alice.ID + "/accounts", "/accounts/" + f.aUSD + "/entries"} {
		for _, limit := range []string{"0", "201", "abc", "-1", "1.5"} {
			cases = append(cases, apiCase{name: "limit=" + limit + " " + path, c: f.admin, method: "GET",
				path: path + "?limit=" + limit, status: 400, code: "validation_failed", field: "limit"})
		}
		for _, cursor := range []string{"!!!", "AAAA", "not a cursor"} {
			cases = append(cases, apiCase{name: "cursor " + cursor + " " + path, c: f.admin, method: "GET",
				path: path + "?cursor=" + url.QueryEscape(cursor), status: 400, code: "validation_failed", field: "cursor"})
		}
	}
	cases = append(cases, apiCase{name: "users with a tag no user can have", c: f.admin, method: "GET",
		path: "/users?tag=" + url.QueryEscape("a\x00b"), status: 400, code: "validation_failed", field: "tag"})

	runRefused(t, f.db, cases)

	// The snapshot does see writes: a good request changes what it must.
	before := snapshot(t, f.db)
	do(t, f.ac, "POST", txPath, ok, "Idempotency-Key", "sanity").JSON(t, new(txJSON))
	want := map[string]int64{"users": 0, "accounts": 0, "transactions": 1, "entries": 2, "outbox": 1, "idempotency_keys": 1}
	if d := rowDelta(t, f.db, before); !maps.Equal(d, want) {
		t.Errorf("a good transfer wrote %v, want %v", d, want)
	}
	if a, b := balance(t, f.db, f.aUSD), balance(t, f.db, f.bUSD); a != 9_900 || b != 10_100 {
		t.Errorf("after a transfer of 100: balances %d and %d, want 9900 and 10100", a, b)
	}
}

// TestAcceptedEdges checks that what sits just inside the limits is accepted.
func TestAcceptedEdges(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name    string
		c       *testenv.Client
		body    map[string]any
		headers []string
	}{
		{"amount 1", f.ac, transfer(f.aUSD, f.bUSD, 1, "USD"), nil},
		{"amount 10^12", f.admin, deposit(f.aUSD, 1_000_000_000_000, "USD"), nil},
		{"description of 500 characters", f.ac, with(transfer(f.aUSD, f.bUSD, 1, "USD"), "description", strings.Repeat("é", 500)), nil},
		{"Idempotency-Key of 255 characters", f.ac, transfer(f.aUSD, f.bUSD, 1, "USD"), []string{"Idempotency-Key", strings.Repeat("k", 255)}},
		{"content type with charset", f.ac, transfer(f.aUSD, f.bUSD, 1, "USD"), []string{"Content-Type", "application/json; charset=utf-8"}},
		{"explicit null for an absent account", f.ac, with(withdrawal(f.aUSD, 1, "USD"), "to_account_id", json.RawMessage("null")), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, f.db)
			r := do(t, tc.c, "POST", "/transactions", tc.body, tc.headers...)
			if r.Status != http.StatusCreated {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			var tx txJSON
			r.JSON(t, &tx)
			if tx.Status != "completed" || tx.Amount != int64(tc.body["amount"].(int)) || tx.Type != tc.body["type"] {
				t.Errorf("answered %+v for %v", tx, tc.body)
			}
			if d := rowDelta(t, f.db, before); d["transactions"] != 1 || d["entries"] != 2 || d["outbox"] != 1 {
				t.Errorf("wrote %v", d)
			}
			got := tc.c.Must(t, http.StatusOK, "GET", "/transactions/"+tx.ID, nil)
			if string(got.Body) != string(r.Body) {
				t.Errorf("GET answers %s, POST answered %s", got.Body, r.Body)
			}
			assertUTC(t, "transaction created_at", tx.CreatedAt)
		})
	}
}

// TestAccounts checks opening and reading accounts: a user may omit user_id, the admin names it.
func TestAccounts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	type account struct {
		ID        string `json:"id"`
		UserID    string `json:"user_id"`
		Currency  string `json:"currency"`
		Balance   int64  `json:"balance"`
		CreatedAt string `json:"created_at"`
	}
	for _, tc := range []struct {
		name string
		c    *testenv.Client
		body map[string]any
	}{
		{"user for itself", f.ac, obj("currency", "JPY")},
		{"user naming itself", f.ac, obj("user_id", f.alice.ID, "currency", "EUR")},
		{"admin for a user", f.admin, obj("user_id", f.alice.ID, "currency", "RUB")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, f.db)
			var a account
			tc.c.Must(t, http.StatusCreated, "POST", "/accounts", tc.body).JSON(t, &a)
			if a.UserID != f.alice.ID || a.Currency != tc.body["currency"] || a.Balance != 0 || uuid.Validate(a.ID) != nil {
				t.Errorf("opened %+v", a)
			}
			var got account
			f.ac.Must(t, http.StatusOK, "GET", "/accounts/"+a.ID, nil).JSON(t, &got)
			if got != a {
				t.Errorf("read %+v, opened %+v", got, a)
			}
			assertUTC(t, "account created_at", got.CreatedAt)
			if d := rowDelta(t, f.db, before); d["accounts"] < 1 || d["accounts"] > 2 || d["transactions"] != 0 {
				t.Errorf("opening an account wrote %v", d)
			}
		})
	}
	// the first JPY account brought the JPY external account with it: a deposit works
	var a struct {
		Data []account `json:"data"`
	}
	f.ac.Must(t, http.StatusOK, "GET", "/users/"+f.alice.ID+"/accounts", nil).JSON(t, &a)
	for _, acc := range a.Data {
		if acc.Currency == "JPY" {
			f.admin.Deposit(t, acc.ID, 5, "JPY")
			if b := balance(t, f.db, acc.ID); b != 5 {
				t.Errorf("JPY balance %d", b)
			}
		}
	}
}

// TestBatch checks the batch endpoint: its limits, and that items are independent and answered
// in order.
func TestBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	const path = "/transactions/batch"
	item := transfer(f.aUSD, f.bUSD, 1, "USD")
	items := func(n int) map[string]any {
		list := make([]any, n)
		for i := range list {
			list[i] = item
		}
		return obj("transactions", list)
	}
	bad := func(name string, body any, code, field string) apiCase {
		return apiCase{name: name, c: f.ac, method: "POST", path: path, body: body, status: 400, code: code, field: field}
	}
	runRefused(t, f.db, []apiCase{
		bad("1001 items", items(1001), "validation_failed", "transactions"),
		bad("empty batch", items(0), "validation_failed", "transactions"),
		bad("no transactions field", obj(), "validation_failed", "transactions"),
		bad("transactions null", `{"transactions": null}`, "validation_failed", "transactions"),
		bad("transactions not an array", obj("transactions", item), "validation_failed", "transactions"),
		bad("an array body", `[`+mustJSON(t, item)+`]`, "invalid_json", ""),
		bad("unknown top-level field", with(items(1), "atomic", true), "invalid_json", ""),
		bad("transactions given twice", `{"transactions":[`+mustJSON(t, item)+`],"transactions":[`+mustJSON(t, item)+`]}`,
			"invalid_json", "transactions"),
		bad("Transactions capitalised", `{"Transactions":[`+mustJSON(t, item)+`]}`, "invalid_json", "Transactions"),
		bad("trailing garbage", mustJSON(t, items(1))+`]`, "invalid_json", ""),
		{name: "Idempotency-Key header", c: f.ac, method: "POST", path: path, body: items(1),
			headers: []string{"Idempotency-Key", "k"}, status: 400, code: "validation_failed", field: "Idempotency-Key"},
		{name: "text/plain", c: f.ac, method: "POST", path: path, body: mustJSON(t, items(1)),
			headers: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type"},
		{name: "no content type", c: f.ac, method: "POST", path: path, body: mustJSON(t, items(1)),
			headers: []string{"Content-Type", ""}, status: 415, code: "unsupported_media_type"},
		{name: "body over 4 MiB", c: f.ac, method: "POST", path: path,
			body:   obj("transactions", []any{with(item, "description", strings.Repeat("x", 4<<20))}),
			status: 413, code: "body_too_large"},
		{name: "no token", c: f.anon, method: "POST", path: path, body: items(1), status: 401, code: "unauthorized"},
	})

	t.Run("independent items in order", func(t *testing.T) {
		before := snapshot(t, f.db)
		a0, b0 := balance(t, f.db, f.aUSD), balance(t, f.db, f.bUSD)
		list := []any{
			transfer(f.aUSD, f.bUSD, 100, "USD"),             // 201
			transfer(f.aUSD, f.bUSD, 0, "USD"),               // 400 amount
			transfer(f.aUSD, f.bUSD, 1_000_000, "USD"),       // 422 insufficient
			"not an object",                                  // 400 invalid_json
			with(transfer(f.aUSD, f.bUSD, 5, "USD"), "x", 1), // 400 unknown field
			json.RawMessage(`{"type":"transfer","from_account_id":"` + f.aUSD + `","to_account_id":"` + f.bUSD +
				`","amount":5,"amount":6,"currency":"USD"}`), // 400 amount twice
			withdrawal(f.bUSD, 5, "USD"),                                       // 404 bob's account
			transfer(f.aUSD, f.aUSD, 5, "USD"),                                 // 422 same account
			deposit(f.aUSD, 5, "USD"),                                          // 403 user deposit
			transfer(f.aUSD, f.aEUR, 5, "USD"),                                 // 422 currency
			with(transfer(f.aUSD, f.bUSD, 7, "USD"), "idempotency_key", "b1"),  // 201
			with(transfer(f.aUSD, f.bUSD, 7, "USD"), "idempotency_key", "b1"),  // 201 replay
			with(transfer(f.aUSD, f.bUSD, 8, "USD"), "idempotency_key", "b1"),  // 422 reused
			with(transfer(f.aUSD, f.bUSD, 8, "USD"), "idempotency_key", "a b"), // 400 key
			with(transfer(f.aUSD, f.bUSD, 8, "USD"), "amount", "8"),            // 400 amount
			with(transfer(f.aUSD, f.bUSD, 9, "USD"), "description", "a\x00b"),  // 400 description
			transfer(f.aUSD, f.bUSD, 200, "USD"),                               // 201
		}
		want := []struct {
			status int
			code   string
		}{{201, ""}, {400, "validation_failed"}, {422, "insufficient_funds"}, {400, "invalid_json"},
			{400, "invalid_json"}, {400, "invalid_json"}, {404, "not_found"}, {422, "same_account"}, {403, "forbidden"},
			{422, "currency_mismatch"}, {201, ""}, {201, ""}, {422, "idempotency_key_reused"},
			{400, "validation_failed"}, {400, "validation_failed"}, {400, "validation_failed"}, {201, ""}}
		r := do(t, f.ac, "POST", path, obj("transactions", list))
		if r.Status != http.StatusOK {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		var out struct {
			Results []struct {
				Status      int      `json:"status"`
				Transaction *txJSON  `json:"transaction"`
				Error       *problem `json:"error"`
				Replayed    bool     `json:"replayed"`
			} `json:"results"`
		}
		r.JSON(t, &out)
		if len(out.Results) != len(want) {
			t.Fatalf("%d results for %d items: %s", len(out.Results), len(want), r.Body)
		}
		var ids []string
		for i, res := range out.Results {
			if want[i].status == 201 {
				if res.Status != 201 || res.Transaction == nil || res.Error != nil {
					t.Errorf("item %d: %+v, want 201 with a transaction", i, res)
					continue
				}
				if amt := list[i].(map[string]any)["amount"]; res.Transaction.Amount != int64(amt.(int)) {
					t.Errorf("item %d: amount %d, want %v", i, res.Transaction.Amount, amt)
				}
				ids = append(ids, res.Transaction.ID)
				continue
			}
			if res.Error == nil || res.Transaction != nil {
				t.Errorf("item %d: %+v, want a %d %s error", i, res, want[i].status, want[i].code)
				continue
			}
			for _, e := range checkProblem(*res.Error, res.Status, want[i].status, want[i].code) {
				t.Errorf("item %d: %s", i, e)
			}
		}
		if len(ids) == 4 && (ids[1] != ids[2] || !out.Results[11].Replayed || out.Results[10].Replayed) {
			t.Errorf("the second use of key b1 in the batch is not a replay of the first: %v", out.Results[10:12])
		}
		// 100 + 7 + 200 moved, three transactions, one key
		if a, b := balance(t, f.db, f.aUSD), balance(t, f.db, f.bUSD); a != a0-307 || b != b0+307 {
			t.Errorf("balances %d, %d; want %d, %d", a, b, a0-307, b0+307)
		}
		wantRows := map[string]int64{"users": 0, "accounts": 0, "transactions": 3, "entries": 6, "outbox": 3, "idempotency_keys": 1}
		if d := rowDelta(t, f.db, before); !maps.Equal(d, wantRows) {
			t.Errorf("the batch wrote %v, want %v", d, wantRows)
		}
	})

	t.Run("1000 items over 64 KiB", func(t *testing.T) {
		before := snapshot(t, f.db)
		list := make([]any, 1000)
		for i := range list {
			list[i] = with(deposit(f.aUSD2, 1, "USD"), "description", fmt.Sprintf("item %d of a batch bigger than one request body may be", i))
		}
		body := mustJSON(t, obj("transactions", list))
		if len(body) <= 64<<10 {
			t.Fatalf("batch body is only %d bytes", len(body))
		}
		r := do(t, f.admin, "POST", path, body)
		if r.Status != http.StatusOK {
			t.Fatalf("status %d: %.300s", r.Status, r.Body)
		}
		var out struct {
			Results []struct {
				Status      int    `json:"status"`
				Transaction txJSON `json:"transaction"`
			} `json:"results"`
		}
		r.JSON(t, &out)
		seen := map[string]bool{}
		for i, res := range out.Results {
			if res.Status != 201 || res.Transaction.Description != fmt.Sprintf("item %d of a batch bigger than one request body may be", i) {
				t.Fatalf("item %d: %+v", i, res)
			}
			seen[res.Transaction.ID] = true
		}
		if len(out.Results) != 1000 || len(seen) != 1000 {
			t.Errorf("%d results, %d distinct transactions; want 1000", len(out.Results), len(seen))
		}
		if d := rowDelta(t, f.db, before); d["transactions"] != 1000 || d["entries"] != 2000 || d["outbox"] != 1000 {
			t.Errorf("wrote %v", d)
		}
		if b := balance(t, f.db, f.aUSD2); b != 1000 {
			t.Errorf("balance %d, want 1000", b)
		}
	})
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUsers checks creating and changing users: validation, duplicate emails, webhook targets.
func TestUsers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	taken := "Taken.Person@Example.com"
	f.admin.Must(t, http.StatusCreated, "POST", "/users", obj("name", "taken", "email", taken))
	user := func(kv ...any) map[string]any {
		return with(obj("name", "carol", "email", "carol@example.com"), kv...)
	}
	bad := func(name string, body any, field string) apiCase {
		return apiCase{name: name, c: f.admin, method: "POST", path: "/users", body: body, status: 400, code: "validation_failed", field: field}
	}
	patch := func(name string, body any, status int, code, field string) apiCase {
		return apiCase{name: "PATCH " + name, c: f.ac, method: "PATCH", path: "/users/" + f.alice.ID, body: body,
			status: status, code: code, field: field}
	}
	runRefused(t, f.db, []apiCase{
		bad("email without @", user("email", "carol.example.com"), "email"),
		bad("email empty", user("email", ""), "email"),
		bad("email missing", user("email", nil), "email"),
		bad("email with a display name", user("email", "Carol <carol@example.com>"), "email"),
		bad("email with a NUL", user("email", "carol\x00@example.com"), "email"),
		bad("email as number", user("email", 5), "email"),
		bad("name missing", user("name", nil), "name"),
		bad("name blank", user("name", "   "), "name"),
		bad("name with a NUL", user("name", "car\x00ol"), "name"),
		bad("name over 200 characters", user("name", strings.Repeat("n", 201)), "name"),
		bad("webhook ftp", user("webhook_url", "ftp://example.com/hook"), "webhook_url"),
		bad("webhook relative", user("webhook_url", "/hook"), "webhook_url"),
		bad("webhook not a URL", user("webhook_url", "not a url"), "webhook_url"),
		bad("webhook with credentials", user("webhook_url", "https://u:p@example.com/hook"), "webhook_url"),
		bad("webhook as number", user("webhook_url", 5), "webhook_url"),
		bad("tags not strings", user("tags", []int{1}), "tags"),
		bad("tag with a space", user("tags", []string{"a b"}), "tags"),
		bad("21 tags", user("tags", strings.Split(strings.Repeat("t,", 20)+"t", ",")), "tags"),
		{name: "unknown field", c: f.admin, method: "POST", path: "/users", body: user("admin", true), status: 400, code: "invalid_json"},
		{name: "duplicate email", c: f.admin, method: "POST", path: "/users", body: user("email", taken), status: 409, code: "conflict"},
		{name: "duplicate email in other case", c: f.admin, method: "POST", path: "/users", body: user("email", strings.ToLower(taken)), status: 409, code: "conflict"},
		{name: "body over 64 KiB", c: f.admin, method: "POST", path: "/users", body: user("name", strings.Repeat("n", 65<<10)), status: 413, code: "body_too_large"},
		{name: "text/plain", c: f.admin, method: "POST", path: "/users", body: mustJSON(t, user()),
			headers: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type"},
		patch("name empty", obj("name", ""), 400, "validation_failed", "name"),
		patch("name null", obj("name", nil), 400, "validation_failed", "name"),
		patch("name as number", obj("name", 5), 400, "validation_failed", "name"),
		patch("name with a NUL", obj("name", "a\x00"), 400, "validation_failed", "name"),
		patch("webhook as number", obj("webhook_url", 5), 400, "validation_failed", "webhook_url"),
		patch("webhook ftp", obj("webhook_url", "ftp://example.com"), 400, "validation_failed", "webhook_url"),
		patch("email", obj("email", "new@example.com"), 400, "invalid_json", ""),
		patch("array", `[]`, 400, "invalid_json", ""),
		patch("null", `null`, 400, "invalid_json", ""),
		patch("malformed", `{"name": `, 400, "invalid_json", ""),
		patch("body over 64 KiB", obj("name", strings.Repeat("n", 65<<10)), 413, "body_too_large", ""),
		{name: "PATCH without content type", c: f.ac, method: "PATCH", path: "/users/" + f.alice.ID, body: `{"name":"x"}`,
			headers: []string{"Content-Type", ""}, status: 415, code: "unsupported_media_type"},
	})

	t.Run("create", func(t *testing.T) {
		hook := "http://127.0.0.1:9/hook" // allowed: this processor has AllowPrivate
		r := f.admin.Must(t, http.StatusCreated, "POST", "/users",
			user("email", "  Carol@Example.com ", "webhook_url", hook, "tags", []string{"vip", "team:a"}))
		var u struct {
			ID            string   `json:"id"`
			Name          string   `json:"name"`
			Email         string   `json:"email"`
			WebhookURL    *string  `json:"webhook_url"`
			Tags          []string `json:"tags"`
			APIKey        string   `json:"api_key"`
			WebhookSecret string   `json:"webhook_secret"`
		}
		r.JSON(t, &u)
		if u.Name != "carol" || u.Email != "carol@example.com" || u.WebhookURL == nil || *u.WebhookURL != hook ||
			!slices.Equal(u.Tags, []string{"vip", "team:a"}) || !strings.HasPrefix(u.APIKey, "tk_") ||
			!strings.HasPrefix(u.WebhookSecret, "whsec_") {
			t.Errorf("created %+v", u)
		}
		got := f.p.Client(u.APIKey).Must(t, http.StatusOK, "GET", "/users/"+u.ID, nil).Map(t)
		if _, ok := got["api_key"]; ok || got["webhook_secret"] != nil {
			t.Errorf("GET user shows a secret: %v", got)
		}
		if got["created_at"] != r.Map(t)["created_at"] {
			t.Errorf("GET user created_at %v, POST answered %v", got["created_at"], r.Map(t)["created_at"])
		}
		for _, k := range []string{"created_at", "updated_at"} {
			s, _ := got[k].(string)
			assertUTC(t, "user "+k, s)
		}
	})

	t.Run("patch", func(t *testing.T) {
		type userJSON struct {
			Name       string  `json:"name"`
			WebhookURL *string `json:"webhook_url"`
		}
		get := func() userJSON {
			var u userJSON
			f.admin.Must(t, http.StatusOK, "GET", "/users/"+f.alice.ID, nil).JSON(t, &u)
			return u
		}
		steps := []struct {
			c    *testenv.Client
			body map[string]any
			want userJSON
		}{
			{f.ac, obj("webhook_url", "https://example.com/a"), userJSON{"alice", ptr("https://example.com/a")}},
			{f.ac, obj("name", "Alice A."), userJSON{"Alice A.", ptr("https://example.com/a")}},
			{f.admin, obj("name", "Alice B.", "webhook_url", "https://example.org/b"), userJSON{"Alice B.", ptr("https://example.org/b")}},
			{f.ac, obj(), userJSON{"Alice B.", ptr("https://example.org/b")}},
			{f.ac, obj("webhook_url", nil), userJSON{"Alice B.", nil}},
			{f.admin, obj("webhook_url", nil, "name", "alice"), userJSON{"alice", nil}},
		}
		for i, s := range steps {
			var answered userJSON
			s.c.Must(t, http.StatusOK, "PATCH", "/users/"+f.alice.ID, s.body).JSON(t, &answered)
			stored := get()
			for _, u := range []userJSON{answered, stored} {
				if u.Name != s.want.Name || !equalPtr(u.WebhookURL, s.want.WebhookURL) {
					t.Errorf("step %d %v: user is %q %v, want %q %v", i, s.body, u.Name, deref(u.WebhookURL),
						s.want.Name, deref(s.want.WebhookURL))
				}
			}
		}
	})
}

func ptr[T any](v T) *T { return &v }

func equalPtr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestPrivateWebhooks checks that with AllowPrivate off, loopback and private webhook targets
// are refused at POST and PATCH, and public ones accepted.
func TestPrivateWebhooks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *processor.Config) { c.AllowPrivate = false })
	targets := []string{
		"http://127.0.0.1:8080/hook", "http://127.1.2.3/", "http://localhost/hook", "http://LOCALHOST:9/",
		"http://api.localhost/", "http://metadata.google.internal/", "http://10.0.0.1/", "http://172.16.5.4/",
		"http://192.168.1.1/", "http://169.254.169.254/latest/meta-data", "http://100.64.0.1/", "http://0.0.0.0/",
		"http://[::1]/hook", "http://[fe80::1]/", "http://[fc00::1]/", "http://[::ffff:127.0.0.1]/", "http://[::]/",
	}
	var cases []apiCase
	for i, target := range targets {
		cases = append(cases,
			apiCase{name: "POST " + target, c: f.admin, method: "POST", path: "/users",
				body:   obj("name", "w", "email", fmt.Sprintf("w%d@example.com", i), "webhook_url", target),
				status: 400, code: "validation_failed", field: "webhook_url"},
			apiCase{name: "PATCH " + target, c: f.ac, method: "PATCH", path: "/users/" + f.alice.ID,
				body: obj("webhook_url", target), status: 400, code: "validation_failed", field: "webhook_url"})
	}
	runRefused(t, f.db, cases)

	public := "https://example.com/hook"
	f.admin.Must(t, http.StatusCreated, "POST", "/users", obj("name", "w", "email", "public@example.com", "webhook_url", public))
	var u struct {
		WebhookURL *string `json:"webhook_url"`
	}
	f.ac.Must(t, http.StatusOK, "PATCH", "/users/"+f.alice.ID, obj("webhook_url", "http://93.184.215.14/hook")).JSON(t, &u)
	if u.WebhookURL == nil || *u.WebhookURL != "http://93.184.215.14/hook" {
		t.Errorf("webhook_url %v after PATCH to a public address", deref(u.WebhookURL))
	}
}

// TestPagination walks lists page by page and checks every item comes exactly once, in order.
func TestPagination(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tag := "page-" + uuid.NewString()[:8]
	want := map[string]bool{}
	for i := 0; i < 7; i++ {
		want[f.admin.CreateUser(t, fmt.Sprintf("pager%d", i), tag).ID] = true
	}
	f.admin.CreateUser(t, "untagged") // not in the tagged list

	type page struct {
		Data       []map[string]any `json:"data"`
		NextCursor *string          `json:"next_cursor"`
	}
	// walk follows the cursors of path and returns each page's items.
	walk := func(c *testenv.Client, path string, limit int) [][]map[string]any {
		var pages [][]map[string]any
		cursor := ""
		for n := 0; ; n++ {
			if n > 20 {
				t.Fatalf("%s: more than 20 pages", path)
			}
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			q := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			var pg page
			c.Must(t, http.StatusOK, "GET", q, nil).JSON(t, &pg)
			if len(pg.Data) > limit {
				t.Errorf("%s: %d items on a page of %d", q, len(pg.Data), limit)
			}
			pages = append(pages, pg.Data)
			if pg.NextCursor == nil {
				return pages
			}
			if *pg.NextCursor == "" {
				t.Fatalf("%s: empty next_cursor", q)
			}
			cursor = *pg.NextCursor
		}
	}
	sizes := func(pages [][]map[string]any) []int {
		var s []int
		for _, p := range pages {
			s = append(s, len(p))
		}
		return s
	}

	t.Run("users", func(t *testing.T) {
		pages := walk(f.admin, "/users?tag="+tag, 3)
		if s := sizes(pages); !slices.Equal(s, []int{3, 3, 1}) {
			t.Errorf("page sizes %v, want [3 3 1]", s)
		}
		got := map[string]int{}
		for _, p := range pages {
			for _, u := range p {
				got[u["id"].(string)]++
			}
		}
		for id := range want {
			if got[id] != 1 {
				t.Errorf("user %s listed %d times", id, got[id])
			}
		}
		if len(got) != len(want) {
			t.Errorf("listed %d users, want %d", len(got), len(want))
		}
		// every user, untagged and fixture users included, with the default limit
		all := walk(f.admin, "/users", 200)
		if len(all) != 1 || len(all[0]) != 10 {
			t.Errorf("GET /users: pages %v, want one of 10", sizes(all))
		}
	})

	t.Run("accounts", func(t *testing.T) {
		for i := 0; i < 4; i++ {
			f.admin.CreateAccount(t, f.alice.ID, "GBP")
		}
		pages := walk(f.ac, "/users/"+f.alice.ID+"/accounts", 2)
		if s := sizes(pages); !slices.Equal(s, []int{2, 2, 2, 1}) {
			t.Errorf("page sizes %v, want [2 2 2 1]", s)
		}
		seen := map[string]bool{}
		for _, p := range pages {
			for _, a := range p {
				if a["user_id"] != f.alice.ID || seen[a["id"].(string)] {
					t.Errorf("account listed wrongly or twice: %v", a)
				}
				seen[a["id"].(string)] = true
			}
		}
	})

	t.Run("entries", func(t *testing.T) {
		amounts := []int64{11, 22, 33, 44, 55}
		for _, a := range amounts {
			f.ac.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.aUSD, f.bUSD, a, "USD"))
		}
		pages := walk(f.ac, "/accounts/"+f.aUSD+"/entries", 2)
		var entries []map[string]any
		for _, p := range pages {
			entries = append(entries, p...)
		}
		// the seed deposit of 10000, then five debits; newest first
		want := []int64{-55, -44, -33, -22, -11, 10_000}
		if len(entries) != len(want) {
			t.Fatalf("%d entries, want %d: %v", len(entries), len(want), entries)
		}
		bal := balance(t, f.db, f.aUSD)
		if bal != 10_000-165 {
			t.Errorf("balance %d, want %d", bal, 10_000-165)
		}
		for i, e := range entries {
			amount, after := int64(e["amount"].(float64)), int64(e["balance_after"].(float64))
			if amount != want[i] || after != bal {
				t.Errorf("entry %d: amount %d balance_after %d, want %d and %d", i, amount, after, want[i], bal)
			}
			s, _ := e["created_at"].(string)
			assertUTC(t, "entry created_at", s)
			bal -= amount
		}
		if bal != 0 {
			t.Errorf("the entries do not add up from zero: %d left", bal)
		}
	})
}
