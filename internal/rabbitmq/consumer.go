package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"txn/internal/backoff"
	"txn/internal/pipeline"
)

// Delivery is one task handed to a Handler.
type Delivery struct {
	Task        pipeline.Task
	MessageID   string // the task's NotificationID, as published
	Attempt     int    // 1 on the first delivery, +1 per Retry
	LastError   string // the reason the previous attempt gave for its Retry, "" on the first
	Redelivered bool   // delivered before to a consumer that stopped or lost its connection: the task may be done already
}

// Outcome is what a Handler decided; the zero value is Done.
type Outcome struct {
	action action
	reason string
}

type action int

const (
	actionDone action = iota
	actionRetry
	actionPark
)

// Done acknowledges the task.
func Done() Outcome { return Outcome{} }

// Retry sends the task to the next backoff step's delay queue, or parks it when it has had
// MaxAttempts attempts.
func Retry(reason string) Outcome { return Outcome{action: actionRetry, reason: reason} }

// Park moves the task to the parking queue for good.
func Park(reason string) Outcome { return Outcome{action: actionPark, reason: reason} }

// Handler processes one delivery. ctx outlives the cancellation of Consume's ctx by
// ConsumerConfig.DrainTimeout, so a task in progress can finish during shutdown.
type Handler func(ctx context.Context, d Delivery) Outcome

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	URL      string
	Topology Topology
	// Workers is how many handlers run at once (default 8); Prefetch how many unacked
	// deliveries the broker may push ahead (default 2×Workers, at least Workers).
	Workers  int
	Prefetch int
	// MaxAttempts is how many deliveries a task gets before a Retry parks it (default one
	// more than the number of retry delays, so each backoff step is used once).
	MaxAttempts int
	// DrainTimeout is how long handlers in progress may run once Consume's ctx is cancelled
	// before their own ctx is (default 30s).
	DrainTimeout time.Duration
	Name         string // connection name shown by RabbitMQ, default "txn-consumer"
}

func (cfg ConsumerConfig) withDefaults() (ConsumerConfig, error) {
	cfg.Topology = cfg.Topology.withDefaults()
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 2 * cfg.Workers
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = len(cfg.Topology.RetryDelays) + 1
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.Name == "" {
		cfg.Name = "txn-consumer"
	}
	switch {
	case cfg.URL == "":
		return cfg, errors.New("rabbitmq: no URL")
	case cfg.Prefetch < cfg.Workers:
		return cfg, fmt.Errorf("rabbitmq: prefetch %d below %d workers would leave workers idle", cfg.Prefetch, cfg.Workers)
	}
	if _, err := amqp.ParseURI(cfg.URL); err != nil {
		return cfg, fmt.Errorf("rabbitmq: %w", err)
	}
	return cfg, cfg.Topology.validate()
}

// Consumer consumes the work queue with manual acks, several handlers at once.
type Consumer struct {
	cfg ConsumerConfig
	log *slog.Logger
}

func NewConsumer(cfg ConsumerConfig, log *slog.Logger) (*Consumer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Consumer{cfg: cfg, log: log.With("queue", cfg.Topology.Queue)}, nil
}

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// Consume delivers tasks to handler until ctx is cancelled, reconnecting (with backoff) when
// the connection is lost. On cancellation it stops taking deliveries, hands back the prefetched
// ones, waits for the handlers in progress and settles their outcomes, then returns nil. It
// returns an error only for what reconnecting cannot fix: the topology exists with other
// arguments, or access is refused.
func (c *Consumer) Consume(ctx context.Context, handler Handler) error {
	hctx, stop := drainContext(ctx, c.cfg.DrainTimeout)
	defer stop()

	jobs := make(chan job)
	var workers sync.WaitGroup
	for range c.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range jobs {
				c.handle(hctx, j, handler)
			}
		}()
	}

	var last *session
	var err error
	wait := backoff.New(minBackoff, maxBackoff)
	for {
		started := time.Now()
		var s *session
		s, err = c.session(ctx, jobs)
		if ctx.Err() != nil {
			last, err = s, nil
			break
		}
		if s != nil {
			s.close() // dead already, or broken: in-flight acks on it fail and are redelivered
		}
		if isPermanent(err) {
			break
		}
		if time.Since(started) > maxBackoff {
			wait.Reset() // the session had been up a while: this is a new failure
		}
		pause := wait.Next()
		c.log.Warn("rabbitmq consumer: reconnecting", "err", err, "in", pause)
		if !backoff.Sleep(ctx, pause) {
			err = nil
			break
		}
	}
	close(jobs)
	workers.Wait()
	if last != nil {
		last.close()
	}
	return err
}

// drainContext is ctx's values without its cancellation, cancelled grace after ctx is.
func drainContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-hctx.Done():
		}
	})
	return hctx, func() { stop(); cancel() }
}

type job struct {
	s *session
	d amqp.Delivery
}

// session is one connection: a consuming channel, and confirm channels for the workers'
// retry and park publishes (one per concurrent publish, so each waits only for its own confirm).
type session struct {
	conn *amqp.Connection
	pubs chan *confirmChannel // idle ones
	log  *slog.Logger
	once sync.Once
}

// session consumes until ctx ends (then returns nil) or the channel is lost. The session it
// returns, if any, is for the caller to close once its deliveries are settled.
func (c *Consumer) session(ctx context.Context, jobs chan<- job) (*session, error) {
	conn, err := dial(ctx, c.cfg.URL, c.cfg.Name)
	if err != nil {
		return nil, err
	}
	s := &session{conn: conn, pubs: make(chan *confirmChannel, c.cfg.Workers), log: c.log}
	// The setup RPCs know no context: closing the connection interrupts them.
	unguard := context.AfterFunc(ctx, s.close)
	defer unguard()
	ch, err := conn.Channel()
	if err != nil {
		return s, fmt.Errorf("rabbitmq: open channel: %w", err)
	}
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := DeclareTopology(ch, c.cfg.Topology); err != nil {
		return s, err
	}
	if err := ch.Qos(c.cfg.Prefetch, 0, false); err != nil {
		return s, fmt.Errorf("rabbitmq: qos: %w", err)
	}
	tag := c.cfg.Name + "-" + uuid.NewString()
	deliveries, err := ch.Consume(c.cfg.Topology.Queue, tag, false, false, false, false, nil)
	if err != nil {
		return s, fmt.Errorf("rabbitmq: consume: %w", err)
	}
	if !unguard() {
		return s, ctx.Err()
	}
	c.log.Info("rabbitmq consumer: consuming", "workers", c.cfg.Workers, "prefetch", c.cfg.Prefetch)
	for {
		select {
		case <-ctx.Done():
			s.handBack(ch, tag, deliveries)
			return s, nil
		case d, ok := <-deliveries:
			if !ok {
				// On a channel or connection error the library reports the reason before
				// it closes the deliveries; no reason means the broker cancelled the
				// consumer (its queue was deleted, say).
				select {
				case e, ok := <-closes:
					if ok && e != nil {
						return s, fmt.Errorf("rabbitmq: consumer channel closed: %w", e)
					}
				default:
				}
				return s, errors.New("rabbitmq: consumer cancelled")
			}
			select {
			case jobs <- job{s, d}:
			case <-ctx.Done():
				_ = d.Nack(false, true)
				s.handBack(ch, tag, deliveries)
				return s, nil
			}
		}
	}
}

// handBack cancels the consumer and requeues what was prefetched but not started, so other
// consumers get it now rather than when this one's drain ends.
func (s *session) handBack(ch *amqp.Channel, tag string, deliveries <-chan amqp.Delivery) {
	t := time.AfterFunc(5*time.Second, s.close) // a broker that does not answer gets no more time
	defer t.Stop()
	if err := ch.Cancel(tag, false); err != nil {
		return // the channel is gone: the broker requeues everything unacked anyway
	}
	for d := range deliveries { // closed once the library has passed on what it buffered
		_ = d.Nack(false, true)
	}
}

// publish sends messages under confirms on an idle confirm channel. When ctx ends first
// (the drain timeout), the connection is dropped: that is what interrupts a blocked publish.
func (s *session) publish(ctx context.Context, msgs []message) error {
	defer context.AfterFunc(ctx, func() { s.fail(context.Cause(ctx)) })()
	var cc *confirmChannel
	select {
	case cc = <-s.pubs:
	default:
	}
	if cc == nil || cc.ch.IsClosed() {
		var err error
		if cc, err = openConfirmChannel(s.conn); err != nil {
			return fmt.Errorf("rabbitmq: open channel: %w", err)
		}
	}
	if err := cc.publish(ctx, msgs); err != nil {
		cc.close()
		return err
	}
	select {
	case s.pubs <- cc:
	default:
		cc.close()
	}
	return nil
}

// fail drops the connection after a retry or park could not be published: the broker requeues
// every unacked delivery, and Consume reconnects with backoff and redeclares the topology
// (recreating, say, a deleted delay queue) instead of spinning on the same failure.
func (s *session) fail(err error) {
	s.once.Do(func() {
		if !s.conn.IsClosed() { // else it is lost already, and Consume says so
			s.log.Error("rabbitmq consumer: dropping the connection", "err", err)
			s.close()
		}
	})
}

func (s *session) close() { _ = s.conn.CloseDeadline(time.Now().Add(5 * time.Second)) }

// handle runs the handler on each task of one delivery, concurrently, and settles them: every
// retry or park publish must be confirmed before the message is acked, so a crash in between
// duplicates tasks rather than losing them. A task that is retried or parked travels on as a
// message of its own.
func (c *Consumer) handle(ctx context.Context, j job, handler Handler) {
	d := j.d
	attempt := attemptOf(d.Headers)
	tasks, err := DecodeTasks(d.Body)
	if err != nil {
		reason := "undecodable task: " + err.Error()
		c.log.Warn("task parked", "message_id", d.MessageId, "attempt", attempt, "reason", reason)
		c.settle(ctx, j, []message{c.parked(d, d.Body, d.MessageId, attempt, reason)})
		return
	}
	outs := runTasks(ctx, handler, d, tasks, attempt)
	var pubs []message
	for i, out := range outs {
		if out.action == actionDone {
			continue
		}
		if out.action == actionRetry && attempt >= c.cfg.MaxAttempts {
			out = Park(fmt.Sprintf("gave up after %d attempts: %s", attempt, out.reason))
		}
		id, body, err := taskMessage(d, tasks, i)
		if err != nil {
			j.s.fail(err)
			return
		}
		log := c.log.With("message_id", id, "attempt", attempt)
		if out.action == actionPark {
			log.Warn("task parked", "reason", out.reason)
			pubs = append(pubs, c.parked(d, body, id, attempt, out.reason))
			continue
		}
		q := c.cfg.Topology.RetryQueue(attempt - 1)
		log.Debug("task retry", "reason", out.reason, "via", q)
		pubs = append(pubs, message{key: q, pub: republish(d, body, id, amqp.Table{
			HeaderAttempt: int64(attempt + 1), HeaderLastError: truncate(out.reason),
		})})
	}
	c.settle(ctx, j, pubs)
}

// runTasks hands each task of d to the handler, all at once, and returns their outcomes.
func runTasks(ctx context.Context, handler Handler, d amqp.Delivery, tasks []pipeline.Task, attempt int) []Outcome {
	lastErr, _ := d.Headers[HeaderLastError].(string)
	outs := make([]Outcome, len(tasks))
	var wg sync.WaitGroup
	for i, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = call(ctx, handler, Delivery{Task: t, MessageID: taskID(d, tasks, i), Attempt: attempt,
				LastError: lastErr, Redelivered: d.Redelivered})
		}()
	}
	wg.Wait()
	return outs
}

// taskID is the message id of task i of d: the message's own when it holds that task alone,
// else the task's notification id (as the publisher names a single-task message).
func taskID(d amqp.Delivery, tasks []pipeline.Task, i int) string {
	if len(tasks) == 1 {
		return d.MessageId
	}
	return tasks[i].NotificationID.String()
}

// taskMessage is the id and body of task i of d as a message of its own.
func taskMessage(d amqp.Delivery, tasks []pipeline.Task, i int) (id string, body []byte, err error) {
	if len(tasks) == 1 {
		return d.MessageId, d.Body, nil
	}
	body, err = EncodeTasks(tasks[i : i+1])
	return tasks[i].NotificationID.String(), body, err
}

// parked is the message that parks one task (or an undecodable body) for good.
func (c *Consumer) parked(d amqp.Delivery, body []byte, id string, attempt int, reason string) message {
	return message{key: c.cfg.Topology.ParkingQueue, pub: republish(d, body, id, amqp.Table{
		HeaderAttempt: int64(attempt), HeaderParkReason: truncate(reason),
	})}
}

// settle publishes the retries and parks under confirms, then acks the delivery; if they
// cannot be published the connection is dropped, so the broker redelivers the message.
func (c *Consumer) settle(ctx context.Context, j job, pubs []message) {
	if len(pubs) > 0 {
		if err := j.s.publish(ctx, pubs); err != nil {
			j.s.fail(fmt.Errorf("retry or park of %s: %w", j.d.MessageId, err))
			return
		}
	}
	if err := j.d.Ack(false); err != nil {
		c.log.Warn("ack failed; the tasks will be redelivered", "message_id", j.d.MessageId, "err", err)
	}
}

// call runs the handler, turning a panic into a Retry rather than a crashed notifier.
func call(ctx context.Context, h Handler, d Delivery) (out Outcome) {
	defer func() {
		if r := recover(); r != nil {
			out = Retry(fmt.Sprintf("handler panic: %v", r))
		}
	}()
	return h(ctx, d)
}

// republish makes a message of a delivery's body (or one task of it) for the default
// exchange, with fresh headers; dropping the old ones also drops the x-death history RabbitMQ
// adds on every dead-lettering.
func republish(d amqp.Delivery, body []byte, id string, headers amqp.Table) amqp.Publishing {
	return amqp.Publishing{Headers: headers, ContentType: d.ContentType, DeliveryMode: amqp.Persistent,
		MessageId: id, Timestamp: time.Now(), Body: body}
}

func attemptOf(h amqp.Table) int {
	var n int64
	switch v := h[HeaderAttempt].(type) {
	case int64:
		n = v
	case int32:
		n = int64(v)
	case int16:
		n = int64(v)
	case int8:
		n = int64(v)
	case int:
		n = int64(v)
	}
	return int(max(n, 1))
}

// truncate bounds a reason, since headers travel in one frame with the message.
func truncate(s string) string {
	const limit = 1024
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "")
}
