package processor_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"txn/internal/ledger"
	"txn/internal/testenv"
)

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
	want := map[string]int64{"users": 0, "accounts": 0, "transactions": 1, "entries": 2, "outbox": 1, "idempotency_keys": 1, "holds": 0}
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
