package loadtest

import (
	"context"
	"net/http"
	"time"
)

// HoldMark follows a run's prefix in the descriptions of its holds.
const HoldMark = holdMark

// LoseAnswers acts out n requests whose answers were lost: the even ones reached the processor
// (and were applied or refused), the odd ones never did; all are left ambiguous for Settle. Of
// a hold operation that reached it, the hold did, and, every other time, its capture or void
// too. It returns how many requests were applied (a hold and its settling count one each).
func (x *Execution) LoseAnswers(ctx context.Context, n uint64) (applied int) {
	x.picker = NewPicker(x.cfg, len(x.accounts), x.seed)
	for seq := range n {
		x.ambiguous = append(x.ambiguous, seq)
		x.ambiguousTotal.Add(1)
		if seq%2 == 1 {
			continue
		}
		pk := x.picker.Pick(seq)
		if pk.Op != OpHold {
			_, token, key, body := x.request(seq)
			if a := x.gen.Send(ctx, token, key, body); a.Status == http.StatusCreated {
				applied++
			}
			continue
		}
		if _, id := x.createHold(ctx, x.gen, seq, pk); id != "" {
			applied++
			if seq%4 == 0 {
				if a, _ := x.settleHoldStep(ctx, x.gen, seq, pk, id); a.Code == "" {
					applied++
				}
			}
		}
	}
	return applied
}

// SetAnalyticsWait changes how long Verify waits for the analytics.
func (x *Execution) SetAnalyticsWait(d time.Duration) { x.deps.AnalyticsWait = d }
