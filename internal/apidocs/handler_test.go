package apidocs_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"txn/internal/apidocs"
)

func get(t *testing.T, h http.Handler, path string, headers ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandlerServesSpecAsJSON(t *testing.T) {
	mux := http.NewServeMux()
	apidocs.Mount(mux, apidocs.ProcessorSpec, "txn processor API")
	r := get(t, mux, "/openapi.json")
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body(t, r), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.1" || doc.Paths["/api/v1/transactions"]["post"] == nil {
		t.Errorf("openapi %q, paths %d: not the processor's spec", doc.OpenAPI, len(doc.Paths))
	}
}

// TestToJSONKeepsOrder matters for the docs page, which lists paths in the document's order.
func TestToJSONKeepsOrder(t *testing.T) {
	js, err := apidocs.ToJSON([]byte("b: 1\na: {d: [x, 2, true, null], c: '3'}\nt: 2026-01-02\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"b":1,"a":{"d":["x",2,true,null],"c":"3"},"t":"2026-01-02"}`
	var got bytes.Buffer
	_ = json.Compact(&got, js)
	if got.String() != want {
		t.Errorf("got %s, want %s", got.String(), want)
	}
	if _, err := apidocs.ToJSON([]byte("a: 1\na: 2\n")); err == nil {
		t.Error("a duplicate key was accepted")
	}
}

// TestDocsPageIsSelfContained: the page and its assets come from this handler only, so it
// renders with the network off (the browser test proves it in Chromium).
func TestDocsPageIsSelfContained(t *testing.T) {
	h := apidocs.Handler(apidocs.ProcessorSpec, "txn <processor> API")
	r := get(t, h, "/docs")
	page := string(body(t, r))
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, Content-Type %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if !strings.Contains(page, "<title>txn &lt;processor&gt; API</title>") {
		t.Errorf("title not set and escaped:\n%s", page)
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("found %d references in\n%s", len(refs), page)
	}
	for _, m := range refs {
		ref := m[1]
		if ref == "data:," {
			continue
		}
		if strings.Contains(ref, ":") || strings.HasPrefix(ref, "//") {
			t.Errorf("the page refers to %q, outside the binary", ref)
			continue
		}
		// Relative to /docs, as a browser resolves it.
		if r := get(t, h, "/"+ref); r.StatusCode != 200 {
			t.Errorf("%s: status %d", ref, r.StatusCode)
		}
	}
	if r := get(t, h, "/docs/nope.js"); r.StatusCode != 404 {
		t.Errorf("unknown asset: status %d", r.StatusCode)
	}
}

func TestDocsAssetsEncoding(t *testing.T) {
	h := apidocs.Handler(apidocs.LoadtestSpec, "txn loadtest API")
	zipped := get(t, h, "/docs/swagger-ui-bundle.js", "Accept-Encoding", "br, gzip")
	if zipped.Header.Get("Content-Encoding") != "gzip" || zipped.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("headers %v", zipped.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body(t, zipped)))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	plain := get(t, h, "/docs/swagger-ui-bundle.js")
	if plain.Header.Get("Content-Encoding") != "" || !bytes.Equal(body(t, plain), unzipped) {
		t.Error("the plain and the gzip answers differ")
	}
	if !bytes.Contains(unzipped, []byte("SwaggerUIBundle")) {
		t.Error("not Swagger UI's bundle")
	}
	etag := plain.Header.Get("ETag")
	if r := get(t, h, "/docs/swagger-ui-bundle.js", "If-None-Match", etag); etag == "" || r.StatusCode != http.StatusNotModified {
		t.Errorf("ETag %q, revalidation status %d", etag, r.StatusCode)
	}
}
