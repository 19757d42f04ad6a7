// Package loadtest is the load tester's domain and HTTP API: a run's configuration, how it
// prepares users and accounts through the processor's public API, drives an open-loop mix of
// transfers, deposits, withdrawals, reads and holds at it (internal/loadgen), verifies the
// money afterwards and cleans up. It imports no driver: live state, history and the read
// models it checks and cleans are ports the wiring (internal/loadtest/app) fills.
package loadtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"txn/internal/apierr"
	"txn/internal/ledger"
	"txn/internal/loadgen"
)

// Mix is the share of each operation; the shares sum to 1.
type Mix struct {
	Transfer   float64 `json:"transfer"`
	Deposit    float64 `json:"deposit"`
	Withdrawal float64 `json:"withdrawal"`
	Read       float64 `json:"read"` // GET of an account and its entries
	// Hold reserves money on one account for another, then captures part of it or voids it:
	// two requests timed as one operation.
	Hold float64 `json:"hold"`
}

// Stage moves the rate linearly from the previous stage's rate (0 at the start) to Rate over
// DurationS, as k6's stages do.
type Stage struct {
	DurationS float64 `json:"duration_s"`
	Rate      float64 `json:"rate"`
}

// DefaultMix is API.md's default.
var DefaultMix = Mix{Transfer: 0.8, Deposit: 0.1, Withdrawal: 0.1}

// Config is a run's configuration, as POST /runs takes it (API.md) plus optional knobs.
type Config struct {
	Name            string  `json:"name"`
	Users           int     `json:"users"`
	AccountsPerUser int     `json:"accounts_per_user"`
	Rate            float64 `json:"rate"`       // requests per second once ramped up; with stages, their peak
	DurationS       float64 `json:"duration_s"` // running phase, ramp-up included; with stages, their sum
	RampUpS         float64 `json:"ramp_up_s"`
	// Stages, when given, shape the rate instead of rate, duration_s and ramp_up_s.
	Stages         []Stage     `json:"stages,omitempty"`
	Thresholds     []Threshold `json:"thresholds,omitempty"`
	Mix            *Mix        `json:"mix"`
	InitialBalance int64       `json:"initial_balance"` // seeded into every account, minor units
	Currency       string      `json:"currency"`
	// MaxAmount bounds each generated amount (uniform in [1, MaxAmount]); default
	// InitialBalance/100, so an account makes on the order of a hundred debits before it runs dry.
	MaxAmount int64 `json:"max_amount"`
	// Skew is the Zipf exponent with which receiving accounts are picked: a few hot accounts
	// take most credits. 0 is uniform.
	Skew *float64 `json:"skew"`
	// Connections is the most requests in flight (and connections to the processor).
	Connections int `json:"connections"`
	// Seed makes the request sequence reproducible; 0 picks one.
	Seed uint64 `json:"seed"`
	// Workers, when above 0, is how many load workers (`loadtest worker`) send the schedule,
	// each its share, instead of the service; Connections is then split between them.
	Workers int `json:"workers,omitempty"`
}

// Limits on what one run may ask for: preparation makes one request per user and account.
const (
	MaxUsers           = 100_000
	MaxAccountsPerUser = 100 // one page of GET /users/{id}/accounts, read back when verifying
	MaxAccounts        = 1_000_000
	MaxRate            = 1_000_000
	MaxDurationS       = 24 * 3600
	MaxConnections     = 4096
	MaxWorkers         = 64
	MaxStages          = 20
	MaxNameLength      = 100
	DefaultSkew        = 1.0
	DefaultBalance     = 100_000
)

// WithDefaults fills the optional fields; a missing seed is drawn at random (and then shown,
// so the run can be repeated).
func (c Config) WithDefaults() Config {
	// What a threshold observed is the run's to say, never the request's.
	c.Thresholds = append([]Threshold(nil), c.Thresholds...)
	for i := range c.Thresholds {
		c.Thresholds[i].Observed, c.Thresholds[i].Passed = nil, nil
	}
	if len(c.Stages) > 0 && c.Rate == 0 && c.DurationS == 0 {
		for _, st := range c.Stages {
			c.Rate = max(c.Rate, st.Rate)
			c.DurationS += st.DurationS
		}
	}
	if c.AccountsPerUser == 0 {
		c.AccountsPerUser = 1
	}
	if c.Mix == nil {
		m := DefaultMix
		c.Mix = &m
	}
	if c.Currency == "" {
		c.Currency = "USD"
	}
	if c.MaxAmount == 0 {
		c.MaxAmount = max(1, c.InitialBalance/100)
	}
	if c.Skew == nil {
		s := DefaultSkew
		c.Skew = &s
	}
	for c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.Connections == 0 {
		// Enough for the rate at 100 ms of latency. A slower target makes requests wait for a
		// connection: still timed from their schedule, and the achieved rate shows it.
		c.Connections = min(max(int(math.Ceil(c.Rate/10)), 32), 1024)
	}
	return c
}

// Validate reports every invalid field as one validation_failed error. It expects
// WithDefaults to have run.
func (c Config) Validate() error {
	var f []apierr.FieldError
	bad := func(field, msg string) { f = append(f, apierr.FieldError{Field: field, Message: msg}) }
	if c.Users < 1 || c.Users > MaxUsers {
		bad("users", fmt.Sprintf("must be an integer from 1 to %d", MaxUsers))
	}
	if c.AccountsPerUser < 1 || c.AccountsPerUser > MaxAccountsPerUser {
		bad("accounts_per_user", fmt.Sprintf("must be an integer from 1 to %d", MaxAccountsPerUser))
	}
	if c.Users*c.AccountsPerUser > MaxAccounts {
		bad("users", fmt.Sprintf("users × accounts_per_user must be at most %d", MaxAccounts))
	}
	if len(c.Stages) > 0 {
		f = append(f, c.validateStages()...)
	} else {
		if !(c.Rate > 0) || c.Rate > MaxRate {
			bad("rate", fmt.Sprintf("must be a number of requests per second above 0, at most %d", MaxRate))
		}
		if !(c.DurationS > 0) || c.DurationS > MaxDurationS {
			bad("duration_s", fmt.Sprintf("must be a number of seconds above 0, at most %d", MaxDurationS))
		}
		if !(c.RampUpS >= 0) || c.RampUpS > c.DurationS {
			bad("ramp_up_s", "must be from 0 to duration_s")
		}
	}
	if utf8.RuneCountInString(c.Name) > MaxNameLength || strings.ContainsFunc(c.Name, unicode.IsControl) {
		bad("name", fmt.Sprintf("must be at most %d characters, none of them control characters", MaxNameLength))
	}
	f = append(f, validateThresholds(c.Thresholds, c.DurationS)...)
	f = append(f, c.validateMix()...)
	if c.InitialBalance < 0 || c.InitialBalance > ledger.MaxAmount {
		bad("initial_balance", fmt.Sprintf("must be an integer from 0 to %d", ledger.MaxAmount))
	}
	if !ledger.ValidCurrency(c.Currency) {
		bad("currency", "must be an ISO 4217 code such as USD")
	}
	if c.MaxAmount < 1 || c.MaxAmount > ledger.MaxAmount {
		bad("max_amount", fmt.Sprintf("must be an integer from 1 to %d", ledger.MaxAmount))
	}
	if s := c.Skew; s != nil && !(*s >= 0 && *s <= 10) {
		bad("skew", "must be a Zipf exponent from 0 (uniform) to 10")
	}
	if c.Connections < 1 || c.Connections > MaxConnections {
		bad("connections", fmt.Sprintf("must be an integer from 1 to %d", MaxConnections))
	}
	if c.Workers < 0 || c.Workers > MaxWorkers {
		bad("workers", fmt.Sprintf("must be an integer from 0 (the service sends) to %d", MaxWorkers))
	}
	if len(f) > 0 {
		return apierr.Invalid(f...)
	}
	if _, err := c.Schedule(); err != nil { // what the checks above missed, e.g. rounding
		return apierr.Invalid(apierr.FieldError{Field: "rate", Message: err.Error()})
	}
	return nil
}

// validateMix checks the mix's shares, and that an operation with two sides has two accounts.
func (c Config) validateMix() []apierr.FieldError {
	m := c.Mix
	if m == nil {
		return nil
	}
	var f []apierr.FieldError
	bad := func(field, msg string) { f = append(f, apierr.FieldError{Field: field, Message: msg}) }
	shares := []struct {
		name string
		v    float64
	}{{"transfer", m.Transfer}, {"deposit", m.Deposit}, {"withdrawal", m.Withdrawal}, {"read", m.Read}, {"hold", m.Hold}}
	for _, s := range shares {
		if !(s.v >= 0 && s.v <= 1) {
			bad("mix."+s.name, "must be from 0 to 1")
		}
	}
	if sum := m.Transfer + m.Deposit + m.Withdrawal + m.Read + m.Hold; math.Abs(sum-1) > 1e-6 {
		bad("mix", "shares must sum to 1, got "+strconv.FormatFloat(sum, 'g', 6, 64))
	}
	if m.Transfer > 0 && c.Users == 1 && c.AccountsPerUser == 1 {
		bad("mix.transfer", "transfers need at least 2 accounts (users × accounts_per_user)")
	}
	if m.Hold > 0 && c.Users == 1 && c.AccountsPerUser == 1 {
		bad("mix.hold", "holds need at least 2 accounts (users × accounts_per_user)")
	}
	return f
}

// validateStages checks the stages and that rate and duration_s, if given, are their peak and
// sum (WithDefaults sets them when left out).
func (c Config) validateStages() []apierr.FieldError {
	var f []apierr.FieldError
	bad := func(field, msg string) { f = append(f, apierr.FieldError{Field: field, Message: msg}) }
	if len(c.Stages) > MaxStages {
		bad("stages", fmt.Sprintf("at most %d stages", MaxStages))
		return f
	}
	peak, sum := 0.0, 0.0
	for i, st := range c.Stages {
		if !(st.DurationS > 0) || st.DurationS > MaxDurationS {
			bad(fmt.Sprintf("stages[%d].duration_s", i), "must be a number of seconds above 0")
		}
		if !(st.Rate >= 0) || st.Rate > MaxRate {
			bad(fmt.Sprintf("stages[%d].rate", i), fmt.Sprintf("must be a number of requests per second from 0 to %d", MaxRate))
		}
		peak, sum = max(peak, st.Rate), sum+st.DurationS
	}
	if len(f) > 0 {
		return f
	}
	if c.RampUpS != 0 {
		bad("ramp_up_s", "cannot be combined with stages: shape the ramp with a stage")
	}
	if c.Rate != peak {
		bad("rate", "with stages, leave rate out (it is their peak) or give their peak")
	}
	if math.Abs(c.DurationS-sum) > 1e-9 {
		bad("duration_s", "with stages, leave duration_s out (it is their sum) or give their sum")
	}
	if sum > MaxDurationS {
		bad("stages", fmt.Sprintf("must last at most %d s in all", MaxDurationS))
	}
	if peak <= 0 {
		bad("stages", "at least one stage must have a rate above 0")
	}
	return f
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

// Schedule is the run's arrival schedule.
func (c Config) Schedule() (loadgen.Schedule, error) {
	if len(c.Stages) == 0 {
		return loadgen.Constant(c.Rate, seconds(c.DurationS), seconds(c.RampUpS))
	}
	stages := make([]loadgen.Stage, len(c.Stages))
	for i, st := range c.Stages {
		stages[i] = loadgen.Stage{Duration: seconds(st.DurationS), Rate: st.Rate}
	}
	return loadgen.Stages(stages)
}

// ParseMix parses "transfer=0.8,deposit=0.1,withdrawal=0.1" (and read=, hold=); operations
// left out get 0.
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return m, fmt.Errorf("mix %q: want op=share pairs such as transfer=0.8", s)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return m, fmt.Errorf("mix %q: %q is not a number", s, val)
		}
		name = strings.TrimSpace(name)
		if seen[name] {
			return m, fmt.Errorf("mix %q: %s given twice", s, name)
		}
		seen[name] = true
		switch name {
		case "transfer":
			m.Transfer = v
		case "deposit":
			m.Deposit = v
		case "withdrawal":
			m.Withdrawal = v
		case "read":
			m.Read = v
		case "hold":
			m.Hold = v
		default:
			return m, fmt.Errorf("mix %q: unknown operation %q (transfer, deposit, withdrawal, read, hold)", s, name)
		}
	}
	return m, nil
}
