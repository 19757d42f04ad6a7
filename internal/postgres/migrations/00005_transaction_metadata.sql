-- +goose Up
-- Metadata on transactions: string pairs a client attaches and filters by. NULL when there is
-- none, which keeps the GIN index (partial) out of the way of the load tester's writes.
ALTER TABLE transactions ADD COLUMN metadata jsonb;
CREATE INDEX transactions_metadata ON transactions USING gin (metadata jsonb_path_ops) WHERE metadata IS NOT NULL;
-- The write path's functions carry it: claimed keys replay it, the write stores it.
DROP FUNCTION ledger_claim_keys(text[], text[], bytea[]);
-- +goose StatementBegin
CREATE FUNCTION ledger_claim_keys(p_scopes text[], p_keys text[], p_hashes bytea[])
RETURNS TABLE (scope text, key text, request_hash bytea, error_code text, error_detail text,
    id uuid, type text, from_account_id uuid, to_account_id uuid, amount bigint, currency text,
    description text, created_at timestamptz, metadata jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO idempotency_keys (scope, key, request_hash)
    SELECT * FROM unnest(p_scopes, p_keys, p_hashes) ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    RETURN QUERY
    SELECT k.scope, k.key, k.request_hash, k.error_code, k.error_detail,
        t.id, t.type, t.from_account_id, t.to_account_id, t.amount, t.currency::text,
        t.description, t.created_at, t.metadata
    FROM idempotency_keys k
    JOIN unnest(p_scopes, p_keys) AS q(scope, key) ON k.scope = q.scope AND k.key = q.key
    LEFT JOIN transactions t ON t.id = k.transaction_id
    WHERE k.transaction_id IS NOT NULL OR k.error_code IS NOT NULL;
END $$;
-- +goose StatementEnd
DROP FUNCTION ledger_write(timestamptz, uuid[], text[], uuid[], uuid[], bigint[], text[], text[],
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

-- +goose Down
DROP FUNCTION ledger_claim_keys(text[], text[], bytea[]);
-- +goose StatementBegin
CREATE FUNCTION ledger_claim_keys(p_scopes text[], p_keys text[], p_hashes bytea[])
RETURNS TABLE (scope text, key text, request_hash bytea, error_code text, error_detail text,
    id uuid, type text, from_account_id uuid, to_account_id uuid, amount bigint, currency text,
    description text, created_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO idempotency_keys (scope, key, request_hash)
    SELECT * FROM unnest(p_scopes, p_keys, p_hashes) ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    RETURN QUERY
    SELECT k.scope, k.key, k.request_hash, k.error_code, k.error_detail,
        t.id, t.type, t.from_account_id, t.to_account_id, t.amount, t.currency::text,
        t.description, t.created_at
    FROM idempotency_keys k
    JOIN unnest(p_scopes, p_keys) AS q(scope, key) ON k.scope = q.scope AND k.key = q.key
    LEFT JOIN transactions t ON t.id = k.transaction_id
    WHERE k.transaction_id IS NOT NULL OR k.error_code IS NOT NULL;
END $$;
-- +goose StatementEnd
DROP FUNCTION ledger_write(timestamptz, uuid[], text[], uuid[], uuid[], bigint[], text[], text[], text[],
    uuid[], uuid[], bigint[], bigint[], uuid[], bigint[], uuid[], text[], json[],
    text[], text[], uuid[], text[], text[]);
-- +goose StatementBegin
CREATE FUNCTION ledger_write(p_at timestamptz,
    p_tx uuid[], p_type text[], p_from uuid[], p_to uuid[], p_amount bigint[], p_currency text[],
    p_description text[],
    p_entry_tx uuid[], p_entry_account uuid[], p_entry_amount bigint[], p_entry_after bigint[],
    p_account uuid[], p_balance bigint[],
    p_event uuid[], p_event_key text[], p_event_payload json[],
    p_key_scope text[], p_key text[], p_key_tx uuid[], p_key_code text[], p_key_detail text[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transactions (id, type, from_account_id, to_account_id, amount, currency, description, created_at)
    SELECT x.id, x.type, x.f, x.t, x.amount, x.currency, x.description, p_at
    FROM unnest(p_tx, p_type, p_from, p_to, p_amount, p_currency, p_description)
        AS x(id, type, f, t, amount, currency, description);
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
DROP INDEX transactions_metadata;
ALTER TABLE transactions DROP COLUMN metadata;
