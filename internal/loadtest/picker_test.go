package loadtest

import (
	"math"
	"testing"
)

func pickerFor(t *testing.T, accounts int, skew float64, mix Mix) *Picker {
	t.Helper()
	cfg := Config{Users: accounts, Rate: 1, DurationS: 1, Mix: &mix, Skew: &skew, InitialBalance: 100_000}.WithDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return NewPicker(cfg, accounts, 42)
}

func TestPickerMixAndSkew(t *testing.T) {
	const n, accounts = 200_000, 100
	p := pickerFor(t, accounts, 1.0, Mix{Transfer: 0.6, Deposit: 0.2, Withdrawal: 0.1, Read: 0.1})
	ops := map[string]int{}
	to := make([]int, accounts)
	from := make([]int, accounts)
	for seq := range uint64(n) {
		pk := p.Pick(seq)
		ops[pk.Op]++
		if pk.Amount < 1 || pk.Amount > 1000 {
			t.Fatalf("amount %d outside [1, 1000]", pk.Amount)
		}
		switch pk.Op {
		case OpTransfer:
			if pk.From < 0 || pk.To < 0 || pk.From == pk.To {
				t.Fatalf("transfer %+v", pk)
			}
			from[pk.From]++
			to[pk.To]++
		case OpDeposit:
			if pk.From != -1 || pk.To < 0 {
				t.Fatalf("deposit %+v", pk)
			}
		case OpWithdrawal, OpRead:
			if pk.From < 0 || pk.To != -1 {
				t.Fatalf("%s %+v", pk.Op, pk)
			}
		}
	}
	for op, want := range map[string]float64{OpTransfer: 0.6, OpDeposit: 0.2, OpWithdrawal: 0.1, OpRead: 0.1} {
		if got := float64(ops[op]) / n; math.Abs(got-want) > 0.005 {
			t.Errorf("%s share %.4f, want %.2f", op, got, want)
		}
	}
	transfers := float64(ops[OpTransfer])
	// Receivers follow Zipf(s=1): rank k has weight 1/k; the hottest takes 1/H(100) ≈ 19 %
	// (a little less, as a transfer to its own source goes elsewhere).
	h := 0.0
	for k := 1; k <= accounts; k++ {
		h += 1 / float64(k)
	}
	if got, want := float64(to[0])/transfers, 1/h; math.Abs(got-want) > 0.01 {
		t.Errorf("hottest account receives %.4f of transfers, want about %.4f", got, want)
	}
	if to[0] < 5*to[9] || to[9] < 5*to[99] {
		t.Errorf("receivers not skewed: %d, %d, %d", to[0], to[9], to[99])
	}
	// Senders are uniform.
	lo, hi := from[0], from[0]
	for _, c := range from {
		lo, hi = min(lo, c), max(hi, c)
	}
	if mean := transfers / accounts; float64(lo) < 0.85*mean || float64(hi) > 1.15*mean {
		t.Errorf("senders not uniform: %d to %d around %.0f", lo, hi, mean)
	}
}

func TestPickerUniformWithoutSkew(t *testing.T) {
	p := pickerFor(t, 10, 0, Mix{Transfer: 1})
	to := make([]int, 10)
	for seq := range uint64(100_000) {
		to[p.Pick(seq).To]++
	}
	for i, c := range to {
		if c < 9_000 || c > 11_000 {
			t.Errorf("account %d received %d of 100000 transfers, want about 10000", i, c)
		}
	}
}

func TestPickIsAFunctionOfSeedAndSeq(t *testing.T) {
	a := pickerFor(t, 50, 1.2, DefaultMix)
	b := pickerFor(t, 50, 1.2, DefaultMix)
	other := *a
	other.seed = 43
	same := 0
	for seq := range uint64(1000) {
		if a.Pick(seq) != b.Pick(seq) {
			t.Fatalf("pick %d differs between pickers with one seed", seq)
		}
		if a.Pick(seq) == other.Pick(seq) {
			same++
		}
	}
	if same > 100 {
		t.Errorf("%d of 1000 picks equal under another seed", same)
	}
}

func TestSinglePureMix(t *testing.T) {
	for _, m := range []Mix{{Deposit: 1}, {Withdrawal: 1}, {Transfer: 1}} {
		p := pickerFor(t, 3, 1, m)
		for seq := range uint64(1000) {
			pk := p.Pick(seq)
			if (m.Deposit == 1 && pk.Op != OpDeposit) || (m.Withdrawal == 1 && pk.Op != OpWithdrawal) || (m.Transfer == 1 && pk.Op != OpTransfer) {
				t.Fatalf("mix %+v picked %s", m, pk.Op)
			}
		}
	}
}
