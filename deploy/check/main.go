// Command check validates the deployment files as far as a machine without a Docker engine can:
// the compose file (as resolved by `docker-compose config`), the Dockerfile's base images, the
// Prometheus scrape configuration, Grafana's provisioning, and the dashboards: JSON, layout,
// datasource references and every PromQL expression, parsed with Prometheus' own parser.
//
//	docker-compose --profile observability config >resolved.yml
//	go run . -root ../.. -compose resolved.yml
//
// scripts/check-deploy.sh runs it as part of `make test`. Metric names the dashboards use but no Go
// code under cmd/ or internal/ defines are reported as warnings (-strict-metrics makes them errors),
// and so are compose services whose cmd/<SERVICE> has no Go files yet (-strict-services).
package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

type report struct{ errs, warns []string }

func (r *report) errorf(format string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(format, a...)) }
func (r *report) warnf(format string, a ...any)  { r.warns = append(r.warns, fmt.Sprintf(format, a...)) }

func main() {
	root := flag.String("root", "../..", "repository root")
	composePath := flag.String("compose", "", "output of `docker-compose --profile observability config` (required)")
	strictMetrics := flag.Bool("strict-metrics", false, "fail when a dashboard metric is defined nowhere in the Go code")
	strictServices := flag.Bool("strict-services", false, "fail when a compose service's cmd/<SERVICE> has no Go files")
	flag.Parse()
	if *composePath == "" {
		fmt.Fprintln(os.Stderr, "check: -compose is required")
		os.Exit(2)
	}
	r := &report{}
	c := checker{root: *root, r: r, strictMetrics: *strictMetrics, strictServices: *strictServices}
	c.run(*composePath)
	for _, w := range r.warns {
		fmt.Println("WARN:", w)
	}
	for _, e := range r.errs {
		fmt.Println("FAIL:", e)
	}
	if len(r.errs) > 0 {
		fmt.Printf("deploy check: %d problem(s)\n", len(r.errs))
		os.Exit(1)
	}
}

type checker struct {
	root                          string
	r                             *report
	strictMetrics, strictServices bool
	compose                       composeFile
	datasourceUIDs                map[string]bool
}

// --- compose -------------------------------------------------------------------------------------

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       *composeBuild  `yaml:"build"`
	Command     any            `yaml:"command"`
	Environment map[string]any `yaml:"environment"`
	Volumes     []string       `yaml:"volumes"`
	Restart     string         `yaml:"restart"`
	Healthcheck *struct {
		Test    any  `yaml:"test"`
		Disable bool `yaml:"disable"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

type composeBuild struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Args       map[string]string `yaml:"args"`
}

func (s composeService) env(key string) string {
	v, ok := s.Environment[key]
	if !ok || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func (s composeService) healthy() bool { return s.Healthcheck != nil && !s.Healthcheck.Disable }

// goServices maps each compose service built from the Go services' Dockerfile (the root one)
// to its SERVICE build argument.
func (c *checker) goServices() map[string]string {
	out := map[string]string{}
	for name, s := range c.compose.Services {
		if s.Build != nil && (s.Build.Dockerfile == "" || s.Build.Dockerfile == "Dockerfile") {
			out[name] = s.Build.Args["SERVICE"]
		}
	}
	return out
}

// listens reports whether a Go service's container serves on a port: a load worker
// (`loadtest worker`) only connects out.
func (s composeService) listens() bool {
	switch cmd := s.Command.(type) {
	case []any:
		return len(cmd) == 0 || cmd[0] != "worker"
	case string:
		return !strings.HasPrefix(cmd, "worker")
	}
	return true
}

func (c *checker) run(composePath string) {
	b, err := os.ReadFile(composePath)
	if err != nil {
		c.r.errorf("read compose: %v", err)
		return
	}
	if err := yaml.Unmarshal(b, &c.compose); err != nil {
		c.r.errorf("parse resolved compose: %v", err)
		return
	}
	if len(c.compose.Services) == 0 {
		c.r.errorf("compose: no services")
		return
	}
	c.checkImages()
	c.checkDependencies()
	c.checkGoServices()
	c.checkPrometheus()
	c.checkGrafana()
}

// imagePinned reports why ref is not pinned to a version, or "".
func imagePinned(ref string) string {
	if ref == "" {
		return "no image"
	}
	if strings.Contains(ref, "$") {
		return "image reference is a variable"
	}
	if strings.Contains(ref, "@sha256:") {
		return ""
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	i := strings.LastIndex(name, ":")
	if i < 0 {
		return "no tag (that means latest)"
	}
	if tag := name[i+1:]; tag == "" || tag == "latest" || strings.HasPrefix(tag, "latest-") {
		return fmt.Sprintf("tag %q is not a version", tag)
	}
	return ""
}

var fromRE = regexp.MustCompile(`(?i)^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$`)

func (c *checker) checkImages() {
	dockerfiles := map[string]bool{}
	for name, s := range c.compose.Services {
		if s.Build != nil {
			df := s.Build.Dockerfile
			if df == "" {
				df = "Dockerfile"
			}
			if !filepath.IsAbs(df) {
				df = filepath.Join(s.Build.Context, df)
			}
			dockerfiles[df] = true
			if s.Image != "" {
				if why := imagePinned(s.Image); why != "" {
					c.r.errorf("compose service %s: image %q: %s", name, s.Image, why)
				}
			}
			continue
		}
		if why := imagePinned(s.Image); why != "" {
			c.r.errorf("compose service %s: image %q: %s", name, s.Image, why)
		}
	}
	for df := range dockerfiles {
		b, err := os.ReadFile(df)
		if err != nil {
			c.r.errorf("read %s: %v", df, err)
			continue
		}
		stages := map[string]bool{"scratch": true}
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			m := fromRE.FindStringSubmatch(strings.TrimSpace(line))
			if m == nil {
				continue
			}
			n++
			if img := m[1]; !stages[strings.ToLower(img)] {
				if why := imagePinned(img); why != "" {
					c.r.errorf("%s: FROM %s: %s", df, img, why)
				}
			}
			if m[2] != "" {
				stages[strings.ToLower(m[2])] = true
			}
		}
		if n == 0 {
			c.r.errorf("%s: no FROM line", df)
		}
	}
}

func (c *checker) checkDependencies() {
	for name, s := range c.compose.Services {
		if s.Restart != "no" && !s.healthy() {
			c.r.errorf("compose service %s: long-running but has no healthcheck", name)
		}
		for dep, d := range s.DependsOn {
			t, ok := c.compose.Services[dep]
			if !ok {
				c.r.errorf("compose service %s depends on unknown %s", name, dep)
				continue
			}
			switch d.Condition {
			case "service_healthy":
				if !t.healthy() {
					c.r.errorf("compose service %s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			case "service_completed_successfully":
				if t.Restart != "no" {
					c.r.errorf("compose service %s waits for %s to complete, but %s restarts (set restart: \"no\")", name, dep, dep)
				}
			default:
				c.r.errorf("compose service %s depends on %s with condition %q: use service_healthy or service_completed_successfully",
					name, dep, d.Condition)
			}
		}
	}
}

// serverURLKeys are the variables naming a server, as URLs or host:port lists.
var serverURLKeys = []string{"DATABASE_URL", "DATABASE_DIRECT_URL", "REDIS_URL", "MONGO_URL", "CLICKHOUSE_ADDR",
	"RABBITMQ_URL", "PROCESSOR_URL", "KAFKA_BROKERS"}

func hostOf(v string) string {
	if strings.Contains(v, "://") {
		u, err := url.Parse(v)
		if err != nil {
			return ""
		}
		return u.Hostname()
	}
	h, _, err := net.SplitHostPort(v)
	if err != nil {
		return v
	}
	return h
}

func (c *checker) checkGoServices() {
	for name, svc := range c.goServices() {
		s := c.compose.Services[name]
		if svc == "" {
			c.r.errorf("compose service %s: build has no SERVICE argument", name)
			continue
		}
		if gofiles, _ := filepath.Glob(filepath.Join(c.root, "cmd", svc, "*.go")); len(gofiles) == 0 {
			msg := fmt.Sprintf("compose service %s builds ./cmd/%s, which has no Go files yet: `docker compose up --build` fails until it does", name, svc)
			if c.strictServices {
				c.r.errorf("%s", msg)
			} else {
				c.r.warnf("%s", msg)
			}
		}
		addrKey := strings.ToUpper(svc) + "_ADDR"
		addr := s.env(addrKey)
		if host, port, err := net.SplitHostPort(addr); s.listens() && (err != nil || host != "0.0.0.0" || port == "") {
			c.r.errorf("compose service %s: %s=%q, want 0.0.0.0:PORT so it listens inside the container", name, addrKey, addr)
		}
		if s.env("TXN_ADMIN_TOKEN") == "" {
			c.r.errorf("compose service %s: TXN_ADMIN_TOKEN is not set", name)
		}
		if u := s.env("DATABASE_URL"); u != "" && !strings.Contains(u, "default_query_exec_mode=") {
			c.r.errorf("compose service %s: DATABASE_URL goes through PgBouncer and needs ?default_query_exec_mode=cache_describe", name)
		}
		for _, k := range serverURLKeys {
			v := s.env(k)
			if v == "" {
				c.r.errorf("compose service %s: %s is not set", name, k)
				continue
			}
			for _, part := range strings.Split(v, ",") {
				h := hostOf(strings.TrimSpace(part))
				if _, ok := c.compose.Services[h]; !ok {
					c.r.errorf("compose service %s: %s=%q names host %q, which is no compose service", name, k, v, h)
				}
			}
		}
	}
}

// mountSource returns the host path mounted at target by service s, or "".
func mountSource(s composeService, target string) string {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && filepath.Clean(parts[1]) == filepath.Clean(target) {
			return parts[0]
		}
	}
	return ""
}

func (c *checker) sameFile(a, b string) bool {
	ra, err1 := filepath.Abs(a)
	rb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && ra == rb
}
