-- A contact's conversation (issue 25, item 2): what an inbound message quotes and the content of the kinds that
-- are neither text nor media. Portable SQL (SQLite and PostgreSQL).
ALTER TABLE inbound_messages ADD COLUMN quoted_wa_id TEXT;      -- a reply: the WhatsApp id of the quoted message
ALTER TABLE inbound_messages ADD COLUMN quoted_id TEXT;         -- ours, when the quoted message is one we know
ALTER TABLE inbound_messages ADD COLUMN quoted_direction TEXT;  -- in (a contact's) or out (ours), with quoted_id
ALTER TABLE inbound_messages ADD COLUMN content TEXT;           -- JSON: {"location"}, {"contacts"}, {"poll"} or {"raw_type"}
