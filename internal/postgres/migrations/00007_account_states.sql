-- +goose Up
-- Account states and overdraft limits: a frozen or closed account takes part in no
-- transaction; a customer balance may go down to minus its overdraft limit.
ALTER TABLE accounts
    ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
    ADD COLUMN overdraft_limit bigint NOT NULL DEFAULT 0 CHECK (overdraft_limit BETWEEN 0 AND 1000000000000),
    DROP CONSTRAINT customer_balance_not_negative,
    ADD CONSTRAINT customer_balance_within_limit CHECK (external OR balance >= -overdraft_limit);
-- The batch decides against both, read under the same lock as the balance.
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

-- +goose Down
DROP FUNCTION ledger_lock_accounts(uuid[]);
-- +goose StatementBegin
CREATE FUNCTION ledger_lock_accounts(p_ids uuid[])
RETURNS TABLE (id uuid, user_id uuid, currency text, balance bigint, external boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT a.id, a.user_id, a.currency::text, a.balance, a.external FROM accounts a
    WHERE a.id = ANY (p_ids) ORDER BY a.id FOR NO KEY UPDATE;
END $$;
-- +goose StatementEnd
ALTER TABLE accounts DROP CONSTRAINT customer_balance_within_limit,
    ADD CONSTRAINT customer_balance_not_negative CHECK (external OR balance >= 0),
    DROP COLUMN overdraft_limit, DROP COLUMN status;
