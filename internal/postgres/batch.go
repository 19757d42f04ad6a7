package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"txn/internal/backoff"
	"txn/internal/ledger"
)

// Commit applies a batch of transaction requests in one database transaction and two round
// trips: the first claims the idempotency keys and locks every account involved in id order
// (the order everyone locks in, so batches never deadlock); ledger.Apply then decides each
// request in memory; the second writes transactions, entries, balances, outbox events and key
// outcomes in one function call, and commits.
//
// A batch that failed before anything was committed is tried again: after a deadlock or a
// serialization failure up to 5 times; when the database could not be reached, for about 8 s,
// so that a PgBouncer or PostgreSQL restart delays requests instead of failing them.
func (s *Store) Commit(ctx context.Context, batch []*ledger.Pending) error {
	conflict := backoff.New(5*time.Millisecond, 50*time.Millisecond)
	unreachable := backoff.New(50*time.Millisecond, 500*time.Millisecond)
	conflicts, outages := 0, 0
	for {
		err := s.commitOnce(ctx, batch)
		if err == nil || !retryable(err) {
			return err
		}
		wait := conflict
		if errors.Is(err, errConnLost) {
			if outages++; outages == 20 { // about 8 s of waiting, within the batcher's timeout
				return err
			}
			wait = unreachable
		} else if conflicts++; conflicts == 5 {
			return err
		}
		if !wait.Wait(ctx) {
			return fmt.Errorf("%w while waiting to retry", ctx.Err())
		}
	}
}

// The batch's statements live in PL/pgSQL functions (migration 00003) so that PostgreSQL plans
// them once per server connection instead of on every call.
const (
	sqlClaimKeys    = `SELECT * FROM ledger_claim_keys($1, $2, $3)`
	sqlLockAccounts = `SELECT * FROM ledger_lock_accounts($1)`
	sqlWrite        = `SELECT ledger_write($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
		$15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)`
)

// stateReads says which of the optional reads round trip 1 queued.
type stateReads struct{ keys, reversals, holds bool }

// stateQueries is round trip 1 of a batch: begin, the transaction's id (which settles the
// outcome if the connection fails around COMMIT), claiming the idempotency keys with their
// committed outcomes, locking the accounts, and reading the transactions reversed and the
// holds settled.
func stateQueries(batch []*ledger.Pending) (*pgx.Batch, stateReads) {
	refs := ledger.Keys(batch)
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SELECT pg_current_xact_id()::text")
	if len(refs) > 0 {
		scopes, names, hashes := make([]string, len(refs)), make([]string, len(refs)), make([][]byte, len(refs))
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
		for i, k := range refs {
			scopes[i], names[i], hashes[i] = k.Scope, k.Key, hashOf[k]
		}
		b.Queue(sqlClaimKeys, scopes, names, hashes)
	}
	settled, captured := holdIDs(batch)
	if len(settled) > 0 {
		b.Queue(sqlLockAccountsForHolds, rawIDs(ledger.AccountIDs(batch)), rawIDs(settled), rawIDs(captured))
	} else {
		b.Queue(sqlLockAccounts, rawIDs(ledger.AccountIDs(batch)))
	}
	// The transactions being reversed and how much of each was reversed already, read after
	// the lock on both their accounts, which every reversal of them takes too.
	var reversed []uuid.UUID
	for _, p := range batch {
		if p.Req.Type == ledger.Reversal {
			reversed = append(reversed, p.Req.Reverses)
		}
	}
	if len(reversed) > 0 {
		b.Queue(`SELECT t.id, t.amount, (SELECT coalesce(sum(r.amount), 0) FROM transactions r WHERE r.reverses = t.id)::bigint
			FROM transactions t WHERE t.id = ANY($1)`, rawIDs(reversed))
	}
	if len(settled) > 0 {
		b.Queue(sqlReadHolds, rawIDs(settled))
	}
	return b, stateReads{keys: len(refs) > 0, reversals: len(reversed) > 0, holds: len(settled) > 0}
}

func (s *Store) commitOnce(ctx context.Context, batch []*ledger.Pending) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		if pgCode(err) == "" && ctx.Err() == nil {
			return fmt.Errorf("%w: %w", errConnLost, err) // no connection, nothing sent
		}
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

	// Round trip 1: begin, claim keys and read their committed outcomes, lock accounts.
	b, reads := stateQueries(batch)
	open = true
	st := &ledger.BatchState{Accounts: map[uuid.UUID]*ledger.AccountState{}, Keys: map[ledger.KeyRef]*ledger.KeyRecord{},
		Reversals: map[uuid.UUID]*ledger.ReversalBase{}, Holds: map[uuid.UUID]*ledger.Hold{}}
	xid, err := s.readState(conn.Conn().SendBatch(ctx, b), reads, st)
	if err != nil {
		if conn.Conn().IsClosed() {
			// The session ended before COMMIT was sent (a pooled connection dropped while
			// idle, or PgBouncer's "server login has been failing" while PostgreSQL restarts):
			// nothing was written, another connection may do.
			return fmt.Errorf("%w: %w", errConnLost, err)
		}
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
	extra := 0
	if writesHolds(plan) {
		hargs, err := holdArgs(plan, now)
		if err != nil {
			return err
		}
		b.Queue(sqlWriteHolds, hargs...)
		extra++
	}
	if len(plan.Released) > 0 {
		// Rare (a failed atomic batch with keys): not worth a place in ledger_write.
		scopes, names := make([]string, len(plan.Released)), make([]string, len(plan.Released))
		for i, k := range plan.Released {
			scopes[i], names[i] = k.Scope, k.Key
		}
		b.Queue(`DELETE FROM idempotency_keys k USING unnest($1::text[], $2::text[]) AS x(scope, key)
			WHERE k.scope = x.scope AND k.key = x.key AND k.transaction_id IS NULL AND k.error_code IS NULL`, scopes, names)
		extra++
	}
	b.Queue("COMMIT")
	br := conn.Conn().SendBatch(ctx, b)
	_, werr := br.Exec()
	for ; werr == nil && extra > 0; extra-- {
		_, werr = br.Exec()
	}
	_, cerr := br.Exec()
	closeErr := br.Close()
	if werr == nil && cerr == nil && closeErr == nil {
		open = false
		return nil
	}
	if refused(werr) || (werr == nil && refused(cerr)) {
		// The server answered with an error and kept the session: nothing was committed.
		return errors.Join(werr, cerr)
	}
	// The connection failed, or the server ended it, with COMMIT possibly applied.
	open = false
	return s.resolveAmbiguous(ctx, xid, witnessOf(plan), errors.Join(werr, cerr, closeErr))
}

// refused reports whether err is the server rejecting a statement with an ERROR, which aborts
// the transaction. A FATAL or PANIC ends the session and may come after a commit took effect.
func refused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Severity == "ERROR"
}

// readKeys reads the outcomes already committed for the batch's idempotency keys into st.
func readKeys(br pgx.BatchResults, st *ledger.BatchState) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ref ledger.KeyRef
		var hash []byte
		var code, detail *string
		var txID *uuid.UUID
		var typ *string
		var from, to *uuid.UUID
		var amount *int64
		var cur, desc *string
		var created *time.Time
		var meta ledger.Metadata
		var reverses, holdID *uuid.UUID
		var h keyHold
		if err := rows.Scan(&ref.Scope, &ref.Key, &hash, &code, &detail,
			&txID, &typ, &from, &to, &amount, &cur, &desc, &created, &meta, &reverses, &holdID,
			&h.ID, &h.Status, &h.From, &h.To, &h.Amount, &h.Captured, &h.Currency, &h.Description,
			&h.Metadata, &h.ExpiresAt, &h.CreatedAt); err != nil {
			return err
		}
		rec := &ledger.KeyRecord{}
		copy(rec.Hash[:], hash)
		switch {
		case code != nil:
			rec.Err = &ledger.Error{Code: ledger.Code(*code), Detail: deref(detail)}
		case txID != nil:
			rec.Tx = &ledger.Transaction{ID: *txID, Type: ledger.TxType(*typ), Status: ledger.StatusCompleted,
				FromAccountID: from, ToAccountID: to, Amount: *amount, Currency: *cur,
				Description: *desc, Metadata: meta, Reverses: reverses, HoldID: holdID, CreatedAt: created.UTC()}
		case h.ID != nil:
			rec.Hold = h.hold()
		default:
			// The transaction was purged since: the key's first answer cannot be replayed.
			rec.Err = ledger.Errorf(ledger.CodeNotFound, "the transaction of this Idempotency-Key was deleted")
		}
		st.Keys[ref] = rec
	}
	return rows.Err()
}

// keyHold is the hold a claimed key created or voided, as ledger_claim_keys returns it: all
// NULL for keys of transactions.
type keyHold struct {
	ID, From, To                  *uuid.UUID
	Status, Currency, Description *string
	Amount, Captured              *int64
	Metadata                      ledger.Metadata
	ExpiresAt, CreatedAt          *time.Time
}

func (k keyHold) hold() *ledger.Hold {
	return &ledger.Hold{ID: *k.ID, Status: ledger.HoldStatus(*k.Status), FromAccountID: *k.From, ToAccountID: k.To,
		Amount: *k.Amount, CapturedAmount: *k.Captured, Currency: *k.Currency, Description: *k.Description,
		Metadata: k.Metadata, ExpiresAt: k.ExpiresAt.UTC(), CreatedAt: k.CreatedAt.UTC()}
}

// readState reads round trip 1's answers into st and returns the transaction's id.
func (s *Store) readState(br pgx.BatchResults, reads stateReads, st *ledger.BatchState) (xid string, err error) {
	defer br.Close()
	if _, err := br.Exec(); err != nil { // BEGIN
		return "", err
	}
	if err := br.QueryRow().Scan(&xid); err != nil {
		return "", err
	}
	if reads.keys {
		if err := readKeys(br, st); err != nil {
			return "", err
		}
	}
	rows, err := br.Query()
	if err != nil {
		return "", err
	}
	for rows.Next() {
		var a ledger.AccountState
		var user pgtype.UUID
		if err := rows.Scan((*[16]byte)(&a.ID), &user, &a.Currency, &a.Balance, &a.External, &a.Status, &a.OverdraftLimit, &a.Held); err != nil {
			rows.Close()
			return "", err
		}
		a.UserID = user.Bytes
		st.Accounts[a.ID] = &a
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", err
	}
	if reads.reversals {
		rows, err := br.Query()
		if err != nil {
			return "", err
		}
		for rows.Next() {
			var id uuid.UUID
			var base ledger.ReversalBase
			if err := rows.Scan((*[16]byte)(&id), &base.Amount, &base.Reversed); err != nil {
				rows.Close()
				return "", err
			}
			st.Reversals[id] = &base
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return "", err
		}
	}
	if reads.holds {
		if err := readHolds(br, st); err != nil {
			return "", err
		}
	}
	return xid, br.Close()
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
	meta := make([]*string, n)                                     // NULL for none, most of the time
	hold, reverses := make([]*uuid.UUID, n), make([]*uuid.UUID, n) // a capture's hold, a reversal's original
	for i, t := range plan.Transactions {
		txID[i], typ[i], from[i], to[i], amount[i], cur[i], desc[i], hold[i], reverses[i] =
			t.ID, string(t.Type), t.FromAccountID, t.ToAccountID, t.Amount, t.Currency, t.Description, t.HoldID, t.Reverses
		if len(t.Metadata) > 0 {
			b, err := json.Marshal(map[string]string(t.Metadata))
			if err != nil {
				return nil, fmt.Errorf("encode metadata: %w", err)
			}
			m := string(b)
			meta[i] = &m
		}
	}
	m := len(plan.Entries)
	eTx, eAcc, eAmt, eAfter := make([]uuid.UUID, m), make([]uuid.UUID, m), make([]int64, m), make([]int64, m)
	for i, e := range plan.Entries {
		eTx[i], eAcc[i], eAmt[i], eAfter[i] = e.TransactionID, e.AccountID, e.Amount, e.BalanceAfter
	}
	bID, bBal := make([]uuid.UUID, 0, len(plan.Balances)), make([]int64, 0, len(plan.Balances))
	for id, bal := range plan.Balances {
		if _, ok := plan.Held[id]; !ok { // else written with its held sum by ledger_write_holds
			bID, bBal = append(bID, id), append(bBal, bal)
		}
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
	return []any{now, rawIDs(txID), typ, rawNullIDs(from), rawNullIDs(to), amount, cur, desc, meta, rawNullIDs(hold), rawNullIDs(reverses),
		rawIDs(eTx), rawIDs(eAcc), eAmt, eAfter, rawIDs(bID), bBal, rawIDs(evID), evKey, evPayload,
		kScope, kKey, rawNullIDs(kTx), kCode, kDetail}, nil
}

// witness is a row that exists only if a batch committed: its first transaction, or, for a
// batch that only refused, the first idempotency key it recorded. A batch that wrote neither
// changed nothing, and its answers stand either way.
type witness struct {
	txID       *uuid.UUID
	scope, key string
	hold       *ledger.HoldSet // a hold created (status pending) or settled
}

func witnessOf(plan *ledger.Plan) witness {
	switch {
	case len(plan.Transactions) > 0:
		id := plan.Transactions[0].ID
		return witness{txID: &id}
	case len(plan.Holds) > 0:
		return witness{hold: &ledger.HoldSet{ID: plan.Holds[0].ID}} // any status: it exists
	case len(plan.HoldSets) > 0:
		return witness{hold: &plan.HoldSets[0]}
	case len(plan.Keys) > 0:
		return witness{scope: plan.Keys[0].Ref.Scope, key: plan.Keys[0].Ref.Key}
	}
	return witness{}
}

// exists reports whether the witness row is there.
func (w witness) exists(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var found bool
	var err error
	switch {
	case w.txID != nil:
		err = pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM transactions WHERE id = $1)`, [16]byte(*w.txID)).Scan(&found)
	case w.hold != nil:
		// Only this batch could settle the hold: it did so with the hold's account locked.
		err = pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM holds WHERE id = $1 AND ($2 = '' OR status = $2))`,
			[16]byte(w.hold.ID), string(w.hold.Status)).Scan(&found)
	case w.key != "":
		err = pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM idempotency_keys WHERE scope = $1 AND key = $2)`, w.scope, w.key).Scan(&found)
	default:
		found = true // nothing written: nothing to prove
	}
	return found, err
}

// witnessWait bounds how long a committed transaction's rows may take to become visible:
// PostgreSQL marks a commit in its log a moment before it ends the transaction for snapshots.
const witnessWait = 2 * time.Second

// resolveAmbiguous settles a batch whose COMMIT got no answer by asking PostgreSQL for the
// status of its transaction id, until the commit is proven applied (nil: every result stands)
// or rolled back (an error: nothing was applied), for at most CommitResolveTimeout. If it
// cannot be proven either way the error is outcome_unknown, never "safe to retry".
//
// A transaction id is not durable until a WAL record holding it is flushed: after a crash,
// PostgreSQL may give a lost transaction's id to a new one, whose commit pg_xact_status then
// reports. So "committed" counts only once the batch's own witness row is seen; a commit whose
// row never appears was another transaction's, and the batch was lost with the crash.
func (s *Store) resolveAmbiguous(ctx context.Context, xid string, w witness, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.commitResolveTimeout())
	defer cancel()
	var lastErr error
	var committedSince time.Time
	for wait := backoff.New(50*time.Millisecond, time.Second); ; {
		var status *string
		lastErr = s.pool.QueryRow(ctx, `SELECT pg_xact_status($1::xid8)`, xid).Scan(&status)
		switch {
		case lastErr != nil && strings.Contains(lastErr.Error(), "is in the future"):
			// The id is past any the restarted server has given out: it never reached the
			// WAL, and neither did the batch.
			s.reportAmbiguous(false, cause)
			return fmt.Errorf("%w: %w (transaction id %s was lost with a crash)", errAmbiguous, cause, xid)
		case lastErr != nil:
		case status == nil: // too old to tell: cannot happen seconds after the commit
			lastErr = fmt.Errorf("transaction %s: status no longer known", xid)
		case *status == "committed":
			found, err := w.exists(ctx, s.pool)
			switch {
			case err != nil:
				lastErr = err
			case found:
				s.reportAmbiguous(true, cause)
				return nil
			default:
				if committedSince.IsZero() {
					committedSince = time.Now()
				}
				if time.Since(committedSince) < witnessWait {
					lastErr = fmt.Errorf("transaction %s committed, its rows not visible yet", xid)
					break
				}
				s.reportAmbiguous(false, cause)
				return fmt.Errorf("%w: %w (transaction id %s was reused after a crash: the batch was lost)", errAmbiguous, cause, xid)
			}
		case *status == "aborted":
			s.reportAmbiguous(false, cause)
			return fmt.Errorf("%w: %w (transaction %s rolled back)", errAmbiguous, cause, xid)
		default: // in progress: the commit is still being applied
			lastErr = fmt.Errorf("transaction %s still in progress", xid)
		}
		if !wait.Wait(ctx) {
			break
		}
	}
	return errors.Join(ledger.Errorf(ledger.CodeOutcomeUnknown,
		"the database connection failed at commit and the outcome could not be confirmed; "+
			"retry with the same Idempotency-Key to learn whether it was applied"),
		fmt.Errorf("%w: %w; transaction %s: %w", errAmbiguous, cause, xid, lastErr))
}

func (s *Store) reportAmbiguous(committed bool, cause error) {
	if s.OnAmbiguousCommit != nil {
		s.OnAmbiguousCommit(committed, cause)
	}
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
