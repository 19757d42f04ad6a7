package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// NewHTTPTransport is a transport for a load generator holding conns
// connections to one host: every worker keeps its own keep-alive connection
// (idle pool as large as the pool itself, so none is closed and redialled
// between requests), and no more than conns are ever opened.
func NewHTTPTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy: nil, // a load generator talks to its target, not to $HTTP_PROXY
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // gzip costs generator CPU and measures nothing
		ForceAttemptHTTP2:   false,
	}
}

// NewHTTPClient is a client over NewHTTPTransport(conns) with a per-request
// timeout (0 for none).
func NewHTTPClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{Transport: NewHTTPTransport(conns), Timeout: timeout}
}

// HTTPOutcome classifies a response for targets whose error bodies don't
// matter: 2xx is success, another status is "http_<status>", and a transport
// error is "timeout", "canceled" or "conn_error". It drains and closes the
// body, which a keep-alive connection needs to be reused.
func HTTPOutcome(op string, resp *http.Response, err error) Outcome {
	if err != nil {
		code := "conn_error"
		var ne net.Error
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
			code = "timeout"
		case errors.Is(err, context.Canceled):
			code = "canceled"
		}
		return Outcome{Op: op, Code: code}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	o := Outcome{Op: op, Status: resp.StatusCode}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		o.Code = "http_" + strconv.Itoa(resp.StatusCode)
	}
	return o
}

// HTTPGet is a Work that GETs url with client.
func HTTPGet(client *http.Client, url, op string) Work {
	return func(ctx context.Context, _ uint64) Outcome {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return Outcome{Op: op, Code: "bad_request"}
		}
		resp, err := client.Do(req)
		return HTTPOutcome(op, resp, err)
	}
}
