// Package rabbitmq is the RabbitMQ adapter (amqp091-go) for notification tasks: the consumer
// service's Publisher and the notifier's Consumer, with retries through delay queues.
//
// Topology (names are Topology's defaults; DeclareTopology declares it idempotently and both
// sides call it on every new channel, so whichever starts first creates it):
//
//	txn.notifications            durable direct exchange; PublishTasks publishes here
//	  └─ key "notifications" ──▶ notifications              durable work queue, consumed by the notifier
//	notifications.retry.1s       durable, x-message-ttl 1000, dead-letters to txn.notifications/"notifications"
//	notifications.retry.5s       ... one queue per backoff step (1s, 5s, 25s, 2m, 10m by default)
//	notifications.parked         durable parking queue: tasks that failed for good, with the reason
//
// A retry is a persistent publish to the step's delay queue (through the default exchange)
// with the next attempt number in the txn-attempt header; when its TTL expires RabbitMQ
// dead-letters it back to the work queue. One queue per delay, rather than per-message TTLs in
// one queue, because RabbitMQ expires messages only at the head of a queue: with a uniform TTL
// the head is always the first to expire. The delay is part of the queue's name since a queue's
// arguments cannot change: a new backoff schedule declares new queues instead of failing with
// PRECONDITION_FAILED.
//
// A message carries up to PublisherConfig.MaxTasksPerMessage tasks (a JSON array; one task is a
// JSON object), since the broker's cost is per message. The consumer hands each task to the
// handler on its own and settles each on its own: a task to retry or park travels on as a
// message of its own, and the message is acked once those are confirmed.
//
// Delivery is at least once everywhere (a publish is retried when its confirm is missing, a
// delivery is redelivered when its ack is lost); a single task's MessageId is its
// NotificationID, and the notifier deduplicates on the NotificationID.
package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Headers the adapter sets on republished messages.
const (
	HeaderAttempt    = "txn-attempt"     // the attempt the message is for; absent means 1
	HeaderLastError  = "txn-last-error"  // why the previous attempt failed
	HeaderParkReason = "txn-park-reason" // why the task was parked
)

// Topology names the exchange and queues. The zero value means the defaults.
type Topology struct {
	Exchange     string          // default "txn.notifications"
	Queue        string          // work queue, default "notifications"
	RoutingKey   string          // binds Queue to Exchange, default Queue
	RetryDelays  []time.Duration // one delay queue per step, default 1s, 5s, 25s, 2m, 10m
	ParkingQueue string          // default Queue + ".parked"
}

// DefaultRetryDelays is the backoff schedule when Topology.RetryDelays is empty.
var DefaultRetryDelays = []time.Duration{time.Second, 5 * time.Second, 25 * time.Second, 2 * time.Minute, 10 * time.Minute}

func (t Topology) withDefaults() Topology {
	if t.Exchange == "" {
		t.Exchange = "txn.notifications"
	}
	if t.Queue == "" {
		t.Queue = "notifications"
	}
	if t.RoutingKey == "" {
		t.RoutingKey = t.Queue
	}
	if len(t.RetryDelays) == 0 {
		t.RetryDelays = DefaultRetryDelays
	}
	if t.ParkingQueue == "" {
		t.ParkingQueue = t.Queue + ".parked"
	}
	return t
}

func (t Topology) validate() error {
	for _, d := range t.RetryDelays {
		if d < time.Millisecond {
			return fmt.Errorf("rabbitmq: retry delay %v is under the 1ms TTL resolution", d)
		}
	}
	return nil
}

// RetryQueue names the delay queue of backoff step i (0-based; past the last step, the last).
func (t Topology) RetryQueue(i int) string {
	t = t.withDefaults()
	i = min(max(i, 0), len(t.RetryDelays)-1)
	return t.Queue + ".retry." + t.RetryDelays[i].String()
}

// DeclareTopology declares the exchange, work queue and binding, the delay queues and the
// parking queue. Declaring what exists with the same arguments is a no-op; different
// arguments close the channel with PRECONDITION_FAILED.
func DeclareTopology(ch *amqp.Channel, t Topology) error {
	t = t.withDefaults()
	if err := t.validate(); err != nil {
		return err
	}
	if err := ch.ExchangeDeclare(t.Exchange, amqp.ExchangeDirect, true, false, false, false, nil); err != nil {
		return fmt.Errorf("rabbitmq: declare exchange %s: %w", t.Exchange, err)
	}
	if _, err := ch.QueueDeclare(t.Queue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("rabbitmq: declare queue %s: %w", t.Queue, err)
	}
	if err := ch.QueueBind(t.Queue, t.RoutingKey, t.Exchange, false, nil); err != nil {
		return fmt.Errorf("rabbitmq: bind %s to %s: %w", t.Queue, t.Exchange, err)
	}
	for i, d := range t.RetryDelays {
		q := t.RetryQueue(i)
		if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{
			"x-message-ttl":             d.Milliseconds(),
			"x-dead-letter-exchange":    t.Exchange,
			"x-dead-letter-routing-key": t.RoutingKey,
		}); err != nil {
			return fmt.Errorf("rabbitmq: declare queue %s: %w", q, err)
		}
	}
	if _, err := ch.QueueDeclare(t.ParkingQueue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("rabbitmq: declare queue %s: %w", t.ParkingQueue, err)
	}
	return nil
}

// dial connects with a deadline on the TCP connect and the AMQP handshake taken from ctx
// (at most 10s), since amqp091-go's own dial knows no context.
func dial(ctx context.Context, url, name string) (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	conn, err := amqp.DialConfig(url, amqp.Config{
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			deadline := time.Now().Add(10 * time.Second)
			if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
				deadline = d
			}
			d := net.Dialer{Deadline: deadline}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The library clears the deadline once the handshake is done.
			if err := c.SetDeadline(deadline); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: dial: %w", err)
	}
	return conn, nil
}

// message is one publish: where to and what.
type message struct {
	exchange, key string
	pub           amqp.Publishing
}

// confirmChannel is a channel in confirm mode that publishes one batch at a time, so every
// return it sees belongs to the batch in flight. Not safe for concurrent use.
type confirmChannel struct {
	ch      *amqp.Channel
	returns chan amqp.Return
	closes  chan *amqp.Error
	closed  *amqp.Error // why the broker closed it, once read from closes
}

func openConfirmChannel(conn *amqp.Connection) (*confirmChannel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return nil, err
	}
	// The library drops a return it cannot hand over within 5s, so publish drains this while
	// it works; the buffer only covers the gaps.
	return &confirmChannel{ch: ch, returns: ch.NotifyReturn(make(chan amqp.Return, 64)),
		closes: ch.NotifyClose(make(chan *amqp.Error, 1))}, nil
}

// publish sends every message mandatory, then waits for all confirms. It returns nil only if
// every message was acked and none returned unroutable. After an error the channel's state is
// unknown (late confirms or returns may still come): the caller must discard it.
func (c *confirmChannel) publish(ctx context.Context, msgs []message) error {
	var returned []amqp.Return
	drain := func() {
		for {
			select {
			case r, ok := <-c.returns:
				if !ok {
					return // channel closed: its pending confirms are nacked
				}
				returned = append(returned, r)
			default:
				return
			}
		}
	}
	confirms := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	for _, m := range msgs {
		dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, m.exchange, m.key, true, false, m.pub)
		if err != nil {
			// Typically "not open" because the broker closed the channel over an earlier
			// message (a missing exchange): its reason is the useful error.
			return fmt.Errorf("rabbitmq: publish: %w", c.closeReason(err))
		}
		confirms = append(confirms, dc)
		drain()
	}
	nacked := 0
	returns := c.returns
	for _, dc := range confirms {
	wait:
		for {
			select {
			case <-dc.Done():
				if !dc.Acked() {
					nacked++
				}
				break wait
			case r, ok := <-returns:
				if !ok {
					returns = nil
					continue
				}
				returned = append(returned, r)
			case <-ctx.Done():
				return fmt.Errorf("rabbitmq: waiting for confirms: %w", ctx.Err())
			}
		}
	}
	// RabbitMQ sends basic.return before the basic.ack of the same message, and the library
	// hands it to our buffered channel before processing the ack: it is there by now.
	drain()
	switch {
	case nacked > 0:
		return fmt.Errorf("rabbitmq: %d of %d messages not confirmed: %w", nacked, len(msgs), c.closeReason(errors.New("nacked by the broker")))
	case len(returned) > 0:
		r := returned[0]
		return fmt.Errorf("rabbitmq: %d of %d messages unroutable (first: %d %s, exchange %q, key %q)",
			len(returned), len(msgs), r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey)
	}
	return nil
}

// closeReason is the broker's reason for closing the channel, if it did, else fallback.
func (c *confirmChannel) closeReason(fallback error) error {
	if c.closed == nil && c.ch.IsClosed() {
		// The library marks the channel closed first, then reports the reason and closes
		// the listener: this waits out that window.
		select {
		case e, ok := <-c.closes:
			if !ok || e == nil {
				return amqp.ErrClosed
			}
			c.closed = e
		case <-time.After(time.Second):
			return amqp.ErrClosed
		}
	}
	if c.closed != nil {
		return c.closed
	}
	return fallback
}

func (c *confirmChannel) close() { _ = c.ch.Close() }

// isPermanent reports errors that no reconnect fixes: a topology declared elsewhere with other
// arguments, or refused access.
func isPermanent(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && (ae.Code == amqp.PreconditionFailed || ae.Code == amqp.AccessRefused)
}
