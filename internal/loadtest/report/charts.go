package report

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strconv"
	"strings"
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

// plot writes one SVG: axes, grid and labels, then the series.
type plot struct {
	h    float64
	x, y axis
	b    strings.Builder
}

func newPlot(h float64, x, y axis) *plot {
	p := &plot{h: h, x: x, y: y}
	p.b.Grow(16 << 10)
	p.printf(`<svg class="chart" viewBox="0 0 %s %s" role="img">`, num(chartW), num(h))
	return p
}

func (p *plot) px(v float64) float64 { return padL + (chartW-padL-padR)*p.x.frac(v) }
func (p *plot) py(v float64) float64 { return p.h - padB - (p.h-padT-padB)*p.y.frac(v) }

// printf takes strings only: every number goes through num, so no NaN or Inf reaches an
// attribute.
func (p *plot) printf(format string, args ...string) {
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = s
	}
	fmt.Fprintf(&p.b, format, a...)
}

func (p *plot) frame() {
	left, right, top, bottom := float64(padL), float64(chartW-padR), float64(padT), p.h-padB
	for _, t := range p.y.ticks {
		y := num(p.py(t))
		p.printf(`<line class="g" x1="%s" x2="%s" y1="%s" y2="%s"/>`, num(left), num(right), y, y)
		p.printf(`<text class="yt" x="%s" y="%s">%s</text>`, num(left-6), num(p.py(t)+4), esc(p.y.format(t)))
	}
	for _, t := range p.x.ticks {
		x := num(p.px(t))
		p.printf(`<line class="g" x1="%s" x2="%s" y1="%s" y2="%s"/>`, x, x, num(top), num(bottom+4))
		p.printf(`<text class="xt" x="%s" y="%s">%s</text>`, x, num(bottom+18), esc(p.x.format(t)))
	}
	p.printf(`<path class="ax" d="M%s,%s V%s H%s"/>`, num(left), num(top), num(bottom), num(right))
	mid := (top + bottom) / 2
	p.printf(`<text class="al" transform="rotate(-90)" x="%s" y="16">%s</text>`, num(-mid), esc(p.y.label))
	p.printf(`<text class="al" x="%s" y="%s">%s</text>`, num((left+right)/2), num(p.h-6), esc(p.x.label))
}

// series draws s as one path, a gap wherever a value is NaN; a lone value is a dot.
func (p *plot) series(xs []float64, s series) {
	var d strings.Builder
	base := num(p.py(p.y.lo))
	for _, seg := range segments(xs, s.vals) {
		if len(seg) == 1 {
			p.printf(`<circle cx="%s" cy="%s" r="3.5" fill="%s"/>`, num(p.px(xs[seg[0]])), num(p.py(s.vals[seg[0]])), s.colour)
			continue
		}
		if s.area {
			d.WriteString("M" + num(p.px(xs[seg[0]])) + "," + base)
		}
		for j, i := range seg {
			if j == 0 && !s.area {
				d.WriteByte('M')
			} else {
				d.WriteByte(' ')
			}
			d.WriteString(num(p.px(xs[i])) + "," + num(p.py(s.vals[i])))
		}
		if s.area {
			d.WriteString(" " + num(p.px(xs[seg[len(seg)-1]])) + "," + base + "Z")
		}
	}
	if d.Len() == 0 {
		return
	}
	fill, opacity := "none", ""
	if s.area {
		fill, opacity = s.colour, ` fill-opacity="0.25"`
	}
	p.printf(`<path class="s" d="%s" fill="%s"%s stroke="%s" stroke-width="%s" stroke-dasharray="%s"/>`,
		d.String(), fill, opacity, s.colour, num(s.width), orDefault(s.dash, "none"))
}

// segments are the runs of indexes between gaps.
func segments(xs, vs []float64) [][]int {
	var segs [][]int
	var cur []int
	for i := range min(len(xs), len(vs)) {
		if math.IsNaN(vs[i]) {
			if len(cur) > 0 {
				segs, cur = append(segs, cur), nil
			}
			continue
		}
		cur = append(cur, i)
	}
	if len(cur) > 0 {
		segs = append(segs, cur)
	}
	return segs
}

// dots marks each point, with its label as a tooltip.
func (p *plot) dots(xs, ys []float64, labels []string, colour string) {
	for i := range min(len(xs), len(ys), len(labels)) {
		p.printf(`<circle cx="%s" cy="%s" r="2.5" fill="%s"><title>%s</title></circle>`,
			num(p.px(xs[i])), num(p.py(ys[i])), colour, esc(labels[i]))
	}
}

func (p *plot) svg() template.HTML {
	p.b.WriteString("</svg>")
	return template.HTML(p.b.String()) // built here from numbers and escaped text only
}

// num writes a coordinate with one decimal at most; never NaN or Inf.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

func esc(s string) string { return template.HTMLEscapeString(s) }
