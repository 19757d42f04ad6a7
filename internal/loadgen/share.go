package loadgen

import "fmt"

// Share is one part of a schedule split between several generators, as k6's
// execution segments split one: generator Index of Count sends requests Index,
// Index+Count, Index+2·Count, ... Every part keeps the schedule's shape (its
// ramps and rate changes, at 1/Count of the rate), and together they send
// every request once, each at its own time.
type Share struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// Whole is the share of a generator that sends the schedule alone.
var Whole = Share{Index: 0, Count: 1}

func (s Share) validate() error {
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("loadgen: share %d of %d: the index must be from 0 to count-1", s.Index, s.Count)
	}
	return nil
}

// Contains reports whether request seq is the share's.
func (s Share) Contains(seq uint64) bool { return seq%uint64(s.Count) == uint64(s.Index) }

// Of is how many of a schedule's first total requests are the share's.
func (s Share) Of(total uint64) uint64 {
	if total <= uint64(s.Index) {
		return 0
	}
	return (total-uint64(s.Index)-1)/uint64(s.Count) + 1
}

// String is the share as "index+1/count", as a person counts.
func (s Share) String() string { return fmt.Sprintf("%d/%d", s.Index+1, s.Count) }
