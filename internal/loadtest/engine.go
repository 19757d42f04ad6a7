package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"txn/internal/backoff"
	"txn/internal/loadgen"
)

// Target is the processor a run drives.
type Target struct {
	URL        string // e.g. http://127.0.0.1:8000
	AdminToken string
}

// How preparation and verification talk to the processor: enough requests in parallel to keep
// it busy, not so many that they crowd out each other.
const (
	prepWorkers      = 32
	depositBatch     = 1000 // POST /transactions/batch's limit
	depositWorkers   = 4
	requestTimeout   = 10 * time.Second
	maxAmbiguousKept = 1 << 20
	// behindLagMs: a generator whose sends lag their schedule this much at p99 is not keeping
	// up, even if it catches up on average.
	behindLagMs = 10
)

// DescriptionPrefix starts the description of every transaction of run id, so its analytics
// rows can be counted and deleted.
func DescriptionPrefix(id string) string { return "loadtest:" + id + ":" }

type account struct {
	id    string
	owner int // index in users
}

// Execution is one run: preparation, generation, settling and verification, and the run's
// status through them (lifecycle.go). The service and the CLI both drive it with Execute.
type Execution struct {
	id     string
	cfg    Config
	sched  loadgen.Schedule // as configured; the runner holds it with rate changes
	deps   ExecutionDeps
	seed   uint64
	admin  string
	prep   *LedgerClient // preparation and verification
	gen    *LedgerClient // the generated load, one connection per worker
	prefix string
	life   lifecycle

	users    []NewUser
	accounts []account
	picker   *Picker
	runner   atomic.Pointer[generation]
	// dist, when set, has the run's workers send the schedule instead of this process.
	dist *distribution
	// share and startAt are a worker's part of a run sent by several (zero: all of it, now).
	share   loadgen.Share
	startAt time.Time

	step                                       atomic.Value // string
	usersDone, accountsDone, depositsDone      atomic.Int64
	seededAmount, seededCount                  atomic.Int64
	deposited, withdrawn, accepted, unresolved atomic.Int64
	holds                                      holdStats
	ambiguousMu                                sync.Mutex
	ambiguous                                  []uint64
	ambiguousTotal                             atomic.Int64
	lostResent                                 atomic.Int64 // requests of lost workers' shares, queued for Settle
}

// ExecutionDeps is what an execution needs besides its configuration.
type ExecutionDeps struct {
	Target Target
	// Analytics, if set, counts the run's transactions in analytics for the verification,
	// which waits up to AnalyticsWait for the pipeline to catch up.
	Analytics     AnalyticsCounter
	AnalyticsWait time.Duration
	// Observe, if set, is told of every generated request as it completes (for metrics).
	Observe func(op, outcome string, latency time.Duration)
}

// NewExecution prepares run id of cfg (validated, with defaults); it starts with Execute.
func NewExecution(id string, cfg Config, deps ExecutionDeps) (*Execution, error) {
	sched, err := cfg.Schedule()
	if err != nil {
		return nil, err
	}
	t := deps.Target
	x := &Execution{
		id: id, cfg: cfg, sched: sched, deps: deps, seed: cfg.Seed, admin: t.AdminToken, prefix: DescriptionPrefix(id),
		prep: NewLedgerClient(t.URL, t.AdminToken, prepWorkers, requestTimeout),
		gen:  NewLedgerClient(t.URL, t.AdminToken, cfg.Connections, requestTimeout),
	}
	x.life.init(x)
	x.step.Store("users")
	return x, nil
}

// ID is the run's id.
func (x *Execution) ID() string { return x.id }

// Close releases the connections.
func (x *Execution) Close() {
	for _, p := range []*LedgerClient{x.prep, x.gen} {
		p.CloseIdleConnections()
	}
}

// Progress is how far preparation got.
func (x *Execution) Progress() *Progress {
	c := x.cfg
	p := &Progress{
		Step:  x.step.Load().(string),
		Users: x.usersDone.Load(), UsersTotal: int64(c.Users),
		Accounts: x.accountsDone.Load(), AccountsTotal: int64(c.Users * c.AccountsPerUser),
		Deposits: x.depositsDone.Load(),
	}
	if c.InitialBalance > 0 {
		p.DepositsTotal = p.AccountsTotal
	}
	if total := p.UsersTotal + p.AccountsTotal + p.DepositsTotal; total > 0 {
		p.Fraction = float64(p.Users+p.Accounts+p.Deposits) / float64(total)
	}
	return p
}

// Prepare creates the run's users (tagged with the run id) and accounts, and seeds every
// account with the initial balance.
func (x *Execution) Prepare(ctx context.Context) error {
	c := x.cfg
	x.users = make([]NewUser, c.Users)
	x.accounts = make([]account, c.Users*c.AccountsPerUser)
	tags := []string{x.id, "loadtest"}
	jobs := make(chan int)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(jobs)
		for i := range c.Users {
			select {
			case jobs <- i:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	for range min(prepWorkers, c.Users) {
		g.Go(func() error {
			for i := range jobs {
				if err := x.createUser(gctx, i, tags); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	x.step.Store("deposits")
	if c.InitialBalance > 0 {
		if err := x.seedBalances(ctx); err != nil {
			return err
		}
	}
	x.step.Store("done")
	return nil
}

func (x *Execution) createUser(ctx context.Context, i int, tags []string) error {
	name := "loadtest-" + strconv.Itoa(i)
	email := fmt.Sprintf("lt-%d-%s@example.com", i, x.id)
	var u NewUser
	// Creating a user is not idempotent: resend only what was certainly not applied.
	err := retryIf(ctx, 8, notApplied, func() (err error) {
		u, err = x.prep.CreateUser(ctx, name, email, tags)
		return err
	})
	if err != nil {
		return fmt.Errorf("create user %d: %w", i, err)
	}
	x.users[i] = u
	x.usersDone.Add(1)
	for j := range x.cfg.AccountsPerUser {
		var id string
		// A resent account creation may leave an extra empty account: harmless, and purged.
		err := retry(ctx, 8, func() (err error) {
			id, err = x.prep.CreateAccount(ctx, u.ID, x.cfg.Currency)
			return err
		})
		if err != nil {
			return fmt.Errorf("create account for user %d: %w", i, err)
		}
		x.accounts[i*x.cfg.AccountsPerUser+j] = account{id: id, owner: i}
		x.accountsDone.Add(1)
	}
	return nil
}

// seed deposits the initial balance into every account in batches; each item has an
// idempotency key, so a batch is safely resent.
func (x *Execution) seedBalances(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(depositWorkers)
	for start := 0; start < len(x.accounts); start += depositBatch {
		idx := make([]int, 0, depositBatch)
		for i := start; i < min(start+depositBatch, len(x.accounts)); i++ {
			idx = append(idx, i)
		}
		g.Go(func() error { return x.seedBatch(gctx, idx) })
	}
	return g.Wait()
}

func (x *Execution) seedBatch(ctx context.Context, idx []int) error {
	for attempt := 1; len(idx) > 0; attempt++ {
		items := make([]BatchItem, len(idx))
		for k, i := range idx {
			items[k] = BatchItem{Type: OpDeposit, ToAccountID: x.accounts[i].id, Amount: x.cfg.InitialBalance,
				Currency: x.cfg.Currency, Description: x.prefix + "seed", IdempotencyKey: x.id + ":seed:" + strconv.Itoa(i)}
		}
		var results []BatchResult
		err := retry(ctx, 8, func() (err error) {
			results, err = x.prep.Batch(ctx, items)
			return err
		})
		if err != nil {
			return fmt.Errorf("seed deposits: %w", err)
		}
		var again []int
		for k, r := range results {
			switch {
			case r.Status == http.StatusCreated:
				x.seededAmount.Add(x.cfg.InitialBalance)
				x.seededCount.Add(1)
				x.depositsDone.Add(1)
			case (r.Status == http.StatusTooManyRequests || r.Status == http.StatusServiceUnavailable) && attempt < 8:
				again = append(again, idx[k])
			default:
				code := ""
				if r.Error != nil {
					code = r.Error.Code + ": " + r.Error.Detail
				}
				return fmt.Errorf("seed deposit answered %d %s", r.Status, code)
			}
		}
		idx = again
		if len(idx) > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		}
	}
	return nil
}

// Generate sends the schedule until it ends or ctx is cancelled (a stop). feed, if set,
// receives every completed request.
func (x *Execution) Generate(ctx context.Context, feed *loadgen.Feed) (loadgen.Result, error) {
	if len(x.accounts) == 0 {
		return loadgen.Result{}, errors.New("loadtest: generate before prepare")
	}
	x.picker = NewPicker(x.cfg, len(x.accounts), x.seed)
	if x.dist != nil {
		return x.distribute(ctx)
	}
	r, err := loadgen.NewRunner(loadgen.Config{Schedule: x.sched, Workers: x.cfg.Connections, Feed: feed,
		Share: x.share, Start: x.startAt}, x.work)
	if err != nil {
		return loadgen.Result{}, err
	}
	x.runner.Store(&generation{r})
	return r.Run(ctx)
}

// request builds request seq: its token, idempotency key and body.
func (x *Execution) request(seq uint64) (pk Pick, token, key string, body []byte) {
	pk = x.picker.Pick(seq)
	token, body = x.moneyBody(pk, pk.Op, "", seq)
	return pk, token, x.seqKey(seq), body
}

// seqKey is the idempotency key of operation seq of the run.
func (x *Execution) seqKey(seq uint64) string { return x.id + ":" + strconv.FormatUint(seq, 10) }

// moneyBody builds the body that moves pk's money: its type (none for a hold), accounts,
// amount, currency and the run's description (mark sets holds apart), and the token to send
// it with (the payer's, else the admin's). It is appended by hand: it is on the hot path, and
// every value in it needs no escaping.
func (x *Execution) moneyBody(pk Pick, typ, mark string, seq uint64) (token string, body []byte) {
	token = x.admin
	b := make([]byte, 0, 256)
	b = append(b, '{')
	if typ != "" {
		b = append(b, `"type":"`...)
		b = append(b, typ...)
		b = append(b, `",`...)
	}
	if pk.From >= 0 {
		a := x.accounts[pk.From]
		token = x.users[a.owner].APIKey
		b = append(b, `"from_account_id":"`...)
		b = append(b, a.id...)
		b = append(b, `",`...)
	}
	if pk.To >= 0 {
		b = append(b, `"to_account_id":"`...)
		b = append(b, x.accounts[pk.To].id...)
		b = append(b, `",`...)
	}
	b = append(b, `"amount":`...)
	b = strconv.AppendInt(b, pk.Amount, 10)
	b = append(b, `,"currency":"`...)
	b = append(b, x.cfg.Currency...)
	b = append(b, `","description":"`...)
	b = append(b, x.prefix...)
	b = append(b, mark...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `"}`...)
	return token, b
}

// account books an applied request's money.
func (x *Execution) account(pk Pick) {
	x.accepted.Add(1)
	switch pk.Op {
	case OpDeposit:
		x.deposited.Add(pk.Amount)
	case OpWithdrawal:
		x.withdrawn.Add(pk.Amount)
	}
}

func (x *Execution) work(ctx context.Context, seq uint64) loadgen.Outcome {
	pk := x.picker.Pick(seq)
	var a Answer
	ambiguous := false
	switch pk.Op {
	case OpRead: // a read changes nothing: there is nothing to settle
		acct := x.accounts[pk.From]
		a = x.gen.Read(ctx, x.users[acct.owner].APIKey, acct.id)
	case OpHold:
		var o holdOutcome
		a, o = x.holdOp(ctx, x.gen, seq, pk, false)
		x.holds.book(o)
		ambiguous = o.fate == holdUnknown
	default:
		_, token, key, body := x.request(seq)
		if a = x.gen.Send(ctx, token, key, body); a.Status == http.StatusCreated {
			x.account(pk)
		}
		ambiguous = a.Ambiguous()
	}
	if ambiguous {
		x.keepAmbiguous(seq)
	}
	if observe := x.deps.Observe; observe != nil {
		if r := x.generator(); r != nil && r.Recorder() != nil {
			outcome := a.Code
			if outcome == "" {
				outcome = loadgen.OutcomeOK
			}
			observe(pk.Op, outcome, time.Since(r.Recorder().Start().Add(r.Schedule().At(seq))))
		}
	}
	return loadgen.Outcome{Op: pk.Op, Status: a.Status, Code: a.Code, TxID: a.TxID}
}

// keepAmbiguous keeps request seq, whose outcome is not known, for Settle.
func (x *Execution) keepAmbiguous(seq uint64) {
	x.ambiguousTotal.Add(1)
	x.ambiguousMu.Lock()
	defer x.ambiguousMu.Unlock()
	if len(x.ambiguous) < maxAmbiguousKept {
		x.ambiguous = append(x.ambiguous, seq)
	} else {
		x.unresolved.Add(1)
	}
}

// Settle resends, with their idempotency keys, the requests whose answer was lost, until each
// has a definite one: a replayed 201 means the first attempt was applied, a fresh 201 that
// this one was, 404 or 422 that none was. A hold operation is resent whole, its hold and then
// its capture or void (settleHold). Settled requests are booked, so the money adds up.
func (x *Execution) Settle(ctx context.Context) {
	x.ambiguousMu.Lock()
	seqs := x.ambiguous
	x.ambiguous = nil
	x.ambiguousMu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(prepWorkers)
	for _, seq := range seqs {
		g.Go(func() error {
			ok := false
			if pk := x.picker.Pick(seq); pk.Op == OpHold {
				ok = x.settleHold(gctx, seq, pk)
			} else {
				ok = x.settle(gctx, seq)
			}
			if !ok {
				x.unresolved.Add(1)
			}
			return nil
		})
	}
	_ = g.Wait()
}

// settle resends request seq until its answer is definite, and reports whether it got one.
func (x *Execution) settle(ctx context.Context, seq uint64) bool {
	pk, token, key, body := x.request(seq)
	wait := backoff.New(100*time.Millisecond, 2*time.Second)
	for attempt := 1; ; attempt++ {
		a := x.prep.Send(ctx, token, key, body)
		switch a.Status {
		case http.StatusCreated:
			x.account(pk)
			return true
		case http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity:
			return true
		}
		if attempt == 8 || !wait.Wait(ctx) {
			return false
		}
	}
}
