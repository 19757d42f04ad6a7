package loadgen

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry: microseconds from 1 µs to 60 s, 3 significant digits.
// Longer latencies are recorded as 60 s.
const (
	histMin    = 1
	histMax    = int64(60 * time.Second / time.Microsecond)
	histDigits = 3
)

// OutcomeOK is the outcome label of a successful request; a failed one is
// labelled with its error code.
const OutcomeOK = "ok"

// Latency is a latency distribution in milliseconds (fractions allowed), as
// API.md's latency_ms.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Group is the latency of one operation with one outcome over the whole run.
type Group struct {
	Op      string  `json:"op"`
	Outcome string  `json:"outcome"` // OutcomeOK or an error code
	Count   uint64  `json:"count"`
	Latency Latency `json:"latency_ms"`
}

// Summary is the whole run so far.
type Summary struct {
	Sent    uint64            `json:"sent"`
	Late    uint64            `json:"late"` // sent more than the late threshold after their intended time
	OK      uint64            `json:"ok"`
	Failed  uint64            `json:"failed"`
	Errors  map[string]uint64 `json:"errors"`     // failures by code
	Latency Latency           `json:"latency_ms"` // every completed request, from its intended time
	SendLag Latency           `json:"send_lag_ms"`
	Groups  []Group           `json:"groups"` // by operation and outcome, sorted
}

// Point is one second of the run, for API.md's timeseries. Sent (and Late)
// count the requests that went out in that second, Answered those whose
// answer came in it, and InFlight those out and unanswered at its end. OK,
// Failed, Errors and the percentiles are of the requests whose intended send
// time falls in that second, so a stall shows up in the second whose load it
// delayed; once the run is over, OK+Failed over all points equals Sent's sum.
type Point struct {
	T        time.Time         `json:"t"` // start of the second
	Sent     uint64            `json:"sent"`
	Answered uint64            `json:"answered"`
	InFlight uint64            `json:"in_flight"`
	OK       uint64            `json:"ok"`
	Failed   uint64            `json:"failed"`
	Errors   map[string]uint64 `json:"errors"` // failures by code
	Rate     float64           `json:"rate"`   // Sent per second; the last second may be partial
	Target   float64           `json:"target"` // the schedule's requests per second over this second
	P50Ms    float64           `json:"p50_ms"`
	P90Ms    float64           `json:"p90_ms"`
	P95Ms    float64           `json:"p95_ms"`
	P99Ms    float64           `json:"p99_ms"`
	MaxMs    float64           `json:"max_ms"`
	Late     uint64            `json:"late"`
}

type groupKey struct{ op, outcome string }

// second holds one second of one shard. Per-second histograms are packed:
// a run keeps many of them and each fills few buckets.
type second struct {
	sent, late, answered uint64                            // by send and receive time
	hists                map[groupKey]*hdr.PackedHistogram // by intended time
	mark                 uint64                            // the recorder's export mark when last changed
}

// shard is the part of the recorder one set of workers writes to; its lock is
// held only for a single record call, or for one histogram merge by a reader.
type shard struct {
	mu      sync.Mutex
	sent    uint64
	late    uint64
	lag     *hdr.Histogram
	totals  map[groupKey]*hdr.Histogram
	seconds []*second
	_       [64]byte // keep shards' hot fields on separate cache lines
}

// Recorder keeps latency histograms for the whole run and per second of it,
// split by operation and outcome. It is safe for concurrent use: writers name
// a shard (a runner spreads its workers over them), so they rarely contend.
type Recorder struct {
	start     time.Time
	lateAfter time.Duration
	shards    []shard
	mark      atomic.Uint64 // advanced by each Export, so it can send only what changed

	mu  sync.Mutex
	end time.Time // zero while running
}

// NewRecorder returns a recorder for a run starting at start, with the given
// number of shards (at least 1). A send more than lateAfter after its
// intended time counts as late.
func NewRecorder(start time.Time, shards int, lateAfter time.Duration) *Recorder {
	if shards < 1 {
		shards = 1
	}
	r := &Recorder{start: start, lateAfter: lateAfter, shards: make([]shard, shards)}
	for i := range r.shards {
		r.shards[i].lag = newHist()
		r.shards[i].totals = make(map[groupKey]*hdr.Histogram)
	}
	return r
}

func newHist() *hdr.Histogram { return hdr.New(histMin, histMax, histDigits) }

// Start is the start of the run.
func (r *Recorder) Start() time.Time { return r.start }

// SetEnd marks the end of the schedule's running phase (its end, or the
// stop), which bounds the points and the rate of the last one. Until it is
// set, points run up to now.
func (r *Recorder) SetEnd(t time.Time) {
	r.mu.Lock()
	r.end = t
	r.mu.Unlock()
}

func micros(d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	switch {
	case us < 0:
		return 0
	case us > histMax:
		return histMax
	}
	return us
}

// second is second i of the shard, marked as changed at mark.
func (s *shard) second(i int, mark uint64) *second {
	if i < 0 {
		i = 0
	}
	for len(s.seconds) <= i {
		s.seconds = append(s.seconds, nil)
	}
	if s.seconds[i] == nil {
		s.seconds[i] = &second{hists: make(map[groupKey]*hdr.PackedHistogram)}
	}
	s.seconds[i].mark = mark
	return s.seconds[i]
}

// tally adds the second's requests of operation op and outcome outcome ("" matches any) to
// ok, failed and errs (by code), and hands each of their histograms to merge.
func (sec *second) tally(op, outcome string, ok, failed *uint64, errs map[string]uint64, merge func(*hdr.PackedHistogram)) {
	for k, h := range sec.hists {
		if !matches(k, op, outcome) {
			continue
		}
		n := uint64(h.TotalCount())
		if k.outcome == OutcomeOK {
			*ok += n
		} else {
			*failed += n
			errs[k.outcome] += n
		}
		merge(h)
	}
}

func (r *Recorder) secondOf(t time.Time) int { return int(t.Sub(r.start) / time.Second) }

// Sent records that a request intended for intended went out at sentAt.
// It reports whether the send was late.
func (r *Recorder) Sent(shardIdx int, intended, sentAt time.Time) (late bool) {
	lag := sentAt.Sub(intended)
	late = lag > r.lateAfter
	s := &r.shards[shardIdx%len(r.shards)]
	s.mu.Lock()
	s.sent++
	sec := s.second(r.secondOf(sentAt), r.mark.Load())
	sec.sent++
	if late {
		s.late++
		sec.late++
	}
	_ = s.lag.RecordValue(micros(lag))
	s.mu.Unlock()
	return late
}

// DefaultOp names the operation of requests that report none.
const DefaultOp = "request"

// Record records a completed request: op is its operation, code its error
// code ("" for success) and latency the time from its intended send time to
// its completion.
func (r *Recorder) Record(shardIdx int, intended time.Time, latency time.Duration, op, code string) {
	if op == "" {
		op = DefaultOp
	}
	k := groupKey{op, code}
	if code == "" {
		k.outcome = OutcomeOK
	}
	v := micros(latency)
	s := &r.shards[shardIdx%len(r.shards)]
	s.mu.Lock()
	h := s.totals[k]
	if h == nil {
		h = newHist()
		s.totals[k] = h
	}
	_ = h.RecordValue(v)
	mark := r.mark.Load()
	s.second(r.secondOf(intended.Add(latency)), mark).answered++
	sec := s.second(r.secondOf(intended), mark)
	p := sec.hists[k]
	if p == nil {
		p = hdr.NewPacked(histMin, histMax, histDigits)
		sec.hists[k] = p
	}
	_ = p.RecordValue(v)
	s.mu.Unlock()
}

func matches(k groupKey, op, outcome string) bool {
	return (op == "" || k.op == op) && (outcome == "" || k.outcome == outcome)
}

// Histogram returns a merged copy of the whole-run histogram (microseconds)
// of the requests with operation op and outcome outcome; "" matches any.
func (r *Recorder) Histogram(op, outcome string) *hdr.Histogram {
	out := newHist()
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		keys := make([]groupKey, 0, len(s.totals))
		for k := range s.totals {
			if matches(k, op, outcome) {
				keys = append(keys, k)
			}
		}
		s.mu.Unlock()
		// One merge per lock hold keeps the workers of this shard waiting
		// for at most one histogram's worth of work.
		for _, k := range keys {
			s.mu.Lock()
			out.Merge(s.totals[k])
			s.mu.Unlock()
		}
	}
	return out
}

// Latency is the whole-run latency of the requests with operation op and
// outcome outcome; "" matches any.
func (r *Recorder) Latency(op, outcome string) Latency {
	return latencyOf(r.Histogram(op, outcome))
}

type quantiler interface {
	TotalCount() int64
	ValueAtPercentilesSlice([]float64) []int64
	Max() int64
}

var summaryPercentiles = []float64{50, 90, 99, 99.9}

func ms(us int64) float64 { return float64(us) / 1000 }

func latencyOf(h quantiler) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	v := h.ValueAtPercentilesSlice(summaryPercentiles)
	return Latency{P50: ms(v[0]), P90: ms(v[1]), P99: ms(v[2]), P999: ms(v[3]), Max: ms(h.Max())}
}

// Summary is the whole run so far.
func (r *Recorder) Summary() Summary {
	sum := Summary{Errors: map[string]uint64{}}
	all := newHist()
	lag := newHist()
	groups := map[groupKey]*hdr.Histogram{}
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		sum.Sent += s.sent
		sum.Late += s.late
		lag.Merge(s.lag)
		keys := make([]groupKey, 0, len(s.totals))
		for k := range s.totals {
			keys = append(keys, k)
		}
		s.mu.Unlock()
		for _, k := range keys {
			g := groups[k]
			if g == nil {
				g = newHist()
				groups[k] = g
			}
			s.mu.Lock()
			g.Merge(s.totals[k])
			s.mu.Unlock()
		}
	}
	for k, g := range groups {
		n := uint64(g.TotalCount())
		all.Merge(g)
		if k.outcome == OutcomeOK {
			sum.OK += n
		} else {
			sum.Failed += n
			sum.Errors[k.outcome] += n
		}
		sum.Groups = append(sum.Groups, Group{Op: k.op, Outcome: k.outcome, Count: n, Latency: latencyOf(g)})
	}
	sort.Slice(sum.Groups, func(i, j int) bool {
		a, b := sum.Groups[i], sum.Groups[j]
		if a.Op != b.Op {
			return a.Op < b.Op
		}
		return a.Outcome < b.Outcome
	})
	sum.Latency = latencyOf(all)
	sum.SendLag = latencyOf(lag)
	return sum
}

// Points is one point per second of the running phase so far, over every
// operation and outcome.
func (r *Recorder) Points() []Point { return r.PointsFor("", "") }

// PointsFor is Points with OK, Failed, Errors and the percentiles restricted
// to operation op and outcome outcome ("" matches any). Sent, Answered,
// InFlight, Late and Rate stay those of all requests.
func (r *Recorder) PointsFor(op, outcome string) []Point {
	r.mu.Lock()
	end := r.end
	r.mu.Unlock()
	if end.IsZero() {
		end = time.Now()
	}
	n := max(0, int((end.Sub(r.start)+time.Second-1)/time.Second))
	// Nothing recorded is left out, even past the end.
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		n = max(n, len(s.seconds))
		s.mu.Unlock()
	}
	points := make([]Point, n)
	acc := hdr.NewPacked(histMin, histMax, histDigits)
	var sent, answered uint64
	for i := range points {
		p := &points[i]
		p.T = r.start.Add(time.Duration(i) * time.Second)
		p.Errors = map[string]uint64{}
		acc.Reset()
		r.eachSecond(i, func(sec *second) {
			p.Sent += sec.sent
			p.Late += sec.late
			p.Answered += sec.answered
			sec.tally(op, outcome, &p.OK, &p.Failed, p.Errors, func(h *hdr.PackedHistogram) { acc.Merge(h) })
		})
		sent += p.Sent
		answered += p.Answered
		p.InFlight = sent - min(answered, sent)
		if acc.TotalCount() > 0 {
			v := acc.ValueAtPercentilesSlice(pointPercentiles)
			p.P50Ms, p.P90Ms, p.P95Ms, p.P99Ms, p.MaxMs = ms(v[0]), ms(v[1]), ms(v[2]), ms(v[3]), ms(acc.Max())
		}
		length := min(time.Second, end.Sub(p.T))
		if length > 0 {
			p.Rate = float64(p.Sent) / length.Seconds()
		}
	}
	return points
}

var pointPercentiles = []float64{50, 90, 95, 99}

// eachSecond calls fn with second j of every shard that recorded it, under
// that shard's lock.
func (r *Recorder) eachSecond(j int, fn func(*second)) {
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		if j < len(s.seconds) && s.seconds[j] != nil {
			fn(s.seconds[j])
		}
		s.mu.Unlock()
	}
}

// Window is a span of whole seconds of the run: what was sent in it, and how the requests
// intended in it ended.
type Window struct {
	Sent    uint64            `json:"sent"`
	OK      uint64            `json:"ok"`
	Failed  uint64            `json:"failed"`
	Errors  map[string]uint64 `json:"errors"`
	Latency Latency           `json:"latency_ms"`
}

// Window merges seconds [from, to) of the run (0 is its first).
func (r *Recorder) Window(from, to int) Window {
	w := Window{Errors: map[string]uint64{}}
	acc := newHist()
	for j := range r.shards {
		s := &r.shards[j]
		s.mu.Lock()
		for i := max(from, 0); i < min(to, len(s.seconds)); i++ {
			sec := s.seconds[i]
			if sec == nil {
				continue
			}
			w.Sent += sec.sent
			sec.tally("", "", &w.OK, &w.Failed, w.Errors, func(h *hdr.PackedHistogram) { h.MergeInto(acc) })
		}
		s.mu.Unlock()
	}
	w.Latency = latencyOf(acc)
	return w
}

// Percentile is one point of a latency distribution: P percent of the requests took at most
// Ms milliseconds.
type Percentile struct {
	P  float64 `json:"p"`
	Ms float64 `json:"ms"`
}

// DistributionPercentiles are the points Distribution gives: dense towards the tail, as HDR
// histograms are usually plotted.
var DistributionPercentiles = []float64{0, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96, 97, 97.5,
	98, 98.5, 99, 99.25, 99.5, 99.75, 99.9, 99.95, 99.99, 99.995, 99.999, 100}

// Distribution is the whole run's latency distribution at DistributionPercentiles; nil when
// nothing completed.
func (r *Recorder) Distribution() []Percentile {
	return DistributionOf(r.Histogram("", ""))
}

// DistributionOf is h's distribution at DistributionPercentiles; nil when h is empty.
func DistributionOf(h *hdr.Histogram) []Percentile {
	if h.TotalCount() == 0 {
		return nil
	}
	vals := h.ValueAtPercentilesSlice(DistributionPercentiles)
	out := make([]Percentile, len(DistributionPercentiles))
	for i, p := range DistributionPercentiles {
		v := vals[i]
		switch p {
		case 0:
			v = h.Min()
		case 100:
			v = h.Max()
		}
		out[i] = Percentile{P: p, Ms: ms(v)}
	}
	return out
}
