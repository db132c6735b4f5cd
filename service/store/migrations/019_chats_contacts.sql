-- Chats and contacts (issue 27, item 1). Portable SQL (SQLite and PostgreSQL, through store/pg_sql.py).
-- A chat is kept in the transaction that stores its message (the outbox accept, the inbound store, a history
-- sync: service/store/chat_index.py), so that GET /chats reads one row per chat instead of grouping the messages.
-- Its id: the contact's E.164 number, a group's jid, or a LID jid while the LID's phone is unknown; once it is
-- known, the LID's chat is merged into the phone's (one chat, not two).
CREATE TABLE chats (
    account TEXT NOT NULL,
    id TEXT NOT NULL,                   -- +E.164, <digits>@g.us, or <digits>@lid
    kind TEXT NOT NULL,                 -- contact, group
    lid TEXT,                           -- a contact's LID, when known
    name TEXT,                          -- a group's subject, as a history sync named it
    last_source TEXT,                   -- out, in or history: which table holds the last message
    last_message_id TEXT,
    last_activity_at REAL NOT NULL,     -- the last message's time (or the history's chat timestamp)
    unread_count INTEGER NOT NULL DEFAULT 0,  -- live inbound messages not read yet (never history)
    created_at REAL NOT NULL,
    PRIMARY KEY (account, id)
);
CREATE INDEX chats_activity ON chats (account, last_activity_at, id);

-- Every message of a chat, whichever table holds it (messages, inbound_messages, history_messages): a chat's
-- messages by time are one index range, and merging a LID's chat into its phone's is one UPDATE of `chat`.
CREATE TABLE chat_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    chat TEXT NOT NULL,                 -- chats.id
    source TEXT NOT NULL,               -- out, in, history
    message_id TEXT NOT NULL,           -- the row's id in its table (ours, a ULID)
    at REAL NOT NULL,                   -- sent (the sender's time; ours: accepted)
    unread INTEGER NOT NULL DEFAULT 0,  -- a live inbound message not read yet
    reactions TEXT                      -- JSON {sender: emoji}: contacts' reactions to it (ours: the outbox)
);
CREATE UNIQUE INDEX chat_messages_message ON chat_messages (account, message_id);
CREATE INDEX chat_messages_chat ON chat_messages (account, chat, at, seq);
CREATE INDEX chat_messages_time ON chat_messages (account, at, seq);
CREATE INDEX chat_messages_unread ON chat_messages (account, chat) WHERE unread = 1;

-- Messages a history sync brought (both directions): never a new message (no event, no unread count, no outbox
-- row), stored once per (account, chat_jid, wa_id) however often the phone sends them again.
CREATE TABLE history_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    id TEXT NOT NULL,
    wa_id TEXT NOT NULL,
    chat_jid TEXT NOT NULL,             -- as the phone named the chat
    direction TEXT NOT NULL,            -- in, out
    phone_number TEXT,                  -- in: the sender (a group's participant), out: the recipient contact
    lid TEXT,
    group_id TEXT,
    push_name TEXT,
    kind TEXT NOT NULL,
    body TEXT,
    content TEXT,                       -- JSON, as inbound_messages.content
    status TEXT,                        -- ours: as the phone last saw it
    sent_at REAL NOT NULL,
    stored_at REAL NOT NULL
);
CREATE UNIQUE INDEX history_id ON history_messages (id);
CREATE UNIQUE INDEX history_source ON history_messages (account, chat_jid, wa_id);

-- What the account knows of a contact (push name, the phone's name for it, its LID, whether it is on WhatsApp).
-- `key` is its phone number, or its LID while no phone is known (merged into the phone's row once it is).
-- `contacts` (001) keeps its own meaning: numbers that wrote to the account (the first-contact budget).
CREATE TABLE contact_profiles (
    account TEXT NOT NULL,
    key TEXT NOT NULL,
    phone_number TEXT,
    lid TEXT,
    push_name TEXT,
    name TEXT,
    on_whatsapp INTEGER,                -- null: never asked
    checked_at REAL,                    -- when the worker last asked WhatsApp
    updated_at REAL NOT NULL,
    PRIMARY KEY (account, key)
);
CREATE INDEX contact_profiles_lid ON contact_profiles (account, lid);

-- What a gateway stored before this version: its messages indexed, one chat per contact or group, profiles of the
-- contacts that wrote. Earlier inbound messages count as read (the phone's reads were not recorded before).
INSERT INTO chat_messages (account, chat, source, message_id, at, unread)
    SELECT account, phone_number, 'out', id, created_at, 0 FROM messages
    WHERE direction = 'out' AND (action IS NULL OR action IN ('location', 'contacts', 'poll')) ORDER BY seq;
INSERT INTO chat_messages (account, chat, source, message_id, at, unread)
    SELECT account, COALESCE(group_id, phone_number, lid, chat_jid), 'in', id, sent_at, 0 FROM inbound_messages
    ORDER BY seq;
INSERT INTO chats (account, id, kind, last_activity_at, unread_count, created_at)
    SELECT account, chat, CASE WHEN chat LIKE '%@g.us' THEN 'group' ELSE 'contact' END, MAX(at), 0, MIN(at)
    FROM chat_messages GROUP BY account, chat;
UPDATE chats SET
    last_source = (SELECT cm.source FROM chat_messages cm WHERE cm.account = chats.account AND cm.chat = chats.id
                   ORDER BY cm.at DESC, cm.seq DESC LIMIT 1),
    last_message_id = (SELECT cm.message_id FROM chat_messages cm WHERE cm.account = chats.account
                       AND cm.chat = chats.id ORDER BY cm.at DESC, cm.seq DESC LIMIT 1);
INSERT INTO contact_profiles (account, key, phone_number, lid, push_name, updated_at)
    SELECT account, phone_number, phone_number, MAX(lid), MAX(push_name), MAX(received_at) FROM inbound_messages
    WHERE phone_number IS NOT NULL AND group_id IS NULL GROUP BY account, phone_number;
