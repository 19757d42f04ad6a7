package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"txn/internal/ledger"
)

// SecretPrefix starts every webhook secret; the rest is the base64 of the HMAC key.
const SecretPrefix = "whsec_"

// SecretKey decodes a webhook secret into its HMAC key.
func SecretKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, errors.New("webhook secret lacks the " + SecretPrefix + " prefix")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, errors.New("webhook secret is not base64 after its prefix")
	}
	return key, nil
}

// Sign is the webhook-signature header of one attempt: "v1," and the base64 HMAC-SHA256 of
// "id.timestamp.body" (Standard Webhooks).
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SendError is a failed webhook call; Class groups the causes for metrics.
type SendError struct {
	Class string // "refused", "timeout", "redirect", "http_4xx", "http_5xx", "http_other", "error"
	Msg   string // what the user may see (the notification's last_error)
	// Detail is for the operator's log only: e.g. which internal address a name resolved to.
	Detail string
}

func (e *SendError) Error() string { return e.Msg }

// ClassOf is err's class, "ok" for nil.
func ClassOf(err error) string {
	var se *SendError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &se):
		return se.Class
	}
	return "error"
}

// WebhookSender POSTs signed notifications over HTTP. Every call has its own timeout and no
// call follows a redirect: a 3xx is a failed attempt, since following it would let a receiver
// bounce the request to an address it may not name itself. Unless private targets are
// allowed, the host's every resolved address must be public and only those are dialled, so a
// name cannot resolve to a checked address first and a private one at connect time.
type WebhookSender struct {
	client  *http.Client
	timeout time.Duration
	private bool
	now     func() time.Time
}

func NewWebhookSender(timeout time.Duration, allowPrivate bool) *WebhookSender {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               nil, // a proxy would connect on our behalf, past the address check
		DialContext:         checkedDial(dialer, allowPrivate),
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: timeout,
		ForceAttemptHTTP2:   true,
	}
	return &WebhookSender{
		client: &http.Client{Transport: tr, Timeout: timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		timeout: timeout, private: allowPrivate, now: time.Now,
	}
}

// refusedError is a target address that is not public.
type refusedError struct {
	host string
	ip   netip.Addr
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("webhook refused: %s resolves to %s, a loopback, private or link-local address", e.host, e.ip)
}

func checkedDial(d *net.Dialer, allowPrivate bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		if !allowPrivate {
			for _, ip := range ips {
				if !ledger.PublicAddr(ip) {
					return nil, &refusedError{host: host, ip: ip}
				}
			}
		}
		var firstErr error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
			if err == nil {
				return c, nil
			}
			if firstErr == nil {
				firstErr = err
			}
			if ctx.Err() != nil {
				break
			}
		}
		return nil, firstErr
	}
}

// Send POSTs body to url with the Standard Webhooks headers.
func (s *WebhookSender) Send(ctx context.Context, target, secret, id string, body []byte) error {
	if msg := ledger.ValidateWebhookURL(target, s.private); msg != "" {
		return &SendError{Class: "refused", Msg: "webhook refused: webhook_url " + msg}
	}
	key, err := SecretKey(secret)
	if err != nil {
		return &SendError{Class: "error", Msg: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return &SendError{Class: "error", Msg: err.Error()}
	}
	ts := s.now().Unix()
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "txn-notifier/1")
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", Sign(key, id, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		var refused *refusedError
		var ne net.Error
		switch {
		case errors.As(err, &refused):
			return &SendError{Class: "refused", Msg: "webhook refused: the target's name resolves to an address that is not public",
				Detail: refused.Error()}
		case errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
			return &SendError{Class: "timeout", Msg: fmt.Sprintf("webhook did not answer within %s", s.timeout)}
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is the user's own: no need to repeat it
		}
		return &SendError{Class: "error", Msg: "webhook request failed: " + err.Error()}
	}
	// Drained (a little) so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return nil
	case code >= 300 && code < 400:
		return &SendError{Class: "redirect", Msg: fmt.Sprintf("webhook answered %s: redirects are not followed", resp.Status)}
	case code >= 400 && code < 500:
		return &SendError{Class: "http_4xx", Msg: "webhook answered " + resp.Status}
	case code >= 500 && code < 600:
		return &SendError{Class: "http_5xx", Msg: "webhook answered " + resp.Status}
	}
	return &SendError{Class: "http_other", Msg: "webhook answered " + resp.Status}
}
