package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	pipe "txn/internal/pipeline"
	"txn/internal/processor"
	"txn/internal/rabbitmq"
	"txn/internal/testenv"
)

// notifierRig is a processor (in process, for users and the inbox API), a notifier process, a
// webhook receiver on 127.0.0.1, and queues and a MongoDB database of their own.
type notifierRig struct {
	t        testing.TB
	p        *testenv.Processor
	admin    *testenv.Client
	rabbit   string
	topology rabbitmq.Topology
	pub      *rabbitmq.Publisher
	mongoURL string
	mongoDB  string
	inbox    *mongodrv.Collection
	recv     *receiver
	notifier *testenv.Proc
	addr     string // the notifier's operational endpoints
}

// uniqueMongoURL is $MONGO_URL with a database no other test uses.
func uniqueMongoURL(t testing.TB) (url, db string) {
	db = testenv.Unique("e2e")
	url = strings.TrimSuffix(strings.Split(testenv.MongoURL(t), "?")[0], "/")
	return url[:strings.LastIndex(url, "/")+1] + db, db
}

// startNotifier starts the rig; env adds to or overrides the notifier's environment.
func startNotifier(t testing.TB, env ...string) *notifierRig {
	t.Helper()
	r := &notifierRig{t: t, rabbit: testenv.RabbitURL(t), recv: newReceiver(t)}
	r.mongoURL, r.mongoDB = uniqueMongoURL(t)
	q := testenv.Unique("notify")
	r.topology = rabbitmq.Topology{Exchange: q, Queue: q, RetryDelays: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}}
	r.p = testenv.StartProcessor(t, func(c *processor.Config) { c.UserRate, c.MongoURL = 0, r.mongoURL })
	r.admin = r.p.Client(r.p.AdminToken)
	c, err := mongodrv.Connect(options.Client().ApplyURI(r.mongoURL))
	if err != nil {
		t.Fatal(err)
	}
	r.inbox = c.Database(r.mongoDB).Collection("notifications")
	r.pub, err = rabbitmq.NewPublisher(rabbitmq.PublisherConfig{URL: r.rabbit, Topology: r.topology})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = r.pub.Close()
		_ = c.Database(r.mongoDB).Drop(ctx)
		_ = c.Disconnect(ctx)
		if conn, err := amqp.Dial(r.rabbit); err == nil {
			if ch, err := conn.Channel(); err == nil {
				for _, q := range []string{q, q + ".parked", r.topology.RetryQueue(0), r.topology.RetryQueue(1)} {
					_, _ = ch.QueueDelete(q, false, false, false)
				}
				_ = ch.ExchangeDelete(q, false, false)
			}
			_ = conn.Close()
		}
	})
	r.addr = testenv.FreeAddr(t)
	base := []string{"NOTIFIER_ADDR=" + r.addr, "RABBITMQ_URL=" + r.rabbit, "RABBITMQ_EXCHANGE=" + q, "RABBITMQ_QUEUE=" + q,
		"NOTIFY_RETRY_DELAYS=100ms,200ms", "MONGO_URL=" + r.mongoURL, "DATABASE_URL=" + r.p.Config.DatabaseURL,
		"WEBHOOK_ALLOW_PRIVATE=true", "WEBHOOK_TIMEOUT=1s", "LOG_LEVEL=" + serviceLogLevel}
	r.notifier = testenv.StartProc(t, "notifier", append(base, env...)...)
	testenv.WaitHTTP(t, "http://"+r.addr+"/healthz", 20*time.Second)
	return r
}

// user creates a user whose webhook is the receiver's endpoint behave, or none when behave is nil.
func (r *notifierRig) user(name string, behave behaviour) (id, apiKey string) {
	r.t.Helper()
	body := map[string]any{"name": name, "email": name + "-" + uuid.NewString()[:8] + "@example.com"}
	if behave != nil {
		body["webhook_url"] = r.recv.srv.URL + "/hooks/" + name
	}
	var u struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
		Secret string `json:"webhook_secret"`
	}
	r.admin.Must(r.t, http.StatusCreated, "POST", "/users", body).JSON(r.t, &u)
	if behave != nil {
		r.recv.add(name, u.Secret, behave)
	}
	return u.ID, u.APIKey
}

// tasks makes n notification tasks for user, one millisecond apart, oldest first.
func tasks(user string, n int) []pipe.Task {
	out := make([]pipe.Task, n)
	base := time.Now().UTC().Truncate(time.Microsecond).Add(-time.Duration(n) * time.Millisecond)
	for i := range out {
		out[i] = pipe.Task{NotificationID: uuid.New(), EventID: uuid.New(), UserID: uuid.MustParse(user),
			TransactionID: uuid.New(), Kind: "transfer_received", Message: fmt.Sprintf("Transfer of %d.00 USD received", i+1),
			Amount: int64(i+1) * 100, Currency: "USD", CreatedAt: base.Add(time.Duration(i) * time.Millisecond)}
	}
	return out
}

func (r *notifierRig) publish(ts []pipe.Task) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for start := 0; start < len(ts); start += 500 {
		if err := r.pub.PublishTasks(ctx, ts[start:min(start+500, len(ts))]); err != nil {
			r.t.Fatal(err)
		}
	}
}

// statuses counts the inbox's notifications by status.
func (r *notifierRig) statuses() map[string]int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]int{}
	cur, err := r.inbox.Aggregate(ctx, mongodrv.Pipeline{{{Key: "$group", Value: bson.D{
		{Key: "_id", Value: "$status"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}})
	if err != nil {
		return out
	}
	var rows []struct {
		ID string `bson:"_id"`
		N  int    `bson:"n"`
	}
	_ = cur.All(ctx, &rows)
	for _, row := range rows {
		out[row.ID] = row.N
	}
	return out
}

func (r *notifierRig) waitStatus(status string, n int, within time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := r.statuses()
		if got[status] == n {
			return
		}
		if time.Now().After(deadline) {
			// What the stragglers look like, and where their tasks are.
			ctx := context.Background()
			cur, _ := r.inbox.Find(ctx, bson.D{{Key: "status", Value: bson.D{{Key: "$ne", Value: status}}}}, options.Find().SetLimit(5))
			var docs []bson.M
			if cur != nil {
				_ = cur.All(ctx, &docs)
			}
			queues := map[string]int{}
			if conn, err := amqp.Dial(r.rabbit); err == nil {
				if ch, err := conn.Channel(); err == nil {
					for _, q := range []string{r.topology.Queue, r.topology.Queue + ".parked", r.topology.RetryQueue(0), r.topology.RetryQueue(1)} {
						st, _ := ch.QueueDeclarePassive(q, true, false, false, false, nil)
						queues[q] = st.Messages
					}
				}
				_ = conn.Close()
			}
			r.t.Fatalf("after %s: inbox %v, want %d %s; queues %v; for instance %v", within, got, n, status, queues, docs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// notification is one item of GET /users/{id}/notifications.
type notification struct {
	ID            string     `json:"id"`
	TransactionID string     `json:"transaction_id"`
	Kind          string     `json:"kind"`
	Message       string     `json:"message"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastError     *string    `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
}

// inboxOf reads a user's whole inbox through the processor's API, page by page.
func (r *notifierRig) inboxOf(token, user string, limit int) []notification {
	r.t.Helper()
	var all []notification
	cl := r.p.Client(token)
	path := fmt.Sprintf("/users/%s/notifications?limit=%d", user, limit)
	for pages := 0; pages < 1000; pages++ {
		var page struct {
			Data []notification `json:"data"`
			Next *string        `json:"next_cursor"`
		}
		cl.Must(r.t, http.StatusOK, "GET", path, nil).JSON(r.t, &page)
		all = append(all, page.Data...)
		if page.Next == nil {
			return all
		}
		path = fmt.Sprintf("/users/%s/notifications?limit=%d&cursor=%s", user, limit, *page.Next)
	}
	r.t.Fatal("pagination does not end")
	return nil
}

// metric sums a notifier metric's samples whose line starts with prefix.
func (r *notifierRig) metric(prefix string) float64 {
	r.t.Helper()
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// behaviour answers one webhook call; n is how many calls this notification had before.
type behaviour func(w http.ResponseWriter, req *http.Request, n int)

func answer(status int) behaviour {
	return func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(status) }
}

// receiver is the users' webhook endpoint. It verifies every call's signature with its own
// implementation of the scheme (not the notifier's) and records what it accepted.
type receiver struct {
	t   testing.TB
	srv *httptest.Server
	mu  sync.Mutex
	// per user (the last path segment)
	secrets map[string][]byte
	behave  map[string]behaviour
	calls   map[string]int       // per notification id, every call
	byUser  map[string]int       // per user, every call
	ok      map[string]int       // per notification id, calls answered 2xx
	okAt    map[string]time.Time // first 2xx per notification id
	bad     int                  // calls with a bad signature or payload
}

func newReceiver(t testing.TB) *receiver {
	rc := &receiver{t: t, secrets: map[string][]byte{}, behave: map[string]behaviour{},
		calls: map[string]int{}, byUser: map[string]int{}, ok: map[string]int{}, okAt: map[string]time.Time{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) add(name, secret string, b behaviour) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		rc.t.Fatalf("webhook secret %q: %v", secret, err)
	}
	rc.mu.Lock()
	rc.secrets[name], rc.behave[name] = key, b
	rc.mu.Unlock()
}

// verify checks a call as a receiver following Standard Webhooks would.
func verify(key []byte, h http.Header, body []byte) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" {
		return fmt.Errorf("missing webhook-id or webhook-timestamp")
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s outside the tolerance", ts)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, b64, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if v == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no valid signature in %q", sigs)
}

func (rc *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	name := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
	rc.mu.Lock()
	key, behave := rc.secrets[name], rc.behave[name]
	var p struct {
		ID     string `json:"id"`
		UserID string `json:"user_id"`
		Kind   string `json:"kind"`
	}
	err := verify(key, req.Header, body)
	if err == nil {
		if err = json.Unmarshal(body, &p); err == nil && (p.ID != req.Header.Get("webhook-id") || p.Kind == "") {
			err = fmt.Errorf("payload %s does not match webhook-id %s", body, req.Header.Get("webhook-id"))
		}
	}
	if err != nil || req.Method != http.MethodPost || behave == nil {
		rc.bad++
		rc.mu.Unlock()
		rc.t.Errorf("webhook %s: bad call: %v", name, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	n := rc.calls[p.ID]
	rc.calls[p.ID]++
	rc.byUser[name]++
	rc.mu.Unlock()

	sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	behave(sw, req, n)
	if sw.status >= 200 && sw.status < 300 {
		rc.mu.Lock()
		if rc.ok[p.ID] == 0 {
			rc.okAt[p.ID] = time.Now()
		}
		rc.ok[p.ID]++
		rc.mu.Unlock()
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// accepted reports, over ids, how many were accepted at least once and how many extra 2xx
// calls there were (duplicate deliveries).
func (rc *receiver) accepted(ids []uuid.UUID) (seen, dups int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, id := range ids {
		if n := rc.ok[id.String()]; n > 0 {
			seen++
			dups += n - 1
		}
	}
	return seen, dups
}

func (rc *receiver) callsOf(id uuid.UUID) (calls, ok int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.calls[id.String()], rc.ok[id.String()]
}

func ids(ts []pipe.Task) []uuid.UUID {
	out := make([]uuid.UUID, len(ts))
	for i, t := range ts {
		out[i] = t.NotificationID
	}
	return out
}

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
	var hooked, all []pipe.Task
	for i := range 3 {
		id, _ := r.user(fmt.Sprintf("u%d", i), flaky)
		hooked = append(hooked, tasks(id, 500)...)
	}
	inboxOnly, _ := r.user("inbox", nil)
	all = append(append(all, hooked...), tasks(inboxOnly, 100)...)
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })

	done := make(chan struct{})
	go func() {
		defer close(done)
		for start := 0; start < len(all); start += 100 {
			r.publish(all[start:min(start+100, len(all))])
			time.Sleep(50 * time.Millisecond)
		}
	}()
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
