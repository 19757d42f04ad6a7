package loadgen

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recordingServer is a net/http server (what the load tester's target runs)
// that counts requests and connections and keeps the last request's details.
type recordingServer struct {
	*httptest.Server
	requests, conns atomic.Int64
	mu              sync.Mutex
	last            *http.Request
	lastBody        string
	handle          func(w http.ResponseWriter, r *http.Request)
}

func newRecordingServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *recordingServer {
	s := &recordingServer{handle: handle}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.last, s.lastBody = r, string(b)
		s.mu.Unlock()
		if s.handle != nil {
			s.handle(w, r)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func newTestClient(t *testing.T, url string, conns int, timeout time.Duration) *Client {
	t.Helper()
	c, err := NewClient(url, conns, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestClient(t *testing.T) {
	t.Run("a POST arrives with its headers and body, and its answer comes back", func(t *testing.T) {
		srv := newRecordingServer(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"x"}`))
		})
		c := newTestClient(t, srv.URL+"/base", 1, 5*time.Second)
		req := Request{Method: "POST", Path: "/api/v1/transactions?x=1", Header: []byte("Authorization: Bearer tk\r\nIdempotency-Key: k1\r\n"), Body: []byte(`{"a":1}`)}
		resp, err := c.Do(context.Background(), &req, 1024)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusCreated || string(resp.Body) != `{"id":"x"}` {
			t.Errorf("answer %d %q, want 201 {\"id\":\"x\"}", resp.Status, resp.Body)
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		r := srv.last
		if r.Method != "POST" || r.URL.RequestURI() != "/api/v1/transactions?x=1" {
			t.Errorf("server saw %s %s", r.Method, r.URL.RequestURI())
		}
		if r.Host != strings.TrimPrefix(srv.URL, "http://") {
			t.Errorf("Host %q, want the origin's", r.Host)
		}
		if r.Header.Get("Authorization") != "Bearer tk" || r.Header.Get("Idempotency-Key") != "k1" {
			t.Errorf("headers %v", r.Header)
		}
		if r.ContentLength != 7 || srv.lastBody != `{"a":1}` {
			t.Errorf("body %q (length %d), want {\"a\":1}", srv.lastBody, r.ContentLength)
		}
	})

	t.Run("sequential requests share one kept-alive connection", func(t *testing.T) {
		srv := newRecordingServer(t, nil)
		c := newTestClient(t, srv.URL, 4, 5*time.Second)
		for range 50 {
			req := Request{Method: "GET", Path: "/"}
			if resp, err := c.Do(context.Background(), &req, 16); err != nil || string(resp.Body) != "ok" {
				t.Fatalf("answer %q, %v", resp.Body, err)
			}
		}
		if n := srv.conns.Load(); n != 1 {
			t.Errorf("%d connections for 50 sequential requests, want 1", n)
		}
	})

	t.Run("a chunked body is read whole, kept up to the limit, and the connection reused", func(t *testing.T) {
		big := strings.Repeat("0123456789", 1000) // past net/http's 2 KB buffer: chunked
		srv := newRecordingServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, big) })
		c := newTestClient(t, srv.URL, 1, 5*time.Second)
		for i := range 3 {
			req := Request{Method: "GET", Path: "/"}
			resp, err := c.Do(context.Background(), &req, 100)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if string(resp.Body) != big[:100] {
				t.Errorf("request %d: kept %d bytes, want the first 100", i, len(resp.Body))
			}
		}
		if n := srv.conns.Load(); n != 1 {
			t.Errorf("%d connections, want 1: the chunked body was not read to its end", n)
		}
	})

	t.Run("Connection: close from the server makes the next request dial anew", func(t *testing.T) {
		srv := newRecordingServer(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
			_, _ = w.Write([]byte("bye"))
		})
		c := newTestClient(t, srv.URL, 1, 5*time.Second)
		for i := range 3 {
			req := Request{Method: "GET", Path: "/"}
			if resp, err := c.Do(context.Background(), &req, 16); err != nil || string(resp.Body) != "bye" {
				t.Fatalf("request %d: %q, %v", i, resp.Body, err)
			}
		}
		if n := srv.conns.Load(); n != 3 {
			t.Errorf("%d connections for 3 requests answered with Connection: close, want 3", n)
		}
	})

	t.Run("a replayable request on a connection the server closed is sent again, once", func(t *testing.T) {
		srv := newRecordingServer(t, nil)
		c := newTestClient(t, srv.URL, 1, 5*time.Second)
		req := Request{Method: "GET", Path: "/", Replayable: true}
		if _, err := c.Do(context.Background(), &req, 16); err != nil {
			t.Fatal(err)
		}
		srv.CloseClientConnections()
		resp, err := c.Do(context.Background(), &req, 16)
		if err != nil || resp.Status != 200 {
			t.Fatalf("after the server closed the connection: %d, %v; want 200", resp.Status, err)
		}
		if n := srv.requests.Load(); n != 2 {
			t.Errorf("server saw %d requests, want 2", n)
		}
	})

	t.Run("a request that is not replayable fails on a connection the server closed", func(t *testing.T) {
		srv := newRecordingServer(t, nil)
		c := newTestClient(t, srv.URL, 1, 5*time.Second)
		first := Request{Method: "GET", Path: "/"}
		if _, err := c.Do(context.Background(), &first, 16); err != nil {
			t.Fatal(err)
		}
		srv.CloseClientConnections()
		post := Request{Method: "POST", Path: "/", Body: []byte("x")}
		_, err := c.Do(context.Background(), &post, 16)
		if err == nil || ErrorCode(err) != "conn_error" {
			t.Errorf("error %v (%s), want a conn_error", err, ErrorCode(err))
		}
		// The next request dials a new connection.
		if _, err := c.Do(context.Background(), &first, 16); err != nil {
			t.Errorf("after the failure: %v", err)
		}
	})

	t.Run("the timeout ends a stalled request as a timeout, which is not replayed", func(t *testing.T) {
		release := make(chan struct{})
		srv := newRecordingServer(t, func(http.ResponseWriter, *http.Request) { <-release })
		defer close(release)
		c := newTestClient(t, srv.URL, 1, 100*time.Millisecond)
		req := Request{Method: "GET", Path: "/", Replayable: true}
		_, err := c.Do(context.Background(), &req, 16)
		if ErrorCode(err) != "timeout" {
			t.Errorf("error %v, want a timeout", err)
		}
		if n := srv.requests.Load(); n != 1 {
			t.Errorf("server saw %d requests, want 1", n)
		}
	})

	t.Run("a cancelled context ends the request as canceled", func(t *testing.T) {
		release := make(chan struct{})
		srv := newRecordingServer(t, func(http.ResponseWriter, *http.Request) { <-release })
		defer close(release)
		c := newTestClient(t, srv.URL, 1, 10*time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		req := Request{Method: "GET", Path: "/"}
		_, err := c.Do(ctx, &req, 16)
		if !errors.Is(err, context.Canceled) || ErrorCode(err) != "canceled" {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})

	t.Run("no more connections are opened than the limit", func(t *testing.T) {
		var open, peak atomic.Int64
		srv := newRecordingServer(t, func(w http.ResponseWriter, _ *http.Request) {
			n := open.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			open.Add(-1)
		})
		c := newTestClient(t, srv.URL, 3, 5*time.Second)
		var wg sync.WaitGroup
		for range 30 {
			wg.Go(func() {
				req := Request{Method: "GET", Path: "/"}
				if _, err := c.Do(context.Background(), &req, 16); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := srv.conns.Load(); n > 3 {
			t.Errorf("%d connections opened, limit 3", n)
		}
		if p := peak.Load(); p > 3 {
			t.Errorf("%d requests in flight at once, limit 3", p)
		}
	})
}

// rawServer answers every connection with the bytes of answer, then closes it.
func rawServer(t *testing.T, answer string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for { // the request's head
					line, err := r.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				_, _ = io.WriteString(c, answer)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestClientBadAnswers(t *testing.T) {
	t.Run("an answer that is not HTTP is a protocol error", func(t *testing.T) {
		c := newTestClient(t, rawServer(t, "SSH-2.0-OpenSSH\r\n\r\n"), 1, 5*time.Second)
		req := Request{Method: "GET", Path: "/"}
		if _, err := c.Do(context.Background(), &req, 16); !errors.Is(err, ErrProtocol) {
			t.Errorf("error %v, want ErrProtocol", err)
		}
	})

	t.Run("a body cut short keeps the status and reports the error", func(t *testing.T) {
		c := newTestClient(t, rawServer(t, "HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{\"id\":"), 1, 5*time.Second)
		req := Request{Method: "POST", Path: "/", Body: []byte("{}")}
		resp, err := c.Do(context.Background(), &req, 1024)
		if resp.Status != 201 {
			t.Errorf("status %d, want 201", resp.Status)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("error %v, want unexpected EOF", err)
		}
	})

	t.Run("a body without a length runs to the end of the connection", func(t *testing.T) {
		c := newTestClient(t, rawServer(t, "HTTP/1.0 200 OK\r\n\r\nall of it"), 1, 5*time.Second)
		for i := range 2 {
			req := Request{Method: "GET", Path: "/"}
			resp, err := c.Do(context.Background(), &req, 1024)
			if err != nil || string(resp.Body) != "all of it" {
				t.Errorf("request %d: %q, %v", i, resp.Body, err)
			}
		}
	})

	t.Run("interim 1xx answers are skipped", func(t *testing.T) {
		c := newTestClient(t, rawServer(t, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 1, 5*time.Second)
		req := Request{Method: "GET", Path: "/"}
		resp, err := c.Do(context.Background(), &req, 16)
		if err != nil || resp.Status != 200 || string(resp.Body) != "ok" {
			t.Errorf("answer %d %q, %v; want 200 ok", resp.Status, resp.Body, err)
		}
	})

	t.Run("a URL that is not http or https is refused", func(t *testing.T) {
		for _, u := range []string{"ftp://x", "127.0.0.1:80", "http://"} {
			if _, err := NewClient(u, 1, 0); err == nil {
				t.Errorf("NewClient(%q) succeeded", u)
			}
		}
	})
}
