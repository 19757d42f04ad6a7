package processor_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestMetadata checks metadata on transactions (API.md, "Metadata"): stored as given, returned
// on every read, part of the idempotent request, carried in the event, and its limits.
func TestMetadata(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	meta := map[string]string{"order_id": "A-1001", "channel": "web", "note.v2": "café ☕"}

	t.Run("a transaction's metadata comes back on creation and on reads", func(t *testing.T) {
		var tx txJSON
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", with(transfer(f.aUSD, f.bUSD, 5, "USD"), "metadata", meta)).JSON(t, &tx)
		if fmt.Sprint(tx.Metadata) != fmt.Sprint(meta) {
			t.Errorf("created with metadata %v, want %v", tx.Metadata, meta)
		}
		var got txJSON
		f.ac.Must(t, http.StatusOK, "GET", "/transactions/"+tx.ID, nil).JSON(t, &got)
		if fmt.Sprint(got.Metadata) != fmt.Sprint(meta) {
			t.Errorf("read metadata %v, want %v", got.Metadata, meta)
		}
	})
	t.Run("a transaction without metadata answers with an empty object", func(t *testing.T) {
		r := f.ac.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.aUSD, f.bUSD, 1, "USD"))
		if !strings.Contains(string(r.Body), `"metadata":{}`) {
			t.Errorf("answer %s has no empty metadata object", r.Body)
		}
	})
	t.Run("a replay with the same key and metadata is the same transaction", func(t *testing.T) {
		var a, b txJSON
		body := with(transfer(f.aUSD, f.bUSD, 2, "USD"), "metadata", meta)
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", body, "Idempotency-Key", "meta-1").JSON(t, &a)
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", body, "Idempotency-Key", "meta-1").JSON(t, &b)
		if a.ID != b.ID || fmt.Sprint(b.Metadata) != fmt.Sprint(meta) {
			t.Errorf("replay %s %v, first %s %v", b.ID, b.Metadata, a.ID, a.Metadata)
		}
	})
	t.Run("the same key with other metadata is a reused key", func(t *testing.T) {
		body := with(transfer(f.aUSD, f.bUSD, 3, "USD"), "metadata", map[string]string{"order_id": "1"})
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", body, "Idempotency-Key", "meta-2")
		other := with(transfer(f.aUSD, f.bUSD, 3, "USD"), "metadata", map[string]string{"order_id": "2"})
		assertProblem(t, do(t, f.ac, "POST", "/transactions", other, "Idempotency-Key", "meta-2"), 422, "idempotency_key_reused")
	})
	t.Run("the event carries the metadata", func(t *testing.T) {
		var tx txJSON
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", with(transfer(f.aUSD, f.bUSD, 4, "USD"), "metadata", map[string]string{"k": "event"})).JSON(t, &tx)
		var payload string
		err := f.db.QueryRow(context.Background(), `SELECT payload::text FROM outbox WHERE payload->'transaction'->>'id' = $1`, tx.ID).Scan(&payload)
		if err != nil {
			t.Fatalf("no event of transaction %s in the outbox (this fixture runs no relay): %v", tx.ID, err)
		}
		if !strings.Contains(payload, `"metadata":{"k":"event"}`) {
			t.Errorf("event %s lacks the metadata", payload)
		}
	})

	many := map[string]string{}
	for i := range 21 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	runRefused(t, f.db, []apiCase{
		{name: "21 keys", c: f.ac, method: "POST", path: "/transactions", body: with(transfer(f.aUSD, f.bUSD, 1, "USD"), "metadata", many), status: 400, code: "validation_failed", field: "metadata"},
		{name: "a key with a space", c: f.ac, method: "POST", path: "/transactions", body: with(transfer(f.aUSD, f.bUSD, 1, "USD"), "metadata", map[string]string{"order id": "x"}), status: 400, code: "validation_failed", field: "metadata"},
		{name: "a key of 41 characters", c: f.ac, method: "POST", path: "/transactions", body: with(transfer(f.aUSD, f.bUSD, 1, "USD"), "metadata", map[string]string{strings.Repeat("k", 41): "x"}), status: 400, code: "validation_failed", field: "metadata"},
		{name: "an empty key", c: f.ac, method: "POST", path: "/transactions", body: with(transfer(f.aUSD, f.bUSD, 1, "USD"), "metadata", map[string]string{"": "x"}), status: 400, code: "validation_failed", field: "metadata"},
		{name: "a value of 501 characters", c: f.ac, method: "POST", path: "/transactions", body: with(transfer(f.aUSD, f.bUSD, 1, "USD"), "metadata", map[string]string{"k": strings.Repeat("é", 501)}), status: 400, code: "validation_failed", field: "metadata.k"},
		{name: "a value that is a number", c: f.ac, method: "POST", path: "/transactions", body: `{"type":"transfer","from_account_id":"` + f.aUSD + `","to_account_id":"` + f.bUSD + `","amount":1,"currency":"USD","metadata":{"k":1}}`, status: 400, code: "validation_failed", field: "metadata"},
		{name: "a key given twice", c: f.ac, method: "POST", path: "/transactions", body: `{"type":"transfer","from_account_id":"` + f.aUSD + `","to_account_id":"` + f.bUSD + `","amount":1,"currency":"USD","metadata":{"k":"a","k":"b"}}`, status: 400, code: "invalid_json"},
		{name: "metadata that is a list", c: f.ac, method: "POST", path: "/transactions", body: `{"type":"transfer","from_account_id":"` + f.aUSD + `","to_account_id":"` + f.bUSD + `","amount":1,"currency":"USD","metadata":["k"]}`, status: 400, code: "validation_failed", field: "metadata"},
	})
}

// TestListTransactions checks GET /transactions and its filters.
func TestListTransactions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	acc := f.admin.CreateAccount(t, f.alice.ID, "USD")
	f.admin.Deposit(t, acc, 1000, "USD")
	start := time.Now().UTC()
	var ids []string
	for i := range 5 {
		var tx txJSON
		body := with(transfer(acc, f.bUSD, int64(i+1), "USD"), "metadata", map[string]string{"batch": "b1", "n": fmt.Sprint(i)})
		if i == 4 {
			body = withdrawal(acc, 5, "USD")
		}
		f.ac.Must(t, http.StatusCreated, "POST", "/transactions", body).JSON(t, &tx)
		ids = append(ids, tx.ID)
	}
	list := func(t *testing.T, query string) []txJSON {
		t.Helper()
		var out []txJSON
		next := ""
		for range 20 {
			q := query + "&limit=2"
			if next != "" {
				q += "&cursor=" + url.QueryEscape(next)
			}
			var pg struct {
				Data       []txJSON `json:"data"`
				NextCursor *string  `json:"next_cursor"`
			}
			f.ac.Must(t, http.StatusOK, "GET", "/transactions?"+q, nil).JSON(t, &pg)
			out = append(out, pg.Data...)
			if pg.NextCursor == nil || *pg.NextCursor == "" {
				return out
			}
			next = *pg.NextCursor
		}
		t.Fatal("more than 20 pages")
		return nil
	}
	idsOf := func(txs []txJSON) string {
		var s []string
		for _, tx := range txs {
			s = append(s, tx.ID)
		}
		return strings.Join(s, ",")
	}
	reversed := func(ids []string) string {
		var s []string
		for i := len(ids) - 1; i >= 0; i-- {
			s = append(s, ids[i])
		}
		return strings.Join(s, ",")
	}

	t.Run("an account's transactions, newest first, page by page", func(t *testing.T) {
		got := list(t, "account_id="+acc)
		if len(got) != 6 || idsOf(got[:5]) != reversed(ids) || got[5].Type != "deposit" {
			t.Errorf("listed %s, want %s then the deposit", idsOf(got), reversed(ids))
		}
	})
	t.Run("filtered by type", func(t *testing.T) {
		if got := list(t, "account_id="+acc+"&type=withdrawal"); idsOf(got) != ids[4] {
			t.Errorf("withdrawals %s, want %s", idsOf(got), ids[4])
		}
	})
	t.Run("filtered by metadata pairs, combined", func(t *testing.T) {
		if got := list(t, "account_id="+acc+"&metadata.batch=b1"); idsOf(got) != reversed(ids[:4]) {
			t.Errorf("batch b1: %s, want %s", idsOf(got), reversed(ids[:4]))
		}
		if got := list(t, "account_id="+acc+"&metadata.batch=b1&metadata.n=2"); idsOf(got) != ids[2] {
			t.Errorf("batch b1, n 2: %s, want %s", idsOf(got), ids[2])
		}
		if got := list(t, "account_id="+acc+"&metadata.batch=b2"); len(got) != 0 {
			t.Errorf("batch b2: %s, want none", idsOf(got))
		}
	})
	t.Run("filtered by time", func(t *testing.T) {
		if got := list(t, "account_id="+acc+"&from="+rfc(start)); len(got) != 5 {
			t.Errorf("%d since the deposit, want 5", len(got))
		}
		if got := list(t, "account_id="+acc+"&to="+rfc(start)); len(got) != 1 || got[0].Type != "deposit" {
			t.Errorf("before the transfers: %s, want the deposit", idsOf(got))
		}
	})
	t.Run("the admin lists across accounts by metadata", func(t *testing.T) {
		var pg struct{ Data []txJSON }
		f.admin.Must(t, http.StatusOK, "GET", "/transactions?metadata.batch=b1&metadata.n=3", nil).JSON(t, &pg)
		if idsOf(pg.Data) != ids[3] {
			t.Errorf("admin's list %s, want %s", idsOf(pg.Data), ids[3])
		}
	})
	t.Run("the admin's list across accounts pages newest first", func(t *testing.T) {
		var all []txJSON
		next := ""
		for range 50 {
			var pg struct {
				Data       []txJSON `json:"data"`
				NextCursor *string  `json:"next_cursor"`
			}
			q := "/transactions?limit=3&metadata.batch=b1"
			if next != "" {
				q += "&cursor=" + url.QueryEscape(next)
			}
			f.admin.Must(t, http.StatusOK, "GET", q, nil).JSON(t, &pg)
			all = append(all, pg.Data...)
			if pg.NextCursor == nil || *pg.NextCursor == "" {
				break
			}
			next = *pg.NextCursor
		}
		if idsOf(all) != reversed(ids[:4]) {
			t.Errorf("pages %s, want %s", idsOf(all), reversed(ids[:4]))
		}
	})

	runRefused(t, f.db, []apiCase{
		{name: "a user without account_id", c: f.ac, method: "GET", path: "/transactions", status: 400, code: "validation_failed", field: "account_id"},
		{name: "a user naming another's account", c: f.bc, method: "GET", path: "/transactions?account_id=" + acc, status: 404, code: "not_found"},
		{name: "an unknown type", c: f.ac, method: "GET", path: "/transactions?account_id=" + acc + "&type=refund", status: 400, code: "validation_failed", field: "type"},
		{name: "a misspelt filter", c: f.ac, method: "GET", path: "/transactions?account_id=" + acc + "&metdata.x=1", status: 400, code: "validation_failed", field: "metdata.x"},
		{name: "a bad metadata key", c: f.ac, method: "GET", path: "/transactions?account_id=" + acc + "&metadata.a%20b=1", status: 400, code: "validation_failed", field: "metadata.a b"},
		{name: "to before from", c: f.ac, method: "GET", path: "/transactions?account_id=" + acc + "&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", status: 400, code: "validation_failed", field: "to"},
		{name: "a cursor of another list", c: f.ac, method: "GET", path: "/transactions?account_id=" + acc + "&cursor=AAAA", status: 400, code: "validation_failed", field: "cursor"},
	})
}
