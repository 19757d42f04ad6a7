package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"txn/internal/pipeline"
)

var _ pipeline.TaskPublisher = (*Publisher)(nil)

// ErrClosed is returned by a Publisher after Close.
var ErrClosed = errors.New("rabbitmq: publisher closed")

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	URL      string // amqp://user:pass@host:port/vhost
	Topology Topology
	Name     string // connection name shown by RabbitMQ, default "txn-publisher"
	// MaxTasksPerMessage bounds the tasks carried by one message (default 256).
	MaxTasksPerMessage int
}

// Publisher implements pipeline.TaskPublisher with publisher confirms. It is safe for
// concurrent use, but calls take turns on its one channel: each batch is already pipelined,
// and one batch at a time is what lets a return be attributed to the right call.
//
// It connects lazily (Ping connects eagerly) and, after any failure, drops its connection: the
// next call redials and redeclares the topology.
type Publisher struct {
	cfg  PublisherConfig
	turn chan struct{} // holds one token: the right to use conn and cc

	conn   *amqp.Connection
	cc     *confirmChannel
	closed bool
}

// NewPublisher checks the configuration; it does not connect.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	cfg.Topology = cfg.Topology.withDefaults()
	if cfg.URL == "" {
		return nil, errors.New("rabbitmq: no URL")
	}
	if _, err := amqp.ParseURI(cfg.URL); err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	if err := cfg.Topology.validate(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = "txn-publisher"
	}
	if cfg.MaxTasksPerMessage <= 0 {
		cfg.MaxTasksPerMessage = 256
	}
	p := &Publisher{cfg: cfg, turn: make(chan struct{}, 1)}
	p.turn <- struct{}{}
	return p, nil
}

// PublishTasks publishes the tasks as persistent JSON messages to the exchange, up to
// MaxTasksPerMessage in each (EncodeTasks), and returns nil only once the broker confirmed all
// of them. On error some may have been enqueued anyway: retrying the whole batch is the way out.
//
// Why several tasks per message: RabbitMQ's cost is mostly per message (routing, persistence,
// the confirm, the delivery and its ack), so a message per task made the broker the costliest
// part of a transaction's downstream work. The notifier retries each task of a message on its
// own.
func (p *Publisher) PublishTasks(ctx context.Context, tasks []pipeline.Task) error {
	if len(tasks) == 0 {
		return nil
	}
	now := time.Now()
	per := p.cfg.MaxTasksPerMessage
	msgs := make([]message, 0, (len(tasks)+per-1)/per)
	for start := 0; start < len(tasks); start += per {
		chunk := tasks[start:min(start+per, len(tasks))]
		body, err := EncodeTasks(chunk)
		if err != nil {
			return err
		}
		msgs = append(msgs, message{exchange: p.cfg.Topology.Exchange, key: p.cfg.Topology.RoutingKey, pub: amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent,
			MessageId: messageID(chunk), Timestamp: now, Body: body,
		}})
	}
	return p.withChannel(ctx, func(cc *confirmChannel) error { return cc.publish(ctx, msgs) })
}

// Ping connects if needed and makes a round trip to the broker (a passive exchange declare).
func (p *Publisher) Ping(ctx context.Context) error {
	return p.withChannel(ctx, func(cc *confirmChannel) error {
		return cc.ch.ExchangeDeclarePassive(p.cfg.Topology.Exchange, amqp.ExchangeDirect, true, false, false, false, nil)
	})
}

// Close closes the connection after the call in progress, if any.
func (p *Publisher) Close() error {
	<-p.turn
	defer func() { p.turn <- struct{}{} }()
	if p.closed {
		return nil
	}
	p.closed = true
	p.cc = nil
	if p.conn == nil {
		return nil
	}
	err := p.conn.Close()
	p.conn = nil
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}

// withChannel runs f with a live confirm channel, waiting its turn, and drops the connection
// when f fails.
func (p *Publisher) withChannel(ctx context.Context, f func(*confirmChannel) error) error {
	if err := ctx.Err(); err != nil {
		return err // before select picks the turn at random and the guard below kills the connection
	}
	select {
	case <-p.turn:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { p.turn <- struct{}{} }()
	if p.closed {
		return ErrClosed
	}
	if p.conn == nil || p.conn.IsClosed() {
		p.cc = nil
		conn, err := dial(ctx, p.cfg.URL, p.cfg.Name)
		if err != nil {
			return err
		}
		p.conn = conn
	}
	// amqp091-go's RPCs and socket writes know no context: closing the connection is what
	// interrupts them. A broker that did not answer in time is not trusted further anyway.
	conn := p.conn
	defer context.AfterFunc(ctx, func() { _ = conn.CloseDeadline(time.Now()) })()

	err := p.openChannel()
	if err == nil {
		err = f(p.cc)
	}
	if err != nil {
		// Start over with a new connection: after a failed write the library may not have
		// noticed yet that its connection is dead, and a redial costs a few milliseconds.
		p.cc = nil
		_ = conn.CloseDeadline(time.Now().Add(time.Second))
		p.conn = nil
		if ctx.Err() != nil {
			return fmt.Errorf("rabbitmq: %w (%v)", context.Cause(ctx), err)
		}
	}
	return err
}

// openChannel opens a confirm channel and declares the topology, unless the channel is open.
func (p *Publisher) openChannel() error {
	if p.cc != nil && !p.cc.ch.IsClosed() {
		return nil
	}
	p.cc = nil
	cc, err := openConfirmChannel(p.conn)
	if err != nil {
		return fmt.Errorf("rabbitmq: open channel: %w", err)
	}
	if err := DeclareTopology(cc.ch, p.cfg.Topology); err != nil {
		cc.close()
		return err
	}
	p.cc = cc
	return nil
}
