package loadtest

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"txn/internal/backoff"
	"txn/internal/ledger"
)

// A hold operation of the mix is two requests timed as one: POST /holds from one account to
// another, then the capture of part of it or its void, each with an idempotency key derived
// from the run and seq. It is booked once its fate is definite; while an answer is lost (or
// says to try again) the whole operation is resent by Settle, where the hold's key replays the
// same hold and the capture's or void's key its first outcome.

// holdMark follows the run's prefix in its holds' descriptions (their captures carry the
// same), so the analytics rows of holds can be counted apart from the rest.
const holdMark = "h"

// holdFate is what became of a hold operation.
type holdFate int

const (
	holdRefused  holdFate = iota // no hold: refused (insufficient funds and the like), nothing happened
	holdCaptured                 // captured: the amount moved from → to as a transfer
	holdVoided
	holdExpired // it expired before a resent capture or void reached it: released
	holdPending // its capture or void was refused: left pending, a problem
	holdUnknown // an answer was lost or said to try again: resend the operation
)

// holdOutcome is a hold operation's fate, and what it captured.
type holdOutcome struct {
	fate     holdFate
	captured int64
}

// holdStats counts the run's hold operations by fate.
type holdStats struct {
	created, captured, capturedAmount, voided, expired, pending atomic.Int64
}

// book counts a definite outcome.
func (s *holdStats) book(o holdOutcome) {
	if o.fate == holdRefused || o.fate == holdUnknown {
		return
	}
	s.created.Add(1)
	switch o.fate {
	case holdCaptured:
		s.captured.Add(1)
		s.capturedAmount.Add(o.captured)
	case holdVoided:
		s.voided.Add(1)
	case holdExpired:
		s.expired.Add(1)
	case holdPending:
		s.pending.Add(1)
	}
}

// add counts what another generator of the run booked.
func (s *holdStats) add(c HoldCounts) {
	s.created.Add(c.Created)
	s.captured.Add(c.Captured)
	s.capturedAmount.Add(c.CapturedAmount)
	s.voided.Add(c.Voided)
	s.expired.Add(c.Expired)
	s.pending.Add(c.Pending)
}

// analyticsRows is how many analytics rows the booked holds make: one for each hold's
// creation, one for its capture (a transaction), void or expiry.
func (s *holdStats) analyticsRows() int64 {
	return s.created.Load() + s.captured.Load() + s.voided.Load() + s.expired.Load()
}

// counts are the stats as the verification shows them; held is the processor's figure.
func (s *holdStats) counts(held int64) *HoldCounts {
	return &HoldCounts{Created: s.created.Load(), Captured: s.captured.Load(), CapturedAmount: s.capturedAmount.Load(),
		Voided: s.voided.Load(), Expired: s.expired.Load(), Pending: s.pending.Load(), Held: held}
}

// tryAgain reports an answer that leaves a request to be sent again with its key: none came,
// or one that says it was not applied for now (429, 503, the key in use by an attempt still
// running).
func tryAgain(a Answer) bool {
	return a.Ambiguous() || a.Status == http.StatusTooManyRequests || a.Status == http.StatusServiceUnavailable ||
		a.Code == "idempotency_key_in_use"
}

// holdOp performs hold operation seq through c: the hold, then its capture or void. It returns
// the answer that decides it (the hold's when that failed, else the capture's or void's) and
// its outcome. While generating, a hold refused for now (429, 503) is a failed request, as a
// transfer would be; when settling, it is tried again.
func (x *Execution) holdOp(ctx context.Context, c *LedgerClient, seq uint64, pk Pick, settling bool) (Answer, holdOutcome) {
	a, id := x.createHold(ctx, c, seq, pk)
	switch {
	case id != "":
	case a.Ambiguous() || (settling && tryAgain(a)):
		return a, holdOutcome{fate: holdUnknown}
	default:
		return a, holdOutcome{fate: holdRefused}
	}
	return x.settleHoldStep(ctx, c, seq, pk, id)
}

// createHold sends operation seq's hold and returns the answer and, when it was created, its id.
func (x *Execution) createHold(ctx context.Context, c *LedgerClient, seq uint64, pk Pick) (Answer, string) {
	token, body := x.moneyBody(pk, "", holdMark, seq)
	a := c.CreateHold(ctx, token, x.seqKey(seq), body)
	if a.Status == http.StatusCreated && a.TxID == "" {
		// The answer broke off before the hold's id: resending the key will tell it.
		return Answer{Code: "bad_answer"}, ""
	}
	return a, a.TxID
}

// settleHoldStep captures or voids hold id of operation seq, as its pick says.
func (x *Execution) settleHoldStep(ctx context.Context, c *LedgerClient, seq uint64, pk Pick, id string) (Answer, holdOutcome) {
	token, key := x.users[x.accounts[pk.From].owner].APIKey, x.seqKey(seq)
	var a Answer
	want := holdOutcome{fate: holdVoided}
	if pk.Capture > 0 {
		a, want = c.CaptureHold(ctx, token, key+":capture", id, pk.Capture), holdOutcome{fate: holdCaptured, captured: pk.Capture}
	} else {
		a = c.VoidHold(ctx, token, key+":void", id)
	}
	switch {
	case a.Code == "":
		return a, want
	case tryAgain(a):
		return a, holdOutcome{fate: holdUnknown}
	case a.Code == string(ledger.CodeHoldNotPending):
		// Settled otherwise, or expired: the hold says how.
		return a, x.holdFate(ctx, id)
	}
	return a, holdOutcome{fate: holdPending}
}

// holdFate reads what became of hold id, which is no longer pending.
func (x *Execution) holdFate(ctx context.Context, id string) holdOutcome {
	h, err := x.prep.Hold(ctx, id)
	if err != nil {
		return holdOutcome{fate: holdUnknown}
	}
	switch h.Status {
	case ledger.HoldCaptured:
		return holdOutcome{fate: holdCaptured, captured: h.CapturedAmount}
	case ledger.HoldVoided:
		return holdOutcome{fate: holdVoided}
	case ledger.HoldExpired:
		return holdOutcome{fate: holdExpired}
	}
	return holdOutcome{fate: holdUnknown}
}

// settleHold resends hold operation seq, both steps with their keys, until its fate is
// definite, books it, and reports whether it got there.
func (x *Execution) settleHold(ctx context.Context, seq uint64, pk Pick) bool {
	wait := backoff.New(100*time.Millisecond, 2*time.Second)
	for attempt := 1; ; attempt++ {
		if _, o := x.holdOp(ctx, x.prep, seq, pk, true); o.fate != holdUnknown {
			x.holds.book(o)
			return true
		}
		if attempt == 8 || !wait.Wait(ctx) {
			return false
		}
	}
}
