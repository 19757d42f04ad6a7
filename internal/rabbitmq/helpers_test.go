package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"txn/internal/pipeline"
)

// testTopology gives each test its own exchange and queues, deleted when it ends.
func testTopology(t testing.TB, rabbitURL string, delays ...time.Duration) Topology {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	q := "test." + name + "." + hex.EncodeToString(b)
	top := Topology{Exchange: q + ".x", Queue: q, RetryDelays: delays}.withDefaults()
	t.Cleanup(func() {
		conn, err := amqp.Dial(rabbitURL)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		queues := []string{top.Queue, top.ParkingQueue}
		for i := range top.RetryDelays {
			queues = append(queues, top.RetryQueue(i))
		}
		for _, q := range queues {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				t.Errorf("cleanup: delete queue %s: %v", q, err)
				return
			}
		}
		if err := ch.ExchangeDelete(top.Exchange, false, false); err != nil {
			t.Errorf("cleanup: delete exchange %s: %v", top.Exchange, err)
		}
	})
	return top
}

// adminChannel is a plain channel for the test's own inspection and sabotage.
func adminChannel(t testing.TB, rabbitURL string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(rabbitURL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return ch
}

func queueLen(t testing.TB, ch *amqp.Channel, q string) int {
	t.Helper()
	st, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect %s: %v", q, err)
	}
	return st.Messages
}

func makeTasks(n int) []pipeline.Task {
	out := make([]pipeline.Task, n)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := range out {
		out[i] = pipeline.Task{NotificationID: uuid.New(), EventID: uuid.New(), UserID: uuid.New(),
			TransactionID: uuid.New(), Kind: "transfer_received", Message: fmt.Sprintf("Transfer %d received", i),
			Amount: int64(i + 1), Currency: "USD", CreatedAt: now}
	}
	return out
}

func newPublisher(t testing.TB, rabbitURL string, top Topology) *Publisher {
	t.Helper()
	p, err := NewPublisher(PublisherConfig{URL: rabbitURL, Topology: top})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// consuming runs Consume in the background; stop cancels it and returns what Consume returned.
func consuming(t testing.TB, cfg ConsumerConfig, h Handler) (stop func() error) {
	t.Helper()
	c, err := NewConsumer(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Consume(ctx, h) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(30 * time.Second):
				result = errors.New("Consume did not return 30s after cancel")
			}
		})
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// getParked takes the next message from the parking queue.
func getParked(t testing.TB, ch *amqp.Channel, top Topology) amqp.Delivery {
	t.Helper()
	var d amqp.Delivery
	eventually(t, 10*time.Second, "a parked message", func() bool {
		var ok bool
		var err error
		if d, ok, err = ch.Get(top.ParkingQueue, true); err != nil {
			t.Fatalf("get: %v", err)
		}
		return ok
	})
	return d
}

// proxy forwards TCP to the broker and can cut every connection, to fake a network failure
// without touching the shared server.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t testing.TB, rabbitURL string) (*proxy, string) {
	t.Helper()
	u, err := url.Parse(rabbitURL)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
