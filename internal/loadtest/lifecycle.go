package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"txn/internal/loadgen"
)

// Observer hears of a run's state: every second while it executes, and at each transition
// (transition true), the last one with the phase done.
type Observer func(r Run, transition bool)

// Causes that end the sending early.
var (
	errStopped     = errors.New("stopped")
	errInterrupted = errors.New("interrupted")
)

type abortError struct{ reason string }

func (e abortError) Error() string { return e.reason }

// lifecycle is what an execution knows of its run beyond the counters: status, phase, error,
// thresholds, verification. Execute is its only writer of transitions.
type lifecycle struct {
	mu       sync.Mutex
	run      Run
	res      *loadgen.Result
	cancel   context.CancelCauseFunc // ends the sending; nil outside Execute
	rate     *float64                // the last rate change, if any
	judgedTo int                     // windows ending at or before this second are judged
}

func (l *lifecycle) init(x *Execution) {
	l.run = Run{ID: x.id, Name: x.cfg.Name, Status: StatusPreparing, Phase: PhasePreparing, Config: x.cfg,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Thresholds: append([]Threshold(nil), x.cfg.Thresholds...)}
}

func (x *Execution) set(f func(r *Run)) {
	x.life.mu.Lock()
	f(&x.life.run)
	x.life.mu.Unlock()
}

// Execute runs the whole lifecycle: prepare, send, settle, verify. ctx bounds it all (the
// service's lifetime: its end fails the run as interrupted); Stop and a broken abort threshold
// end only the sending, and the run is still settled and verified. feed, if set, receives every
// completed request. It returns the final state.
func (x *Execution) Execute(ctx context.Context, feed *loadgen.Feed, observe Observer) Run {
	if observe == nil {
		observe = func(Run, bool) {}
	}
	gen, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	x.life.mu.Lock()
	x.life.cancel = cancel
	x.life.mu.Unlock()
	notify := func(transition bool) { observe(x.Snapshot(), transition) }
	done := make(chan struct{})
	defer close(done)
	go x.tick(done, notify)

	notify(true)
	if err := x.Prepare(gen); err != nil {
		if gen.Err() == nil {
			return x.finish(StatusFailed, "preparation failed: "+err.Error(), notify)
		}
		return x.finish(x.interruption(gen), "", notify)
	}
	if gen.Err() != nil {
		return x.finish(x.interruption(gen), "", notify)
	}
	x.set(func(r *Run) { r.Status, r.Phase = StatusRunning, PhaseRunning })
	notify(true)
	res, err := x.Generate(gen, feed)
	if err != nil {
		return x.finish(StatusFailed, "generation failed: "+err.Error(), notify)
	}
	status := StatusCompleted
	if res.Stopped {
		status = x.interruption(gen)
	}
	x.life.mu.Lock()
	x.life.res = &res
	x.life.mu.Unlock()
	if status == StatusFailed { // the service is shutting down: no verification
		return x.finish(status, "", notify)
	}
	x.set(func(r *Run) { r.Status, r.Phase = status, PhaseVerifying })
	x.judgeWindows(true)
	notify(true)

	x.Settle(ctx)
	v := x.Verify(ctx)
	x.set(func(r *Run) {
		r.Phase = PhaseDone
		if ctx.Err() != nil {
			r.Error = "verification interrupted: the loadtest service shut down"
			return
		}
		r.Verification = v
	})
	final := x.judgeRun()
	notify(true)
	return final
}

// interruption is the status a run cut short by gen's cause ends with; an abort also records
// its reason.
func (x *Execution) interruption(gen context.Context) string {
	cause := context.Cause(gen)
	var abort abortError
	switch {
	case errors.Is(cause, errStopped):
		return StatusStopped
	case errors.As(cause, &abort):
		x.set(func(r *Run) { r.AbortReason = abort.reason })
		return StatusAborted
	}
	x.set(func(r *Run) { r.Error = "interrupted: the loadtest service shut down" })
	return StatusFailed
}

// finish ends a run that will not be verified.
func (x *Execution) finish(status, msg string, notify func(bool)) Run {
	now := time.Now().UTC()
	x.set(func(r *Run) {
		r.Status, r.Phase = status, PhaseDone
		if msg != "" {
			r.Error = msg
		}
		if r.EndedAt == nil {
			r.EndedAt = &now
		}
	})
	notify(true)
	return x.Snapshot()
}

// tick judges windowed thresholds and tells the observer of the run once a second.
func (x *Execution) tick(done <-chan struct{}, notify func(bool)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			x.judgeWindows(false)
			x.judgeAbortsSoFar()
			notify(false)
		}
	}
}

// Stop ends the sending; the run ends as stopped once settled and verified. It reports false
// when the run is no longer sending or preparing.
func (x *Execution) Stop() bool { return x.end(errStopped) }

func (x *Execution) end(cause error) bool {
	x.life.mu.Lock()
	defer x.life.mu.Unlock()
	if x.life.cancel == nil || Terminal(x.life.run.Status) {
		return false
	}
	x.life.cancel(cause)
	return true
}

// ErrNotRunning is SetRate's answer when the run is not in its running phase.
var ErrNotRunning = errors.New("the run is not running")

// SetRate changes the rate from now to the end of the schedule (PATCH /runs/{id}).
func (x *Execution) SetRate(rate float64) (Run, error) {
	r := x.generator()
	x.life.mu.Lock()
	running := x.life.run.Status == StatusRunning
	x.life.mu.Unlock()
	if r == nil || !running {
		return Run{}, ErrNotRunning
	}
	if _, err := r.SetRate(rate); err != nil {
		if errors.Is(err, loadgen.ErrNotRunning) {
			return Run{}, ErrNotRunning
		}
		return Run{}, err
	}
	x.life.mu.Lock()
	x.life.rate = &rate
	x.life.mu.Unlock()
	return x.Snapshot(), nil
}

// Snapshot is the run as it stands: status, progress, counters, latencies and rates.
func (x *Execution) Snapshot() Run {
	x.life.mu.Lock()
	r := x.life.run
	r.Thresholds = append([]Threshold(nil), r.Thresholds...)
	res, rate := x.life.res, x.life.rate
	x.life.mu.Unlock()
	x.fill(&r, res, rate)
	if r.Errors == nil {
		r.Errors = map[string]uint64{}
	}
	if r.ByOp == nil {
		r.ByOp = []loadgen.Group{}
	}
	return r
}

// fill sets r's progress, counters, latencies and rates from the execution so far, or, given
// the generation's result, from the whole run.
func (x *Execution) fill(r *Run, res *loadgen.Result, rate *float64) {
	r.Progress = x.Progress()
	if x.dist != nil {
		r.Workers = x.dist.infos()
	}
	sched := x.sched
	runner := x.generator()
	if runner != nil {
		sched = runner.Schedule()
	}
	r.Scheduled = sched.Total()
	r.TargetRate = x.cfg.Rate
	if rate != nil {
		r.TargetRate = *rate
	}
	if runner == nil || runner.Recorder() == nil {
		return
	}
	var start, end time.Time
	if res != nil {
		r.fill(res.Summary, 0)
		start, end = res.Started, res.Ended
		r.LogDropped = res.Dropped
	} else {
		r.fill(runner.Summary(), runner.Progress().InFlight)
		start, end = runner.Recorder().Start(), time.Now()
		if x.dist != nil {
			end = end.Add(-reportLag) // what the workers have reported covers up to then
		}
		if rate == nil && len(x.cfg.Stages) > 0 {
			r.TargetRate = sched.RateAt(end.Sub(start)) // the stage's rate now
		}
	}
	st := start.UTC()
	r.StartedAt = &st
	if res != nil {
		en := end.UTC()
		r.EndedAt = &en
	}
	el := end.Sub(start)
	if el <= 0 {
		return
	}
	r.AchievedRate = float64(r.Sent) / el.Seconds()
	// What the schedule asked per second over the same span: its whole length once it ran
	// out (a generator that fell behind stretched the running phase, and the achieved rate
	// shows it), else its part until now or the stop.
	span := min(el, sched.Duration())
	if res != nil && !res.Stopped {
		span = sched.Duration()
	}
	if span > 0 {
		r.ScheduledRate = sched.Expected(span) / span.Seconds()
	}
	r.Behind, r.BehindDetail = x.behind(r, runner, el)
}

// behind says whether the generator fell short of the schedule, and why as far as it can tell.
func (x *Execution) behind(r *Run, runner generator, el time.Duration) (bool, string) {
	if el < time.Second || r.ScheduledRate <= 0 || r.AchievedRatio() >= 0.99 {
		return false, ""
	}
	s := fmt.Sprintf("sent %.1f/s, %.1f %% of the %.1f/s scheduled", r.AchievedRate, 100*r.AchievedRatio(), r.ScheduledRate)
	var lost []string
	var notSent uint64
	for _, w := range r.Workers {
		if w.State == WorkerLost {
			lost, notSent = append(lost, w.Name), notSent+w.NotSent
		}
	}
	if len(lost) > 0 {
		return true, s + fmt.Sprintf(": worker %s lost, its share's %d unsent requests counted as not sent", strings.Join(lost, ", "), notSent)
	}
	var peak uint64
	for _, p := range runner.Points() {
		peak = max(peak, p.InFlight)
	}
	switch {
	case peak >= uint64(x.cfg.Connections):
		return true, s + fmt.Sprintf(": all %d connections were busy waiting for answers, so requests waited for one "+
			"(connections defaults to rate/10, at least 32); raise connections, or the processor is too slow for this rate", x.cfg.Connections)
	case r.SendLagMs.P99 > behindLagMs:
		return true, s + fmt.Sprintf(": sends left up to %.0f ms (p99) after their time with connections free, "+
			"so the load generator lacked CPU; run it on another machine or lower the rate", r.SendLagMs.P99)
	}
	return true, s
}

// Points is the per-second timeseries so far, times in UTC.
func (x *Execution) Points() []loadgen.Point {
	if r := x.generator(); r != nil {
		if pts := r.Points(); pts != nil {
			for i := range pts {
				pts[i].T = pts[i].T.UTC()
			}
			return pts
		}
	}
	return []loadgen.Point{}
}

// Distribution is the run's latency distribution so far; nil before any answer.
func (x *Execution) Distribution() []loadgen.Percentile {
	if r := x.generator(); r != nil && r.Recorder() != nil {
		return r.Recorder().Distribution()
	}
	return nil
}

// judgeWindows judges the windowed thresholds on every whole window that ended since the last
// call (all of them once the sending ended: final), and aborts the run when one with abort
// broke.
func (x *Execution) judgeWindows(final bool) {
	runner := x.generator()
	if runner == nil || runner.Recorder() == nil {
		return
	}
	rec, sched := runner.Recorder(), runner.Schedule()
	elapsed := time.Since(rec.Start())
	if x.dist != nil {
		elapsed -= reportLag // a second is whole once every worker has reported it
	}
	x.life.mu.Lock()
	if res := x.life.res; res != nil {
		elapsed = res.Ended.Sub(res.Started)
	}
	now := int(elapsed / time.Second) // seconds 0..now-1 are whole
	if final {
		now = int(math.Ceil(elapsed.Seconds()))
	}
	from := x.life.judgedTo
	x.life.judgedTo = max(from, now)
	ts := x.life.run.Thresholds
	x.life.mu.Unlock()

	var reason string
	for end := from + 1; end <= now; end++ {
		for i := range ts {
			t := &ts[i]
			w := int(t.WindowS)
			if w == 0 || end < w {
				continue
			}
			m, ok := windowMeasures(rec, sched, end-w, end)
			if !ok {
				continue
			}
			x.life.mu.Lock()
			broke := judge(&x.life.run.Thresholds[i], m.value(t.Metric))
			x.life.mu.Unlock()
			if broke && t.Abort && reason == "" {
				reason = fmt.Sprintf("threshold %s broken: %.4g over seconds %d to %d", t, m.value(t.Metric), end-w, end)
			}
		}
	}
	if reason != "" {
		x.end(abortError{reason})
	}
}

// windowMeasures are the measures of seconds [from, to); false when no request of them ended.
func windowMeasures(rec *loadgen.Recorder, sched loadgen.Schedule, from, to int) (measures, bool) {
	w := rec.Window(from, to)
	m := measures{latency: w.Latency, errorRate: errorShare(w.OK, w.Failed, w.Errors), completed: w.OK + w.Failed, achieved: 1}
	if want := sched.Expected(time.Duration(to)*time.Second) - sched.Expected(time.Duration(from)*time.Second); want > 0 {
		m.achieved = float64(w.Sent) / want
	}
	return m, m.completed > 0
}

// runMeasures are the whole run's measures as r shows them.
func runMeasures(r Run) measures {
	return measures{latency: r.LatencyMs, errorRate: r.ErrorRate, achieved: r.AchievedRatio(), completed: r.OK + r.Failed}
}

// judgeAbortsSoFar aborts the run when a whole-run threshold with abort is broken by the run
// so far (k6's abortOnFail does the same); their final judgement waits for the end.
func (x *Execution) judgeAbortsSoFar() {
	r := x.Snapshot()
	if r.Status != StatusRunning || r.OK+r.Failed == 0 {
		return
	}
	m := runMeasures(r)
	for _, t := range r.Thresholds {
		if t.WindowS == 0 && t.Abort && t.broken(m.value(t.Metric)) {
			x.end(abortError{fmt.Sprintf("threshold %s broken: %.4g over the run so far", t, m.value(t.Metric))})
			return
		}
	}
}

// judgeRun judges the whole-run thresholds on the final state and returns it.
func (x *Execution) judgeRun() Run {
	r := x.Snapshot()
	m := runMeasures(r)
	x.life.mu.Lock()
	for i := range x.life.run.Thresholds {
		t := &x.life.run.Thresholds[i]
		if t.WindowS == 0 && m.completed > 0 {
			judge(t, m.value(t.Metric))
		}
	}
	x.life.mu.Unlock()
	return x.Snapshot()
}

// Broken lists the thresholds r broke, one line each, sorted.
func Broken(r Run) []string {
	var out []string
	for _, t := range r.Thresholds {
		if t.Passed != nil && !*t.Passed {
			out = append(out, fmt.Sprintf("%s: observed %.4g", t, *t.Observed))
		}
	}
	sort.Strings(out)
	return out
}
