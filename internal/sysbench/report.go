package sysbench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Goal is what a rate must achieve to count as held (the whole-system goal's limits).
type Goal struct {
	MinAchievedRatio float64       // of the target rate
	MaxP99Ms         float64       // from the scheduled send time
	MaxEffects       time.Duration // from the end of sending until every effect landed
}

// Held reports whether r meets g, and if not, why.
func (g Goal) Held(r Result) (bool, string) {
	var why []string
	if r.Achieved < g.MinAchievedRatio*r.Rate {
		why = append(why, fmt.Sprintf("achieved %.0f/s", r.Achieved))
	}
	if r.P99 > g.MaxP99Ms {
		why = append(why, fmt.Sprintf("p99 %.0f ms", r.P99))
	}
	if r.Errors > 0 {
		why = append(why, fmt.Sprintf("%d errors", r.Errors))
	}
	if !r.Verified {
		why = append(why, "verification failed")
	}
	if r.EffectsAfter < 0 || r.EffectsAfter > g.MaxEffects {
		why = append(why, "effects late")
	}
	return len(why) == 0, strings.Join(why, ", ")
}

// WriteReport prints the results as two Markdown tables: the runs, then CPU µs per transaction
// per component; then the highest rate held.
func WriteReport(w io.Writer, results []Result, comps []Component, g Goal) {
	fmt.Fprintln(w, "| target/s | achieved/s | p50 ms | p99 ms | max ms | errors | rejected | verified | effects landed after | held |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	best := 0.0
	for _, r := range results {
		held, why := g.Held(r)
		verdict := "yes"
		if !held {
			verdict = "no: " + why
		} else {
			best = max(best, r.Rate)
		}
		effects := "not within the wait"
		if r.EffectsAfter >= 0 {
			effects = fmt.Sprintf("%.1f s", r.EffectsAfter.Seconds())
		}
		verified := "ok"
		if !r.Verified {
			verified = "NO " + strings.Join(r.Problems, "; ")
		}
		fmt.Fprintf(w, "| %.0f | %.0f | %.1f | %.1f | %.0f | %d | %d | %s | %s | %s |\n",
			r.Rate, r.Achieved, r.P50, r.P99, r.Max, r.Errors, r.Rejected, verified, effects, verdict)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "| CPU µs per transaction |")
	for _, r := range results {
		fmt.Fprintf(w, " %.0f/s |", r.Rate)
	}
	fmt.Fprint(w, "\n|---|")
	for range results {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for _, c := range comps {
		fmt.Fprintf(w, "| %s |", c.Name)
		for _, r := range results {
			fmt.Fprintf(w, " %.0f |", r.CPUPerTx(c.Name))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "| **total** |")
	for _, r := range results {
		fmt.Fprintf(w, " **%.0f** |", r.CPUPerTx(""))
	}
	fmt.Fprint(w, "\n| cores busy |")
	for _, r := range results {
		var s float64
		for _, v := range r.CPU {
			s += v
		}
		fmt.Fprintf(w, " %.2f |", s/r.Window.Seconds())
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	if best > 0 {
		fmt.Fprintf(w, "Highest rate held (achieved ≥ %.0f %% of target, p99 ≤ %.0f ms, 0 errors, verified, effects within %s): %.0f/s\n",
			g.MinAchievedRatio*100, g.MaxP99Ms, g.MaxEffects, best)
	} else {
		fmt.Fprintln(w, "No rate was held within the goal's limits.")
	}
}
