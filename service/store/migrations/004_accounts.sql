-- Several WhatsApp accounts: the registry (name, shard) and keys scoped to one account.
-- Portable SQL (SQLite and PostgreSQL): times are epoch seconds (REAL / DOUBLE PRECISION).
ALTER TABLE accounts ADD COLUMN created_at REAL;
ALTER TABLE accounts ADD COLUMN shard INTEGER;            -- the worker shard that holds its connection
ALTER TABLE accounts ADD COLUMN registered INTEGER NOT NULL DEFAULT 0;  -- created (POST /accounts or default)

CREATE TABLE account_keys (
    id TEXT PRIMARY KEY,                -- key_<ULID>, shown in listings
    account TEXT NOT NULL,
    hash TEXT NOT NULL,                 -- sha256 hex of the key; the key itself is shown once
    prefix TEXT NOT NULL,               -- the first characters, to recognise a key in a listing
    label TEXT,
    created_at REAL NOT NULL,
    revoked_at REAL,
    last_used_at REAL
);
CREATE UNIQUE INDEX account_keys_hash ON account_keys (hash);
CREATE INDEX account_keys_account ON account_keys (account);
