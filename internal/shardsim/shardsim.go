// Package shardsim predicts the ledger's write throughput when its accounts are spread over
// several PostgreSQL primaries (shards), from CPU costs measured on one machine. A transfer
// whose two accounts share a shard is one group-committed write there, as today; one whose
// accounts do not is three (docs/scaling.md): a hold on the source shard, a credit from the
// destination shard's clearing account, and the capture of the hold into the source shard's
// clearing account. It draws transfers at random, adds each write's cost to its shard, and
// lets the busiest shard set the pace.
package shardsim

import "math/rand/v2"

// Costs are CPU microseconds per write.
type Costs struct {
	DBTransfer float64 // PostgreSQL, a transfer within one shard
	DBHold     float64 // PostgreSQL, a hold created
	DBCapture  float64 // PostgreSQL, a hold captured
	DBCredit   float64 // PostgreSQL, a credit from a clearing account (a transfer)
	AppRequest float64 // processor, an API request carried to its commit
	AppLeg     float64 // processor, each further write of a cross-shard transfer
}

// Workload says which accounts transfers connect.
type Workload struct {
	Accounts   int     // spread over the shards at random
	CrossShard float64 // share of transfers whose accounts are on different shards (with >1 shard)
	HotShare   float64 // share of transfers that credit one hot account
}

// Result is what one cluster size gives.
type Result struct {
	Shards       int
	Throughput   float64 // transfers/s when the busiest shard's PostgreSQL uses all its cores
	Speedup      float64 // Throughput against one shard's
	BusiestShare float64 // the busiest shard's share of all PostgreSQL work
	DBMicros     float64 // PostgreSQL CPU µs per transfer, all shards together
	AppCores     float64 // processor cores busy at Throughput
}

// Simulate draws n transfers for each shard count and returns what each gives, with coresPerDB
// cores for every shard's PostgreSQL.
func Simulate(shards []int, coresPerDB float64, w Workload, c Costs, n int, seed uint64) []Result {
	out := make([]Result, 0, len(shards))
	var base float64
	for _, s := range shards {
		r := simulate(s, coresPerDB, w, c, n, seed)
		if base == 0 {
			base = r.Throughput
		}
		r.Speedup = r.Throughput / base
		out = append(out, r)
	}
	return out
}

func simulate(shards int, coresPerDB float64, w Workload, c Costs, n int, seed uint64) Result {
	rng := rand.New(rand.NewPCG(seed, uint64(shards)))
	shardOf := make([]int, w.Accounts)
	byShard := make([][]int, shards)
	for a := range shardOf {
		shardOf[a] = rng.IntN(shards)
		byShard[shardOf[a]] = append(byShard[shardOf[a]], a)
	}
	load := make([]float64, shards)
	var app float64
	for range n {
		from := rng.IntN(w.Accounts)
		to := pick(rng, w, shards, shardOf, byShard, from)
		if src, dst := shardOf[from], shardOf[to]; src == dst {
			load[src] += c.DBTransfer
			app += c.AppRequest
		} else {
			load[src] += c.DBHold + c.DBCapture
			load[dst] += c.DBCredit
			app += c.AppRequest + 2*c.AppLeg
		}
	}
	var total, busiest float64
	for _, l := range load {
		total += l
		busiest = max(busiest, l)
	}
	tput := coresPerDB * 1e6 / (busiest / float64(n))
	return Result{Shards: shards, Throughput: tput, BusiestShare: busiest / total,
		DBMicros: total / float64(n), AppCores: tput * app / float64(n) / 1e6}
}

// pick draws the account a transfer from from credits: the hot account (account 0) for
// HotShare of them, else one on another shard for CrossShard of them, else one on from's shard.
func pick(rng *rand.Rand, w Workload, shards int, shardOf []int, byShard [][]int, from int) int {
	if rng.Float64() < w.HotShare {
		if from == 0 {
			return 1
		}
		return 0
	}
	home := shardOf[from]
	if shards > 1 && rng.Float64() < w.CrossShard {
		for {
			if to := rng.IntN(w.Accounts); shardOf[to] != home {
				return to
			}
		}
	}
	for {
		if to := byShard[home][rng.IntN(len(byShard[home]))]; to != from || len(byShard[home]) == 1 {
			return to
		}
	}
}
