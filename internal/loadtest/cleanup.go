package loadtest

import (
	"context"
	"errors"
	"fmt"
	"time"
	"txn/internal/apierr"
	"txn/internal/ledger"

	"github.com/google/uuid"
)

// Cleaners remove a run's traces from the read models; nil ones are skipped.
type Cleaners struct {
	Activities    func(ctx context.Context, users []uuid.UUID) (int64, error)
	Notifications func(ctx context.Context, users []uuid.UUID) (int64, error)
	// Analytics deletes the transactions of the given users whose description starts with
	// prefix: the prefix alone is not enough, since any user may write any description.
	Analytics func(ctx context.Context, users []uuid.UUID, prefix string) error
}

// RunLedger is what Cleanup needs of the processor (LedgerClient has it).
type RunLedger interface {
	UsersByTag(ctx context.Context, tag string) ([]ledger.User, error)
	Purge(ctx context.Context, tag string) (ledger.PurgeResult, error)
}

// Cleanup removes run id's users, accounts, holds and transactions (its holds' analytics rows
// carry the run's prefix as its transactions' do): first from the read models (which need the
// users' ids, listed by the run's tag), then from the processor with a purge by the tag, so a
// cleanup that failed half way finds the users again when repeated. The pipeline
// may still deliver the run's last events meanwhile (notifications lag behind the ledger), so
// once the users are gone, which makes the notifier drop their tasks, the activity and the
// inbox are swept once more. progress, if set, hears of each step as it begins.
func Cleanup(ctx context.Context, p RunLedger, id string, c Cleaners, progress func(step string)) (CleanupResult, error) {
	res := CleanupResult{}
	step := func(s string) {
		if progress != nil {
			progress(s)
		}
	}
	users, err := p.UsersByTag(ctx, id)
	if err != nil {
		return res, fmt.Errorf("list the run's users: %w", err)
	}
	ids := make([]uuid.UUID, 0, len(users))
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	if err := sweep(ctx, c, ids, &res, step, ""); err != nil {
		return res, err
	}
	if c.Analytics != nil {
		if len(ids) > 0 {
			step("deleting the analytics rows")
			if err := c.Analytics(ctx, ids, DescriptionPrefix(id)); err != nil {
				return res, fmt.Errorf("delete analytics: %w", err)
			}
		}
		res.Analytics = true
	}
	step("purging the users, accounts and transactions")
	if res.PurgeResult, err = p.Purge(ctx, id); err != nil {
		return res, fmt.Errorf("purge: %w", err)
	}
	if err := sweep(ctx, c, ids, &res, step, "what the pipeline delivered meanwhile: "); err != nil {
		return res, err
	}
	res.At = time.Now().UTC()
	return res, nil
}

// sweep deletes the activity and notifications of users, adding the counts to res.
func sweep(ctx context.Context, c Cleaners, users []uuid.UUID, res *CleanupResult, step func(string), what string) error {
	if c.Activities != nil && len(users) > 0 {
		step(fmt.Sprintf("deleting %sthe activity of %d users", what, len(users)))
		n, err := c.Activities(ctx, users)
		if err != nil {
			return fmt.Errorf("delete activity: %w", err)
		}
		res.Activities += n
	}
	if c.Notifications != nil {
		if res.Notifications == nil {
			res.Notifications = new(int64)
		}
		if len(users) > 0 {
			step(fmt.Sprintf("deleting %sthe notifications of %d users", what, len(users)))
			n, err := c.Notifications(ctx, users)
			if err != nil {
				return fmt.Errorf("delete notifications: %w", err)
			}
			*res.Notifications += n
		}
	}
	return nil
}

// cleanupJob is a run's data deletion under way: it runs on its own, outliving the request
// that started it, and records its progress on the run.
type cleanupJob struct {
	done chan struct{}
	res  CleanupResult
	err  error
}

// DeleteData removes run id's users, accounts and transactions and their read models, and
// returns what it removed. The deletion is a job of the service: a request that goes away
// (a closed tab) leaves it running, a second request waits for the same job, and the run
// shows its progress in "cleanup". 409 conflict while the run is in progress or when its
// users share transactions with others; 503 unavailable when a store fails.
func (m *Manager) DeleteData(ctx context.Context, id string) (CleanupResult, error) {
	if a := m.current(id); a != nil {
		return CleanupResult{}, errConflict("run %s is in progress: stop it and wait for it to end first", id)
	}
	if _, err := m.Get(ctx, id); err != nil {
		return CleanupResult{}, err
	}
	m.cleanMu.Lock()
	job := m.cleanups[id]
	if job == nil {
		job = &cleanupJob{done: make(chan struct{})}
		m.cleanups[id] = job
		m.mu.Lock()
		base := m.base
		m.mu.Unlock()
		if base == nil {
			base = context.Background()
		}
		m.wg.Add(1) // shutdown waits for the job to record how far it got
		go m.runCleanup(base, id, job)
	}
	m.cleanMu.Unlock()
	select {
	case <-job.done:
	case <-ctx.Done():
		return CleanupResult{}, ctx.Err()
	}
	if job.err != nil {
		var apiErr *APIError
		if errors.As(job.err, &apiErr) && apiErr.Status == 409 {
			return job.res, errConflict("%v", job.err)
		}
		return job.res, apierr.Errorf(apierr.CodeUnavailable, "cleanup failed: %v", job.err)
	}
	return job.res, nil
}

// runCleanup deletes run id's data, recording each step on the run.
func (m *Manager) runCleanup(ctx context.Context, id string, job *cleanupJob) {
	defer m.wg.Done()
	defer func() {
		m.cleanMu.Lock()
		delete(m.cleanups, id)
		m.cleanMu.Unlock()
		close(job.done)
	}()
	started := time.Now().UTC()
	record := func(c CleanupResult) {
		pctx, cancel := persistCtx()
		defer cancel()
		rec, err := m.d.History.Record(pctx, id)
		if err == nil && rec != nil {
			rec.Run.Cleanup = &c
			err = m.save(pctx, *rec, false)
		}
		if err != nil {
			m.d.Log.Warn("cannot record the cleanup", "run", id, "err", err)
		}
	}
	progress := func(step string) {
		record(CleanupResult{Status: CleanupRunning, Step: step, StartedAt: started})
	}
	progress("listing the run's users")
	job.res, job.err = Cleanup(ctx, m.proc, id, m.d.Cleaners, progress)
	job.res.StartedAt = started
	if job.err != nil {
		job.res.Status, job.res.Error = CleanupFailed, job.err.Error()
		var apiErr *APIError
		if errors.As(job.err, &apiErr) && apiErr.Status == 409 {
			// The run's users traded with users outside it: purging them would change those
			// users' books, so no retry can succeed.
			job.res.Error += " (this will not change by retrying: the run's users share transactions with other users)"
		}
		m.d.Log.Warn("cleanup failed", "run", id, "err", job.err)
	} else {
		job.res.Status = CleanupDone
	}
	record(job.res)
}
