package loadtest

import (
	"context"
	"net/http"
)

// LoseAnswers acts out n requests whose answers were lost: the even ones reached the processor
// (and were applied or refused), the odd ones never did; all are left ambiguous for Settle. It
// returns how many were applied.
func (x *Execution) LoseAnswers(ctx context.Context, n uint64) (applied int) {
	x.picker = NewPicker(x.cfg, len(x.accounts), x.seed)
	for seq := range n {
		if seq%2 == 0 {
			_, token, key, body := x.request(seq)
			if a := x.gen.Send(ctx, token, key, body); a.Status == http.StatusCreated {
				applied++
			}
		}
		x.ambiguous = append(x.ambiguous, seq)
		x.ambiguousTotal.Add(1)
	}
	return applied
}
