-- +goose Up
-- A replayed reversal answers with its link like the first answer: the claimed keys' outcomes
-- carry it.
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

-- +goose Down
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
