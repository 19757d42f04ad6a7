// Command loadgen-bench measures internal/loadgen against a trivial HTTP
// endpoint (scripts/bench-loadgen.sh drives it beside wrk):
//
//	loadgen-bench serve  [-addr 127.0.0.1:0]          serve 200 "ok"; prints the URL
//	loadgen-bench run    -url U -rate R [-conns C -duration D]  one open-loop run, one JSON line
//	loadgen-bench search -url U [-conns C -duration D -start R]
//	                     the highest rate sustained: achieved within 1 % of target,
//	                     every request sent and ok, at most -max-late of sends more
//	                     than -late-after behind their intended time
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"txn/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: loadgen-bench serve|run|search [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "serve: listen address")
	url := fs.String("url", "", "target URL")
	rate := fs.Float64("rate", 10000, "run: requests per second")
	conns := fs.Int("conns", 64, "workers = connections")
	duration := fs.Duration("duration", 3*time.Second, "length of each run")
	start := fs.Float64("start", 8000, "search: first rate tried")
	lateAfter := fs.Duration("late-after", loadgen.DefaultLateAfter, "a send this much after its intended time is late")
	maxLate := fs.Float64("max-late", 0.01, "search: largest fraction of sends allowed to be late")
	pause := fs.Duration("pause", 500*time.Millisecond, "search: rest between runs")
	netHTTP := fs.Bool("nethttp", false, "send with net/http's client instead of loadgen's")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole command to this file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	switch args[0] {
	case "serve":
		return serve(ctx, *addr, out)
	case "run":
		t, err := trial(ctx, *url, *rate, *conns, *duration, *lateAfter, *netHTTP)
		if err != nil {
			return err
		}
		t.judge(*maxLate)
		return json.NewEncoder(out).Encode(t)
	case "search":
		return search(ctx, *url, *conns, *duration, *lateAfter, *start, *maxLate, *pause, *netHTTP, out)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func serve(ctx context.Context, addr string, out io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ok"))
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintf(out, "http://%s/\n", ln.Addr())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Trial is one open-loop run.
type Trial struct {
	Target     float64 `json:"target"`
	Achieved   float64 `json:"achieved"`
	Conns      int     `json:"conns"`
	Scheduled  uint64  `json:"scheduled"`
	Sent       uint64  `json:"sent"`
	OK         uint64  `json:"ok"`
	Late       uint64  `json:"late"`
	LateFrac   float64 `json:"late_frac"`
	SendLagP99 float64 `json:"send_lag_p99_ms"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	Pass       bool    `json:"pass"`
}

// netHTTPGet is loadgen.HTTPGet over net/http's client, to compare the two.
func netHTTPGet(client *http.Client, url string) loadgen.Work {
	return func(ctx context.Context, _ uint64) loadgen.Outcome {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return loadgen.Outcome{Op: "get", Code: "bad_request"}
		}
		resp, err := client.Do(req)
		if err != nil {
			return loadgen.Outcome{Op: "get", Code: loadgen.ErrorCode(err)}
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		o := loadgen.Outcome{Op: "get", Status: resp.StatusCode}
		if resp.StatusCode != http.StatusOK {
			o.Code = fmt.Sprintf("http_%d", resp.StatusCode)
		}
		return o
	}
}

func trial(ctx context.Context, url string, rate float64, conns int, d, lateAfter time.Duration, netHTTP bool) (Trial, error) {
	if url == "" {
		return Trial{}, errors.New("-url is required")
	}
	sched, err := loadgen.Constant(rate, d, 0)
	if err != nil {
		return Trial{}, err
	}
	var work loadgen.Work
	if netHTTP {
		client := loadgen.NewHTTPClient(conns, 10*time.Second)
		defer client.CloseIdleConnections()
		work = netHTTPGet(client, url)
	} else {
		client, err := loadgen.NewClient(url, conns, 10*time.Second)
		if err != nil {
			return Trial{}, err
		}
		defer client.CloseIdleConnections()
		work = loadgen.HTTPGet(client, "/", "get")
	}
	r, err := loadgen.NewRunner(loadgen.Config{
		Schedule:  sched,
		Workers:   conns,
		LateAfter: lateAfter,
	}, work)
	if err != nil {
		return Trial{}, err
	}
	res, err := r.Run(ctx)
	if err != nil {
		return Trial{}, err
	}
	t := Trial{
		Target: rate, Achieved: math.Round(res.AchievedRate*10) / 10, Conns: conns,
		Scheduled: res.Scheduled, Sent: res.Sent, OK: res.OK, Late: res.Late,
		SendLagP99: res.Summary.SendLag.P99,
		P50:        res.Summary.Latency.P50, P99: res.Summary.Latency.P99, Max: res.Summary.Latency.Max,
	}
	if res.Sent > 0 {
		t.LateFrac = float64(res.Late) / float64(res.Sent)
	}
	return t, nil
}

func (t *Trial) judge(maxLate float64) {
	t.Pass = t.Sent == t.Scheduled && t.OK == t.Sent && t.Achieved >= 0.99*t.Target && t.LateFrac <= maxLate
}

// search raises the rate by 25 % until it fails, then bisects between the
// last pass and the first failure, and prints the highest rate that passed.
func search(ctx context.Context, url string, conns int, d, lateAfter time.Duration, start, maxLate float64, pause time.Duration, netHTTP bool, out io.Writer) error {
	enc := json.NewEncoder(out)
	// The machine is shared: a neighbour taking the CPUs for a moment fails
	// a run at any rate, so a rate fails only if a second run fails too.
	try := func(rate float64) (bool, error) {
		for range 2 {
			if err := sleep(ctx, pause); err != nil {
				return false, err
			}
			t, err := trial(ctx, url, math.Round(rate), conns, d, lateAfter, netHTTP)
			if err != nil {
				return false, err
			}
			t.judge(maxLate)
			if err := enc.Encode(t); err != nil || t.Pass {
				return t.Pass, err
			}
		}
		return false, nil
	}
	lo, hi := 0.0, 0.0
	for rate := start; hi == 0; rate *= 1.25 {
		ok, err := try(rate)
		if err != nil {
			return err
		}
		if ok {
			lo = rate
		} else {
			hi = rate
		}
	}
	if lo == 0 { // the first rate failed: come down instead
		for rate := start / 1.25; lo == 0 && rate >= 100; rate /= 1.25 {
			ok, err := try(rate)
			if err != nil {
				return err
			}
			if ok {
				lo = rate
			} else {
				hi = rate
			}
		}
	}
	for hi-lo > 0.03*lo && lo > 0 {
		mid := (lo + hi) / 2
		ok, err := try(mid)
		if err != nil {
			return err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	fmt.Fprintf(out, "sustained %.0f\n", lo)
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
