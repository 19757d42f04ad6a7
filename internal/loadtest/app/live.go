package app

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// liveStore is the live state of runs in Redis (loadtest.Live), under prefix:
//
//	<prefix>active        the id of the run in progress (absent when none)
//	<prefix>run:<id>      the run's latest document (Run JSON)
//	<prefix>points:<id>   hash: second of the running phase → its point (Point JSON)
//
// A run in progress has no expiry; once it is over its keys expire after ttl, and history
// (ClickHouse) serves it from then on.
type liveStore struct {
	rdb    *goredis.Client
	prefix string
	ttl    time.Duration
}

func (s *liveStore) activeKey() string          { return s.prefix + "active" }
func (s *liveStore) runKey(id string) string    { return s.prefix + "run:" + id }
func (s *liveStore) pointsKey(id string) string { return s.prefix + "points:" + id }

// clearActive removes the active mark only if it is still id's, so a late write of a run
// that ended never clears the mark of the next one.
var clearActive = goredis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

func (s *liveStore) PutRun(ctx context.Context, id string, doc []byte, active bool) error {
	pipe := s.rdb.TxPipeline()
	switch {
	case doc == nil:
	case active:
		pipe.Set(ctx, s.runKey(id), doc, 0)
	default:
		pipe.Set(ctx, s.runKey(id), doc, s.ttl)
		pipe.Expire(ctx, s.pointsKey(id), s.ttl)
	}
	if active {
		pipe.Set(ctx, s.activeKey(), id, 0)
	} else {
		clearActive.Eval(ctx, pipe, []string{s.activeKey()}, id) // EVALSHA has no fallback in a pipeline
	}
	_, err := pipe.Exec(ctx)
	return err
}

func (s *liveStore) PutPoints(ctx context.Context, id string, points map[int][]byte) error {
	if len(points) == 0 {
		return nil
	}
	fields := make(map[string]any, len(points))
	for i, p := range points {
		fields[strconv.Itoa(i)] = p
	}
	return s.rdb.HSet(ctx, s.pointsKey(id), fields).Err()
}

func (s *liveStore) Run(ctx context.Context, id string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.runKey(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	return b, err
}

func (s *liveStore) Points(ctx context.Context, id string) ([][]byte, error) {
	m, err := s.rdb.HGetAll(ctx, s.pointsKey(id)).Result()
	if err != nil {
		return nil, err
	}
	type point struct {
		i   int
		doc []byte
	}
	pts := make([]point, 0, len(m))
	for k, v := range m {
		i, err := strconv.Atoi(k)
		if err != nil {
			continue // not ours
		}
		pts = append(pts, point{i, []byte(v)})
	}
	sort.Slice(pts, func(a, b int) bool { return pts[a].i < pts[b].i })
	out := make([][]byte, len(pts))
	for i, p := range pts {
		out[i] = p.doc
	}
	return out, nil
}

func (s *liveStore) Active(ctx context.Context) (string, error) {
	id, err := s.rdb.Get(ctx, s.activeKey()).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	return id, err
}
