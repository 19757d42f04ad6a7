// Command shardsim predicts write throughput against the number of PostgreSQL shards and the
// share of cross-shard transfers (docs/scaling.md), from per-write CPU costs. The defaults are
// this repository's measurements on a 2-core machine (scripts/bench.sh): PostgreSQL 62 µs per
// transfer, a hold 0.67 and a capture 1.32 times that (measured apart, same run), the
// processor 85 µs per request; a cross-shard transfer's two further writes are estimated at
// 30 µs of processor each.
//
//	go run ./cmd/shardsim [-cores 8] [-accounts 1000000] [-transfers 1000000]
package main

import (
	"flag"
	"fmt"
	"os"

	"txn/internal/shardsim"
)

func main() {
	c := shardsim.Costs{}
	flag.Float64Var(&c.DBTransfer, "db-transfer", 62, "PostgreSQL CPU µs per transfer within a shard")
	flag.Float64Var(&c.DBHold, "db-hold", 42, "PostgreSQL CPU µs per hold")
	flag.Float64Var(&c.DBCapture, "db-capture", 82, "PostgreSQL CPU µs per capture")
	flag.Float64Var(&c.DBCredit, "db-credit", 62, "PostgreSQL CPU µs per credit from a clearing account")
	flag.Float64Var(&c.AppRequest, "app-request", 85, "processor CPU µs per request")
	flag.Float64Var(&c.AppLeg, "app-leg", 30, "processor CPU µs per further write of a cross-shard transfer")
	cores := flag.Float64("cores", 8, "cores for each shard's PostgreSQL")
	accounts := flag.Int("accounts", 1_000_000, "accounts, spread over the shards at random")
	n := flag.Int("transfers", 1_000_000, "transfers drawn per cell")
	flag.Parse()
	if *accounts < 2 || *n < 1 || *cores <= 0 {
		fmt.Fprintln(os.Stderr, "shardsim: want -accounts ≥ 2, -transfers ≥ 1, -cores > 0")
		os.Exit(2)
	}
	shards := []int{1, 2, 4, 8, 16, 32}
	table := func(title, col string, values []float64, workload func(v float64) shardsim.Workload) {
		fmt.Printf("%s\n\n| shards |", title)
		for _, v := range values {
			fmt.Printf(" %s %.0f %% |", col, v*100)
		}
		fmt.Print("\n|---|")
		for range values {
			fmt.Print("---|")
		}
		fmt.Println()
		results := make([][]shardsim.Result, len(values))
		for i, v := range values {
			results[i] = shardsim.Simulate(shards, *cores, workload(v), c, *n, 1)
		}
		for j, s := range shards {
			fmt.Printf("| %d |", s)
			for i := range values {
				r := results[i][j]
				fmt.Printf(" %.0fk/s (×%.1f, %.0f app cores) |", r.Throughput/1000, r.Speedup, r.AppCores)
			}
			fmt.Println()
		}
		fmt.Println()
	}
	fmt.Printf("Transfers/s when the busiest shard's PostgreSQL uses all of its %.0f cores (×: against one shard; app cores: processor cores busy).\n\n", *cores)
	table("By share of cross-shard transfers:", "cross", []float64{0, 0.1, 0.3, 0.5, 1},
		func(v float64) shardsim.Workload { return shardsim.Workload{Accounts: *accounts, CrossShard: v} })
	table("By share of transfers crediting one hot account (10 % cross-shard otherwise):", "hot", []float64{0, 0.01, 0.05, 0.2},
		func(v float64) shardsim.Workload {
			return shardsim.Workload{Accounts: *accounts, CrossShard: 0.1, HotShare: v}
		})
}
