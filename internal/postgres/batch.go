package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"txn/internal/ledger"
)

// Commit applies a batch of transaction requests in one database transaction and two round
// trips: the first claims the idempotency keys and locks every account involved in id order
// (the order everyone locks in, so batches never deadlock); ledger.Apply then decides each
// request in memory; the second writes transactions, entries, balances, outbox events and key
// outcomes in one statement, and commits.
func (s *Store) Commit(ctx context.Context, batch []*ledger.Pending) error {
	for attempt := 1; ; attempt++ {
		err := s.commitOnce(ctx, batch)
		if err == nil || !retryable(err) || attempt == 5 {
			return err
		}
		if err := sleepCtx(ctx, time.Duration(attempt)*5*time.Millisecond); err != nil {
			return err
		}
	}
}

const (
	sqlClaimKeys = `INSERT INTO idempotency_keys (scope, key, request_hash)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) ORDER BY 1, 2
		ON CONFLICT DO NOTHING`
	// After the claim, every key this batch carries is either ours (transaction_id and
	// error_code NULL, hash just written) or was committed by an earlier batch: the claim
	// waited for any batch still holding it.
	sqlReadKeys = `SELECT k.scope, k.key, k.request_hash, k.error_code, k.error_detail, ` + txColumns + `
		FROM idempotency_keys k
		JOIN unnest($1::text[], $2::text[]) AS q(scope, key) ON k.scope = q.scope AND k.key = q.key
		LEFT JOIN transactions t ON t.id = k.transaction_id
		WHERE k.transaction_id IS NOT NULL OR k.error_code IS NOT NULL`
	sqlLockAccounts = `SELECT id, user_id, currency, balance, external FROM accounts
		WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`
	sqlWrite = `WITH
	t AS (INSERT INTO transactions (id, type, from_account_id, to_account_id, amount, currency, description, created_at)
		SELECT id, type, f, tt, amount, currency, description, $9
		FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::bigint[], $6::text[], $7::text[])
			AS x(id, type, f, tt, amount, currency, description)),
	e AS (INSERT INTO entries (transaction_id, account_id, amount, balance_after, created_at)
		SELECT tx, acc, amount, after, $9 FROM unnest($10::uuid[], $11::uuid[], $12::bigint[], $13::bigint[])
			WITH ORDINALITY AS x(tx, acc, amount, after, n) ORDER BY n),
	a AS (UPDATE accounts SET balance = x.balance
		FROM unnest($14::uuid[], $15::bigint[]) AS x(id, balance) WHERE accounts.id = x.id),
	o AS (INSERT INTO outbox (event_id, key, payload)
		SELECT id, key, payload FROM unnest($16::uuid[], $17::text[], $18::json[]) WITH ORDINALITY AS x(id, key, payload, n) ORDER BY n),
	k AS (UPDATE idempotency_keys SET transaction_id = x.tx, error_code = x.code, error_detail = x.detail
		FROM unnest($19::text[], $20::text[], $21::uuid[], $22::text[], $23::text[]) AS x(scope, key, tx, code, detail)
		WHERE idempotency_keys.scope = x.scope AND idempotency_keys.key = x.key)
	SELECT $8::int`
)

func (s *Store) commitOnce(ctx context.Context, batch []*ledger.Pending) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection left inside a transaction is destroyed by the pool on release.
	defer conn.Release()
	open := false
	defer func() {
		if err != nil && open && !conn.Conn().IsClosed() {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()

	// Round trip 1: begin, claim keys, read committed key outcomes, lock accounts.
	keys := ledger.Keys(batch)
	ids := ledger.AccountIDs(batch)
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if len(keys) > 0 {
		scopes, names, hashes := make([]string, len(keys)), make([]string, len(keys)), make([][]byte, len(keys))
		hashOf := map[ledger.KeyRef][]byte{}
		for _, p := range batch {
			if p.Key != "" {
				ref := ledger.KeyRef{Scope: p.Caller.Scope(), Key: p.Key}
				if _, ok := hashOf[ref]; !ok {
					h := p.Req.Hash()
					hashOf[ref] = h[:]
				}
			}
		}
		for i, k := range keys {
			scopes[i], names[i], hashes[i] = k.Scope, k.Key, hashOf[k]
		}
		b.Queue(sqlClaimKeys, scopes, names, hashes)
		b.Queue(sqlReadKeys, scopes, names)
	}
	b.Queue(sqlLockAccounts, rawIDs(ids))
	open = true
	st := &ledger.BatchState{Accounts: map[uuid.UUID]*ledger.AccountState{}, Keys: map[ledger.KeyRef]*ledger.KeyRecord{}}
	if err := s.readState(conn.Conn().SendBatch(ctx, b), len(keys) > 0, st); err != nil {
		return err
	}

	now := time.Now().UTC().Truncate(time.Microsecond)
	plan := ledger.Apply(batch, st, now, func() uuid.UUID { return uuid.Must(uuid.NewV7()) })

	// Round trip 2: write everything and commit.
	args, err := writeArgs(plan, now)
	if err != nil {
		return err
	}
	b = &pgx.Batch{}
	b.Queue(sqlWrite, args...)
	b.Queue("COMMIT")
	br := conn.Conn().SendBatch(ctx, b)
	_, werr := br.Exec()
	_, cerr := br.Exec()
	closeErr := br.Close()
	if werr == nil && cerr == nil && closeErr == nil {
		open = false
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(werr, &pe) || errors.As(cerr, &pe) {
		// The server refused: nothing was committed.
		return errors.Join(werr, cerr)
	}
	// The connection failed with COMMIT possibly sent: find out what happened.
	open = false
	return s.resolveAmbiguous(ctx, plan, errors.Join(werr, cerr, closeErr))
}

func (s *Store) readState(br pgx.BatchResults, withKeys bool, st *ledger.BatchState) error {
	defer br.Close()
	if _, err := br.Exec(); err != nil { // BEGIN
		return err
	}
	if withKeys {
		if _, err := br.Exec(); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var ref ledger.KeyRef
			var hash []byte
			var code, detail *string
			var tx ledger.Transaction
			var txID *uuid.UUID
			var typ *string
			var from, to *uuid.UUID
			var amount *int64
			var cur, desc *string
			var created *time.Time
			if err := rows.Scan(&ref.Scope, &ref.Key, &hash, &code, &detail,
				&txID, &typ, &from, &to, &amount, &cur, &desc, &created); err != nil {
				rows.Close()
				return err
			}
			rec := &ledger.KeyRecord{}
			copy(rec.Hash[:], hash)
			if code != nil {
				rec.Err = &ledger.Error{Code: ledger.Code(*code), Detail: deref(detail)}
			} else if txID != nil {
				tx = ledger.Transaction{ID: *txID, Type: ledger.TxType(*typ), Status: ledger.StatusCompleted,
					FromAccountID: from, ToAccountID: to, Amount: *amount, Currency: *cur,
					Description: *desc, CreatedAt: created.UTC()}
				rec.Tx = &tx
			} else {
				// The transaction was purged since: the key's first answer cannot be replayed.
				rec.Err = ledger.Errorf(ledger.CodeNotFound, "the transaction of this Idempotency-Key was deleted")
			}
			st.Keys[ref] = rec
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	for rows.Next() {
		var a ledger.AccountState
		var user pgtype.UUID
		if err := rows.Scan((*[16]byte)(&a.ID), &user, &a.Currency, &a.Balance, &a.External); err != nil {
			rows.Close()
			return err
		}
		a.UserID = user.Bytes
		st.Accounts[a.ID] = &a
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	return br.Close()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func writeArgs(plan *ledger.Plan, now time.Time) ([]any, error) {
	n := len(plan.Transactions)
	txID, typ, cur, desc := make([]uuid.UUID, n), make([]string, n), make([]string, n), make([]string, n)
	from, to := make([]*uuid.UUID, n), make([]*uuid.UUID, n)
	amount := make([]int64, n)
	for i, t := range plan.Transactions {
		txID[i], typ[i], from[i], to[i], amount[i], cur[i], desc[i] =
			t.ID, string(t.Type), t.FromAccountID, t.ToAccountID, t.Amount, t.Currency, t.Description
	}
	m := len(plan.Entries)
	eTx, eAcc, eAmt, eAfter := make([]uuid.UUID, m), make([]uuid.UUID, m), make([]int64, m), make([]int64, m)
	for i, e := range plan.Entries {
		eTx[i], eAcc[i], eAmt[i], eAfter[i] = e.TransactionID, e.AccountID, e.Amount, e.BalanceAfter
	}
	bID, bBal := make([]uuid.UUID, 0, len(plan.Balances)), make([]int64, 0, len(plan.Balances))
	for id, bal := range plan.Balances {
		bID, bBal = append(bID, id), append(bBal, bal)
	}
	evID, evKey, evPayload := make([]uuid.UUID, len(plan.Events)), make([]string, len(plan.Events)), make([]string, len(plan.Events))
	for i := range plan.Events {
		ev := &plan.Events[i]
		payload, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		evID[i], evKey[i], evPayload[i] = ev.ID, ev.Key(), string(payload)
	}
	k := len(plan.Keys)
	kScope, kKey, kTx, kCode, kDetail := make([]string, k), make([]string, k), make([]*uuid.UUID, k), make([]*string, k), make([]*string, k)
	for i, kw := range plan.Keys {
		kScope[i], kKey[i] = kw.Ref.Scope, kw.Ref.Key
		if kw.Record.Tx != nil {
			kTx[i] = &kw.Record.Tx.ID
		}
		if e := kw.Record.Err; e != nil {
			code := string(e.Code)
			kCode[i], kDetail[i] = &code, &e.Detail
		}
	}
	return []any{rawIDs(txID), typ, rawNullIDs(from), rawNullIDs(to), amount, cur, desc, n, now,
		rawIDs(eTx), rawIDs(eAcc), eAmt, eAfter, rawIDs(bID), bBal, rawIDs(evID), evKey, evPayload,
		kScope, kKey, rawNullIDs(kTx), kCode, kDetail}, nil
}

// resolveAmbiguous finds out whether a batch whose COMMIT got no answer committed, by looking
// for what it wrote, so that a 2xx is never lost and a 503 never hides an applied write.
func (s *Store) resolveAmbiguous(ctx context.Context, plan *ledger.Plan, cause error) error {
	var query string
	var arg any
	switch {
	case len(plan.Transactions) > 0:
		query, arg = `SELECT EXISTS (SELECT 1 FROM transactions WHERE id = $1)`, plan.Transactions[0].ID
	case len(plan.Keys) > 0:
		query, arg = `SELECT EXISTS (SELECT 1 FROM idempotency_keys WHERE scope = $1[1] AND key = $1[2]
			AND (transaction_id IS NOT NULL OR error_code IS NOT NULL))`,
			[]string{plan.Keys[0].Ref.Scope, plan.Keys[0].Ref.Key}
	default:
		// Nothing was to be written: every result stands as decided.
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		var committed bool
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		lastErr = s.pool.QueryRow(qctx, query, arg).Scan(&committed)
		cancel()
		if lastErr == nil {
			if s.OnAmbiguousCommit != nil {
				s.OnAmbiguousCommit(committed, cause)
			}
			if committed {
				return nil
			}
			return fmt.Errorf("%w: %w (not committed)", errAmbiguous, cause)
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("%w: %w; outcome unknown: %w", errAmbiguous, cause, lastErr)
}

// rawIDs hands UUIDs to pgx as [16]byte, encoded in binary: uuid.UUID's driver.Valuer would
// go through a string and back, which showed up as a fifth of the processor's CPU.
func rawIDs(ids []uuid.UUID) [][16]byte {
	out := make([][16]byte, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// rawNullIDs is rawIDs for nullable ids.
func rawNullIDs(ids []*uuid.UUID) []pgtype.UUID {
	out := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		if id != nil {
			out[i] = pgtype.UUID{Bytes: *id, Valid: true}
		}
	}
	return out
}
