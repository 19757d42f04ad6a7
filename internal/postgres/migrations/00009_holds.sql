-- +goose Up
-- Holds: money reserved on an account now and captured, voided or expired later. The account
-- carries the sum of its pending holds (held), read and written under the batch's lock like
-- the balance, so a debit is decided against balance - held without reading the holds.
ALTER TABLE accounts
    ADD COLUMN held bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
    DROP CONSTRAINT customer_balance_within_limit,
    ADD CONSTRAINT customer_available_within_limit CHECK (external OR balance - held >= -overdraft_limit);

CREATE TABLE holds (
    id              uuid PRIMARY KEY,
    status          text        NOT NULL CHECK (status IN ('pending', 'captured', 'voided', 'expired')),
    from_account_id uuid        NOT NULL,
    to_account_id   uuid,
    amount          bigint      NOT NULL CHECK (amount > 0),
    captured_amount bigint      NOT NULL DEFAULT 0 CHECK (captured_amount BETWEEN 0 AND amount),
    currency        char(3)     NOT NULL,
    description     text        NOT NULL DEFAULT '',
    metadata        jsonb,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- What the expiry sweep reads: only pending holds are in it.
-- The external account of a currency, for the capture of a hold without a receiver.
CREATE INDEX accounts_external ON accounts (currency) WHERE external;
CREATE INDEX holds_pending_expiry ON holds (expires_at) WHERE status = 'pending';
-- No index by account: settling a hold would write to it (status is in the index above, so
-- no update is heap-only); only a purge looks holds up by account, and it reads them all.

-- A capture's transaction names its hold; a key used to create or void a hold names the hold.
ALTER TABLE transactions ADD COLUMN hold_id uuid;
ALTER TABLE idempotency_keys ADD COLUMN hold_id uuid;

-- A transaction is written with its links: a capture's hold, a reversal's original.
DROP FUNCTION ledger_write(timestamptz, uuid[], text[], uuid[], uuid[], bigint[], text[], text[], text[],
    uuid[], uuid[], bigint[], bigint[], uuid[], bigint[], uuid[], text[], json[],
    text[], text[], uuid[], text[], text[]);
-- +goose StatementBegin
CREATE FUNCTION ledger_write(p_at timestamptz,
    p_tx uuid[], p_type text[], p_from uuid[], p_to uuid[], p_amount bigint[], p_currency text[],
    p_description text[], p_metadata text[], p_hold uuid[], p_reverses uuid[],
    p_entry_tx uuid[], p_entry_account uuid[], p_entry_amount bigint[], p_entry_after bigint[],
    p_account uuid[], p_balance bigint[],
    p_event uuid[], p_event_key text[], p_event_payload json[],
    p_key_scope text[], p_key text[], p_key_tx uuid[], p_key_code text[], p_key_detail text[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transactions (id, type, from_account_id, to_account_id, amount, currency, description, metadata,
        hold_id, reverses, created_at)
    SELECT x.id, x.type, x.f, x.t, x.amount, x.currency, x.description, x.metadata::jsonb, x.hold, x.reverses, p_at
    FROM unnest(p_tx, p_type, p_from, p_to, p_amount, p_currency, p_description, p_metadata, p_hold, p_reverses)
        AS x(id, type, f, t, amount, currency, description, metadata, hold, reverses);
    INSERT INTO entries (transaction_id, account_id, amount, balance_after, created_at)
    SELECT x.tx, x.acc, x.amount, x.after, p_at
    FROM unnest(p_entry_tx, p_entry_account, p_entry_amount, p_entry_after)
        WITH ORDINALITY AS x(tx, acc, amount, after, n) ORDER BY x.n;
    UPDATE accounts a SET balance = x.balance
    FROM unnest(p_account, p_balance) AS x(id, balance) WHERE a.id = x.id;
    INSERT INTO outbox (event_id, key, payload)
    SELECT x.id, x.key, x.payload
    FROM unnest(p_event, p_event_key, p_event_payload) WITH ORDINALITY AS x(id, key, payload, n)
    ORDER BY x.n;
    UPDATE idempotency_keys k SET transaction_id = x.tx, error_code = x.code, error_detail = x.detail
    FROM unnest(p_key_scope, p_key, p_key_tx, p_key_code, p_key_detail) AS x(scope, key, tx, code, detail)
    WHERE k.scope = x.scope AND k.key = x.key;
END $$;
-- +goose StatementEnd

-- The batch reads held with the balance, under the same lock.
DROP FUNCTION ledger_lock_accounts(uuid[]);
-- +goose StatementBegin
CREATE FUNCTION ledger_lock_accounts(p_ids uuid[])
RETURNS TABLE (id uuid, user_id uuid, currency text, balance bigint, external boolean, status text,
    overdraft_limit bigint, held bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT a.id, a.user_id, a.currency::text, a.balance, a.external, a.status, a.overdraft_limit, a.held
    FROM accounts a WHERE a.id = ANY (p_ids) ORDER BY a.id FOR NO KEY UPDATE;
END $$;
-- +goose StatementEnd

-- A batch that settles holds locks their accounts without the caller having read them first:
-- the accounts named, each settled hold's two accounts, and the external account of the
-- currency of each captured hold that has no receiver (its capture is a withdrawal). A hold's
-- accounts never change, so reading them before the lock is safe.
-- +goose StatementBegin
CREATE FUNCTION ledger_lock_accounts_for_holds(p_ids uuid[], p_settle uuid[], p_capture uuid[])
RETURNS TABLE (id uuid, user_id uuid, currency text, balance bigint, external boolean, status text,
    overdraft_limit bigint, held bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_ids uuid[];
BEGIN
    -- Gathered first, so that the lock reads the accounts by key as ledger_lock_accounts does.
    SELECT p_ids || coalesce(array_agg(x.id), '{}') INTO v_ids
    FROM holds h CROSS JOIN LATERAL (VALUES (h.from_account_id), (h.to_account_id),
        (CASE WHEN h.to_account_id IS NULL AND h.id = ANY (p_capture) THEN
            (SELECT e.id FROM accounts e WHERE e.external AND e.currency = h.currency) END)) AS x(id)
    WHERE h.id = ANY (p_settle) AND x.id IS NOT NULL;
    RETURN QUERY
    SELECT a.id, a.user_id, a.currency::text, a.balance, a.external, a.status, a.overdraft_limit, a.held
    FROM accounts a WHERE a.id = ANY (v_ids) ORDER BY a.id FOR NO KEY UPDATE;
END $$;
-- +goose StatementEnd

-- Claimed keys replay a capture's link to its hold, and the hold a key created or voided.
DROP FUNCTION ledger_claim_keys(text[], text[], bytea[]);
-- +goose StatementBegin
CREATE FUNCTION ledger_claim_keys(p_scopes text[], p_keys text[], p_hashes bytea[])
RETURNS TABLE (scope text, key text, request_hash bytea, error_code text, error_detail text,
    id uuid, type text, from_account_id uuid, to_account_id uuid, amount bigint, currency text,
    description text, created_at timestamptz, metadata jsonb, reverses uuid, hold_id uuid,
    h_id uuid, h_status text, h_from uuid, h_to uuid, h_amount bigint, h_captured bigint,
    h_currency text, h_description text, h_metadata jsonb, h_expires_at timestamptz, h_created_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO idempotency_keys (scope, key, request_hash)
    SELECT * FROM unnest(p_scopes, p_keys, p_hashes) ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    RETURN QUERY
    SELECT k.scope, k.key, k.request_hash, k.error_code, k.error_detail,
        t.id, t.type, t.from_account_id, t.to_account_id, t.amount, t.currency::text,
        t.description, t.created_at, t.metadata, t.reverses, t.hold_id,
        h.id, h.status, h.from_account_id, h.to_account_id, h.amount, h.captured_amount,
        h.currency::text, h.description, h.metadata, h.expires_at, h.created_at
    FROM idempotency_keys k
    JOIN unnest(p_scopes, p_keys) AS q(scope, key) ON k.scope = q.scope AND k.key = q.key
    LEFT JOIN transactions t ON t.id = k.transaction_id
    LEFT JOIN holds h ON h.id = k.hold_id
    WHERE k.transaction_id IS NOT NULL OR k.error_code IS NOT NULL OR k.hold_id IS NOT NULL;
END $$;
-- +goose StatementEnd

-- The hold side of a batch, called only by batches that create or settle holds: new holds,
-- settled holds, the accounts' new held sums with their new balances (ledger_write leaves
-- those accounts out: the check of balance - held must see both written), and keys' holds.
-- +goose StatementBegin
CREATE FUNCTION ledger_write_holds(p_at timestamptz,
    p_id uuid[], p_from uuid[], p_to uuid[], p_amount bigint[], p_currency text[],
    p_description text[], p_metadata text[], p_expires timestamptz[],
    p_set uuid[], p_set_status text[], p_set_captured bigint[],
    p_account uuid[], p_held bigint[], p_balance bigint[],
    p_key_scope text[], p_key text[], p_key_hold uuid[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(p_id) > 0 THEN
    INSERT INTO holds (id, status, from_account_id, to_account_id, amount, currency, description,
        metadata, expires_at, created_at, updated_at)
    SELECT x.id, 'pending', x.f, x.t, x.amount, x.currency, x.description, x.metadata::jsonb, x.expires, p_at, p_at
    FROM unnest(p_id, p_from, p_to, p_amount, p_currency, p_description, p_metadata, p_expires)
        AS x(id, f, t, amount, currency, description, metadata, expires);
    END IF;
    IF cardinality(p_set) > 0 THEN
    UPDATE holds h SET status = x.status, captured_amount = x.captured, updated_at = p_at
    FROM unnest(p_set, p_set_status, p_set_captured) AS x(id, status, captured) WHERE h.id = x.id;
    END IF;
    UPDATE accounts a SET held = x.held, balance = coalesce(x.balance, a.balance)
    FROM unnest(p_account, p_held, p_balance) AS x(id, held, balance) WHERE a.id = x.id;
    IF cardinality(p_key) > 0 THEN
    UPDATE idempotency_keys k SET hold_id = x.hold
    FROM unnest(p_key_scope, p_key, p_key_hold) AS x(scope, key, hold)
    WHERE k.scope = x.scope AND k.key = x.key;
    END IF;
END $$;
-- +goose StatementEnd

-- Keyed lookups whatever the planner thinks of the tables' sizes: a plan made while holds
-- was near empty, or over a small accounts table, reads them whole on every batch (seen as
-- millions of rows read sequentially in the write benchmark).
ALTER FUNCTION ledger_lock_accounts_for_holds(uuid[], uuid[], uuid[]) SET enable_seqscan = off;
ALTER FUNCTION ledger_write_holds(timestamptz, uuid[], uuid[], uuid[], bigint[], text[], text[], text[],
    timestamptz[], uuid[], text[], bigint[], uuid[], bigint[], bigint[], text[], text[], uuid[]) SET enable_seqscan = off;

-- +goose Down
DROP FUNCTION ledger_lock_accounts_for_holds(uuid[], uuid[], uuid[]);
DROP FUNCTION ledger_write_holds(timestamptz, uuid[], uuid[], uuid[], bigint[], text[], text[], text[],
    timestamptz[], uuid[], text[], bigint[], uuid[], bigint[], bigint[], text[], text[], uuid[]);
DROP FUNCTION ledger_write(timestamptz, uuid[], text[], uuid[], uuid[], bigint[], text[], text[], text[], uuid[], uuid[],
    uuid[], uuid[], bigint[], bigint[], uuid[], bigint[], uuid[], text[], json[],
    text[], text[], uuid[], text[], text[]);
-- +goose StatementBegin
CREATE FUNCTION ledger_write(p_at timestamptz,
    p_tx uuid[], p_type text[], p_from uuid[], p_to uuid[], p_amount bigint[], p_currency text[],
    p_description text[], p_metadata text[],
    p_entry_tx uuid[], p_entry_account uuid[], p_entry_amount bigint[], p_entry_after bigint[],
    p_account uuid[], p_balance bigint[],
    p_event uuid[], p_event_key text[], p_event_payload json[],
    p_key_scope text[], p_key text[], p_key_tx uuid[], p_key_code text[], p_key_detail text[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transactions (id, type, from_account_id, to_account_id, amount, currency, description, metadata, created_at)
    SELECT x.id, x.type, x.f, x.t, x.amount, x.currency, x.description, x.metadata::jsonb, p_at
    FROM unnest(p_tx, p_type, p_from, p_to, p_amount, p_currency, p_description, p_metadata)
        AS x(id, type, f, t, amount, currency, description, metadata);
    INSERT INTO entries (transaction_id, account_id, amount, balance_after, created_at)
    SELECT x.tx, x.acc, x.amount, x.after, p_at
    FROM unnest(p_entry_tx, p_entry_account, p_entry_amount, p_entry_after)
        WITH ORDINALITY AS x(tx, acc, amount, after, n) ORDER BY x.n;
    UPDATE accounts a SET balance = x.balance
    FROM unnest(p_account, p_balance) AS x(id, balance) WHERE a.id = x.id;
    INSERT INTO outbox (event_id, key, payload)
    SELECT x.id, x.key, x.payload
    FROM unnest(p_event, p_event_key, p_event_payload) WITH ORDINALITY AS x(id, key, payload, n)
    ORDER BY x.n;
    UPDATE idempotency_keys k SET transaction_id = x.tx, error_code = x.code, error_detail = x.detail
    FROM unnest(p_key_scope, p_key, p_key_tx, p_key_code, p_key_detail) AS x(scope, key, tx, code, detail)
    WHERE k.scope = x.scope AND k.key = x.key;
END $$;
-- +goose StatementEnd

DROP FUNCTION ledger_claim_keys(text[], text[], bytea[]);
-- +goose StatementBegin
CREATE FUNCTION ledger_claim_keys(p_scopes text[], p_keys text[], p_hashes bytea[])
RETURNS TABLE (scope text, key text, request_hash bytea, error_code text, error_detail text,
    id uuid, type text, from_account_id uuid, to_account_id uuid, amount bigint, currency text,
    description text, created_at timestamptz, metadata jsonb, reverses uuid)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO idempotency_keys (scope, key, request_hash)
    SELECT * FROM unnest(p_scopes, p_keys, p_hashes) ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    RETURN QUERY
    SELECT k.scope, k.key, k.request_hash, k.error_code, k.error_detail,
        t.id, t.type, t.from_account_id, t.to_account_id, t.amount, t.currency::text,
        t.description, t.created_at, t.metadata, t.reverses
    FROM idempotency_keys k
    JOIN unnest(p_scopes, p_keys) AS q(scope, key) ON k.scope = q.scope AND k.key = q.key
    LEFT JOIN transactions t ON t.id = k.transaction_id
    WHERE k.transaction_id IS NOT NULL OR k.error_code IS NOT NULL;
END $$;
-- +goose StatementEnd
DROP FUNCTION ledger_lock_accounts(uuid[]);
-- +goose StatementBegin
CREATE FUNCTION ledger_lock_accounts(p_ids uuid[])
RETURNS TABLE (id uuid, user_id uuid, currency text, balance bigint, external boolean, status text, overdraft_limit bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT a.id, a.user_id, a.currency::text, a.balance, a.external, a.status, a.overdraft_limit FROM accounts a
    WHERE a.id = ANY (p_ids) ORDER BY a.id FOR NO KEY UPDATE;
END $$;
-- +goose StatementEnd
ALTER TABLE idempotency_keys DROP COLUMN hold_id;
ALTER TABLE transactions DROP COLUMN hold_id;
DROP TABLE holds;
DROP INDEX accounts_external;
ALTER TABLE accounts DROP CONSTRAINT customer_available_within_limit,
    ADD CONSTRAINT customer_balance_within_limit CHECK (external OR balance >= -overdraft_limit),
    DROP COLUMN held;
