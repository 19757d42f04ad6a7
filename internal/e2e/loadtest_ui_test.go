package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"txn/internal/loadgen"
	"txn/internal/loadtest"
	"txn/internal/testenv"
)

// uiOut is the repository's git-ignored output directory, where the test leaves its screenshots.
var uiOut = filepath.Join("..", "..", "out")

// TestLoadtestUI opens the web UI of a real loadtest service (with the processor, relay and
// consumer) in headless Chromium and drives it as a user would, one behaviour per subtest, in
// order: each builds on the runs of the ones before. Screenshots go to out/.
func TestLoadtestUI(t *testing.T) {
	testenv.Integration(t)
	root := startBrowser(t)
	pl := startPipeline(t, 1)
	lt := startLoadtest(t, pl)
	var mainID, abortedID, stagesID, baseID string

	step := func(name string, f func(t *testing.T, b *browser)) {
		if !t.Run(name, func(t *testing.T) { f(t, root.on(t)) }) {
			t.FailNow() // the later steps build on this one
		}
	}

	step("the token is asked for and a wrong one refused", func(t *testing.T, b *browser) {
		b.do("open the UI", chromedp.Navigate(lt.url+"/"), chromedp.WaitVisible(css("#token-input")))
		b.do("enter a wrong token", chromedp.SendKeys(css("#token-input"), "not-the-token"), chromedp.Click(css("#token-form button[type=submit]")))
		b.until("the 401 message", `!document.querySelector('#banner').hidden && /401/.test(document.querySelector('#banner').textContent)`, 10*time.Second)
		b.do("enter the admin token", chromedp.WaitVisible(css("#token-input")), chromedp.SendKeys(css("#token-input"), pl.p.AdminToken),
			chromedp.Click(css("#token-form button[type=submit]")))
		b.until("the token accepted", `document.querySelector('#banner').hidden && document.querySelector('#token-panel').hidden &&
			document.querySelector('#token-label').textContent === 'Admin token set'`, 10*time.Second)
		if stored := eval[string](b, `localStorage.getItem('loadtest.adminToken')`); stored != pl.p.AdminToken {
			t.Errorf("token kept in localStorage: %q", stored)
		}
	})

	step("validation errors land next to their fields, rows included", func(t *testing.T, b *browser) {
		b.do("fill an invalid run",
			chromedp.SetValue(css("#f-users"), "0"),
			chromedp.SetValue(css(`#f-mix\.transfer`), "0.5"),
			chromedp.SetValue(css("#f-name"), strings.Repeat("n", 101)),
			chromedp.Click(css("#add-threshold")),
			chromedp.Click(css("#shape-stages")),
			chromedp.Click(css("#add-stage")))
		b.setRow("threshold-rows", 0, map[string]any{"metric": "p99_ms", "value": ""}) // a latency threshold needs its max
		b.setRow("stage-rows", 0, map[string]any{"duration_s": 2, "rate": 40})
		b.setRow("stage-rows", 1, map[string]any{"duration_s": 2, "rate": -5})
		b.do("submit", chromedp.Click(css("#start-run")))
		b.until("the validation errors", `document.querySelector('#e-users').textContent !== '' && document.querySelector('#e-mix').textContent !== ''`, 10*time.Second)
		if inv := eval[string](b, `document.querySelector('#f-users').getAttribute('aria-invalid')`); inv != "true" {
			t.Errorf("users field not marked invalid (%q)", inv)
		}
		// Each row's error goes to that row, on the input the field names.
		for _, c := range []struct{ row, part, field string }{
			{"#threshold-rows > li:nth-child(1)", "value", "thresholds[0].max"},
			{"#stage-rows > li:nth-child(2)", "rate", "stages[1].rate"},
		} {
			input := c.row + ` [data-part="` + c.part + `"]`
			if eval[string](b, `document.querySelector(`+strconv.Quote(input)+`).getAttribute('aria-invalid') || ''`) != "true" {
				t.Errorf("%s: the input is not marked invalid", c.field)
			}
			if msg := b.text(c.row + " .row-error"); msg == "" {
				t.Errorf("%s: no message in its row", c.field)
			} else {
				t.Logf("%s: %q", c.field, msg)
			}
		}
		if eval[bool](b, `document.querySelector('#stage-rows > li:nth-child(1) [aria-invalid]') !== null`) {
			t.Error("the valid first stage is marked invalid")
		}
		if b.text("#e-name") == "" {
			t.Error("the 101-character name has no message")
		}
		if !eval[bool](b, `document.querySelector('#form-errors').hidden`) {
			t.Errorf("errors left without a field: %q", b.text("#form-errors"))
		}
		if got := b.text(`label[for="f-duration_s"]`); got != "Duration (s)" {
			t.Errorf("duration label %q", got)
		}
		b.checkNoWrap("the form with errors")
		b.screenshotTall("loadtest-ui-form-errors.png")
		if n := len(lt.list(t)); n != 0 {
			t.Fatalf("an invalid form started %d runs", n)
		}
	})

	step("a run from the form draws sent, answered and target live", func(t *testing.T, b *browser) {
		mainID = b.startFromForm(func() {
			b.do("fill the run",
				chromedp.SetValue(css("#f-name"), "ui main run"),
				chromedp.SetValue(css("#f-users"), "20"),
				chromedp.SetValue(css("#f-rate"), "200"),
				chromedp.SetValue(css("#f-duration_s"), "20"),
				chromedp.SetValue(css("#f-ramp_up_s"), "2"),
				chromedp.Click(css("#add-threshold")), chromedp.Click(css("#add-threshold")))
			b.setRow("threshold-rows", 0, map[string]any{"metric": "p99_ms", "value": 5000, "window_s": 2})
			b.setRow("threshold-rows", 1, map[string]any{"metric": "error_rate", "value": 0.05})
		})
		if b.text("#e-users") != "" || b.text("#e-mix") != "" {
			t.Errorf("validation messages left after a valid submit: %q %q", b.text("#e-users"), b.text("#e-mix"))
		}
		b.until("the run running", `document.querySelector('#detail').dataset.status === 'running'`, 90*time.Second)
		b.until("the start button disabled while it runs", `document.querySelector('#start-run').disabled && !document.querySelector('#start-hint').hidden`, 5*time.Second)

		b.until("two points in the throughput chart", `+document.querySelector('#chart-throughput').dataset.points >= 2`, 15*time.Second)
		first := b.points("#chart-throughput")
		b.until("more points in the throughput chart", `+document.querySelector('#chart-throughput').dataset.points > `+strconv.Itoa(first), 10*time.Second)
		if s := b.attr("#chart-throughput", "series"); s != "target,sent,answered" {
			t.Errorf("throughput series %q, want target,sent,answered", s)
		}
		if n := eval[int](b, `document.querySelectorAll('#chart-throughput > .plot path.line').length`); n < 3 {
			t.Errorf("throughput chart drew %d lines", n)
		}
		if n := b.points("#chart-inflight"); n < 2 {
			t.Errorf("in-flight chart drew %d points", n)
		}
		if s := b.attr("#chart-latency", "series"); s != "p50,p90,p95,p99,max" {
			t.Errorf("latency series %q", s)
		}
		if y := b.text("#chart-throughput > .plot .axis-title"); y != "requests/s" {
			t.Errorf("throughput axis titled %q", y)
		}
		if x := eval[float64](b, `+document.querySelector('#chart-throughput').dataset.xmax`); x < 20 {
			t.Errorf("the time axis ends at %v s, before the scheduled end", x)
		}
		if r := lt.run(t, mainID); r.Status != loadtest.StatusRunning || r.Name != "ui main run" {
			t.Fatalf("the API says %s (name %q) while the UI shows running", r.Status, r.Name)
		}
		b.until("the run in the list with its name", `document.querySelector('#runs-body tr[data-id="`+mainID+`"] .status')?.textContent === 'running' &&
			document.querySelector('#runs-body tr[data-id="`+mainID+`"] .run-name')?.textContent === 'ui main run'`, 10*time.Second)
	})

	step("thresholds show what was observed while running", func(t *testing.T, b *browser) {
		b.until("the windowed threshold judged", `document.querySelector('#thresholds-table tr[data-index="0"]')?.dataset.passed === 'true' &&
			/ms$/.test(document.querySelector('#thresholds-table tr[data-index="0"] .observed').textContent)`, 20*time.Second)
		if p := b.attr(`#thresholds-table tr[data-index="1"]`, "passed"); p != "null" {
			t.Errorf("the whole-run threshold is judged (%s) before the end", p)
		}
		t.Logf("thresholds: %q", b.text("#thresholds-table tbody"))
	})

	step("the rate changes while running and the target follows", func(t *testing.T, b *browser) {
		b.do("set the rate to 100/s", chromedp.SetValue(css("#rate-input"), "100"), chromedp.Click(css("#rate-apply")))
		b.until("the chart's target at 100/s", `document.querySelector('#chart-throughput').dataset.lastTarget === '100'`, 15*time.Second)
		if r := lt.run(t, mainID); r.TargetRate != 100 {
			t.Errorf("the API's target rate is %v after the change", r.TargetRate)
		}
		if m := b.text("#detail .message"); !strings.Contains(m, "100/s") {
			t.Errorf("no confirmation of the new rate: %q", m)
		}
		b.checkNoWrap("the live run")
		b.screenshot("loadtest-ui-running.png")
	})

	step("a stopped run is verified and not shown as passed", func(t *testing.T, b *browser) {
		b.do("stop the run", chromedp.Click(css("#stop-run")), chromedp.WaitVisible(css("#confirm-dialog[open]")), chromedp.Click(css("#confirm-ok")))
		b.until("the run stopped", `document.querySelector('#detail').dataset.status === 'stopped'`, 30*time.Second)
		if h := b.text("#detail .history"); !strings.Contains(h, "running → stopped") {
			t.Errorf("status history %q lacks the transition to stopped", h)
		}
		b.until("the run verified", `document.querySelector('#detail').dataset.phase === 'done' && !!document.querySelector('#verification-checks')`, 2*time.Minute)
		stopped := lt.run(t, mainID)
		if stopped.Status != loadtest.StatusStopped || stopped.Verification == nil {
			t.Fatalf("the API says %s, verification %+v", stopped.Status, stopped.Verification)
		}
		v := stopped.Verification
		for check, want := range map[string]bool{"balanced": v.Balanced, "balances_match": v.BalancesMatch, "unresolved": v.Unresolved == 0} {
			if got := b.attr(`#verification-checks li[data-check="`+check+`"]`, "ok"); got != strconv.FormatBool(want) {
				t.Errorf("verification check %s shown as %s, the API says %v", check, got, want)
			}
		}
		if verdict := b.text("#detail .verdict"); strings.Contains(verdict, "All checks passed") != v.OK {
			t.Errorf("verdict %q, the API says ok=%v (problems %v)", verdict, v.OK, v.Problems)
		}
		if res := b.attr("#detail .result", "result"); res == "pass" {
			t.Errorf("a stopped run shown as passed")
		}
		b.until("the list showing it stopped", `document.querySelector('#runs-body tr[data-id="`+mainID+`"] .status')?.textContent === 'stopped'`, 10*time.Second)
		b.until("the start button enabled again", `!document.querySelector('#start-run').disabled`, 10*time.Second)
		b.screenshot("loadtest-ui-stopped.png")
	})

	step("an aborted run shows the threshold that ended it", func(t *testing.T, b *browser) {
		abortedID = b.startFromForm(func() {
			b.do("fill the run",
				chromedp.SetValue(css("#f-name"), "ui abort"),
				chromedp.SetValue(css("#f-users"), "5"),
				chromedp.SetValue(css("#f-rate"), "50"),
				chromedp.SetValue(css("#f-duration_s"), "10"),
				chromedp.Click(css("#add-threshold")))
			b.setRow("threshold-rows", 0, map[string]any{"metric": "p50_ms", "value": 0.001, "window_s": 1, "abort": true})
		})
		b.until("the run aborted and done", `document.querySelector('#detail').dataset.status === 'aborted' && document.querySelector('#detail').dataset.phase === 'done'`, 2*time.Minute)
		r := lt.run(t, abortedID)
		if r.Status != loadtest.StatusAborted || r.AbortReason == "" {
			t.Fatalf("the API says %s, reason %q", r.Status, r.AbortReason)
		}
		if got := b.text("#abort-reason"); !strings.Contains(got, r.AbortReason) {
			t.Errorf("abort banner %q lacks the reason %q", got, r.AbortReason)
		}
		if res := b.attr("#detail .result", "result"); res != "aborted" {
			t.Errorf("result badge %q, want aborted", res)
		}
		if p := b.attr(`#thresholds-table tr[data-index="0"]`, "passed"); p != "false" {
			t.Errorf("the aborting threshold shown as passed=%s", p)
		}
		b.until("the list showing it aborted", `document.querySelector('#runs-body tr[data-id="`+abortedID+`"] .result')?.dataset.result === 'aborted'`, 10*time.Second)
		b.screenshot("loadtest-ui-aborted.png")
	})

	step("a stages run from the form completes and passes", func(t *testing.T, b *browser) {
		stagesID = b.startFromForm(func() {
			b.do("fill the run",
				chromedp.SetValue(css("#f-name"), "ui stages"),
				chromedp.SetValue(css("#f-users"), "5"),
				chromedp.Click(css("#shape-stages")),
				chromedp.Click(css("#add-stage")),
				chromedp.Click(css("#add-threshold")), chromedp.Click(css("#add-threshold")))
			b.setRow("stage-rows", 0, map[string]any{"duration_s": 2, "rate": 40})
			b.setRow("stage-rows", 1, map[string]any{"duration_s": 3, "rate": 40})
			b.setRow("threshold-rows", 0, map[string]any{"metric": "achieved_ratio", "value": 0.9})
			b.setRow("threshold-rows", 1, map[string]any{"metric": "p99_ms", "value": 10000, "window_s": 2})
			if l := b.text(`#threshold-rows > li:nth-child(1) label[for$="-value"]`); l != "Min (0–1)" {
				t.Errorf("achieved_ratio's bound labelled %q", l)
			}
			b.checkNoWrap("the form with stages and thresholds")
			b.screenshotTall("loadtest-ui-form.png")
		})
		b.until("the run done", `document.querySelector('#detail').dataset.phase === 'done'`, 2*time.Minute)
		r := lt.run(t, stagesID)
		if len(r.Config.Stages) != 2 || len(r.Thresholds) != 2 || r.Status != loadtest.StatusCompleted {
			t.Fatalf("the API says %s with stages %+v and thresholds %+v", r.Status, r.Config.Stages, r.Thresholds)
		}
		pass := r.Verification != nil && r.Verification.OK && len(loadtest.Broken(r)) == 0 && r.ErrorRate <= 0.01
		if got := b.attr("#detail .result", "result"); (got == "pass") != pass {
			t.Errorf("result badge %q; the API says verification %+v, broken %v, error rate %v", got, r.Verification, loadtest.Broken(r), r.ErrorRate)
		}
		if !pass {
			t.Fatalf("the stages run did not pass: %+v", r)
		}
		if hidden := eval[bool](b, `document.querySelector('#behind-banner').hidden`); hidden == r.Behind {
			t.Errorf("behind banner hidden=%v, the API says behind=%v (%s)", hidden, r.Behind, r.BehindDetail)
		}
		b.until("the list showing it passed", `document.querySelector('#runs-body tr[data-id="`+stagesID+`"] .result')?.dataset.result === 'pass'`, 10*time.Second)
		b.until("the distribution drawn", `+document.querySelector('#chart-distribution').dataset.points >= 5`, 10*time.Second)
		b.screenshot("loadtest-ui-finished.png")
	})

	step("a finished run's charts: distribution on a nines axis, percentiles, errors by code", func(t *testing.T, b *browser) {
		var hist struct{ Percentiles []loadgen.Percentile }
		lt.api.Must(t, http.StatusOK, "GET", "/runs/"+stagesID+"/histogram", nil).JSON(t, &hist)
		if n := b.points("#chart-distribution"); n != len(hist.Percentiles) {
			t.Errorf("distribution drew %d points of %d", n, len(hist.Percentiles))
		}
		if ticks := b.attr("#chart-distribution", "xticks"); !strings.HasPrefix(ticks, "0,90,99,99.9,") || !strings.HasSuffix(ticks, ",max") {
			t.Errorf("distribution x axis %q, want nines: 0,90,99,99.9,…,max", ticks)
		}
		var ts struct{ Points []loadgen.Point }
		lt.api.Must(t, http.StatusOK, "GET", "/runs/"+stagesID+"/timeseries", nil).JSON(t, &ts)
		if n := b.points("#chart-throughput"); n != len(ts.Points) {
			t.Errorf("throughput drew %d points of %d", n, len(ts.Points))
		}
		if x := eval[float64](b, `+document.querySelector('#chart-throughput').dataset.xmax`); x < float64(len(ts.Points)) {
			t.Errorf("time axis ends at %v, before the last of %d points", x, len(ts.Points))
		}
		if !eval[bool](b, `!!document.querySelector('#chart-errors svg')`) {
			t.Error("no errors-by-code chart")
		}
		if y := b.text("#chart-latency .axis-title"); y != "ms" {
			t.Errorf("latency axis titled %q", y)
		}
	})

	step("latencies are in ms throughout and labels fit on one line", func(t *testing.T, b *browser) {
		for in, want := range map[string]string{`fmtMs(11700)`: "11,700 ms", `fmtMs(6996.4)`: "6,996 ms", `fmtMs(0.412)`: "0.412 ms"} {
			if got := eval[string](b, in); got != want {
				t.Errorf("%s = %q, want %q", in, got, want)
			}
		}
		bad := eval[[]string](b, `[...document.querySelectorAll('#detail .summary tr')].filter((tr) => /Latency|lag/.test(tr.textContent))
			.map((tr) => tr.querySelector('td').textContent).filter((v) => !/^[\d,.]+ ms$/.test(v))`)
		if len(bad) > 0 {
			t.Errorf("latencies not in ms: %q", bad)
		}
		if p99 := b.text("#detail .kpi:nth-child(5) dd"); !strings.Contains(p99, " ms") {
			t.Errorf("p99 shown as %q", p99)
		}
		b.checkNoWrap("a finished run")
	})

	step("downloads: JSON, CSV and the HTML report", func(t *testing.T, b *browser) {
		dir := t.TempDir()
		if _, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
			t.Fatalf("allow downloads: %v", err)
		}
		b.do("download all three", chromedp.Click(css("#dl-json")), chromedp.Click(css("#dl-csv")), chromedp.Click(css("#dl-report")))
		var ts struct{ Points []loadgen.Point }
		lt.api.Must(t, http.StatusOK, "GET", "/runs/"+stagesID+"/timeseries", nil).JSON(t, &ts)

		var doc struct {
			Run        loadtest.Run
			Timeseries []loadgen.Point
		}
		if err := json.Unmarshal(waitFile(t, dir, "loadtest-"+stagesID+".json", 20*time.Second), &doc); err != nil {
			t.Errorf("the JSON download: %v", err)
		} else if doc.Run.ID != stagesID || len(doc.Timeseries) != len(ts.Points) || doc.Run.Config.Seed == 0 {
			t.Errorf("the JSON download holds run %s (seed %d) with %d points, want %s with %d", doc.Run.ID, doc.Run.Config.Seed, len(doc.Timeseries), stagesID, len(ts.Points))
		}
		recs, err := csv.NewReader(strings.NewReader(string(waitFile(t, dir, "loadtest-"+stagesID+"-timeseries.csv", 20*time.Second)))).ReadAll()
		if err != nil || len(recs) != len(ts.Points)+1 || strings.Join(recs[0][:5], ",") != "second,t,sent,answered,in_flight" {
			t.Errorf("the CSV download: %d records (want %d), header %v, err %v", len(recs), len(ts.Points)+1, recs[:min(1, len(recs))], err)
		}
		report := string(waitFile(t, dir, "loadtest-"+stagesID+".html", 20*time.Second))
		if !strings.Contains(strings.ToLower(report), "<html") || !strings.Contains(report, stagesID) {
			t.Errorf("the report download is not the run's report: %.200s", report)
		}
	})

	step("behind schedule: the service's explanation, and the chart runs past the end", func(t *testing.T, b *browser) {
		// One connection at 1,000/s cannot keep up: the sends run late, past the scheduled end.
		r := apiRun(t, lt, map[string]any{"name": "ui behind", "users": 2, "rate": 1000, "duration_s": 2, "connections": 1,
			"mix": map[string]float64{"deposit": 1}, "thresholds": []map[string]any{{"metric": "achieved_ratio", "min": 0.99}}})
		if !r.Behind || r.BehindDetail == "" {
			t.Fatalf("the run kept up (achieved %.1f of %.1f/s): nothing to test", r.AchievedRate, r.ScheduledRate)
		}
		b.open(r.ID)
		b.until("the behind banner", `!document.querySelector('#behind-banner').hidden`, 10*time.Second)
		if got := b.text("#behind-banner"); !strings.Contains(got, r.BehindDetail) {
			t.Errorf("behind banner %q lacks the service's detail %q", got, r.BehindDetail)
		}
		var ts struct{ Points []loadgen.Point }
		lt.api.Must(t, http.StatusOK, "GET", "/runs/"+r.ID+"/timeseries", nil).JSON(t, &ts)
		b.until("every point drawn", `+document.querySelector('#chart-throughput').dataset.points === `+strconv.Itoa(len(ts.Points)), 10*time.Second)
		if len(ts.Points) <= 2 {
			t.Errorf("%d points: the run did not run past its 2 s", len(ts.Points))
		}
		if x := eval[float64](b, `+document.querySelector('#chart-throughput').dataset.xmax`); x < float64(len(ts.Points)) {
			t.Errorf("time axis ends at %v s, before the last of %d points", x, len(ts.Points))
		}
		if m := b.text("#chart-throughput > .plot .marker"); m != "scheduled end" {
			t.Errorf("scheduled end marker %q", m)
		}
		// A completed run whose threshold broke, or with many errors, is no pass.
		if res := b.attr("#detail .result", "result"); res != "fail" {
			t.Errorf("result %q for a run whose threshold broke (%v)", res, loadtest.Broken(r))
		}
		for in, want := range map[string]string{
			`outcome({status: 'completed', phase: 'done', error_rate: 0.2, verification: {ok: true}, thresholds: []}).key`:   "fail",
			`outcome({status: 'completed', phase: 'done', error_rate: 0, verification: {ok: false}, thresholds: []}).key`:    "fail",
			`outcome({status: 'completed', phase: 'done', error_rate: 0.001, verification: {ok: true}, thresholds: []}).key`: "pass",
		} {
			if got := eval[string](b, in); got != want {
				t.Errorf("%s = %q, want %q", in, got, want)
			}
		}
		b.screenshot("loadtest-ui-behind.png")
	})

	step("the comparison is the service's, and a healthy ramp shows no shortfall", func(t *testing.T, b *browser) {
		base := apiRun(t, lt, map[string]any{"name": "ui base", "users": 5, "rate": 40, "duration_s": 4})
		baseID = base.ID
		b.do("refresh the list", chromedp.Click(css("#refresh-btn")))
		b.until("the base listed", `!!document.querySelector('#runs-body tr[data-id="`+baseID+`"]')`, 10*time.Second)
		b.do("pick the base, then the stages run",
			chromedp.Click(css(`#runs-body tr[data-id="`+baseID+`"] .pick`)),
			chromedp.Click(css(`#runs-body tr[data-id="`+stagesID+`"] .pick`)))
		b.until("the compare button enabled", `!document.querySelector('#compare-btn').disabled`, 5*time.Second)
		b.do("compare", chromedp.Click(css("#compare-btn")))
		b.until("the comparison", `document.querySelectorAll('#compare-metrics tbody tr').length > 0 && +document.querySelector('#compare-throughput').dataset.points > 0`, 15*time.Second)
		var cmp loadtest.Comparison
		lt.api.Must(t, http.StatusOK, "GET", "/runs/"+stagesID+"/compare/"+baseID, nil).JSON(t, &cmp)
		for _, m := range cmp.Metrics {
			if !eval[bool](b, `!!document.querySelector('#compare-metrics tr[data-metric="`+m.Name+`"]')`) {
				t.Errorf("metric %s of the service's comparison not shown", m.Name)
			}
			// The ramp achieves less than the constant rate, as scheduled: that is no shortfall.
			if m.Name == "achieved_ratio" || m.Name == "achieved_rate" {
				judged := b.attr(`#compare-metrics tr[data-metric="`+m.Name+`"]`, "judged")
				t.Logf("%s: stages %.4g, base %.4g (service: worse=%v); shown as %s", m.Name, m.Run, m.Base, m.Worse, judged)
				if stages := lt.run(t, stagesID); stages.AchievedRatio() >= 0.99 && judged == "worse" {
					t.Errorf("a healthy ramp (achieved %.1f %% of its schedule) shown with %s worse", 100*stages.AchievedRatio(), m.Name)
				}
			}
		}
		diffs := eval[[]string](b, `[...document.querySelectorAll('#compare-setup tr.diff th')].map((th) => th.textContent)`)
		for _, want := range []string{"Name", "Load shape", "Thresholds"} {
			if !strings.Contains(strings.Join(diffs, "|"), want) {
				t.Errorf("the setup comparison does not highlight %q; highlighted: %v", want, diffs)
			}
		}
		b.checkNoWrap("the comparison")
		b.screenshot("loadtest-ui-compare.png")
	})

	step("deleting test data shows its steps and survives a reload", func(t *testing.T, b *browser) {
		// A user row locked by the test holds the purge at its last step, long enough to
		// reload the page while the job runs.
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, pl.p.DirectURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		var locked string
		if err := tx.QueryRow(ctx, `SELECT id::text FROM users WHERE tags @> ARRAY[$1] LIMIT 1 FOR UPDATE`, mainID).Scan(&locked); err != nil {
			t.Fatalf("lock a user of the run: %v", err)
		}
		b.open(mainID)
		b.until("the run's page settled", `document.querySelector('#detail').dataset.phase === 'done' && !document.querySelector('#delete-data').disabled`, 10*time.Second)
		b.do("delete the data", chromedp.Click(css("#delete-data")), chromedp.WaitVisible(css("#confirm-dialog[open]")), chromedp.Click(css("#confirm-ok")))
		b.until("the purge step shown", `document.querySelector('#cleanup-status').dataset.status === 'running' && /purging/.test(document.querySelector('#cleanup-status').textContent)`, 30*time.Second)
		b.do("reload the page", chromedp.Reload())
		b.until("the deletion still shown after the reload", `document.querySelector('#cleanup-status')?.dataset.status === 'running' &&
			/Deleting the test data… purging/.test(document.querySelector('#cleanup-status').textContent) &&
			document.querySelector('#runs-body tr[data-id="`+mainID+`"] .data-state')?.dataset.state === 'deleting'`, 15*time.Second)
		t.Logf("after the reload: %q; list: %q", b.text("#cleanup-status"), b.text(`#runs-body tr[data-id="`+mainID+`"] .data-state`))
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		b.until("the deletion done", `document.querySelector('#cleanup-status').dataset.status === 'done' && /deleted.*: 20 users/.test(document.querySelector('#cleanup-status').textContent) &&
			document.querySelector('#runs-body tr[data-id="`+mainID+`"] .data-state')?.dataset.state === 'deleted'`, time.Minute)
		if ids := runUserIDs(t, pl, mainID); len(ids) != 0 {
			t.Errorf("%d of the run's users left after the UI deleted its data", len(ids))
		}
		if r := lt.run(t, mainID); r.Cleanup == nil || r.Cleanup.Status != loadtest.CleanupDone || r.Cleanup.Users != 20 {
			t.Errorf("the API's cleanup: %+v", r.Cleanup)
		}
	})

	step("a failed deletion shows its error", func(t *testing.T, b *browser) {
		// A transfer from an untagged user to one of the run's makes the purge refuse.
		var accounts struct {
			Data []struct{ ID string }
		}
		users := runUserIDs(t, pl, baseID)
		if len(users) == 0 {
			t.Fatal("the base run has no users")
		}
		pl.admin.Must(t, http.StatusOK, "GET", "/users/"+users[0]+"/accounts", nil).JSON(t, &accounts)
		outsider := pl.admin.CreateUser(t, "outsider")
		from := pl.admin.CreateAccount(t, outsider.ID, "USD")
		pl.admin.Deposit(t, from, 1000, "USD")
		pl.admin.Must(t, http.StatusCreated, "POST", "/transactions", map[string]any{"type": "transfer", "from_account_id": from,
			"to_account_id": accounts.Data[0].ID, "amount": 10, "currency": "USD"})
		b.open(baseID)
		b.until("the run's page settled", `!document.querySelector('#delete-data').disabled`, 10*time.Second)
		b.do("delete the data", chromedp.Click(css("#delete-data")), chromedp.WaitVisible(css("#confirm-dialog[open]")), chromedp.Click(css("#confirm-ok")))
		b.until("the failure shown", `document.querySelector('#cleanup-status').dataset.status === 'failed'`, time.Minute)
		r := lt.run(t, baseID)
		if r.Cleanup == nil || r.Cleanup.Status != loadtest.CleanupFailed {
			t.Fatalf("the API's cleanup: %+v", r.Cleanup)
		}
		if got := b.text("#cleanup-status"); !strings.Contains(got, r.Cleanup.Error) {
			t.Errorf("failure %q lacks the error %q", got, r.Cleanup.Error)
		}
		if got := b.text("#delete-data"); got != "Retry deletion" {
			t.Errorf("delete button says %q after a failure", got)
		}
		b.until("the list showing the failure", `document.querySelector('#runs-body tr[data-id="`+baseID+`"] .data-state')?.dataset.state === 'failed'`, 10*time.Second)
	})

	step("errors by code over time: a line per code", func(t *testing.T, b *browser) {
		// Withdrawals of up to 50 from balances of 20 are soon refused for want of funds.
		r := apiRun(t, lt, map[string]any{"name": "ui refusals", "users": 2, "rate": 20, "duration_s": 2,
			"mix": map[string]float64{"withdrawal": 1}, "initial_balance": 20, "max_amount": 50})
		if r.Errors["insufficient_funds"] == 0 {
			t.Fatalf("no refusals to show: errors %v", r.Errors)
		}
		b.open(r.ID)
		b.until("the refusals drawn", `(document.querySelector('#chart-errors').dataset.series || '').split(',').includes('insufficient_funds')`, 10*time.Second)
		if legend := b.text("#chart-errors .legend"); !strings.Contains(legend, "insufficient_funds (rule)") {
			t.Errorf("errors legend %q", legend)
		}
		// Refusals are a business rule's answer, not errors: the run still passes.
		if res := b.attr("#detail .result", "result"); res != "pass" {
			t.Errorf("result %q for a run with only refusals (error rate %v)", res, r.ErrorRate)
		}
		b.screenshot("loadtest-ui-refusals.png")
	})

	step("the list shows every run with its name, date, duration, result and data", func(t *testing.T, b *browser) {
		for i := range 2 {
			apiRun(t, lt, map[string]any{"name": fmt.Sprintf("ui quick %d", i), "users": 1, "rate": 5, "duration_s": 1,
				"mix": map[string]float64{"deposit": 1}})
		}
		all := lt.list(t)
		b.do("refresh the list", chromedp.Click(css("#refresh-btn")))
		b.until("every run listed", `document.querySelectorAll('#runs-body tr').length === `+strconv.Itoa(len(all)), 10*time.Second)
		// Rows drawn from a poll taken while the last run was ending fill in on the next one.
		b.until("every run listed with its duration", `[...document.querySelectorAll('#runs-body tr td:nth-child(4)')].every((td) => td.textContent.trim().endsWith(' s'))`, 15*time.Second)
		if len(all) < 8 {
			t.Fatalf("only %d runs", len(all))
		}
		visible := eval[int](b, `(() => { const w = document.querySelector('.runs-wrap').getBoundingClientRect();
			return [...document.querySelectorAll('#runs-body tr')].filter((tr) => tr.getBoundingClientRect().bottom <= w.bottom + 1).length; })()`)
		if visible < 8 {
			t.Errorf("only %d of %d rows visible without scrolling", visible, len(all))
		}
		for _, r := range all {
			row := `#runs-body tr[data-id="` + r.ID + `"]`
			if r.Name != "" && b.text(row+" .run-name") != r.Name {
				t.Errorf("run %s listed as %q, named %q", r.ID, b.text(row+" .run-name"), r.Name)
			}
			if eval[string](b, `document.querySelector('`+row+` time')?.getAttribute('datetime') ?? ''`) == "" {
				t.Errorf("run %s listed without its start", r.ID)
			}
			if d := b.text(row + " td:nth-child(4)"); !strings.HasSuffix(d, " s") {
				t.Errorf("run %s listed with duration %q", r.ID, d)
			}
			if b.attr(row+" .result", "result") == "missing" {
				t.Errorf("run %s listed without a result", r.ID)
			}
		}
		for id, want := range map[string]string{mainID: "deleted", baseID: "failed", abortedID: "kept"} {
			if got := b.attr(`#runs-body tr[data-id="`+id+`"] .data-state`, "state"); got != want {
				t.Errorf("run %s's data listed as %s, want %s", id, got, want)
			}
		}
		// All of them fit on the first page: no "older runs" to load.
		if !eval[bool](b, `document.querySelector('#runs-more').hidden`) {
			t.Error("the list offers older runs where there are none")
		}
		if got := eval[string](b, `fmtWhen(Date.now() - 40 * 86400e3)`); !strings.ContainsAny(got, "-JFMASOND") {
			t.Errorf("a run of 40 days ago listed at %q, without its date", got)
		}
		b.js("scroll to the top", `window.scrollTo(0, 0)`)
		b.checkNoWrap("the list")
		b.screenshot("loadtest-ui-list.png")
		b.checkNoExceptions()
	})
}
