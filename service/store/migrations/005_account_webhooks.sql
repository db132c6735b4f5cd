-- Webhook endpoints of one account (managed by API), beside the global ones (WA_WEBHOOK_URL).
-- An endpoint is now keyed by an id, not by its URL, so the same URL configured globally and for one or
-- more accounts is that many independent endpoints (own cursor, own deliveries, own worker).
-- webhook_deliveries.endpoint holds that id. Existing rows are the global endpoints: their id stays
-- their URL (as configured in WA_WEBHOOK_URL), so their deliveries need no change; an account
-- endpoint's id is whe_<ULID>, which no URL can equal.
-- Portable SQL (SQLite and PostgreSQL): times are epoch seconds (REAL / DOUBLE PRECISION).
CREATE TABLE webhook_endpoints_005 (
    id TEXT NOT NULL PRIMARY KEY,       -- global: the URL itself; an account's: whe_<ULID>
    url TEXT NOT NULL,
    account TEXT,                       -- NULL: global (every account's events); else only this account's
    events TEXT,                        -- an account endpoint's event types, comma-separated; NULL: WA_WEBHOOK_EVENTS
    cursor INTEGER NOT NULL,            -- the last events.seq turned into deliveries (or skipped by the filters)
    active INTEGER NOT NULL DEFAULT 1,  -- global: configured in the current run; account: not deleted
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    deleted_at REAL                     -- an account endpoint removed by DELETE (kept: its deliveries name it)
);
INSERT INTO webhook_endpoints_005 (id, url, account, events, cursor, active, created_at, updated_at)
    SELECT url, url, NULL, NULL, cursor, active, created_at, updated_at FROM webhook_endpoints;
DROP TABLE webhook_endpoints;
ALTER TABLE webhook_endpoints_005 RENAME TO webhook_endpoints;
CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account, deleted_at);
