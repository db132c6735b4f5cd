-- What a contact did to its messages afterwards (issue 25, item 2): an edit replaces body and keeps every version,
-- a revoke ("delete for everyone") marks the message. Portable SQL (SQLite and PostgreSQL).
ALTER TABLE inbound_messages ADD COLUMN edits TEXT;       -- JSON [{"text", "timestamp"}]: every version, the original first
ALTER TABLE inbound_messages ADD COLUMN edited_at REAL;   -- when the last edit was stored
ALTER TABLE inbound_messages ADD COLUMN revoked_at REAL;  -- when its revoke was stored (the body stays for the record)
