package loadgen

import (
	"sync"
	"sync/atomic"
	"time"
)

// Record is one completed request, as handed to a Feed.
type Record struct {
	Seq      uint64
	Intended time.Time     // when the schedule meant it to go out
	Sent     time.Time     // when a worker started it
	Done     time.Time     // when it completed
	Latency  time.Duration // Done - Intended
	Op       string
	Status   int    // protocol status (HTTP), 0 if none was received
	Code     string // "" on success, else the error code
	TxID     string
}

// Feed hands completed requests' records to a slow consumer (a batch writer)
// through a bounded buffer. Offering never blocks: when the buffer is full the
// record is dropped and counted, so the consumer can never slow the sending.
type Feed struct {
	c       chan Record
	dropped atomic.Uint64
	once    sync.Once
}

// NewFeed returns a feed buffering up to size records.
func NewFeed(size int) *Feed { return &Feed{c: make(chan Record, max(size, 1))} }

// C is where the consumer receives records; it is closed when the run that
// owns the feed has finished.
func (f *Feed) C() <-chan Record { return f.c }

// Dropped is the number of records lost to a full buffer.
func (f *Feed) Dropped() uint64 { return f.dropped.Load() }

// Offer queues rec if there is room and reports whether it did.
func (f *Feed) Offer(rec Record) bool {
	select {
	case f.c <- rec:
		return true
	default:
		f.dropped.Add(1)
		return false
	}
}

// Close closes C. No Offer may follow it.
func (f *Feed) Close() { f.once.Do(func() { close(f.c) }) }
