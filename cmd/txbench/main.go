// Command txbench drives POST /transactions on a running processor with many concurrent
// closed-loop clients and prints transfers/s and latency percentiles. scripts/bench.sh runs it
// beside pgbench; the open-loop load generator is the loadtest service.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	url, token       string
	users, perUser   int
	clients          int
	duration, warmup time.Duration
	hot              float64
	batch            int
	holds            bool
	ready            string
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "http://127.0.0.1:8000", "processor base URL")
	flag.StringVar(&c.token, "token", os.Getenv("TXN_ADMIN_TOKEN"), "admin token")
	flag.IntVar(&c.users, "users", 100, "users to create")
	flag.IntVar(&c.perUser, "accounts", 10, "accounts per user")
	flag.IntVar(&c.clients, "clients", 256, "concurrent clients")
	flag.DurationVar(&c.duration, "duration", 15*time.Second, "measured time")
	flag.DurationVar(&c.warmup, "warmup", 3*time.Second, "unmeasured time before it")
	flag.Float64Var(&c.hot, "hot", 0, "fraction of transfers that credit one hot account")
	flag.IntVar(&c.batch, "batch", 0, "send transfers through /transactions/batch, this many per request (0: one per request)")
	flag.StringVar(&c.ready, "ready", "", "create this file once set up, when the measured load starts")
	flag.BoolVar(&c.holds, "holds", false, "move money as a hold and its capture (two requests) instead of a transfer")
	flag.Parse()
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, "txbench:", err)
		os.Exit(1)
	}
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
	MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute, DisableCompression: true}}

func call(ctx context.Context, base, token, path string, body any, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/v1"+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, err
		}
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s: %d %s", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, nil
}

type account struct {
	id  string
	key string // the owner's API key
}

// holdAndCapture moves a transfer's money as a hold and then its capture.
func holdAndCapture(ctx context.Context, c config, key string, transfer map[string]any) (int, error) {
	delete(transfer, "type")
	var h struct {
		ID string `json:"id"`
	}
	if status, err := call(ctx, c.url, key, "/holds", transfer, &h); err != nil {
		return status, err
	}
	return call(ctx, c.url, key, "/holds/"+h.ID+"/capture", map[string]any{}, nil)
}

// setup creates the users and accounts and funds every account through batch deposits.
func setup(ctx context.Context, c config) ([]account, error) {
	run := fmt.Sprintf("bench%d", time.Now().UnixNano())
	accounts := make([]account, c.users*c.perUser)
	var wg sync.WaitGroup
	errs := make(chan error, c.users)
	sem := make(chan struct{}, 16)
	for u := 0; u < c.users; u++ {
		wg.Add(1)
		go func(u int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var user struct {
				ID, APIKey string `json:"-"`
			}
			var raw map[string]any
			if _, err := call(ctx, c.url, c.token, "/users", map[string]any{"name": "bench", "tags": []string{run},
				"email": fmt.Sprintf("%s-%d@bench.example", run, u)}, &raw); err != nil {
				errs <- err
				return
			}
			user.ID, user.APIKey = raw["id"].(string), raw["api_key"].(string)
			deposits := make([]map[string]any, 0, c.perUser)
			for i := 0; i < c.perUser; i++ {
				var a struct {
					ID string `json:"id"`
				}
				if _, err := call(ctx, c.url, c.token, "/accounts", map[string]any{"user_id": user.ID, "currency": "USD"}, &a); err != nil {
					errs <- err
					return
				}
				accounts[u*c.perUser+i] = account{a.ID, user.APIKey}
				deposits = append(deposits, map[string]any{"type": "deposit", "to_account_id": a.ID, "amount": 1_000_000_000, "currency": "USD"})
			}
			if _, err := call(ctx, c.url, c.token, "/transactions/batch", map[string]any{"transactions": deposits}, nil); err != nil {
				errs <- err
			}
		}(u)
	}
	wg.Wait()
	close(errs)
	return accounts, <-errs
}

func run(ctx context.Context, c config) error {
	start := time.Now()
	accounts, err := setup(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "set up %d accounts in %s\n", len(accounts), time.Since(start).Round(time.Millisecond))
	if c.ready != "" {
		if err := os.WriteFile(c.ready, nil, 0o644); err != nil {
			return err
		}
	}

	var (
		measuring atomic.Bool
		stop      atomic.Bool
		mu        sync.Mutex
		lat       []time.Duration
		ok, fail  atomic.Int64
		statuses  sync.Map
	)
	per := c.batch
	if per < 1 {
		per = 1
	}
	var wg sync.WaitGroup
	for w := 0; w < c.clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			local := make([]time.Duration, 0, 4096)
			for !stop.Load() {
				from := accounts[rng.IntN(len(accounts))]
				items := make([]map[string]any, per)
				for i := range items {
					to := accounts[rng.IntN(len(accounts))]
					if c.hot > 0 && rng.Float64() < c.hot {
						to = accounts[0]
					}
					for to.id == from.id {
						to = accounts[rng.IntN(len(accounts))]
					}
					items[i] = map[string]any{"type": "transfer", "from_account_id": from.id, "to_account_id": to.id,
						"amount": 1 + rng.IntN(100), "currency": "USD"}
				}
				t0 := time.Now()
				var status int
				var err error
				switch {
				case c.holds:
					status, err = holdAndCapture(ctx, c, from.key, items[0])
				case c.batch > 0:
					status, err = call(ctx, c.url, from.key, "/transactions/batch", map[string]any{"transactions": items}, nil)
				default:
					status, err = call(ctx, c.url, from.key, "/transactions", items[0], nil)
				}
				d := time.Since(t0)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					fail.Add(int64(per))
					n, _ := statuses.LoadOrStore(status, new(atomic.Int64))
					n.(*atomic.Int64).Add(1)
					continue
				}
				ok.Add(int64(per))
				local = append(local, d)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}(w)
	}
	time.Sleep(c.warmup)
	measuring.Store(true)
	t0 := time.Now()
	time.Sleep(c.duration)
	measuring.Store(false)
	elapsed := time.Since(t0)
	stop.Store(true)
	wg.Wait()

	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	errsByStatus := map[string]int64{}
	statuses.Range(func(k, v any) bool { errsByStatus[fmt.Sprint(k)] = v.(*atomic.Int64).Load(); return true })
	fmt.Printf("transfers/s=%.0f ok=%d failed=%d clients=%d batch=%d hot=%.2f holds=%v p50_ms=%.2f p99_ms=%.2f max_ms=%.2f errors=%v\n",
		float64(ok.Load())/elapsed.Seconds(), ok.Load(), fail.Load(), c.clients, c.batch, c.hot, c.holds,
		pct(0.50), pct(0.99), pct(1), errsByStatus)
	return nil
}
