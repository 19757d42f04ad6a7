package processor_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
)

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
		bad("unknown top-level field", with(items(1), "all_or_nothing", true), "invalid_json", ""),
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
		wantRows := map[string]int64{"users": 0, "accounts": 0, "transactions": 3, "entries": 6, "outbox": 3, "idempotency_keys": 1, "holds": 0}
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
