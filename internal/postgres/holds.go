package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"txn/internal/ledger"
)

const holdColumns = `h.id, h.status, h.from_account_id, h.to_account_id, h.amount, h.captured_amount,
	h.currency, h.description, h.metadata, h.expires_at, h.created_at`

func scanHold(h *ledger.Hold, extra ...any) []any {
	return append([]any{(*[16]byte)(&h.ID), &h.Status, (*[16]byte)(&h.FromAccountID), &h.ToAccountID, &h.Amount,
		&h.CapturedAmount, &h.Currency, &h.Description, &h.Metadata, &h.ExpiresAt, &h.CreatedAt}, extra...)
}

// Hold returns the hold and the owners of its accounts, the from account's first.
func (s *Store) Hold(ctx context.Context, id uuid.UUID) (*ledger.Hold, []uuid.UUID, error) {
	var h ledger.Hold
	var fromUser, toUser *uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT `+holdColumns+`, fa.user_id, ta.user_id FROM holds h
		JOIN accounts fa ON fa.id = h.from_account_id
		LEFT JOIN accounts ta ON ta.id = h.to_account_id
		WHERE h.id = $1`, [16]byte(id)).Scan(scanHold(&h, &fromUser, &toUser)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, ledger.ErrNotFound
	} else if err != nil {
		return nil, nil, err
	}
	h.ExpiresAt, h.CreatedAt = h.ExpiresAt.UTC(), h.CreatedAt.UTC()
	owners := []uuid.UUID{*fromUser}
	if toUser != nil {
		owners = append(owners, *toUser)
	}
	return &h, owners, nil
}

// DueHolds lists up to limit pending holds that expire at or before now, oldest first.
func (s *Store) DueHolds(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM holds
		WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2`, now, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// holdIDs lists the holds the batch's requests capture, void or expire, and those captured.
func holdIDs(batch []*ledger.Pending) (settled, captured []uuid.UUID) {
	for _, p := range batch {
		switch p.Req.Type {
		case ledger.HoldCapture:
			captured = append(captured, p.Req.Hold)
			settled = append(settled, p.Req.Hold)
		case ledger.HoldVoid, ledger.HoldExpire:
			settled = append(settled, p.Req.Hold)
		}
	}
	return settled, captured
}

// sqlLockAccountsForHolds locks a batch's accounts and those of the holds it settles, which
// its requests do not name (migration 00009).
const sqlLockAccountsForHolds = `SELECT * FROM ledger_lock_accounts_for_holds($1, $2, $3)`

// sqlReadHolds reads the holds a batch settles, after their accounts were locked.
const sqlReadHolds = `SELECT ` + holdColumns + ` FROM holds h WHERE h.id = ANY($1)`

// readHolds reads sqlReadHolds' answer into st.
func readHolds(br pgx.BatchResults, st *ledger.BatchState) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		h := &ledger.Hold{}
		if err := rows.Scan(scanHold(h)...); err != nil {
			return err
		}
		h.ExpiresAt, h.CreatedAt = h.ExpiresAt.UTC(), h.CreatedAt.UTC()
		st.Holds[h.ID] = h
	}
	return rows.Err()
}

// sqlWriteHolds is the hold side of a batch's writes (migration 00009).
const sqlWriteHolds = `SELECT ledger_write_holds($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
	$15, $16, $17, $18)`

// writesHolds reports whether the plan has a hold side to write.
func writesHolds(plan *ledger.Plan) bool { return len(plan.Holds) > 0 || len(plan.HoldSets) > 0 }

// holdArgs are sqlWriteHolds' arguments for plan.
func holdArgs(plan *ledger.Plan, now time.Time) ([]any, error) {
	n := len(plan.Holds)
	id, from, to := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]*uuid.UUID, n)
	amount, cur, desc := make([]int64, n), make([]string, n), make([]string, n)
	meta, expires := make([]*string, n), make([]time.Time, n)
	for i, h := range plan.Holds {
		id[i], from[i], to[i], amount[i], cur[i], desc[i], expires[i] =
			h.ID, h.FromAccountID, h.ToAccountID, h.Amount, h.Currency, h.Description, h.ExpiresAt
		if len(h.Metadata) > 0 {
			b, err := json.Marshal(map[string]string(h.Metadata))
			if err != nil {
				return nil, fmt.Errorf("encode metadata: %w", err)
			}
			m := string(b)
			meta[i] = &m
		}
	}
	m := len(plan.HoldSets)
	setID, setStatus, setCaptured := make([]uuid.UUID, m), make([]string, m), make([]int64, m)
	for i, hs := range plan.HoldSets {
		setID[i], setStatus[i], setCaptured[i] = hs.ID, string(hs.Status), hs.Captured
	}
	// An account's balance and held sum change in one UPDATE: the table's check of
	// balance - held would see a half-written row otherwise.
	heldID, held, bal := make([]uuid.UUID, 0, len(plan.Held)), make([]int64, 0, len(plan.Held)), make([]*int64, 0, len(plan.Held))
	for a, v := range plan.Held {
		heldID, held = append(heldID, a), append(held, v)
		if b, ok := plan.Balances[a]; ok {
			bal = append(bal, &b)
		} else {
			bal = append(bal, nil)
		}
	}
	kScope, kKey, kHold := []string{}, []string{}, []uuid.UUID{}
	for _, kw := range plan.Keys {
		if h := kw.Record.Hold; h != nil {
			kScope, kKey, kHold = append(kScope, kw.Ref.Scope), append(kKey, kw.Ref.Key), append(kHold, h.ID)
		}
	}
	return []any{now, rawIDs(id), rawIDs(from), rawNullIDs(to), amount, cur, desc, meta, expires,
		rawIDs(setID), setStatus, setCaptured, rawIDs(heldID), held, bal,
		kScope, kKey, rawIDs(kHold)}, nil
}
