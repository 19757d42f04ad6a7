package loadgen

import (
	"fmt"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Delta carries a recorder's measurements to another process, where Apply
// merges them with those of other generators of the same run (Locust's
// workers report to their master the same way). Histograms travel in HDR's
// V2 compressed encoding (base64 text), so they merge without losing precision.
type Delta struct {
	// The whole run so far: counters, the send lag and the latency by
	// operation and outcome. Always whole: there are few of them.
	Sent   uint64         `json:"sent"`
	Late   uint64         `json:"late"`
	Lag    string         `json:"lag"`
	Totals []EncodedGroup `json:"totals"`
	// Seconds are those that changed since the mark the export was asked for.
	Seconds []EncodedSecond `json:"seconds"`
}

// EncodedGroup is the histogram of one operation with one outcome.
type EncodedGroup struct {
	Op      string `json:"op"`
	Outcome string `json:"outcome"`
	Count   uint64 `json:"count"` // what the histogram holds, readable without decoding it
	Hist    string `json:"hist"`
}

// EncodedSecond is second I of the run (0 is its first).
type EncodedSecond struct {
	I        int            `json:"i"`
	Sent     uint64         `json:"sent"`
	Late     uint64         `json:"late"`
	Answered uint64         `json:"answered"`
	Hists    []EncodedGroup `json:"hists"`
}

// Export is the recorder's measurements, with the seconds changed since mark
// (0: all of them), and the mark to ask for next time. A caller that could
// not deliver a delta asks again with the same mark.
func (r *Recorder) Export(since uint64) (Delta, uint64, error) {
	next := r.mark.Add(1)
	d := Delta{}
	lag := newHist()
	totals := map[groupKey]*hdr.Histogram{}
	changed := map[int]bool{}
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		d.Sent += s.sent
		d.Late += s.late
		lag.Merge(s.lag)
		for k, h := range s.totals {
			if totals[k] == nil {
				totals[k] = newHist()
			}
			totals[k].Merge(h)
		}
		for j, sec := range s.seconds {
			if sec != nil && sec.mark >= since {
				changed[j] = true
			}
		}
		s.mu.Unlock()
	}
	var err error
	if d.Lag, err = encode(lag); err != nil {
		return Delta{}, 0, err
	}
	for k, h := range totals {
		enc, err := encode(h)
		if err != nil {
			return Delta{}, 0, err
		}
		d.Totals = append(d.Totals, EncodedGroup{Op: k.op, Outcome: k.outcome, Count: uint64(h.TotalCount()), Hist: enc})
	}
	for j := range changed {
		es, err := r.exportSecond(j)
		if err != nil {
			return Delta{}, 0, err
		}
		d.Seconds = append(d.Seconds, es)
	}
	return d, next, nil
}

// exportSecond is second j over every shard.
func (r *Recorder) exportSecond(j int) (EncodedSecond, error) {
	es := EncodedSecond{I: j}
	hists := map[groupKey]*hdr.PackedHistogram{}
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		if j < len(s.seconds) && s.seconds[j] != nil {
			sec := s.seconds[j]
			es.Sent += sec.sent
			es.Late += sec.late
			es.Answered += sec.answered
			for k, h := range sec.hists {
				if hists[k] == nil {
					hists[k] = hdr.NewPacked(histMin, histMax, histDigits)
				}
				hists[k].Merge(h)
			}
		}
		s.mu.Unlock()
	}
	for k, h := range hists {
		enc, err := h.Encode()
		if err != nil {
			return EncodedSecond{}, err
		}
		es.Hists = append(es.Hists, EncodedGroup{Op: k.op, Outcome: k.outcome, Count: uint64(h.TotalCount()), Hist: string(enc)})
	}
	return es, nil
}

func encode(h *hdr.Histogram) (string, error) {
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	return string(b), err
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
	lag, err := hdr.Decode([]byte(d.Lag))
	if err != nil {
		return fmt.Errorf("loadgen: send lag histogram: %w", err)
	}
	totals := make(map[groupKey]*hdr.Histogram, len(d.Totals))
	for _, g := range d.Totals {
		h, err := hdr.Decode([]byte(g.Hist))
		if err != nil {
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
			h, err := hdr.DecodePacked([]byte(g.Hist))
			if err != nil {
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
