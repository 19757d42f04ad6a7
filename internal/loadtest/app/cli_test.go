package app_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"txn/internal/loadtest"
	"txn/internal/testenv"
)

// runCLI runs the loadtest binary's CLI against p and returns its exit code and output.
func runCLI(t *testing.T, p *testenv.Processor, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t, "loadtest"), append([]string{"run"}, args...)...)
	cmd.Env = append(cmd.Environ(), "PROCESSOR_URL="+p.URL, "TXN_ADMIN_TOKEN="+p.AdminToken)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out.String(), errOut.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

func TestCLIExitsNonZeroWhenAThresholdBreaks(t *testing.T) {
	p := testenv.StartProcessor(t, nil)
	code, out, errOut := runCLI(t, p, "--users", "20", "--rate", "200", "--duration", "2s", "--max-p99", "0.001ms",
		"--mix", "transfer=0.7,deposit=0.1,withdrawal=0.1,hold=0.1")
	t.Logf("stdout:\n%s", out)
	if code != 1 || !strings.Contains(out, "FAIL: threshold p99_ms < 0.001: observed") || !strings.Contains(out, "verification .... ok") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if !regexp.MustCompile(`holds \.+ [1-9][\d,]* created: [\d,]+ captured \([\d,]+ moved\), [\d,]+ voided, 0 expired, 0 left pending \(0 reserved\)`).MatchString(out) {
		t.Errorf("the summary does not say what became of the holds")
	}
	if !strings.Contains(out, "✗ p99_ms < 0.001") || strings.Contains(out, "PASS") {
		t.Errorf("the summary does not list the broken threshold, or says PASS")
	}
	// The run's data is purged unless --keep.
	var users struct{ Data []any }
	if !strings.Contains(out, "purged 20 users, 20 accounts") {
		t.Errorf("no cleanup in the summary")
	}
	p.Client(p.AdminToken).Must(t, 200, "GET", "/users?tag=loadtest", nil).JSON(t, &users)
	if len(users.Data) != 0 {
		t.Errorf("%d loadtest users left", len(users.Data))
	}
}

func TestCLIPassesAndKeeps(t *testing.T) {
	p := testenv.StartProcessor(t, nil)
	code, out, errOut := runCLI(t, p, "--users", "10", "--accounts-per-user", "2", "--rate", "100", "--duration", "2s",
		// Thresholds no healthy run breaks, however busy the machine: timings are for benchmarks.
		"--ramp-up", "1s", "--max-p99", "60s", "--max-error-rate", "1%", "--min-achieved-ratio", "0.1", "--keep", "--json",
		"--mix", "transfer=0.4,deposit=0.1,withdrawal=0.1,read=0.2,hold=0.2")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	var run loadtest.Run
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if run.Status != loadtest.StatusCompleted || run.Scheduled != 150 || run.Sent != 150 || run.Verification == nil ||
		!run.Verification.OK || run.Verification.EventsInAnalytics != nil || run.Cleanup != nil {
		t.Errorf("run: %s", out)
	}
	done := map[string]uint64{}
	for _, g := range run.ByOp {
		if g.Op == loadtest.OpRead || g.Op == loadtest.OpHold {
			if g.Outcome != "ok" {
				t.Errorf("%ss ended %s: %d", g.Op, g.Outcome, g.Count)
			}
			done[g.Op] += g.Count
		}
	}
	if done[loadtest.OpRead] == 0 || done[loadtest.OpHold] == 0 {
		t.Errorf("no read or no hold in a mix with 20 %% of each: %+v", run.ByOp)
	}
	// Each hold operation (a hold and its capture or void) is one request of the schedule.
	if h := run.Verification.Holds; h == nil || uint64(h.Created) != done[loadtest.OpHold] || h.Captured+h.Voided != h.Created ||
		h.Pending != 0 || h.Held != 0 {
		t.Errorf("holds %+v after %d hold operations", h, done[loadtest.OpHold])
	}
	if len(run.Thresholds) != 3 {
		t.Fatalf("--json holds %d thresholds, want 3", len(run.Thresholds))
	}
	for _, th := range run.Thresholds {
		if th.Passed == nil || !*th.Passed || th.Observed == nil {
			t.Errorf("threshold %s: passed %v, observed %v; want judged and passed", th, th.Passed, th.Observed)
		}
	}
	var users struct{ Data []any }
	p.Client(p.AdminToken).Must(t, 200, "GET", "/users?tag="+run.ID, nil).JSON(t, &users)
	if len(users.Data) != 10 {
		t.Errorf("--keep kept %d users, want 10", len(users.Data))
	}
}

func TestCLIUsage(t *testing.T) {
	p := testenv.StartProcessor(t, nil)
	for _, args := range [][]string{{"--users", "0"}, {"--mix", "transfer=2"}, {"--max-error-rate", "5"}, {"--bogus"},
		{"--threshold", "p99_ms>5"}, {"--threshold", "p99_ms<5,window=1h"}, {"--stage", "10s"}, {"--stage", "1s:10", "--ramp-up", "1s"}} {
		if code, _, errOut := runCLI(t, p, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errOut)
		}
	}
}

func TestCLIFailedRun(t *testing.T) {
	p := testenv.StartProcessor(t, nil)
	cmd := exec.Command(testenv.Binary(t, "loadtest"), "run", "--users", "2", "--rate", "10", "--duration", "1s")
	cmd.Env = append(cmd.Environ(), "PROCESSOR_URL="+p.URL, "TXN_ADMIN_TOKEN=not-the-token")
	out, _ := cmd.Output()
	t.Run("a run that cannot prepare exits 3", func(t *testing.T) {
		if code := cmd.ProcessState.ExitCode(); code != 3 {
			t.Errorf("exit %d, want 3", code)
		}
	})
	t.Run("its summary says why and never PASS", func(t *testing.T) {
		if !strings.Contains(string(out), "FAIL: the run failed: preparation failed") || strings.Contains(string(out), "PASS") {
			t.Errorf("summary:\n%s", out)
		}
	})
}

func TestCLIAbortStagesAndReport(t *testing.T) {
	p := testenv.StartProcessor(t, nil)
	report := filepath.Join(t.TempDir(), "run.html")
	// A latency nobody reaches, judged over 1-second windows with abort: the run ends after
	// its first whole second of 4.
	code, out, errOut := runCLI(t, p, "--users", "10", "--stage", "1s:100", "--stage", "3s:100",
		"--threshold", "p50_ms<0.001,window=1s,abort", "--report", report, "--json")
	var run loadtest.Run
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatalf("%v: %s\n%s", err, out, errOut)
	}
	t.Run("a broken abort threshold ends the run as aborted, exit 1", func(t *testing.T) {
		if code != 1 || run.Status != loadtest.StatusAborted || !strings.Contains(run.AbortReason, "p50_ms < 0.001 over 1 s") {
			t.Errorf("exit %d, status %s, abort reason %q", code, run.Status, run.AbortReason)
		}
		if run.Sent >= run.Scheduled || run.EndedAt.Sub(*run.StartedAt) > 3*time.Second {
			t.Errorf("sent %d of %d in %v: the run was not cut short", run.Sent, run.Scheduled, run.EndedAt.Sub(*run.StartedAt))
		}
	})
	t.Run("an aborted run is still verified", func(t *testing.T) {
		if v := run.Verification; v == nil || !v.OK {
			t.Errorf("verification %+v", run.Verification)
		}
	})
	t.Run("stages give the rate and duration", func(t *testing.T) {
		if run.Config.Rate != 100 || run.Config.DurationS != 4 || run.Scheduled != 350 {
			t.Errorf("rate %v, duration %v, scheduled %d; want 100, 4, 350", run.Config.Rate, run.Config.DurationS, run.Scheduled)
		}
	})
	t.Run("the report is written, self-contained", func(t *testing.T) {
		b, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		html := string(b)
		if !strings.Contains(html, run.ID) || !strings.Contains(html, "<svg") || strings.Contains(html, "http://") ||
			strings.Contains(html, "https://") || strings.Contains(html, "<script") {
			t.Errorf("report of %d bytes is not a self-contained page for the run", len(b))
		}
	})
}
