// Package redis is the Redis adapter: the API-key cache and the cluster-wide rate limiter.
// Redis is an accelerator here, never the authority: when it is unreachable the key cache is
// skipped and the rate limit fails open, and both say so through their callbacks.
package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
)

// quiet drops go-redis's own log lines (one per failed dial while Redis is down): the
// adapters report failures through their callbacks and metrics instead.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...interface{}) {}

func init() { goredis.SetLogger(quiet{}) }

// Connect opens a client with timeouts short enough that a hung Redis cannot stall requests.
func Connect(url string) (*goredis.Client, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.DialTimeout = 250 * time.Millisecond
	opt.ReadTimeout = 200 * time.Millisecond
	opt.WriteTimeout = 200 * time.Millisecond
	opt.MaxRetries = 0
	// One dial attempt: go-redis otherwise dials 5 times with backoff (about 1.7 s against a
	// refused port), which stalled requests on the key cache and delayed the rate limit's fail-open.
	opt.DialerRetries = 1
	return goredis.NewClient(opt), nil
}

// breaker skips Redis for a while after a failure, so an outage costs one timeout, not one
// per request.
type breaker struct{ openUntil atomic.Int64 }

var errOpen = errors.New("redis: skipped after a recent failure")

func (b *breaker) allow() bool { return time.Now().UnixNano() >= b.openUntil.Load() }

func (b *breaker) record(err error) error {
	if err != nil && !errors.Is(err, goredis.Nil) {
		b.openUntil.Store(time.Now().Add(time.Second).UnixNano())
	}
	return err
}

// KeyCache implements ledger.KeyCache.
type KeyCache struct {
	rdb    *goredis.Client
	prefix string
	ttl    time.Duration
	br     breaker
}

func NewKeyCache(rdb *goredis.Client, prefix string) *KeyCache {
	// A short life bounds how long a key purged while Redis was unreachable stays cached.
	return &KeyCache{rdb: rdb, prefix: prefix + "apikey:", ttl: time.Minute}
}

func (c *KeyCache) key(hash []byte) string { return c.prefix + hex.EncodeToString(hash) }

func (c *KeyCache) Get(ctx context.Context, hash []byte) (uuid.UUID, bool, error) {
	if !c.br.allow() {
		return uuid.Nil, false, errOpen
	}
	s, err := c.rdb.Get(ctx, c.key(hash)).Result()
	if errors.Is(err, goredis.Nil) {
		return uuid.Nil, false, nil
	} else if err != nil {
		return uuid.Nil, false, c.br.record(err)
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, false, nil // not ours: treat as a miss, the store will answer
	}
	return id, true, nil
}

func (c *KeyCache) Set(ctx context.Context, hash []byte, userID uuid.UUID) error {
	if !c.br.allow() {
		return errOpen
	}
	return c.br.record(c.rdb.Set(ctx, c.key(hash), userID.String(), c.ttl).Err())
}

func (c *KeyCache) Delete(ctx context.Context, hashes [][]byte) error {
	keys := make([]string, len(hashes))
	for i, h := range hashes {
		keys[i] = c.key(h)
	}
	// Deletion is not skipped by the breaker: a purged key must not stay cached.
	return c.br.record(c.rdb.Del(ctx, keys...).Err())
}

// Limiter allows each scope (a caller) a number of requests per second across every instance.
// Requests are decided in memory; a background loop adds this instance's counts to per-second
// counters in Redis in one pipeline per tick and learns the other instances' counts, so a
// request never waits for Redis. With one instance the limit is exact; with several it may
// overshoot by what the others allowed within one tick.
type Limiter struct {
	rdb    *goredis.Client
	prefix string
	limit  func(scope string) int
	tick   time.Duration

	// OnFailOpen is told when Redis fails (err) and when it is back (nil); FailedOpen counts the
	// requests allowed unchecked meanwhile.
	OnFailOpen func(err error)
	FailedOpen atomic.Int64

	open   atomic.Bool
	mu     sync.Mutex
	window int64
	scopes map[string]*scopeCount
}

type scopeCount struct {
	pending int64 // allowed here, not yet added in Redis
	synced  int64 // allowed here and added in Redis
	others  int64 // allowed by other instances, as of the last tick
}

// NewLimiter limits scope to limit(scope) requests per second; a limit of 0 means none.
func NewLimiter(rdb *goredis.Client, prefix string, limit func(scope string) int) *Limiter {
	return &Limiter{rdb: rdb, prefix: prefix + "rate:", limit: limit, tick: 50 * time.Millisecond,
		scopes: map[string]*scopeCount{}}
}

// Allow reports whether scope may make n more requests now, and if so counts them; if not, it
// counts none and retryAfter says when the window ends.
func (l *Limiter) Allow(scope string, n int64) (ok bool, retryAfter time.Duration) {
	limit := int64(l.limit(scope))
	if limit <= 0 {
		return true, 0
	}
	if l.open.Load() {
		l.FailedOpen.Add(1)
		return true, 0
	}
	now := time.Now()
	sec := now.Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advance(sec)
	c := l.scopes[scope]
	if c == nil {
		c = &scopeCount{}
		l.scopes[scope] = c
	}
	if c.pending+c.synced+c.others+n > limit {
		return false, time.Unix(sec+1, 0).Sub(now)
	}
	c.pending += n
	return true, 0
}

// advance moves to the window of second sec: a second that is over has counts of no more use.
// The caller holds l.mu.
func (l *Limiter) advance(sec int64) {
	if sec != l.window {
		l.window = sec
		clear(l.scopes)
	}
}

// Run syncs the counts with Redis until ctx is done.
func (l *Limiter) Run(ctx context.Context) error {
	t := time.NewTicker(l.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			l.sync(ctx)
		}
	}
}

// sync adds the counts allowed since the last tick to Redis and learns the other instances'.
// Only scopes with new requests are sent (a scope that made none has nothing to add, and what
// the others allowed matters only when it asks again, by the next tick), and a key's expiry is
// set once per window, with its first increment here.
func (l *Limiter) sync(ctx context.Context) {
	type delta struct {
		scope string
		n     int64
		first bool // the first increment of this scope's key in this window from here
	}
	l.mu.Lock()
	l.advance(time.Now().Unix()) // also when no request came to do it
	window := l.window
	deltas := make([]delta, 0, len(l.scopes))
	for s, c := range l.scopes {
		if c.pending > 0 {
			deltas = append(deltas, delta{s, c.pending, c.synced == 0})
		}
	}
	l.mu.Unlock()
	if len(deltas) == 0 && !l.open.Load() {
		return
	}

	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	pipe := l.rdb.Pipeline()
	cmds := make([]*goredis.IntCmd, len(deltas))
	suffix := ":" + time.Unix(window, 0).UTC().Format("150405")
	for i, d := range deltas {
		key := l.prefix + d.scope + suffix
		cmds[i] = pipe.IncrBy(ctx, key, d.n)
		if d.first {
			pipe.Expire(ctx, key, 3*time.Second)
		}
	}
	if len(deltas) == 0 {
		pipe.Ping(ctx) // probe while failed open
	}
	_, err := pipe.Exec(ctx)
	if err != nil {
		if !l.open.Swap(true) && l.OnFailOpen != nil {
			l.OnFailOpen(err)
		}
		return
	}
	if l.open.Swap(false) && l.OnFailOpen != nil {
		l.OnFailOpen(nil)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.window != window {
		return // a new second began: its counts start from zero
	}
	for i, d := range deltas {
		c := l.scopes[d.scope]
		if c == nil {
			continue
		}
		c.pending -= d.n
		c.synced += d.n
		c.others = cmds[i].Val() - c.synced
	}
}
