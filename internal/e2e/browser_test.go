package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"txn/internal/loadtest"
	"txn/internal/testenv"
)

// tab is one headless Chromium tab on the loadtest UI, shared by the subtests.
type tab struct {
	ctx context.Context

	mu         sync.Mutex
	exceptions []string // uncaught JavaScript exceptions
}

// browser is the tab as one (sub)test drives it: failures go to that test.
type browser struct {
	t *testing.T
	*tab
}

// on is the same tab, failing t.
func (b *browser) on(t *testing.T) *browser { return &browser{t: t, tab: b.tab} }

// startBrowser starts Debian's Chromium headless with a fresh profile. It fails, naming the
// package, when Chromium is not installed.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	// 1,400 px wide: the width at which every label must fit on one line.
	actx, cancelAlloc := testenv.Chromium(t, context.Background(), 1400, 1000)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 10*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	b := &browser{t: t, tab: &tab{ctx: ctx}}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() {
				b.mu.Lock()
				b.exceptions = append(b.exceptions, m.String())
				b.mu.Unlock()
			}
		}
	}()
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start Chromium: %v", err)
	}
	return b
}

// do runs actions, failing the test (with a screenshot of the page) on an error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	b.screenshot("loadtest-ui-failure.png")
	text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 3000)`))
	b.t.Fatalf(format+"\n--- page text:\n%s", append(args, text)...)
}

// until waits for a JavaScript expression to be true.
func (b *browser) until(what, expr string, within time.Duration) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(within))); err != nil {
		b.fail("waiting %s for %s (%s): %v", within, what, expr, err)
	}
}

// eval is the value of a JavaScript expression, failing the test on an exception.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("evaluate %s: %v", expr, err)
	}
	return v
}

// js runs a JavaScript statement (wrapped in a function, so it may declare what it needs).
func (b *browser) js(what, stmt string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`(() => {`+stmt+`; return true; })()`)); err != nil {
		b.fail("%s: %v", what, err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(eval[string](b, `(document.querySelector(`+strconv.Quote(sel)+`) || {}).textContent || ""`))
}

func (b *browser) attr(sel, data string) string {
	b.t.Helper()
	return eval[string](b, `document.querySelector(`+strconv.Quote(sel)+`)?.dataset[`+strconv.Quote(data)+`] ?? "missing"`)
}

// points is how many seconds a chart drew, from its data-points attribute.
func (b *browser) points(sel string) int {
	b.t.Helper()
	return eval[int](b, `+(document.querySelector(`+strconv.Quote(sel)+`)?.dataset.points ?? -1)`)
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	// From the top: a page scrolled by a click would show its sticky form out of place.
	_, _ = chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.scrollTo(0, 0), document.querySelector('.sidebar').scrollTop = 0, true`))
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.MkdirAll(uiOut, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(uiOut, name), png, 0o644)
	}
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot: out/%s", name)
}

// screenshotTall takes a screenshot in a window tall enough for the whole form, which in a
// window of the usual height scrolls on its own.
func (b *browser) screenshotTall(name string) {
	b.t.Helper()
	b.do("make the window tall", chromedp.EmulateViewport(1400, 1900))
	b.screenshot(name)
	b.do("restore the window", chromedp.ResetViewport())
}

func (b *browser) checkNoExceptions() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.exceptions {
		b.t.Errorf("uncaught JavaScript exception: %s", e)
	}
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// setRow fills row i (from 0) of the form's stage or threshold rows ("stage-rows",
// "threshold-rows") by its inputs' data-part, firing change events as a user would.
func (b *browser) setRow(list string, i int, vals map[string]any) {
	b.t.Helper()
	js, _ := json.Marshal(vals)
	b.js("fill row "+strconv.Itoa(i)+" of "+list, `const row = document.getElementById(`+strconv.Quote(list)+`).children[`+strconv.Itoa(i)+`];
		for (const [k, v] of Object.entries(`+string(js)+`)) {
			const el = row.querySelector('[data-part="' + k + '"]');
			if (el.type === 'checkbox') el.checked = v; else el.value = String(v);
			el.dispatchEvent(new Event('change', {bubbles: true}));
		}`)
}

// startFromForm fills the new-run form from a reset state and starts the run, returning its id.
// fill sets the fields; the run's page must open.
func (b *browser) startFromForm(fill func()) string {
	b.t.Helper()
	b.do("reset the form", chromedp.Click(css(`#run-form button[type=reset]`)))
	b.until("the form reset", `document.querySelector('#threshold-rows').children.length === 0 && !document.querySelector('#constant-fields').hidden`, 5*time.Second)
	b.until("the start button enabled", `!document.querySelector('#start-run').disabled`, 2*time.Minute)
	before := eval[string](b, `location.hash`)
	fill()
	b.do("start the run", chromedp.Click(css("#start-run")))
	b.until("the run's page", `location.hash !== `+strconv.Quote(before)+` && /^#\/runs\/[0-9a-f-]{36}$/.test(location.hash) && !!document.querySelector('#chart-throughput')`, 15*time.Second)
	return eval[string](b, `location.hash.slice('#/runs/'.length)`)
}

// open shows run id's page.
func (b *browser) open(id string) {
	b.t.Helper()
	b.js("open run "+id, `location.hash = '#/runs/`+id+`'`)
	b.until("run "+id+"'s page", `document.querySelector('#detail').dataset.status !== undefined && document.querySelector('#detail code')?.title === '`+id+`'`, 15*time.Second)
}

// noWrap lists the labels, headers, buttons and badges on the page that wrap onto a second line
// or are cut off, at the test's 1,400 px width.
const noWrap = `(() => {
	const bad = [];
	for (const el of document.querySelectorAll('label, legend, th, .kpi dt, button, .status, .result, .chart-title, .run-link, .data-state')) {
		if (!el.offsetParent) continue; // not shown
		const tops = [];
		const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
		for (let n = walk.nextNode(); n; n = walk.nextNode()) {
			if (!n.textContent.trim() || n.parentElement.closest('.sr-only')) continue;
			const r = document.createRange();
			r.selectNodeContents(n);
			for (const rect of r.getClientRects()) if (rect.width > 0) tops.push(rect.top);
		}
		if (tops.length && Math.max(...tops) - Math.min(...tops) > 8) bad.push('wraps: ' + el.textContent.trim().slice(0, 60));
		else if (el.tagName === 'LABEL' && el.scrollWidth > el.clientWidth + 1) bad.push('cut off: ' + el.textContent.trim().slice(0, 60));
	}
	return bad;
})()`

func (b *browser) checkNoWrap(where string) {
	b.t.Helper()
	if bad := eval[[]string](b, noWrap); len(bad) > 0 {
		b.t.Errorf("%s: %d labels do not fit on one line: %q", where, len(bad), bad)
	}
}

// apiRun starts a run through the API and waits for it to be done.
func apiRun(t *testing.T, lt *loadtester, cfg map[string]any) loadtest.Run {
	t.Helper()
	var r loadtest.Run
	lt.api.Must(t, http.StatusCreated, "POST", "/runs", cfg).JSON(t, &r)
	r, _ = lt.watch(t, r.ID, 2*time.Minute, phaseDone)
	return r
}

// waitFile waits for a finished download of name in dir and returns its content.
func waitFile(t *testing.T, dir, name string, within time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil && len(b) > 0 {
			return b
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("no download %s within %s; the directory holds %v", name, within, names)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
