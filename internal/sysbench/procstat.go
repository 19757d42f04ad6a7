// Package sysbench measures the whole local system under a load run: CPU time of every process
// of every component (read from /proc), the run's figures from the loadtest API, and how long
// the downstream effects take to land. cmd/sysbench drives it; scripts/bench-system.sh starts
// the system for it.
package sysbench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, 100 on every Linux this runs on (getconf CLK_TCK).
const clockTicks = 100

// Component is one part of the system and the processes it runs as.
type Component struct {
	Name string
	// Roots are its processes; their descendants count too (PostgreSQL's backends,
	// RabbitMQ's port programs).
	Roots func() []int
}

// procInfo is what /proc/<pid>/stat says of one process.
type procInfo struct {
	ppid  int
	ticks uint64 // utime + stime
}

func readStat(pid int) (procInfo, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, false
	}
	// The command name is in parentheses and may hold spaces: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is state (field 3); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procInfo{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return procInfo{ppid: ppid, ticks: ut + st}, true
}

// snapshotProcs reads every process's parent and CPU ticks.
func snapshotProcs() map[int]procInfo {
	procs := map[int]procInfo{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readStat(pid); ok {
			procs[pid] = p
		}
	}
	return procs
}

// CPU is the CPU time each component used so far, in seconds.
type CPU map[string]float64

// SampleCPU sums utime+stime over each component's processes and their descendants. A process
// counted under one component is not counted again under another.
func SampleCPU(comps []Component) CPU {
	procs := snapshotProcs()
	children := map[int][]int{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	seen := map[int]bool{}
	out := CPU{}
	for _, c := range comps {
		var ticks uint64
		stack := append([]int(nil), c.Roots()...)
		for len(stack) > 0 {
			pid := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[pid] {
				continue
			}
			seen[pid] = true
			if p, ok := procs[pid]; ok {
				ticks += p.ticks
				stack = append(stack, children[pid]...)
			}
		}
		out[c.Name] = float64(ticks) / clockTicks
	}
	return out
}

// Sub is c minus an earlier sample.
func (c CPU) Sub(before CPU) CPU {
	out := CPU{}
	for k, v := range c {
		out[k] = v - before[k]
	}
	return out
}

// PIDFile reads a pid from the first line of a file (a symlink is followed), as the local
// stack records them.
func PIDFile(path string) []int {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	if !s.Scan() {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s.Text()))
	if err != nil || pid <= 0 {
		return nil
	}
	return []int{pid}
}

// LocalStack is every component of the system as scripts/stack.sh runs it, found through the
// pid files in its state directory; a service run as several instances (name-1.pid, ...)
// counts them all. The outbox relay runs inside the processor; RabbitMQ's epmd (idle after the
// node registers) is not counted.
func LocalStack(state string) []Component {
	run := func(names ...string) func() []int {
		return func() []int {
			var pids []int
			for _, pattern := range names {
				files, _ := filepath.Glob(filepath.Join(state, "run", pattern))
				for _, f := range files {
					pids = append(pids, PIDFile(f)...)
				}
			}
			return pids
		}
	}
	service := func(name string) func() []int { return run(name+".pid", name+"-[0-9]*.pid") }
	return []Component{
		{"processor+relay", service("processor")},
		{"haproxy", run("haproxy.pid")},
		{"postgres", run("postgres.pidref")},
		{"pgbouncer", run("pgbouncer.pid")},
		{"redis", run("redis.pid")},
		{"kafka (stand-in)", run("kafka.pid")},
		{"consumer", service("consumer")},
		{"clickhouse", run("clickhouse.pid")},
		{"mongodb (stand-in)", run("mongo.pid")},
		{"rabbitmq", run("rabbitmq.pid")},
		{"notifier", service("notifier")},
		{"loadtest", run("loadtest.pid")},
		{"loadtest workers", run("loadtest-worker-[0-9]*.pid")},
	}
}
