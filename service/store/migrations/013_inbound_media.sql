-- Media contacts send (issue 24): one row per inbound media message, beside its inbound_messages row (same
-- account and id). Stored in the transaction that stores the message, in state 'downloading'; the account's
-- downloader (service/runtime/downloads.py) asks the worker for the file and moves the row to 'stored' or
-- 'failed', each with its event. Portable SQL (SQLite and PostgreSQL, through store/pg_sql.py).
CREATE TABLE inbound_media (
    account TEXT NOT NULL,
    message_id TEXT NOT NULL,           -- inbound_messages.id: the API's id, also GET /media/{id}
    kind TEXT NOT NULL,                 -- image, video, audio, document, sticker
    mimetype TEXT,                      -- as the sender declared it
    size INTEGER,                       -- bytes: announced by the sender, then the stored file's
    sha256 TEXT,                        -- hex: announced (fileSha256), checked against the downloaded file
    filename TEXT,                      -- a document's, as the sender named it (hostile: never trusted)
    caption TEXT,
    ptt INTEGER NOT NULL DEFAULT 0,     -- a voice note
    seconds INTEGER,                    -- audio and video
    width INTEGER,
    height INTEGER,
    state TEXT NOT NULL,                -- downloading, stored, failed
    error TEXT,                         -- why failed (a code), else null
    attempts INTEGER NOT NULL DEFAULT 0,-- downloads tried (a wait for the connection gives its attempt back)
    next_attempt_at REAL,               -- while downloading: not before this
    descriptor TEXT NOT NULL,           -- the worker's JSON (direct path, media key): a SECRET, never shown
    pruned_at REAL,                     -- when media retention deleted the stored bytes (GET /media: 410)
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (account, message_id)
);
-- The downloader's "due" query: an account's rows still downloading, soonest first.
CREATE INDEX inbound_media_due ON inbound_media (account, next_attempt_at) WHERE state = 'downloading';
