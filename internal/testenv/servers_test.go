package testenv

// Smoke tests for the event pipeline's servers: each talks to one server with the Go client the
// services use, the way they use it, so a passing run proves `make test` has every server. Names
// are unique per run, so the tests can run again and again against the same servers.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// ping gives an unreachable server 10 seconds, rather than the whole test's deadline.
func ping(ctx context.Context, ping func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return ping(ctx)
}

func TestKafkaProduceConsumeGroup(t *testing.T) {
	brokers := KafkaBrokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic, group := "smoke-"+randomHex(6), "smoke-group-"+randomHex(6)

	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	if err := ping(ctx, producer.Ping); err != nil {
		t.Fatalf("Kafka is not reachable at %v (start the servers with `make test`): %v", brokers, err)
	}
	sent := &kgo.Record{Topic: topic, Key: []byte("k1"), Value: []byte("hello " + topic)}
	if err := producer.ProduceSync(ctx, sent).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}

	consumer, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var got *kgo.Record
	for got == nil {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("no record consumed from %s: %v", topic, err)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, partition, err)
		})
		fetches.EachRecord(func(r *kgo.Record) { got = r })
	}
	if string(got.Key) != string(sent.Key) || string(got.Value) != string(sent.Value) {
		t.Fatalf("consumed %q=%q, want %q=%q", got.Key, got.Value, sent.Key, sent.Value)
	}
	if got.Partition != sent.Partition || got.Offset != sent.Offset {
		t.Fatalf("consumed partition %d offset %d, produced to %d offset %d", got.Partition, got.Offset, sent.Partition, sent.Offset)
	}
	if err := consumer.CommitRecords(ctx, got); err != nil {
		t.Fatalf("commit offset for group %s: %v", group, err)
	}
	committed := consumer.CommittedOffsets()[topic][got.Partition]
	if committed.Offset != got.Offset+1 {
		t.Fatalf("group %s committed offset %d, want %d", group, committed.Offset, got.Offset+1)
	}
}

func TestMongoInsertUniqueFind(t *testing.T) {
	uri := MongoURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	if err := ping(ctx, func(ctx context.Context) error { return client.Ping(ctx, nil) }); err != nil {
		t.Fatalf("MongoDB is not reachable at %s (start the servers with `make test`): %v", uri, err)
	}
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		t.Fatalf("MONGO_URL: %v", err)
	}
	if cs.Database == "" {
		t.Fatalf("MONGO_URL %s names no database", uri)
	}
	coll := client.Database(cs.Database).Collection("smoke_" + randomHex(6))
	t.Cleanup(func() { _ = coll.Drop(context.Background()) })

	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "event_id", Value: 1}},
		Options: options.Index().SetUnique(true),
	}); err != nil {
		t.Fatalf("create unique index: %v", err)
	}
	doc := bson.D{{Key: "event_id", Value: "ev-1"}, {Key: "user_id", Value: "u-1"}, {Key: "amount", Value: int64(1250)}}
	if _, err := coll.InsertOne(ctx, doc); err != nil {
		t.Fatalf("insert: %v", err)
	}
	_, err = coll.InsertOne(ctx, doc)
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("second insert of the same event_id: got %v, want a duplicate-key error", err)
	}

	var found struct {
		EventID string `bson:"event_id"`
		UserID  string `bson:"user_id"`
		Amount  int64  `bson:"amount"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "event_id", Value: "ev-1"}}).Decode(&found); err != nil {
		t.Fatalf("find: %v", err)
	}
	if found.UserID != "u-1" || found.Amount != 1250 {
		t.Fatalf("found %+v", found)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("count = %d, %v; want 1", n, err)
	}
}

func TestClickHouseReplacingMergeTree(t *testing.T) {
	addr := ClickHouseAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The native protocol only: clickhouse-go's HTTP transport fails on Debian's ClickHouse 18.16.
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: clickhouse.Native})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := ping(ctx, conn.Ping); err != nil {
		t.Fatalf("ClickHouse is not reachable at %s (start the servers with `make test`): %v", addr, err)
	}
	table := "default.smoke_" + randomHex(6)
	if err := conn.Exec(ctx, `CREATE TABLE `+table+` (
		event_id String,
		version UInt64,
		amount Int64,
		currency String,
		at DateTime
	) ENGINE = ReplacingMergeTree(version) ORDER BY event_id`); err != nil {
		t.Fatalf("create table: %v", err)
	}
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) })

	// 500 events, each written twice (as a redelivery would): FINAL keeps one row per event.
	const events = 500
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" (event_id, version, amount, currency, at)")
	if err != nil {
		t.Fatalf("prepare batch: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for version := uint64(1); version <= 2; version++ {
		for i := range events {
			if err := batch.Append(fmt.Sprintf("ev-%d", i), version, int64(i*100), "EUR", now); err != nil {
				t.Fatalf("append: %v", err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send batch: %v", err)
	}

	var rows, distinct uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&rows); err != nil {
		t.Fatalf("count: %v", err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+table+" FINAL").Scan(&distinct); err != nil {
		t.Fatalf("count FINAL: %v", err)
	}
	if distinct != events || rows < events || rows > 2*events {
		t.Fatalf("count() = %d, count() FINAL = %d; want FINAL %d", rows, distinct, events)
	}
}

func TestRabbitMQPublishConfirmConsumeAck(t *testing.T) {
	url := RabbitURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("RabbitMQ is not reachable at %s (start the servers with `make test`): %v", url, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	queue := "smoke-" + randomHex(6)
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatalf("declare queue: %v", err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(queue, false, false, false) })

	if err := ch.Confirm(false); err != nil {
		t.Fatalf("enable publisher confirms: %v", err)
	}
	body := []byte(`{"event_id":"` + queue + `"}`)
	confirm, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqp.Publishing{
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		MessageId:    queue,
		Body:         body,
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if acked, err := confirm.WaitContext(ctx); err != nil || !acked {
		t.Fatalf("publisher confirm: acked=%v, %v", acked, err)
	}

	deliveries, err := ch.ConsumeWithContext(ctx, queue, "smoke", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	var d amqp.Delivery
	select {
	case d = <-deliveries:
	case <-ctx.Done():
		t.Fatalf("no delivery from %s: %v", queue, ctx.Err())
	}
	if string(d.Body) != string(body) || d.MessageId != queue || d.Redelivered {
		t.Fatalf("delivery %q (id %q, redelivered %v), want %q", d.Body, d.MessageId, d.Redelivered, body)
	}
	if err := d.Ack(false); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := ch.Cancel("smoke", false); err != nil {
		t.Fatalf("cancel consumer: %v", err)
	}
	// The channel handles methods in order, so the ack has settled the message by now.
	left, err := ch.QueueDelete(queue, false, false, false)
	if err != nil {
		t.Fatalf("delete queue: %v", err)
	}
	if left != 0 {
		t.Fatalf("%d messages left in %s after the ack, want 0", left, queue)
	}
}
