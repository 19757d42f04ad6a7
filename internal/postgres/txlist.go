package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"txn/internal/ledger"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Transactions lists the transactions f selects, newest first. With an account, they are read
// through its entries in entries_account_time (cursor: the entry's time and id); without, in
// the order of their ids, which are UUIDv7s and so follow creation time (cursor: the id). A
// metadata filter is a containment test the partial GIN index serves.
func (s *Store) Transactions(ctx context.Context, f ledger.TxFilter, p ledger.ListParams) (ledger.Page[ledger.Transaction], error) {
	sql, args, err := txListQuery(f, p)
	if err != nil {
		return ledger.Page[ledger.Transaction]{}, err
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return ledger.Page[ledger.Transaction]{}, err
	}
	type row struct {
		tx  ledger.Transaction
		eID int64
		eAt time.Time
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(scanTx(&x.tx, &x.eID, &x.eAt)...)
		x.tx.Status = ledger.StatusCompleted
		x.tx.CreatedAt = x.tx.CreatedAt.UTC()
		return x, err
	})
	pg, err := page(list, p.Limit, err, func(x row) string {
		if f.AccountID == uuid.Nil {
			return encodeUUID(x.tx.ID)
		}
		return entryCursor(x.eAt, x.eID)
	})
	out := ledger.Page[ledger.Transaction]{Next: pg.Next, Items: make([]ledger.Transaction, len(pg.Items))}
	for i, x := range pg.Items {
		out.Items[i] = x.tx
	}
	return out, err
}

// txListQuery is the SQL and arguments of Transactions.
func txListQuery(f ledger.TxFilter, p ledger.ListParams) (string, []any, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	timeCol, order := "t.created_at", "t.id DESC"
	from := "transactions t"
	if f.AccountID != uuid.Nil {
		from = "entries e JOIN transactions t ON t.id = e.transaction_id"
		timeCol, order = "e.created_at", "e.created_at DESC, e.id DESC"
		where = append(where, "e.account_id = "+arg(f.AccountID))
	}
	if p.Cursor != "" {
		if f.AccountID != uuid.Nil {
			at, id, ok := parseEntryCursor(p.Cursor)
			if !ok {
				return "", nil, badCursor
			}
			where = append(where, "(e.created_at, e.id) < ("+arg(at)+", "+arg(id)+")")
		} else {
			b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
			if err != nil || len(b) != 16 {
				return "", nil, badCursor
			}
			where = append(where, "t.id < "+arg(uuid.UUID(b)))
		}
	}
	if f.Type != "" {
		where = append(where, "t.type = "+arg(string(f.Type)))
	}
	if !f.From.IsZero() {
		where = append(where, timeCol+" >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, timeCol+" < "+arg(f.To))
	}
	if len(f.Metadata) > 0 {
		b, err := json.Marshal(map[string]string(f.Metadata))
		if err != nil {
			return "", nil, err
		}
		where = append(where, "t.metadata IS NOT NULL AND t.metadata @> "+arg(string(b))+"::jsonb")
	}
	cursorCols := ", 0::bigint, t.created_at"
	if f.AccountID != uuid.Nil {
		cursorCols = ", e.id, e.created_at"
	}
	sql := "SELECT " + txColumns + cursorCols + " FROM " + from
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY " + order + " LIMIT " + arg(p.Limit+1)
	return sql, args, nil
}
