package main_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"txn/internal/testenv"
)

// TestSurvivesSIGKILL checks that the stand-in keeps, as a real broker does, what it
// acknowledged when it is killed: a topic created while it ran (under the same id), its
// records, and a consumer group's committed offset.
func TestSurvivesSIGKILL(t *testing.T) {
	broker := testenv.StartPrivateBroker(t)
	addr, dir := broker.Addr, broker.Dir
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	topic, group := testenv.Unique("survivor"), testenv.Unique("group")
	cl := client(t, addr, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, topic)
	if err != nil || details[topic].Err != nil {
		t.Fatalf("list topics: %v %v", err, details[topic].Err)
	}
	id := details[topic].ID
	var offsets kadm.Offsets
	offsets.AddOffset(topic, details[topic].Partitions.Numbers()[0], 7, -1)
	if err := adm.CommitAllOffsets(ctx, group, offsets); err != nil {
		t.Fatalf("commit offsets: %v", err)
	}
	testenv.Eventually(t, 5*time.Second, func() string {
		if b, err := os.ReadFile(filepath.Join(dir, "topics.json")); err != nil || !strings.Contains(string(b), topic) {
			return "the topic is not in topics.json yet"
		}
		return ""
	})
	cl.Close()

	broker.Restart() // SIGKILL, then start again on the same port and directory
	cl = client(t, addr)
	adm = kadm.NewClient(cl)
	var after kadm.TopicDetails
	testenv.Eventually(t, 20*time.Second, func() string {
		if after, err = adm.ListTopics(ctx, topic); err != nil {
			return "list topics: " + err.Error()
		}
		return ""
	})

	t.Run("the topic keeps its id", func(t *testing.T) {
		if d := after[topic]; d.Err != nil || d.ID != id {
			t.Errorf("topic after restart: id %v (err %v), want %v", d.ID, d.Err, id)
		}
	})
	t.Run("the records are there", func(t *testing.T) {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		if total != 10 {
			t.Errorf("%d records after restart, want 10", total)
		}
	})
	t.Run("the committed offset is there", func(t *testing.T) {
		got, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := got.Lookup(topic, details[topic].Partitions.Numbers()[0]); !ok || o.At != 7 {
			t.Errorf("committed offset after restart: %+v (found %v), want 7", o, ok)
		}
	})
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
