package ledger

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Committer applies a batch in one database transaction: it locks the accounts, calls Apply
// and writes the plan. It returns nil only when the batch committed.
type Committer interface {
	Commit(ctx context.Context, batch []*Pending) error
}

// BatcherConfig tunes group commit. Zero values take the defaults.
type BatcherConfig struct {
	MaxBatch int           // requests per database transaction (default 512)
	Workers  int           // batches in flight at once (default 2)
	Linger   time.Duration // how long a worker waits to fill a batch (default 0: take what is queued)
	Timeout  time.Duration // limit for one commit (default 10s)
	// Observe, when set, is told of every batch: its size, how long it took, and its error.
	Observe func(size int, took time.Duration, err error)
}

func (c *BatcherConfig) defaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 512
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
}

// ErrStopped is returned for work submitted after the batcher stopped.
var ErrStopped = Errorf(CodeUnavailable, "the service is shutting down")

type job struct {
	items []*Pending
	done  chan error
}

// Batcher gathers concurrent transaction requests into batches, so that locks, round trips and
// fsync are paid per batch instead of per request. Requests of one job (a batch request) stay
// together and in order.
type Batcher struct {
	cfg   BatcherConfig
	store Committer
	in    chan *job

	mu      sync.RWMutex
	stopped bool
}

func NewBatcher(store Committer, cfg BatcherConfig) *Batcher {
	cfg.defaults()
	return &Batcher{cfg: cfg, store: store, in: make(chan *job, 4*cfg.MaxBatch)}
}

// Submit queues items and waits until their batch has committed or failed; each item's Result
// is set on success. A nil error means every item has its own Result (which may be an error).
func (b *Batcher) Submit(ctx context.Context, items []*Pending) error {
	j := &job{items: items, done: make(chan error, 1)}
	b.mu.RLock()
	if b.stopped {
		b.mu.RUnlock()
		return ErrStopped
	}
	select {
	case b.in <- j:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	// Once queued the job will be committed or failed: wait for it even if the caller is gone,
	// so the outcome is never ambiguous to us.
	return <-j.done
}

// Run works until ctx is cancelled, then refuses new work, finishes what was queued and returns.
func (b *Batcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := 0; i < b.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.work()
		}()
	}
	<-ctx.Done()
	b.mu.Lock()
	b.stopped = true
	close(b.in) // no sender is inside Submit's send any more: they hold the read lock
	b.mu.Unlock()
	wg.Wait()
	return nil
}

func (b *Batcher) work() {
	var linger *time.Timer
	for first := range b.in {
		jobs := []*job{first}
		n := len(first.items)
		if b.cfg.Linger > 0 && n < b.cfg.MaxBatch {
			if linger == nil {
				linger = time.NewTimer(b.cfg.Linger)
			} else {
				linger.Reset(b.cfg.Linger)
			}
		}
	gather:
		for n < b.cfg.MaxBatch {
			select {
			case j, ok := <-b.in:
				if !ok {
					break gather
				}
				jobs = append(jobs, j)
				n += len(j.items)
				continue
			default:
			}
			if b.cfg.Linger <= 0 {
				break
			}
			select {
			case j, ok := <-b.in:
				if !ok {
					break gather
				}
				jobs = append(jobs, j)
				n += len(j.items)
			case <-linger.C:
				break gather
			}
		}
		if linger != nil && !linger.Stop() {
			select {
			case <-linger.C:
			default:
			}
		}
		b.commit(jobs, n)
	}
}

func (b *Batcher) commit(jobs []*job, n int) {
	batch := make([]*Pending, 0, n)
	for _, j := range jobs {
		batch = append(batch, j.items...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout)
	start := time.Now()
	err := b.store.Commit(ctx, batch)
	cancel()
	if b.cfg.Observe != nil {
		b.cfg.Observe(len(batch), time.Since(start), err)
	}
	if err != nil && ErrorCode(err) == "" {
		err = errors.Join(Errorf(CodeUnavailable, "the transaction was not applied; it is safe to retry"), err)
	}
	for _, j := range jobs {
		j.done <- err
	}
}
