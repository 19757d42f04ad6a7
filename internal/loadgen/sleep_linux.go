package loadgen

import (
	"syscall"
	"time"
)

const hasPreciseSleep = true

// preciseSleepUntil sleeps in nanosleep(2), which the kernel ends within the
// thread's timer slack (50 µs by default). It cannot be interrupted, so
// waitUntil gives it at most preciseMax.
func preciseSleepUntil(t time.Time) {
	for {
		d := time.Until(t)
		if d <= 0 {
			return
		}
		ts := syscall.NsecToTimespec(int64(d))
		if err := syscall.Nanosleep(&ts, nil); err != nil && err != syscall.EINTR {
			return
		}
	}
}
