package loadtest

import (
	"time"

	"txn/internal/ledger"
	"txn/internal/loadgen"
)

// Run statuses (API.md): preparing → running → completed | stopped | aborted | failed.
const (
	StatusPreparing = "preparing"
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusStopped   = "stopped"
	StatusAborted   = "aborted" // a threshold with abort broke
	StatusFailed    = "failed"
)

// Run phases, finer than the status: a run is terminal once sending ends, and is then settled
// and verified; it is done when nothing more will change by itself.
const (
	PhasePreparing = "preparing"
	PhaseRunning   = "running"
	PhaseVerifying = "verifying"
	PhaseDone      = "done"
)

// Terminal reports whether status is final.
func Terminal(status string) bool {
	return status == StatusCompleted || status == StatusStopped || status == StatusAborted || status == StatusFailed
}

// Run is a load test run as the API shows it (API.md, "Loadtest").
type Run struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Status    string     `json:"status"`
	Phase     string     `json:"phase"`
	Config    Config     `json:"config"`
	CreatedAt time.Time  `json:"created_at"`
	StartedAt *time.Time `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`
	Error     string     `json:"error,omitempty"` // why it failed
	// AbortReason names the threshold that ended an aborted run and what it observed.
	AbortReason string `json:"abort_reason,omitempty"`
	// Thresholds are the config's, each with what was observed and whether it passed.
	Thresholds []Threshold `json:"thresholds"`

	Progress *Progress `json:"progress"` // preparation

	Scheduled uint64            `json:"scheduled"` // requests in the schedule
	Sent      uint64            `json:"sent"`
	OK        uint64            `json:"ok"`
	Failed    uint64            `json:"failed"`
	InFlight  int64             `json:"in_flight"`
	Errors    map[string]uint64 `json:"errors"` // failures by error code, or http_<status>, timeout, conn_error
	// Rejected counts failures that are a business rule's correct answer (422: insufficient
	// funds and the like); ErrorRate is the other failures over Sent.
	Rejected  uint64  `json:"rejected"`
	ErrorRate float64 `json:"error_rate"`
	// Late counts sends more than loadgen.DefaultLateAfter behind their scheduled time.
	Late         uint64  `json:"late"`
	TargetRate   float64 `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	// ScheduledRate is what the schedule asks per second of the running phase on average
	// (the target rate, less during a ramp-up); Behind says the generator did not keep up with
	// it: it achieved under 99 % of it.
	ScheduledRate float64 `json:"scheduled_rate"`
	Behind        bool    `json:"behind"`
	// BehindDetail says by how much the generator fell short and the likely cause.
	BehindDetail string          `json:"behind_detail,omitempty"`
	LatencyMs    loadgen.Latency `json:"latency_ms"`
	SendLagMs    loadgen.Latency `json:"send_lag_ms"` // scheduled time to actual send
	ByOp         []loadgen.Group `json:"by_op"`       // latency by operation and outcome
	LogDropped   uint64          `json:"log_dropped"` // request log records lost (buffer full or store down)
	Verification *Verification   `json:"verification"`
	// Workers are the load workers that sent the run, when it asked for some.
	Workers []WorkerInfo   `json:"workers,omitempty"`
	Cleanup *CleanupResult `json:"cleanup"`
}

// Progress is how far preparation got.
type Progress struct {
	Step          string  `json:"step"` // users, deposits, done
	Users         int64   `json:"users"`
	UsersTotal    int64   `json:"users_total"`
	Accounts      int64   `json:"accounts"`
	AccountsTotal int64   `json:"accounts_total"`
	Deposits      int64   `json:"deposits"`
	DepositsTotal int64   `json:"deposits_total"`
	Fraction      float64 `json:"fraction"` // 0 to 1 over every step
}

// Verification is what the run checked once it was over.
type Verification struct {
	// Balanced: the processor's reconciliation balances in every currency.
	Balanced bool `json:"balanced"`
	// Accepted is the number of transactions the run created: seed deposits, requests answered
	// 201, requests whose answer was lost but that a resend showed were applied, and captures
	// of holds.
	Accepted int64 `json:"accepted"`
	// EventsInAnalytics is the run's rows found in ClickHouse once the pipeline caught up (or
	// the deadline passed); null when analytics were not checked.
	EventsInAnalytics *int64 `json:"events_in_analytics"`
	// ExpectedInAnalytics is how many rows the run's events make there: one per accepted
	// transaction and, for each hold, one for its creation and one for its void or expiry (its
	// capture is a transaction). Runs recorded before holds lack it (0): Accepted stands for it.
	ExpectedInAnalytics int64 `json:"expected_in_analytics"`
	// Holds is what became of the run's holds; null when the mix has none.
	Holds *HoldCounts `json:"holds"`
	// The run's accounts hold seeded + deposited - withdrawn: transfers only move money among
	// them.
	ExpectedBalanceTotal int64 `json:"expected_balance_total"`
	ActualBalanceTotal   int64 `json:"actual_balance_total"`
	BalancesMatch        bool  `json:"balances_match"`
	// Ambiguous requests got no definite answer (timeout, lost connection, 5xx) and were resent
	// with their idempotency key; Unresolved ones still have none, so the totals may not match.
	Ambiguous  int64 `json:"ambiguous"`
	Unresolved int64 `json:"unresolved"`
	// LostWorkerRequests are the requests a lost worker was due to send before it was lost,
	// resent with their keys like the ambiguous ones: its report of them died with it.
	LostWorkerRequests int64 `json:"lost_worker_requests,omitempty"`
	// AnalyticsWaitMs is how long the pipeline took to catch up after the run.
	AnalyticsWaitMs int64     `json:"analytics_wait_ms"`
	OK              bool      `json:"ok"`
	Problems        []string  `json:"problems"`
	CheckedAt       time.Time `json:"checked_at"`
}

// HoldCounts is what became of a run's hold operations, each a hold and its capture or void.
type HoldCounts struct {
	Created  int64 `json:"created"` // holds the processor accepted (the others were refused)
	Captured int64 `json:"captured"`
	// CapturedAmount moved from payers to payees, as transfers do.
	CapturedAmount int64 `json:"captured_amount"`
	Voided         int64 `json:"voided"`
	Expired        int64 `json:"expired"` // expired before a resent capture or void reached them
	Pending        int64 `json:"pending"` // their capture or void was refused: left pending, a problem
	// Held is what the run's accounts still reserve for pending holds, as the processor says
	// (balance less available): 0 when every hold was settled.
	Held int64 `json:"held"`
}

// Cleanup statuses: a run's data deletion runs as a job of the service.
const (
	CleanupRunning = "running"
	CleanupDone    = "done"
	CleanupFailed  = "failed"
)

// CleanupResult is what DELETE /runs/{id}/data removed, or how far it got.
type CleanupResult struct {
	Status    string    `json:"status"`
	Step      string    `json:"step,omitempty"`  // what a running job is doing
	Error     string    `json:"error,omitempty"` // why a failed one failed; repeat the DELETE to resume
	StartedAt time.Time `json:"started_at"`
	ledger.PurgeResult
	Activities    int64     `json:"activities"`
	Notifications *int64    `json:"notifications"` // null when the inbox cannot be cleaned
	Analytics     bool      `json:"analytics"`     // the run's analytics rows were deleted
	At            time.Time `json:"at"`
}

// AchievedRatio is the achieved rate over the scheduled one.
func (r Run) AchievedRatio() float64 {
	if r.ScheduledRate <= 0 {
		return 0
	}
	return r.AchievedRate / r.ScheduledRate
}

// rejections are the error codes that are a business rule's correct answer, not an error.
var rejections = map[string]bool{
	string(ledger.CodeInsufficientFunds): true,
	string(ledger.CodeCurrencyMismatch):  true,
	string(ledger.CodeSameAccount):       true,
	string(ledger.CodeBalanceLimit):      true,
}

// fill sets the counters and latencies of r from a summary.
func (r *Run) fill(s loadgen.Summary, inFlight int64) {
	r.Sent, r.OK, r.Failed, r.Late, r.InFlight = s.Sent, s.OK, s.Failed, s.Late, inFlight
	r.Errors, r.LatencyMs, r.SendLagMs, r.ByOp = s.Errors, s.Latency, s.SendLag, s.Groups
	if r.ByOp == nil {
		r.ByOp = []loadgen.Group{}
	}
	r.Rejected = 0
	for code, n := range s.Errors {
		if rejections[code] {
			r.Rejected += n
		}
	}
	r.ErrorRate = 0
	if r.Sent > 0 {
		r.ErrorRate = float64(r.Failed-r.Rejected) / float64(r.Sent)
	}
}
