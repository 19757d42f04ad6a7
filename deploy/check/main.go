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
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
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

// goServices maps each compose service built from the Dockerfile to its SERVICE build argument.
func (c *checker) goServices() map[string]string {
	out := map[string]string{}
	for name, s := range c.compose.Services {
		if s.Build != nil {
			out[name] = s.Build.Args["SERVICE"]
		}
	}
	return out
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
		if host, port, err := net.SplitHostPort(addr); err != nil || host != "0.0.0.0" || port == "" {
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

// --- Prometheus ----------------------------------------------------------------------------------

type promConfig struct {
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

func (c *checker) checkPrometheus() {
	path := filepath.Join(c.root, "deploy/prometheus/prometheus.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		c.r.errorf("read %s: %v", path, err)
		return
	}
	var pc promConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&pc); err != nil {
		c.r.errorf("%s: %v", path, err)
		return
	}
	targets := map[string]string{} // host:port -> job
	jobs := map[string]bool{}
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName == "" || jobs[sc.JobName] {
			c.r.errorf("%s: empty or repeated job_name %q", path, sc.JobName)
		}
		jobs[sc.JobName] = true
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			c.r.errorf("%s: job %s scrapes %s; the services serve /metrics", path, sc.JobName, sc.MetricsPath)
		}
		var scraped []string
		for _, st := range sc.StaticConfigs {
			scraped = append(scraped, st.Targets...)
		}
		for _, d := range sc.DNSSDConfigs { // every replica of a compose service
			if d.Type != "A" || d.Port == 0 {
				c.r.errorf("%s: job %s: dns_sd_configs want type A and a port", path, sc.JobName)
			}
			for _, n := range d.Names {
				scraped = append(scraped, net.JoinHostPort(n, strconv.Itoa(d.Port)))
			}
		}
		for _, t := range scraped {
			host, _, err := net.SplitHostPort(t)
			if err != nil {
				c.r.errorf("%s: job %s: target %q is not host:port", path, sc.JobName, t)
				continue
			}
			if _, ok := c.compose.Services[host]; !ok && host != "127.0.0.1" && host != "localhost" {
				c.r.errorf("%s: job %s: target %q is no compose service", path, sc.JobName, t)
			}
			targets[t] = sc.JobName
		}
	}
	for name, svc := range c.goServices() {
		_, port, _ := net.SplitHostPort(c.compose.Services[name].env(strings.ToUpper(svc) + "_ADDR"))
		t := net.JoinHostPort(name, port)
		if job, ok := targets[t]; !ok {
			c.r.errorf("%s: no job scrapes service %s at %s", path, name, t)
		} else if job != name {
			c.r.errorf("%s: %s is scraped by job %q; name the job after the service (the dashboards select on job)", path, t, job)
		}
	}
	if p, ok := c.compose.Services["prometheus"]; ok {
		if src := mountSource(p, "/etc/prometheus/prometheus.yml"); !c.sameFile(src, path) {
			c.r.errorf("compose service prometheus does not mount %s at /etc/prometheus/prometheus.yml", path)
		}
	} else {
		c.r.errorf("compose: no prometheus service")
	}
}

// --- Grafana -------------------------------------------------------------------------------------

func (c *checker) checkGrafana() {
	g, ok := c.compose.Services["grafana"]
	if !ok {
		c.r.errorf("compose: no grafana service")
		return
	}
	prov := filepath.Join(c.root, "deploy/grafana/provisioning")
	if src := mountSource(g, "/etc/grafana/provisioning"); !c.sameFile(src, prov) {
		c.r.errorf("compose service grafana does not mount %s at /etc/grafana/provisioning", prov)
	}

	c.datasourceUIDs = map[string]bool{}
	dsFiles, _ := filepath.Glob(filepath.Join(prov, "datasources", "*.y*ml"))
	if len(dsFiles) == 0 {
		c.r.errorf("%s/datasources: no datasource file", prov)
	}
	for _, f := range dsFiles {
		var ds struct {
			APIVersion  int `yaml:"apiVersion"`
			Datasources []struct {
				Name, UID, Type, URL string
			} `yaml:"datasources"`
		}
		if err := readYAML(f, &ds); err != nil {
			c.r.errorf("%v", err)
			continue
		}
		if ds.APIVersion != 1 {
			c.r.errorf("%s: apiVersion %d, want 1", f, ds.APIVersion)
		}
		for _, d := range ds.Datasources {
			if d.UID == "" || d.Type == "" || d.URL == "" {
				c.r.errorf("%s: datasource %q needs uid, type and url", f, d.Name)
				continue
			}
			if d.Type == "prometheus" {
				if _, ok := c.compose.Services[hostOf(d.URL)]; !ok {
					c.r.errorf("%s: datasource %s points at %s, which is no compose service", f, d.Name, d.URL)
				}
			}
			c.datasourceUIDs[d.UID] = true
		}
	}

	provFiles, _ := filepath.Glob(filepath.Join(prov, "dashboards", "*.y*ml"))
	if len(provFiles) == 0 {
		c.r.errorf("%s/dashboards: no dashboard provider file", prov)
	}
	for _, f := range provFiles {
		var dp struct {
			APIVersion int `yaml:"apiVersion"`
			Providers  []struct {
				Name    string `yaml:"name"`
				Type    string `yaml:"type"`
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		if err := readYAML(f, &dp); err != nil {
			c.r.errorf("%v", err)
			continue
		}
		for _, p := range dp.Providers {
			if p.Type != "file" || p.Options.Path == "" {
				c.r.errorf("%s: provider %q: want type file with options.path", f, p.Name)
				continue
			}
			src := mountSource(g, p.Options.Path)
			if src == "" {
				c.r.errorf("%s: provider %q reads %s, which compose service grafana does not mount", f, p.Name, p.Options.Path)
				continue
			}
			c.checkDashboardDir(src)
		}
	}
	if home := g.env("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"); home != "" {
		dir := mountSource(g, filepath.Dir(home))
		if _, err := os.Stat(filepath.Join(dir, filepath.Base(home))); dir == "" || err != nil {
			c.r.errorf("compose service grafana: home dashboard %s is not a mounted file", home)
		}
	}
}

func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
}

// Grafana's built-in variables, replaced by a value of the right kind before parsing.
var builtins = map[string]string{
	"__rate_interval": "1m", "__interval": "15s", "__range": "1h",
	"__interval_ms": "15000", "__range_s": "3600", "__range_ms": "3600000",
}

var varRE = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

func (c *checker) checkDashboardDir(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		c.r.errorf("%s: no dashboard JSON", dir)
	}
	uids := map[string]string{}
	metrics := map[string][]string{} // metric -> where
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			c.r.errorf("%v", err)
			continue
		}
		var d dashboard
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&d); err != nil {
			c.r.errorf("%s: not valid JSON: %v", f, err)
			continue
		}
		if d.UID == "" || d.Title == "" {
			c.r.errorf("%s: a dashboard needs uid and title", f)
		}
		if other, ok := uids[d.UID]; ok {
			c.r.errorf("%s: uid %q already used by %s", f, d.UID, other)
		}
		uids[d.UID] = f
		vars := map[string]string{}
		for k, v := range builtins {
			vars[k] = v
		}
		for _, v := range d.Templating.List {
			if v.Type == "interval" {
				vars[v.Name] = "5m"
			} else {
				vars[v.Name] = "x"
			}
		}
		c.checkPanels(f, d.Panels, vars, metrics)
	}
	c.checkMetricNames(metrics)
}

func (c *checker) checkPanels(file string, panels []panel, vars map[string]string, metrics map[string][]string) {
	ids := map[int]bool{}
	type box struct{ x, y, w, h int }
	var boxes []box
	var walk func(ps []panel)
	p := parser.NewParser(parser.Options{})
	walk = func(ps []panel) {
		for _, pn := range ps {
			where := fmt.Sprintf("%s: panel %d %q", file, pn.ID, pn.Title)
			if pn.ID == 0 || ids[pn.ID] {
				c.r.errorf("%s: missing or repeated id", where)
			}
			ids[pn.ID] = true
			g := pn.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
				c.r.errorf("%s: gridPos %+v is outside the 24-column grid", where, g)
			}
			for _, o := range boxes {
				if g.X < o.x+o.w && o.x < g.X+g.W && g.Y < o.y+o.h && o.y < g.Y+g.H {
					c.r.errorf("%s: overlaps another panel at %+v", where, o)
				}
			}
			boxes = append(boxes, box{g.X, g.Y, g.W, g.H})
			if pn.Type == "row" {
				walk(pn.Panels)
				continue
			}
			if len(pn.Targets) == 0 {
				c.r.errorf("%s: no query", where)
			}
			if pn.Datasource == nil || !c.datasourceUIDs[pn.Datasource.UID] {
				c.r.errorf("%s: datasource is not a provisioned uid %v", where, keys(c.datasourceUIDs))
			}
			for _, t := range pn.Targets {
				if t.Datasource != nil && !c.datasourceUIDs[t.Datasource.UID] {
					c.r.errorf("%s: query %s: datasource %q is not provisioned", where, t.RefID, t.Datasource.UID)
				}
				if strings.TrimSpace(t.Expr) == "" {
					c.r.errorf("%s: query %s is empty", where, t.RefID)
					continue
				}
				expr := varRE.ReplaceAllStringFunc(t.Expr, func(m string) string {
					sm := varRE.FindStringSubmatch(m)
					name := sm[1] + sm[2] + sm[3]
					if v, ok := vars[name]; ok {
						return v
					}
					c.r.errorf("%s: query %s uses undefined variable %s", where, t.RefID, m)
					return m
				})
				e, err := p.ParseExpr(expr)
				if err != nil {
					c.r.errorf("%s: query %s does not parse as PromQL: %v\n    %s", where, t.RefID, err, t.Expr)
					continue
				}
				parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
					if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" {
						metrics[vs.Name] = append(metrics[vs.Name], where)
					}
					return nil
				})
			}
		}
	}
	walk(panels)
}

// Metrics every target has without our code defining them.
func builtinMetric(name string) bool {
	for _, p := range []string{"go_", "process_", "promhttp_", "scrape_", "prometheus_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return name == "up"
}

// checkMetricNames looks for each dashboard metric as a string literal in the Go code.
func (c *checker) checkMetricNames(metrics map[string][]string) {
	var src bytes.Buffer
	for _, dir := range []string{"cmd", "internal"} {
		top := filepath.Join(c.root, dir)
		if real, err := filepath.EvalSymlinks(top); err == nil {
			top = real
		}
		_ = filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err == nil {
				src.Write(b)
			}
			return nil
		})
	}
	code := src.String()
	var missing []string
	for name := range metrics {
		if builtinMetric(name) {
			continue
		}
		// A histogram's series are its name plus _bucket, _sum and _count.
		base := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suf); ok {
				base = b
				break
			}
		}
		if !strings.Contains(code, `"`+name+`"`) && !strings.Contains(code, `"`+base+`"`) {
			missing = append(missing, base)
			metrics[base] = append(metrics[base], metrics[name]...)
		}
	}
	sort.Strings(missing)
	missing = slices.Compact(missing)
	for _, m := range missing {
		msg := fmt.Sprintf("dashboard metric %s is defined nowhere in cmd/ or internal/ (yet?): %s", m, metrics[m][0])
		if c.strictMetrics {
			c.r.errorf("%s", msg)
		} else {
			c.r.warnf("%s", msg)
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
