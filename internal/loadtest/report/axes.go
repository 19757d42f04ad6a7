package report

import (
	"math"
	"strconv"
	"strings"
)

// axis maps values to 0..1 along a side of the plot; hi > lo always, and lo > 0 on a log axis.
type axis struct {
	lo, hi float64
	log    bool
	ticks  []float64
	label  string
	format func(float64) string
}

func (a axis) frac(v float64) float64 {
	var f float64
	if a.log {
		f = math.Log10(max(v, a.lo)/a.lo) / math.Log10(a.hi/a.lo)
	} else {
		f = (v - a.lo) / (a.hi - a.lo)
	}
	if !(f >= 0) { // also NaN
		return 0
	}
	return min(f, 1)
}

// linearAxis runs from 0 to a round number at or above hi, in about five steps.
func linearAxis(hi float64, label string) axis {
	if !(hi > 0) {
		hi = 1
	}
	step := niceStep(hi / 5)
	n := math.Ceil(hi/step - 1e-9)
	a := axis{lo: 0, hi: n * step, label: label}
	for i := 0.0; i <= n; i++ {
		a.ticks = append(a.ticks, i*step)
	}
	dec := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	a.format = func(v float64) string { return fmtFixed(v, dec) }
	return a
}

// niceStep is the smallest 1, 2 or 5 times a power of ten at or above raw.
func niceStep(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// logAxis runs between 1-2-5 values around lo and hi over up to three decades, with a tick
// at each; over more, between powers of ten, with a tick at each.
func logAxis(lo, hi float64, label string) axis {
	lo = max(lo, minLogLow, hi/1e9)
	few := hi/lo <= 1000
	if few {
		hi, lo = niceStep(hi), floor125(lo)
	} else {
		hi, lo = math.Pow(10, math.Ceil(math.Log10(hi)-1e-9)), math.Pow(10, math.Floor(math.Log10(lo)+1e-9))
	}
	if !(hi > lo) {
		hi = lo * 10
	}
	a := axis{lo: lo, hi: hi, log: true, label: label, format: fmtNum}
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= lo*(1-1e-9) && v <= hi*(1+1e-9) && (few || m == 1) {
				a.ticks = append(a.ticks, v)
			}
		}
	}
	return a
}

// floor125 is the largest 1, 2 or 5 times a power of ten at or below v.
func floor125(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{5, 2, 1} {
		if m*p <= v*(1+1e-9) {
			return m * p
		}
	}
	return p
}

// timeAxis runs over the seconds of the run, ticked every round number of seconds or minutes.
func timeAxis(span float64) axis {
	span = max(span, 1)
	step := 86400.0
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200} {
		if span/s <= 10 {
			step = s
			break
		}
	}
	step = max(step, math.Ceil(span/10/step)*step)
	a := axis{lo: 0, hi: span, label: "time since start (m:ss)"}
	if span > 3600 {
		a.label = "time since start (h:mm:ss)"
	}
	for t := 0.0; t <= span+1e-9; t += step {
		a.ticks = append(a.ticks, t)
	}
	a.format = func(v float64) string { return clock(v, span > 3600) }
	return a
}

func clock(s float64, hours bool) string {
	n := int64(math.Round(s))
	if hours {
		return strconv.FormatInt(n/3600, 10) + ":" + pad2(n/60%60) + ":" + pad2(n%60)
	}
	return strconv.FormatInt(n/60, 10) + ":" + pad2(n%60)
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

func ninesAxis(top float64) axis {
	a := axis{lo: 0, hi: top, label: "percentile (log scale of 1/(1 − p))", format: ninesLabel}
	for i := 0.0; i <= top; i++ {
		a.ticks = append(a.ticks, i)
	}
	return a
}

// ninesLabel is the percentile with n nines: 0 → 0%, 1 → 90%, 3 → 99.9%.
func ninesLabel(n float64) string {
	switch k := int(n); {
	case k <= 0:
		return "0%"
	case k == 1:
		return "90%"
	default:
		return "99" + strings.TrimSuffix("."+strings.Repeat("9", k-2), ".") + "%"
	}
}
