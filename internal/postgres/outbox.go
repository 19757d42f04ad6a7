package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"txn/internal/relay"
)

// relayLockID is the advisory lock the leading relay holds for as long as its session lives.
const relayLockID = 0x74786e72656c6179 // "txnrelay"

// OutboxLeader implements relay.Leader over a direct connection: advisory locks are
// session-level, which PgBouncer's transaction pooling cannot carry.
type OutboxLeader struct{ url string }

func NewOutboxLeader(directURL string) *OutboxLeader { return &OutboxLeader{url: directURL} }

func (l *OutboxLeader) TryLead(ctx context.Context) (relay.Session, error) {
	conn, err := pgx.Connect(ctx, l.url)
	if err != nil {
		return nil, err
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(relayLockID)).Scan(&ok); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	if !ok {
		conn.Close(context.WithoutCancel(ctx))
		return nil, relay.ErrNotLeader
	}
	return &outboxSession{conn: conn}, nil
}

// outboxSession does all its work on the connection that holds the lock: if that connection
// dies, so does the leadership, and this session cannot go on beside a new leader.
type outboxSession struct {
	conn    *pgx.Conn
	deleted int // rows deleted since the last vacuum
}

// vacuumAfter is how many deleted rows make the relay vacuum the outbox itself: after a large
// backlog, dead index entries slow every scan from the head until autovacuum comes round.
const vacuumAfter = 50_000

// Fetch reads only rows written by transactions older than every transaction still running
// (xid below the snapshot's xmin), so a row committed late can never be passed over. Among
// those, id order is commit order for any two rows sharing an account: ids are drawn while the
// writing batch holds its account locks.
func (s *outboxSession) Fetch(ctx context.Context, limit int) ([]relay.Record, error) {
	rows, err := s.conn.Query(ctx, `SELECT id, key, payload::text, created_at FROM outbox
		WHERE xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (relay.Record, error) {
		var rec relay.Record
		var payload string
		err := r.Scan(&rec.ID, &rec.Key, &payload, &rec.CreatedAt)
		rec.Payload = []byte(payload)
		return rec, err
	})
}

func (s *outboxSession) Delete(ctx context.Context, ids []int64) error {
	tag, err := s.conn.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	if int(tag.RowsAffected()) != len(ids) {
		// Only the leader deletes, so this means a second relay ran beside it.
		return fmt.Errorf("outbox: deleted %d of %d relayed rows", tag.RowsAffected(), len(ids))
	}
	if s.deleted += len(ids); s.deleted >= vacuumAfter {
		s.deleted = 0
		// Outside any transaction, on the leader's own connection.
		if _, err := s.conn.Exec(ctx, `VACUUM outbox`); err != nil {
			return fmt.Errorf("outbox: vacuum: %w", err)
		}
	}
	return nil
}

func (s *outboxSession) Close() { s.conn.Close(context.Background()) }
