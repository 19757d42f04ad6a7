package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kfake writes its topic list (names, ids, partition counts) to topics.json only when it starts
// on an empty directory and when it closes cleanly; records, offsets and producer ids it writes
// as they come. A topic created while it runs was therefore forgotten by a SIGKILL: after the
// restart its records sat unread on disk and the next use created it anew under another id,
// which clients that knew the old id could not get past. Real Kafka persists a topic before
// acknowledging its creation. keepTopics narrows the gap to one poll: it lists the topics
// every interval and rewrites topics.json, in kfake's format, whenever they changed.

// topicsFile is kfake's topics.json (format version 1). IDs are base64, as kfake writes them.
type topicsFile struct {
	Version int          `json:"version"`
	Topics  []savedTopic `json:"topics"`
}

type savedTopic struct {
	Name       string            `json:"name"`
	ID         []byte            `json:"id"`
	Partitions int               `json:"partitions"`
	Replicas   int               `json:"replicas"`
	Configs    map[string]string `json:"configs,omitempty"`
}

const topicsFormat = 1

// keepTopics persists the broker's topics to dir/topics.json until ctx ends. It must stop
// before the cluster closes, which writes the file itself.
func keepTopics(ctx context.Context, addr, dir string, every time.Duration, log *slog.Logger) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		log.Error("cannot watch topics", "err", err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	path := filepath.Join(dir, "topics.json")
	var last []savedTopic
	for {
		if topics, err := listTopics(ctx, adm, path); err == nil && !slices.EqualFunc(topics, last, sameTopic) {
			if err := writeTopics(path, topics); err != nil {
				log.Error("cannot persist topics", "err", err)
			} else {
				last = topics
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// listTopics returns the broker's topics sorted by name, keeping the configs topics.json
// holds for a topic of the same id (kfake saves them; a poll does not see them).
func listTopics(ctx context.Context, adm *kadm.Client, path string) ([]savedTopic, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	details, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	saved := map[string]savedTopic{}
	var old topicsFile
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &old) == nil {
		for _, t := range old.Topics {
			saved[t.Name] = t
		}
	}
	topics := make([]savedTopic, 0, len(details))
	for _, name := range details.Names() {
		d := details[name]
		if d.Err != nil {
			return nil, d.Err
		}
		t := savedTopic{Name: name, ID: append([]byte(nil), d.ID[:]...), Partitions: len(d.Partitions), Replicas: 1}
		if p, ok := d.Partitions[0]; ok && len(p.Replicas) > 0 {
			t.Replicas = len(p.Replicas)
		}
		if s, ok := saved[name]; ok && string(s.ID) == string(t.ID) {
			t.Configs = s.Configs
		}
		topics = append(topics, t)
	}
	return topics, nil
}

func sameTopic(a, b savedTopic) bool {
	return a.Name == b.Name && string(a.ID) == string(b.ID) && a.Partitions == b.Partitions
}

// writeTopics replaces path atomically and durably.
func writeTopics(path string, topics []savedTopic) error {
	b, err := json.Marshal(topicsFile{Version: topicsFormat, Topics: topics})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	if err := errors.Join(werr, serr, f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
