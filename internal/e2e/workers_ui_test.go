package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"txn/internal/loadtest"
	"txn/internal/testenv"
)

// TestLoadtestWorkersUI drives the web UI of a loadtest service with load workers (`loadtest
// worker` processes): the Workers card and the form's Workers field, a run sent by workers from
// the form, and a run that loses a worker mid-run. One behaviour per subtest, in order: each
// builds on the ones before. Screenshots go to out/.
func TestLoadtestWorkersUI(t *testing.T) {
	testenv.Integration(t)
	root := startBrowser(t)
	pl := startPipeline(t, 1)
	lt := startLoadtest(t, pl)
	var workers []*testenv.Proc
	top := t // the workers live as long as the whole test, not the subtest that starts them

	step := func(name string, f func(t *testing.T, b *browser)) {
		if !t.Run(name, func(t *testing.T) { f(t, root.on(t)) }) {
			t.FailNow() // the later steps build on this one
		}
	}
	// rows is the workers a table lists, as name:state.
	rows := func(b *browser, tbody string) string {
		return eval[string](b, `[...document.querySelectorAll(`+strconv.Quote(tbody+" tr")+`)].map((tr) => tr.dataset.name + ':' + tr.dataset.state).join(' ')`)
	}

	step("without workers, the card and the form say how to add some", func(t *testing.T, b *browser) {
		b.do("open the UI", chromedp.Navigate(lt.url+"/"), chromedp.WaitVisible(css("#token-input")))
		b.do("enter the admin token", chromedp.SendKeys(css("#token-input"), pl.p.AdminToken), chromedp.Click(css("#token-form button[type=submit]")))
		b.until("the fleet read", `document.querySelector('#h-workers').dataset.idle === '0'`, 15*time.Second)
		if got := b.text("#workers-empty"); !strings.Contains(got, "LOADTEST_URL="+lt.url) || !strings.Contains(got, "loadtest worker") {
			t.Errorf("the empty Workers card does not give the command to start a worker for this service: %q", got)
		}
		if !eval[bool](b, `document.querySelector('#workers-wrap').hidden`) {
			t.Error("the Workers table is shown with no workers")
		}
		if got := b.text("#h-workers"); got != "No workers: start loadtest worker on any machine to add some." {
			t.Errorf("the form's workers hint says %q with no workers", got)
		}
	})

	step("the Workers card lists the workers idle, and the form counts them", func(t *testing.T, b *browser) {
		for i := range 3 {
			workers = append(workers, testenv.StartCommand(top, "loadtest", []string{"worker", "-name", fmt.Sprintf("w%d", i+1)},
				"LOADTEST_URL="+lt.url, "TXN_ADMIN_TOKEN="+pl.p.AdminToken, "LOG_LEVEL="+serviceLogLevel))
		}
		b.until("three idle workers in the card", `document.querySelectorAll('#workers-body tr[data-state="idle"]').length === 3`, 30*time.Second)
		if got := rows(b, "#workers-body"); got != "w1:idle w2:idle w3:idle" {
			t.Errorf("the Workers card lists %q, want w1, w2 and w3 idle, by name", got)
		}
		if got := b.text("#workers-count"); got != "3 idle of 3" {
			t.Errorf("the Workers card counts %q", got)
		}
		if !eval[bool](b, `document.querySelector('#workers-empty').hidden`) {
			t.Error("the empty-fleet message is shown beside the workers")
		}
		if got := b.text(`#workers-body tr[data-name="w1"] td:nth-child(6)`); got != "just now" {
			t.Errorf("an idle worker heartbeating every 0.5 s last seen %q", got)
		}
		b.until("the form's hint counting them", `document.querySelector('#h-workers').dataset.idle === '3'`, 10*time.Second)
		if got := b.text("#h-workers"); got != "3 idle workers: runs with workers send from them, each its share." {
			t.Errorf("the form's workers hint says %q", got)
		}
		b.js("open the advanced section and ask for 4 workers", `document.querySelector('#advanced').open = true;
			const f = document.querySelector('#f-workers'); f.value = '4'; f.dispatchEvent(new Event('input', {bubbles: true}))`)
		if got := b.text("#h-workers"); !strings.Contains(got, "A run asking for 4 workers is refused until 4 are idle.") ||
			!eval[bool](b, `document.querySelector('#h-workers').classList.contains('warn-text')`) {
			t.Errorf("asking for more workers than are idle gives no warning: %q", got)
		}
		b.checkNoWrap("the form and the Workers card")
	})

	step("a workers count out of range is refused next to its field", func(t *testing.T, b *browser) {
		b.do("ask for 65 workers", chromedp.SetValue(css("#f-workers"), "65"), chromedp.Click(css("#start-run")))
		b.until("the field's error", `document.querySelector('#e-workers').textContent !== ''`, 10*time.Second)
		if got := b.text("#e-workers"); !strings.Contains(got, "64") {
			t.Errorf("the workers field's error %q does not give the limit", got)
		}
		if inv := eval[string](b, `document.querySelector('#f-workers').getAttribute('aria-invalid') || ''`); inv != "true" {
			t.Errorf("the workers field not marked invalid (%q)", inv)
		}
		if !eval[bool](b, `document.querySelector('#form-errors').hidden`) {
			t.Errorf("the workers field's error also went above the buttons: %q", b.text("#form-errors"))
		}
	})

	step("a run asking for more workers than are idle shows the service's refusal", func(t *testing.T, b *browser) {
		b.do("fill a small run asking for 4 workers", chromedp.SetValue(css("#f-users"), "5"), chromedp.SetValue(css("#f-rate"), "10"),
			chromedp.SetValue(css("#f-duration_s"), "2"), chromedp.SetValue(css("#f-workers"), "4"))
		b.do("start it", chromedp.Click(css("#start-run")))
		b.until("the refusal", `!document.querySelector('#form-errors').hidden`, 10*time.Second)
		if got := b.text("#form-errors"); !strings.Contains(got, "(409)") || !strings.Contains(got, "the run asks for 4 workers and 3 are idle") {
			t.Errorf("the form shows %q for a run asking for 4 of 3 idle workers", got)
		}
		if n := len(lt.list(t)); n != 0 {
			t.Fatalf("the refused form started %d runs", n)
		}
		b.until("the start button enabled again", `!document.querySelector('#start-run').disabled`, 5*time.Second)
	})

	var runID string
	step("a run from the form is sent by the workers, and its page lists each one's share", func(t *testing.T, b *browser) {
		runID = b.startFromForm(func() {
			b.do("fill the run", chromedp.SetValue(css("#f-name"), "ui workers"), chromedp.SetValue(css("#f-users"), "20"),
				chromedp.SetValue(css("#f-rate"), "100"), chromedp.SetValue(css("#f-duration_s"), "5"))
			b.js("ask for 3 workers", `document.querySelector('#advanced').open = true;
				const f = document.querySelector('#f-workers'); f.value = '3'; f.dispatchEvent(new Event('input', {bubbles: true}))`)
			if b.text("#form-errors") != "" || eval[bool](b, `document.querySelector('#h-workers').classList.contains('warn-text')`) {
				t.Errorf("asking for the 3 idle workers warns: %q", b.text("#h-workers"))
			}
			b.checkNoWrap("the form asking for workers")
			b.screenshotTall("loadtest-ui-workers-form.png")
		})
		if r := lt.run(t, runID); r.Config.Workers != 3 {
			t.Fatalf("the form sent \"workers\": %d, want 3", r.Config.Workers)
		}
		b.until("the Workers card showing them on the run", `[...document.querySelectorAll('#workers-body tr')].filter((tr) => tr.dataset.state !== 'idle' &&
			tr.querySelector('a.run-link')?.getAttribute('href') === '#/runs/`+runID+`').length === 3`, 20*time.Second)
		t.Logf("the Workers card during the run: %q", rows(b, "#workers-body"))
		b.checkNoWrap("the Workers card during a run")
		noMissing(b, "a run sent by workers, live")
		b.screenshot("loadtest-ui-workers-running.png")
		b.until("the run done", `document.querySelector('#detail').dataset.phase === 'done'`, 2*time.Minute)
		r := lt.run(t, runID)
		if r.Status != loadtest.StatusCompleted || len(r.Workers) != 3 {
			t.Fatalf("the API says %s with %d workers", r.Status, len(r.Workers))
		}
		b.until("the run's workers table", `document.querySelectorAll('#run-workers-table tbody tr').length === 3`, 10*time.Second)
		if got := rows(b, "#run-workers-table tbody"); got != "w1:done w2:done w3:done" {
			t.Errorf("the run's workers table lists %q, want w1, w2 and w3 done", got)
		}
		for i, w := range r.Workers {
			row := `#run-workers-table tbody tr:nth-child(` + strconv.Itoa(i+1) + `)`
			if got := b.attr(row, "share"); got != w.Share {
				t.Errorf("worker %s's share shown as %q, the API says %q", w.Name, got, w.Share)
			}
			if got := b.text(row + " td:nth-child(5)"); got != strconv.FormatUint(w.Sent, 10) {
				t.Errorf("worker %s shown with %q sent, the API says %d", w.Name, got, w.Sent)
			}
		}
		if eval[bool](b, `!!document.querySelector('#lost-note')`) {
			t.Errorf("a run that lost no worker says %q", b.text("#lost-note"))
		}
		noMissing(b, "a run sent by workers")
		if got := eval[string](b, `[...document.querySelectorAll('details.config table.kv tr')].find((tr) => tr.querySelector('th').textContent === 'Workers')?.querySelector('td').textContent ?? 'missing'`); got != "3" {
			t.Errorf("the configuration lists Workers as %q, want 3", got)
		}
		if got := eval[string](b, `[...document.querySelectorAll('#detail .summary tr')].find((tr) => tr.querySelector('th').textContent === 'Sent by')?.querySelector('td').textContent ?? 'missing'`); got != "3 workers" {
			t.Errorf("the summary says the run was sent by %q", got)
		}
		b.until("the workers idle again in the card", `document.querySelectorAll('#workers-body tr[data-state="idle"]').length === 3`, 15*time.Second)
		b.checkNoWrap("a run sent by workers")
		b.screenshot("loadtest-ui-workers-run.png")
	})

	step("a worker killed mid-run is shown lost, with what became of its share", func(t *testing.T, b *browser) {
		var r loadtest.Run
		lt.api.Must(t, http.StatusCreated, "POST", "/runs", map[string]any{"name": "ui lost worker", "users": 20, "rate": 100, "duration_s": 12, "workers": 3}).JSON(t, &r)
		b.open(r.ID)
		lt.watch(t, r.ID, time.Minute, func(r loadtest.Run) bool { return r.Status == loadtest.StatusRunning && r.Sent > 200 })
		workers[1].Kill()
		b.until("w2 shown lost while the run goes on", `document.querySelector('#run-workers-table tr[data-name="w2"]')?.dataset.state === 'lost'`, 30*time.Second)
		b.until("the run done", `document.querySelector('#detail').dataset.phase === 'done'`, 2*time.Minute)
		r = lt.run(t, r.ID)
		var lost loadtest.WorkerInfo
		for _, w := range r.Workers {
			if w.State == loadtest.WorkerLost {
				lost = w
			}
		}
		if lost.Name != "w2" || lost.LostAt == nil || r.Verification == nil {
			t.Fatalf("the API says workers %+v, verification %+v: not w2 lost", r.Workers, r.Verification)
		}
		b.until("the workers table settled", `document.querySelector('#detail').dataset.phase === 'done' && document.querySelectorAll('#run-workers-table tbody tr').length === 3`, 10*time.Second)
		if got := rows(b, "#run-workers-table tbody"); got != "w1:done w2:lost w3:done" {
			t.Errorf("the run's workers table lists %q, want w2 lost and the others done", got)
		}
		if !eval[bool](b, `document.querySelector('#run-workers-table tr[data-name="w2"]').classList.contains('lost') &&
			!!document.querySelector('#run-workers-table tr[data-name="w2"] .status-failed')`) {
			t.Error("the lost worker's row is not highlighted")
		}
		if got := b.text(`#run-workers-table tr[data-name="w2"] td:nth-child(10)`); got != fmtCount(lost.NotSent) {
			t.Errorf("the lost worker's not sent shown as %q, the API says %d", got, lost.NotSent)
		}
		resent := r.Verification.LostWorkerRequests
		if resent == 0 {
			t.Errorf("the API says no request of the lost worker was resent")
		}
		want := fmt.Sprintf("w2 was lost at %s: its share's %s unsent requests are counted as not sent; %s requests it may have sent were resent with their keys to learn what they did.",
			lost.LostAt.Local().Format("15:04:05"), fmtCount(lost.NotSent), fmtCount(uint64(resent)))
		if got := b.text("#lost-note"); got != want {
			t.Errorf("the lost worker's note says\n%q, want\n%q", got, want)
		}
		if got := b.attr("#lost-worker-requests", "count"); got != strconv.FormatInt(resent, 10) {
			t.Errorf("the verification shows %s lost worker's requests resent, the API says %d", got, resent)
		}
		part := fmt.Sprintf("worker w2 lost, its share's %d unsent requests counted as not sent", lost.NotSent)
		if got := b.text("#behind-banner"); !strings.Contains(got, part) {
			t.Errorf("the behind banner %q does not put the shortfall down to the lost worker", got)
		}
		if got := b.attr("#detail .result", "result"); got != "fail" {
			t.Errorf("a run that lost a worker is judged %q, want fail", got)
		}
		b.until("the fleet without the lost worker", `[...document.querySelectorAll('#workers-body tr')].map((tr) => tr.dataset.name + ':' + tr.dataset.state).join(' ') === 'w1:idle w3:idle'`, 15*time.Second)
		noMissing(b, "a run that lost a worker")
		b.checkNoWrap("a run that lost a worker")
		b.screenshot("loadtest-ui-workers-lost.png")
	})

	step("an idle worker gone silent is no longer counted idle", func(t *testing.T, b *browser) {
		workers[2].Kill() // w3: the service lists it for a minute, but no run can claim it
		b.until("w3 shown unheard of", `document.querySelector('#workers-body tr[data-name="w3"]')?.dataset.stale === 'true'`, 20*time.Second)
		if got := b.text("#workers-count"); got != "1 idle of 2" {
			t.Errorf("the Workers card counts %q with w3 silent, want 1 idle of 2", got)
		}
		b.until("the form's hint counting w1 alone", `document.querySelector('#h-workers').dataset.idle === '1'`, 10*time.Second)
		if got := b.text(`#workers-body tr[data-name="w3"] td:nth-child(6)`); !strings.HasSuffix(got, " s ago") {
			t.Errorf("the silent worker last seen %q", got)
		}
		// The service agrees: a run asking for both listed workers is refused.
		lt.api.Must(t, http.StatusConflict, "POST", "/runs", map[string]any{"users": 5, "rate": 10, "duration_s": 2, "workers": 2})
		b.screenshot("loadtest-ui-workers-silent.png")
		b.checkNoExceptions()
	})
}

// noMissing fails when the page shows a value JavaScript lost on its way ("null", "undefined",
// "NaN"), as DOM methods print a null child.
func noMissing(b *browser, where string) {
	b.t.Helper()
	if bad := eval[[]string](b, `document.body.innerText.split('\n').filter((l) => /\b(null|undefined|NaN)\b/.test(l))`); len(bad) > 0 {
		b.t.Errorf("%s: the page shows missing values: %q", where, bad)
	}
}

// fmtCount is a count as the UI shows it: 1,234.
func fmtCount(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
