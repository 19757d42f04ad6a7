package processor_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestHostileInput sends bodies, numbers, strings, headers and paths built to confuse a parser
// or a router. Each gets its documented error and writes nothing.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	const txPath = "/transactions"
	// body builds a transfer body around raw member text, so numbers and strings go as written.
	body := func(members string) string {
		return `{"type":"transfer","from_account_id":"` + f.aUSD + `","to_account_id":"` + f.bUSD + `","currency":"USD",` + members + `}`
	}
	withAmount := func(raw string) string { return body(`"amount":` + raw) }
	bad := func(name, b, code, field string) apiCase {
		return apiCase{name: name, c: f.ac, method: "POST", path: txPath, body: b, status: http.StatusBadRequest, code: code, field: field}
	}
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)

	cases := []apiCase{
		// encodings
		bad("UTF-8 byte order mark", "\xef\xbb\xbf"+withAmount("1"), "invalid_json", ""),
		bad("UTF-16 body", "\xff\xfe{\x00}\x00", "invalid_json", ""),
		bad("invalid UTF-8 in a string", body("\"amount\":1,\"description\":\"\xff\xfe\""), "invalid_json", ""),
		bad("overlong UTF-8 encoding of a slash", body("\"amount\":1,\"description\":\"\xc0\xaf\""), "invalid_json", ""),
		bad("escaped NUL", body(`"amount":1,"description":"a\u0000b"`), "validation_failed", "description"),
		bad("lone high surrogate escape", body(`"amount":1,"description":"\ud800"`), "invalid_json", ""),
		bad("lone low surrogate escape", body(`"amount":1,"description":"a\udc00b"`), "invalid_json", ""),
		bad("two high surrogate escapes", body(`"amount":1,"description":"\ud83d\ud83d"`), "invalid_json", ""),
		bad("escaped member name", body(`"amount":1,"\u0061mount":2`), "invalid_json", "amount"),
		bad("member name with a NUL", body(`"amount":1,"amount\u0000":2`), "invalid_json", "amount\x00"),
		// huge and deep
		bad("10,000-deep array", body(`"amount":1,"description":`+deep), "invalid_json", ""),
		bad("deep value for amount", withAmount(`{"a":{"b":{"c":{"d":1}}}}`), "validation_failed", "amount"),
		bad("1,000 unknown members", body(`"amount":1,`+strings.Repeat(`"x":1,`, 999)+`"y":1`), "invalid_json", ""),
		{name: "65 KiB of whitespace inside", c: f.ac, method: "POST", path: txPath,
			body: body(`"amount":` + strings.Repeat(" ", 65<<10) + `1`), status: 413, code: "body_too_large"},
		{name: "a 4 MiB body on a single request", c: f.ac, method: "POST", path: txPath,
			body: body(`"amount":1,"description":"` + strings.Repeat("x", 4<<20) + `"`), status: 413, code: "body_too_large"},
		// numbers
		bad("amount 2^53 + 1", withAmount("9007199254740993"), "validation_failed", "amount"),
		bad("amount -0", withAmount("-0"), "validation_failed", "amount"),
		bad("amount 1.0", withAmount("1.0"), "validation_failed", "amount"),
		bad("amount 1e0", withAmount("1e0"), "validation_failed", "amount"),
		bad("amount 1E+2", withAmount("1E+2"), "validation_failed", "amount"),
		bad("amount 0x10", withAmount("0x10"), "invalid_json", ""),
		bad("amount +1", withAmount("+1"), "invalid_json", ""),
		bad("amount 01", withAmount("01"), "invalid_json", ""),
		bad("amount .5", withAmount(".5"), "invalid_json", ""),
		bad("amount 1.", withAmount("1."), "invalid_json", ""),
		bad("amount NaN", withAmount("NaN"), "invalid_json", ""),
		bad("amount Infinity", withAmount("Infinity"), "invalid_json", ""),
		bad("amount 1_000", withAmount("1_000"), "invalid_json", ""),
		bad("amount as a numeric string", withAmount(`"100"`), "validation_failed", "amount"),
		bad("amount with 400 digits", withAmount(strings.Repeat("9", 400)), "validation_failed", "amount"),
		bad("amount 1e400", withAmount("1e400"), "validation_failed", "amount"),
		// overlong and odd strings
		bad("currency of 10,000 characters", body(`"amount":1,"currency":"`+strings.Repeat("U", 10000)+`"`), "invalid_json", "currency"),
		bad("account id with a trailing newline", `{"type":"transfer","from_account_id":"`+f.aUSD+`\n","to_account_id":"`+f.bUSD+`","currency":"USD","amount":1}`,
			"validation_failed", "from_account_id"),
		bad("account id in upper case braces", `{"type":"transfer","from_account_id":"{`+strings.ToUpper(f.aUSD)+`}","to_account_id":"`+f.bUSD+`","currency":"USD","amount":1}`,
			"validation_failed", "from_account_id"),
		bad("type with a trailing space", `{"type":"transfer ","from_account_id":"`+f.aUSD+`","to_account_id":"`+f.bUSD+`","currency":"USD","amount":1}`,
			"validation_failed", "type"),
		bad("currency with a zero-width space", body(`"amount":1,"currency":"US\u200bD"`), "invalid_json", "currency"),
		// headers
		{name: "Content-Type with charset utf-16", c: f.ac, method: "POST", path: txPath, body: withAmount("1"),
			headers: []string{"Content-Type", "application/json; charset=utf-16"}, status: 415, code: "unsupported_media_type"},
		{name: "Content-Type text/json", c: f.ac, method: "POST", path: txPath, body: withAmount("1"),
			headers: []string{"Content-Type", "text/json"}, status: 415, code: "unsupported_media_type"},
		{name: "Content-Type that does not parse", c: f.ac, method: "POST", path: txPath, body: withAmount("1"),
			headers: []string{"Content-Type", "application/json; ;;"}, status: 415, code: "unsupported_media_type"},
		{name: "Bearer token with a trailing NUL-like tab", c: f.anon, method: "POST", path: txPath, body: withAmount("1"),
			headers: []string{"Authorization", "Bearer\t" + f.alice.APIKey + "x"}, status: 401, code: "unauthorized"},
		// paths
		// a malformed id names nothing: not found, as API.md has it for ids that are not the caller's
		{name: "a transaction id that is not a UUID", c: f.ac, method: "GET", path: txPath + "/not-a-uuid", status: 404, code: "not_found"},
		{name: "a transaction id with a path suffix", c: f.ac, method: "GET", path: txPath + "/" + f.aUSD + "%2f..", status: 404, code: "not_found"},
		{name: "an account id in braces", c: f.ac, method: "GET", path: "/accounts/{" + f.aUSD + "}", status: 404, code: "not_found"},
		{name: "an account id as a URN", c: f.ac, method: "GET", path: "/accounts/urn:uuid:" + f.aUSD, status: 404, code: "not_found"},
		{name: "an account id that is another user's", c: f.ac, method: "GET", path: "/accounts/" + f.bUSD, status: 404, code: "not_found"},
		{name: "entries of another user's account", c: f.ac, method: "GET", path: "/accounts/" + f.bUSD + "/entries", status: 404, code: "not_found"},
		{name: "a cursor that is not base64", c: f.ac, method: "GET", path: "/accounts/" + f.aUSD + "/entries?cursor=!!!", status: 400, code: "validation_failed"},
		{name: "limit 0", c: f.ac, method: "GET", path: "/accounts/" + f.aUSD + "/entries?limit=0", status: 400, code: "validation_failed"},
		{name: "limit 201", c: f.ac, method: "GET", path: "/accounts/" + f.aUSD + "/entries?limit=201", status: 400, code: "validation_failed"},
		{name: "limit -1", c: f.ac, method: "GET", path: "/accounts/" + f.aUSD + "/entries?limit=-1", status: 400, code: "validation_failed"},
		{name: "limit 1e2", c: f.ac, method: "GET", path: "/accounts/" + f.aUSD + "/entries?limit=1e2", status: 400, code: "validation_failed"},
		{name: "a user id that is not a UUID", c: f.ac, method: "GET", path: "/users/..%2fadmin", status: 404, code: "not_found"},
		{name: "PUT on transactions", c: f.ac, method: "PUT", path: txPath, body: withAmount("1"), status: 404, code: "not_found"},
		{name: "a path with a dot segment", c: f.ac, method: "GET", path: "/accounts/" + f.aUSD + "/../" + f.bUSD, status: 404, code: "not_found"},
		// whole bodies
		bad("an empty body", "", "invalid_json", ""),
		bad("a body of null", "null", "invalid_json", ""),
		bad("an array instead of an object", "["+withAmount("1")+"]", "invalid_json", ""),
		bad("a second object after the first", withAmount("1")+withAmount("1"), "invalid_json", ""),
		bad("a truncated object", withAmount("1")[:40], "invalid_json", ""),
		// idempotency keys
		{name: "an Idempotency-Key of 256 characters", c: f.ac, method: "POST", path: txPath, body: withAmount("1"),
			headers: []string{"Idempotency-Key", strings.Repeat("k", 256)}, status: 400, code: "validation_failed"},
		{name: "an empty Idempotency-Key", c: f.ac, method: "POST", path: txPath, body: withAmount("1"),
			headers: []string{"Idempotency-Key", ""}, status: 400, code: "validation_failed"},
		// credentials
		{name: "Basic credentials", c: f.anon, method: "POST", path: txPath, body: withAmount("1"),
			headers: []string{"Authorization", "Basic dXNlcjpwYXNz"}, status: 401, code: "unauthorized"},
		{name: "a key of 10,000 characters", c: f.anon, method: "POST", path: txPath, body: withAmount("1"),
			headers: []string{"Authorization", "Bearer tk_" + strings.Repeat("a", 10000)}, status: 401, code: "unauthorized"},
		// batches
		{name: "a batch of 1,001 items", c: f.ac, method: "POST", path: txPath + "/batch",
			body: `{"transactions":[` + strings.Repeat(withAmount("1")+",", 1000) + withAmount("1") + `]}`, status: 400, code: "validation_failed"},
		{name: "a batch with no items", c: f.ac, method: "POST", path: txPath + "/batch", body: `{"transactions":[]}`, status: 400, code: "validation_failed"},
		{name: "a batch whose list is an object", c: f.ac, method: "POST", path: txPath + "/batch", body: `{"transactions":{"0":` + withAmount("1") + `}}`, status: 400, code: "validation_failed", field: "transactions"},
		{name: "DELETE on a transaction", c: f.ac, method: "DELETE", path: txPath + "/" + f.aUSD, status: 404, code: "not_found"},
	}
	runRefused(t, f.db, cases)
}
