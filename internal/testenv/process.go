package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

// Binary builds ./cmd/<name> once per test process and returns its path.
func Binary(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "txn-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir
	}
	out := filepath.Join(buildDir, name)
	// Built as scripts/gobuild.sh builds (the Dockerfile's way), so the tests share its compiled packages.
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "txn/cmd/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	built[name] = out
	return out
}

// FreeAddr returns a loopback address nothing listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proc is a service running as its own process, so tests can kill it as a crash would.
type Proc struct {
	t    testing.TB
	name string
	bin  string
	args []string
	env  []string
	log  *os.File
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartProc starts ./cmd/<name> with env (KEY=VALUE) added to this process's environment;
// its output goes to a log file kept in the test's temp dir. It is stopped at cleanup.
func StartProc(t testing.TB, name string, env ...string) *Proc {
	t.Helper()
	return StartCommand(t, name, nil, env...)
}

// StartCommand is StartProc with command-line arguments.
func StartCommand(t testing.TB, name string, args []string, env ...string) *Proc {
	t.Helper()
	dir := os.Getenv("TEST_LOG_DIR") // keeps the services' logs after the test
	if dir == "" {
		dir = t.TempDir()
	}
	log, err := os.CreateTemp(dir, name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{t: t, name: name, bin: Binary(t, name), args: args, env: env, log: log}
	p.Start()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(log.Name()); err == nil {
				t.Logf("--- %s log (last 16 KiB):\n%s", name, tail(b, 16384))
			}
		}
	})
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Start (re)starts the process.
func (p *Proc) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
}

// Alive reports whether the process runs: started, and not stopped or killed since.
func (p *Proc) Alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Kill ends the process with SIGKILL, as a crash, and waits for it.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL) }

// Stop ends the process with SIGTERM (a graceful stop) and waits for it.
func (p *Proc) Stop() { p.signal(syscall.SIGTERM) }

func (p *Proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.t.Errorf("%s ignored %v for 20s", p.name, sig)
		}
	}
	p.cmd = nil
}

// Restart kills the process and starts it again.
func (p *Proc) Restart() {
	p.Kill()
	p.Start()
}

// WaitHTTP waits until url answers 2xx.
func WaitHTTP(t testing.TB, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := sharedHTTP.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within %s: %v", url, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Eventually polls cond until it returns "" or within passes, then fails with its last word.
func Eventually(t testing.TB, within time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %s: %s", within, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Unique returns a name no other test run uses, for topics, queues and databases.
func Unique(prefix string) string { return fmt.Sprintf("%s_%s", prefix, randomHex(5)) }
