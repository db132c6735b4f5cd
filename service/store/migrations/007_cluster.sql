-- Running past one machine (issue 14): gateway instances, account leases, and each account's WhatsApp
-- session (credentials and Signal keys) in the shared store. Created in SQLite too, where a single
-- instance leaves them empty: one schema, one set of migrations for both engines.

CREATE TABLE instances (
    id TEXT PRIMARY KEY,                -- WA_INSTANCE_ID (default: the host name)
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,         -- renewed with the leases; an instance silent past the TTL is gone
    stopping INTEGER NOT NULL DEFAULT 0,-- SIGTERM'd: takes no new accounts, hands its own off
    api_url TEXT                        -- where its HTTP API answers (shown in the cluster view)
);

CREATE TABLE leases (
    account TEXT PRIMARY KEY,
    owner TEXT,                         -- the instance serving the account; NULL when released
    generation INTEGER NOT NULL,        -- the fence: bumped on every change of owner, never reused
    expires_at REAL NOT NULL,           -- the owner renews before this; after it anyone may take over
    updated_at REAL NOT NULL
);

CREATE TABLE wa_auth (
    account TEXT NOT NULL,
    key TEXT NOT NULL,                  -- 'creds' or '<type>/<id>', as in node_worker/src/auth-store.js
    value TEXT NOT NULL,                -- BufferJSON text
    generation INTEGER NOT NULL,        -- the lease generation whose owner wrote it
    updated_at REAL NOT NULL,
    PRIMARY KEY (account, key)
);
