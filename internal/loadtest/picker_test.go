package loadtest

import (
	"fmt"
	"math"
	"testing"
)

// pinnedPicks are the first picks of seed 42 in TestPicksWithoutHoldsUnchanged, as the picker
// made them before holds.
const pinnedPicks = "[{transfer 6 2 351 0} {transfer 2 14 316 0} {transfer 10 15 419 0} {transfer 20 21 145 0} {transfer 8 9 944 0} {deposit -1 48 805 0} {transfer 41 15 214 0} {transfer 36 0 314 0} {transfer 19 0 160 0} {withdrawal 28 -1 254 0} {deposit -1 8 513 0} {transfer 17 7 957 0} {transfer 24 4 240 0} {transfer 4 0 907 0} {deposit -1 41 232 0} {withdrawal 21 -1 323 0} {read 34 -1 402 0}]"

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
	for _, m := range []Mix{{Deposit: 1}, {Withdrawal: 1}, {Transfer: 1}, {Read: 1}, {Hold: 1}} {
		p := pickerFor(t, 3, 1, m)
		for seq := range uint64(1000) {
			pk := p.Pick(seq)
			if (m.Deposit == 1 && pk.Op != OpDeposit) || (m.Withdrawal == 1 && pk.Op != OpWithdrawal) || (m.Transfer == 1 && pk.Op != OpTransfer) ||
				(m.Read == 1 && pk.Op != OpRead) || (m.Hold == 1 && pk.Op != OpHold) {
				t.Fatalf("mix %+v picked %s", m, pk.Op)
			}
		}
	}
}

// A hold picks its accounts as a transfer does, and whether and how much of it is captured
// from the seed and seq alone: 3 in 4 are captured, each of 1 to the hold's amount.
func TestPickerHolds(t *testing.T) {
	const n = 100_000
	p := pickerFor(t, 20, 1.0, Mix{Transfer: 0.3, Deposit: 0.1, Withdrawal: 0.1, Read: 0.1, Hold: 0.4})
	again := pickerFor(t, 20, 1.0, Mix{Transfer: 0.3, Deposit: 0.1, Withdrawal: 0.1, Read: 0.1, Hold: 0.4})
	holds, captured, whole := 0, 0, 0
	for seq := range uint64(n) {
		pk := p.Pick(seq)
		if pk != again.Pick(seq) || pk != p.Pick(seq) {
			t.Fatalf("pick %d is not a function of the seed and seq: %+v, %+v", seq, pk, again.Pick(seq))
		}
		if pk.Op != OpHold {
			if pk.Capture != 0 {
				t.Fatalf("%s with a capture: %+v", pk.Op, pk)
			}
			continue
		}
		holds++
		if pk.From < 0 || pk.To < 0 || pk.From >= 20 || pk.To >= 20 || pk.From == pk.To || pk.Amount < 1 || pk.Amount > 1000 {
			t.Fatalf("hold %+v", pk)
		}
		if pk.Capture < 0 || pk.Capture > pk.Amount {
			t.Fatalf("hold %+v captures outside [1, amount]", pk)
		}
		if pk.Capture > 0 {
			captured++
		}
		if pk.Capture == pk.Amount {
			whole++
		}
	}
	if got := float64(holds) / n; math.Abs(got-0.4) > 0.005 {
		t.Errorf("hold share %.4f, want 0.4", got)
	}
	if got := float64(captured) / float64(holds); math.Abs(got-0.75) > 0.01 {
		t.Errorf("%.4f of holds captured, want 3 in 4", got)
	}
	// Captures are uniform in [1, amount]: some whole, most in part.
	if whole == 0 || whole > captured/20 {
		t.Errorf("%d of %d captures take the whole hold", whole, captured)
	}
	other := *p
	other.seed = 43
	same := 0
	for seq := range uint64(1000) {
		if p.Pick(seq) == other.Pick(seq) {
			same++
		}
	}
	if same > 100 {
		t.Errorf("%d of 1000 picks equal under another seed", same)
	}
}

// Adding holds to the picker leaves the picks of a mix without them as they were: a run is
// repeated by its seed.
func TestPicksWithoutHoldsUnchanged(t *testing.T) {
	p := pickerFor(t, 50, 1.2, Mix{Transfer: 0.6, Deposit: 0.2, Withdrawal: 0.1, Read: 0.1})
	want := []Pick{}
	for seq := range uint64(17) {
		want = append(want, p.Pick(seq))
	}
	got := fmt.Sprint(want)
	if got != pinnedPicks {
		t.Errorf("picks of seed 42 changed:\n got %s\nwant %s", got, pinnedPicks)
	}
}
