-- A real conversation, our side (issue 25, item 1): what an outbound row is besides text or media. `content` holds
-- the worker's fields of a location, contact cards, a poll, a reaction, an edit, a revoke, a read or a presence
-- (JSON; a reply's `quoted` too), `action` names it, `target_id` is the message (ours or a contact's, by our id) an
-- action acts on, `reply_to` the one a reply quotes. `inbound_messages.read_at`: when we accepted reading it.
-- Portable SQL (SQLite and PostgreSQL).
ALTER TABLE messages ADD COLUMN action TEXT;
ALTER TABLE messages ADD COLUMN content TEXT;
ALTER TABLE messages ADD COLUMN target_id TEXT;
ALTER TABLE messages ADD COLUMN reply_to TEXT;
CREATE INDEX messages_target ON messages (account, target_id);
ALTER TABLE inbound_messages ADD COLUMN read_at REAL;
