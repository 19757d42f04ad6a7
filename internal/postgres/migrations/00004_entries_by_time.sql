-- +goose Up
-- An account's history by time: the entries list (newest first), point-in-time balances and
-- statements all read it. It replaces the index by id alone, so a write still updates one
-- index per account side; balance_after rides along for index-only balance look-ups.
CREATE INDEX entries_account_time ON entries (account_id, created_at, id) INCLUDE (balance_after);
DROP INDEX entries_account;

-- +goose Down
CREATE INDEX entries_account ON entries (account_id, id);
DROP INDEX entries_account_time;
