package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"txn/internal/clickhouse"
	"txn/internal/loadtest"
	"txn/internal/loadtest/app"
	"txn/internal/pipeline"
	"txn/internal/testenv"
)

// service runs the loadtest service in this process (so the race detector watches it) against
// a processor with no event pipeline: analytics never fill, which verification must report.
type service struct {
	t    *testing.T
	cfg  app.Config
	api  *testenv.Client
	stop func()
}

func newService(t *testing.T, p *testenv.Processor) *service {
	redisURL, prefix := testenv.Redis(t)
	addr := testenv.FreeAddr(t)
	db := testenv.Unique("loadtest")
	chAddr := testenv.ClickHouseAddr(t)
	mongoURL := strings.TrimSuffix(strings.Split(testenv.MongoURL(t), "?")[0], "/")
	mongoURL = mongoURL[:strings.LastIndex(mongoURL, "/")+1] + db
	t.Cleanup(func() {
		ctx := context.Background()
		if conn, err := ch.Open(&ch.Options{Addr: []string{chAddr}}); err == nil {
			_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
			_ = conn.Close()
		}
		if c, err := mongodrv.Connect(options.Client().ApplyURI(mongoURL)); err == nil {
			_ = c.Database(db).Drop(ctx)
			_ = c.Disconnect(ctx)
		}
	})
	s := &service{t: t, cfg: app.Config{
		Addr: addr, Target: loadtest.Target{URL: p.URL, AdminToken: p.AdminToken},
		RedisURL: redisURL, RedisPrefix: prefix, ClickHouseAddr: chAddr, ClickHouseDB: db,
		MongoURL: mongoURL, VerifyTimeout: time.Second, LogBuffer: 1 << 16, LiveTTL: time.Hour,
	}}
	s.api = &testenv.Client{Base: "http://" + addr + "/api/v1", Token: p.AdminToken, HTTP: &http.Client{Timeout: time.Minute}}
	return s
}

func (s *service) start() {
	level := slog.LevelWarn
	if os.Getenv("TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, s.cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	}()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				s.t.Errorf("service stopped with %v", err)
			}
		})
	}
	s.t.Cleanup(s.stop)
	testenv.WaitHTTP(s.t, "http://"+s.cfg.Addr+"/healthz", 30*time.Second)
}

func (s *service) run(id string) loadtest.Run {
	s.t.Helper()
	var r loadtest.Run
	s.api.Must(s.t, http.StatusOK, "GET", "/runs/"+id, nil).JSON(s.t, &r)
	return r
}

func (s *service) until(id string, cond func(loadtest.Run) bool) loadtest.Run {
	s.t.Helper()
	var r loadtest.Run
	testenv.Eventually(s.t, time.Minute, func() string {
		if r = s.run(id); cond(r) {
			return ""
		}
		return "run " + r.Status + ", phase " + r.Phase
	})
	return r
}

func TestServiceStopShutdownAndRestart(t *testing.T) {
	p := testenv.StartProcessor(t, nil)
	s := newService(t, p)
	s.start()
	if resp, err := http.Get("http://" + s.cfg.Addr + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz: %v %v", resp, err)
	}

	var first loadtest.Run
	s.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{"users": 5, "rate": 50, "duration_s": 30}).JSON(t, &first)
	s.until(first.ID, func(r loadtest.Run) bool { return r.Status == loadtest.StatusRunning && r.Sent > 60 })
	var ts struct{ Points []map[string]any }
	s.api.Must(t, http.StatusOK, "GET", "/runs/"+first.ID+"/timeseries", nil).JSON(t, &ts)
	if len(ts.Points) < 1 {
		t.Errorf("no live points: %+v", ts)
	}
	s.api.Must(t, http.StatusConflict, "POST", "/runs", map[string]any{"users": 5, "rate": 50, "duration_s": 30})
	s.api.Must(t, http.StatusConflict, "DELETE", "/runs/"+first.ID+"/data", nil)
	s.api.Must(t, http.StatusAccepted, "POST", "/runs/"+first.ID+"/stop", nil)
	r := s.until(first.ID, func(r loadtest.Run) bool { return r.Phase == loadtest.PhaseDone })
	v := r.Verification
	if r.Status != loadtest.StatusStopped || v == nil || !v.Balanced || !v.BalancesMatch || v.OK ||
		v.EventsInAnalytics == nil || *v.EventsInAnalytics != 0 || !strings.Contains(strings.Join(v.Problems, ";"), "analytics hold 0") {
		t.Errorf("stopped run %+v, verification %+v", r, v)
	}

	// A shutdown fails the run in progress; the next process lists both.
	var second loadtest.Run
	s.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{"users": 5, "rate": 50, "duration_s": 30}).JSON(t, &second)
	s.until(second.ID, func(r loadtest.Run) bool { return r.Status == loadtest.StatusRunning && r.Sent > 20 })
	s.stop()
	s.start()
	var list struct{ Data []loadtest.Run }
	s.api.Must(t, http.StatusOK, "GET", "/runs?limit=1", nil).JSON(t, &list)
	if len(list.Data) != 1 || list.Data[0].ID != second.ID || list.Data[0].Status != loadtest.StatusFailed ||
		!strings.Contains(list.Data[0].Error, "shut down") {
		t.Fatalf("first page: %+v", list.Data)
	}
	var page struct {
		Data       []loadtest.Run
		NextCursor *string `json:"next_cursor"`
	}
	s.api.Must(t, http.StatusOK, "GET", "/runs?limit=1", nil).JSON(t, &page)
	s.api.Must(t, http.StatusOK, "GET", "/runs?limit=1&cursor="+*page.NextCursor, nil).JSON(t, &page)
	if len(page.Data) != 1 || page.Data[0].ID != first.ID || page.Data[0].Status != loadtest.StatusStopped || page.NextCursor != nil {
		t.Errorf("second page: %+v", page)
	}
	for _, id := range []string{first.ID, second.ID} {
		var c struct{ Users, Accounts int64 }
		s.api.Must(t, http.StatusOK, "DELETE", "/runs/"+id+"/data", nil).JSON(t, &c)
		if c.Users != 5 || c.Accounts != 5 {
			t.Errorf("cleanup of %s: %+v", id, c)
		}
	}
}

// TestCleanupLeavesOtherUsersAnalytics writes, as any user could, an analytics row whose
// description carries a run's prefix: cleaning the run's data must delete only its own users'.
func TestCleanupLeavesOtherUsersAnalytics(t *testing.T) {
	p := testenv.StartProcessor(t, nil)
	s := newService(t, p)
	s.start()
	var run loadtest.Run
	s.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{"users": 3, "rate": 20, "duration_s": 1}).JSON(t, &run)
	s.until(run.ID, func(r loadtest.Run) bool { return r.Phase == loadtest.PhaseDone })

	ctx := context.Background()
	store, err := clickhouse.Open(ctx, s.cfg.ClickHouseAddr, s.cfg.ClickHouseDB)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	prefix := loadtest.DescriptionPrefix(run.ID)
	forged := pipeline.AnalyticsRow{EventID: uuid.New(), TransactionID: uuid.New(), Type: "transfer", Currency: "USD",
		Amount: 1, FromAccountID: uuid.New(), ToAccountID: uuid.New(), FromUserID: uuid.New(), ToUserID: uuid.New(),
		Description: prefix + "not the run's", CreatedAt: time.Now().UTC()}
	if err := store.InsertTransactions(ctx, []pipeline.AnalyticsRow{forged}); err != nil {
		t.Fatal(err)
	}
	s.api.Must(t, http.StatusOK, "DELETE", "/runs/"+run.ID+"/data", nil)
	n, err := store.CountTransactions(ctx, clickhouse.Filter{DescriptionPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d rows with the run's prefix after its cleanup, want the other user's 1", n)
	}
}
