package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	pipe "txn/internal/pipeline"
	"txn/internal/rabbitmq"
	"txn/internal/testenv"
)

func TestNotifierDeliversOnce(t *testing.T) {
	r := startNotifier(t)
	ann, annKey := r.user("ann", answer(http.StatusOK))
	bob, bobKey := r.user("bob", answer(http.StatusNoContent))
	cat, _ := r.user("cat", nil) // inbox only
	annTasks, bobTasks, catTasks := tasks(ann, 150), tasks(bob, 150), tasks(cat, 30)
	all := append(append(append([]pipe.Task(nil), annTasks...), bobTasks...), catTasks...)
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	r.publish(all)
	// Duplicates while the originals are in flight: the claim holds them back.
	r.publish(annTasks[:40])
	r.waitStatus("delivered", len(all), 60*time.Second)
	time.Sleep(time.Second) // nothing more may arrive

	hooked := append(ids(annTasks), ids(bobTasks)...)
	seen, dups := r.recv.accepted(hooked)
	if seen != len(hooked) || dups != 0 {
		t.Fatalf("receiver accepted %d of %d notifications with %d duplicates; want all, none twice", seen, len(hooked), dups)
	}
	for _, id := range hooked {
		if calls, _ := r.recv.callsOf(id); calls != 1 {
			t.Fatalf("notification %s: %d webhook calls, want 1", id, calls)
		}
	}
	if got := r.metric(`notifier_deliveries_total{outcome="delivered"}`); got != float64(len(all)) {
		t.Errorf("metric delivered = %v, want %d", got, len(all))
	}
	if got := r.metric(`notifier_deliveries_total{outcome="duplicate"}`); got != 40 {
		t.Errorf("metric duplicate = %v, want 40", got)
	}

	// The inbox through the API: the user itself, newest first, in pages, all delivered once.
	inbox := r.inboxOf(annKey, ann, 40)
	if len(inbox) != len(annTasks) {
		t.Fatalf("ann's inbox has %d notifications, want %d", len(inbox), len(annTasks))
	}
	for i, n := range inbox {
		want := annTasks[len(annTasks)-1-i]
		if n.ID != want.NotificationID.String() || n.TransactionID != want.TransactionID.String() ||
			n.Message != want.Message || n.Kind != want.Kind || !n.CreatedAt.Equal(want.CreatedAt) {
			t.Fatalf("inbox item %d: %+v, want %+v", i, n, want)
		}
		if n.Status != "delivered" || n.Attempts != 1 || n.LastError != nil || n.DeliveredAt == nil || n.DeliveredAt.Before(n.CreatedAt) {
			t.Fatalf("inbox item %d: %+v, want delivered at the first attempt", i, n)
		}
	}
	for _, n := range r.inboxOf(r.p.AdminToken, cat, 200) {
		if n.Status != "delivered" || n.Attempts != 1 || n.DeliveredAt == nil {
			t.Fatalf("inbox-only user: %+v, want delivered", n)
		}
	}
	r.p.Client(bobKey).Must(t, http.StatusNotFound, "GET", "/users/"+ann+"/notifications", nil)
	r.p.Client(annKey).Must(t, http.StatusBadRequest, "GET", "/users/"+ann+"/notifications?cursor=bogus", nil)
	t.Logf("%d notifications delivered (%d by webhook, %d inbox only), %d duplicate tasks skipped, 0 duplicate deliveries",
		len(all), len(hooked), len(catTasks), 40)
}

func TestNotifierRetriesFailedWebhooksThenDelivers(t *testing.T) {
	r := startNotifier(t, "NOTIFY_MAX_ATTEMPTS=100")
	var mu sync.Mutex
	failing := true
	ann, annKey := r.user("ann", func(w http.ResponseWriter, _ *http.Request, _ int) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	ts := tasks(ann, 5)
	r.publish(ts)
	// While the webhook fails, the inbox shows them pending with the attempts and the error.
	testenv.Eventually(t, 20*time.Second, func() string {
		inbox := r.inboxOf(annKey, ann, 50)
		if len(inbox) != len(ts) {
			return fmt.Sprintf("%d notifications in the inbox, want %d", len(inbox), len(ts))
		}
		for _, n := range inbox {
			if n.Status != "pending" || n.Attempts < 2 || n.LastError == nil || n.DeliveredAt != nil {
				return fmt.Sprintf("%+v, want pending after 2+ attempts", n)
			}
			if *n.LastError != "webhook answered 500 Internal Server Error" {
				return "last_error " + *n.LastError
			}
		}
		return ""
	})
	mu.Lock()
	failing = false
	mu.Unlock()
	r.waitStatus("delivered", len(ts), 20*time.Second)
	for _, n := range r.inboxOf(annKey, ann, 50) {
		id := uuid.MustParse(n.ID)
		calls, ok := r.recv.callsOf(id)
		if n.Status != "delivered" || n.Attempts != calls || ok != 1 || calls < 3 || n.LastError == nil {
			t.Fatalf("%+v after %d calls (%d accepted), want delivered once after failures, the last error kept", n, calls, ok)
		}
	}
	if got := r.metric(`notifier_webhook_attempts_total{result="http_5xx"}`); got < 10 {
		t.Errorf("metric http_5xx attempts = %v, want at least 10", got)
	}
}

func TestNotifierParksWhenAttemptsRunOut(t *testing.T) {
	r := startNotifier(t, "NOTIFY_MAX_ATTEMPTS=3")
	ann, _ := r.user("ann", answer(http.StatusServiceUnavailable))
	ts := tasks(ann, 4)
	r.publish(ts)
	r.waitStatus("failed", len(ts), 20*time.Second)
	for _, n := range r.inboxOf(r.p.AdminToken, ann, 50) {
		calls, ok := r.recv.callsOf(uuid.MustParse(n.ID))
		if n.Attempts != 3 || calls != 3 || ok != 0 || n.LastError == nil ||
			*n.LastError != "webhook answered 503 Service Unavailable" || n.DeliveredAt != nil {
			t.Fatalf("%+v after %d calls, want failed after 3 attempts with the last error", n, calls)
		}
	}
	// The tasks wait in the parking queue, with the reason.
	conn, err := amqp.Dial(r.rabbit)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() string {
		q, err := ch.QueueDeclarePassive(r.topology.Queue+".parked", true, false, false, false, nil)
		if err != nil || q.Messages != len(ts) {
			return fmt.Sprintf("parking queue: %+v, %v; want %d messages", q, err, len(ts))
		}
		return ""
	})
	m, ok, err := ch.Get(r.topology.Queue+".parked", false)
	if err != nil || !ok {
		t.Fatalf("get parked: %v", err)
	}
	if reason, _ := m.Headers[rabbitmq.HeaderParkReason].(string); !strings.Contains(reason, "gave up after 3 attempts: webhook answered 503") {
		t.Errorf("park reason %q", reason)
	}
	if got := r.metric(`notifier_deliveries_total{outcome="parked"}`); got != float64(len(ts)) {
		t.Errorf("metric parked = %v, want %d", got, len(ts))
	}
}

func TestNotifierSlowAndRedirectingWebhooksDoNotHoldUpOthers(t *testing.T) {
	r := startNotifier(t, "WEBHOOK_TIMEOUT=500ms", "NOTIFY_MAX_ATTEMPTS=3")
	r.user("trap", answer(http.StatusOK)) // where the redirects point: must never be reached
	red, _ := r.user("red", func(w http.ResponseWriter, req *http.Request, _ int) {
		http.Redirect(w, req, r.recv.srv.URL+"/hooks/trap", http.StatusTemporaryRedirect)
	})
	slow, _ := r.user("slow", func(w http.ResponseWriter, req *http.Request, _ int) {
		select { // far beyond the timeout; the notifier hangs up first
		case <-req.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	fast, _ := r.user("fast", answer(http.StatusOK))
	redTasks, slowTasks := tasks(red, 40), tasks(slow, 40)
	bad := append(append([]pipe.Task(nil), redTasks...), slowTasks...)
	rand.Shuffle(len(bad), func(i, j int) { bad[i], bad[j] = bad[j], bad[i] })
	r.publish(bad)
	time.Sleep(200 * time.Millisecond) // the bad ones occupy the workers first
	fastTasks := tasks(fast, 60)
	start := time.Now()
	r.publish(fastTasks)
	testenv.Eventually(t, 10*time.Second, func() string {
		if seen, _ := r.recv.accepted(ids(fastTasks)); seen != len(fastTasks) {
			return fmt.Sprintf("fast user: %d of %d delivered", seen, len(fastTasks))
		}
		return ""
	})
	var last time.Duration
	for _, id := range ids(fastTasks) {
		r.recv.mu.Lock()
		last = max(last, r.recv.okAt[id.String()].Sub(start))
		r.recv.mu.Unlock()
	}
	// 40 slow calls one after another would take 20s; 32 workers and the timeout bound it.
	if last > 3*time.Second {
		t.Errorf("the fast user's last notification arrived after %s, held up by the others", last)
	}
	r.waitStatus("failed", len(bad), 30*time.Second)
	for _, c := range []struct {
		user, err string
	}{{red, "webhook answered 307 Temporary Redirect: redirects are not followed"}, {slow, "webhook did not answer within 500ms"}} {
		for _, n := range r.inboxOf(r.p.AdminToken, c.user, 50) {
			if n.Status != "failed" || n.Attempts != 3 || n.LastError == nil || *n.LastError != c.err {
				t.Fatalf("%+v, want failed after 3 attempts with %q", n, c.err)
			}
		}
	}
	for _, id := range ids(redTasks) {
		if calls, _ := r.recv.callsOf(id); calls != 3 {
			t.Errorf("redirecting webhook called %d times for %s, want 3", calls, id)
		}
	}
	r.recv.mu.Lock()
	trapped := r.recv.byUser["trap"]
	r.recv.mu.Unlock()
	if trapped != 0 {
		t.Errorf("the redirect target was called %d times: a redirect was followed", trapped)
	}
	t.Logf("fast user's %d notifications all delivered %s after publishing, behind %d slow and redirecting ones",
		len(fastTasks), last.Round(time.Millisecond), len(bad))
}

func TestNotifierSurvivesKills(t *testing.T) {
	r := startNotifier(t, "NOTIFY_LEASE=3s")
	// Every 10th notification fails its first call, so retries are in flight at the kills too.
	flaky := func(w http.ResponseWriter, req *http.Request, n int) {
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		if n == 0 && uuid.MustParse(req.Header.Get("webhook-id"))[15]%10 == 0 {
			w.WriteHeader(http.StatusBadGateway)
		}
	}
	hooked, all := r.mixedTasks(flaky, 500)
	done := r.publishPaced(all)
	kills := 0
	for range 4 {
		time.Sleep(time.Duration(300+rand.IntN(500)) * time.Millisecond)
		r.notifier.Restart() // SIGKILL, then start again
		kills++
	}
	<-done
	r.waitStatus("delivered", len(all), 120*time.Second)
	time.Sleep(time.Second)
	seen, dups := r.recv.accepted(ids(hooked))
	if seen != len(hooked) {
		t.Fatalf("receiver accepted %d of %d notifications", seen, len(hooked))
	}
	t.Logf("%d notifications through %d SIGKILLs: all delivered, the receiver saw every one; %d duplicate deliveries",
		len(all), kills, dups)
}

// BenchmarkNotifier measures delivery throughput with a fast receiver: b.N notifications over
// 20 users, published while the notifier runs, until all are delivered and recorded. The
// notifier inherits the environment (NOTIFY_WORKERS=64, say).
//
//	go test -run '^$' -bench Notifier -benchtime 10000x ./internal/e2e
func BenchmarkNotifier(b *testing.B) {
	r := startNotifier(b)
	var users []string
	for i := range 20 {
		id, _ := r.user(fmt.Sprintf("b%d", i), answer(http.StatusOK))
		users = append(users, id)
	}
	var all []pipe.Task
	for i := range b.N {
		all = append(all, tasks(users[i%len(users)], 1)...)
	}
	b.ResetTimer()
	start := time.Now()
	r.publish(all)
	// The receiver's count is free to poll; the inbox's is a scan that would compete with the
	// notifier for the database.
	for seen, _ := r.recv.accepted(ids(all)); seen < len(all); seen, _ = r.recv.accepted(ids(all)) {
		time.Sleep(20 * time.Millisecond)
	}
	for r.statuses()["delivered"] < len(all) {
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(len(all))/took.Seconds(), "notifications/s")
	if seen, dups := r.recv.accepted(ids(all)); seen != len(all) || dups != 0 {
		b.Fatalf("receiver accepted %d of %d, %d duplicates", seen, len(all), dups)
	}
}

// TestNotifierDropsTasksOfUsersThatAreGone checks that a notification for a user purged since
// its transaction (a load test's cleanup running ahead of the pipeline) leaves nothing behind.
func TestNotifierDropsTasksOfUsersThatAreGone(t *testing.T) {
	r := startNotifier(t)
	gone := uuid.NewString() // no such user
	kept, _ := r.user("kept", nil)
	r.publish(append(tasks(gone, 5), tasks(kept, 3)...))
	r.waitStatus("delivered", 3, 60*time.Second)
	testenv.Eventually(t, 30*time.Second, func() string {
		if got := r.metric(`notifier_deliveries_total{outcome="dropped"}`); got != 5 {
			return fmt.Sprintf("%v dropped, want 5", got)
		}
		return ""
	})
	t.Run("nothing is written for the user that is gone", func(t *testing.T) {
		if got := r.statuses(); got["delivered"] != 3 || len(got) != 1 {
			t.Errorf("inbox by status %v, want only the 3 of the user that exists", got)
		}
	})
}
