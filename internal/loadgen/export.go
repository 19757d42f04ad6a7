package loadgen

import (
	"fmt"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Delta carries a recorder's measurements to another process, where Apply
// merges them with those of other generators of the same run (Locust's
// workers report to their master the same way). Histograms travel as their
// populated HDR buckets, each a value and its count: the receiver records them
// into histograms of the same geometry, so they merge without losing precision.
type Delta struct {
	// The whole run so far: counters, the send lag and the latency by
	// operation and outcome. Always whole: there are few of them.
	Sent   uint64      `json:"sent"`
	Late   uint64      `json:"late"`
	Lag    Buckets     `json:"lag"`
	Totals []GroupHist `json:"totals"`
	// Seconds are those that changed since the mark the export was asked for.
	Seconds []SecondHist `json:"seconds"`
}

// Buckets are a histogram's populated buckets: a value in each (in
// microseconds) and how many requests fell in it.
type Buckets [][2]int64

// GroupHist is the histogram of one operation with one outcome.
type GroupHist struct {
	Op      string  `json:"op"`
	Outcome string  `json:"outcome"`
	Count   uint64  `json:"count"` // what the histogram holds
	Buckets Buckets `json:"buckets"`
}

// SecondHist is second I of the run (0 is its first).
type SecondHist struct {
	I        int         `json:"i"`
	Sent     uint64      `json:"sent"`
	Late     uint64      `json:"late"`
	Answered uint64      `json:"answered"`
	Hists    []GroupHist `json:"hists"`
}

// Export is the recorder's measurements, with the seconds changed since mark
// (0: all of them), and the mark to ask for next time. A caller that could
// not deliver a delta asks again with the same mark.
func (r *Recorder) Export(since uint64) (Delta, uint64) {
	next := r.mark.Add(1)
	d := Delta{}
	lag := newPacked()
	totals := map[groupKey]*hdr.PackedHistogram{}
	changed := map[int]bool{}
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		d.Sent += s.sent
		d.Late += s.late
		lag.MergeFrom(s.lag)
		for k, h := range s.totals {
			if totals[k] == nil {
				totals[k] = newPacked()
			}
			totals[k].MergeFrom(h)
		}
		for j, sec := range s.seconds {
			if sec != nil && sec.mark >= since {
				changed[j] = true
			}
		}
		s.mu.Unlock()
	}
	d.Lag = bucketsOf(lag)
	d.Totals = groupHists(totals)
	for j := range changed {
		d.Seconds = append(d.Seconds, r.exportSecond(j))
	}
	return d, next
}

// exportSecond is second j over every shard.
func (r *Recorder) exportSecond(j int) SecondHist {
	es := SecondHist{I: j}
	hists := map[groupKey]*hdr.PackedHistogram{}
	r.eachSecond(j, func(sec *second) {
		es.Sent += sec.sent
		es.Late += sec.late
		es.Answered += sec.answered
		for k, h := range sec.hists {
			if hists[k] == nil {
				hists[k] = newPacked()
			}
			hists[k].Merge(h)
		}
	})
	es.Hists = groupHists(hists)
	return es
}

func newPacked() *hdr.PackedHistogram { return hdr.NewPacked(histMin, histMax, histDigits) }

func groupHists(m map[groupKey]*hdr.PackedHistogram) []GroupHist {
	out := make([]GroupHist, 0, len(m))
	for k, h := range m {
		out = append(out, GroupHist{Op: k.op, Outcome: k.outcome, Count: uint64(h.TotalCount()), Buckets: bucketsOf(h)})
	}
	return out
}

func bucketsOf(h *hdr.PackedHistogram) Buckets {
	out := make(Buckets, 0, h.Populated())
	h.ForEachBucket(func(v, n int64) bool {
		out = append(out, [2]int64{v, n})
		return true
	})
	return out
}

// record puts buckets into h; an error when a value is outside the
// histograms' range or a count is not positive.
func (b Buckets) record(h interface{ RecordValues(v, n int64) error }) error {
	for _, vn := range b {
		if vn[1] <= 0 {
			return fmt.Errorf("a bucket's count must be positive, got %d", vn[1])
		}
		if err := h.RecordValues(vn[0], vn[1]); err != nil {
			return err
		}
	}
	return nil
}

// Apply makes shard i of the recorder hold what d carries: its whole-run
// measurements replace the shard's, and each second it carries replaces that
// second. A recorder that merges several generators gives each its shard; its
// summary, points and windows are then those of all of them together. Apply
// changes nothing when d does not decode.
func (r *Recorder) Apply(i int, d Delta) error {
	if i < 0 || i >= len(r.shards) {
		return fmt.Errorf("loadgen: no shard %d", i)
	}
	lag := newHist()
	if err := d.Lag.record(lag); err != nil {
		return fmt.Errorf("loadgen: send lag histogram: %w", err)
	}
	totals := make(map[groupKey]*hdr.Histogram, len(d.Totals))
	for _, g := range d.Totals {
		h := newHist()
		if err := g.Buckets.record(h); err != nil {
			return fmt.Errorf("loadgen: histogram of %s %s: %w", g.Op, g.Outcome, err)
		}
		totals[groupKey{g.Op, g.Outcome}] = h
	}
	seconds := make(map[int]*second, len(d.Seconds))
	for _, es := range d.Seconds {
		if es.I < 0 || es.I > maxSeconds {
			return fmt.Errorf("loadgen: second %d is out of range", es.I)
		}
		sec := &second{sent: es.Sent, late: es.Late, answered: es.Answered, hists: make(map[groupKey]*hdr.PackedHistogram, len(es.Hists))}
		for _, g := range es.Hists {
			h := newPacked()
			if err := g.Buckets.record(h); err != nil {
				return fmt.Errorf("loadgen: second %d, histogram of %s %s: %w", es.I, g.Op, g.Outcome, err)
			}
			sec.hists[groupKey{g.Op, g.Outcome}] = h
		}
		seconds[es.I] = sec
	}
	s := &r.shards[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent, s.late, s.lag, s.totals = d.Sent, d.Late, lag, totals
	for j, sec := range seconds {
		s.second(j, 0)
		s.seconds[j] = sec
	}
	return nil
}

// maxSeconds bounds the seconds a delta may name: a day, the longest run, and its drain.
const maxSeconds = 24*3600 + 3600
