package loadtest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"txn/internal/apierr"
	"txn/internal/ledger"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{Users: 10, Rate: 500, DurationS: 5}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.AccountsPerUser != 1 || *c.Mix != DefaultMix || c.Currency != "USD" || *c.Skew != DefaultSkew || c.Seed == 0 {
		t.Errorf("defaults: %+v", c)
	}
	if c.InitialBalance != 0 || c.MaxAmount != 1 {
		t.Errorf("no initial balance given: %d, max amount %d", c.InitialBalance, c.MaxAmount)
	}
	if c.Connections != 50 {
		t.Errorf("connections %d, want 50 at 500 req/s", c.Connections)
	}
	if s, err := c.Schedule(); err != nil || s.Peak() != 500 || s.Duration() != 5*time.Second || s.Total() != 2500 {
		t.Errorf("schedule %+v, %v", s, err)
	}
	if c := (Config{Users: 1, Rate: 100_000, DurationS: 1}).WithDefaults(); c.Connections != 1024 {
		t.Errorf("connections %d at 100000 req/s, want the cap 1024", c.Connections)
	}
}

func TestConfigValidation(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	valid := func() Config {
		return Config{Users: 10, Rate: 100, DurationS: 10, InitialBalance: 1000, Mix: &Mix{Transfer: 0.8, Deposit: 0.1, Withdrawal: 0.1}}
	}
	cases := []struct {
		name   string
		change func(*Config)
		fields []string
	}{
		{"no users", func(c *Config) { c.Users = 0 }, []string{"users"}},
		{"too many users", func(c *Config) { c.Users = MaxUsers + 1 }, []string{"users"}},
		{"too many accounts", func(c *Config) { c.Users, c.AccountsPerUser = MaxUsers, 20 }, []string{"users"}},
		{"accounts per user", func(c *Config) { c.AccountsPerUser = -1 }, []string{"accounts_per_user"}},
		{"zero rate", func(c *Config) { c.Rate = 0 }, []string{"rate"}},
		{"negative rate", func(c *Config) { c.Rate = -5 }, []string{"rate"}},
		{"zero duration", func(c *Config) { c.DurationS = 0 }, []string{"duration_s"}},
		{"ramp-up past duration", func(c *Config) { c.RampUpS = 11 }, []string{"ramp_up_s"}},
		{"negative ramp-up", func(c *Config) { c.RampUpS = -1 }, []string{"ramp_up_s"}},
		{"mix over 1", func(c *Config) { c.Mix = &Mix{Transfer: 0.8, Deposit: 0.2, Withdrawal: 0.1} }, []string{"mix"}},
		{"mix under 1", func(c *Config) { c.Mix = &Mix{Transfer: 0.5} }, []string{"mix"}},
		{"negative share", func(c *Config) { c.Mix = &Mix{Transfer: 1.3, Deposit: -0.2, Hold: -0.1} }, []string{"mix.transfer", "mix.deposit", "mix.hold"}},
		{"transfers need two accounts", func(c *Config) { c.Users = 1 }, []string{"mix.transfer"}},
		{"holds count in the sum", func(c *Config) { c.Mix.Hold = 0.1 }, []string{"mix"}},
		{"holds need two accounts", func(c *Config) { c.Users, c.Mix = 1, &Mix{Deposit: 0.5, Hold: 0.5} }, []string{"mix.hold"}},
		{"negative balance", func(c *Config) { c.InitialBalance = -1 }, []string{"initial_balance"}},
		{"unknown currency", func(c *Config) { c.Currency = "XYZ" }, []string{"currency"}},
		{"lowercase currency", func(c *Config) { c.Currency = "usd" }, []string{"currency"}},
		{"max amount", func(c *Config) { c.MaxAmount = ledger.MaxAmount + 1 }, []string{"max_amount"}},
		{"skew", func(c *Config) { c.Skew = f(-1) }, []string{"skew"}},
		{"connections", func(c *Config) { c.Connections = MaxConnections + 1 }, []string{"connections"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			err := c.WithDefaults().Validate()
			var e *apierr.Error
			if !errors.As(err, &e) || e.Code != ledger.CodeValidation {
				t.Fatalf("got %v, want validation_failed", err)
			}
			var got []string
			for _, fe := range e.Fields {
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Errorf("fields %v (%v), want %v", got, e.Fields, tc.fields)
			}
		})
	}
	c := valid()
	c.Users, c.Mix = 1, &Mix{Deposit: 0.5, Withdrawal: 0.5}
	if err := c.WithDefaults().Validate(); err != nil {
		t.Errorf("one account without transfers: %v", err)
	}
	c.Users, c.Mix = 2, &Mix{Transfer: 0.5, Deposit: 0.1, Withdrawal: 0.1, Read: 0.1, Hold: 0.2}
	if err := c.WithDefaults().Validate(); err != nil {
		t.Errorf("a mix with holds: %v", err)
	}
}

func TestParseMix(t *testing.T) {
	m, err := ParseMix("transfer=0.8, deposit=0.15,withdrawal=0.05")
	if err != nil || m != (Mix{Transfer: 0.8, Deposit: 0.15, Withdrawal: 0.05}) {
		t.Errorf("got %+v, %v", m, err)
	}
	if m, err := ParseMix("deposit=1"); err != nil || m != (Mix{Deposit: 1}) {
		t.Errorf("one operation: %+v, %v", m, err)
	}
	if m, err := ParseMix("transfer=0.5,read=0.2,hold=0.3"); err != nil || m != (Mix{Transfer: 0.5, Read: 0.2, Hold: 0.3}) {
		t.Errorf("reads and holds: %+v, %v", m, err)
	}
	for _, bad := range []string{"", "transfer", "transfer=x", "refund=1", "transfer=0.5,transfer=0.5", "hold=0.5,hold=0.5"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
}

func TestConfigIgnoresJudgementsInTheRequest(t *testing.T) {
	passed, observed := false, 99.0
	c := Config{Users: 1, Rate: 1, DurationS: 1, Thresholds: []Threshold{{Metric: MetricP99, Max: fp(5), Passed: &passed, Observed: &observed}}}.WithDefaults()
	if th := c.Thresholds[0]; th.Passed != nil || th.Observed != nil {
		t.Errorf("a threshold arrived judged: passed %v, observed %v", th.Passed, th.Observed)
	}
}
