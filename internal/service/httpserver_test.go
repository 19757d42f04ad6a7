package service_test

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"txn/internal/service"
)

// serveSlowly starts a server with one-second timeouts whose handler reads the whole body.
func serveSlowly(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, "body not read", http.StatusRequestTimeout)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	second := time.Second
	srv := service.NewHTTPServer(h, service.HTTPTimeouts{ReadHeader: second, Read: second, Write: second, Idle: second},
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// trickle writes s one byte every 100 ms until the server closes the connection or 10 s pass,
// and reports whether the server closed it.
func trickle(t *testing.T, conn net.Conn, s string) (closed bool) {
	t.Helper()
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, conn) // returns once the server closes the connection
	}()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		select {
		case <-gone:
			return true
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := conn.Write([]byte{s[i%len(s)]}); err != nil {
			<-gone
			return true
		}
	}
	return false
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestHTTPServerCutsOffSlowClients(t *testing.T) {
	addr := serveSlowly(t)

	t.Run("headers sent a byte at a time", func(t *testing.T) {
		conn := dial(t, addr)
		if !trickle(t, conn, "GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") {
			t.Error("the connection was still open after 10 s of trickled headers")
		}
	})
	t.Run("a body sent a byte at a time", func(t *testing.T) {
		conn := dial(t, addr)
		if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if !trickle(t, conn, "x") {
			t.Error("the connection was still open after 10 s of a trickled body")
		}
	})
	t.Run("an idle kept-alive connection", func(t *testing.T) {
		conn := dial(t, addr)
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || res.StatusCode != http.StatusNoContent {
			t.Fatalf("first request: %v %v", res, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		if !errors.Is(err, io.EOF) {
			t.Errorf("idle connection: read gave %v, want EOF from the server closing it", err)
		}
	})
}
