// Package redis is the Redis adapter: the API-key cache and the cluster-wide rate limiter.
// Redis is an accelerator here, never the authority: when it is unreachable the key cache is
// skipped and the rate limit fails open, and both say so through their callbacks.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
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
// counters in Redis in one pipeline per tick and learns the others' counts, so a request never
// waits for Redis. Between two ticks an instance allows at most its share of what is left of the
// limit (shareOf), from the count of instances alive (each marks itself alive in Redis every
// tick), so that instances deciding at once do not together pass the limit. With one instance
// the limit is exact.
type Limiter struct {
	rdb    *goredis.Client
	prefix string
	id     string // this instance, among those alive
	limit  func(scope string) int
	tick   time.Duration

	// OnFailOpen is told when Redis fails (err) and when it is back (nil); FailedOpen counts the
	// requests allowed unchecked meanwhile.
	OnFailOpen func(err error)
	FailedOpen atomic.Int64

	open   atomic.Bool
	peers  atomic.Int64 // limiters alive, this one included, as of the last tick
	mu     sync.Mutex
	window int64
	scopes map[string]*scopeCount
}

type scopeCount struct {
	pending int64 // allowed here, not yet added in Redis
	synced  int64 // allowed here and added in Redis
	others  int64 // allowed by other instances, as of the last tick
	share   int64 // how many this instance may allow until the next tick
}

// NewLimiter limits scope to limit(scope) requests per second; a limit of 0 means none.
func NewLimiter(rdb *goredis.Client, prefix string, limit func(scope string) int) *Limiter {
	var id [8]byte
	_, _ = rand.Read(id[:])
	l := &Limiter{rdb: rdb, prefix: prefix + "rate:", id: hex.EncodeToString(id[:]), limit: limit,
		tick: 50 * time.Millisecond, scopes: map[string]*scopeCount{}}
	l.peers.Store(1)
	return l
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
		c = &scopeCount{share: l.shareOf(limit)}
		l.scopes[scope] = c
	}
	if c.pending+n > c.share || c.pending+c.synced+c.others+n > limit {
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
			// Leave the living at once rather than in two seconds: the others' shares grow now.
			dctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_ = l.rdb.ZRem(dctx, l.aliveKey(), l.id).Err()
			return nil
		case <-t.C:
			l.sync(ctx)
		}
	}
}

// aliveKey is the sorted set of the limiters alive, scored by when each was last seen (ms).
func (l *Limiter) aliveKey() string { return l.prefix + "alive" }

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

	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	pipe := l.rdb.Pipeline()
	// This limiter is alive; so are those seen within the last two seconds.
	now := time.Now()
	pipe.ZAdd(ctx, l.aliveKey(), goredis.Z{Score: float64(now.UnixMilli()), Member: l.id})
	pipe.ZRemRangeByScore(ctx, l.aliveKey(), "-inf", strconv.FormatInt(now.Add(-2*time.Second).UnixMilli(), 10))
	peers := pipe.ZCard(ctx, l.aliveKey())
	pipe.Expire(ctx, l.aliveKey(), time.Minute)
	cmds := make([]*goredis.IntCmd, len(deltas))
	suffix := ":" + time.Unix(window, 0).UTC().Format("150405")
	for i, d := range deltas {
		key := l.prefix + d.scope + suffix
		cmds[i] = pipe.IncrBy(ctx, key, d.n)
		if d.first {
			pipe.Expire(ctx, key, 3*time.Second)
		}
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
	l.peers.Store(max(peers.Val(), 1))

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
		total := cmds[i].Val()
		c.pending -= d.n
		c.synced += d.n
		c.others = total - c.synced
		c.share = l.shareOf(max(int64(l.limit(d.scope))-total, 0))
	}
}

// shareOf is how much of what is left of a limit this instance may allow until its next tick.
// Alone, all of it. With others, half of an equal part: the total it learned is already old by
// what the others allowed since they last told Redis, each at most its own share, so taking
// half leaves room for that and what is left is shared again at every tick (a flood reaches the
// limit within a few ticks).
func (l *Limiter) shareOf(left int64) int64 {
	if k := l.peers.Load(); k > 1 {
		return left / (2 * k)
	}
	return left
}
