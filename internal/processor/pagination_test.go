package processor_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"txn/internal/testenv"
)

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
