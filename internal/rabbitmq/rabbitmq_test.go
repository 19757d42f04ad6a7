package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	"txn/internal/testenv"
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

func TestConfig(t *testing.T) {
	top := Topology{RetryDelays: []time.Duration{time.Second, 5 * time.Second}}.withDefaults()
	if top.Exchange != "txn.notifications" || top.Queue != "notifications" || top.RoutingKey != "notifications" ||
		top.ParkingQueue != "notifications.parked" || top.RetryQueue(0) != "notifications.retry.1s" ||
		top.RetryQueue(7) != "notifications.retry.5s" {
		t.Errorf("defaults: %+v, retry queues %s, %s", top, top.RetryQueue(0), top.RetryQueue(7))
	}
	cfg, err := ConsumerConfig{URL: "amqp://localhost/", Topology: top}.withDefaults()
	if err != nil || cfg.MaxAttempts != 3 || cfg.Workers != 8 || cfg.Prefetch != 16 {
		t.Errorf("consumer defaults: %+v, %v", cfg, err)
	}
	for _, bad := range []ConsumerConfig{
		{URL: "amqp://localhost/", Workers: 4, Prefetch: 2},
		{URL: "amqp://localhost/", Topology: Topology{RetryDelays: []time.Duration{time.Microsecond}}},
		{URL: "http://localhost/"},
		{},
	} {
		if _, err := NewConsumer(bad, nil); err == nil {
			t.Errorf("NewConsumer(%+v) accepted", bad)
		}
	}
	for h, want := range map[any]int{nil: 1, int64(3): 3, int32(2): 2, int8(0): 1, "4": 1} {
		if got := attemptOf(amqp.Table{HeaderAttempt: h}); got != want {
			t.Errorf("attemptOf(%v) = %d, want %d", h, got, want)
		}
	}
}

func TestPublishConsumeExactlyOnce(t *testing.T) {
	rurl := testenv.RabbitURL(t)
	top := testTopology(t, rurl)
	p := newPublisher(t, rurl, top)
	const n, batches = 1000, 4
	tasks := makeTasks(n)
	want := map[string]pipeline.Task{}
	for _, task := range tasks {
		want[task.NotificationID.String()] = task
	}

	// Concurrent calls share the publisher's channel by taking turns.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make(chan error, batches)
	for i := range batches {
		go func() { errs <- p.PublishTasks(ctx, tasks[i*n/batches:(i+1)*n/batches]) }()
	}
	for range batches {
		if err := <-errs; err != nil {
			t.Fatalf("PublishTasks: %v", err)
		}
	}
	if got := queueLen(t, adminChannel(t, rurl), top.Queue); got != batches {
		t.Errorf("%d tasks in %d calls are %d messages, want %d (up to 256 tasks each)", n, batches, got, batches)
	}

	var mu sync.Mutex
	seen := map[string]int{}
	var bad []string
	stop := consuming(t, ConsumerConfig{URL: rurl, Topology: top}, func(_ context.Context, d Delivery) Outcome {
		mu.Lock()
		defer mu.Unlock()
		seen[d.MessageID]++
		w, ok := want[d.MessageID]
		if !ok || d.Task.NotificationID.String() != d.MessageID || d.Attempt != 1 ||
			d.Task.Message != w.Message || d.Task.Amount != w.Amount || !d.Task.CreatedAt.Equal(w.CreatedAt) {
			bad = append(bad, fmt.Sprintf("%+v", d))
		}
		return Done()
	})
	eventually(t, 30*time.Second, "every task consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
	time.Sleep(300 * time.Millisecond) // room for a stray duplicate to show up
	if err := stop(); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s consumed %d times", id, c)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d deliveries do not match what was published, first: %s", len(bad), bad[0])
	}
	ch := adminChannel(t, rurl)
	if left := queueLen(t, ch, top.Queue); left != 0 {
		t.Errorf("%d messages left in the queue after every ack", left)
	}
}

func TestRetryBacksOffThroughDelayQueues(t *testing.T) {
	rurl := testenv.RabbitURL(t)
	delays := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
	top := testTopology(t, rurl, delays...)
	p := newPublisher(t, rurl, top)

	type seenAt struct {
		attempt int
		lastErr string
		at      time.Time
	}
	calls := make(chan seenAt, 10)
	consuming(t, ConsumerConfig{URL: rurl, Topology: top, MaxAttempts: 5}, func(_ context.Context, d Delivery) Outcome {
		calls <- seenAt{d.Attempt, d.LastError, time.Now()}
		if d.Attempt < 3 {
			return Retry(fmt.Sprintf("webhook answered 503 (attempt %d)", d.Attempt))
		}
		return Done()
	})
	if err := p.PublishTasks(context.Background(), makeTasks(1)); err != nil {
		t.Fatal(err)
	}
	var got []seenAt
	for len(got) < 3 {
		select {
		case c := <-calls:
			got = append(got, c)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d deliveries: %+v", len(got), got)
		}
	}
	for i, c := range got {
		if c.attempt != i+1 {
			t.Fatalf("delivery %d has attempt %d, want %d", i, c.attempt, i+1)
		}
	}
	if got[0].lastErr != "" || got[2].lastErr != "webhook answered 503 (attempt 2)" {
		t.Errorf("last errors %q, %q", got[0].lastErr, got[2].lastErr)
	}
	// Loose bounds: the floor is the TTL, the ceiling only catches a delay that is not working.
	for i, d := range delays {
		gap := got[i+1].at.Sub(got[i].at)
		t.Logf("attempt %d → %d after %v (delay %v)", i+1, i+2, gap.Round(time.Millisecond), d)
		if gap < d-10*time.Millisecond || gap > d+3*time.Second {
			t.Errorf("attempt %d came %v after attempt %d, want about %v", i+2, gap, i+1, d)
		}
	}
	select {
	case c := <-calls:
		t.Fatalf("a delivery after Done: %+v", c)
	case <-time.After(500 * time.Millisecond):
	}
	ch := adminChannel(t, rurl)
	if n := queueLen(t, ch, top.ParkingQueue); n != 0 {
		t.Errorf("%d parked, want 0", n)
	}
}

func TestParkAfterMaxAttemptsAndOnRequest(t *testing.T) {
	rurl := testenv.RabbitURL(t)
	top := testTopology(t, rurl, 50*time.Millisecond)
	p := newPublisher(t, rurl, top)
	ch := adminChannel(t, rurl)
	tasks := makeTasks(2)
	retried, parked := tasks[0], tasks[1]

	var mu sync.Mutex
	attempts := map[string][]int{}
	consuming(t, ConsumerConfig{URL: rurl, Topology: top, MaxAttempts: 3}, func(_ context.Context, d Delivery) Outcome {
		mu.Lock()
		attempts[d.MessageID] = append(attempts[d.MessageID], d.Attempt)
		mu.Unlock()
		if d.Task.NotificationID == parked.NotificationID {
			return Park("webhook_url refused: private address")
		}
		return Retry("webhook timed out")
	})
	if err := p.PublishTasks(context.Background(), []pipeline.Task{parked}); err != nil {
		t.Fatal(err)
	}
	d := getParked(t, ch, top)
	if d.MessageId != parked.NotificationID.String() || d.Headers[HeaderParkReason] != "webhook_url refused: private address" ||
		attemptOf(d.Headers) != 1 || d.DeliveryMode != amqp.Persistent {
		t.Errorf("parked on request: id %s, headers %v, mode %d", d.MessageId, d.Headers, d.DeliveryMode)
	}

	if err := p.PublishTasks(context.Background(), []pipeline.Task{retried}); err != nil {
		t.Fatal(err)
	}
	d = getParked(t, ch, top)
	var task pipeline.Task
	if err := json.Unmarshal(d.Body, &task); err != nil || task.NotificationID != retried.NotificationID {
		t.Errorf("parked body %s (%v), want task %s", d.Body, err, retried.NotificationID)
	}
	if want := "gave up after 3 attempts: webhook timed out"; d.MessageId != retried.NotificationID.String() ||
		d.Headers[HeaderParkReason] != want || attemptOf(d.Headers) != 3 {
		t.Errorf("parked after retries: id %s, headers %v, want reason %q", d.MessageId, d.Headers, want)
	}
	mu.Lock()
	if got := fmt.Sprint(attempts[retried.NotificationID.String()]); got != "[1 2 3]" {
		t.Errorf("attempts %s, want [1 2 3]", got)
	}
	mu.Unlock()

	// A body that is not a task never reaches the handler.
	if err := ch.Publish(top.Exchange, top.RoutingKey, false, false, amqp.Publishing{MessageId: "junk", Body: []byte("{")}); err != nil {
		t.Fatal(err)
	}
	d = getParked(t, ch, top)
	if reason, _ := d.Headers[HeaderParkReason].(string); d.MessageId != "junk" || !strings.HasPrefix(reason, "undecodable task") {
		t.Errorf("junk parked as %s with %v", d.MessageId, d.Headers)
	}
	mu.Lock()
	defer mu.Unlock()
	if _, ok := attempts["junk"]; ok {
		t.Error("the handler saw the junk message")
	}
}

func TestMessageOfSeveralTasksSettlesEachOnItsOwn(t *testing.T) {
	rurl := testenv.RabbitURL(t)
	top := testTopology(t, rurl, 50*time.Millisecond)
	p, err := NewPublisher(PublisherConfig{URL: rurl, Topology: top, MaxTasksPerMessage: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ch := adminChannel(t, rurl)
	tasks := makeTasks(3)
	done, retried, parked := tasks[0], tasks[1], tasks[2]

	var mu sync.Mutex
	calls := map[uuid.UUID][]int{}
	consuming(t, ConsumerConfig{URL: rurl, Topology: top, MaxAttempts: 5}, func(_ context.Context, d Delivery) Outcome {
		mu.Lock()
		defer mu.Unlock()
		if d.MessageID != d.Task.NotificationID.String() {
			t.Errorf("delivery of task %s has message id %s", d.Task.NotificationID, d.MessageID)
		}
		calls[d.Task.NotificationID] = append(calls[d.Task.NotificationID], d.Attempt)
		switch {
		case d.Task.NotificationID == parked.NotificationID:
			return Park("refused")
		case d.Task.NotificationID == retried.NotificationID && d.Attempt == 1:
			return Retry("webhook answered 503")
		}
		return Done()
	})
	if err := p.PublishTasks(context.Background(), tasks); err != nil {
		t.Fatal(err)
	}
	d := getParked(t, ch, top)
	got, err := DecodeTasks(d.Body)
	if err != nil || len(got) != 1 || got[0].NotificationID != parked.NotificationID || d.MessageId != parked.NotificationID.String() {
		t.Errorf("the parked message holds %v (%v) as %s, want only task %s", got, err, d.MessageId, parked.NotificationID)
	}
	eventually(t, 10*time.Second, "the retried task's second attempt", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls[retried.NotificationID]) == 2
	})
	time.Sleep(200 * time.Millisecond) // room for a stray redelivery to show up
	mu.Lock()
	defer mu.Unlock()
	for task, want := range map[uuid.UUID]string{done.NotificationID: "[1]", retried.NotificationID: "[1 2]", parked.NotificationID: "[1]"} {
		if got := fmt.Sprint(calls[task]); got != want {
			t.Errorf("task %s was handled at attempts %s, want %s", task, got, want)
		}
	}
}

func TestPublishErrors(t *testing.T) {
	rurl := testenv.RabbitURL(t)
	top := testTopology(t, rurl)
	p := newPublisher(t, rurl, top)
	ch := adminChannel(t, rurl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	// Unroutable: the work queue is no longer bound. mandatory makes the broker return it.
	if err := ch.QueueUnbind(top.Queue, top.RoutingKey, top.Exchange, nil); err != nil {
		t.Fatal(err)
	}
	err := p.PublishTasks(ctx, makeTasks(3))
	if err == nil || !strings.Contains(err.Error(), "unroutable") {
		t.Fatalf("publish with no binding: %v, want an unroutable error", err)
	}
	t.Logf("unroutable: %v", err)

	// The exchange is gone while the publisher's channel is open (Ping reopened it after the
	// failure): the broker closes the channel and the pending confirms fail.
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := ch.ExchangeDelete(top.Exchange, false, false); err != nil {
		t.Fatal(err)
	}
	err = p.PublishTasks(ctx, makeTasks(3))
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		t.Fatalf("publish to a missing exchange: %v, want a 404", err)
	}
	t.Logf("missing exchange: %v", err)

	// The next call opens a new channel and redeclares the topology.
	if err := p.PublishTasks(ctx, makeTasks(5)); err != nil {
		t.Fatalf("publish after the failures: %v", err)
	}
	if n := queueLen(t, ch, top.Queue); n != 1 {
		t.Errorf("%d messages in the queue, want only the confirmed one (5 tasks)", n)
	}

	bad, err := NewPublisher(PublisherConfig{URL: "amqp://guest:guest@127.0.0.1:1/", Topology: top})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.PublishTasks(ctx, makeTasks(1)); err == nil {
		t.Error("publish with no broker succeeded")
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := p.PublishTasks(ctx, makeTasks(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("publish after Close: %v, want ErrClosed", err)
	}
}

func TestSlowHandlerDoesNotBlockOthers(t *testing.T) {
	rurl := testenv.RabbitURL(t)
	top := testTopology(t, rurl)
	p := newPublisher(t, rurl, top)
	tasks := makeTasks(20)
	slow := tasks[0].NotificationID
	release := make(chan struct{})
	var mu sync.Mutex
	done := map[uuid.UUID]bool{}
	consuming(t, ConsumerConfig{URL: rurl, Topology: top, Workers: 4, Prefetch: 8}, func(_ context.Context, d Delivery) Outcome {
		if d.Task.NotificationID == slow {
			<-release
		}
		mu.Lock()
		done[d.Task.NotificationID] = true
		mu.Unlock()
		return Done()
	})
	if err := p.PublishTasks(context.Background(), tasks); err != nil {
		t.Fatal(err)
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(done) }
	eventually(t, 10*time.Second, "the 19 other tasks", func() bool { return count() == 19 })
	close(release)
	eventually(t, 10*time.Second, "the slow task", func() bool { return count() == 20 })
}

func TestGracefulStop(t *testing.T) {
	rurl := testenv.RabbitURL(t)
	top := testTopology(t, rurl)
	p := newPublisher(t, rurl, top)
	started := make(chan struct{})
	release := make(chan struct{})
	var calls int
	var ctxErr error
	stop := consuming(t, ConsumerConfig{URL: rurl, Topology: top, Workers: 1, Prefetch: 4}, func(ctx context.Context, d Delivery) Outcome {
		calls++ // one worker: no race
		if calls == 1 {
			close(started)
			<-release
			ctxErr = ctx.Err()
		}
		return Done()
	})
	for _, task := range makeTasks(5) { // five messages
		if err := p.PublishTasks(context.Background(), []pipeline.Task{task}); err != nil {
			t.Fatal(err)
		}
	}
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Consume returned (%v) with a handler in progress", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Consume: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Consume did not return after the last handler finished")
	}
	if ctxErr != nil {
		t.Errorf("the in-flight handler's ctx was cancelled: %v", ctxErr)
	}
	if calls != 1 {
		t.Errorf("%d handler calls after cancel, want only the one in progress", calls)
	}
	// The one in progress was acked; the prefetched four went back to the queue.
	ch := adminChannel(t, rurl)
	if n := queueLen(t, ch, top.Queue); n != 4 {
		t.Errorf("%d messages in the queue, want 4", n)
	}
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

func TestReconnectAfterConnectionLoss(t *testing.T) {
	rurl := testenv.RabbitURL(t)
	top := testTopology(t, rurl)
	prx, purl := newProxy(t, rurl)
	p := newPublisher(t, purl, top)
	var mu sync.Mutex
	seen := map[string]bool{}
	consuming(t, ConsumerConfig{URL: purl, Topology: top}, func(_ context.Context, d Delivery) Outcome {
		mu.Lock()
		seen[d.MessageID] = true
		mu.Unlock()
		return Done()
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := p.PublishTasks(ctx, makeTasks(10)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "10 tasks before the cut", func() bool { return count() == 10 })
	prx.cut()

	// The call that meets the dead connection may fail; a following one must redial.
	tasks := makeTasks(10)
	var tries int
	for {
		tries++
		err := p.PublishTasks(ctx, tasks)
		if err == nil {
			break
		}
		if tries == 3 {
			t.Fatalf("publish after the cut, try %d: %v", tries, err)
		}
		t.Logf("publish after the cut, try %d: %v", tries, err)
	}
	eventually(t, 15*time.Second, "10 more tasks after the cut", func() bool { return count() == 20 })
}

// BenchmarkPublishTasks publishes batches of 1,000 tasks under confirms.
func BenchmarkPublishTasks(b *testing.B) {
	rurl := testenv.RabbitURL(b)
	top := testTopology(b, rurl)
	p := newPublisher(b, rurl, top)
	ctx := context.Background()
	tasks := makeTasks(1000)
	if err := p.Ping(ctx); err != nil {
		b.Fatal(err)
	}
	ch := adminChannel(b, rurl)
	batches := 0
	for b.Loop() {
		if err := p.PublishTasks(ctx, tasks); err != nil {
			b.Fatal(err)
		}
		batches++
	}
	b.ReportMetric(float64(batches*len(tasks))/b.Elapsed().Seconds(), "msgs/s")
	b.StopTimer()
	if _, err := ch.QueuePurge(top.Queue, false); err != nil {
		b.Fatal(err)
	}
}
