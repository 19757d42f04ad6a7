// Package testenv gives integration tests real servers: a fresh PostgreSQL database (reached
// through PgBouncer and directly), a private Redis key prefix, and a processor serving on a
// random loopback port. The servers are the local stack's (`make test` starts them); a test
// that cannot reach them fails rather than skips.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"txn/internal/config"
	"txn/internal/ledger"
	"txn/internal/processor"
	"txn/internal/service"
)

// env is the variable's value, or the local stack's default.
func env(key string) string { return config.New(nil).Setting(key) }

// Integration skips t under -short; integration tests call it first.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the local servers (make test)")
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Database creates an empty database for t and drops it afterwards. pooled goes through
// PgBouncer (as the services connect), direct straight to PostgreSQL.
func Database(t testing.TB) (pooled, direct string) {
	t.Helper()
	Integration(t)
	pooledBase := env("DATABASE_URL")
	directBase := env("DATABASE_DIRECT_URL")
	name := "test_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, directBase)
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable at %s (start the servers with `make test`): %v", directBase, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, directBase)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return withDB(t, pooledBase, name), withDB(t, directBase, name)
}

func withDB(t testing.TB, raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("database URL %q: %v", raw, err)
	}
	u.Path = "/" + db
	return u.String()
}

// Redis returns the Redis URL and a key prefix no other test uses.
func Redis(t testing.TB) (url, prefix string) {
	Integration(t)
	return env("REDIS_URL"), "test:" + randomHex(6) + ":"
}

// Processor is an in-process processor for one test.
type Processor struct {
	URL        string // e.g. http://127.0.0.1:41234
	AdminToken string
	DirectURL  string // its database, directly
	Config     processor.Config
	stop       func()
}

// Stop shuts the processor down as SIGTERM would and waits for it.
func (p *Processor) Stop() { p.stop() }

// StartProcessor starts a processor on a fresh database; change adjusts its configuration.
func StartProcessor(t testing.TB, change func(*processor.Config)) *Processor {
	t.Helper()
	pooled, direct := Database(t)
	redisURL, prefix := Redis(t)
	cfg := processor.Config{
		DatabaseURL: pooled, DirectURL: direct, MaxConns: 16,
		RedisURL: redisURL, RedisPrefix: prefix,
		AdminToken:      "admin-" + randomHex(8),
		AllowPrivate:    true,
		Batch:           ledger.BatcherConfig{MaxBatch: 512, Workers: 4},
		ShutdownTimeout: 10 * time.Second,
		HTTPTimeouts:    service.DefaultHTTPTimeouts,
	}
	if change != nil {
		change(&cfg)
	}
	level := slog.LevelWarn
	if os.Getenv("TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
	app, err := processor.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("start processor: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ln) }()
	stopped := false
	p := &Processor{URL: "http://" + ln.Addr().String(), AdminToken: cfg.AdminToken, DirectURL: direct, Config: cfg}
	p.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor stopped with: %v", err)
		}
		app.Close()
	}
	t.Cleanup(p.Stop)
	return p
}

// Client calls an API with one token.
type Client struct {
	Base  string
	Token string
	HTTP  *http.Client
}

// Client returns a client of p's API authenticated with token.
func (p *Processor) Client(token string) *Client {
	return &Client{Base: p.URL + "/api/v1", Token: token, HTTP: sharedHTTP}
}

var sharedHTTP = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute},
}

// Response is a decoded answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing t on malformed JSON.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Map decodes the body as an object.
func (r *Response) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// Do sends a request. body is sent as is when it is []byte or string, else encoded as JSON;
// headers are name, value pairs.
func (c *Client) Do(method, path string, body any, headers ...string) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" && headers[i] == "Content-Type" {
			req.Header.Del("Content-Type")
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Must is Do that fails t on a transport error or a status other than want.
func (c *Client) Must(t testing.TB, want int, method, path string, body any, headers ...string) *Response {
	t.Helper()
	r, err := c.Do(method, path, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// User is a created user with its key.
type User struct {
	ID     string `json:"id"`
	APIKey string `json:"api_key"`
}

// CreateUser creates a user through the admin client c.
func (c *Client) CreateUser(t testing.TB, name string, tags ...string) User {
	t.Helper()
	var u User
	c.Must(t, http.StatusCreated, "POST", "/users", map[string]any{
		"name": name, "email": fmt.Sprintf("%s-%s@example.com", name, randomHex(4)), "tags": tags,
	}).JSON(t, &u)
	return u
}

// CreateAccount opens an account for userID through the admin client c and returns its id.
func (c *Client) CreateAccount(t testing.TB, userID, currency string) string {
	t.Helper()
	var a struct {
		ID string `json:"id"`
	}
	c.Must(t, http.StatusCreated, "POST", "/accounts", map[string]any{"user_id": userID, "currency": currency}).JSON(t, &a)
	return a.ID
}

// Deposit credits an account through the admin client c.
func (c *Client) Deposit(t testing.TB, accountID string, amount int64, currency string) {
	t.Helper()
	c.Must(t, http.StatusCreated, "POST", "/transactions", map[string]any{
		"type": "deposit", "to_account_id": accountID, "amount": amount, "currency": currency})
}

// Balance reads an account's balance through c.
func (c *Client) Balance(t testing.TB, accountID string) int64 {
	t.Helper()
	var a struct {
		Balance int64 `json:"balance"`
	}
	c.Must(t, http.StatusOK, "GET", "/accounts/"+accountID, nil).JSON(t, &a)
	return a.Balance
}
