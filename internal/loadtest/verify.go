package loadtest

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// AnalyticsCounter counts the rows whose description starts with prefix in the analytics
// store: one per event, a transaction's or a hold's.
type AnalyticsCounter func(ctx context.Context, prefix string) (int64, error)

// Verify checks the money once the run is over (after Settle): the processor reconciles, the
// run's accounts hold what was seeded and deposited less what was withdrawn (transfers and
// captured holds only move money among them) with nothing left reserved for pending holds,
// and, when the deps count analytics, the analytics hold every event of the run once the
// pipeline caught up (polled until AnalyticsWait passes).
func (x *Execution) Verify(ctx context.Context) *Verification {
	v := &Verification{Problems: []string{}, Ambiguous: x.ambiguousTotal.Load(), Unresolved: x.unresolved.Load(),
		LostWorkerRequests: x.lostResent.Load()}
	problem := func(format string, args ...any) { v.Problems = append(v.Problems, fmt.Sprintf(format, args...)) }
	x.reconcile(ctx, v, problem)

	v.ExpectedBalanceTotal = x.seededAmount.Load() + x.deposited.Load() - x.withdrawn.Load()
	total, held, err := x.balanceTotal(ctx)
	if err != nil {
		problem("read balances: %v", err)
	} else {
		v.ActualBalanceTotal = total
		v.BalancesMatch = total == v.ExpectedBalanceTotal
		if !v.BalancesMatch {
			problem("the run's accounts hold %d, expected %d", total, v.ExpectedBalanceTotal)
		}
	}
	if v.Unresolved > 0 {
		problem("%d requests never got a definite answer", v.Unresolved)
	}
	holdsOK := x.checkHolds(v, held, err == nil, problem)

	v.Accepted = x.seededCount.Load() + x.accepted.Load() + x.holds.captured.Load()
	v.ExpectedInAnalytics = v.Accepted + x.holds.analyticsRows() - x.holds.captured.Load()
	analyticsOK := x.checkAnalytics(ctx, v, problem)
	v.OK = v.Balanced && v.BalancesMatch && v.Unresolved == 0 && holdsOK && analyticsOK
	v.CheckedAt = time.Now().UTC()
	return v
}

// reconcile asks the processor whether its books balance in every currency.
func (x *Execution) reconcile(ctx context.Context, v *Verification, problem func(string, ...any)) {
	rec, err := x.prep.Reconciliation(ctx)
	if err != nil {
		problem("reconciliation: %v", err)
		return
	}
	v.Balanced = len(rec) > 0
	names := make([]string, 0, len(rec))
	for cur := range rec {
		names = append(names, cur)
	}
	sort.Strings(names)
	for _, cur := range names {
		if b := rec[cur]; !b.Balanced || !b.AccountsMatchingEntries {
			v.Balanced = false
			problem("reconciliation of %s: sum %d, entries sum %d, accounts match entries %v",
				cur, b.Sum, b.EntriesSum, b.AccountsMatchingEntries)
		}
	}
}

// checkHolds records what became of the run's holds (when its mix has them) and reports
// whether none was left pending: neither by the run's count nor, when read (readHeld), by
// the money the processor still reserves on the run's accounts.
func (x *Execution) checkHolds(v *Verification, held int64, readHeld bool, problem func(string, ...any)) bool {
	if x.cfg.Mix != nil && x.cfg.Mix.Hold > 0 {
		v.Holds = x.holds.counts(held)
	}
	ok := true
	if n := x.holds.pending.Load(); n > 0 {
		ok = false
		problem("%d holds left pending: their capture or void was refused", n)
	}
	if readHeld && held != 0 {
		ok = false
		problem("the run's accounts still reserve %d for pending holds", held)
	}
	return ok
}

// checkAnalytics waits up to the deps' AnalyticsWait for the analytics to hold the run's
// expected rows, and reports whether they do. The holds' rows (their descriptions carry
// holdMark) are counted apart as well, so that a shortfall of one kind cannot hide behind a
// surplus of another; it waits for both counts to be exact, never for a total that a
// pipeline still catching up might pass through.
func (x *Execution) checkAnalytics(ctx context.Context, v *Verification, problem func(string, ...any)) bool {
	count, wait := x.deps.Analytics, x.deps.AnalyticsWait
	if count == nil {
		return true
	}
	withHolds := x.cfg.Mix != nil && x.cfg.Mix.Hold > 0
	wantHolds := x.holds.analyticsRows()
	start := time.Now()
	deadline := start.Add(wait)
	var n, nh int64
	var err error
	for {
		if n, err = count(ctx, x.prefix); err == nil && withHolds {
			nh, err = count(ctx, x.prefix+holdMark)
		}
		if err == nil && n == v.ExpectedInAnalytics && nh == wantHolds {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	v.AnalyticsWaitMs = time.Since(start).Milliseconds()
	if err != nil {
		problem("count analytics: %v", err)
		return false
	}
	v.EventsInAnalytics = &n
	if n == v.ExpectedInAnalytics && nh == wantHolds {
		return true
	}
	msg := fmt.Sprintf("analytics hold %d of the run's rows after %s, want %d", n, wait, v.ExpectedInAnalytics)
	if withHolds {
		msg += fmt.Sprintf(" (%d of its holds' rows, want %d)", nh, wantHolds)
	}
	problem("%s", msg)
	return false
}

// balanceTotal sums the balances of every account of the run's users, and what they reserve
// for pending holds (balance less available).
func (x *Execution) balanceTotal(ctx context.Context) (total, held int64, err error) {
	var sum, reserved atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(prepWorkers)
	for _, u := range x.users {
		g.Go(func() error {
			accts, err := x.prep.Accounts(gctx, u.ID)
			for _, a := range accts {
				sum.Add(a.Balance)
				reserved.Add(a.Balance - a.Available)
			}
			return err
		})
	}
	err = g.Wait()
	return sum.Load(), reserved.Load(), err
}
