package app_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

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
		"--mix", "transfer=0.8,deposit=0.1,withdrawal=0.1")
	t.Logf("stdout:\n%s", out)
	if code != 1 || !strings.Contains(out, "FAIL: p99 latency") || strings.Contains(out, "verify    FAILED") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
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
		"--ramp-up", "1s", "--max-p99", "60s", "--max-error-rate", "1%", "--min-achieved-ratio", "0.1", "--keep", "--json")
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
	var users struct{ Data []any }
	p.Client(p.AdminToken).Must(t, 200, "GET", "/users?tag="+run.ID, nil).JSON(t, &users)
	if len(users.Data) != 10 {
		t.Errorf("--keep kept %d users, want 10", len(users.Data))
	}
}

func TestCLIUsage(t *testing.T) {
	p := testenv.StartProcessor(t, nil)
	for _, args := range [][]string{{"--users", "0"}, {"--mix", "transfer=2"}, {"--max-error-rate", "5"}, {"--bogus"}} {
		if code, _, errOut := runCLI(t, p, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errOut)
		}
	}
}
