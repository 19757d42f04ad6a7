package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"txn/internal/apierr"
	"txn/internal/loadgen"
)

// Live holds the state of runs in progress (Redis), so the API and UI read it cheaply and a
// restarted service finds the run it was running.
type Live interface {
	// PutRun stores the run's state; active marks it as the run in progress, and a run put
	// inactive is no longer in progress (and its state may expire). A nil run only clears the
	// mark of run id.
	PutRun(ctx context.Context, id string, r *Run, active bool) error
	// PutPoints stores points of run id by their second (0 is the first of the running phase).
	PutPoints(ctx context.Context, id string, points map[int]loadgen.Point) error
	// Run is run id's state; nil when there is none.
	Run(ctx context.Context, id string) (*Run, error)
	// Points are run id's points in order.
	Points(ctx context.Context, id string) ([]loadgen.Point, error)
	// Active is the id of the run in progress, "" when none.
	Active(ctx context.Context) (string, error)
}

// Record is a run as history keeps it.
type Record struct {
	Run          Run
	Points       []loadgen.Point
	Distribution []loadgen.Percentile
}

// History keeps every run (ClickHouse): its latest record, and its request log.
type History interface {
	SaveRun(ctx context.Context, rec Record) error
	// Runs lists runs newest first, those created before (before, beforeID) when before is
	// not zero, with one of statuses when any are given.
	Runs(ctx context.Context, statuses []string, before time.Time, beforeID string, limit int) ([]Run, error)
	// Record is a run's latest record; nil when there is no such run.
	Record(ctx context.Context, id string) (*Record, error)
	InsertRequests(ctx context.Context, runID string, recs []loadgen.Record) error
}

// Deps is what a Manager needs.
type Deps struct {
	Target    Target
	Live      Live
	History   History
	Analytics AnalyticsCounter // optional: verification then skips the analytics
	Cleaners  Cleaners
	// AnalyticsWait bounds how long verification waits for the pipeline to catch up.
	AnalyticsWait time.Duration
	// LogBuffer is how many request records may wait for the log writer; more are dropped.
	LogBuffer int
	Metrics   *Metrics
	Log       *slog.Logger
	// Fleet, if set, has the load workers runs with "workers" claim.
	Fleet *Fleet
}

// Errors the API maps to statuses.
var (
	errConflict = func(format string, args ...any) error { return apierr.Errorf(apierr.CodeConflict, format, args...) }
	errNotFound = func(id string) error { return apierr.Errorf(apierr.CodeNotFound, "run %s not found", id) }
)

// Manager runs one load test at a time and keeps their state live and in history.
type Manager struct {
	d    Deps
	proc *LedgerClient // cleanup

	mu      sync.Mutex
	base    context.Context // the service's lifetime; nil until Run
	cur     *active
	closing bool
	wg      sync.WaitGroup

	cleanMu  sync.Mutex
	cleanups map[string]*cleanupJob // by run id, while they run
}

// active is the run in progress.
type active struct {
	x        *Execution
	logFails atomic.Uint64 // request log records the writer could not store

	pubMu   sync.Mutex // serialises publications, so the newest state is written last
	points  []loadgen.Point
	started bool // history knows the run started
}

// snapshot is the run as it stands, with the request log's losses.
func (a *active) snapshot() Run {
	r := a.x.Snapshot()
	r.LogDropped += a.logFails.Load()
	return r
}

// NewManager returns a manager; Run starts it.
func NewManager(d Deps) *Manager {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.LogBuffer <= 0 {
		d.LogBuffer = 1 << 16
	}
	if d.AnalyticsWait <= 0 {
		d.AnalyticsWait = 60 * time.Second
	}
	return &Manager{d: d, cleanups: map[string]*cleanupJob{}, proc: NewLedgerClient(d.Target.URL, d.Target.AdminToken, prepWorkers, requestTimeout)}
}

// Run takes runs until ctx ends (call Recover first); a run still in progress then fails as
// interrupted, and Run returns once it is recorded.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	m.base = ctx
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// persistCtx outlives a shutdown for long enough to record the final state.
func persistCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 15*time.Second)
}

// save writes a run to history and to the live state.
func (m *Manager) save(ctx context.Context, rec Record, live bool) error {
	if rec.Points == nil {
		rec.Points = []loadgen.Point{}
	}
	if err := m.d.History.SaveRun(ctx, rec); err != nil {
		return fmt.Errorf("save run %s: %w", rec.Run.ID, err)
	}
	if err := m.d.Live.PutRun(ctx, rec.Run.ID, &rec.Run, live); err != nil {
		return fmt.Errorf("save run %s: %w", rec.Run.ID, err)
	}
	return nil
}

// Start begins a run of cfg (validated, with defaults) and returns its first state.
func (m *Manager) Start(cfg Config) (Run, error) {
	m.mu.Lock()
	if m.closing || m.base == nil {
		m.mu.Unlock()
		return Run{}, apierr.Errorf(apierr.CodeUnavailable, "the loadtest service is starting or shutting down")
	}
	if m.cur != nil {
		id := m.cur.x.id
		m.mu.Unlock()
		return Run{}, errConflict("run %s is in progress: one run at a time", id)
	}
	x, err := NewExecution(uuid.Must(uuid.NewV7()).String(), cfg, ExecutionDeps{
		Target: m.d.Target, Analytics: m.d.Analytics, AnalyticsWait: m.d.AnalyticsWait, Observe: m.d.Metrics.observe})
	if err != nil {
		m.mu.Unlock()
		return Run{}, apierr.Invalid(apierr.FieldError{Field: "rate", Message: err.Error()})
	}
	if cfg.Workers > 0 {
		if m.d.Fleet == nil {
			m.mu.Unlock()
			return Run{}, errConflict("this loadtest has no workers: only the service takes them")
		}
		if x.dist, err = m.d.Fleet.claim(x.id, cfg.Workers); err != nil {
			m.mu.Unlock()
			return Run{}, err
		}
	}
	a := &active{x: x}
	m.cur = a
	m.wg.Add(1)
	base := m.base
	m.mu.Unlock()

	pctx, pcancel := persistCtx()
	defer pcancel()
	r := a.snapshot()
	if err := m.save(pctx, Record{Run: r}, true); err != nil {
		m.release(a)
		x.Close()
		if x.dist != nil {
			m.d.Fleet.release(x.dist)
		}
		m.d.Log.Error("cannot record a new run", "err", err)
		return Run{}, apierr.Errorf(apierr.CodeUnavailable, "the run could not be recorded: %v", err)
	}
	go m.execute(base, a)
	return r, nil
}

func (m *Manager) release(a *active) {
	m.mu.Lock()
	if m.cur == a {
		m.cur = nil
	}
	m.mu.Unlock()
	m.wg.Done()
}

// current is the run in progress if its id is id.
func (m *Manager) current(id string) *active {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur != nil && m.cur.x.id == id {
		return m.cur
	}
	return nil
}

// Stop asks run id to stop; it ends as stopped. 409 conflict when it is not running.
func (m *Manager) Stop(ctx context.Context, id string) (Run, error) {
	if a := m.current(id); a != nil && a.x.Stop() {
		return a.snapshot(), nil
	}
	r, err := m.Get(ctx, id)
	if err != nil {
		return Run{}, err
	}
	return Run{}, errConflict("run %s is already %s", id, r.Status)
}

// SetRate changes run id's rate from now on (PATCH /runs/{id}). 409 conflict when it is not
// in its running phase, 404 when there is no such run.
func (m *Manager) SetRate(ctx context.Context, id string, rate float64) (Run, error) {
	if a := m.current(id); a != nil {
		r, err := a.x.SetRate(rate)
		if err == nil {
			m.publish(a, r, true)
			return r, nil
		}
		if !errors.Is(err, ErrNotRunning) {
			return Run{}, apierr.Invalid(apierr.FieldError{Field: "rate", Message: err.Error()})
		}
	}
	r, err := m.Get(ctx, id)
	if err != nil {
		return Run{}, err
	}
	return Run{}, errConflict("run %s is %s, not running: its rate can change only while it runs", id, r.Status)
}

// publish writes the run's live state: its document and the points that changed since the
// last time. history also records it in history, as transitions (and the start of the
// running phase) do.
func (m *Manager) publish(a *active, r Run, history bool) {
	a.pubMu.Lock()
	defer a.pubMu.Unlock()
	ctx, cancel := persistCtx()
	defer cancel()
	r.LogDropped += a.logFails.Load()
	if r.StartedAt != nil && !a.started {
		history, a.started = true, true // the running phase began: history shows it
	}
	pts := a.x.Points()
	changed := map[int]loadgen.Point{}
	for i, p := range pts {
		if i >= len(a.points) || !samePoint(a.points[i], p) {
			changed[i] = p
		}
	}
	a.points = pts
	if len(changed) > 0 {
		if err := m.d.Live.PutPoints(ctx, r.ID, changed); err != nil {
			m.d.Log.Warn("cannot publish live points", "run", r.ID, "err", err)
			a.points = nil // publish them all again next time
		}
	}
	live := r.Phase != PhaseDone
	if history {
		rec := Record{Run: r, Points: pts}
		if !live {
			rec.Distribution = a.x.Distribution()
		}
		if err := m.save(ctx, rec, live); err != nil {
			m.d.Log.Error("cannot record the run", "run", r.ID, "err", err)
		}
		return
	}
	if err := m.d.Live.PutRun(ctx, r.ID, &r, live); err != nil {
		m.d.Log.Warn("cannot publish the live run", "run", r.ID, "err", err)
	}
}

// samePoint reports whether a point is unchanged since it was last published.
func samePoint(a, b loadgen.Point) bool {
	return a.T.Equal(b.T) && a.Sent == b.Sent && a.Answered == b.Answered && a.OK == b.OK && a.Failed == b.Failed &&
		a.InFlight == b.InFlight && a.Late == b.Late && a.Target == b.Target
}

// execute drives a run through its lifecycle, publishing it as it goes.
func (m *Manager) execute(base context.Context, a *active) {
	defer m.release(a)
	defer a.x.Close()
	if d := a.x.dist; d != nil {
		defer m.d.Fleet.release(d)
	}
	log := m.d.Log.With("run", a.x.id)
	feed := loadgen.NewFeed(m.d.LogBuffer)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		a.logFails.Store(m.writeLog(a.x.id, feed))
	}()
	last := ""
	final := a.x.Execute(base, feed, func(r Run, transition bool) {
		if !transition {
			m.publish(a, r, false)
			return
		}
		if r.Status != last && Terminal(r.Status) {
			m.d.Metrics.runs.WithLabelValues(r.Status).Inc()
		}
		if r.Status != last || r.Phase == PhaseDone {
			log.Info("run "+r.Phase, "status", r.Status, "err", r.Error, "abort_reason", r.AbortReason)
		}
		last = r.Status
		if r.Phase == PhaseDone {
			feed.Close() // the runner closed it if it ran; a run that never sent closes it here
			<-logged
			r.LogDropped = a.x.Snapshot().LogDropped
		}
		m.publish(a, r, true)
	})
	if v := final.Verification; v != nil {
		log.Info("run verified", "status", final.Status, "ok", v.OK, "problems", v.Problems)
	}
}

// writeLog writes the request log in batches until the feed closes, and returns how many
// records it could not write.
func (m *Manager) writeLog(runID string, feed *loadgen.Feed) (failed uint64) {
	const maxBatch = 10_000
	batch := make([]loadgen.Record, 0, maxBatch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := persistCtx()
		defer cancel()
		err := retry(ctx, 3, func() error { return m.d.History.InsertRequests(ctx, runID, batch) })
		if err != nil {
			failed += uint64(len(batch))
			m.d.Metrics.logDropped.Add(float64(len(batch)))
			m.d.Log.Warn("request log batch lost", "run", runID, "records", len(batch), "err", err)
		} else {
			m.d.Metrics.logWritten.Add(float64(len(batch)))
		}
		batch = batch[:0]
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case rec, ok := <-feed.C():
			if !ok {
				flush()
				m.d.Metrics.logDropped.Add(float64(feed.Dropped()))
				return failed
			}
			if batch = append(batch, rec); len(batch) == maxBatch {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// Get is run id's latest state: live while in progress, else from history. 404 not_found.
func (m *Manager) Get(ctx context.Context, id string) (Run, error) {
	r, err := m.d.Live.Run(ctx, id)
	if err == nil && r != nil {
		return *r, nil
	}
	if err != nil {
		if a := m.current(id); a != nil {
			return a.snapshot(), nil // Redis is down: this process knows
		}
		m.d.Log.Warn("live state unavailable", "err", err)
	}
	rec, err := m.d.History.Record(ctx, id)
	if err != nil {
		return Run{}, err
	}
	if rec == nil {
		return Run{}, errNotFound(id)
	}
	return rec.Run, nil
}

// Timeseries is run id's points. 404 not_found.
func (m *Manager) Timeseries(ctx context.Context, id string) ([]loadgen.Point, error) {
	if r, err := m.d.Live.Run(ctx, id); err == nil && r != nil {
		if pts, err := m.d.Live.Points(ctx, id); err == nil {
			return pts, nil
		}
	}
	if a := m.current(id); a != nil {
		return a.x.Points(), nil
	}
	rec, err := m.d.History.Record(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, errNotFound(id)
	}
	return rec.Points, nil
}

// Histogram is run id's latency distribution (empty before any answer). 404 not_found.
func (m *Manager) Histogram(ctx context.Context, id string) ([]loadgen.Percentile, error) {
	if a := m.current(id); a != nil {
		return a.x.Distribution(), nil
	}
	rec, err := m.d.History.Record(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, errNotFound(id)
	}
	return rec.Distribution, nil
}

// Record is all that is known of run id: state, timeseries and distribution. 404 not_found.
func (m *Manager) Record(ctx context.Context, id string) (Record, error) {
	r, err := m.Get(ctx, id)
	if err != nil {
		return Record{}, err
	}
	pts, err := m.Timeseries(ctx, id)
	if err != nil {
		return Record{}, err
	}
	dist, err := m.Histogram(ctx, id)
	if err != nil {
		return Record{}, err
	}
	return Record{Run: r, Points: pts, Distribution: dist}, nil
}

// List is a page of runs newest first, from history, with the run in progress as it is live.
// 400 validation_failed for a cursor it did not give.
func (m *Manager) List(ctx context.Context, limit int, cursor string) (runs []Run, next string, err error) {
	before, beforeID, err := decodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	runs, err = m.d.History.Runs(ctx, nil, before, beforeID, limit+1)
	if err != nil {
		return nil, "", err
	}
	// The run in progress: newer than any in history, so only on the first page.
	if cursor == "" {
		if id, err := m.d.Live.Active(ctx); err == nil && id != "" {
			if live, err := m.Get(ctx, id); err == nil {
				runs = append(runs, live)
			}
		} else if a := m.curRun(); a != nil {
			runs = append(runs, a.snapshot())
		}
	}
	byID := map[string]int{}
	uniq := runs[:0]
	for _, r := range runs {
		if i, ok := byID[r.ID]; ok {
			uniq[i] = r // the live state wins over history
			continue
		}
		byID[r.ID] = len(uniq)
		uniq = append(uniq, r)
	}
	sort.SliceStable(uniq, func(i, j int) bool {
		if !uniq[i].CreatedAt.Equal(uniq[j].CreatedAt) {
			return uniq[i].CreatedAt.After(uniq[j].CreatedAt)
		}
		return uniq[i].ID > uniq[j].ID
	})
	if len(uniq) > limit {
		uniq = uniq[:limit]
		last := uniq[limit-1]
		next = encodeCursor(last.CreatedAt, last.ID)
	}
	return uniq, next, nil
}

func (m *Manager) curRun() *active {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur
}
