package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"txn/internal/ledger"
	"txn/internal/loadgen"
)

// Live holds the state of runs in progress (Redis), so the API and UI read it cheaply and a
// restarted service finds the run it was running. Documents are Run and Point JSON.
type Live interface {
	// PutRun stores run id's document (unless nil); active marks it as the run in progress,
	// and a run put inactive is no longer in progress (and its state may expire).
	PutRun(ctx context.Context, id string, doc []byte, active bool) error
	// PutPoints stores points of run id by their second (0 is the first of the running phase).
	PutPoints(ctx context.Context, id string, points map[int][]byte) error
	// Run is run id's document; nil when there is none.
	Run(ctx context.Context, id string) ([]byte, error)
	// Points are run id's points in order.
	Points(ctx context.Context, id string) ([][]byte, error)
	// Active is the id of the run in progress, "" when none.
	Active(ctx context.Context) (string, error)
}

// History keeps every run (ClickHouse): one summary row per run, and its request log.
type History interface {
	// SaveRun stores the latest state of a run; timeseries is its points as a JSON array.
	SaveRun(ctx context.Context, id, status string, createdAt time.Time, run, timeseries []byte) error
	// RunDocs lists run documents newest first, those created before (before, beforeID) when
	// before is not zero, with one of statuses when any are given.
	RunDocs(ctx context.Context, statuses []string, before time.Time, beforeID string, limit int) ([][]byte, error)
	// RunDoc is a run's document and timeseries; nil when there is no such run.
	RunDoc(ctx context.Context, id string) (run, timeseries []byte, err error)
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
}

// Errors the API maps to statuses.
var (
	errConflict = func(format string, args ...any) error { return ledger.Errorf(ledger.CodeConflict, format, args...) }
	errNotFound = func(id string) error { return ledger.Errorf(ledger.CodeNotFound, "run %s not found", id) }
)

// Manager runs one load test at a time and keeps their state live and in history.
type Manager struct {
	d    Deps
	proc *Processor // cleanup

	mu      sync.Mutex
	base    context.Context // the service's lifetime; nil until Run
	cur     *active
	closing bool
	wg      sync.WaitGroup

	cleanMu sync.Mutex
}

// active is the run in progress.
type active struct {
	x      *Execution
	base   context.Context // the service's lifetime
	ctx    context.Context // base, also cancelled by a stop
	cancel context.CancelFunc
	stop   atomic.Bool

	mu       sync.Mutex
	run      Run // what the execution does not know: status, phase, error, verification
	res      *loadgen.Result
	logFails uint64

	pubMu   sync.Mutex // serialises publications, so the newest state is written last
	points  []loadgen.Point
	started bool // history knows the run started
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
	return &Manager{d: d, proc: NewProcessor(d.Target.URL, d.Target.AdminToken, loadgen.NewHTTPClient(prepWorkers, requestTimeout))}
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

// Recover marks failed the runs a previous process left in progress: the one Redis holds as
// active (with its latest live state), and any other history shows preparing or running.
func (m *Manager) Recover(ctx context.Context) error {
	id, err := m.d.Live.Active(ctx)
	if err != nil {
		return fmt.Errorf("read the active run: %w", err)
	}
	if id != "" {
		doc, err := m.d.Live.Run(ctx, id)
		if err != nil {
			return fmt.Errorf("read the active run: %w", err)
		}
		var ts []byte
		if pts, err := m.d.Live.Points(ctx, id); err == nil {
			ts = joinArray(pts)
		}
		if doc != nil {
			if err := m.interrupted(ctx, doc, ts); err != nil {
				return err
			}
		} else if err := m.d.Live.PutRun(ctx, id, nil, false); err != nil { // just clear the mark
			return err
		}
	}
	docs, err := m.d.History.RunDocs(ctx, []string{StatusPreparing, StatusRunning}, time.Time{}, "", 1000)
	if err != nil {
		return fmt.Errorf("read unfinished runs: %w", err)
	}
	for _, doc := range docs {
		var r Run
		if json.Unmarshal(doc, &r) != nil || r.ID == id {
			continue // the active run, recorded above
		}
		_, ts, err := m.d.History.RunDoc(ctx, r.ID)
		if err != nil {
			return err
		}
		if err := m.interrupted(ctx, doc, ts); err != nil {
			return err
		}
	}
	return nil
}

// interrupted records a run that a previous process left unfinished as failed, or, if only its
// verification was cut short, as done without one.
func (m *Manager) interrupted(ctx context.Context, doc, ts []byte) error {
	var r Run
	if err := json.Unmarshal(doc, &r); err != nil {
		return fmt.Errorf("decode run: %w", err)
	}
	if r.Phase == PhaseDone && Terminal(r.Status) {
		return m.save(ctx, r, ts, false)
	}
	if !Terminal(r.Status) {
		r.Error = fmt.Sprintf("interrupted: the loadtest service stopped while the run was %s", r.Status)
		r.Status = StatusFailed
		m.d.Metrics.runs.WithLabelValues(StatusFailed).Inc()
	} else {
		r.Error = "verification interrupted: the loadtest service stopped"
	}
	r.Phase = PhaseDone
	r.InFlight = 0
	if r.EndedAt == nil {
		now := time.Now().UTC()
		r.EndedAt = &now
	}
	m.d.Log.Warn("marked an interrupted run", "run", r.ID, "status", r.Status)
	return m.save(ctx, r, ts, false)
}

// save writes a run to history and to the live state.
func (m *Manager) save(ctx context.Context, r Run, ts []byte, live bool) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []byte("[]")
	}
	if err := m.d.History.SaveRun(ctx, r.ID, r.Status, r.CreatedAt, doc, ts); err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	if err := m.d.Live.PutRun(ctx, r.ID, doc, live); err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	return nil
}

func joinArray(items [][]byte) []byte {
	out := []byte{'['}
	for i, it := range items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, it...)
	}
	return append(out, ']')
}

// Start begins a run of cfg (validated, with defaults) and returns its first state.
func (m *Manager) Start(cfg Config) (Run, error) {
	m.mu.Lock()
	if m.closing || m.base == nil {
		m.mu.Unlock()
		return Run{}, ledger.Errorf(ledger.CodeUnavailable, "the loadtest service is starting or shutting down")
	}
	if m.cur != nil {
		id := m.cur.x.id
		m.mu.Unlock()
		return Run{}, errConflict("run %s is in progress: one run at a time", id)
	}
	id := uuid.Must(uuid.NewV7()).String()
	ctx, cancel := context.WithCancel(m.base)
	a := &active{x: NewExecution(id, cfg, m.d.Target), base: m.base, ctx: ctx, cancel: cancel, run: Run{
		ID: id, Status: StatusPreparing, Phase: PhasePreparing, Config: cfg,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond),
	}}
	a.x.Observe = m.d.Metrics.observe
	m.cur = a
	m.wg.Add(1)
	m.mu.Unlock()

	pctx, pcancel := persistCtx()
	defer pcancel()
	r := a.snapshot()
	if err := m.save(pctx, r, nil, true); err != nil {
		m.release(a)
		a.x.Close()
		cancel()
		m.d.Log.Error("cannot record a new run", "err", err)
		return Run{}, ledger.Errorf(ledger.CodeUnavailable, "the run could not be recorded: %v", err)
	}
	go m.execute(a)
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

// Stop asks run id to stop; it ends as stopped.
func (m *Manager) Stop(ctx context.Context, id string) (Run, error) {
	if a := m.current(id); a != nil {
		a.mu.Lock()
		running := !Terminal(a.run.Status)
		a.mu.Unlock()
		if running {
			a.stop.Store(true)
			a.cancel()
			return a.snapshot(), nil
		}
	}
	r, err := m.Get(ctx, id)
	if err != nil {
		return Run{}, err
	}
	return Run{}, errConflict("run %s is already %s", id, r.Status)
}

func (a *active) snapshot() Run {
	a.mu.Lock()
	r := a.run
	res := a.res
	logFails := a.logFails
	a.mu.Unlock()
	a.x.Fill(&r, res)
	r.LogDropped += logFails
	if r.Errors == nil {
		r.Errors = map[string]uint64{}
	}
	if r.ByOp == nil {
		r.ByOp = []loadgen.Group{}
	}
	return r
}

func (a *active) set(f func(r *Run)) {
	a.mu.Lock()
	f(&a.run)
	a.mu.Unlock()
}

// publish writes the run's live state: its document and the points that changed since the
// last time. history also records it in history, as transitions (and the start of the
// running phase) do.
func (m *Manager) publish(a *active, history bool) {
	a.pubMu.Lock()
	defer a.pubMu.Unlock()
	ctx, cancel := persistCtx()
	defer cancel()
	r := a.snapshot()
	if r.StartedAt != nil && !a.started {
		history, a.started = true, true // the running phase began: history shows it
	}
	pts := a.x.Points()
	changed := map[int][]byte{}
	for i, p := range pts {
		if i >= len(a.points) || a.points[i] != p {
			b, _ := json.Marshal(p)
			changed[i] = b
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
		ts, _ := json.Marshal(pts)
		if err := m.save(ctx, r, ts, live); err != nil {
			m.d.Log.Error("cannot record the run", "run", r.ID, "err", err)
		}
		return
	}
	doc, _ := json.Marshal(r)
	if err := m.d.Live.PutRun(ctx, r.ID, doc, live); err != nil {
		m.d.Log.Warn("cannot publish the live run", "run", r.ID, "err", err)
	}
}

// execute drives a run through its phases.
func (m *Manager) execute(a *active) {
	defer m.release(a)
	defer a.x.Close()
	defer a.cancel()
	log := m.d.Log.With("run", a.x.id)
	tick := time.NewTicker(time.Second)
	done := make(chan struct{})
	go func() {
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				m.publish(a, false)
			}
		}
	}()
	defer close(done)

	// interruption names what cut the run short: a stop, or the service shutting down.
	interruption := func() (status, msg string) {
		if a.stop.Load() {
			return StatusStopped, ""
		}
		return StatusFailed, "interrupted: the loadtest service shut down"
	}
	finish := func(status, msg string) {
		now := time.Now().UTC()
		a.set(func(r *Run) {
			r.Status, r.Error, r.Phase = status, msg, PhaseDone
			if r.EndedAt == nil {
				r.EndedAt = &now
			}
		})
		m.d.Metrics.runs.WithLabelValues(status).Inc()
		m.publish(a, true)
		log.Info("run ended", "status", status, "err", msg)
	}

	log.Info("preparing", "users", a.x.cfg.Users, "accounts", a.x.cfg.Users*a.x.cfg.AccountsPerUser)
	if err := a.x.Prepare(a.ctx); err != nil {
		if a.ctx.Err() != nil {
			finish(interruption())
		} else {
			finish(StatusFailed, "preparation failed: "+err.Error())
		}
		return
	}
	if a.ctx.Err() != nil {
		finish(interruption())
		return
	}

	a.set(func(r *Run) { r.Status, r.Phase = StatusRunning, PhaseRunning })
	feed := loadgen.NewFeed(m.d.LogBuffer)
	logged := make(chan uint64, 1)
	go func() { logged <- m.writeLog(a.x.id, feed) }()
	log.Info("running", "rate", a.x.cfg.Rate, "duration_s", a.x.cfg.DurationS)
	res, err := a.x.Generate(a.ctx, feed)
	if err != nil {
		feed.Close()
		<-logged
		finish(StatusFailed, "generation failed: "+err.Error())
		return
	}
	logFails := <-logged
	status, msg := StatusCompleted, ""
	if res.Stopped {
		status, msg = interruption()
	}
	a.mu.Lock()
	a.res, a.logFails = &res, logFails
	a.run.Status, a.run.Error = status, msg
	a.mu.Unlock()
	if status == StatusFailed {
		finish(status, msg)
		return
	}
	m.d.Metrics.runs.WithLabelValues(status).Inc()
	a.set(func(r *Run) { r.Phase = PhaseVerifying })
	m.publish(a, true)

	// Verification is not cut short by a stop, only by the shutdown.
	vctx := a.base
	a.x.Settle(vctx)
	v := a.x.Verify(vctx, m.d.Analytics, m.d.AnalyticsWait)
	a.set(func(r *Run) {
		r.Phase = PhaseDone
		if vctx.Err() != nil {
			r.Error = "verification interrupted: the loadtest service shut down"
			return
		}
		r.Verification = v
	})
	m.publish(a, true)
	log.Info("run verified", "status", status, "ok", v.OK, "problems", v.Problems)
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

// Get is run id's latest state: live while in progress, else from history.
func (m *Manager) Get(ctx context.Context, id string) (Run, error) {
	doc, err := m.doc(ctx, id)
	if err != nil {
		return Run{}, err
	}
	var r Run
	if err := json.Unmarshal(doc, &r); err != nil {
		return Run{}, fmt.Errorf("decode run %s: %w", id, err)
	}
	return r, nil
}

// doc is run id's document as stored: Redis first (the run in progress and recent ones), the
// memory of this process when Redis fails, then history.
func (m *Manager) doc(ctx context.Context, id string) ([]byte, error) {
	doc, err := m.d.Live.Run(ctx, id)
	if err == nil && doc != nil {
		return doc, nil
	}
	if err != nil {
		if a := m.current(id); a != nil {
			return json.Marshal(a.snapshot())
		}
		m.d.Log.Warn("live state unavailable", "err", err)
	}
	doc, _, err = m.d.History.RunDoc(ctx, id)
	if err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, errNotFound(id)
	}
	return doc, nil
}

// Timeseries is run id's points as a JSON array.
func (m *Manager) Timeseries(ctx context.Context, id string) ([]byte, error) {
	doc, err := m.d.Live.Run(ctx, id)
	if err == nil && doc != nil {
		pts, err := m.d.Live.Points(ctx, id)
		if err == nil {
			return joinArray(pts), nil
		}
	}
	if a := m.current(id); a != nil {
		return json.Marshal(a.x.Points())
	}
	doc, ts, err := m.d.History.RunDoc(ctx, id)
	if err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, errNotFound(id)
	}
	return ts, nil
}

// List is a page of runs newest first, from history, with the run in progress as it is live.
func (m *Manager) List(ctx context.Context, limit int, cursor string) (docs [][]byte, next string, err error) {
	before, beforeID, err := decodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	hist, err := m.d.History.RunDocs(ctx, nil, before, beforeID, limit+1)
	if err != nil {
		return nil, "", err
	}
	runs := make([]Run, 0, len(hist)+1)
	for _, doc := range hist {
		var r Run
		if err := json.Unmarshal(doc, &r); err != nil {
			return nil, "", fmt.Errorf("decode run: %w", err)
		}
		runs = append(runs, r)
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
	for _, r := range uniq {
		doc, err := json.Marshal(r)
		if err != nil {
			return nil, "", err
		}
		docs = append(docs, doc)
	}
	return docs, next, nil
}

func (m *Manager) curRun() *active {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur
}

// DeleteData removes run id's users, accounts and transactions and their read models.
func (m *Manager) DeleteData(ctx context.Context, id string) (CleanupResult, error) {
	if a := m.current(id); a != nil {
		return CleanupResult{}, errConflict("run %s is in progress: stop it and wait for it to end first", id)
	}
	r, err := m.Get(ctx, id)
	if err != nil {
		return CleanupResult{}, err
	}
	m.cleanMu.Lock()
	defer m.cleanMu.Unlock()
	res, err := Cleanup(ctx, m.proc, id, m.d.Cleaners)
	if err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == 409 {
			return res, errConflict("%v", err)
		}
		return res, ledger.Errorf(ledger.CodeUnavailable, "cleanup failed: %v", err)
	}
	r.Cleanup = &res
	_, ts, err := m.d.History.RunDoc(ctx, id)
	if err == nil {
		err = m.save(ctx, r, ts, false)
	}
	if err != nil {
		m.d.Log.Warn("cannot record the cleanup", "run", id, "err", err)
	}
	return res, nil
}
