package loadgen

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuSample is the machine's busy CPU time and this process's own.
type cpuSample struct {
	at         time.Time
	busy, self time.Duration
	ok         bool
}

func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return s
	}
	s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	// cpu  user nice system idle iowait irq softirq steal ..., in 1/100 s.
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	for i := 1; i < len(f) && i <= 8; i++ {
		if i == 4 || i == 5 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(f[i], 10, 64)
		s.busy += time.Duration(n) * 10 * time.Millisecond
	}
	s.ok = true
	return s
}

// othersShare is the fraction of all CPUs that other processes kept busy
// between s and e.
func (s cpuSample) othersShare(e cpuSample) float64 {
	if !s.ok || !e.ok {
		return 0
	}
	others := (e.busy - s.busy) - (e.self - s.self)
	return max(0, others.Seconds()/(e.at.Sub(s.at).Seconds()*float64(runtime.NumCPU())))
}
