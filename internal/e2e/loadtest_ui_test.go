package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"txn/internal/loadtest"
	"txn/internal/testenv"
)

// uiOut is the repository's git-ignored output directory, where the test leaves its screenshots.
var uiOut = filepath.Join("..", "..", "out")

// browser is one headless Chromium tab on the loadtest UI.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	exceptions []string // uncaught JavaScript exceptions
}

// startBrowser starts Debian's Chromium headless with a fresh profile. It fails, naming the
// package, when Chromium is not installed.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	actx, cancelAlloc := testenv.Chromium(t, context.Background(), 1440, 1000)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
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

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(document.querySelector(`+strconv.Quote(sel)+`) || {}).textContent || ""`))
	if err != nil {
		b.fail("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// points is how many seconds a chart drew, from its data-points attribute.
func (b *browser) points(sel string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`+(document.querySelector(`+strconv.Quote(sel)+`)?.dataset.points ?? -1)`))
	if err != nil {
		b.fail("read the points of %s: %v", sel, err)
	}
	return n
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
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

func (b *browser) checkNoExceptions() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.exceptions {
		b.t.Errorf("uncaught JavaScript exception: %s", e)
	}
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// TestLoadtestUIDrivesARun opens the web UI of a real loadtest service (with the processor,
// relay and consumer) in headless Chromium: a wrong token shows the 401 message, the API's
// validation errors land next to their fields, a run started from the form draws its charts
// live, a stop ends it as stopped and verified, its test data is deleted, and two runs are
// compared side by side. Screenshots go to out/.
func TestLoadtestUIDrivesARun(t *testing.T) {
	testenv.Integration(t)
	b := startBrowser(t)
	pl := startPipeline(t, 1)
	lt := startLoadtest(t, pl)

	// The token: asked for at once; a wrong one gives a clear 401 message.
	b.do("open the UI", chromedp.Navigate(lt.url+"/"), chromedp.WaitVisible(css("#token-input")))
	b.do("enter a wrong token", chromedp.SendKeys(css("#token-input"), "not-the-token"), chromedp.Click(css("#token-form button[type=submit]")))
	b.until("the 401 message", `!document.querySelector('#banner').hidden && /401/.test(document.querySelector('#banner').textContent)`, 10*time.Second)
	b.do("enter the admin token", chromedp.WaitVisible(css("#token-input")), chromedp.SendKeys(css("#token-input"), pl.p.AdminToken),
		chromedp.Click(css("#token-form button[type=submit]")))
	b.until("the token accepted", `document.querySelector('#banner').hidden && document.querySelector('#token-panel').hidden &&
		document.querySelector('#token-label').textContent === 'Admin token set'`, 10*time.Second)
	if stored, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`localStorage.getItem('loadtest.adminToken')`)); stored != pl.p.AdminToken {
		t.Errorf("token kept in localStorage: %q", stored)
	}

	// The API's validation errors, next to their fields.
	b.do("fill an invalid run",
		chromedp.SetValue(css("#f-users"), "0"),
		chromedp.SetValue(css(`#f-mix\.transfer`), "0.5"),
		chromedp.Click(css("#start-run")))
	b.until("the validation errors", `document.querySelector('#e-users').textContent !== '' && document.querySelector('#e-mix').textContent !== ''`, 10*time.Second)
	if inv, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector('#f-users').getAttribute('aria-invalid')`)); inv != "true" {
		t.Errorf("users field not marked invalid (%q)", inv)
	}
	t.Logf("validation shown: users %q, mix %q", b.text("#e-users"), b.text("#e-mix"))
	if n := len(lt.list(t)); n != 0 {
		t.Fatalf("an invalid form started %d runs", n)
	}

	// A run from the form: 20 users at 200/s for 20 s.
	b.do("start a run",
		chromedp.SetValue(css("#f-users"), "20"),
		chromedp.SetValue(css(`#f-mix\.transfer`), "0.8"),
		chromedp.SetValue(css("#f-rate"), "200"),
		chromedp.SetValue(css("#f-duration_s"), "20"),
		chromedp.SetValue(css("#f-ramp_up_s"), "2"),
		chromedp.Click(css("#start-run")))
	b.until("the run's page", `/^#\/runs\/[0-9a-f-]{36}$/.test(location.hash) && !!document.querySelector('#chart-throughput')`, 15*time.Second)
	id, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.hash.slice('#/runs/'.length)`))
	if err != nil {
		t.Fatal(err)
	}
	if b.text("#e-users") != "" || b.text("#e-mix") != "" {
		t.Errorf("validation messages left after a valid submit: %q %q", b.text("#e-users"), b.text("#e-mix"))
	}
	b.until("the run running", `document.querySelector('#detail').dataset.status === 'running'`, 90*time.Second)

	// The chart grows second by second while the run is running.
	b.until("two points in the throughput chart", `+document.querySelector('#chart-throughput').dataset.points >= 2`, 15*time.Second)
	first := b.points("#chart-throughput")
	b.until("more points in the throughput chart", `+document.querySelector('#chart-throughput').dataset.points > `+strconv.Itoa(first), 10*time.Second)
	second := b.points("#chart-throughput")
	if lat := b.points("#chart-latency"); lat < 2 {
		t.Errorf("latency chart drew %d points", lat)
	}
	lines, _ := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#chart-throughput path.line').length`))
	if lines < 2 {
		t.Errorf("throughput chart drew %d lines, want target and achieved", lines)
	}
	t.Logf("throughput chart: %d points, then %d", first, second)
	if r := lt.run(t, id); r.Status != loadtest.StatusRunning {
		t.Fatalf("the API says %s while the UI shows running", r.Status)
	}
	b.until("the run in the list", `document.querySelector('#runs-body tr[data-id="`+id+`"] .status')?.textContent === 'running'`, 10*time.Second)
	b.screenshot("loadtest-ui-running.png")

	// Stop, confirmed in the dialog: the UI shows the run stopped, then verified.
	b.do("stop the run", chromedp.Click(css("#stop-run")), chromedp.WaitVisible(css("#confirm-dialog[open]")), chromedp.Click(css("#confirm-ok")))
	b.until("the run stopped", `document.querySelector('#detail').dataset.status === 'stopped'`, 30*time.Second)
	if h := b.text("#detail .history"); !strings.Contains(h, "running → stopped") {
		t.Errorf("status history %q lacks the transition to stopped", h)
	}
	b.until("the run verified", `document.querySelector('#detail').dataset.phase === 'done' && !!document.querySelector('#verification-checks')`, 2*time.Minute)
	stopped := lt.run(t, id)
	if stopped.Status != loadtest.StatusStopped || stopped.Verification == nil {
		t.Fatalf("the API says %s, verification %+v", stopped.Status, stopped.Verification)
	}
	// The UI shows the service's verdict, each check as ✓ or ✗.
	v := stopped.Verification
	for check, want := range map[string]bool{"balanced": v.Balanced, "balances_match": v.BalancesMatch, "unresolved": v.Unresolved == 0} {
		got, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector('#verification-checks li[data-check="`+check+`"]')?.dataset.ok ?? 'missing'`))
		if got != strconv.FormatBool(want) {
			t.Errorf("verification check %s shown as %s, the API says %v", check, got, want)
		}
	}
	if verdict := b.text("#detail .verdict"); strings.Contains(verdict, "All checks passed") != v.OK {
		t.Errorf("verdict %q, the API says ok=%v (problems %v)", verdict, v.OK, v.Problems)
	}
	if p99 := b.text("#detail .kpi:nth-child(5) dd"); !strings.Contains(p99, "ms") && !strings.Contains(p99, " s") {
		t.Errorf("p99 shown as %q", p99)
	}
	b.until("the list showing it stopped", `document.querySelector('#runs-body tr[data-id="`+id+`"] .status')?.textContent === 'stopped'`, 10*time.Second)
	b.screenshot("loadtest-ui-stopped.png")

	// Delete the run's test data, confirmed in the dialog.
	b.do("delete the data", chromedp.Click(css("#delete-data")), chromedp.WaitVisible(css("#confirm-dialog[open]")), chromedp.Click(css("#confirm-ok")))
	b.until("the deletion reported", `/Deleted 20 users/.test(document.querySelector('#detail .message').textContent)`, time.Minute)
	if ids := runUserIDs(t, pl, id); len(ids) != 0 {
		t.Errorf("%d of the run's users left after the UI deleted its data", len(ids))
	}

	// A second, smaller run, compared with the first side by side.
	var other loadtest.Run
	lt.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{"users": 5, "rate": 100, "duration_s": 3}).JSON(t, &other)
	lt.watch(t, other.ID, 2*time.Minute, phaseDone)
	b.do("refresh the list", chromedp.Click(css("#refresh-btn")))
	b.until("both runs listed", `document.querySelectorAll('#runs-body tr').length === 2`, 10*time.Second)
	b.do("pick both runs",
		chromedp.Click(css(`#runs-body tr[data-id="`+id+`"] .pick`)),
		chromedp.Click(css(`#runs-body tr[data-id="`+other.ID+`"] .pick`)))
	b.until("the compare button enabled", `!document.querySelector('#compare-btn').disabled`, 5*time.Second)
	b.do("compare", chromedp.Click(css("#compare-btn")))
	b.until("the comparison", `!!document.querySelector('#compare-table') && +document.querySelector('#compare-throughput').dataset.points > 0`, 15*time.Second)
	diffs, _ := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#compare-table tr.diff th')].map(th => th.textContent)`))
	for _, want := range []string{"Users", "Target rate /s", "Status"} {
		if !slices.Contains(diffs, want) {
			t.Errorf("comparison does not highlight %q; highlighted: %v", want, diffs)
		}
	}
	b.screenshot("loadtest-ui-compare.png")
	b.checkNoExceptions()
	t.Logf("run %s stopped after %d sent; compared with %s", id, stopped.Sent, other.ID)
}
