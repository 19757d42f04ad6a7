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
	addr     string   // the notifier's operational endpoints
	env      []string // what the notifier was started with, but its address
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
	r.env = append(base[1:], env...)
	r.notifier = testenv.StartProc(t, "notifier", append(base, env...)...)
	testenv.WaitHTTP(t, "http://"+r.addr+"/healthz", 20*time.Second)
	return r
}

// another starts one more notifier on the same queue and stores; it returns it and its
// operational endpoints' base URL.
func (r *notifierRig) another() (*testenv.Proc, string) {
	r.t.Helper()
	addr := testenv.FreeAddr(r.t)
	p := testenv.StartProc(r.t, "notifier", append([]string{"NOTIFIER_ADDR=" + addr}, r.env...)...)
	testenv.WaitHTTP(r.t, "http://"+addr+"/healthz", 20*time.Second)
	return p, "http://" + addr
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

// mixedTasks makes perUser tasks for each of three users whose webhooks behave so, and 100 for
// a user with no webhook (inbox only), shuffled; hooked are the first users' tasks.
func (r *notifierRig) mixedTasks(behave behaviour, perUser int) (hooked, all []pipe.Task) {
	r.t.Helper()
	for i := range 3 {
		id, _ := r.user(fmt.Sprintf("u%d", i), behave)
		hooked = append(hooked, tasks(id, perUser)...)
	}
	inboxOnly, _ := r.user("inbox", nil)
	all = append(append(all, hooked...), tasks(inboxOnly, 100)...)
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return hooked, all
}

// publishPaced publishes ts 100 at a time, 50 ms apart, in the background; the channel closes
// when all are published.
func (r *notifierRig) publishPaced(ts []pipe.Task) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for start := 0; start < len(ts); start += 100 {
			r.publish(ts[start:min(start+100, len(ts))])
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return done
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
