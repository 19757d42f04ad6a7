package rabbitmq

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"txn/internal/pipeline"
	"txn/internal/testenv"
)

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
