package report

import (
	"html/template"
	"math"
	"sort"
	"strconv"
)

// The charts are SVG written here, not in a script, so the page needs nothing but itself.
// One SVG unit is one CSS pixel when the page is at full width.

const (
	chartW    = 1100
	padL      = 80
	padR      = 40
	padT      = 12
	padB      = 46
	maxDrawn  = 600  // points drawn per series: more are merged, a few per pixel
	maxValue  = 1e15 // values are capped so the axis arithmetic stays finite
	maxCodes  = 6    // error codes drawn as their own line; the rest are "other"
	maxNines  = 9    // the distribution's x axis ends at 99.9999999 % at most
	minLogLow = 0.001
)

// Colours (Tableau 10): distinguishable, and still apart in greyscale print by dash or width.
const (
	cBlue   = "#1f77b4"
	cOrange = "#ff7f0e"
	cGreen  = "#2ca02c"
	cRed    = "#d62728"
	cPurple = "#9467bd"
	cBrown  = "#8c564b"
	cPink   = "#e377c2"
	cGrey   = "#7f7f7f"
	cOlive  = "#bcbd22"
	cCyan   = "#17becf"
	cDark   = "#374151"
)

var codeColours = []string{cRed, cOrange, cPurple, cBrown, cPink, cCyan}

// chart is one figure: a title, what it shows, a legend and the SVG, or why there is none.
type chart struct {
	ID, Title, Caption string
	Legend             []legendItem
	SVG                template.HTML
	Empty              string
	ErrorTable         bool
}

type legendItem struct {
	Name, Colour, Dash string
	Width              float64
}

// series is one line; NaN values are gaps.
type series struct {
	name, colour, dash string
	width              float64
	area               bool
	vals               []float64
}

func (s series) legend() legendItem {
	w := max(s.width, 2) // thin lines are still told apart in a short swatch
	if s.area {
		w = 6
	}
	return legendItem{Name: s.name, Colour: s.colour, Dash: orDefault(s.dash, "none"), Width: w}
}

func charts(d Data) []chart {
	xs := seconds(d.Points)
	return []chart{
		throughputChart(d.Points, xs),
		inFlightChart(d.Points, xs),
		latencyChart(d.Points, xs),
		distributionChart(d.Percentiles),
		errorsChart(d.Points, xs),
	}
}

const noPoints = "No per-second data was recorded."

func throughputChart(ps []Point, xs []float64) chart {
	c := chart{ID: "throughput", Title: "Throughput",
		Caption: "Requests per second: sent by send time, answered by answer time, target as the schedule asked." +
			mergedNote(len(ps), "the mean")}
	if len(ps) == 0 {
		c.Empty = noPoints
		return c
	}
	// Answered is drawn wide under sent, so both show where they coincide; the target, dashed,
	// goes on top.
	ss := []series{
		{name: "answered/s", colour: cOrange, width: 3, vals: column(ps, func(p Point) float64 { return float64(p.Answered) })},
		{name: "sent/s", colour: cBlue, width: 1.3, vals: column(ps, func(p Point) float64 { return p.Rate })},
		{name: "target/s", colour: cDark, dash: "6 4", width: 1.5, vals: column(ps, func(p Point) float64 { return p.Target })},
	}
	return timeChart(c, xs, ss, false, false, 300, "requests/s")
}

func inFlightChart(ps []Point, xs []float64) chart {
	c := chart{ID: "in-flight", Title: "In flight",
		Caption: "Requests sent and not yet answered at the end of each second." + mergedNote(len(ps), "the highest")}
	if len(ps) == 0 {
		c.Empty = noPoints
		return c
	}
	ss := []series{{name: "in flight", colour: cPurple, width: 1.3, area: true,
		vals: column(ps, func(p Point) float64 { return float64(p.InFlight) })}}
	return timeChart(c, xs, ss, true, false, 160, "requests")
}

func latencyChart(ps []Point, xs []float64) chart {
	c := chart{ID: "latency", Title: "Latency over time",
		Caption: "Percentiles of the requests scheduled in each second, log scale; gaps are seconds in which none completed." +
			mergedNote(len(ps), "the highest")}
	if len(ps) == 0 {
		c.Empty = noPoints
		return c
	}
	lat := func(f func(Point) float64) []float64 {
		return column(ps, func(p Point) float64 {
			if p.OK+p.Failed == 0 && p.MaxMs == 0 {
				return math.NaN()
			}
			return f(p)
		})
	}
	// Listed top line first, as they stack up on the chart and in the legend.
	ss := []series{
		{name: "max", colour: cRed, width: 1, vals: lat(func(p Point) float64 { return p.MaxMs })},
		{name: "p99", colour: cOrange, width: 1.5, vals: lat(func(p Point) float64 { return p.P99Ms })},
		{name: "p95", colour: cPurple, width: 1.5, vals: lat(func(p Point) float64 { return p.P95Ms })},
		{name: "p90", colour: cBlue, width: 1.5, vals: lat(func(p Point) float64 { return p.P90Ms })},
		{name: "p50", colour: cGreen, width: 1.8, vals: lat(func(p Point) float64 { return p.P50Ms })},
	}
	return timeChart(c, xs, ss, true, true, 320, "latency, ms (log scale)")
}

func errorsChart(ps []Point, xs []float64) chart {
	c := chart{ID: "errors", Title: "Errors", ErrorTable: true,
		Caption: "Failed requests per second by error code, by scheduled send time." + mergedNote(len(ps), "the highest")}
	totals := map[string]uint64{}
	for _, p := range ps {
		for code, n := range p.Errors {
			if n > 0 {
				totals[code] += n
			}
		}
	}
	if len(totals) == 0 {
		c.Empty = "No failed request in the per-second data."
		return c
	}
	codes := byCount(totals)
	var ss []series
	for i, code := range codes[:min(len(codes), maxCodes)] {
		ss = append(ss, series{name: code, colour: codeColours[i], width: 1.5,
			vals: column(ps, func(p Point) float64 { return float64(p.Errors[code]) })})
	}
	if rest := codes[min(len(codes), maxCodes):]; len(rest) > 0 {
		ss = append(ss, series{name: "other (" + strconv.Itoa(len(rest)) + " codes)", colour: cGrey, width: 1.5,
			vals: column(ps, func(p Point) float64 {
				var n uint64
				for _, code := range rest {
					n += p.Errors[code]
				}
				return float64(n)
			})})
	}
	return timeChart(c, xs, ss, true, false, 220, "failed requests/s")
}

// byCount is the codes with the most first.
func byCount(m map[string]uint64) []string {
	codes := make([]string, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		a, b := m[codes[i]], m[codes[j]]
		return a > b || a == b && codes[i] < codes[j]
	})
	return codes
}

func mergedNote(n int, how string) string {
	k := bucket(n)
	if k <= 1 {
		return ""
	}
	return " Each drawn point is " + how + " of " + strconv.Itoa(k) + " seconds."
}

// timeChart draws series over the run's seconds; keepMax merges seconds by their highest
// value (a latency spike or error burst must not be averaged away), else by their mean.
func timeChart(c chart, xs []float64, ss []series, keepMax, logY bool, height float64, yLabel string) chart {
	k := bucket(len(xs))
	dxs := reduce(xs, k, false)
	var all []float64
	for i := range ss {
		ss[i].vals = reduce(ss[i].vals, k, keepMax)
		all = append(all, ss[i].vals...)
	}
	p := newPlot(height, timeAxis(xs[len(xs)-1]+0.5), yAxis(all, logY, yLabel))
	p.frame()
	for _, s := range ss {
		p.series(dxs, s)
		c.Legend = append(c.Legend, s.legend())
	}
	c.SVG = p.svg()
	return c
}

func yAxis(vals []float64, logY bool, label string) axis {
	hi, lo := 0.0, math.Inf(1)
	for _, v := range vals {
		if v > hi {
			hi = v
		}
		if v > 0 && v < lo {
			lo = v
		}
	}
	if logY && hi > 0 {
		return logAxis(lo, hi, label)
	}
	return linearAxis(hi, label)
}

func distributionChart(ps []Percentile) chart {
	c := chart{ID: "distribution", Title: "Latency distribution",
		Caption: "Whole-run latency by percentile. The x axis counts nines, as HDR histogram plots do: " +
			"each step right is ten times rarer (90%, 99%, 99.9%, …)."}
	sorted := append([]Percentile(nil), ps...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].P < sorted[j].P })
	var xs, ys []float64
	var labels []string
	maxMs := math.NaN()
	for _, q := range sorted {
		switch ms := clean(q.Ms); {
		case math.IsNaN(ms) || math.IsNaN(q.P) || q.P < 0 || q.P > 100:
		case q.P == 100:
			maxMs = ms
		default:
			xs, ys = append(xs, nines(q.P)), append(ys, ms)
			labels = append(labels, "p"+fmtNum(q.P)+": "+fmtMs(ms))
		}
	}
	if len(xs) == 0 && math.IsNaN(maxMs) {
		c.Empty = "No latency distribution: no request completed."
		return c
	}
	top := 2.0
	for _, x := range xs {
		top = max(top, math.Ceil(x-1e-9))
	}
	p := newPlot(320, ninesAxis(top), yAxis(append(ys[:len(ys):len(ys)], maxMs), true, "latency, ms (log scale)"))
	p.frame()
	if !math.IsNaN(maxMs) {
		s := series{name: "max (" + fmtMs(maxMs) + ")", colour: cRed, dash: "5 4", width: 1.2,
			vals: []float64{maxMs, maxMs}}
		p.series([]float64{0, top}, s)
		c.Legend = append(c.Legend, s.legend())
	}
	s := series{name: "latency at percentile", colour: cBlue, width: 2, vals: ys}
	p.series(xs, s)
	p.dots(xs, ys, labels, cBlue)
	c.Legend = append([]legendItem{s.legend()}, c.Legend...)
	c.SVG = p.svg()
	return c
}

// nines is how many nines percentile p has: 90 → 1, 99 → 2, 99.9 → 3.
func nines(p float64) float64 {
	if p >= 100 {
		return maxNines
	}
	return min(maxNines, max(0, math.Log10(100/(100-p))))
}

// seconds is the middle of each point's second, counted from the first point's start; by index
// when times are missing or out of order.
func seconds(ps []Point) []float64 {
	xs := make([]float64, len(ps))
	ordered := len(ps) < 2 || ps[len(ps)-1].T.After(ps[0].T)
	for i, p := range ps {
		xs[i] = p.T.Sub(ps[0].T).Seconds() + 0.5
		if i > 0 && !(xs[i] >= xs[i-1]) {
			ordered = false
		}
	}
	if !ordered {
		for i := range xs {
			xs[i] = float64(i) + 0.5
		}
	}
	return xs
}

func column(ps []Point, f func(Point) float64) []float64 {
	vs := make([]float64, len(ps))
	for i, p := range ps {
		vs[i] = clean(f(p))
	}
	return vs
}

// clean keeps a value drawable: NaN and infinities become gaps, the rest is capped.
func clean(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return math.NaN()
	}
	return min(max(v, 0), maxValue)
}

// bucket is how many seconds merge into one drawn point.
func bucket(n int) int { return max(1, (n+maxDrawn-1)/maxDrawn) }

// reduce merges every k values into their highest or their mean, skipping gaps.
func reduce(vs []float64, k int, keepMax bool) []float64 {
	if k <= 1 {
		return vs
	}
	out := make([]float64, 0, len(vs)/k+1)
	for i := 0; i < len(vs); i += k {
		agg, n := 0.0, 0
		for _, v := range vs[i:min(i+k, len(vs))] {
			switch {
			case math.IsNaN(v):
				continue
			case !keepMax:
				agg += v
			case n == 0 || v > agg:
				agg = v
			}
			n++
		}
		switch {
		case n == 0:
			out = append(out, math.NaN())
		case keepMax:
			out = append(out, agg)
		default:
			out = append(out, agg/float64(n))
		}
	}
	return out
}
