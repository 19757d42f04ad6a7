package processor_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"txn/internal/processor"
)

// cutProxy forwards TCP connections to a PostgreSQL server. Once armed, it forwards the next
// client message that carries a COMMIT, then drops that connection before any answer and
// refuses every connection until disarmed: a database lost exactly at commit.
type cutProxy struct {
	ln     net.Listener
	target string
	armed  atomic.Bool
	down   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
	})
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			_ = c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
		go p.forward(c, s)
	}
}

func (p *cutProxy) forward(c, s net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
			if p.armed.Load() && bytes.Contains(buf[:n], []byte("COMMIT")) {
				p.armed.Store(false)
				p.down.Store(true)
				p.closeAll()
				return
			}
		}
		if err != nil {
			_ = s.Close()
			return
		}
	}
}

func (p *cutProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// proxiedFixture is a fixture whose processor reaches PostgreSQL through a cutProxy, straight
// rather than through PgBouncer (which would end the server session itself when the client
// goes, another story); change adjusts the rest of its configuration.
func proxiedFixture(t *testing.T, change func(*processor.Config)) (*fixture, *cutProxy) {
	var proxy *cutProxy
	f := newFixture(t, func(c *processor.Config) {
		u, err := url.Parse(c.DirectURL)
		if err != nil {
			t.Fatal(err)
		}
		proxy = startCutProxy(t, u.Host)
		u.Host = proxy.ln.Addr().String()
		u.RawQuery = "default_query_exec_mode=cache_describe"
		c.DatabaseURL = u.String()
		if change != nil {
			change(c)
		}
	})
	return f, proxy
}

// TestCommitLostWithTheDatabase cuts the database connection right after a batch's COMMIT is
// sent and keeps the database unreachable: the committed transaction must not be reported as
// "not applied; safe to retry", and retrying with its key must find it, once.
func TestCommitLostWithTheDatabase(t *testing.T) {
	t.Parallel()
	f, proxy := proxiedFixture(t, func(c *processor.Config) { c.CommitResolveTimeout = time.Second })
	before := snapshot(t, f.db)
	body := transfer(f.aUSD, f.bUSD, 100, "USD")
	key := []string{"Idempotency-Key", "lost-at-commit"}

	proxy.armed.Store(true)
	r, err := f.ac.Do("POST", "/transactions", body, key...)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the answer is 503 outcome_unknown", func(t *testing.T) {
		p := assertProblem(t, r, http.StatusServiceUnavailable, "outcome_unknown")
		if strings.Contains(p.Detail, "safe to retry") {
			t.Errorf("detail %q claims the request was not applied", p.Detail)
		}
	})
	t.Run("the transaction was committed", func(t *testing.T) {
		if d := rowDelta(t, f.db, before); d["transactions"] != 1 {
			t.Errorf("database gained %v, want the one transaction", d)
		}
	})

	proxy.down.Store(false)
	t.Run("a retry with the key replays it", func(t *testing.T) {
		var retry *http.Response
		for deadline := time.Now().Add(10 * time.Second); ; {
			r, err := f.ac.Do("POST", "/transactions", body, key...)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status == http.StatusCreated || time.Now().After(deadline) {
				if r.Status != http.StatusCreated {
					t.Fatalf("retry: %d %s", r.Status, r.Body)
				}
				retry = &http.Response{StatusCode: r.Status, Header: r.Header}
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if retry.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("the retry was not a replay: Idempotent-Replayed %q", retry.Header.Get("Idempotent-Replayed"))
		}
		if d := rowDelta(t, f.db, before); d["transactions"] != 1 {
			t.Errorf("database gained %v after the retry, want still one transaction", d)
		}
	})
}

// TestIdleConnectionsDroppedUnderneath drops every database connection the processor holds
// while they are idle (as a PgBouncer or PostgreSQL restart does): the next transfers must
// succeed on new connections, not fail on the dead ones. (The caller's key is cached first:
// reads other than the batch's still fail once per dead connection.)
func TestIdleConnectionsDroppedUnderneath(t *testing.T) {
	t.Parallel()
	f, proxy := proxiedFixture(t, nil)
	f.ac.Must(t, http.StatusCreated, "POST", "/transactions", transfer(f.aUSD, f.bUSD, 1, "USD"))
	proxy.closeAll()
	for i := range 5 {
		r, err := f.ac.Do("POST", "/transactions", transfer(f.aUSD, f.bUSD, 1, "USD"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != http.StatusCreated {
			t.Errorf("transfer %d after the connections dropped: %d %s", i, r.Status, r.Body)
		}
	}
}
