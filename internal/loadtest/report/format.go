package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

func fmtDuration(d time.Duration) string {
	s := max(d, 0).Seconds()
	switch {
	case s < 60:
		return strconv.FormatFloat(s, 'f', 1, 64) + " s"
	case s < 3600:
		return fmt.Sprintf("%d min %02d s", int(s)/60, int(s)%60)
	}
	return fmt.Sprintf("%d h %02d min %02d s", int(s)/3600, int(s)/60%60, int(s)%60)
}

// fmtFixed formats v with dec decimals and thousands separators.
func fmtFixed(v float64, dec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	s := strconv.FormatFloat(math.Abs(v), 'f', dec, 64)
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if v < 0 && strings.Trim(s, "0.") != "" {
		b.WriteByte('-')
	}
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}

// fmtNum formats v with as few decimals as it needs, up to 3.
func fmtNum(v float64) string {
	s := fmtFixed(v, 3)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func fmtCount(n uint64) string { return fmtFixed(float64(n), 0) }

func fmtInt(n int64) string {
	if n < 0 {
		return "-" + fmtCount(uint64(-n))
	}
	return fmtCount(uint64(n))
}

// fmtMs keeps three significant digits below 100 ms and whole milliseconds above.
func fmtMs(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	dec := 0
	switch a := math.Abs(v); {
	case a == 0:
	case a < 1:
		dec = 3
	case a < 10:
		dec = 2
	case a < 100:
		dec = 1
	}
	return fmtFixed(v, dec) + " ms"
}

func fmtRate(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	dec := 0
	switch a := math.Abs(v); {
	case a == 0 || a >= 100:
	case a >= 10:
		dec = 1
	default:
		dec = 2
	}
	return fmtFixed(v, dec) + "/s"
}

// fmtPct formats a share (0..1) as a percentage, with enough decimals to tell a small share
// from none.
func fmtPct(share float64) string {
	if math.IsNaN(share) || math.IsInf(share, 0) {
		return "–"
	}
	p := share * 100
	dec := 2
	switch a := math.Abs(p); {
	case a == 0:
		dec = 0
	case a < 0.1:
		dec = 3
	}
	return fmtFixed(p, dec) + "%"
}
