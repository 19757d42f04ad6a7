package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"txn/internal/loadgen"
	"txn/internal/loadtest"
)

// LoadtestLive is the live state of load-test runs (loadtest.Live), under prefix:
//
//	<prefix>active        the id of the run in progress (absent when none)
//	<prefix>run:<id>      the run's latest state (Run JSON)
//	<prefix>points:<id>   hash: second of the running phase → its point (Point JSON)
//
// A run in progress has no expiry; once it is over its keys expire after ttl, and history
// (ClickHouse) serves it from then on.
type LoadtestLive struct {
	rdb    *goredis.Client
	prefix string
	ttl    time.Duration
}

var _ loadtest.Live = (*LoadtestLive)(nil)

// NewLoadtestLive keeps the live state in rdb under prefix; finished runs expire after ttl.
func NewLoadtestLive(rdb *goredis.Client, prefix string, ttl time.Duration) *LoadtestLive {
	return &LoadtestLive{rdb: rdb, prefix: prefix, ttl: ttl}
}

func (s *LoadtestLive) activeKey() string          { return s.prefix + "active" }
func (s *LoadtestLive) runKey(id string) string    { return s.prefix + "run:" + id }
func (s *LoadtestLive) pointsKey(id string) string { return s.prefix + "points:" + id }

// clearActive removes the active mark only if it is still id's, so a late write of a run
// that ended never clears the mark of the next one.
var clearActive = goredis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// PutRun stores r (unless nil) and marks run id active or not.
func (s *LoadtestLive) PutRun(ctx context.Context, id string, r *loadtest.Run, active bool) error {
	pipe := s.rdb.TxPipeline()
	if r != nil {
		doc, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("redis: encode run %s: %w", id, err)
		}
		if active {
			pipe.Set(ctx, s.runKey(id), doc, 0)
		} else {
			pipe.Set(ctx, s.runKey(id), doc, s.ttl)
			pipe.Expire(ctx, s.pointsKey(id), s.ttl)
		}
	}
	if active {
		pipe.Set(ctx, s.activeKey(), id, 0)
	} else {
		clearActive.Eval(ctx, pipe, []string{s.activeKey()}, id) // EVALSHA has no fallback in a pipeline
	}
	_, err := pipe.Exec(ctx)
	return err
}

// PutPoints stores points of run id by their second.
func (s *LoadtestLive) PutPoints(ctx context.Context, id string, points map[int]loadgen.Point) error {
	if len(points) == 0 {
		return nil
	}
	fields := make(map[string]any, len(points))
	for i, p := range points {
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("redis: encode point: %w", err)
		}
		fields[strconv.Itoa(i)] = b
	}
	return s.rdb.HSet(ctx, s.pointsKey(id), fields).Err()
}

// Run is run id's state; nil when there is none.
func (s *LoadtestLive) Run(ctx context.Context, id string) (*loadtest.Run, error) {
	b, err := s.rdb.Get(ctx, s.runKey(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var r loadtest.Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("redis: decode run %s: %w", id, err)
	}
	return &r, nil
}

// Points are run id's points in order.
func (s *LoadtestLive) Points(ctx context.Context, id string) ([]loadgen.Point, error) {
	m, err := s.rdb.HGetAll(ctx, s.pointsKey(id)).Result()
	if err != nil {
		return nil, err
	}
	type point struct {
		i int
		p loadgen.Point
	}
	pts := make([]point, 0, len(m))
	for k, v := range m {
		i, err := strconv.Atoi(k)
		if err != nil {
			continue // not ours
		}
		var p loadgen.Point
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			return nil, fmt.Errorf("redis: decode point %s of run %s: %w", k, id, err)
		}
		pts = append(pts, point{i, p})
	}
	sort.Slice(pts, func(a, b int) bool { return pts[a].i < pts[b].i })
	out := make([]loadgen.Point, len(pts))
	for i, p := range pts {
		out[i] = p.p
	}
	return out, nil
}

// Active is the id of the run in progress, "" when none.
func (s *LoadtestLive) Active(ctx context.Context) (string, error) {
	id, err := s.rdb.Get(ctx, s.activeKey()).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	return id, err
}
