package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"txn/internal/pipeline"
	"txn/internal/testenv"
)

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

func TestMessageFormat(t *testing.T) {
	tasks := makeTasks(3)
	for _, n := range []int{1, 3} {
		body, err := EncodeTasks(tasks[:n])
		if err != nil {
			t.Fatal(err)
		}
		if single := body[0] == '{'; single != (n == 1) {
			t.Errorf("%d tasks encoded as %.20s..., want an object for one and an array for several", n, body)
		}
		got, err := DecodeTasks(body)
		if err != nil || len(got) != n {
			t.Fatalf("%d tasks decoded as %d (%v)", n, len(got), err)
		}
		for i := range got {
			if got[i].NotificationID != tasks[i].NotificationID || !got[i].CreatedAt.Equal(tasks[i].CreatedAt) || got[i].Message != tasks[i].Message {
				t.Errorf("task %d of %d decoded as %+v, want %+v", i, n, got[i], tasks[i])
			}
		}
	}
	for _, bad := range []string{"", "[]", "{", "[{]", "42"} {
		if _, err := DecodeTasks([]byte(bad)); err == nil {
			t.Errorf("DecodeTasks(%q) accepted it", bad)
		}
	}
}
