package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// Grafana's provisioning and the dashboards: JSON, layout, datasources, every PromQL expression.

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
