package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"txn/internal/apierr"
	"txn/internal/backoff"
	"txn/internal/ledger"
	"txn/internal/loadgen"
)

// LedgerClient is a client of the processor's public API (API.md), as the load tester uses it:
// the ledger it drives, prepares and verifies.
type LedgerClient struct {
	base   string // .../api/v1
	admin  string
	http   *http.Client    // JSON calls: preparation, verification, cleanup
	gen    *loadgen.Client // the generated requests, the hot path
	txPath string          // the path of /api/v1/transactions
	path   string          // the path of /api/v1
}

// NewLedgerClient is a client of the processor at baseURL (e.g. http://127.0.0.1:8000) over at
// most conns connections, calling admin endpoints with adminToken; timeout bounds each request
// (0: none). A baseURL that is not an http:// or https:// URL makes every call fail (the
// generated requests with code bad_request).
func NewLedgerClient(baseURL, adminToken string, conns int, timeout time.Duration) *LedgerClient {
	base := strings.TrimSuffix(baseURL, "/")
	p := &LedgerClient{base: base + "/api/v1", admin: adminToken, http: loadgen.NewHTTPClient(conns, timeout)}
	if u, err := url.Parse(base); err == nil {
		p.path = u.EscapedPath() + "/api/v1"
		p.txPath = p.path + "/transactions"
		p.gen, _ = loadgen.NewClient(base, conns, timeout) // nil: bad_request, below
	}
	return p
}

// CloseIdleConnections closes the connections no request is using.
func (p *LedgerClient) CloseIdleConnections() {
	p.http.CloseIdleConnections()
	if p.gen != nil {
		p.gen.CloseIdleConnections()
	}
}

// APIError is a problem+json answer of Service.
type APIError struct {
	Service string
	Status  int
	Code    string
	Detail  string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s answered %d %s: %s", e.Service, e.Status, e.Code, e.Detail)
}

// retryable reports an error worth retrying for an idempotent request: 429 or 503 (API.md),
// or a transport error.
func retryable(err error) bool {
	var e *APIError
	if errors.As(err, &e) {
		return notApplied(err)
	}
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// notApplied reports an answer that says the request was not applied (429, 503): safe to
// resend even when the request is not idempotent.
func notApplied(err error) bool {
	var e *APIError
	return errors.As(err, &e) && (e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable)
}

// retry runs fn until it succeeds, fails for good, or attempts run out, backing off between.
func retry(ctx context.Context, attempts int, fn func() error) error {
	return retryIf(ctx, attempts, retryable, fn)
}

// retryIf is retry for the errors again accepts.
func retryIf(ctx context.Context, attempts int, again func(error) bool, fn func() error) error {
	wait := backoff.New(50*time.Millisecond, 2*time.Second)
	for i := 1; ; i++ {
		err := fn()
		if err == nil || i == attempts || !again(err) || !wait.Wait(ctx) {
			return err
		}
	}
}

// call sends a JSON request with the admin token and decodes a 2xx answer into out.
func (p *LedgerClient) call(ctx context.Context, method, path string, in, out any) error {
	return callJSON(ctx, p.http, "processor", p.base+path, p.admin, method, in, out)
}

// callJSON sends a JSON request to url with a bearer token and decodes a 2xx answer into
// out; any other answer is an *APIError from service.
func callJSON(ctx context.Context, c *http.Client, service, url, token, method string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &APIError{Service: service, Status: resp.StatusCode}
		var prob struct{ Code, Detail string }
		if json.Unmarshal(b, &prob) == nil {
			e.Code, e.Detail = prob.Code, prob.Detail
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: bad answer: %w", method, url, err)
	}
	return nil
}

// NewUser is a created user with its API key.
type NewUser struct {
	ID     string `json:"id"`
	APIKey string `json:"api_key"`
}

// CreateUser creates a user. It is not idempotent, so it is not retried here.
func (p *LedgerClient) CreateUser(ctx context.Context, name, email string, tags []string) (NewUser, error) {
	var u NewUser
	err := p.call(ctx, http.MethodPost, "/users", map[string]any{"name": name, "email": email, "tags": tags}, &u)
	return u, err
}

// CreateAccount opens an account for userID and returns its id.
func (p *LedgerClient) CreateAccount(ctx context.Context, userID, currency string) (string, error) {
	var a struct {
		ID string `json:"id"`
	}
	err := p.call(ctx, http.MethodPost, "/accounts", map[string]any{"user_id": userID, "currency": currency}, &a)
	return a.ID, err
}

// BatchItem is one request of POST /transactions/batch.
type BatchItem struct {
	Type           string `json:"type"`
	FromAccountID  string `json:"from_account_id,omitempty"`
	ToAccountID    string `json:"to_account_id,omitempty"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	Description    string `json:"description,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// BatchResult is one item's answer.
type BatchResult struct {
	Status int `json:"status"`
	Error  *struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"error"`
}

// Batch applies up to 1000 requests, each on its own, with the admin token.
func (p *LedgerClient) Batch(ctx context.Context, items []BatchItem) ([]BatchResult, error) {
	var out struct {
		Results []BatchResult `json:"results"`
	}
	if err := p.call(ctx, http.MethodPost, "/transactions/batch", map[string]any{"transactions": items}, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != len(items) {
		return nil, fmt.Errorf("batch of %d answered %d results", len(items), len(out.Results))
	}
	return out.Results, nil
}

// Reconciliation is GET /admin/reconciliation.
func (p *LedgerClient) Reconciliation(ctx context.Context) (map[string]ledger.CurrencyBalance, error) {
	var out struct {
		Currencies map[string]ledger.CurrencyBalance `json:"currencies"`
	}
	err := retry(ctx, 5, func() error { return p.call(ctx, http.MethodGet, "/admin/reconciliation", nil, &out) })
	return out.Currencies, err
}

type page[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

// list reads every page of a list endpoint.
func list[T any](ctx context.Context, p *LedgerClient, path string) ([]T, error) {
	var all []T
	cursor := ""
	for {
		q := url.Values{"limit": {"200"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var pg page[T]
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		if err := retry(ctx, 5, func() error { return p.call(ctx, http.MethodGet, path+sep+q.Encode(), nil, &pg) }); err != nil {
			return all, err
		}
		all = append(all, pg.Data...)
		if pg.NextCursor == nil || *pg.NextCursor == "" {
			return all, nil
		}
		cursor = *pg.NextCursor
	}
}

// UsersByTag lists the users carrying tag.
func (p *LedgerClient) UsersByTag(ctx context.Context, tag string) ([]ledger.User, error) {
	return list[ledger.User](ctx, p, "/users?tag="+url.QueryEscape(tag))
}

// Accounts lists a user's accounts.
func (p *LedgerClient) Accounts(ctx context.Context, userID string) ([]ledger.Account, error) {
	return list[ledger.Account](ctx, p, "/users/"+url.PathEscape(userID)+"/accounts")
}

// Purge deletes the users carrying tag and all they own.
func (p *LedgerClient) Purge(ctx context.Context, tag string) (ledger.PurgeResult, error) {
	var out ledger.PurgeResult
	err := retry(ctx, 5, func() error { return p.call(ctx, http.MethodPost, "/admin/purge", map[string]string{"tag": tag}, &out) })
	return out, err
}

// Hold reads hold id with the admin token.
func (p *LedgerClient) Hold(ctx context.Context, id string) (ledger.Hold, error) {
	var h ledger.Hold
	err := retry(ctx, 5, func() error { return p.call(ctx, http.MethodGet, "/holds/"+url.PathEscape(id), nil, &h) })
	return h, err
}

// Answer is the outcome of one generated request.
type Answer struct {
	Status int    // 0 when no answer came
	Code   string // "" for 201; the problem's code, http_<status>, timeout, conn_error, canceled
	TxID   string
}

// Ambiguous reports an answer that does not say whether the request was applied: none came,
// or a 5xx other than 503 unavailable (which API.md guarantees applied nothing).
func (a Answer) Ambiguous() bool {
	return a.Status == 0 || (a.Status >= 500 && a.Code != string(apierr.CodeUnavailable))
}

// Send posts one transaction request (a prebuilt JSON body) with token and idempotency key.
// It reads just enough of the answer to classify it: the hot path parses no JSON.
func (p *LedgerClient) Send(ctx context.Context, token, key string, body []byte) Answer {
	return p.post(ctx, p.txPath, token, key, body, http.StatusCreated)
}

// CreateHold posts one hold request (POST /holds, a prebuilt JSON body) as Send does; a 201
// answer's TxID is the hold's id.
func (p *LedgerClient) CreateHold(ctx context.Context, token, key string, body []byte) Answer {
	return p.post(ctx, p.path+"/holds", token, key, body, http.StatusCreated)
}

// CaptureHold captures amount of hold id (POST /holds/{id}/capture): 201 with the transaction
// that moved it.
func (p *LedgerClient) CaptureHold(ctx context.Context, token, key, id string, amount int64) Answer {
	body := strconv.AppendInt(append(make([]byte, 0, 32), `{"amount":`...), amount, 10)
	return p.post(ctx, p.path+"/holds/"+id+"/capture", token, key, append(body, '}'), http.StatusCreated)
}

// VoidHold voids hold id (POST /holds/{id}/void, no body): 200 with the voided hold.
func (p *LedgerClient) VoidHold(ctx context.Context, token, key, id string) Answer {
	return p.post(ctx, p.path+"/holds/"+id+"/void", token, key, nil, http.StatusOK)
}

// post sends a POST to path with token, idempotency key and body (none when nil), and
// classifies the answer: ok is the status of success, whose TxID is the created thing's id.
func (p *LedgerClient) post(ctx context.Context, path, token, key string, body []byte, ok int) Answer {
	h := make([]byte, 0, 64+len(token)+len(key))
	h = append(h, "Authorization: Bearer "...)
	h = append(h, token...)
	if body != nil {
		h = append(h, "\r\nContent-Type: application/json"...)
	}
	h = append(h, "\r\nIdempotency-Key: "...)
	h = append(h, key...)
	h = append(h, "\r\n"...)
	if p.gen == nil {
		return Answer{Code: "bad_request"}
	}
	req := loadgen.Request{Method: http.MethodPost, Path: path, Header: h, Body: body, Replayable: true}
	resp, err := p.gen.Do(ctx, &req, 64<<10)
	a := Answer{Status: resp.Status}
	switch {
	case err != nil && a.Status == 0:
		return Answer{Code: loadgen.ErrorCode(err)}
	case err != nil:
		// The status came but the body broke off: the status still says what happened.
		if a.Status != ok {
			a.Code = "http_" + strconv.Itoa(a.Status)
		}
	case a.Status == ok:
		a.TxID = stringField(resp.Body, `"id":"`)
	default:
		a.Code = problemCode(a.Status, resp.Body)
	}
	return a
}

// problemCode is the code of a problem+json answer, or http_<status> when it names none.
func problemCode(status int, body []byte) string {
	if code := stringField(body, `"code":"`); code != "" {
		return code
	}
	return "http_" + strconv.Itoa(status)
}

// Read GETs an account and then its latest entries with its owner's token: a read-only
// request of the mix. A failure of either is the answer.
func (p *LedgerClient) Read(ctx context.Context, token, accountID string) Answer {
	for _, path := range []string{"/accounts/" + accountID, "/accounts/" + accountID + "/entries?limit=10"} {
		if a := p.get(ctx, token, path); a.Status != http.StatusOK {
			return a
		}
	}
	return Answer{Status: http.StatusOK}
}

// get GETs path (under /api/v1) and classifies the answer as Send does.
func (p *LedgerClient) get(ctx context.Context, token, path string) Answer {
	h := make([]byte, 0, 32+len(token))
	h = append(h, "Authorization: Bearer "...)
	h = append(h, token...)
	h = append(h, "\r\n"...)
	if p.gen == nil {
		return Answer{Code: "bad_request"}
	}
	req := loadgen.Request{Method: http.MethodGet, Path: p.path + path, Header: h, Replayable: true}
	resp, err := p.gen.Do(ctx, &req, 64<<10)
	if err != nil && resp.Status == 0 {
		return Answer{Code: loadgen.ErrorCode(err)}
	}
	a := Answer{Status: resp.Status}
	if a.Status != http.StatusOK {
		a.Code = problemCode(a.Status, resp.Body)
	}
	return a
}

// stringField finds the first JSON string field introduced by prefix (e.g. `"id":"`) in the
// compact JSON the processor writes; its values here (ids, codes) have no escapes.
func stringField(b []byte, prefix string) string {
	i := bytes.Index(b, []byte(prefix))
	if i < 0 {
		return ""
	}
	v := b[i+len(prefix):]
	j := bytes.IndexByte(v, '"')
	if j < 0 || j > 128 {
		return ""
	}
	return string(v[:j])
}
