package loadtest

import (
	"context"
	"sync"
	"time"

	"txn/internal/apierr"
	"txn/internal/loadgen"
)

// generator is what sends a run's schedule and measures it: this process's runner, or the
// run's workers (distribution).
type generator interface {
	Schedule() loadgen.Schedule
	Recorder() *loadgen.Recorder // nil until the sending starts
	Progress() loadgen.Progress
	Points() []loadgen.Point
	Summary() loadgen.Summary
	SetRate(rate float64) (loadgen.Schedule, error)
}

// generation holds a run's generator, so it can be swapped in atomically.
type generation struct{ generator }

func (x *Execution) generator() generator {
	if g := x.runner.Load(); g != nil {
		return g.generator
	}
	return nil
}

// distribution is a run sent by workers, as the service sees it: the shared schedule, the
// merged measurements (one recorder shard per worker), and each worker's reports.
type distribution struct {
	fleet   *Fleet
	runID   string
	workers []*fleetWorker // by share index; their info and last report are under fleet.mu

	mu      sync.Mutex
	tmpl    *Assignment // nil until the run's users and accounts exist
	start   time.Time
	sched   loadgen.Schedule
	changes []RateChange
	stop    bool
	rec     *loadgen.Recorder
}

// begin hands out the assignments: the schedule starts at start.
func (d *distribution) begin(tmpl Assignment, start time.Time, sched loadgen.Schedule) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tmpl, d.start, d.sched = &tmpl, start, sched
	d.rec = loadgen.NewRecorder(start, len(d.workers), loadgen.DefaultLateAfter)
}

// assignment is the part of worker index. 409 conflict before the run has one.
func (d *distribution) assignment(index int) (Assignment, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tmpl == nil {
		return Assignment{}, apierr.Errorf(apierr.CodeConflict, "run %s is preparing: its assignments are not ready", d.runID)
	}
	a := *d.tmpl
	a.Start, a.Share = d.start, loadgen.Share{Index: index, Count: len(d.workers)}
	return a, nil
}

// report takes worker w's report and answers with its orders. 400 validation_failed when
// its measurements do not decode.
func (d *distribution) report(w *fleetWorker, rep WorkerReport) (WorkerOrders, error) {
	d.mu.Lock()
	rec, ready := d.rec, d.tmpl != nil
	orders := WorkerOrders{Stop: d.stop, RateChanges: append([]RateChange{}, d.changes...)}
	d.mu.Unlock()
	if ready {
		orders.RunID = d.runID
	}
	if rep.RunID != d.runID {
		return orders, nil // not yet started on it
	}
	if rep.Delta != nil && rec != nil {
		if err := rec.Apply(w.index, *rep.Delta); err != nil {
			return WorkerOrders{}, apierr.Invalid(apierr.FieldError{Field: "delta", Message: err.Error()})
		}
	}
	d.fleet.mu.Lock()
	defer d.fleet.mu.Unlock()
	if w.info.State == WorkerLost || w.info.State == WorkerDone {
		return orders, nil // a late or repeated report changes nothing
	}
	if rep.State == WorkerLost { // it gave up, having stopped sending
		d.lose(w, time.Now())
		return orders, nil
	}
	w.last = rep
	switch rep.State {
	case WorkerRunning, WorkerSettling, WorkerDone:
		w.info.State = rep.State
	}
	w.info.InFlight = rep.InFlight
	if rep.Delta != nil {
		w.info.Sent, w.info.Late = rep.Delta.Sent, rep.Delta.Late
		w.info.OK, w.info.Failed = 0, 0
		for _, g := range rep.Delta.Totals {
			n := g.Count
			if g.Outcome == loadgen.OutcomeOK {
				w.info.OK += n
			} else {
				w.info.Failed += n
			}
		}
	}
	return orders, nil
}

// halt orders every worker to end its sending.
func (d *distribution) halt() {
	d.mu.Lock()
	d.stop = true
	d.mu.Unlock()
}

// markLost counts lost the workers unheard of for WorkerLostAfter at now, with their share
// left unsent, and reports whether every worker is done or lost.
// A worker still waiting to start WorkerLostAfter past the start never fetched its part.
func (d *distribution) markLost(now time.Time) (finished bool) {
	d.mu.Lock()
	started := d.tmpl != nil && now.Sub(d.start) > WorkerLostAfter
	d.mu.Unlock()
	d.fleet.mu.Lock()
	defer d.fleet.mu.Unlock()
	finished = true
	for _, w := range d.workers {
		switch w.info.State {
		case WorkerDone, WorkerLost:
			continue
		}
		if now.Sub(w.info.SeenAt) > WorkerLostAfter || (started && w.info.State == WorkerAssigned) {
			d.lose(w, now)
			continue
		}
		finished = false
	}
	return finished
}

// lose counts worker w lost at now, with its share left unsent. d.fleet.mu is held.
func (d *distribution) lose(w *fleetWorker, now time.Time) {
	d.mu.Lock()
	total := d.sched.Total()
	d.mu.Unlock()
	at := now.UTC()
	w.info.State, w.info.LostAt, w.info.InFlight = WorkerLost, &at, 0
	w.info.Scheduled = loadgen.Share{Index: w.index, Count: len(d.workers)}.Of(total)
	w.info.NotSent = w.info.Scheduled - min(w.info.Sent, w.info.Scheduled)
}

// infos are the run's workers as they stand.
func (d *distribution) infos() []WorkerInfo {
	d.mu.Lock()
	total := d.sched.Total()
	d.mu.Unlock()
	d.fleet.mu.Lock()
	defer d.fleet.mu.Unlock()
	out := make([]WorkerInfo, len(d.workers))
	for i, w := range d.workers {
		out[i] = w.info
		if w.info.State != WorkerLost {
			out[i].Scheduled = loadgen.Share{Index: i, Count: len(d.workers)}.Of(total)
		}
	}
	return out
}

// Schedule is the run's schedule with its rate changes.
func (d *distribution) Schedule() loadgen.Schedule {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sched
}

// Recorder merges the workers' measurements.
func (d *distribution) Recorder() *loadgen.Recorder {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rec
}

// Progress sums the workers' last reports.
func (d *distribution) Progress() loadgen.Progress {
	d.fleet.mu.Lock()
	defer d.fleet.mu.Unlock()
	var p loadgen.Progress
	for _, w := range d.workers {
		p.Sent += w.info.Sent
		p.OK += w.info.OK
		p.Failed += w.info.Failed
		p.Late += w.info.Late
		p.InFlight += w.info.InFlight
	}
	return p
}

// Points is the merged timeseries with the schedule's targets.
func (d *distribution) Points() []loadgen.Point {
	rec, sched := d.Recorder(), d.Schedule()
	if rec == nil {
		return nil
	}
	return loadgen.WithTargets(rec.Points(), sched)
}

// Summary is the merged summary.
func (d *distribution) Summary() loadgen.Summary {
	if rec := d.Recorder(); rec != nil {
		return rec.Summary()
	}
	return loadgen.Summary{Errors: map[string]uint64{}}
}

// SetRate changes the rate from rateLead ahead on, so every worker hears of it before that
// point of the schedule. loadgen.ErrNotRunning before the start, once stopping, or when the
// schedule ends before then.
func (d *distribution) SetRate(rate float64) (loadgen.Schedule, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rec == nil || d.stop {
		return loadgen.Schedule{}, loadgen.ErrNotRunning
	}
	at := max(time.Since(d.start)+rateLead, 0).Truncate(time.Millisecond)
	if at >= d.sched.Duration() {
		return loadgen.Schedule{}, loadgen.ErrNotRunning
	}
	d.sched = d.sched.WithRateFrom(at, rate)
	d.changes = append(d.changes, RateChange{AtMs: at.Milliseconds(), Rate: rate})
	return d.sched, nil
}

// distribute has the run's workers send the schedule, each its share, and waits until each
// is done or lost; ctx's end orders them to stop. The workers' money is then booked, and the
// requests lost workers were due to send are queued for Settle: resent with their keys, each
// tells whether it was applied.
func (x *Execution) distribute(ctx context.Context) (loadgen.Result, error) {
	d := x.dist
	n := len(d.workers)
	cfg := x.cfg
	cfg.Connections = (cfg.Connections + n - 1) / n
	accounts := make([]AssignedAccount, len(x.accounts))
	for i, a := range x.accounts {
		accounts[i] = AssignedAccount{ID: a.id, Owner: a.owner}
	}
	start := time.Now().Add(startLead)
	d.begin(Assignment{RunID: x.id, Config: cfg, Target: x.deps.Target.URL, Users: x.users, Accounts: accounts}, start, x.sched)
	x.runner.Store(&generation{d})

	done := ctx.Done()
	stopped := false
	var stoppedAt time.Time
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !d.markLost(time.Now()) {
		select {
		case <-done:
			d.halt()
			stopped, stoppedAt, done = true, time.Now(), nil
		case <-tick.C:
		}
	}
	return x.gather(d, stopped, stoppedAt), nil
}

// gather ends a distributed sending: the result from the merged measurements, the money the
// workers reported, and the due requests of lost workers queued for Settle.
func (x *Execution) gather(d *distribution, stopped bool, stoppedAt time.Time) loadgen.Result {
	sched, rec := d.Schedule(), d.Recorder()
	end := d.start.Add(sched.Duration())
	if stopped && stoppedAt.Before(end) {
		end = stoppedAt
	}
	rec.SetEnd(end)
	d.fleet.mu.Lock()
	type lost struct {
		index int
		seen  time.Time
	}
	var losses []lost
	for _, w := range d.workers {
		if w.info.State == WorkerLost {
			losses = append(losses, lost{w.index, w.info.SeenAt})
			continue
		}
		if w.last.EndedAt != nil && w.last.EndedAt.After(end) {
			end = *w.last.EndedAt // sends that fell behind stretch the running phase
		}
		if m := w.last.Money; m != nil {
			x.deposited.Add(m.Deposited)
			x.withdrawn.Add(m.Withdrawn)
			x.accepted.Add(m.Accepted)
			x.ambiguousTotal.Add(m.Ambiguous)
			x.unresolved.Add(m.Unresolved)
			x.holds.add(m.Holds)
		}
	}
	d.fleet.mu.Unlock()
	for _, l := range losses {
		// It sent nothing later than WorkerLease after the last answer it had.
		cutoff := l.seen.Add(WorkerLease + clockMargin).Sub(d.start)
		x.queueLostShare(sched, loadgen.Share{Index: l.index, Count: len(d.workers)}, cutoff)
	}
	sum := rec.Summary()
	res := loadgen.Result{Started: d.start, Ended: end, Stopped: stopped, Scheduled: sched.Total(),
		Sent: sum.Sent, OK: sum.OK, Failed: sum.Failed, Late: sum.Late, Summary: sum}
	if el := end.Sub(d.start).Seconds(); el > 0 {
		res.AchievedRate = float64(res.Sent) / el
	}
	return res
}

// clockMargin covers the difference between the service's and a worker's clocks (NTP keeps
// machines' clocks much closer) and the time an answer takes to reach the worker.
const clockMargin = 500 * time.Millisecond

// queueLostShare queues for Settle the requests of share due before cutoff (an offset of the
// schedule its worker had stopped sending by), but reads, which change nothing.
func (x *Execution) queueLostShare(sched loadgen.Schedule, share loadgen.Share, cutoff time.Duration) {
	total := sched.Total()
	x.ambiguousMu.Lock()
	defer x.ambiguousMu.Unlock()
	for seq := uint64(share.Index); seq < total && sched.At(seq) < cutoff; seq += uint64(share.Count) {
		if x.picker.Pick(seq).Op == OpRead {
			continue
		}
		x.ambiguous = append(x.ambiguous, seq)
		x.lostResent.Add(1)
	}
}
