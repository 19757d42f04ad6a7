package loadtest

import (
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"

	"txn/internal/apierr"
	"txn/internal/loadgen"
)

// Load workers (`loadtest worker`, on this machine or others) join the service, which runs
// them as a fleet: a run with "workers": n claims n idle ones, prepares its users and accounts
// itself, then each worker sends its share of the schedule (loadgen.Share) and reports its
// counters and HDR histograms every WorkerHeartbeat; the service merges them before it shows
// and judges the run. A worker that stops reporting for WorkerLostAfter is lost: it stops
// sending itself after WorkerLease without an answer, so by then it no longer sends, and what
// it may have sent is learned by resending its due requests with their idempotency keys.

// Worker timings. WorkerLease < WorkerLostAfter: a worker cut off from the service stops
// sending before the service counts it lost and settles its share.
const (
	WorkerHeartbeat = 500 * time.Millisecond
	WorkerLease     = 3 * time.Second
	WorkerLostAfter = 5 * time.Second
	// workerGoneAfter: an idle worker unheard of this long has left the fleet.
	workerGoneAfter = time.Minute
	// startLead is how far ahead of the assignment a distributed run's schedule starts, so
	// every worker has fetched its part by then.
	startLead = 2 * time.Second
	// rateLead is how far ahead a rate change of a distributed run applies, so every worker
	// hears of it before that point of the schedule.
	rateLead = time.Second
	// reportLag is how long after a second ends the service has every worker's report of it.
	reportLag    = 2 * WorkerHeartbeat
	maxNameRunes = 100
)

// Worker states.
const (
	WorkerIdle     = "idle"     // waiting for a run
	WorkerAssigned = "assigned" // claimed by a run that is preparing
	WorkerRunning  = "running"  // sending its share
	WorkerSettling = "settling" // resending what got no definite answer
	WorkerDone     = "done"     // reported its share's outcome
	WorkerLost     = "lost"     // stopped reporting mid-run
)

// WorkerInfo is a worker as GET /workers and a run's "workers" show it.
type WorkerInfo struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	State    string     `json:"state"`
	RunID    string     `json:"run_id,omitempty"`
	Share    string     `json:"share,omitempty"` // "2/3": the second of three parts
	JoinedAt time.Time  `json:"joined_at"`
	SeenAt   time.Time  `json:"seen_at"`
	LostAt   *time.Time `json:"lost_at,omitempty"`
	// Scheduled is its share of the schedule; NotSent, for a lost worker, what of it was
	// not sent as far as its last report tells.
	Scheduled uint64 `json:"scheduled"`
	Sent      uint64 `json:"sent"`
	OK        uint64 `json:"ok"`
	Failed    uint64 `json:"failed"`
	Late      uint64 `json:"late"`
	InFlight  int64  `json:"in_flight"`
	NotSent   uint64 `json:"not_sent,omitempty"`
}

// WorkerReport is what a worker tells the service at each heartbeat.
type WorkerReport struct {
	RunID    string         `json:"run_id,omitempty"`
	State    string         `json:"state"`
	InFlight int64          `json:"in_flight"`
	Delta    *loadgen.Delta `json:"delta,omitempty"` // its recorder since the last delta answered
	// EndedAt is the end of its running phase, once sending ended.
	EndedAt *time.Time `json:"ended_at,omitempty"`
	// Money is what its requests did, once settled (state done).
	Money *WorkerMoney `json:"money,omitempty"`
}

// WorkerMoney is what a worker's share did to the run's accounts, for the verification.
type WorkerMoney struct {
	Deposited  int64      `json:"deposited"`
	Withdrawn  int64      `json:"withdrawn"`
	Accepted   int64      `json:"accepted"`
	Ambiguous  int64      `json:"ambiguous"`
	Unresolved int64      `json:"unresolved"`
	Holds      HoldCounts `json:"holds"`
}

// WorkerOrders is the service's answer to a heartbeat: what the worker should be doing.
type WorkerOrders struct {
	RunID       string       `json:"run_id,omitempty"` // the run to take part in; "" to be idle
	Stop        bool         `json:"stop"`             // end the sending now
	RateChanges []RateChange `json:"rate_changes"`     // every change so far, in order
}

// RateChange sets the rate from a point of the schedule on.
type RateChange struct {
	AtMs int64   `json:"at_ms"` // offset from the schedule's start
	Rate float64 `json:"rate"`
}

// Assignment is a worker's part in a run: what it needs to build the same requests the
// service would, and which of them are its own.
type Assignment struct {
	RunID    string            `json:"run_id"`
	Config   Config            `json:"config"`
	Start    time.Time         `json:"start"` // the schedule's time zero
	Share    loadgen.Share     `json:"share"`
	Target   string            `json:"target"` // the processor's URL as the service reaches it
	Users    []NewUser         `json:"users"`
	Accounts []AssignedAccount `json:"accounts"`
}

// AssignedAccount is one of the run's accounts and the index of its owner in Users.
type AssignedAccount struct {
	ID    string `json:"id"`
	Owner int    `json:"owner"`
}

// Fleet is the service's register of load workers.
type Fleet struct {
	mu      sync.Mutex
	workers map[string]*fleetWorker
	now     func() time.Time
}

type fleetWorker struct {
	info  WorkerInfo
	dist  *distribution // the run that claimed it
	index int           // its share's index in dist
	last  WorkerReport  // the latest report of dist's run
}

// NewFleet returns an empty fleet.
func NewFleet() *Fleet { return &Fleet{workers: map[string]*fleetWorker{}, now: time.Now} }

// Register adds a worker named name and returns it. 400 validation_failed for a bad name.
func (f *Fleet) Register(name string) (WorkerInfo, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > maxNameRunes || strings.ContainsFunc(name, unicode.IsControl) {
		return WorkerInfo{}, apierr.Invalid(apierr.FieldError{Field: "name",
			Message: "must be 1 to 100 characters, none of them control characters"})
	}
	now := f.now().UTC()
	w := &fleetWorker{info: WorkerInfo{ID: uuid.Must(uuid.NewV7()).String(), Name: name, State: WorkerIdle, JoinedAt: now, SeenAt: now}}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.workers[w.info.ID] = w
	return w.info, nil
}

// Workers lists the fleet by name: the idle ones heard of lately and those of runs.
func (f *Fleet) Workers() []WorkerInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgetGone()
	out := make([]WorkerInfo, 0, len(f.workers))
	for _, w := range f.workers {
		out = append(out, w.info)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// forgetGone drops idle or finished workers not heard of for workerGoneAfter. f.mu is held.
func (f *Fleet) forgetGone() {
	now := f.now()
	for id, w := range f.workers {
		if w.dist == nil && now.Sub(w.info.SeenAt) > workerGoneAfter {
			delete(f.workers, id)
		}
	}
}

// Heartbeat records worker id's report and returns its orders. 404 not_found for a worker the
// fleet does not know, or one counted lost: it must register again (and sends nothing of its
// run meanwhile); 400 validation_failed for a report that does not decode.
func (f *Fleet) Heartbeat(id string, rep WorkerReport) (WorkerOrders, error) {
	f.mu.Lock()
	w := f.workers[id]
	if w == nil || w.info.State == WorkerLost {
		f.mu.Unlock()
		return WorkerOrders{}, apierr.Errorf(apierr.CodeNotFound, "worker %s is not in the fleet (lost or never registered): register again", id)
	}
	w.info.SeenAt = f.now().UTC()
	d := w.dist
	f.mu.Unlock()
	if d == nil {
		return WorkerOrders{}, nil
	}
	return d.report(w, rep)
}

// Assignment is worker id's part in the run that claimed it. 404 not_found for an unknown
// worker; 409 conflict when no run has one for it.
func (f *Fleet) Assignment(id string) (Assignment, error) {
	f.mu.Lock()
	w := f.workers[id]
	if w == nil {
		f.mu.Unlock()
		return Assignment{}, apierr.Errorf(apierr.CodeNotFound, "worker %s is not in the fleet", id)
	}
	d, index := w.dist, w.index
	f.mu.Unlock()
	if d == nil {
		return Assignment{}, apierr.Errorf(apierr.CodeConflict, "worker %s has no run", id)
	}
	return d.assignment(index)
}

// claim reserves n idle workers heard of within WorkerLostAfter for run runID. 409 conflict
// when the fleet has fewer.
func (f *Fleet) claim(runID string, n int) (*distribution, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	var idle []*fleetWorker
	for _, w := range f.workers {
		if w.dist == nil && w.info.State != WorkerLost && now.Sub(w.info.SeenAt) <= WorkerLostAfter {
			idle = append(idle, w)
		}
	}
	if len(idle) < n {
		return nil, apierr.Errorf(apierr.CodeConflict, "the run asks for %d workers and %d are idle: start more with `loadtest worker` (GET /api/v1/workers lists them)", n, len(idle))
	}
	sort.Slice(idle, func(i, j int) bool {
		return idle[i].info.Name < idle[j].info.Name || (idle[i].info.Name == idle[j].info.Name && idle[i].info.ID < idle[j].info.ID)
	})
	d := &distribution{fleet: f, runID: runID, workers: idle[:n]}
	for i, w := range d.workers {
		w.dist, w.index, w.last = d, i, WorkerReport{}
		w.info.State, w.info.RunID, w.info.Share = WorkerAssigned, runID, loadgen.Share{Index: i, Count: n}.String()
		w.info.LostAt, w.info.Sent, w.info.OK, w.info.Failed, w.info.Late, w.info.InFlight, w.info.NotSent = nil, 0, 0, 0, 0, 0, 0
	}
	return d, nil
}

// release returns d's workers that are not lost to the idle ones, and forgets the lost.
func (f *Fleet) release(d *distribution) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range d.workers {
		if w.dist != d {
			continue
		}
		w.dist = nil
		if w.info.State == WorkerLost {
			delete(f.workers, w.info.ID)
			continue
		}
		w.info.State, w.info.RunID, w.info.Share = WorkerIdle, "", ""
	}
}
