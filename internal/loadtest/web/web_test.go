package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandlerServesThePageAndItsAssets(t *testing.T) {
	h := Handler()
	page := get(t, h, "GET", "/")
	if page.Code != 200 || !strings.HasPrefix(page.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", page.Code, page.Header().Get("Content-Type"))
	}
	if csp := page.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	// Everything the page loads is served from here, nothing from elsewhere.
	for _, ref := range []struct{ name, ctype string }{
		{"app.js", "text/javascript"}, {"app.css", "text/css"}, {"favicon.svg", "image/svg+xml"},
	} {
		if !strings.Contains(page.Body.String(), `"`+ref.name+`"`) {
			t.Errorf("index.html does not load %s", ref.name)
		}
		r := get(t, h, "GET", "/"+ref.name)
		if r.Code != 200 || !strings.HasPrefix(r.Header().Get("Content-Type"), ref.ctype) || r.Body.Len() == 0 {
			t.Errorf("GET /%s: %d %q, %d bytes", ref.name, r.Code, r.Header().Get("Content-Type"), r.Body.Len())
		}
	}
	if strings.Contains(page.Body.String(), "http://") || strings.Contains(page.Body.String(), "https://") {
		t.Error("index.html refers to another site")
	}
	// A browser holding the current copy revalidates without a body.
	etag := get(t, h, "GET", "/app.js").Header().Get("ETag")
	if r := get(t, h, "GET", "/app.js", "If-None-Match", etag); etag == "" || r.Code != http.StatusNotModified {
		t.Errorf("revalidation with ETag %q: %d", etag, r.Code)
	}
	if r := get(t, h, "HEAD", "/app.css"); r.Code != 200 {
		t.Errorf("HEAD /app.css: %d", r.Code)
	}
}

func TestHandlerRefusesTheRest(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/nope", "/assets/app.js", "/index.html/", "/../web.go"} {
		if r := get(t, h, "GET", path); r.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.Code)
		}
	}
	if r := get(t, h, "POST", "/"); r.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", r.Code)
	}
}
