package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// Client sends HTTP/1.1 requests to one origin over at most conns keep-alive
// connections, each used by one request at a time. It does what a load
// generator needs and nothing more: no redirects, cookies, proxies,
// compression or HTTP/2. net/http's client hands every request to a
// connection's writer and reader goroutines and back, several goroutine
// switches per request; here the caller writes the request and reads the
// answer itself, which costs about half the CPU per request (see
// scripts/bench-loadgen.sh), CPU the system under test shares.
type Client struct {
	addr    string // host:port
	host    string // the Host header
	tls     *tls.Config
	timeout time.Duration
	idle    chan *conn
	slots   chan struct{} // one per connection that may be open
	dialer  net.Dialer
}

// Request is one request: Header holds complete header lines ("Name: value\r\n"),
// without Host and Content-Length, which the client writes. Replayable
// says the request may be sent again when a kept-alive connection turns out
// closed before any answer came (GET, or a request with an idempotency key),
// as net/http does.
type Request struct {
	Method     string
	Path       string // with the query, e.g. /api/v1/accounts?limit=10
	Header     []byte
	Body       []byte
	Replayable bool
}

// Response is a status and up to the client's limit of the body (the rest
// is read and dropped, so the connection can be reused).
type Response struct {
	Status int
	Body   []byte
}

// ErrProtocol is an answer that is not HTTP/1.x.
var ErrProtocol = errors.New("loadgen: malformed HTTP answer")

// NewClient is a Client of the origin of base (http:// or https://) with at most conns
// connections and a per-request timeout (0 for none).
func NewClient(base string, conns int, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	port := u.Port()
	switch {
	case u.Scheme == "http" && port == "":
		port = "80"
	case u.Scheme == "https" && port == "":
		port = "443"
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("loadgen: scheme %q, want http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("loadgen: %q has no host", base)
	}
	if conns < 1 {
		conns = 1
	}
	c := &Client{
		addr:    net.JoinHostPort(u.Hostname(), port),
		host:    u.Host,
		timeout: timeout,
		idle:    make(chan *conn, conns),
		slots:   make(chan struct{}, conns),
		dialer:  net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
	}
	if u.Scheme == "https" {
		c.tls = &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}
	}
	return c, nil
}

type conn struct {
	net.Conn
	r   *bufio.Reader
	w   []byte
	err error // set once the connection cannot be reused
}

// Do sends req and reads its answer, keeping at most maxBody bytes of the body.
// Errors: ctx's error when it ended first, an error whose Timeout() is true when
// the client's timeout passed, ErrProtocol, or the network's error.
func (c *Client) Do(ctx context.Context, req *Request, maxBody int) (Response, error) {
	for attempt := 0; ; attempt++ {
		cn, reused, err := c.get(ctx)
		if err != nil {
			return Response{}, err
		}
		resp, sent, err := c.roundTrip(ctx, cn, req, maxBody)
		c.put(cn)
		// A kept-alive connection the server closed meanwhile fails before
		// any answer: the request did not get through, so send it again.
		if err != nil && reused && !sent && req.Replayable && attempt == 0 && ctx.Err() == nil && stale(err) {
			continue
		}
		return resp, err
	}
}

// get takes an idle connection, or dials one when fewer than conns are open,
// or waits for one.
func (c *Client) get(ctx context.Context) (*conn, bool, error) {
	select {
	case cn := <-c.idle:
		return cn, true, nil
	default:
	}
	select {
	case cn := <-c.idle:
		return cn, true, nil
	case c.slots <- struct{}{}:
		cn, err := c.dial(ctx)
		if err != nil {
			<-c.slots
			return nil, false, err
		}
		return cn, false, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

func (c *Client) dial(ctx context.Context) (*conn, error) {
	nc, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	if c.tls != nil {
		tc := tls.Client(nc, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, err
		}
		nc = tc
	}
	return &conn{Conn: nc, r: bufio.NewReaderSize(nc, 4096)}, nil
}

// put returns a connection to the idle pool, or closes it and frees its slot.
func (c *Client) put(cn *conn) {
	if cn.err == nil {
		c.idle <- cn // never blocks: at most conns exist
		return
	}
	_ = cn.Close()
	<-c.slots
}

// CloseIdleConnections closes the connections no request is using.
func (c *Client) CloseIdleConnections() {
	for {
		select {
		case cn := <-c.idle:
			_ = cn.Close()
			<-c.slots
		default:
			return
		}
	}
}

var longAgo = time.Unix(1, 0)

// roundTrip writes req on cn and reads the answer. sent reports that any
// byte of an answer arrived (the request may have been applied).
func (c *Client) roundTrip(ctx context.Context, cn *conn, req *Request, maxBody int) (resp Response, sent bool, err error) {
	deadline := time.Time{}
	if c.timeout > 0 {
		deadline = time.Now().Add(c.timeout)
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	if err := cn.SetDeadline(deadline); err != nil {
		cn.err = err
		return Response{}, false, err
	}
	if ctx.Done() != nil {
		// Cancelling the context cuts the connection's wait short.
		stop := context.AfterFunc(ctx, func() { _ = cn.SetDeadline(longAgo) })
		defer stop()
	}
	defer func() {
		if err != nil {
			cn.err = err
			if ctxErr := ctx.Err(); ctxErr != nil {
				err = ctxErr
			}
		}
	}()
	cn.w = appendRequest(cn.w[:0], c.host, req)
	if _, err := cn.Write(cn.w); err != nil {
		return Response{}, false, err
	}
	if len(cn.w) > 64<<10 {
		cn.w = nil // keep no huge buffer for the next request
	}
	if _, err := cn.r.Peek(1); err != nil {
		return Response{}, false, err
	}
	resp, err = readResponse(cn, req.Method == "HEAD", maxBody)
	return resp, true, err
}

func appendRequest(b []byte, host string, req *Request) []byte {
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, req.Path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	b = append(b, req.Header...)
	if req.Body != nil || req.Method == "POST" || req.Method == "PUT" || req.Method == "PATCH" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(req.Body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, req.Body...)
}

// readResponse reads one answer from cn, skipping 1xx interim answers. It
// marks cn not reusable when the server closes it after the answer.
func readResponse(cn *conn, head bool, maxBody int) (Response, error) {
	for {
		line, err := cn.r.ReadSlice('\n')
		if err != nil {
			return Response{}, protocolError(err)
		}
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
			return Response{}, ErrProtocol
		}
		status, err := strconv.Atoi(string(line[9:12]))
		if err != nil || status < 100 {
			return Response{}, ErrProtocol
		}
		h, err := readHeader(cn.r)
		if err != nil {
			return Response{}, err
		}
		if status < 200 && status != 101 {
			continue
		}
		resp := Response{Status: status}
		if h.close || line[7] == '0' && !h.keepAlive {
			defer func() { cn.err = errClosed }()
		}
		switch {
		case head || status == 204 || status == 304 || status == 101:
		case h.chunked:
			resp.Body, err = readChunked(cn.r, maxBody)
		case h.length >= 0:
			resp.Body, err = readN(cn.r, h.length, maxBody)
		default:
			// No length: the body runs to the end of the connection.
			resp.Body, err = readN(cn.r, -1, maxBody)
			if err == nil {
				cn.err = errClosed
			}
		}
		return resp, err
	}
}

var errClosed = errors.New("loadgen: connection closed by the server")

type header struct {
	length           int64
	chunked          bool
	close, keepAlive bool
}

func readHeader(r *bufio.Reader) (header, error) {
	h := header{length: -1}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return h, protocolError(err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return h, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return h, ErrProtocol
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return h, ErrProtocol
			}
			h.length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			h.chunked = bytes.EqualFold(value, []byte("chunked"))
			if !h.chunked {
				return h, ErrProtocol
			}
		case bytes.EqualFold(name, []byte("Connection")):
			h.close = bytes.EqualFold(value, []byte("close"))
			h.keepAlive = bytes.EqualFold(value, []byte("keep-alive"))
		}
	}
}

// readN reads n bytes (to EOF for n < 0), keeping the first max. Fewer than
// n is io.ErrUnexpectedEOF.
func readN(r *bufio.Reader, n int64, max int) ([]byte, error) {
	var src io.Reader = r
	if n >= 0 {
		src = io.LimitReader(r, n)
	}
	var keep []byte
	if n != 0 && max > 0 {
		size := max
		if n >= 0 && n < int64(max) {
			size = int(n)
		}
		keep = make([]byte, size)
		m, err := io.ReadFull(src, keep)
		keep = keep[:m]
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			if n >= 0 {
				return keep, io.ErrUnexpectedEOF
			}
			return keep, nil
		case err != nil:
			return keep, err
		}
	}
	dropped, err := io.Copy(io.Discard, src)
	if err == nil && n >= 0 && int64(len(keep))+dropped < n {
		err = io.ErrUnexpectedEOF
	}
	return keep, err
}

func readChunked(r *bufio.Reader, max int) ([]byte, error) {
	var keep []byte
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return keep, protocolError(err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return keep, ErrProtocol
		}
		if size == 0 {
			_, err := readHeader(r) // trailers, up to the blank line
			return keep, err
		}
		part, err := readN(r, size, max-len(keep))
		keep = append(keep, part...)
		if err != nil {
			return keep, err
		}
		if crlf, err := r.ReadSlice('\n'); err != nil || len(bytes.TrimRight(crlf, "\r\n")) != 0 {
			return keep, ErrProtocol
		}
	}
}

// stale reports the errors of a connection the server closed: a timeout is
// not one of them (the request may be under way).
func stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// protocolError keeps network errors (timeouts, resets, EOF) as they are and
// turns a line longer than the buffer into ErrProtocol.
func protocolError(err error) error {
	if errors.Is(err, bufio.ErrBufferFull) {
		return ErrProtocol
	}
	return err
}
