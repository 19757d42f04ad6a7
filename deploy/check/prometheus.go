package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The Prometheus scrape configuration: every Go service scraped, by a job named after it.

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
		if !c.compose.Services[name].listens() {
			continue // nothing to scrape
		}
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
