package loadgen

import (
	"reflect"
	"testing"
	"time"
)

// feedRequest records request seq into r as a generator would: sent late by a
// few µs to ms, answered after a latency that grows with seq, one in seven failing.
func feedRequest(r *Recorder, t0 time.Time, seq int) {
	intended := t0.Add(time.Duration(seq) * 7 * time.Millisecond)
	r.Sent(seq, intended, intended.Add(time.Duration(seq%5)*700*time.Microsecond))
	op, code := "transfer", ""
	if seq%3 == 0 {
		op = "deposit"
	}
	if seq%7 == 0 {
		code = "insufficient_funds"
	}
	r.Record(seq, intended, time.Duration(1+seq%97)*time.Millisecond+time.Duration(seq)*time.Microsecond, op, code)
}

func TestRecorderExportMerge(t *testing.T) {
	t0 := time.Now().Add(-time.Minute)
	const n = 3000 // 21 s of requests
	t.Run("deltas of three generators merge to what one recorder of every request shows", func(t *testing.T) {
		whole := NewRecorder(t0, 4, time.Millisecond)
		parts := []*Recorder{NewRecorder(t0, 3, time.Millisecond), NewRecorder(t0, 1, time.Millisecond), NewRecorder(t0, 2, time.Millisecond)}
		for seq := range n {
			feedRequest(whole, t0, seq)
			feedRequest(parts[seq%3], t0, seq)
		}
		merged := NewRecorder(t0, 3, time.Millisecond)
		for i, p := range parts {
			d, _ := p.Export(0)
			if err := merged.Apply(i, d); err != nil {
				t.Fatalf("apply of part %d: %v", i, err)
			}
		}
		end := t0.Add(n * 7 * time.Millisecond)
		whole.SetEnd(end)
		merged.SetEnd(end)
		if got, want := merged.Summary(), whole.Summary(); !reflect.DeepEqual(got, want) {
			t.Errorf("merged summary = %+v\nwant %+v", got, want)
		}
		if got, want := merged.Points(), whole.Points(); !reflect.DeepEqual(got, want) {
			t.Errorf("merged points differ from one recorder's:\n%+v\nwant %+v", got, want)
		}
		if got, want := merged.Window(3, 13), whole.Window(3, 13); !reflect.DeepEqual(got, want) {
			t.Errorf("merged window 3-13 = %+v, want %+v", got, want)
		}
		if got, want := merged.Distribution(), whole.Distribution(); !reflect.DeepEqual(got, want) {
			t.Errorf("merged distribution = %v, want %v", got, want)
		}
	})
	t.Run("a delta since a mark carries only the seconds changed since, and applied over the last gives the whole", func(t *testing.T) {
		src := NewRecorder(t0, 2, time.Millisecond)
		for seq := range n / 2 {
			feedRequest(src, t0, seq)
		}
		first, mark := src.Export(0)
		for seq := n / 2; seq < n; seq++ {
			feedRequest(src, t0, seq)
		}
		second, _ := src.Export(mark)
		// Requests n/2.. are intended from 10.5 s on and answered within 0.2 s of that.
		for _, s := range second.Seconds {
			if s.I < 10 {
				t.Errorf("the second delta carries second %d, unchanged since the mark", s.I)
			}
		}
		if len(second.Seconds) == 0 || len(second.Seconds) >= len(first.Seconds)+11 {
			t.Errorf("the second delta carries %d seconds, the first %d: want only the changed ones", len(second.Seconds), len(first.Seconds))
		}
		dst := NewRecorder(t0, 1, time.Millisecond)
		for _, d := range []Delta{first, second} {
			if err := dst.Apply(0, d); err != nil {
				t.Fatal(err)
			}
		}
		src.SetEnd(t0.Add(n * 7 * time.Millisecond))
		dst.SetEnd(t0.Add(n * 7 * time.Millisecond))
		if got, want := dst.Points(), src.Points(); !reflect.DeepEqual(got, want) {
			t.Errorf("points after two deltas differ from the source's")
		}
		if got, want := dst.Summary(), src.Summary(); !reflect.DeepEqual(got, want) {
			t.Errorf("summary after two deltas = %+v, want %+v", got, want)
		}
	})
	t.Run("a delta that does not decode changes nothing", func(t *testing.T) {
		r := NewRecorder(t0, 1, time.Millisecond)
		feedRequest(r, t0, 1)
		good, _ := r.Export(0)
		dst := NewRecorder(t0, 1, time.Millisecond)
		if err := dst.Apply(0, good); err != nil {
			t.Fatal(err)
		}
		for _, b := range []Buckets{{{histMax * 2, 1}}, {{1000, 0}}, {{1000, -3}}} {
			bad := good
			bad.Totals = append([]GroupHist{}, good.Totals...)
			bad.Totals[0].Buckets = b
			if err := dst.Apply(0, bad); err == nil {
				t.Errorf("a delta with buckets %v was applied", b)
			}
		}
		if err := dst.Apply(1, good); err == nil {
			t.Error("a delta for a shard that does not exist was applied")
		}
		if got := dst.Summary().Sent; got != 1 {
			t.Errorf("sent after the refused deltas = %d, want 1", got)
		}
	})
}

// BenchmarkExport is a worker's report every 0.5 s at about 1,000 requests/s: a minute recorded,
// the last seconds changed since the previous report.
func BenchmarkExport(b *testing.B) {
	t0 := time.Now().Add(-time.Minute)
	r := NewRecorder(t0, 4, time.Millisecond)
	for seq := range 60_000 {
		feedRequest(r, t0, seq)
	}
	_, mark := r.Export(0)
	b.ReportAllocs()
	for b.Loop() {
		for seq := 59_000; seq < 59_500; seq++ {
			feedRequest(r, t0, seq)
		}
		_, mark = r.Export(mark)
	}
}
