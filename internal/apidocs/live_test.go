package apidocs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	validator "github.com/pb33f/libopenapi-validator"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"txn/internal/apidocs"
	"txn/internal/processor"
	"txn/internal/testenv"
)

// liveCheck sends requests to a running service and validates each request and answer (status,
// headers, body) against the service's spec.
type liveCheck struct {
	t      *testing.T
	base   string
	model  *v3.Document
	v      validator.Validator
	loose  validator.Validator // without strict mode, for answers a schema cannot list whole
	ops    *http.ServeMux      // the spec's operations, to tell which one a request exercised
	seen   map[string][]int
	client *http.Client
}

func newLiveCheck(t *testing.T, base string, spec []byte) *liveCheck {
	t.Helper()
	_, model, v := openSpec(t, spec)
	_, _, loose := openSpec(t, spec, false)
	c := &liveCheck{t: t, base: base, model: model, v: v, loose: loose, ops: http.NewServeMux(), seen: map[string][]int{},
		client: &http.Client{Timeout: 30 * time.Second}}
	ops, err := apidocs.Operations(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		c.ops.Handle(muxPattern(op), http.NotFoundHandler())
	}
	t.Cleanup(c.client.CloseIdleConnections)
	return c
}

// muxPattern turns an operation into the ServeMux pattern that matches its path alone: an
// OpenAPI "/" is "/{$}" (a bare "/" would match every path).
func muxPattern(op string) string {
	if method, ok := strings.CutSuffix(op, " /"); ok {
		return method + " /{$}"
	}
	return op
}

// call is one request. body is sent as is when a string, else encoded as JSON.
type call struct {
	method, path string
	token        string
	body         any
	headers      []string // name, value pairs; a "Content-Type" of "" sends none
	want         int
	// invalid marks a request that breaks the spec on purpose: the spec must refuse it too, so
	// it documents what the server refuses.
	invalid bool
	// loose skips strict mode for the request and the answer: for a body checked as a whole
	// elsewhere (the OpenAPI document itself), metadata (a map, whose keys strict mode takes
	// for undeclared properties) and metadata.<key> filters (OpenAPI cannot declare a
	// parameter by prefix).
	loose bool
}

func (cl call) request(base string) *http.Request {
	var b []byte
	switch v := cl.body.(type) {
	case nil:
	case string:
		b = []byte(v)
	default:
		b, _ = json.Marshal(v)
	}
	req, err := http.NewRequest(cl.method, base+cl.path, bytes.NewReader(b))
	if err != nil {
		panic(err)
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.token != "" {
		req.Header.Set("Authorization", "Bearer "+cl.token)
	}
	for i := 0; i+1 < len(cl.headers); i += 2 {
		if cl.headers[i+1] == "" {
			req.Header.Del(cl.headers[i])
		} else {
			req.Header.Set(cl.headers[i], cl.headers[i+1])
		}
	}
	return req
}

// send makes the request and returns the answer with its body read.
func (c *liveCheck) send(cl call) (*http.Response, []byte) {
	c.t.Helper()
	resp, err := c.client.Do(cl.request(c.base))
	if err != nil {
		c.t.Fatalf("%s %s: %v", cl.method, cl.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", cl.method, cl.path, err)
	}
	return resp, b
}

// check validates an exchange against the spec and records which operation it exercised.
func (c *liveCheck) check(cl call, resp *http.Response, body []byte) {
	c.t.Helper()
	what := fmt.Sprintf("%s %s → %d", cl.method, cl.path, resp.StatusCode)
	if resp.StatusCode != cl.want {
		c.t.Errorf("%s, want %d: %s", what, cl.want, body)
	}
	v := c.v
	if cl.loose {
		v = c.loose
	}
	ok, errs := v.ValidateHttpRequest(cl.request(c.base))
	switch {
	case cl.invalid && ok:
		c.t.Errorf("%s: the spec accepts this request, which the server refuses", what)
	case !cl.invalid && !ok:
		c.t.Errorf("%s: the request breaks the spec:%s", what, describe(errs))
	}
	copied := *resp
	copied.Body = io.NopCloser(bytes.NewReader(body))
	if ok, errs := v.ValidateHttpResponse(cl.request(c.base), &copied); !ok {
		c.t.Errorf("%s: the answer breaks the spec:%s\n  body: %.600s", what, describe(errs), body)
	}
	_, pattern := c.ops.Handler(cl.request(c.base))
	c.seen[pattern] = append(c.seen[pattern], resp.StatusCode)
	c.headersDeclared(what, pattern, resp)
}

// apiHeaders are the headers of the API's own that answers may carry.
var apiHeaders = []string{"Idempotent-Replayed", "Retry-After"}

// headersDeclared fails the test when an answer carries one of apiHeaders that the spec does
// not declare for the operation and status: strict mode only reports undeclared headers of an
// answer that declares some.
func (c *liveCheck) headersDeclared(what, pattern string, resp *http.Response) {
	c.t.Helper()
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		return
	}
	var declared *v3.Response
	if item := c.model.Paths.PathItems.GetOrZero(strings.ReplaceAll(path, "{$}", "")); item != nil {
		if op := item.GetOperations().GetOrZero(strings.ToLower(method)); op != nil && op.Responses != nil {
			if declared = op.Responses.Codes.GetOrZero(strconv.Itoa(resp.StatusCode)); declared == nil {
				declared = op.Responses.Default
			}
		}
	}
	for _, name := range apiHeaders {
		if resp.Header.Get(name) != "" && (declared == nil || declared.Headers == nil || declared.Headers.GetOrZero(name) == nil) {
			c.t.Errorf("%s: the answer carries %s, which the spec does not declare for it", what, name)
		}
	}
}

// do sends, checks and returns the answer's body.
func (c *liveCheck) do(cl call) []byte {
	c.t.Helper()
	resp, body := c.send(cl)
	c.check(cl, resp, body)
	return body
}

// id decodes the "id" field of a JSON answer.
func id(t *testing.T, body []byte) string {
	t.Helper()
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.ID == "" {
		t.Fatalf("no id in %s", body)
	}
	return v.ID
}

// covered fails t unless every operation in the spec answered 2xx at least once and each of
// statuses was seen somewhere.
func (c *liveCheck) covered(spec []byte, statuses ...int) {
	c.t.Helper()
	ops, err := apidocs.Operations(spec)
	if err != nil {
		c.t.Fatal(err)
	}
	all := map[int]bool{}
	for _, op := range ops {
		seen := c.seen[muxPattern(op)]
		if !slices.ContainsFunc(seen, func(s int) bool { return s/100 == 2 }) {
			c.t.Errorf("%s: never answered 2xx (saw %v)", op, seen)
		}
		for _, s := range seen {
			all[s] = true
		}
		slices.Sort(seen)
		c.t.Logf("%-45s %v", op, slices.Compact(seen))
	}
	for _, s := range statuses {
		if !all[s] {
			c.t.Errorf("no answer with status %d was checked", s)
		}
	}
}

// emptyMongoDB returns a URL of the stack's MongoDB naming a database no one else uses,
// dropped after the test.
func emptyMongoDB(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(testenv.MongoURL(t))
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.Unique("apidocs")
	u.Path = "/" + name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := mongodrv.Connect(options.Client().ApplyURI(u.String())); err == nil {
			_ = c.Database(name).Drop(ctx)
			_ = c.Disconnect(ctx)
		}
	})
	return u.String()
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// TestProcessorAnswersMatchSpec drives every processor route through success and error answers
// and validates each request and answer against processor.yaml.
func TestProcessorAnswersMatchSpec(t *testing.T) {
	const userRate = 100
	p := testenv.StartProcessor(t, func(c *processor.Config) {
		c.MaxConns = 8
		c.UserRate = userRate
		// The read models are only read here: an empty MongoDB database of the test's own, and
		// the stack's ClickHouse database, whose rows give analytics something to show.
		c.MongoURL = emptyMongoDB(t)
		c.ClickHouseAddr = testenv.ClickHouseAddr(t)
		c.ClickHouseDB = getenv("CLICKHOUSE_DATABASE", "txn")
	})
	c := newLiveCheck(t, p.URL, apidocs.ProcessorSpec)
	admin := p.AdminToken
	unknown := uuid.NewString()

	// --- users ---
	aliceBody := c.do(call{method: "POST", path: "/api/v1/users", token: admin, want: 201,
		body: map[string]any{"name": "Alice", "email": "alice@example.com", "webhook_url": "https://alice.example.com/hook", "tags": []string{"apidocs"}}})
	alice := id(t, aliceBody)
	var secrets struct {
		APIKey string `json:"api_key"`
	}
	_ = json.Unmarshal(aliceBody, &secrets)
	aliceKey := secrets.APIKey
	bobBody := c.do(call{method: "POST", path: "/api/v1/users", token: admin, want: 201, body: map[string]any{"name": "Bob", "email": "bob@example.com"}})
	bob := id(t, bobBody)
	_ = json.Unmarshal(bobBody, &secrets)
	bobKey := secrets.APIKey
	c.do(call{method: "POST", path: "/api/v1/users", token: admin, want: 409, body: map[string]any{"name": "Alice 2", "email": "alice@example.com"}})
	c.do(call{method: "POST", path: "/api/v1/users", token: admin, want: 400, invalid: true, body: map[string]any{"name": "X", "email": "not an address"}})
	c.do(call{method: "POST", path: "/api/v1/users", token: admin, want: 400, invalid: true, body: map[string]any{"name": "X", "email": "x@example.com", "nickname": "x"}})
	c.do(call{method: "POST", path: "/api/v1/users", token: admin, want: 400, invalid: true, body: `{"name": "X",`})
	c.do(call{method: "POST", path: "/api/v1/users", token: admin, want: 415, invalid: true, body: `name=X`, headers: []string{"Content-Type", "application/x-www-form-urlencoded"}})
	c.do(call{method: "POST", path: "/api/v1/users", token: admin, want: 413, invalid: true,
		body: map[string]any{"name": strings.Repeat("n", 70<<10), "email": "big@example.com"}})
	c.do(call{method: "POST", path: "/api/v1/users", token: aliceKey, want: 403, body: map[string]any{"name": "Eve", "email": "eve@example.com"}})
	c.do(call{method: "POST", path: "/api/v1/users", want: 401, invalid: true, body: map[string]any{"name": "Eve", "email": "eve@example.com"}})

	page := c.do(call{method: "GET", path: "/api/v1/users?limit=1", token: admin, want: 200})
	var list struct {
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal(page, &list); err != nil || list.NextCursor == nil {
		t.Fatalf("a first page of 1 of 2 users has no next_cursor: %s", page)
	}
	c.do(call{method: "GET", path: "/api/v1/users?limit=1&cursor=" + url.QueryEscape(*list.NextCursor), token: admin, want: 200})
	c.do(call{method: "GET", path: "/api/v1/users?tag=apidocs", token: admin, want: 200})
	c.do(call{method: "GET", path: "/api/v1/users?limit=0", token: admin, want: 400, invalid: true})
	c.do(call{method: "GET", path: "/api/v1/users", token: aliceKey, want: 403})

	c.do(call{method: "GET", path: "/api/v1/users/" + alice, token: aliceKey, want: 200})
	c.do(call{method: "GET", path: "/api/v1/users/" + bob, token: aliceKey, want: 404})
	c.do(call{method: "GET", path: "/api/v1/users/" + alice, token: "tk_not-a-key", want: 401})
	c.do(call{method: "PATCH", path: "/api/v1/users/" + alice, token: aliceKey, want: 200, body: map[string]any{"name": "Alice B."}})
	c.do(call{method: "PATCH", path: "/api/v1/users/" + alice, token: admin, want: 200, body: map[string]any{"webhook_url": nil}})
	c.do(call{method: "PATCH", path: "/api/v1/users/" + alice, token: admin, want: 400, invalid: true, body: map[string]any{"name": 5}})
	c.do(call{method: "PATCH", path: "/api/v1/users/" + unknown, token: admin, want: 404, body: map[string]any{"name": "Nobody"}})

	// --- accounts ---
	aUSD := id(t, c.do(call{method: "POST", path: "/api/v1/accounts", token: admin, want: 201, body: map[string]any{"user_id": alice, "currency": "USD"}}))
	aEUR := id(t, c.do(call{method: "POST", path: "/api/v1/accounts", token: aliceKey, want: 201, body: map[string]any{"currency": "EUR"}}))
	bUSD := id(t, c.do(call{method: "POST", path: "/api/v1/accounts", token: admin, want: 201, body: map[string]any{"user_id": bob, "currency": "USD"}}))
	c.do(call{method: "POST", path: "/api/v1/accounts", token: admin, want: 400, body: map[string]any{"user_id": alice, "currency": "XYZ"}})
	c.do(call{method: "POST", path: "/api/v1/accounts", token: admin, want: 404, body: map[string]any{"user_id": unknown, "currency": "USD"}})
	c.do(call{method: "GET", path: "/api/v1/accounts/" + aUSD, token: aliceKey, want: 200})
	c.do(call{method: "GET", path: "/api/v1/accounts/" + bUSD, token: aliceKey, want: 404})
	c.do(call{method: "GET", path: "/api/v1/users/" + alice + "/accounts?limit=1", token: aliceKey, want: 200})
	c.do(call{method: "GET", path: "/api/v1/users/" + bob + "/accounts", token: aliceKey, want: 404})

	// --- transactions ---
	transfer := map[string]any{"type": "transfer", "from_account_id": aUSD, "to_account_id": bUSD, "amount": 2500, "currency": "USD", "description": "Dinner"}
	c.do(call{method: "POST", path: "/api/v1/transactions", token: admin, want: 201,
		body: map[string]any{"type": "deposit", "to_account_id": aUSD, "amount": 10_000, "currency": "USD"}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: admin, want: 201,
		body: map[string]any{"type": "deposit", "to_account_id": aEUR, "amount": 5_000, "currency": "EUR"}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: aliceKey, want: 403,
		body: map[string]any{"type": "deposit", "to_account_id": aUSD, "amount": 1, "currency": "USD"}})
	txID := id(t, c.do(call{method: "POST", path: "/api/v1/transactions", token: aliceKey, want: 201, body: transfer, headers: []string{"Idempotency-Key", "dinner-1"}}))
	c.do(call{method: "POST", path: "/api/v1/transactions/" + txID + "/reverse", token: admin, want: 201, body: map[string]any{"amount": 100, "description": "refund"}})
	c.do(call{method: "POST", path: "/api/v1/transactions/" + txID + "/reverse", token: admin, want: 422, body: map[string]any{"amount": 1_000_000}})
	c.do(call{method: "POST", path: "/api/v1/transactions/" + txID + "/reverse", token: aliceKey, want: 403, body: map[string]any{}})
	c.do(call{method: "POST", path: "/api/v1/transactions/" + unknown + "/reverse", token: admin, want: 404, body: map[string]any{}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: aliceKey, want: 201, body: map[string]any{"type": "transfer", "from_account_id": aUSD,
		"to_account_id": bUSD, "amount": 1, "currency": "USD", "metadata": map[string]string{"order_id": "A-1"}}, loose: true})
	resp, body := c.send(call{method: "POST", path: "/api/v1/transactions", token: aliceKey, body: transfer, headers: []string{"Idempotency-Key", "dinner-1"}})
	c.check(call{method: "POST", path: "/api/v1/transactions", token: aliceKey, body: transfer, headers: []string{"Idempotency-Key", "dinner-1"}, want: 201}, resp, body)
	if resp.Header.Get("Idempotent-Replayed") != "true" || id(t, body) != txID {
		t.Errorf("a repeat with the same key was not replayed: %v %s", resp.Header, body)
	}
	changed := map[string]any{"type": "transfer", "from_account_id": aUSD, "to_account_id": bUSD, "amount": 2600, "currency": "USD"}
	c.do(call{method: "POST", path: "/api/v1/transactions", token: aliceKey, want: 422, body: changed, headers: []string{"Idempotency-Key", "dinner-1"}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: aliceKey, want: 422,
		body: map[string]any{"type": "transfer", "from_account_id": aUSD, "to_account_id": bUSD, "amount": 1_000_000, "currency": "USD"}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: aliceKey, want: 422,
		body: map[string]any{"type": "transfer", "from_account_id": aUSD, "to_account_id": aEUR, "amount": 1, "currency": "USD"}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: aliceKey, want: 422,
		body: map[string]any{"type": "transfer", "from_account_id": aUSD, "to_account_id": aUSD, "amount": 1, "currency": "USD"}})
	notHers := map[string]any{"type": "withdrawal", "from_account_id": bUSD, "amount": 100, "currency": "USD"}
	c.do(call{method: "POST", path: "/api/v1/transactions", token: aliceKey, want: 404, body: notHers, headers: []string{"Idempotency-Key", "grab-1"}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: aliceKey, want: 404, body: notHers, headers: []string{"Idempotency-Key", "grab-1"}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: aliceKey, want: 201,
		body: map[string]any{"type": "withdrawal", "from_account_id": aUSD, "amount": 100, "currency": "USD"}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: admin, want: 400, invalid: true,
		body: map[string]any{"type": "transfer", "from_account_id": aUSD, "to_account_id": bUSD, "amount": 0, "currency": "USD"}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: admin, want: 400, invalid: true,
		body: map[string]any{"type": "deposit", "from_account_id": aUSD, "to_account_id": bUSD, "amount": 1, "currency": "USD"}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: admin, want: 400, invalid: true,
		body: map[string]any{"type": "deposit", "to_account_id": aUSD, "amount": 1, "currency": "USD", "idempotency_key": "k"}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: admin, want: 400, invalid: true,
		body: map[string]any{"type": "deposit", "to_account_id": aUSD, "amount": 1, "currency": "USD"}, headers: []string{"Idempotency-Key", "has space"}})
	c.do(call{method: "GET", path: "/api/v1/transactions/" + txID, token: aliceKey, want: 200})
	c.do(call{method: "GET", path: "/api/v1/transactions/" + unknown, token: admin, want: 404})

	c.do(call{method: "POST", path: "/api/v1/transactions/batch", token: admin, want: 200, body: map[string]any{"transactions": []any{
		map[string]any{"type": "deposit", "to_account_id": bUSD, "amount": 500, "currency": "USD", "idempotency_key": "batch-1"},
		map[string]any{"type": "transfer", "from_account_id": bUSD, "to_account_id": aUSD, "amount": 1_000_000, "currency": "USD"},
		map[string]any{"type": "deposit", "to_account_id": bUSD, "amount": 500, "currency": "USD", "idempotency_key": "batch-1"},
		map[string]any{"type": "withdrawal", "from_account_id": unknown, "amount": 1, "currency": "USD"},
	}}})
	// An item the spec refuses does not spoil the others: the answer is still 200, per item.
	c.do(call{method: "POST", path: "/api/v1/transactions/batch", token: admin, want: 200, invalid: true, body: map[string]any{"transactions": []any{
		map[string]any{"type": "deposit", "to_account_id": bUSD, "amount": 1, "currency": "USD"},
		map[string]any{"type": "deposit", "amount": "1", "currency": "USD"},
	}}})
	c.do(call{method: "POST", path: "/api/v1/transactions/batch", token: admin, want: 400, invalid: true, body: map[string]any{"transactions": []any{}}})
	c.do(call{method: "POST", path: "/api/v1/transactions/batch", token: admin, want: 201, body: map[string]any{"atomic": true, "transactions": []any{
		map[string]any{"type": "deposit", "to_account_id": bUSD, "amount": 1, "currency": "USD"},
		map[string]any{"type": "transfer", "from_account_id": bUSD, "to_account_id": aUSD, "amount": 1, "currency": "USD"},
	}}})
	c.do(call{method: "POST", path: "/api/v1/transactions/batch", token: admin, want: 422, body: map[string]any{"atomic": true, "transactions": []any{
		map[string]any{"type": "deposit", "to_account_id": bUSD, "amount": 1, "currency": "USD"},
		map[string]any{"type": "withdrawal", "from_account_id": bUSD, "amount": 1_000_000_000, "currency": "USD"},
	}}})
	c.do(call{method: "POST", path: "/api/v1/transactions/batch", token: admin, want: 404, body: map[string]any{"atomic": true, "transactions": []any{
		map[string]any{"type": "deposit", "to_account_id": unknown, "amount": 1, "currency": "USD"},
	}}})
	c.do(call{method: "POST", path: "/api/v1/transactions/batch", token: admin, want: 400, invalid: true, headers: []string{"Idempotency-Key", "whole-batch"},
		body: map[string]any{"transactions": []any{map[string]any{"type": "deposit", "to_account_id": bUSD, "amount": 1, "currency": "USD"}}}})

	c.do(call{method: "GET", path: "/api/v1/accounts/" + aUSD + "/entries?limit=2", token: aliceKey, want: 200})
	frozen := id(t, c.do(call{method: "POST", path: "/api/v1/accounts", token: admin, want: 201, body: map[string]any{"user_id": alice, "currency": "USD", "overdraft_limit": 100}}))
	c.do(call{method: "PATCH", path: "/api/v1/accounts/" + frozen, token: admin, want: 200, body: map[string]any{"status": "frozen"}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: admin, want: 422, body: map[string]any{"type": "deposit", "to_account_id": frozen, "amount": 1, "currency": "USD"}})
	c.do(call{method: "PATCH", path: "/api/v1/accounts/" + aUSD, token: admin, want: 409, body: map[string]any{"status": "closed"}})
	c.do(call{method: "PATCH", path: "/api/v1/accounts/" + aUSD, token: aliceKey, want: 403, body: map[string]any{"status": "frozen"}})
	c.do(call{method: "PATCH", path: "/api/v1/accounts/" + unknown, token: admin, want: 404, body: map[string]any{"status": "frozen"}})
	c.do(call{method: "PATCH", path: "/api/v1/accounts/" + aUSD, token: admin, want: 400, invalid: true, body: map[string]any{"status": "paused"}})
	c.do(call{method: "GET", path: "/api/v1/transactions?account_id=" + aUSD + "&type=transfer&limit=2", token: aliceKey, want: 200, loose: true})
	c.do(call{method: "GET", path: "/api/v1/transactions?metadata.order_id=A-1", token: admin, want: 200, loose: true})
	c.do(call{method: "GET", path: "/api/v1/transactions", token: aliceKey, want: 400})
	c.do(call{method: "GET", path: "/api/v1/accounts/" + unknown + "/entries", token: admin, want: 404})
	c.do(call{method: "GET", path: "/api/v1/accounts/" + aUSD + "/balance?at=" + url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano)), token: aliceKey, want: 200})
	c.do(call{method: "GET", path: "/api/v1/accounts/" + aUSD + "/balance", token: aliceKey, want: 400, invalid: true})
	c.do(call{method: "GET", path: "/api/v1/accounts/" + unknown + "/balance?at=2026-01-01T00:00:00Z", token: admin, want: 404})
	period := "?from=2026-01-01T00:00:00Z&to=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	c.do(call{method: "GET", path: "/api/v1/accounts/" + aUSD + "/statement" + period, token: aliceKey, want: 200})
	c.do(call{method: "GET", path: "/api/v1/accounts/" + aUSD + "/statement" + period, token: aliceKey, want: 200, headers: []string{"Accept", "text/csv"}})
	c.do(call{method: "GET", path: "/api/v1/accounts/" + aUSD + "/statement?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", token: aliceKey, want: 400})
	c.do(call{method: "GET", path: "/api/v1/accounts/" + unknown + "/statement" + period, token: admin, want: 404})

	// --- holds ---
	type holdJSON struct {
		ID             string `json:"id"`
		Status         string `json:"status"`
		CapturedAmount int64  `json:"captured_amount"`
	}
	var h holdJSON
	// One that expires at once, looked at after the others.
	expiring := id(t, c.do(call{method: "POST", path: "/api/v1/holds", token: aliceKey, want: 201,
		body: map[string]any{"from_account_id": aUSD, "amount": 1, "currency": "USD", "expires_in_s": 1}}))
	hotel := map[string]any{"from_account_id": aUSD, "to_account_id": bUSD, "amount": 700, "currency": "USD", "description": "Hotel", "expires_in_s": 600}
	holdID := id(t, c.do(call{method: "POST", path: "/api/v1/holds", token: aliceKey, want: 201, body: hotel, headers: []string{"Idempotency-Key", "hotel-1"}}))
	resp, body = c.send(call{method: "POST", path: "/api/v1/holds", token: aliceKey, body: hotel, headers: []string{"Idempotency-Key", "hotel-1"}})
	c.check(call{method: "POST", path: "/api/v1/holds", token: aliceKey, body: hotel, headers: []string{"Idempotency-Key", "hotel-1"}, want: 201}, resp, body)
	if resp.Header.Get("Idempotent-Replayed") != "true" || id(t, body) != holdID {
		t.Errorf("a repeated hold with the same key was not replayed: %v %s", resp.Header, body)
	}
	var acc struct{ Balance, Available int64 }
	_ = json.Unmarshal(c.do(call{method: "GET", path: "/api/v1/accounts/" + aUSD, token: aliceKey, want: 200}), &acc)
	if acc.Available > acc.Balance-700 {
		t.Errorf("account with a pending hold of 700: balance %d, available %d", acc.Balance, acc.Available)
	}
	c.do(call{method: "GET", path: "/api/v1/holds/" + holdID, token: aliceKey, want: 200})
	c.do(call{method: "GET", path: "/api/v1/holds/" + holdID, token: bobKey, want: 200})
	c.do(call{method: "GET", path: "/api/v1/holds/" + unknown, token: admin, want: 404})
	c.do(call{method: "POST", path: "/api/v1/holds", token: aliceKey, want: 422,
		body: map[string]any{"from_account_id": aUSD, "amount": 1_000_000_000, "currency": "USD"}})
	c.do(call{method: "POST", path: "/api/v1/holds", token: aliceKey, want: 422,
		body: map[string]any{"from_account_id": frozen, "amount": 1, "currency": "USD"}})
	c.do(call{method: "POST", path: "/api/v1/holds", token: aliceKey, want: 404,
		body: map[string]any{"from_account_id": bUSD, "to_account_id": aUSD, "amount": 1, "currency": "USD"}})
	c.do(call{method: "POST", path: "/api/v1/holds", token: aliceKey, want: 400, invalid: true,
		body: map[string]any{"from_account_id": aUSD, "amount": 1, "currency": "USD", "expires_in_s": 0}})
	c.do(call{method: "POST", path: "/api/v1/holds", token: aliceKey, want: 400, invalid: true,
		body: map[string]any{"type": "transfer", "from_account_id": aUSD, "amount": 1, "currency": "USD"}})
	c.do(call{method: "POST", path: "/api/v1/holds/" + holdID + "/capture", token: bobKey, want: 404, body: map[string]any{}})
	c.do(call{method: "POST", path: "/api/v1/holds/" + holdID + "/capture", token: aliceKey, want: 422, body: map[string]any{"amount": 701}})
	c.do(call{method: "POST", path: "/api/v1/holds/" + holdID + "/capture", token: aliceKey, want: 400, invalid: true, body: map[string]any{"amount": 0}})
	var captured struct {
		Type   string `json:"type"`
		Amount int64  `json:"amount"`
		HoldID string `json:"hold_id"`
	}
	_ = json.Unmarshal(c.do(call{method: "POST", path: "/api/v1/holds/" + holdID + "/capture", token: aliceKey, want: 201,
		body: map[string]any{"amount": 500}, headers: []string{"Idempotency-Key", "hotel-capture"}}), &captured)
	if captured.Type != "transfer" || captured.Amount != 500 || captured.HoldID != holdID {
		t.Errorf("capture of 500 of hold %s answered %+v, want a transfer of 500 naming the hold", holdID, captured)
	}
	c.do(call{method: "POST", path: "/api/v1/holds/" + holdID + "/capture", token: aliceKey, want: 409})
	_ = json.Unmarshal(c.do(call{method: "GET", path: "/api/v1/holds/" + holdID, token: admin, want: 200}), &h)
	if h.Status != "captured" || h.CapturedAmount != 500 {
		t.Errorf("hold after a capture of 500: %+v", h)
	}
	voided := id(t, c.do(call{method: "POST", path: "/api/v1/holds", token: aliceKey, want: 201, loose: true,
		body: map[string]any{"from_account_id": aUSD, "amount": 300, "currency": "USD", "metadata": map[string]string{"order_id": "H-1"}}}))
	c.do(call{method: "POST", path: "/api/v1/holds/" + voided + "/void", token: bobKey, want: 404})
	_ = json.Unmarshal(c.do(call{method: "POST", path: "/api/v1/holds/" + voided + "/void", token: aliceKey, want: 200, loose: true}), &h)
	if h.Status != "voided" {
		t.Errorf("voided hold: %+v", h)
	}
	again := call{method: "POST", path: "/api/v1/holds/" + voided + "/void", token: aliceKey, want: 409, headers: []string{"Idempotency-Key", "void-again"}}
	c.do(again)
	resp, body = c.send(again)
	c.check(again, resp, body)
	if resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("a repeated void with the same key was not replayed: %v %s", resp.Header, body)
	}
	c.do(call{method: "POST", path: "/api/v1/holds/" + voided + "/capture", token: aliceKey, want: 409})
	c.do(call{method: "POST", path: "/api/v1/holds/" + unknown + "/void", token: admin, want: 404})
	whole := id(t, c.do(call{method: "POST", path: "/api/v1/holds", token: aliceKey, want: 201,
		body: map[string]any{"from_account_id": aUSD, "amount": 200, "currency": "USD"}}))
	_ = json.Unmarshal(c.do(call{method: "POST", path: "/api/v1/holds/" + whole + "/capture", token: admin, want: 201}), &captured)
	if captured.Type != "withdrawal" || captured.Amount != 200 || captured.HoldID != whole {
		t.Errorf("capture of hold %s without a body answered %+v, want a withdrawal of all 200 naming the hold", whole, captured)
	}
	// An account with a pending hold and a zero balance cannot be closed until the hold is gone.
	closing := id(t, c.do(call{method: "POST", path: "/api/v1/accounts", token: admin, want: 201, body: map[string]any{"user_id": alice, "currency": "USD", "overdraft_limit": 100}}))
	onCredit := id(t, c.do(call{method: "POST", path: "/api/v1/holds", token: aliceKey, want: 201,
		body: map[string]any{"from_account_id": closing, "amount": 50, "currency": "USD"}}))
	c.do(call{method: "PATCH", path: "/api/v1/accounts/" + closing, token: admin, want: 409, body: map[string]any{"status": "closed"}})
	c.do(call{method: "POST", path: "/api/v1/holds/" + onCredit + "/void", token: admin, want: 200})
	c.do(call{method: "PATCH", path: "/api/v1/accounts/" + closing, token: admin, want: 200, body: map[string]any{"status": "closed"}})
	// The processor expires a hold within seconds of its time; it then takes no capture.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, body := c.send(call{method: "GET", path: "/api/v1/holds/" + expiring, token: aliceKey})
		_ = json.Unmarshal(body, &h)
		if h.Status == "expired" || time.Now().After(deadline) {
			break
		}
	}
	_ = json.Unmarshal(c.do(call{method: "GET", path: "/api/v1/holds/" + expiring, token: aliceKey, want: 200}), &h)
	if h.Status != "expired" {
		t.Errorf("a hold of 1 s is still %q 20 s later", h.Status)
	}
	c.do(call{method: "POST", path: "/api/v1/holds/" + expiring + "/void", token: aliceKey, want: 409})

	// --- read models and admin ---
	for _, model := range []string{"activity", "notifications"} {
		c.do(call{method: "GET", path: "/api/v1/users/" + alice + "/" + model, token: aliceKey, want: 200})
		c.do(call{method: "GET", path: "/api/v1/users/" + alice + "/" + model + "?limit=500", token: admin, want: 400, invalid: true})
		c.do(call{method: "GET", path: "/api/v1/users/" + bob + "/" + model, token: aliceKey, want: 404})
	}
	to := time.Now().UTC()
	c.do(call{method: "GET", path: "/api/v1/admin/analytics", token: admin, want: 200})
	c.do(call{method: "GET", path: "/api/v1/admin/analytics?from=" + url.QueryEscape(to.Add(-24*time.Hour).Format(time.RFC3339)) +
		"&to=" + url.QueryEscape(to.Format(time.RFC3339Nano)), token: admin, want: 200})
	c.do(call{method: "GET", path: "/api/v1/admin/analytics?from=yesterday", token: admin, want: 400, invalid: true})
	c.do(call{method: "GET", path: "/api/v1/admin/analytics", token: aliceKey, want: 403})
	c.do(call{method: "GET", path: "/api/v1/admin/reconciliation", token: admin, want: 200})
	c.do(call{method: "GET", path: "/api/v1/admin/reconciliation", token: aliceKey, want: 403})

	tagged := id(t, c.do(call{method: "POST", path: "/api/v1/users", token: admin, want: 201,
		body: map[string]any{"name": "Tangled", "email": "tangled@example.com", "tags": []string{"tangled"}}}))
	tAcc := id(t, c.do(call{method: "POST", path: "/api/v1/accounts", token: admin, want: 201, body: map[string]any{"user_id": tagged, "currency": "USD"}}))
	c.do(call{method: "POST", path: "/api/v1/transactions", token: admin, want: 201, body: map[string]any{"type": "deposit", "to_account_id": tAcc, "amount": 100, "currency": "USD"}})
	c.do(call{method: "POST", path: "/api/v1/transactions", token: admin, want: 201,
		body: map[string]any{"type": "transfer", "from_account_id": tAcc, "to_account_id": bUSD, "amount": 50, "currency": "USD"}})
	c.do(call{method: "POST", path: "/api/v1/admin/purge", token: admin, want: 409, body: map[string]any{"tag": "tangled"}})
	doomed := id(t, c.do(call{method: "POST", path: "/api/v1/users", token: admin, want: 201,
		body: map[string]any{"name": "Doomed", "email": "doomed@example.com", "tags": []string{"doomed"}}}))
	dAcc := id(t, c.do(call{method: "POST", path: "/api/v1/accounts", token: admin, want: 201, body: map[string]any{"user_id": doomed, "currency": "USD"}}))
	c.do(call{method: "POST", path: "/api/v1/transactions", token: admin, want: 201, body: map[string]any{"type": "deposit", "to_account_id": dAcc, "amount": 100, "currency": "USD"}})
	c.do(call{method: "POST", path: "/api/v1/admin/purge", token: admin, want: 200, body: map[string]any{"tag": "doomed"}})
	c.do(call{method: "POST", path: "/api/v1/admin/purge", token: admin, want: 400, invalid: true, body: map[string]any{"tag": "no spaces"}})
	c.do(call{method: "POST", path: "/api/v1/admin/purge", token: aliceKey, want: 403, body: map[string]any{"tag": "tangled"}})

	// --- rate limit: one user over its rate gets 429 with Retry-After ---
	flood := c.do(call{method: "POST", path: "/api/v1/users", token: admin, want: 201, body: map[string]any{"name": "Flood", "email": "flood@example.com"}})
	floodID := id(t, flood)
	_ = json.Unmarshal(flood, &secrets)
	get := call{method: "GET", path: "/api/v1/users/" + floodID, token: secrets.APIKey, want: 429}
	for i := 0; ; i++ {
		resp, body := c.send(get)
		if resp.StatusCode == http.StatusTooManyRequests {
			c.check(get, resp, body)
			break
		}
		if i > 10*userRate {
			t.Fatalf("no 429 after %d requests over a limit of %d/s", i, userRate)
		}
	}

	// --- operations and docs ---
	c.do(call{method: "GET", path: "/healthz", want: 200})
	c.do(call{method: "GET", path: "/readyz", want: 200})
	c.do(call{method: "GET", path: "/metrics", want: 200})
	c.do(call{method: "GET", path: "/docs", want: 200})
	for _, asset := range []string{"swagger-ui-bundle.js", "swagger-ui.css", "init.js"} {
		c.do(call{method: "GET", path: "/docs/" + asset, want: 200})
	}
	c.do(call{method: "GET", path: "/docs/nope.js", want: 404, invalid: true})
	served := c.do(call{method: "GET", path: "/openapi.json", want: 200, loose: true})
	t.Run("served document is OpenAPI 3.1", func(t *testing.T) { validateDocument(t, served) })

	// --- 503: the same routes when the read models' stores are not there ---
	bare := testenv.StartProcessor(t, func(c *processor.Config) { c.MaxConns = 4 })
	c.base = bare.URL
	u := id(t, c.do(call{method: "POST", path: "/api/v1/users", token: bare.AdminToken, want: 201, body: map[string]any{"name": "Solo", "email": "solo@example.com"}}))
	c.do(call{method: "GET", path: "/api/v1/users/" + u + "/activity", token: bare.AdminToken, want: 503})
	c.do(call{method: "GET", path: "/api/v1/users/" + u + "/notifications", token: bare.AdminToken, want: 503})
	c.do(call{method: "GET", path: "/api/v1/admin/analytics", token: bare.AdminToken, want: 503})

	c.covered(apidocs.ProcessorSpec, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
}
