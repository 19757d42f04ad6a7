package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"txn/internal/backoff"
	"txn/internal/loadgen"
)

// WorkerConfig configures a load worker.
type WorkerConfig struct {
	Service string // the loadtest service's URL, e.g. http://10.0.0.5:8001
	Token   string // its admin token (the processor's)
	Name    string // how the fleet lists it
	// Target, if set, is the processor's URL from this machine; default the service's.
	Target string
	Log    *slog.Logger
}

// errFenced ends a worker's part in a run it can no longer report to.
var errFenced = errors.New("the service did not answer for the worker's lease: its part in the run was abandoned")

// worker is a load worker's connection to the service.
type worker struct {
	cfg  WorkerConfig
	http *http.Client
	id   string
	done map[string]bool // runs it finished, whose orders may still name them
	// lastOK is when a heartbeat was last answered: the worker sends nothing past it + WorkerLease.
	lastOK time.Time
}

// RunWorker joins the fleet of the service at cfg.Service and sends its share of every run
// that claims it until ctx ends. It registers again whenever the service forgets it (a
// restart, or it was counted lost).
func RunWorker(ctx context.Context, cfg WorkerConfig) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	w := &worker{cfg: cfg, http: loadgen.NewHTTPClient(2, 30*time.Second), done: map[string]bool{}}
	for ctx.Err() == nil {
		if err := w.register(ctx); err != nil {
			return err
		}
		w.serve(ctx)
	}
	return nil
}

func (w *worker) call(ctx context.Context, method, path string, in, out any) error {
	url := strings.TrimSuffix(w.cfg.Service, "/") + "/api/v1" + path
	return callJSON(ctx, w.http, "the loadtest service", url, w.cfg.Token, method, in, out)
}

// register joins the fleet, retrying while the service is unreachable; it fails only when
// ctx ends or the service refuses the worker for good (a bad token or name).
func (w *worker) register(ctx context.Context) error {
	wait := backoff.New(250*time.Millisecond, 5*time.Second)
	for {
		var info WorkerInfo
		err := w.call(ctx, http.MethodPost, "/workers", map[string]string{"name": w.cfg.Name}, &info)
		if err == nil {
			w.id = info.ID
			w.cfg.Log.Info("joined the fleet", "id", info.ID, "name", info.Name, "service", w.cfg.Service)
			return nil
		}
		var e *APIError
		if errors.As(err, &e) && e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests {
			return fmt.Errorf("join the fleet: %w", err)
		}
		w.cfg.Log.Warn("cannot join the fleet yet", "err", err)
		if !wait.Wait(ctx) {
			return ctx.Err()
		}
	}
}

// serve waits for runs, idle, and takes part in each; it returns when the service no longer
// knows the worker, or ctx ends.
func (w *worker) serve(ctx context.Context) {
	tick := time.NewTicker(WorkerHeartbeat)
	defer tick.Stop()
	for {
		var orders WorkerOrders
		err := w.call(ctx, http.MethodPost, "/workers/"+w.id+"/heartbeat", WorkerReport{State: WorkerIdle}, &orders)
		if err == nil {
			w.lastOK = time.Now()
		}
		switch {
		case isNotFound(err):
			return
		case err != nil:
			w.cfg.Log.Warn("heartbeat failed", "err", err)
		case orders.RunID != "" && !w.done[orders.RunID]:
			w.done[orders.RunID] = true
			if err := w.take(ctx, orders.RunID); err != nil {
				w.cfg.Log.Error("run "+orders.RunID, "err", err)
				if errors.Is(err, errFenced) {
					return // counted lost by now: join again as a new worker
				}
				w.abandon(ctx, orders.RunID)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// abandon tells the service the worker gave up its part in run id having stopped sending, so
// the service settles its share as a lost worker's without waiting for it.
func (w *worker) abandon(ctx context.Context, id string) {
	deadline := time.Now().Add(WorkerLostAfter)
	for time.Now().Before(deadline) {
		err := w.call(ctx, http.MethodPost, "/workers/"+w.id+"/heartbeat", WorkerReport{RunID: id, State: WorkerLost}, nil)
		if err == nil || isNotFound(err) || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(WorkerHeartbeat):
		}
	}
}

func isNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// take fetches the worker's assignment in run id and sends its share.
func (w *worker) take(ctx context.Context, id string) error {
	var a Assignment
	if err := w.call(ctx, http.MethodGet, "/workers/"+w.id+"/assignment", nil, &a); err != nil {
		return fmt.Errorf("assignment: %w", err)
	}
	if a.RunID != id {
		return fmt.Errorf("assignment is for run %s, not %s", a.RunID, id)
	}
	target := a.Target
	if w.cfg.Target != "" {
		target = w.cfg.Target
	}
	x, err := NewExecution(a.RunID, a.Config, ExecutionDeps{Target: Target{URL: target, AdminToken: w.cfg.Token}})
	if err != nil {
		return err
	}
	defer x.Close()
	x.users = a.Users
	x.accounts = make([]account, len(a.Accounts))
	for i, acc := range a.Accounts {
		if acc.Owner < 0 || acc.Owner >= len(a.Users) {
			return fmt.Errorf("assignment: account %s has no owner %d", acc.ID, acc.Owner)
		}
		x.accounts[i] = account{id: acc.ID, owner: acc.Owner}
	}
	x.share, x.startAt = a.Share, a.Start
	w.cfg.Log.Info("sending a share", "run", a.RunID, "share", a.Share.String(), "start", a.Start)
	return (&share{w: w, x: x, runID: a.RunID}).run(ctx)
}

// share is a worker's part in one run while it sends, settles and reports it.
type share struct {
	w       *worker
	x       *Execution
	runID   string
	mark    uint64 // the recorder's mark of the last delta the service took
	applied int    // rate changes applied
	endedAt *time.Time
}

// run sends the share, then settles it, reporting at every heartbeat, and reports its money
// once settled. It abandons the run (errFenced) when the service stops answering for the
// lease, and stops sending when the service says so.
func (s *share) run(ctx context.Context) error {
	gen, stop := context.WithCancel(ctx)
	defer stop()
	sent := make(chan error, 1)
	var ended time.Time
	go func() {
		res, err := s.x.Generate(gen, nil)
		ended = res.Ended.UTC()
		sent <- err
	}()
	if err := s.heartbeatUntil(ctx, sent, WorkerRunning, stop); err != nil {
		return err
	}
	s.endedAt = &ended // written before sent yielded
	settled := make(chan error, 1)
	go func() { s.x.Settle(ctx); settled <- nil }()
	if err := s.heartbeatUntil(ctx, settled, WorkerSettling, stop); err != nil {
		return err
	}
	x := s.x
	money := &WorkerMoney{Deposited: x.deposited.Load(), Withdrawn: x.withdrawn.Load(), Accepted: x.accepted.Load(),
		Ambiguous: x.ambiguousTotal.Load(), Unresolved: x.unresolved.Load(), Holds: *x.holds.counts(0)}
	for {
		if _, err := s.report(ctx, WorkerDone, money); err == nil {
			s.w.cfg.Log.Info("share reported", "run", s.runID)
			return nil
		} else if errors.Is(err, errFenced) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(WorkerHeartbeat):
		}
	}
}

// heartbeatUntil reports state at every heartbeat until until yields, following the orders:
// stop ends the sending, rate changes apply at their point of the schedule. It stops the
// sending and returns errFenced once WorkerLease passed since the last answer: by then the
// service may count the worker lost and settle its share itself.
func (s *share) heartbeatUntil(ctx context.Context, until <-chan error, state string, stop func()) error {
	tick := time.NewTicker(WorkerHeartbeat)
	defer tick.Stop()
	for {
		fence := time.NewTimer(time.Until(s.w.lastOK.Add(WorkerLease)))
		select {
		case err := <-until:
			fence.Stop()
			return err
		case <-fence.C:
			stop()
			return fmt.Errorf("%w (no answer since %s)", errFenced, s.w.lastOK.Format(time.RFC3339Nano))
		case <-tick.C:
			fence.Stop()
		}
		orders, err := s.report(ctx, state, nil)
		if err != nil {
			if errors.Is(err, errFenced) {
				stop()
				return err
			}
			continue
		}
		if orders.RunID != s.runID || orders.Stop {
			stop() // stopped, or the run is gone from the service: its answer says so
		}
		s.applyRates(orders.RateChanges)
	}
}

// report sends one report; errFenced once no report was answered for the lease, or the
// service no longer knows the worker in this run.
func (s *share) report(ctx context.Context, state string, money *WorkerMoney) (WorkerOrders, error) {
	rep := WorkerReport{RunID: s.runID, State: state, EndedAt: s.endedAt, Money: money}
	var next uint64
	if g := s.x.generator(); g != nil && g.Recorder() != nil {
		rep.InFlight = g.Progress().InFlight
		d, mark := g.Recorder().Export(s.mark)
		rep.Delta, next = &d, mark
	}
	var orders WorkerOrders
	lease := s.w.lastOK.Add(WorkerLease)
	actx, cancel := context.WithDeadline(ctx, lease) // a hung call must not outlast the lease
	err := s.w.call(actx, http.MethodPost, "/workers/"+s.w.id+"/heartbeat", rep, &orders)
	cancel()
	switch {
	case err == nil:
		s.w.lastOK = time.Now()
		if rep.Delta != nil {
			s.mark = next
		}
		return orders, nil
	case isNotFound(err):
		return WorkerOrders{}, fmt.Errorf("%w (%v)", errFenced, err)
	case !time.Now().Before(lease):
		return WorkerOrders{}, fmt.Errorf("%w (last error: %v)", errFenced, err)
	}
	s.w.cfg.Log.Warn("report failed", "run", s.runID, "err", err)
	return WorkerOrders{}, err
}

// applyRates applies the rate changes not applied yet; one the runner cannot take yet (it has
// not started) waits for the next heartbeat.
func (s *share) applyRates(changes []RateChange) {
	r, ok := s.x.generator().(*loadgen.Runner)
	for ; ok && s.applied < len(changes); s.applied++ {
		c := changes[s.applied]
		if _, err := r.SetRateAt(time.Duration(c.AtMs)*time.Millisecond, c.Rate); errors.Is(err, loadgen.ErrNotRunning) && r.Recorder() == nil {
			return
		}
	}
}
