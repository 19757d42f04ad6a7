-- +goose Up
-- Reversals: a transaction that moves (part of) another's amount back, linked to it. The link
-- is set in the same database transaction as the reversal is written; the index finds how
-- much of a transaction was reversed already.
ALTER TABLE transactions DROP CONSTRAINT transactions_type_check,
    ADD CONSTRAINT transactions_type_check CHECK (type IN ('deposit', 'withdrawal', 'transfer', 'reversal')),
    ADD COLUMN reverses uuid;
CREATE INDEX transactions_reverses ON transactions (reverses) WHERE reverses IS NOT NULL;

-- +goose Down
DROP INDEX transactions_reverses;
DELETE FROM transactions WHERE type = 'reversal';
ALTER TABLE transactions DROP COLUMN reverses, DROP CONSTRAINT transactions_type_check,
    ADD CONSTRAINT transactions_type_check CHECK (type IN ('deposit', 'withdrawal', 'transfer'));
