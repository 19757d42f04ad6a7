package loadtest

import (
	"context"
	"fmt"
	"time"

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

// Cleanup removes run id's users, accounts and transactions: first from the read models (which
// need the users' ids, listed by the run's tag), then from the processor with a purge by the
// tag, so a cleanup that failed half way finds the users again when repeated.
// progress, if set, hears of each step as it begins.
func Cleanup(ctx context.Context, p *LedgerClient, id string, c Cleaners, progress func(step string)) (CleanupResult, error) {
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
	if c.Activities != nil && len(ids) > 0 {
		step(fmt.Sprintf("deleting the activity of %d users", len(ids)))
		if res.Activities, err = c.Activities(ctx, ids); err != nil {
			return res, fmt.Errorf("delete activity: %w", err)
		}
	}
	if c.Notifications != nil {
		var n int64
		if len(ids) > 0 {
			step(fmt.Sprintf("deleting the notifications of %d users", len(ids)))
			if n, err = c.Notifications(ctx, ids); err != nil {
				return res, fmt.Errorf("delete notifications: %w", err)
			}
		}
		res.Notifications = &n
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
	res.At = time.Now().UTC()
	return res, nil
}
