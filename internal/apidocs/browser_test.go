package apidocs_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"txn/internal/apidocs"
	"txn/internal/httpapi"
	"txn/internal/testenv"
)

// outDir is the repository's git-ignored out/ directory.
func outDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDocsRenderInChromium opens each service's /docs in headless Chromium and checks that
// Swagger UI lists exactly the spec's operations, that the page made no request anywhere but
// its own server, and that it logged no error. Screenshots go to out/docs-<service>.png.
func TestDocsRenderInChromium(t *testing.T) {
	out := outDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alloc, cancelAlloc := testenv.Chromium(t, ctx, 1280, 1000)
	defer cancelAlloc()

	loadtest := http.NewServeMux()
	apidocs.Mount(loadtest, apidocs.LoadtestSpec, "txn loadtest API")
	cases := []struct {
		name    string
		handler http.Handler
		spec    []byte
	}{
		// The processor's real router, which needs no store to serve its docs.
		{"processor", httpapi.NewServer(httpapi.Deps{Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)}), apidocs.ProcessorSpec},
		{"loadtest", loadtest, apidocs.LoadtestSpec},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()

			var mu sync.Mutex
			var requested, problems []string
			tab, closeTab := chromedp.NewContext(alloc, chromedp.WithListener(func(ev any) {
				mu.Lock()
				defer mu.Unlock()
				switch e := ev.(type) {
				case *network.EventRequestWillBeSent:
					requested = append(requested, e.Request.URL)
				case *runtime.EventExceptionThrown:
					d := e.ExceptionDetails
					msg := d.Text
					if d.Exception != nil {
						msg += " " + d.Exception.Description
					}
					problems = append(problems, fmt.Sprintf("exception: %s at %s:%d", msg, d.URL, d.LineNumber))
				case *runtime.EventConsoleAPICalled:
					if e.Type == runtime.ConsoleAPICalledTypeError {
						problems = append(problems, fmt.Sprintf("console.error: %v", e.Args))
					}
				case *log.EventEntryAdded:
					if e.Entry.Level == log.EntryLevelError {
						problems = append(problems, fmt.Sprintf("%s: %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL))
					}
				}
			}))
			defer closeTab()

			want, err := apidocs.Operations(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			err = chromedp.Do(tab,
				chromedp.Navigate(srv.URL+"/docs"),
				chromedp.WaitVisible(chromedp.CSS(".opblock-summary-path")),
			)
			if err != nil {
				t.Fatalf("open %s/docs: %v", srv.URL, err)
			}
			listed, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".opblock")].map(b =>
				b.querySelector(".opblock-summary-method").textContent.trim() + " " +
				b.querySelector(".opblock-summary-path").getAttribute("data-path"))`))
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(listed)
			if !slices.Equal(listed, want) {
				t.Errorf("the page lists\n  %s\nwant\n  %s", strings.Join(listed, "\n  "), strings.Join(want, "\n  "))
			}
			title, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector(".info .title").textContent`))
			if err != nil || !strings.Contains(title, "txn "+tc.name+" API") {
				t.Errorf("title %q, %v", title, err)
			}

			// Opening an operation renders its schemas (oneOf, allOf, if/then) and examples.
			first := map[string]string{"processor": "Transactions-createTransaction", "loadtest": "Runs-createRun"}[tc.name]
			err = chromedp.Do(tab,
				chromedp.Click(chromedp.CSS("#operations-"+first+" .opblock-summary-control")),
				chromedp.WaitVisible(chromedp.CSS("#operations-"+first+" .responses-table")),
			)
			if err != nil {
				t.Fatalf("open operation %s: %v", first, err)
			}
			png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			shot := filepath.Join(out, "docs-"+tc.name+".png")
			if err := os.WriteFile(shot, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", shot)

			mu.Lock()
			defer mu.Unlock()
			for _, u := range requested {
				if !strings.HasPrefix(u, srv.URL+"/") && !strings.HasPrefix(u, "data:") {
					t.Errorf("the page requested %s: it must work offline", u)
				}
			}
			for _, p := range problems {
				t.Errorf("the page logged %s", p)
			}
		})
	}
}
