package testenv

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Balanced is several processor processes on one database behind a private HAProxy, configured
// as `PROCESSORS=n make up` configures it (scripts/stack.sh haproxy-config).
type Balanced struct {
	Processor          // URL is the balancer's; Client(token) goes through it
	Instances []*Proc  // the processors, to kill and restart
	URLs      []string // each processor's own base URL, e.g. http://127.0.0.1:41234
}

// InstanceClient calls processor i straight, not through the balancer, with token.
func (b *Balanced) InstanceClient(i int, token string) *Client {
	return &Client{Base: b.URLs[i] + "/api/v1", Token: token, HTTP: sharedHTTP}
}

// StartBalanced starts n processors (./cmd/processor) on a fresh database and Redis prefix, with
// env added to their environment, and HAProxy in front of them; everything stops at cleanup.
// The processors run their outbox relays unless env says RELAY_ENABLED=false.
func StartBalanced(t testing.TB, n int, env ...string) *Balanced {
	t.Helper()
	if testing.Short() {
		t.Skip("starts processes of its own")
	}
	pooled, direct := Database(t)
	redisURL, prefix := Redis(t)
	b := &Balanced{Processor: Processor{AdminToken: "admin-" + randomHex(8), DirectURL: direct}}
	env = append([]string{"DATABASE_URL=" + pooled, "DATABASE_DIRECT_URL=" + direct,
		"REDIS_URL=" + redisURL, "REDIS_PREFIX=" + prefix, "TXN_ADMIN_TOKEN=" + b.AdminToken,
		"WEBHOOK_ALLOW_PRIVATE=true", "DATABASE_MAX_CONNS=8", "LOG_LEVEL=warn", "PPROF_ADDR="}, env...)
	var addrs []string
	for range n {
		addr := FreeAddr(t)
		b.Instances = append(b.Instances, StartProc(t, "processor", append([]string{"PROCESSOR_ADDR=" + addr}, env...)...))
		addrs, b.URLs = append(addrs, addr), append(b.URLs, "http://"+addr)
	}
	for _, u := range b.URLs {
		WaitHTTP(t, u+"/healthz", 60*time.Second)
	}
	listen := FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	script := filepath.Join(repoRoot(), "scripts", "stack.sh")
	out, err := exec.Command(script, append([]string{"haproxy-config", listen}, addrs...)...).Output()
	if err != nil {
		t.Fatalf("scripts/stack.sh haproxy-config: %v", err)
	}
	if err := os.WriteFile(cfg, out, 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/haproxy"); err != nil {
			t.Fatal("haproxy is not installed (scripts/stack.sh servers installs it)")
		}
	}
	log, err := os.Create(filepath.Join(t.TempDir(), "haproxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	lb := exec.Command(bin, "-db", "-f", cfg)
	lb.Stdout, lb.Stderr = log, log
	if err := lb.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() {
		_ = lb.Process.Signal(syscall.SIGTERM)
		_ = lb.Wait()
	})
	b.URL = "http://" + listen
	WaitHTTP(t, b.URL+"/healthz", 30*time.Second)
	return b
}

// MetricSum adds up the samples of the metric named name, whatever their labels, that the
// service at base serves on /metrics (e.g. http_request_duration_seconds_count: its requests);
// 0 when it serves none yet (a labelled counter before its first increment).
func MetricSum(t testing.TB, base, name string) float64 {
	t.Helper()
	resp, err := sharedHTTP.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("metrics of %s: %v", base, err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		v := rest[strings.LastIndexByte(rest, ' ')+1:]
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("metric %s of %s: %q", name, base, line)
		}
		sum += f
	}
	return sum
}

// repoRoot is the module's root directory (this file is in internal/testenv).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
