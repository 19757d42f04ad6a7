// Package audit compares transactions in the ledger one by one with the effects the pipeline
// derives from them downstream: one analytics row each, and one activity item and one
// notification per side (pipeline.ActivitiesOf, pipeline.TasksOf). Counts that agree can hide a
// missing effect beside a doubled one; comparing by transaction id cannot.
package audit

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/google/uuid"
)

// Transaction is what the audit needs of a ledger transaction: its id and the users of its
// sides (nil for the side a deposit or withdrawal does not have).
type Transaction struct {
	ID               uuid.UUID
	FromUser, ToUser *uuid.UUID
}

// sides is how many per-side effects (activity items, notifications) t must have.
func (t Transaction) sides() int {
	n := 0
	if t.FromUser != nil {
		n++
	}
	if t.ToUser != nil {
		n++
	}
	return n
}

// Counts is how many effects a store holds per transaction id.
type Counts map[uuid.UUID]int

// Sources are where the audit reads: the ledger's transactions by description prefix, the
// analytics rows by the same prefix, and the per-user read models by the transactions' users.
type Sources struct {
	Transactions  func(ctx context.Context, prefix string) ([]Transaction, error)
	Analytics     func(ctx context.Context, prefix string) (Counts, error)
	Activities    func(ctx context.Context, users []uuid.UUID) (Counts, error)
	Notifications func(ctx context.Context, users []uuid.UUID) (Counts, error)
}

// Diff is one store compared with the ledger.
type Diff struct {
	Store    string
	Expected int // effects the ledger's transactions call for
	Found    int // effects the store holds for them and any others of the same users
	Missing  int // transactions with fewer effects than they call for
	Twice    int // transactions with more
	Unknown  int // transactions the store has and the ledger does not
	Examples []string
}

// OK reports whether the store holds exactly the effects the ledger calls for.
func (d Diff) OK() bool { return d.Missing == 0 && d.Twice == 0 && d.Unknown == 0 }

func (d Diff) String() string {
	s := fmt.Sprintf("%-13s expected %d, found %d: %d missing, %d more than once, %d unknown to the ledger",
		d.Store, d.Expected, d.Found, d.Missing, d.Twice, d.Unknown)
	if len(d.Examples) > 0 {
		s += " (e.g. " + strings.Join(d.Examples, ", ") + ")"
	}
	return s
}

const maxExamples = 3

// Compare compares what a store holds with what each transaction calls for.
func Compare(store string, want map[uuid.UUID]int, got Counts) Diff {
	d := Diff{Store: store}
	example := func(what string, id uuid.UUID) {
		if len(d.Examples) < maxExamples {
			d.Examples = append(d.Examples, what+" "+id.String())
		}
	}
	ids := make([]uuid.UUID, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	for _, id := range ids {
		n, g := want[id], got[id]
		d.Expected += n
		switch {
		case g < n:
			d.Missing++
			example("missing", id)
		case g > n:
			d.Twice++
			example("twice", id)
		}
	}
	for id, g := range got {
		d.Found += g
		if _, ok := want[id]; !ok {
			d.Unknown++
			example("unknown", id)
		}
	}
	return d
}

// Run reads the transactions whose description starts with prefix and compares each store with
// them. It returns one Diff per store, in the order analytics, activities, notifications.
func Run(ctx context.Context, src Sources, prefix string) ([]Diff, int, error) {
	txs, err := src.Transactions(ctx, prefix)
	if err != nil {
		return nil, 0, fmt.Errorf("ledger: %w", err)
	}
	once := make(map[uuid.UUID]int, len(txs))
	perSide := make(map[uuid.UUID]int, len(txs))
	seen := map[uuid.UUID]bool{}
	var users []uuid.UUID
	for _, t := range txs {
		once[t.ID], perSide[t.ID] = 1, t.sides()
		for _, u := range []*uuid.UUID{t.FromUser, t.ToUser} {
			if u != nil && !seen[*u] {
				seen[*u] = true
				users = append(users, *u)
			}
		}
	}
	var diffs []Diff
	for _, s := range []struct {
		name string
		want map[uuid.UUID]int
		read func() (Counts, error)
	}{
		{"analytics", once, func() (Counts, error) { return src.Analytics(ctx, prefix) }},
		{"activities", perSide, func() (Counts, error) { return src.Activities(ctx, users) }},
		{"notifications", perSide, func() (Counts, error) { return src.Notifications(ctx, users) }},
	} {
		got, err := s.read()
		if err != nil {
			return diffs, len(txs), fmt.Errorf("%s: %w", s.name, err)
		}
		diffs = append(diffs, Compare(s.name, s.want, got))
	}
	return diffs, len(txs), nil
}
