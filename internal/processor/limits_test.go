package processor_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"txn/internal/processor"
	"txn/internal/testenv"
)

// burst sends n requests at once through c and returns the answers, with the Unix seconds the
// burst started and ended in.
func burst(t *testing.T, c *testenv.Client, n int, method, path string, body func(i int) any) (answers []*testenv.Response, from, to int64) {
	t.Helper()
	answers = make([]*testenv.Response, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var b any
			if body != nil {
				b = body(i)
			}
			r, err := c.Do(method, path, b)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			answers[i] = r
		}()
	}
	from = time.Now().Unix()
	close(start)
	wg.Wait()
	to = time.Now().Unix()
	if t.Failed() {
		t.FailNow()
	}
	return answers, from, to
}

// TestRateLimit checks that a user over its rate gets 429 with Retry-After, that a limited
// request writes nothing, and that the admin (no limit) is never limited.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	const rate = 5
	f := newFixture(t, func(c *processor.Config) { c.UserRate = rate })
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) // a fresh window

	check := func(t *testing.T, answers []*testenv.Response, from, to int64, okStatus int) (ok int) {
		t.Helper()
		limited := 0
		for i, r := range answers {
			switch r.Status {
			case okStatus:
				ok++
			case http.StatusTooManyRequests:
				limited++
				assertProblem(t, r, http.StatusTooManyRequests, "rate_limited")
				if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
					t.Errorf("answer %d: Retry-After %q, want an integer >= 1", i, r.Header.Get("Retry-After"))
				}
			default:
				t.Errorf("answer %d: %d %s", i, r.Status, r.Body)
			}
		}
		windows := int(to - from + 1)
		if limited == 0 || ok == 0 || ok > rate*windows {
			t.Errorf("%d allowed, %d limited over %d one-second windows at %d/s", ok, limited, windows, rate)
		}
		return ok
	}

	t.Run("reads", func(t *testing.T) {
		answers, from, to := burst(t, f.ac, 20, "GET", "/users/"+f.alice.ID, nil)
		check(t, answers, from, to, http.StatusOK)
	})

	t.Run("writes", func(t *testing.T) {
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		before := snapshot(t, f.db)
		a0 := balance(t, f.db, f.aUSD)
		answers, from, to := burst(t, f.ac, 20, "POST", "/transactions", func(int) any { return transfer(f.aUSD, f.bUSD, 1, "USD") })
		ok := check(t, answers, from, to, http.StatusCreated)
		if d := rowDelta(t, f.db, before); d["transactions"] != int64(ok) || d["entries"] != 2*int64(ok) {
			t.Errorf("%d transfers allowed, database gained %v", ok, d)
		}
		if a := balance(t, f.db, f.aUSD); a != a0-int64(ok) {
			t.Errorf("balance %d, want %d", a, a0-int64(ok))
		}
	})

	t.Run("other users are limited separately", func(t *testing.T) {
		// alice is spent for this second; bob is not
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		answers, _, _ := burst(t, f.ac, 2*rate, "GET", "/users/"+f.alice.ID, nil)
		limited := 0
		for _, r := range answers {
			if r.Status == http.StatusTooManyRequests {
				limited++
			}
		}
		if limited == 0 {
			t.Errorf("alice was not limited in a burst of %d", 2*rate)
		}
		f.bc.Must(t, http.StatusOK, "GET", "/users/"+f.bob.ID, nil)
	})

	t.Run("the limit resets", func(t *testing.T) {
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		f.ac.Must(t, http.StatusOK, "GET", "/users/"+f.alice.ID, nil)
	})

	t.Run("a batch counts one request per item", func(t *testing.T) {
		batch := func(n int) map[string]any {
			list := make([]any, n)
			for i := range list {
				list[i] = transfer(f.aUSD, f.bUSD, 1, "USD")
			}
			return obj("transactions", list)
		}
		before := snapshot(t, f.db)
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		r, err := f.ac.Do("POST", "/transactions/batch", batch(rate+1))
		if err != nil {
			t.Fatal(err)
		}
		assertProblem(t, r, http.StatusTooManyRequests, "rate_limited")
		if d := rowDelta(t, f.db, before); d["transactions"] != 0 {
			t.Errorf("a refused batch wrote %v", d)
		}
		// A batch of rate items spends the second: the next request in it is refused. The
		// pair is tried again if the second ended between them.
		for attempt := 0; ; attempt++ {
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
			from := time.Now().Unix()
			f.ac.Must(t, http.StatusOK, "POST", "/transactions/batch", batch(rate))
			r, err := f.ac.Do("GET", "/users/"+f.alice.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if time.Now().Unix() != from && attempt < 3 {
				continue
			}
			assertProblem(t, r, http.StatusTooManyRequests, "rate_limited")
			break
		}
	})

	t.Run("admin is never limited", func(t *testing.T) {
		answers, _, _ := burst(t, f.admin, 100, "GET", "/users/"+f.alice.ID, nil)
		for i, r := range answers {
			if r.Status != http.StatusOK {
				t.Errorf("admin answer %d: %d %s", i, r.Status, r.Body)
			}
		}
	})
}

// TestRedisDown runs the processor against a Redis address where nothing listens: users, API
// keys and transactions still work, the rate limit fails open and says so in /metrics, and
// /readyz reports Redis down but stays ready.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	const rate = 5
	f := newFixture(t, func(c *processor.Config) {
		c.RedisURL = "redis://127.0.0.1:1/0"
		c.UserRate = rate
	})
	// The fixture created users and deposited with the admin; now the users themselves.
	f.ac.Must(t, http.StatusOK, "GET", "/users/"+f.alice.ID, nil)
	var tx txJSON
	f.ac.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.aUSD, f.bUSD, 100, "USD")).JSON(t, &tx)
	if a, b := balance(t, f.db, f.aUSD), balance(t, f.db, f.bUSD); a != 9_900 || b != 10_100 {
		t.Errorf("balances %d, %d after a transfer", a, b)
	}
	carol := f.admin.CreateUser(t, "carol")
	f.p.Client(carol.APIKey).Must(t, http.StatusOK, "GET", "/users/"+carol.ID, nil)
	time.Sleep(300 * time.Millisecond) // several limiter ticks: it finds Redis unreachable

	answers, _, _ := burst(t, f.ac, 4*rate, "GET", "/users/"+f.alice.ID, nil)
	for i, r := range answers {
		if r.Status != http.StatusOK {
			t.Errorf("answer %d with Redis down: %d %s", i, r.Status, r.Body)
		}
	}
	answers, _, _ = burst(t, f.ac, 2*rate, "POST", "/transactions", func(int) any { return transfer(f.aUSD, f.bUSD, 1, "USD") })
	for i, r := range answers {
		if r.Status != http.StatusCreated {
			t.Errorf("transfer %d with Redis down: %d %s", i, r.Status, r.Body)
		}
	}

	// /metrics and /readyz take no token
	base := testenv.Client{Base: f.p.URL, HTTP: http.DefaultClient}
	m := base.Must(t, http.StatusOK, "GET", "/metrics", nil)
	if v := metric(t, m.Body, "ratelimit_fail_open_total"); v < 4*rate {
		t.Errorf("ratelimit_fail_open_total = %v, want at least %d", v, 4*rate)
	}
	if v := metric(t, m.Body, `apikey_cache_errors_total{op="get"}`); v < 1 {
		t.Errorf(`apikey_cache_errors_total{op="get"} = %v, want > 0`, v)
	}
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	base.Must(t, http.StatusOK, "GET", "/readyz", nil).JSON(t, &ready)
	if ready.Status != "ready" || ready.Checks["postgres"] != "ok" || !strings.HasPrefix(ready.Checks["redis"], "down") {
		t.Errorf("readyz: %+v", ready)
	}
	ctx := context.Background()
	var n int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM transactions WHERE type = 'transfer'`).Scan(&n); err != nil || n != 1+2*rate {
		t.Errorf("%d transfers stored (%v), want %d", n, err, 1+2*rate)
	}
}

// metric returns the value of the sample named name (with its labels) in a Prometheus text page.
func metric(t *testing.T, page []byte, name string) float64 {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(page))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found in:\n%s", name, page)
	return 0
}

// TestUnknownKeys floods the processor with made-up API keys: each is read from PostgreSQL at
// most once while remembered, malformed ones never, and every answer is 401.
func TestUnknownKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	base := testenv.Client{Base: f.p.URL, HTTP: http.DefaultClient}
	lookups := func() float64 {
		return metric(t, base.Must(t, http.StatusOK, "GET", "/metrics", nil).Body, "apikey_store_lookups_total")
	}
	flood := func(t *testing.T, keys []string, n int) {
		t.Helper()
		for i := range n {
			c := f.p.Client(keys[i%len(keys)])
			r, err := c.Do("GET", "/users/"+f.alice.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			assertProblem(t, r, http.StatusUnauthorized, "unauthorized")
		}
	}
	wellFormed := make([]string, 10)
	for i := range wellFormed {
		wellFormed[i] = "tk_" + strings.Repeat(string(rune('a'+i)), 43)
	}

	t.Run("a made-up key is read once while remembered", func(t *testing.T) {
		before := lookups()
		flood(t, wellFormed, 300)
		if d := lookups() - before; d > float64(len(wellFormed)) {
			t.Errorf("%v store reads for %d distinct unknown keys in 300 requests", d, len(wellFormed))
		}
	})
	t.Run("a malformed key is never read", func(t *testing.T) {
		before := lookups()
		flood(t, []string{"tk_short", "tk_" + strings.Repeat("a", 42) + "!", "tk_" + strings.Repeat("a", 44)}, 30)
		if d := lookups() - before; d != 0 {
			t.Errorf("%v store reads for malformed keys", d)
		}
	})
	t.Run("a real key still works", func(t *testing.T) {
		f.ac.Must(t, http.StatusOK, "GET", "/users/"+f.alice.ID, nil)
	})
}

// TestStalledBodyIsCutOff checks that the processor's server has a read timeout: a request
// whose body stops coming holds its connection no longer than that.
func TestStalledBodyIsCutOff(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *processor.Config) { c.HTTPTimeouts.Read = time.Second })
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /transactions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+f.alice.APIKey+
		"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"type\":"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, conn)
	if err != nil {
		t.Errorf("the connection was still open after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
}

// TestConnectionFlood checks that connections which never finish their headers neither keep
// others from being served nor stay open past the read-header timeout.
func TestConnectionFlood(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *processor.Config) { c.HTTPTimeouts.ReadHeader = time.Second })
	const flood = 200
	conns := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range flood {
		c, err := net.Dial("tcp", strings.TrimPrefix(f.p.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "GET /users/"+f.alice.ID+" HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}

	t.Run("a client is served during the flood", func(t *testing.T) {
		f.ac.Must(t, http.StatusOK, "GET", "/users/"+f.alice.ID, nil)
	})
	t.Run("every stalled connection is closed after the read-header timeout", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		for i, c := range conns {
			_ = c.SetReadDeadline(deadline)
			if _, err := io.Copy(io.Discard, c); err != nil {
				t.Fatalf("connection %d was still open 10 s later: %v", i, err)
			}
		}
	})
}
