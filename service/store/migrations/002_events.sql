-- The durable event log (what /events, the SSE stream and webhooks read) and the inbound messages.
-- Portable SQL (SQLite and PostgreSQL): times are epoch seconds (REAL / DOUBLE PRECISION).
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- the cursor (never reused; PostgreSQL: BIGSERIAL)
    account TEXT NOT NULL,
    id TEXT NOT NULL,                   -- public: evt_<ULID>, the webhook-id of its deliveries
    source_id TEXT,                     -- the worker's stable event id: one row per source event
    type TEXT NOT NULL,                 -- message.received, message.status, session.status
    subject TEXT,                       -- the contact (E.164 or LID) it concerns: ordering per contact
    payload TEXT NOT NULL,              -- JSON {"id","type","account","timestamp","data"}
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX events_id ON events (id);
CREATE UNIQUE INDEX events_source ON events (account, source_id);
CREATE INDEX events_account ON events (account, seq);
CREATE INDEX events_created ON events (created_at);

-- Messages contacts sent to the account, stored once each (a redelivery is the same row).
CREATE TABLE inbound_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    id TEXT NOT NULL,                   -- ours: sortable, returned to the caller
    wa_id TEXT NOT NULL,                -- the sender's WhatsApp message id
    chat_jid TEXT NOT NULL,             -- the jid it came from (a phone number's or a LID)
    phone_number TEXT,                  -- the sender, E.164 (null while only a LID is known)
    lid TEXT,                           -- the sender's LID, when known
    push_name TEXT,
    kind TEXT NOT NULL,                 -- text
    body TEXT,
    sent_at REAL NOT NULL,              -- the sender's timestamp
    offline INTEGER NOT NULL DEFAULT 0, -- delivered while this device was offline
    received_at REAL NOT NULL
);
CREATE UNIQUE INDEX inbound_id ON inbound_messages (id);
CREATE UNIQUE INDEX inbound_source ON inbound_messages (account, chat_jid, wa_id);
CREATE INDEX inbound_list ON inbound_messages (account, seq);
CREATE INDEX inbound_phone ON inbound_messages (account, phone_number, seq);
