//go:build !linux

package loadgen

import "time"

const hasPreciseSleep = false

func preciseSleepUntil(time.Time) {}
