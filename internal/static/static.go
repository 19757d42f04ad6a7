// Package static serves files built into a binary (web pages, their scripts and styles) with
// the headers such files need: an ETag so a new binary's files are picked up, no sniffing, and
// the page's Content-Security-Policy.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
)

// File is one file to serve.
type File struct {
	ctype string
	body  []byte
	gzip  bool // body is gzip-compressed
	etag  string
}

// NewFile makes a file of content type ctype; gzipped says body is gzip-compressed (it is then
// sent as is to clients that accept gzip and decompressed for the others).
func NewFile(ctype string, body []byte, gzipped bool) File {
	sum := sha256.Sum256(body)
	// Weak: the same ETag names the gzipped and the plain encoding.
	return File{ctype: ctype, body: body, gzip: gzipped, etag: `W/"` + hex.EncodeToString(sum[:8]) + `"`}
}

// Handler serves files by URL path with GET and HEAD, and 404 for any other path.
func Handler(files map[string]File, csp string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		h.Set("ETag", f.etag)
		h.Set("Cache-Control", "no-cache") // revalidate: a new binary may bring new files
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", csp)
		if f.gzip {
			h.Set("Vary", "Accept-Encoding")
		}
		if r.Header.Get("If-None-Match") == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if r.Method == http.MethodHead {
			return
		}
		if !f.gzip {
			_, _ = w.Write(f.body)
			return
		}
		if acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			_, _ = w.Write(f.body)
			return
		}
		zr, err := gzip.NewReader(bytes.NewReader(f.body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.Copy(w, zr)
	})
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
