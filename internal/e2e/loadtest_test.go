package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"txn/internal/clickhouse"
	"txn/internal/loadgen"
	"txn/internal/loadtest"
	"txn/internal/testenv"
)

// loadtester is the loadtest service as a process, on the pipeline's stores.
type loadtester struct {
	proc *testenv.Proc
	url  string
	api  *testenv.Client
}

func startLoadtest(t *testing.T, pl *pipeline) *loadtester {
	t.Helper()
	addr := testenv.FreeAddr(t)
	redisURL, prefix := testenv.Redis(t)
	lt := &loadtester{url: "http://" + addr}
	lt.proc = testenv.StartProc(t, "loadtest",
		"LOADTEST_ADDR="+addr, "PROCESSOR_URL="+pl.p.URL, "TXN_ADMIN_TOKEN="+pl.p.AdminToken,
		"REDIS_URL="+redisURL, "REDIS_PREFIX="+prefix,
		"CLICKHOUSE_ADDR="+pl.chAddr, "CLICKHOUSE_DATABASE="+pl.chDB, "MONGO_URL="+pl.mongoURL,
		// Finished runs leave Redis quickly, so reads of them exercise the ClickHouse history.
		"LOADTEST_LIVE_TTL=2s", "LOADTEST_VERIFY_TIMEOUT=60s", "LOG_LEVEL="+serviceLogLevel)
	lt.api = &testenv.Client{Base: lt.url + "/api/v1", Token: pl.p.AdminToken, HTTP: &http.Client{Timeout: 2 * time.Minute}}
	lt.waitUp(t)
	return lt
}

func (lt *loadtester) waitUp(t *testing.T) { testenv.WaitHTTP(t, lt.url+"/healthz", 60*time.Second) }

func (lt *loadtester) run(t *testing.T, id string) loadtest.Run {
	t.Helper()
	var r loadtest.Run
	lt.api.Must(t, http.StatusOK, "GET", "/runs/"+id, nil).JSON(t, &r)
	return r
}

// watch polls run id until done says so, and returns the statuses it went through in order.
func (lt *loadtester) watch(t *testing.T, id string, within time.Duration, done func(loadtest.Run) bool) (loadtest.Run, []string) {
	t.Helper()
	var seen []string
	deadline := time.Now().Add(within)
	for {
		r := lt.run(t, id)
		if len(seen) == 0 || seen[len(seen)-1] != r.Status {
			seen = append(seen, r.Status)
		}
		if done(r) {
			return r, seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: not there within %s; status %s, phase %s, statuses seen %v", id, within, r.Status, r.Phase, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (lt *loadtester) list(t *testing.T) []loadtest.Run {
	t.Helper()
	var page struct {
		Data []loadtest.Run `json:"data"`
	}
	lt.api.Must(t, http.StatusOK, "GET", "/runs", nil).JSON(t, &page)
	return page.Data
}

func phaseDone(r loadtest.Run) bool { return r.Phase == loadtest.PhaseDone }

// runUserIDs lists the users tagged with run id in the processor.
func runUserIDs(t *testing.T, pl *pipeline, id string) []string {
	t.Helper()
	var page struct {
		Data []struct{ ID string } `json:"data"`
	}
	pl.admin.Must(t, http.StatusOK, "GET", "/users?limit=200&tag="+id, nil).JSON(t, &page)
	ids := make([]string, len(page.Data))
	for i, u := range page.Data {
		ids[i] = u.ID
	}
	return ids
}

func countActivities(t *testing.T, pl *pipeline, users []string) int64 {
	t.Helper()
	ctx := context.Background()
	c, err := mongodrv.Connect(options.Client().ApplyURI(pl.mongoURL))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
	n, err := c.Database(pl.mongoDB).Collection("activity").CountDocuments(ctx,
		bson.D{{Key: "user_id", Value: bson.D{{Key: "$in", Value: users}}}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func openAnalytics(t *testing.T, pl *pipeline) (*clickhouse.Store, *clickhouse.LoadtestHistory) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := clickhouse.Open(ctx, pl.chAddr, pl.chDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h, err := s.LoadtestHistory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}

func okCount(r loadtest.Run, op string) int64 {
	for _, g := range r.ByOp {
		if g.Op == op && g.Outcome == loadgen.OutcomeOK {
			return int64(g.Count)
		}
	}
	return 0
}

// TestLoadtestThroughTheAPI runs the whole system: the processor with its relay, the consumer
// and the loadtest service as processes. A short run through the API prepares, runs and
// verifies (every accepted transaction reaches analytics and balances add up), its data is
// cleaned away, and a restarted service still shows it and fails the run it was running.
func TestLoadtestThroughTheAPI(t *testing.T) {
	pl := startPipeline(t, 1)
	lt := startLoadtest(t, pl)
	ctx := context.Background()
	analytics, history := openAnalytics(t, pl)

	// The edge: token, validation, the UI, the metrics.
	noToken := *lt.api
	noToken.Token = ""
	if r, _ := noToken.Do("GET", "/runs", nil); r == nil || r.Status != http.StatusUnauthorized {
		t.Fatalf("no token: %+v", r)
	}
	bad := lt.api.Must(t, http.StatusBadRequest, "POST", "/runs", map[string]any{"users": 0, "rate": 10, "duration_s": 1,
		"mix": map[string]float64{"transfer": 0.5, "deposit": 0.1, "withdrawal": 0.1}})
	if ct := bad.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("400 content type %q", ct)
	}
	var prob struct {
		Code   string `json:"code"`
		Errors []struct{ Field string }
	}
	bad.JSON(t, &prob)
	if prob.Code != "validation_failed" || len(prob.Errors) != 2 || prob.Errors[0].Field != "users" || prob.Errors[1].Field != "mix" {
		t.Errorf("validation problem %s", bad.Body)
	}
	lt.api.Must(t, http.StatusBadRequest, "POST", "/runs", `{"users": 1, "rate": 10, "duration_s": 1, "bogus": 1}`)
	lt.api.Must(t, http.StatusNotFound, "GET", "/runs/"+uuid.NewString(), nil)
	if resp, err := http.Get(lt.url + "/"); err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("web UI: %v %v", resp, err)
	}

	// A run of a few seconds.
	const users = 40
	var created loadtest.Run
	lt.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{
		"users": users, "rate": 200, "duration_s": 4, "ramp_up_s": 1, "initial_balance": 50_000,
	}).JSON(t, &created)
	if created.Status != loadtest.StatusPreparing || created.Verification != nil {
		t.Fatalf("created run: %+v", created)
	}
	lt.api.Must(t, http.StatusConflict, "POST", "/runs", map[string]any{"users": 1, "rate": 1, "duration_s": 1, "mix": map[string]float64{"deposit": 1}})
	run, statuses := lt.watch(t, created.ID, 2*time.Minute, phaseDone)
	statuses = append([]string{created.Status}, statuses...)
	if i, j := slices.Index(statuses, loadtest.StatusRunning), slices.Index(statuses, loadtest.StatusCompleted); i < 0 || j < i ||
		slices.Compact(statuses)[0] != loadtest.StatusPreparing {
		t.Errorf("statuses went %v, want preparing, running, completed", statuses)
	}
	js, _ := json.Marshal(run)
	t.Logf("run: %s", js)
	if run.Status != loadtest.StatusCompleted || run.Scheduled != 700 || run.Sent != run.Scheduled || run.OK+run.Failed != run.Sent ||
		run.StartedAt == nil || run.EndedAt == nil || run.LatencyMs.P99 <= 0 || run.AchievedRate <= 0 {
		t.Fatalf("summary: %s", js)
	}
	if run.Progress == nil || run.Progress.Users != users || run.Progress.Deposits != users || run.Progress.Fraction != 1 {
		t.Errorf("progress %+v", run.Progress)
	}
	v := run.Verification
	if v == nil || !v.OK || !v.Balanced || !v.BalancesMatch || v.EventsInAnalytics == nil || *v.EventsInAnalytics != v.Accepted ||
		v.Accepted != users+int64(run.OK) {
		t.Fatalf("verification: %+v", v)
	}
	t.Logf("run %s: %d sent at %.1f/s (target %.0f), p50 %.2f ms, p99 %.2f ms; %d accepted, all in analytics after %d ms",
		run.ID, run.Sent, run.AchievedRate, run.TargetRate, run.LatencyMs.P50, run.LatencyMs.P99, v.Accepted, v.AnalyticsWaitMs)

	// Timeseries and the request log, read back once Redis let the run go (history serves it).
	time.Sleep(2500 * time.Millisecond)
	var ts struct{ Points []loadgen.Point }
	lt.api.Must(t, http.StatusOK, "GET", "/runs/"+run.ID+"/timeseries", nil).JSON(t, &ts)
	var sent uint64
	for _, p := range ts.Points {
		sent += p.Sent
	}
	// Four seconds of schedule; an answer that came after the end adds a fifth point.
	if n := len(ts.Points); n < 4 || n > 5 || sent != run.Sent || ts.Points[3].P99Ms <= 0 || ts.Points[3].Target != 200 {
		t.Errorf("timeseries: %d points, %d sent: %+v", len(ts.Points), sent, ts.Points)
	}
	if again := lt.run(t, run.ID); again.Verification == nil || again.Sent != run.Sent {
		t.Errorf("run from history: %+v", again)
	}
	if n, err := history.CountRequests(ctx, run.ID); err != nil || n+run.LogDropped != run.Sent {
		t.Errorf("request log holds %d (+%d dropped), want %d: %v", n, run.LogDropped, run.Sent, err)
	}
	if list := lt.list(t); len(list) != 1 || list[0].ID != run.ID {
		t.Errorf("runs: %+v", list)
	}
	metrics := get(t, lt.url+"/metrics")
	for _, m := range []string{`loadtest_requests_total{op="transfer",outcome="ok"}`, `loadtest_runs_total{status="completed"} 1`,
		"loadtest_request_duration_seconds_bucket"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics lack %s", m)
		}
	}

	// Cleanup, once the activity feed has every item (a transfer gives two).
	userIDs := runUserIDs(t, pl, run.ID)
	wantActivity := users + okCount(run, loadtest.OpDeposit) + okCount(run, loadtest.OpWithdrawal) + 2*okCount(run, loadtest.OpTransfer)
	testenv.Eventually(t, 60*time.Second, func() string {
		if n := countActivities(t, pl, userIDs); n != wantActivity {
			return fmt.Sprintf("%d activity items, want %d", n, wantActivity)
		}
		return ""
	})
	auditRun(t, pl, run.ID, v.Accepted)
	var cleaned struct {
		Users, Accounts, Transactions, Activities int64
		Notifications                             *int64 // no notifier runs here: none to delete, but checked
	}
	lt.api.Must(t, http.StatusOK, "DELETE", "/runs/"+run.ID+"/data", nil).JSON(t, &cleaned)
	if cleaned.Users != users || cleaned.Accounts != users || cleaned.Transactions != v.Accepted ||
		cleaned.Activities != wantActivity || cleaned.Notifications == nil {
		t.Errorf("cleanup removed %+v, want %d users and accounts, %d transactions, %d activity items", cleaned, users, v.Accepted, wantActivity)
	}
	if ids := runUserIDs(t, pl, run.ID); len(ids) != 0 {
		t.Errorf("%d users left with the run's tag", len(ids))
	}
	if n, err := analytics.CountTransactions(ctx, clickhouse.Filter{DescriptionPrefix: loadtest.DescriptionPrefix(run.ID)}); err != nil || n != 0 {
		t.Errorf("analytics still hold %d of the run's transactions: %v", n, err)
	}
	if n := countActivities(t, pl, userIDs); n != 0 {
		t.Errorf("%d activity items left", n)
	}
	if r := lt.run(t, run.ID); r.Cleanup == nil || r.Cleanup.Users != users {
		t.Errorf("the run does not record its cleanup: %+v", r.Cleanup)
	}

	// A run cut short by a crash of the service: the restarted service fails it and still
	// shows the earlier one.
	var long loadtest.Run
	lt.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{"users": 10, "rate": 100, "duration_s": 60}).JSON(t, &long)
	lt.watch(t, long.ID, time.Minute, func(r loadtest.Run) bool { return r.Status == loadtest.StatusRunning && r.Sent > 50 })
	lt.proc.Kill()
	lt.proc.Start()
	lt.waitUp(t)
	list := lt.list(t)
	if len(list) != 2 || list[0].ID != long.ID || list[1].ID != run.ID {
		t.Fatalf("runs after a restart: %+v", list)
	}
	if r := list[0]; r.Status != loadtest.StatusFailed || r.Phase != loadtest.PhaseDone || !strings.Contains(r.Error, "interrupted") ||
		r.EndedAt == nil || r.Sent == 0 {
		t.Errorf("interrupted run: %+v", r)
	}
	if r := list[1]; r.Status != loadtest.StatusCompleted || r.Verification == nil || !r.Verification.OK {
		t.Errorf("earlier run: %+v", r)
	}

	// After the restart a run can start again, and a stop ends it as stopped.
	var short loadtest.Run
	lt.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{"users": 5, "rate": 50, "duration_s": 60}).JSON(t, &short)
	lt.watch(t, short.ID, time.Minute, func(r loadtest.Run) bool { return r.Status == loadtest.StatusRunning })
	lt.api.Must(t, http.StatusAccepted, "POST", "/runs/"+short.ID+"/stop", nil)
	stopped, _ := lt.watch(t, short.ID, time.Minute, phaseDone)
	if stopped.Status != loadtest.StatusStopped || stopped.Verification == nil || !stopped.Verification.BalancesMatch ||
		stopped.Sent >= stopped.Scheduled {
		t.Errorf("stopped run: %+v, verification %+v", stopped, stopped.Verification)
	}
	lt.api.Must(t, http.StatusConflict, "POST", "/runs/"+short.ID+"/stop", nil)
	for _, id := range []string{long.ID, short.ID} {
		lt.api.Must(t, http.StatusOK, "DELETE", "/runs/"+id+"/data", nil)
		if ids := runUserIDs(t, pl, id); len(ids) != 0 {
			t.Errorf("run %s: %d users left", id, len(ids))
		}
	}
}

// auditRun runs `loadtest audit` on a run as a user would. No notifier runs in these tests, so
// it must find every analytics row and activity item once and report every notification missing.
func auditRun(t *testing.T, pl *pipeline, id string, accepted int64) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t, "loadtest"), "audit", id)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+pl.p.DirectURL, "CLICKHOUSE_ADDR="+pl.chAddr,
		"CLICKHOUSE_DATABASE="+pl.chDB, "MONGO_URL="+pl.mongoURL)
	out, err := cmd.CombinedOutput()
	t.Logf("loadtest audit:\n%s", out)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("audit exit: %v, want code 1 (notifications missing)", err)
	}
	text := string(out)
	for _, want := range []string{
		fmt.Sprintf("%d transactions in PostgreSQL", accepted),
		fmt.Sprintf("analytics     expected %d, found %d: 0 missing, 0 more than once, 0 unknown", accepted, accepted),
		"activities    expected ",
		"notifications expected ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("audit output lacks %q", want)
		}
	}
	if !regexp.MustCompile(`activities +expected (\d+), found (\d+): 0 missing, 0 more than once, 0 unknown`).MatchString(text) {
		t.Errorf("audit finds the activity items other than once each")
	}
	if !regexp.MustCompile(`notifications expected (\d+), found 0: [1-9]\d* missing`).MatchString(text) {
		t.Errorf("audit does not report the notifications missing")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
