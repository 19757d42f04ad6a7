package shardsim

import (
	"math"
	"testing"
)

var costs = Costs{DBTransfer: 62, DBHold: 42, DBCapture: 82, DBCredit: 62, AppRequest: 85, AppLeg: 30}

func TestSimulate(t *testing.T) {
	shards := []int{1, 2, 4, 8, 16}
	t.Run("transfers within a shard scale with the shards", func(t *testing.T) {
		r := Simulate(shards, 8, Workload{Accounts: 100_000}, costs, 200_000, 1)
		if s := r[3].Speedup; math.Abs(s-8) > 0.4 {
			t.Errorf("8 shards: speedup %.2f, want about 8", s)
		}
		if r[0].DBMicros != costs.DBTransfer {
			t.Errorf("one shard: %.1f µs of PostgreSQL per transfer, want %.1f", r[0].DBMicros, costs.DBTransfer)
		}
	})
	t.Run("a cross-shard transfer costs its three writes", func(t *testing.T) {
		r := Simulate([]int{2}, 8, Workload{Accounts: 10_000, CrossShard: 1}, costs, 50_000, 1)
		if want := costs.DBHold + costs.DBCapture + costs.DBCredit; math.Abs(r[0].DBMicros-want) > 1e-6 {
			t.Errorf("%.1f µs per transfer, want %.1f", r[0].DBMicros, want)
		}
	})
	t.Run("with one shard there is nothing to cross", func(t *testing.T) {
		r := Simulate([]int{1}, 8, Workload{Accounts: 10_000, CrossShard: 1}, costs, 50_000, 1)
		if r[0].DBMicros != costs.DBTransfer {
			t.Errorf("%.1f µs per transfer, want a transfer's %.1f", r[0].DBMicros, costs.DBTransfer)
		}
	})
	t.Run("a hot account's shard caps the speedup", func(t *testing.T) {
		r := Simulate(shards, 8, Workload{Accounts: 100_000, HotShare: 0.2}, costs, 200_000, 1)
		bound := 1 / (0.2 + 0.8/16) // the hot shard takes its fifth and a sixteenth of the rest
		if s := r[4].Speedup; s > bound*1.05 {
			t.Errorf("16 shards: speedup %.2f, above the hot shard's bound %.2f", s, bound)
		}
	})
}
