package app

import (
	"context"
	"flag"
	"fmt"
	"io"

	"txn/internal/audit"
	"txn/internal/clickhouse"
	"txn/internal/config"
	"txn/internal/loadtest"
	"txn/internal/mongo"
	"txn/internal/postgres"
)

// auditCLI runs `loadtest audit RUN_ID`: the run's transactions in PostgreSQL (DATABASE_URL)
// compared one by one with their analytics rows (CLICKHOUSE_ADDR), activity items and
// notifications (MONGO_URL). It returns 0 when every store holds each effect exactly once, 1
// when not, 2 on bad usage, 3 when a store cannot be read.
func auditCLI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: loadtest audit RUN_ID\n\nCompares the run's transactions in PostgreSQL one by one with ClickHouse's rows, the activity\nitems and the notifications (DATABASE_URL, CLICKHOUSE_ADDR, MONGO_URL; local defaults otherwise).")
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		if err == nil {
			fs.Usage()
		}
		return 2
	}
	env := config.New(nil)
	pool, err := postgres.Connect(ctx, env.Setting("DATABASE_URL"), 2)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest audit: DATABASE_URL:", err)
		return 3
	}
	defer pool.Close()
	ch, err := clickhouse.Open(ctx, env.Setting("CLICKHOUSE_ADDR"), env.Setting("CLICKHOUSE_DATABASE"))
	if err != nil {
		fmt.Fprintln(stderr, "loadtest audit: CLICKHOUSE_ADDR:", err)
		return 3
	}
	defer ch.Close()
	mg, err := mongo.Open(ctx, env.Setting("MONGO_URL"))
	if err != nil {
		fmt.Fprintln(stderr, "loadtest audit: MONGO_URL:", err)
		return 3
	}
	defer func() { _ = mg.Close(context.Background()) }()

	diffs, n, err := audit.Run(ctx, audit.Sources{
		Transactions: postgres.NewStore(pool).TransactionsByDescriptionPrefix,
		Analytics: func(ctx context.Context, prefix string) (audit.Counts, error) {
			return ch.TransactionCounts(ctx, clickhouse.Filter{DescriptionPrefix: prefix})
		},
		Activities:    mg.ActivityCounts,
		Notifications: mg.NotificationCounts,
	}, loadtest.DescriptionPrefix(fs.Arg(0)))
	fmt.Fprintf(stdout, "run %s: %d transactions in PostgreSQL\n", fs.Arg(0), n)
	ok := true
	for _, d := range diffs {
		fmt.Fprintln(stdout, d)
		ok = ok && d.OK()
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadtest audit:", err)
		return 3
	}
	if !ok {
		return 1
	}
	return 0
}
