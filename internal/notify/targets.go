package notify

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"txn/internal/ledger"
)

// TargetCache keeps users' webhook targets for a short while, so a burst of notifications to
// one user costs one database read; a changed or cleared webhook_url applies within ttl.
type TargetCache struct {
	next Targets
	ttl  time.Duration
	max  int
	now  func() time.Time

	mu      sync.Mutex
	entries map[uuid.UUID]target
	// reads makes concurrent misses for one user share one database read: the tasks of a
	// message arrive together, and a transfer's two sides often share users.
	reads singleflight.Group
}

type target struct {
	url     *string
	secret  string
	missing bool // the user does not exist
	expires time.Time
}

// NewTargetCache caches next's answers for ttl (0: not at all), for at most max users.
func NewTargetCache(next Targets, ttl time.Duration, max int) *TargetCache {
	if max <= 0 {
		max = 100_000
	}
	return &TargetCache{next: next, ttl: ttl, max: max, now: time.Now, entries: map[uuid.UUID]target{}}
}

func (c *TargetCache) WebhookTarget(ctx context.Context, userID uuid.UUID) (*string, string, error) {
	now := c.now()
	c.mu.Lock()
	t, ok := c.entries[userID]
	c.mu.Unlock()
	if ok && now.Before(t.expires) {
		if t.missing {
			return nil, "", ledger.ErrNotFound
		}
		return t.url, t.secret, nil
	}
	v, err, _ := c.reads.Do(userID.String(), func() (any, error) {
		url, secret, err := c.next.WebhookTarget(ctx, userID)
		return target{url: url, secret: secret}, err
	})
	read := v.(target)
	url, secret := read.url, read.secret
	missing := errors.Is(err, ledger.ErrNotFound)
	if c.ttl <= 0 || (err != nil && !missing) {
		return url, secret, err
	}
	c.mu.Lock()
	if len(c.entries) >= c.max {
		for id, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, id)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries) // all fresh: a burst over many users; they are reread soon enough
		}
	}
	c.entries[userID] = target{url: url, secret: secret, missing: missing, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return url, secret, err
}
