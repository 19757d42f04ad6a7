package loadtest

import (
	"math"
	"math/bits"
	"sort"
)

// Operation names, as runs and metrics label them.
const (
	OpTransfer   = "transfer"
	OpDeposit    = "deposit"
	OpWithdrawal = "withdrawal"
	OpRead       = "read" // GET of an account and its latest entries, by its owner
	OpHold       = "hold" // a hold From → To, then its capture or void: one operation
)

// holdCaptureIn4 is how many holds in 4 are captured (in part or whole); the others are voided.
const holdCaptureIn4 = 3

// Pick is one generated request: From and To are account indexes, -1 when absent. A hold
// reserves Amount and then captures Capture of it (1 to Amount), or voids it when Capture is 0.
type Pick struct {
	Op       string
	From, To int
	Amount   int64
	Capture  int64
}

// Picker decides what request seq of a run is. A request is a pure function of the run's seed
// and seq, so workers need no shared random state, and a request whose outcome was lost can be
// rebuilt exactly and resent with its idempotency key.
//
// Debits (the sources of transfers, withdrawals and holds) pick accounts uniformly; credits of
// transfers and holds pick them with a Zipf skew, so a few hot accounts receive most
// transfers, as merchants do. Deposits pick uniformly, refilling spenders.
type Picker struct {
	seed     uint64
	accounts int
	// below[i]: u < below[i] picks mixOps[i], the first that fits; the last operation in the mix
	// takes the rest, so rounding never picks one that is not in it.
	below     [len(mixOps)]float64
	maxAmount int64
	cdf       []float64 // cumulative Zipf weights by rank; nil for uniform
}

// mixOps are the operations in the order their shares are laid out on [0, 1).
var mixOps = [...]string{OpTransfer, OpDeposit, OpWithdrawal, OpRead, OpHold}

// NewPicker is the picker for a run of cfg (with defaults) over accounts accounts.
func NewPicker(cfg Config, accounts int, seed uint64) *Picker {
	p := &Picker{seed: seed, accounts: accounts, maxAmount: cfg.MaxAmount}
	m := cfg.Mix
	shares := [len(mixOps)]float64{m.Transfer, m.Deposit, m.Withdrawal, m.Read, m.Hold}
	sum, last := 0.0, 0
	for i, s := range shares {
		sum += s
		p.below[i] = sum
		if s > 0 {
			last = i
		}
	}
	for i := last; i < len(mixOps); i++ {
		p.below[i] = 2
	}
	if s := *cfg.Skew; s > 0 && accounts > 1 {
		p.cdf = make([]float64, accounts)
		sum := 0.0
		for k := range p.cdf {
			sum += math.Pow(float64(k+1), -s)
			p.cdf[k] = sum
		}
	}
	return p
}

// splitmix64's finaliser: a strong 64-bit mix.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// rng is splitmix64: tiny, allocation-free, and good enough for a handful of draws.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// intn is uniform in [0, n) (Lemire's multiply; the bias is below 2^-40 for any n used here).
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

func (p *Picker) hot(r *rng) int {
	if p.cdf == nil {
		return r.intn(p.accounts)
	}
	u := r.float() * p.cdf[len(p.cdf)-1]
	return min(sort.SearchFloat64s(p.cdf, u), len(p.cdf)-1)
}

// Pick returns request seq.
func (p *Picker) Pick(seq uint64) Pick {
	r := rng{s: mix64(p.seed ^ mix64(seq+1))}
	u := r.float()
	pk := Pick{From: -1, To: -1, Amount: 1 + int64(r.intn(int(p.maxAmount)))}
	i := 0
	for i < len(mixOps)-1 && u >= p.below[i] {
		i++
	}
	switch pk.Op = mixOps[i]; pk.Op {
	case OpTransfer, OpHold:
		pk.From, pk.To = r.intn(p.accounts), p.hot(&r)
		if pk.To == pk.From { // another account, any of them
			pk.To = (pk.From + 1 + r.intn(p.accounts-1)) % p.accounts
		}
		if pk.Op == OpHold && r.intn(4) < holdCaptureIn4 {
			pk.Capture = 1 + int64(r.intn(int(pk.Amount)))
		}
	case OpDeposit:
		pk.To = r.intn(p.accounts)
	default: // withdrawal, read
		pk.From = r.intn(p.accounts)
	}
	return pk
}
