package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Outcome is what one request's work reports.
type Outcome struct {
	Op     string // operation name, e.g. "transfer"; "" is recorded as DefaultOp
	Status int    // protocol status (HTTP), 0 if none was received
	Code   string // "" on success, else an error code ("insufficient_funds", "http_503", "timeout")
	TxID   string // id of what the request created, if any
}

// Work performs request seq (0, 1, ...). It should return when ctx is
// cancelled, which happens only when the drain period after the run expires.
type Work func(ctx context.Context, seq uint64) Outcome

// Defaults for Config.
const (
	DefaultLateAfter = time.Millisecond
	DefaultDrain     = 10 * time.Second
)

// Config configures a Runner.
type Config struct {
	Schedule Schedule
	// Workers is the most requests in flight at once (for HTTP, the number
	// of connections). A request due while all are busy waits in line and
	// is still timed from its intended send time.
	Workers int
	// LateAfter: a send more than this after its intended time is counted
	// as late. Default DefaultLateAfter.
	LateAfter time.Duration
	// Drain is how long requests in flight may still finish once sending has
	// ended (schedule done or stopped); then their context is cancelled.
	// Default DefaultDrain.
	Drain time.Duration
	// Feed, if set, receives every completed request's record and is closed
	// when Run returns.
	Feed *Feed
	// Shards is the number of recorder shards workers are spread over;
	// default min(Workers, 4*GOMAXPROCS).
	Shards int
	// Share is the part of the schedule this runner sends when several
	// generators split it; the zero value is all of it.
	Share Share
	// Start is the schedule's time zero when it is set (several generators
	// start together); default the moment Run is called.
	Start time.Time
}

func (c *Config) validate() error {
	if c.Schedule.Total() == 0 {
		return errors.New("loadgen: the schedule issues no request")
	}
	if c.Workers < 1 {
		return errors.New("loadgen: workers must be at least 1")
	}
	if c.LateAfter <= 0 {
		c.LateAfter = DefaultLateAfter
	}
	if c.Drain <= 0 {
		c.Drain = DefaultDrain
	}
	if c.Shards <= 0 {
		c.Shards = min(c.Workers, 4*runtime.GOMAXPROCS(0))
	}
	if c.Share == (Share{}) {
		c.Share = Whole
	}
	return c.Share.validate()
}

// Progress is the live state of a run.
type Progress struct {
	Sent, OK, Failed, Late uint64
	InFlight               int64
}

// Result is the outcome of a run.
type Result struct {
	// The running phase: from the first intended send time to the end of
	// the schedule, or to the stop, or to the last send if sends fell behind.
	Started, Ended time.Time
	Stopped        bool   // the context ended the run before the schedule did
	Scheduled      uint64 // requests in the schedule
	Sent           uint64
	OK             uint64
	Failed         uint64
	Late           uint64
	TargetRate     float64 // the schedule's rate at its end (its peak when it ends at 0)
	AchievedRate   float64 // Sent per second of the running phase
	Dropped        uint64  // records the Feed had no room for
	Summary        Summary
}

// Runner runs one schedule once.
type Runner struct {
	cfg     Config
	work    Work
	rec     atomic.Pointer[Recorder]
	ran     atomic.Bool
	sched   atomic.Pointer[Schedule] // replaced by SetRate
	changed chan struct{}            // wakes the dispatcher after SetRate
	start   atomic.Pointer[time.Time]

	sent, ok, failed, late atomic.Uint64
	inFlight               atomic.Int64
}

// NewRunner checks cfg and returns a runner for it.
func NewRunner(cfg Config, work Work) (*Runner, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if work == nil {
		return nil, errors.New("loadgen: no work function")
	}
	r := &Runner{cfg: cfg, work: work, changed: make(chan struct{}, 1)}
	r.sched.Store(&cfg.Schedule)
	return r, nil
}

// Schedule is the schedule as it stands, rate changes included.
func (r *Runner) Schedule() Schedule { return *r.sched.Load() }

// ErrNotRunning is SetRate's answer before the run started or after its schedule ended.
var ErrNotRunning = errors.New("loadgen: not running")

// SetRate changes the rate from now to the end of the schedule; the requests
// already due keep their times. It returns the new schedule.
func (r *Runner) SetRate(rate float64) (Schedule, error) { return r.SetRateAt(0, rate) }

// SetRateAt changes the rate from offset at of the schedule (from now if that
// has passed) to its end, so generators sharing a schedule change it at the
// same point of it. It returns the new schedule; ErrNotRunning before Run or
// once the schedule has ended.
func (r *Runner) SetRateAt(at time.Duration, rate float64) (Schedule, error) {
	if !(rate >= 0) || math.IsInf(rate, 0) {
		return Schedule{}, fmt.Errorf("loadgen: rate must be a number of at least 0, got %v", rate)
	}
	start := r.start.Load()
	if start == nil {
		return Schedule{}, ErrNotRunning
	}
	for {
		cur := r.sched.Load()
		at := max(at, time.Since(*start))
		if at >= cur.Duration() {
			return Schedule{}, ErrNotRunning
		}
		next := cur.WithRateFrom(at, rate)
		if r.sched.CompareAndSwap(cur, &next) {
			select {
			case r.changed <- struct{}{}:
			default:
			}
			return next, nil
		}
	}
}

// Recorder is the run's recorder, nil until Run has started.
func (r *Runner) Recorder() *Recorder { return r.rec.Load() }

// Points is the run's timeseries so far (nil before Run).
func (r *Runner) Points() []Point {
	rec := r.rec.Load()
	if rec == nil {
		return nil
	}
	return WithTargets(rec.Points(), r.Schedule())
}

// WithTargets sets each point's Target: the schedule's average rate over
// that second (over its part within the schedule, for the last one).
func WithTargets(points []Point, s Schedule) []Point {
	end := s.Duration()
	for i := range points {
		from := time.Duration(i) * time.Second
		to := min(from+time.Second, end)
		if to > from {
			// Rounded to a millionth of a request: the integral's float noise is not a rate.
			t := (s.Expected(to) - s.Expected(from)) / (to - from).Seconds()
			points[i].Target = math.Round(t*1e6) / 1e6
		}
	}
	return points
}

// Summary is the run's summary so far.
func (r *Runner) Summary() Summary {
	if rec := r.rec.Load(); rec != nil {
		return rec.Summary()
	}
	return Summary{Errors: map[string]uint64{}}
}

// Progress is cheap enough to poll often.
func (r *Runner) Progress() Progress {
	return Progress{
		Sent: r.sent.Load(), OK: r.ok.Load(), Failed: r.failed.Load(),
		Late: r.late.Load(), InFlight: r.inFlight.Load(),
	}
}

type job struct {
	seq uint64
	at  time.Duration // intended send time, from the start
}

// Run sends the schedule and returns once every request sent has completed
// (or the drain period has run out). Cancelling ctx stops the sending early;
// requests still waiting in line are then not sent.
func (r *Runner) Run(ctx context.Context) (Result, error) {
	if !r.ran.CompareAndSwap(false, true) {
		return Result{}, errors.New("loadgen: a runner runs once")
	}
	cfg := r.cfg
	if cfg.Feed != nil {
		defer cfg.Feed.Close()
	}
	start := cfg.Start
	if start.IsZero() {
		start = time.Now()
	}
	rec := NewRecorder(start, cfg.Shards, cfg.LateAfter)
	r.rec.Store(rec)
	r.start.Store(&start)

	// Work outlives a stop by up to Drain, so in-flight requests finish
	// and are measured instead of turning into cancellations.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	// The buffer lets the dispatcher hand over a burst without waiting;
	// beyond it the line is implicit in the schedule, so it costs no memory.
	queue := make(chan job, cfg.Workers)
	var stopped atomic.Bool
	lastSend := make([]time.Time, cfg.Workers)
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Go(func() { lastSend[w] = r.worker(workCtx, w, rec, start, queue, &stopped) })
	}

	if r.dispatch(ctx.Done(), start, queue) {
		stopped.Store(true)
	}
	stoppedAt := time.Now()
	close(queue)
	drain := time.AfterFunc(cfg.Drain, cancelWork)
	wg.Wait()
	drain.Stop()

	sched := r.Schedule()
	end := start.Add(sched.Duration())
	if stopped.Load() {
		end = stoppedAt
	}
	// Points cover the schedule's seconds; sends that fell behind it still
	// stretch the running phase, so the achieved rate shows the lag.
	rec.SetEnd(end)
	for _, t := range lastSend {
		if t.After(end) {
			end = t
		}
	}

	res := Result{
		Started:    start,
		Ended:      end,
		Stopped:    stopped.Load(),
		Scheduled:  cfg.Share.Of(sched.Total()),
		Sent:       r.sent.Load(),
		OK:         r.ok.Load(),
		Failed:     r.failed.Load(),
		Late:       r.late.Load(),
		TargetRate: finalRate(sched),
		Summary:    rec.Summary(),
	}
	if el := end.Sub(start).Seconds(); el > 0 {
		res.AchievedRate = float64(res.Sent) / el
	}
	if cfg.Feed != nil {
		res.Dropped = cfg.Feed.Dropped()
	}
	return res, nil
}

// finalRate is the rate a schedule ends at, or its peak when it winds down to 0.
func finalRate(s Schedule) float64 {
	if r := s.segs[len(s.segs)-1].to; r > 0 {
		return r
	}
	return s.Peak()
}

// dispatch releases each request of the schedule's share into the queue at
// its intended time and reports whether done cut it short. A rate change wakes
// it to take the next request's time from the new schedule.
func (r *Runner) dispatch(done <-chan struct{}, start time.Time, queue chan<- job) (stopped bool) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var sched *Schedule
	var total uint64
	step := uint64(r.cfg.Share.Count)
	for i := uint64(r.cfg.Share.Index); ; {
		// The total is an integral over the schedule: computed once per schedule, not per request.
		if s := r.sched.Load(); s != sched {
			sched, total = s, s.Total()
		}
		if i >= total {
			return false
		}
		at := sched.At(i)
		// Sleep only when ahead: a dispatcher that fell behind releases
		// everything overdue at once, each still timed from its own slot.
		if due := start.Add(at); time.Until(due) > 0 {
			switch waitUntil(due, timer, done, r.changed) {
			case waitStopped:
				return true
			case waitChanged:
				continue // the same request, at its time in the new schedule
			}
		}
		select {
		case <-done: // a precise sleep or a dispatcher running behind sees the stop here
			return true
		default:
		}
		select {
		case queue <- job{i, at}:
		default:
			// Every worker is busy: wait in line.
			select {
			case queue <- job{i, at}:
			case <-done:
				return true
			}
		}
		i += step
	}
}

// Waits that take a precise sleep; see waitUntil.
const (
	preciseMin = 200 * time.Microsecond
	preciseMax = 2 * time.Millisecond
)

// waitUntil returns at due, never before, or when done closes, reporting
// the latter. Go's timers wake up to ~1 ms late when the runtime is idle (the
// netpoller waits in whole milliseconds), which would make many sends late at
// modest rates. Short waits (high rates, a busy runtime) keep the timer: it
// is cheaper than a syscall and still under 1 ms late. A long wait has a
// timer cover all but its last millisecond. What is left between preciseMin
// and preciseMax goes to a precise sleep, where the platform has one.
func waitUntil(due time.Time, timer *time.Timer, done, changed <-chan struct{}) waitResult {
	sleep := func(d time.Duration) waitResult {
		timer.Reset(d)
		select {
		case <-timer.C:
			return waitDue
		case <-done:
			return waitStopped
		case <-changed:
			timer.Stop() // no stale tick can follow (Go 1.23 timers)
			return waitChanged
		}
	}
	d := time.Until(due)
	if d > preciseMax {
		if w := sleep(d - preciseMax/2); w != waitDue {
			return w
		}
		d = time.Until(due)
	}
	if d >= preciseMin && hasPreciseSleep {
		preciseSleepUntil(due)
		return waitDue
	}
	// Timers never fire early; the loop is cheap insurance that no send
	// precedes its slot.
	for d > 0 {
		if w := sleep(d); w != waitDue {
			return w
		}
		d = time.Until(due)
	}
	return waitDue
}

type waitResult int

const (
	waitDue waitResult = iota
	waitStopped
	waitChanged
)

// worker runs requests from the queue and returns when its last one was sent.
func (r *Runner) worker(ctx context.Context, w int, rec *Recorder, start time.Time, queue <-chan job, stopped *atomic.Bool) (last time.Time) {
	feed := r.cfg.Feed
	for j := range queue {
		if stopped.Load() {
			continue // left in line when the run was stopped: never sent
		}
		intended := start.Add(j.at)
		sentAt := time.Now()
		last = sentAt
		r.inFlight.Add(1)
		r.sent.Add(1)
		if rec.Sent(w, intended, sentAt) {
			r.late.Add(1)
		}
		out := r.work(ctx, j.seq)
		doneAt := time.Now()
		r.inFlight.Add(-1)
		if out.Op == "" {
			out.Op = DefaultOp
		}
		latency := doneAt.Sub(intended)
		rec.Record(w, intended, latency, out.Op, out.Code)
		if out.Code == "" {
			r.ok.Add(1)
		} else {
			r.failed.Add(1)
		}
		if feed != nil {
			feed.Offer(Record{
				Seq: j.seq, Intended: intended, Sent: sentAt, Done: doneAt, Latency: latency,
				Op: out.Op, Status: out.Status, Code: out.Code, TxID: out.TxID,
			})
		}
	}
	return last
}
