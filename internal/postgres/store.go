package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"txn/internal/audit"
	"txn/internal/ledger"
)

// Store implements ledger.Store.
type Store struct {
	pool *pgxpool.Pool
	// OnAmbiguousCommit, when set, is told when a commit's outcome had to be looked up.
	OnAmbiguousCommit func(committed bool, err error)
	// CommitResolveTimeout bounds the search for a commit's outcome (default 10 s).
	CommitResolveTimeout time.Duration
}

func (s *Store) commitResolveTimeout() time.Duration {
	if s.CommitResolveTimeout > 0 {
		return s.CommitResolveTimeout
	}
	return 10 * time.Second
}

func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// --- users ---

const userColumns = `id, name, email, webhook_url, tags, created_at, updated_at`

func scanUser(row pgx.Row) (*ledger.User, error) {
	var u ledger.User
	err := row.Scan(&u.ID, &u.Name, &u.Email, &u.WebhookURL, &u.Tags, &u.CreatedAt, &u.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ledger.ErrNotFound
	}
	return &u, err
}

func (s *Store) CreateUser(ctx context.Context, u *ledger.User, keyHash []byte, webhookSecret string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO users (id, name, email, webhook_url, webhook_secret, api_key_hash, tags, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		u.ID, u.Name, u.Email, u.WebhookURL, webhookSecret, keyHash, u.Tags, u.CreatedAt, u.UpdatedAt)
	if pgCode(err) == codeUniqueViolation {
		return ledger.Errorf(ledger.CodeConflict, "a user with email %s already exists", u.Email)
	}
	return err
}

func (s *Store) User(ctx context.Context, id uuid.UUID) (*ledger.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

func (s *Store) UserIDByKeyHash(ctx context.Context, hash []byte) (uuid.UUID, error) {
	var id uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT id FROM users WHERE api_key_hash = $1`, hash).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, ledger.ErrNotFound
	}
	return id, err
}

// WebhookTarget returns where and with which secret a user's notifications are delivered.
func (s *Store) WebhookTarget(ctx context.Context, id uuid.UUID) (url *string, secret string, err error) {
	err = s.pool.QueryRow(ctx, `SELECT webhook_url, webhook_secret FROM users WHERE id = $1`, id).Scan(&url, &secret)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", ledger.ErrNotFound
	}
	return url, secret, err
}

func (s *Store) Users(ctx context.Context, tag string, p ledger.ListParams) (ledger.Page[ledger.User], error) {
	after, err := uuidCursor(p.Cursor)
	if err != nil {
		return ledger.Page[ledger.User]{}, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users
		WHERE ($1 = '' OR tags @> ARRAY[$1]) AND id > $2 ORDER BY id LIMIT $3`, tag, after, p.Limit+1)
	if err != nil {
		return ledger.Page[ledger.User]{}, err
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.User, error) {
		u, err := scanUser(r)
		if err != nil {
			return ledger.User{}, err
		}
		return *u, nil
	})
	return page(users, p.Limit, err, func(u ledger.User) string { return encodeUUID(u.ID) })
}

func (s *Store) UpdateUser(ctx context.Context, id uuid.UUID, patch ledger.UserPatch) (*ledger.User, error) {
	setURL := patch.WebhookURL != nil
	var url *string
	if setURL {
		url = *patch.WebhookURL
	}
	return scanUser(s.pool.QueryRow(ctx, `UPDATE users SET
			name = coalesce($2, name),
			webhook_url = CASE WHEN $3 THEN $4 ELSE webhook_url END,
			updated_at = now()
		WHERE id = $1 RETURNING `+userColumns, id, patch.Name, setURL, url))
}

// --- accounts ---

func (s *Store) CreateAccount(ctx context.Context, a *ledger.Account) error {
	// The currency's external account comes with its first customer account.
	_, err := s.pool.Exec(ctx, `WITH ext AS (
			INSERT INTO accounts (id, user_id, currency, balance, external, created_at)
			VALUES ($5, NULL, $3, 0, true, $4) ON CONFLICT (id) DO NOTHING)
		INSERT INTO accounts (id, user_id, currency, balance, external, created_at, overdraft_limit)
		VALUES ($1, $2, $3, 0, false, $4, $6)`,
		a.ID, a.UserID, a.Currency, a.CreatedAt, ledger.ExternalAccountID(a.Currency), a.OverdraftLimit)
	if pgCode(err) == codeForeignKeyViolation {
		return ledger.ErrNotFound
	}
	return err
}

const accountColumns = `id, coalesce(user_id, '00000000-0000-0000-0000-000000000000'), currency, balance, balance - held, status, overdraft_limit, created_at`

func scanAccount(row pgx.Row) (ledger.Account, error) {
	var a ledger.Account
	err := row.Scan(&a.ID, &a.UserID, &a.Currency, &a.Balance, &a.Available, &a.Status, &a.OverdraftLimit, &a.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, ledger.ErrNotFound
	}
	return a, err
}

// UpdateAccount changes an account's status or overdraft limit with its row locked, as the
// batches lock it, so the rules hold against the balance every batch leaves. Errors:
// not_found, conflict (a closed account, or a limit below what the balance already uses),
// balance_not_zero (closing an account that holds money).
func (s *Store) UpdateAccount(ctx context.Context, id uuid.UUID, patch ledger.AccountPatch) (*ledger.Account, error) {
	var out ledger.Account
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		a, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = $1 AND NOT external FOR NO KEY UPDATE`, id))
		if err != nil {
			return err
		}
		if err := ledger.CheckAccountPatch(&a, patch); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE accounts SET status = $2, overdraft_limit = $3 WHERE id = $1`, id, a.Status, a.OverdraftLimit)
		out = a
		return err
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func (s *Store) Account(ctx context.Context, id uuid.UUID) (*ledger.Account, error) {
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = $1`, id))
	if err != nil {
		return nil, err
	}
	return &a, nil
}

func (s *Store) Accounts(ctx context.Context, userID uuid.UUID, p ledger.ListParams) (ledger.Page[ledger.Account], error) {
	after, err := uuidCursor(p.Cursor)
	if err != nil {
		return ledger.Page[ledger.Account]{}, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+accountColumns+` FROM accounts
		WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3`, userID, after, p.Limit+1)
	if err != nil {
		return ledger.Page[ledger.Account]{}, err
	}
	accounts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Account, error) { return scanAccount(r) })
	return page(accounts, p.Limit, err, func(a ledger.Account) string { return encodeUUID(a.ID) })
}

// --- transactions ---

const txColumns = `t.id, t.type, t.from_account_id, t.to_account_id, t.amount, t.currency, t.description, t.metadata, t.reverses, t.hold_id, t.created_at`

func scanTx(dest *ledger.Transaction, extra ...any) []any {
	return append([]any{&dest.ID, &dest.Type, &dest.FromAccountID, &dest.ToAccountID, &dest.Amount,
		&dest.Currency, &dest.Description, &dest.Metadata, &dest.Reverses, &dest.HoldID, &dest.CreatedAt}, extra...)
}

func (s *Store) Transaction(ctx context.Context, id uuid.UUID) (*ledger.Transaction, []uuid.UUID, error) {
	var tx ledger.Transaction
	var fromUser, toUser *uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT `+txColumns+`, fa.user_id, ta.user_id FROM transactions t
		LEFT JOIN accounts fa ON fa.id = t.from_account_id
		LEFT JOIN accounts ta ON ta.id = t.to_account_id
		WHERE t.id = $1`, id).Scan(scanTx(&tx, &fromUser, &toUser)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, ledger.ErrNotFound
	} else if err != nil {
		return nil, nil, err
	}
	tx.Status = ledger.StatusCompleted
	var owners []uuid.UUID
	for _, u := range []*uuid.UUID{fromUser, toUser} {
		if u != nil {
			owners = append(owners, *u)
		}
	}
	return &tx, owners, nil
}

// --- admin ---

func (s *Store) Reconcile(ctx context.Context) (map[string]ledger.CurrencyBalance, error) {
	out := map[string]ledger.CurrencyBalance{}
	rows, err := s.pool.Query(ctx, `
		WITH bal AS (
			SELECT currency,
				coalesce(sum(balance) FILTER (WHERE NOT external), 0)::bigint AS accounts_total,
				coalesce(sum(balance) FILTER (WHERE external), 0)::bigint AS external_total
			FROM accounts GROUP BY currency),
		ent AS (
			SELECT a.currency, a.id, a.balance, coalesce(sum(e.amount), 0)::bigint AS entries
			FROM accounts a LEFT JOIN entries e ON e.account_id = a.id GROUP BY a.id)
		SELECT b.currency, b.accounts_total, b.external_total,
			coalesce((SELECT sum(entries) FROM ent WHERE ent.currency = b.currency), 0)::bigint,
			NOT EXISTS (SELECT 1 FROM ent WHERE ent.currency = b.currency AND ent.entries <> ent.balance)
		FROM bal b`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var cur string
		var cb ledger.CurrencyBalance
		if err := rows.Scan(&cur, &cb.AccountsTotal, &cb.ExternalTotal, &cb.EntriesSum, &cb.AccountsMatchingEntries); err != nil {
			return nil, err
		}
		cb.Sum = cb.AccountsTotal + cb.ExternalTotal
		cb.Balanced = cb.Sum == 0 && cb.EntriesSum == 0 && cb.AccountsMatchingEntries
		out[cur] = cb
	}
	return out, rows.Err()
}

// Purge deletes the users tagged tag with their accounts, transactions and entries, and takes
// their deposits and withdrawals back out of the external accounts, so the books stay balanced.
// It refuses (conflict) when a transaction links a tagged account to an untagged one.
func (s *Store) Purge(ctx context.Context, tag string) (res ledger.PurgeResult, hashes [][]byte, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT id FROM users WHERE tags @> ARRAY[$1] ORDER BY id FOR UPDATE`, tag)
		users, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil || len(users) == 0 {
			return err
		}
		accounts, err := lockPurgedAccounts(ctx, tx, users)
		if err != nil {
			return err
		}
		if err := purgeHolds(ctx, tx, tag, accounts); err != nil {
			return err
		}
		if err := purgeTransactions(ctx, tx, tag, users, accounts, &res); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM accounts WHERE id = ANY($1)`, accounts)
		if err != nil {
			return err
		}
		res.Accounts = tag.RowsAffected()
		rows, _ = tx.Query(ctx, `DELETE FROM users WHERE id = ANY($1) RETURNING api_key_hash`, users)
		hashes, err = pgx.CollectRows(rows, pgx.RowTo[[]byte])
		res.Users = int64(len(hashes))
		return err
	})
	return res, hashes, err
}

// lockPurgedAccounts locks the users' accounts and the external accounts of their currencies
// in id order, the order every batch locks in, so a purge never deadlocks with traffic, and
// returns the users' own accounts.
func lockPurgedAccounts(ctx context.Context, tx pgx.Tx, users []uuid.UUID) ([]uuid.UUID, error) {
	rows, _ := tx.Query(ctx, `SELECT DISTINCT currency FROM accounts WHERE user_id = ANY($1)`, users)
	currencies, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	externals := make([]uuid.UUID, len(currencies))
	for i, c := range currencies {
		externals[i] = ledger.ExternalAccountID(c)
	}
	rows, _ = tx.Query(ctx, `SELECT id, external FROM accounts WHERE user_id = ANY($1) OR id = ANY($2)
		ORDER BY id FOR UPDATE`, users, externals)
	type acc struct {
		ID       uuid.UUID
		External bool
	}
	locked, err := pgx.CollectRows(rows, pgx.RowToStructByPos[acc])
	if err != nil {
		return nil, err
	}
	var accounts []uuid.UUID
	for _, a := range locked {
		if !a.External {
			accounts = append(accounts, a.ID)
		}
	}
	return accounts, nil
}

// purgeHolds deletes the holds of accounts; conflict when one of them links an account of
// someone else, whose held sum it may count in.
func purgeHolds(ctx context.Context, tx pgx.Tx, tag string, accounts []uuid.UUID) error {
	var foreign bool
	err := tx.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM holds WHERE from_account_id = ANY($1) AND NOT to_account_id = ANY($1))
		OR EXISTS (SELECT 1 FROM holds WHERE to_account_id = ANY($1) AND NOT from_account_id = ANY($1))`,
		accounts).Scan(&foreign)
	if err != nil {
		return err
	}
	if foreign {
		return ledger.Errorf(ledger.CodeConflict, "users tagged %q have holds with users not tagged so", tag)
	}
	_, err = tx.Exec(ctx, `DELETE FROM holds WHERE from_account_id = ANY($1)`, accounts)
	return err
}

// purgeTransactions deletes the transactions of accounts (found through their entries) with
// their entries and idempotency keys, undoing their external side; conflict when one of them
// touches an account of someone else.
func purgeTransactions(ctx context.Context, tx pgx.Tx, tag string, users, accounts []uuid.UUID, res *ledger.PurgeResult) error {
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE purge_tx ON COMMIT DROP AS
		SELECT DISTINCT transaction_id AS id FROM entries WHERE account_id = ANY($1)`, accounts); err != nil {
		return err
	}
	var foreign bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (
		SELECT 1 FROM entries e JOIN accounts o ON o.id = e.account_id
		WHERE e.transaction_id IN (SELECT id FROM purge_tx) AND NOT o.external AND NOT o.id = ANY($1))`,
		accounts).Scan(&foreign)
	if err != nil {
		return err
	}
	if foreign {
		return ledger.Errorf(ledger.CodeConflict, "users tagged %q have transactions with users not tagged so", tag)
	}
	if _, err = tx.Exec(ctx, `UPDATE accounts a SET balance = a.balance - x.total
		FROM (SELECT e.account_id, sum(e.amount) AS total FROM entries e JOIN accounts ea ON ea.id = e.account_id
		      WHERE ea.external AND e.transaction_id IN (SELECT id FROM purge_tx) GROUP BY e.account_id) x
		WHERE a.id = x.account_id`); err != nil {
		return err
	}
	if _, err = tx.Exec(ctx, `DELETE FROM entries WHERE transaction_id IN (SELECT id FROM purge_tx)`); err != nil {
		return err
	}
	if _, err = tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope = ANY($1::text[])
			OR transaction_id IN (SELECT id FROM purge_tx)`, uuidStrings(users)); err != nil {
		return err
	}
	deleted, err := tx.Exec(ctx, `DELETE FROM transactions WHERE id IN (SELECT id FROM purge_tx)`)
	if err != nil {
		return err
	}
	res.Transactions = deleted.RowsAffected()
	return nil
}

// --- pagination ---

var badCursor = ledger.Invalid(ledger.FieldError{Field: "cursor", Message: "is not a cursor this list returned"})

func encodeUUID(id uuid.UUID) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

func uuidCursor(c string) (uuid.UUID, error) {
	if c == "" {
		return uuid.Nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) != 16 {
		return uuid.Nil, badCursor
	}
	return uuid.UUID(b), nil
}

// page trims the extra row a query fetched to learn whether another page follows.
func page[T any](items []T, limit int, err error, cursor func(T) string) (ledger.Page[T], error) {
	if err != nil {
		return ledger.Page[T]{}, err
	}
	p := ledger.Page[T]{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		p.Next = cursor(items[limit-1])
	}
	if p.Items == nil {
		p.Items = []T{}
	}
	return p, nil
}

func uuidStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// --- idempotency keys ---

// DeleteKeysBefore deletes up to limit idempotency keys created before cutoff and returns how
// many it deleted. It finds them by scanning from the table's start, where the oldest rows
// mostly are, so it needs no index on created_at (which every write would have to maintain).
func (s *Store) DeleteKeysBefore(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
		SELECT ctid FROM idempotency_keys WHERE created_at < $1 LIMIT $2))`, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// --- helpers shared with the batch path ---

var (
	errAmbiguous = errors.New("postgres: connection lost during commit")
	errConnLost  = errors.New("postgres: connection lost before commit")
)

// retryable reports whether a batch that failed with err may simply be tried again: nothing
// of it was committed.
func retryable(err error) bool {
	c := pgCode(err)
	return c == codeDeadlock || c == codeSerialization || errors.Is(err, errConnLost)
}

// TransactionsByDescriptionPrefix lists the transactions whose description starts with prefix,
// with the users of their sides, for an audit of their effects downstream. It scans the table:
// an occasional check, not a request path.
func (s *Store) TransactionsByDescriptionPrefix(ctx context.Context, prefix string) ([]audit.Transaction, error) {
	rows, err := s.pool.Query(ctx, `SELECT t.id, fa.user_id, ta.user_id FROM transactions t
		LEFT JOIN accounts fa ON fa.id = t.from_account_id
		LEFT JOIN accounts ta ON ta.id = t.to_account_id
		WHERE starts_with(t.description, $1)`, prefix)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (audit.Transaction, error) {
		var t audit.Transaction
		err := row.Scan(&t.ID, &t.FromUser, &t.ToUser)
		return t, err
	})
}
