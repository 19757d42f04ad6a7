package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"txn/internal/ledger"
	"txn/internal/notify"
)

// The Standard Webhooks reference vector: a receiver's stock library must accept what we send.
func TestSignMatchesTheStandardWebhooksVector(t *testing.T) {
	key, err := notify.SecretKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := notify.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!"} {
		if _, err := notify.SecretKey(bad); err == nil {
			t.Errorf("secret %q accepted", bad)
		}
	}
}

// receiver is a webhook endpoint on 127.0.0.1 that counts its calls.
func receiver(t *testing.T, h http.HandlerFunc) (url string, calls *atomic.Int64) {
	calls = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, calls
}

const secret = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ=="

func TestSendSignsThePost(t *testing.T) {
	body := []byte(`{"id":"n1"}`)
	url, calls := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ts := r.Header.Get("webhook-timestamp")
		// Verified independently of Sign.
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		mac := hmac.New(sha256.New, key)
		io.WriteString(mac, r.Header.Get("webhook-id")+"."+ts+"."+string(b))
		want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		sec, _ := strconv.ParseInt(ts, 10, 64)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get("webhook-id") != "n1" || string(b) != string(body) ||
			r.Header.Get("webhook-signature") != want || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
			t.Errorf("bad delivery: %s %v %s", r.Method, r.Header, b)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s := notify.NewWebhookSender(time.Second, true)
	if err := s.Send(context.Background(), url, secret, "n1", body); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d calls", calls.Load())
	}
}

func TestSendFailures(t *testing.T) {
	good, goodCalls := receiver(t, func(w http.ResponseWriter, r *http.Request) {})
	redirect, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, good, http.StatusFound) })
	failing, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	gone, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) })
	slow, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // then the server notices the client hanging up
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	s := notify.NewWebhookSender(300*time.Millisecond, true)
	for _, c := range []struct {
		name, url, secret, class, msg string
	}{
		{"redirect", redirect, secret, "redirect", "302 Found: redirects are not followed"},
		{"500", failing, secret, "http_5xx", "webhook answered 500 Internal Server Error"},
		{"410", gone, secret, "http_4xx", "webhook answered 410 Gone"},
		{"slow", slow, secret, "timeout", "did not answer within 300ms"},
		{"bad secret", good, "nope", "error", "whsec_"},
		{"closed port", "http://127.0.0.1:1/", secret, "error", "webhook request failed"},
	} {
		start := time.Now()
		err := s.Send(context.Background(), c.url, c.secret, "n1", []byte(`{}`))
		if notify.ClassOf(err) != c.class || err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v (class %s), want class %s and %q", c.name, err, notify.ClassOf(err), c.class, c.msg)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s took %s, beyond the timeout", c.name, took)
		}
	}
	if n := goodCalls.Load(); n != 0 {
		t.Errorf("the redirect was followed (%d calls)", n)
	}
}

func TestSendRefusesPrivateTargets(t *testing.T) {
	url, calls := receiver(t, func(w http.ResponseWriter, r *http.Request) {})
	s := notify.NewWebhookSender(time.Second, false)
	err := s.Send(context.Background(), url, secret, "n1", []byte(`{}`))
	if notify.ClassOf(err) != "refused" {
		t.Fatalf("loopback target: %v", err)
	}
	port := url[strings.LastIndex(url, ":")+1:]
	err = s.Send(context.Background(), "http://localhost:"+port, secret, "n1", []byte(`{}`))
	if notify.ClassOf(err) != "refused" {
		t.Fatalf("localhost target: %v", err)
	}
	// Below the URL check, the dialer refuses every non-public address a name resolves to.
	for _, addr := range []string{"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port, "10.1.2.3:80", "169.254.169.254:80"} {
		if c, err := notify.CheckedDial(false)(context.Background(), "tcp", addr); err == nil || !strings.Contains(err.Error(), "refused") {
			if c != nil {
				c.Close()
			}
			t.Errorf("dial %s: %v, want refused", addr, err)
		}
	}
	t.Run("the user sees no internal address", func(t *testing.T) {
		host, _ := os.Hostname()
		ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
		if err != nil || len(ips) == 0 || ledger.PublicAddr(ips[0]) {
			t.Skipf("this host's name %q does not resolve to a private address", host)
		}
		err = s.Send(context.Background(), "http://"+host+":"+port, secret, "n1", []byte(`{}`))
		var se *notify.SendError
		if !errors.As(err, &se) || se.Class != "refused" {
			t.Fatalf("%s resolving to %s: %v, want refused", host, ips[0], err)
		}
		if strings.Contains(se.Error(), ips[0].String()) {
			t.Errorf("the message a user sees names the address: %q", se.Error())
		}
		if !strings.Contains(se.Detail, ips[0].String()) {
			t.Errorf("the operator's detail %q does not name the address", se.Detail)
		}
	})
	if calls.Load() != 0 {
		t.Fatalf("a refused target was called %d times", calls.Load())
	}
	c, err := notify.CheckedDial(true)(context.Background(), "tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("dial with private targets allowed: %v", err)
	}
	c.Close()
}

type countingTargets struct {
	calls atomic.Int64
	gate  chan struct{} // when set, each lookup waits for it to close
}

func (c *countingTargets) WebhookTarget(_ context.Context, id uuid.UUID) (*string, string, error) {
	c.calls.Add(1)
	if c.gate != nil {
		<-c.gate
	}
	if id == uuid.Nil {
		return nil, "", ledger.ErrNotFound
	}
	u := "https://example.com/" + id.String()
	return &u, secret, nil
}

func TestTargetCache(t *testing.T) {
	next := &countingTargets{}
	c := notify.NewTargetCache(next, 100*time.Millisecond, 2)
	ctx := context.Background()
	a, b, d := uuid.New(), uuid.New(), uuid.New()
	for range 3 {
		if u, _, err := c.WebhookTarget(ctx, a); err != nil || !strings.HasSuffix(*u, a.String()) {
			t.Fatal(u, err)
		}
		if _, _, err := c.WebhookTarget(ctx, uuid.Nil); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if n := next.calls.Load(); n != 2 {
		t.Fatalf("%d lookups, want 2 (cached, not-found included)", n)
	}
	_, _, _ = c.WebhookTarget(ctx, b) // over the bound: the cache starts over
	_, _, _ = c.WebhookTarget(ctx, d)
	time.Sleep(150 * time.Millisecond)
	_, _, _ = c.WebhookTarget(ctx, a)
	if n := next.calls.Load(); n != 5 {
		t.Fatalf("%d lookups, want 5 (expired entries are read again)", n)
	}
}

func TestTargetCacheSharesConcurrentMisses(t *testing.T) {
	next := &countingTargets{gate: make(chan struct{})}
	c := notify.NewTargetCache(next, time.Minute, 0)
	user := uuid.New()
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if u, _, err := c.WebhookTarget(context.Background(), user); err != nil || !strings.HasSuffix(*u, user.String()) {
				wrong.Add(1)
			}
		}()
	}
	for next.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the other callers reach the cache while the read is held
	close(next.gate)
	wg.Wait()
	if n := next.calls.Load(); n != 1 {
		t.Errorf("50 concurrent misses for one user made %d reads, want 1", n)
	}
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d callers got a wrong answer", n)
	}
}
