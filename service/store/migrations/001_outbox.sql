-- The outbox: every message the gateway accepted, with its status history.
-- Portable SQL (SQLite and PostgreSQL): times are epoch seconds (REAL / DOUBLE PRECISION).
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY,            -- acceptance order (PostgreSQL: BIGSERIAL); the dispatch order
    account TEXT NOT NULL,
    id TEXT NOT NULL,                   -- ours: sortable, returned to the caller
    wa_id TEXT NOT NULL,                -- the WhatsApp message id, derived from id
    direction TEXT NOT NULL,            -- 'out'
    phone_number TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,               -- queued, sending, sent, delivered, read, failed
    reason TEXT,                        -- why failed
    wait_reason TEXT,                   -- why still queued (governor, not connected, retry backoff)
    last_error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_contact INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    expires_at REAL NOT NULL,
    idempotency_key TEXT,
    request_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    queued_at REAL,
    sending_at REAL,
    sent_at REAL,
    delivered_at REAL,
    read_at REAL,
    failed_at REAL
);
CREATE UNIQUE INDEX messages_id ON messages (id);
CREATE UNIQUE INDEX messages_wa_id ON messages (account, wa_id);
CREATE INDEX messages_pending ON messages (account, status, phone_number, seq);
CREATE INDEX messages_list ON messages (account, direction, seq);

-- Idempotency keys: a key names one message for 24 hours.
CREATE TABLE idempotency_keys (
    account TEXT NOT NULL,
    key TEXT NOT NULL,
    message_id TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (account, key)
);

-- Numbers that wrote to the account (a send to any other number is a first contact).
CREATE TABLE contacts (
    account TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    first_inbound_at REAL NOT NULL,
    last_inbound_at REAL NOT NULL,
    PRIMARY KEY (account, phone_number)
);

-- What the gateway knows about each account's link (seen connected, seen logged out).
CREATE TABLE accounts (
    account TEXT PRIMARY KEY,
    linked INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
