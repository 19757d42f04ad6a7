package report

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// The plot is SVG written here: the page needs nothing but itself.

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
