package loadgen

import (
	"context"
	"errors"
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

// ErrorCode names a transport error as outcomes do: "timeout", "canceled" or
// "conn_error".
func ErrorCode(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "conn_error"
}

// HTTPGet is a Work that GETs path from client's origin, for targets whose
// error bodies don't matter: 2xx is success, another status is
// "http_<status>", a transport error is named by ErrorCode.
func HTTPGet(client *Client, path, op string) Work {
	return func(ctx context.Context, _ uint64) Outcome {
		req := Request{Method: "GET", Path: path, Replayable: true}
		resp, err := client.Do(ctx, &req, 0)
		if err != nil {
			return Outcome{Op: op, Code: ErrorCode(err)}
		}
		o := Outcome{Op: op, Status: resp.Status}
		if resp.Status < 200 || resp.Status > 299 {
			o.Code = "http_" + strconv.Itoa(resp.Status)
		}
		return o
	}
}
