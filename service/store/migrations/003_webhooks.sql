-- Webhook deliveries: one row per (endpoint, event), and how far each endpoint has read the event log.
-- Portable SQL (SQLite and PostgreSQL): times are epoch seconds (REAL / DOUBLE PRECISION).
CREATE TABLE webhook_endpoints (
    url TEXT PRIMARY KEY,               -- as configured in WA_WEBHOOK_URL
    cursor INTEGER NOT NULL,            -- the last events.seq turned into deliveries (or skipped by the filter)
    active INTEGER NOT NULL DEFAULT 1,  -- configured in the current run
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE webhook_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- PostgreSQL: BIGSERIAL
    id TEXT NOT NULL,                   -- public: whd_<ULID>
    endpoint TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,             -- the webhook-id header, the same on every attempt
    event_type TEXT NOT NULL,
    account TEXT NOT NULL,
    subject TEXT,                       -- the contact: one delivery at a time per (endpoint, account, subject)
    payload TEXT NOT NULL,              -- the event as stored: the body, byte for byte (kept if the log is pruned)
    status TEXT NOT NULL,               -- pending, delivered, failed (dead-lettered)
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_until REAL,                   -- an attempt is in flight until then (cleared at start-up)
    expires_at REAL NOT NULL,           -- dead-lettered when still failing after this (WA_WEBHOOK_MAX_AGE)
    last_attempt_at REAL,
    last_status_code INTEGER,
    last_error TEXT,                    -- why the last attempt failed (never the receiver's body)
    created_at REAL NOT NULL,
    delivered_at REAL,
    failed_at REAL,
    updated_at REAL NOT NULL
);
CREATE UNIQUE INDEX webhook_deliveries_id ON webhook_deliveries (id);
CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries (endpoint, event_seq);
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (endpoint, status, account, subject, seq);
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (status, seq);
