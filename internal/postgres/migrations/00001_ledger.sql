-- +goose Up
CREATE TABLE users (
    id             uuid PRIMARY KEY,
    name           text        NOT NULL,
    email          text        NOT NULL UNIQUE,
    webhook_url    text,
    webhook_secret text        NOT NULL,
    api_key_hash   bytea       NOT NULL UNIQUE,
    tags           text[]      NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX users_tags ON users USING gin (tags);

-- One external account per currency (user_id NULL) is the other side of deposits and
-- withdrawals, so the balances of a currency always sum to zero.
CREATE TABLE accounts (
    id         uuid PRIMARY KEY,
    user_id    uuid REFERENCES users (id),
    currency   char(3)     NOT NULL,
    balance    bigint      NOT NULL DEFAULT 0,
    external   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    CONSTRAINT customer_balance_not_negative CHECK (external OR balance >= 0),
    CONSTRAINT external_has_no_user CHECK (external = (user_id IS NULL))
) WITH (fillfactor = 70); -- room on each page, so balance updates stay heap-only (HOT)
CREATE INDEX accounts_user ON accounts (user_id, id);

-- transactions and entries are written only by the group-commit batch, in one statement,
-- from accounts it holds locked; they carry no foreign keys because those checks cost a third
-- of that statement's time. The reconciliation checks every balance against its entries.
CREATE TABLE transactions (
    id              uuid PRIMARY KEY,
    type            text        NOT NULL CHECK (type IN ('deposit', 'withdrawal', 'transfer')),
    from_account_id uuid,
    to_account_id   uuid,
    amount          bigint      NOT NULL CHECK (amount > 0),
    currency        char(3)     NOT NULL,
    description     text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    CHECK (from_account_id IS NOT NULL OR to_account_id IS NOT NULL)
);

CREATE TABLE entries (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id uuid        NOT NULL,
    account_id     uuid        NOT NULL,
    amount         bigint      NOT NULL CHECK (amount <> 0),
    balance_after  bigint      NOT NULL,
    created_at     timestamptz NOT NULL
);
-- An account's history, newest first, and every transaction's entries.
CREATE INDEX entries_account ON entries (account_id, id);
CREATE INDEX entries_transaction ON entries (transaction_id);

-- Written in the same database transaction as what it announces; the relay moves it to Kafka.
-- xid lets the relay tell rows of transactions still in flight from rows it has passed.
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   uuid        NOT NULL, -- a fresh UUIDv7: unique without an index to prove it
    key        text        NOT NULL,
    payload    json        NOT NULL,
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_xid ON outbox (xid, id);

-- The first outcome of each idempotency key, scoped to its caller (a user id or "admin").
CREATE TABLE idempotency_keys (
    scope          text        NOT NULL,
    key            text        NOT NULL,
    request_hash   bytea       NOT NULL,
    transaction_id uuid,
    error_code     text,
    error_detail   text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_transaction ON idempotency_keys (transaction_id);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE outbox;
DROP TABLE entries;
DROP TABLE transactions;
DROP TABLE accounts;
DROP TABLE users;
