//go:build !linux

package loadgen

import "time"

type cpuSample struct{ at time.Time }

func sampleCPU() cpuSample { return cpuSample{time.Now()} }

// othersShare is unknown here: report an idle machine, so a miss fails.
func (cpuSample) othersShare(cpuSample) float64 { return 0 }
