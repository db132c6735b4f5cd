-- Lookups that read every message of an account without these (measured by bench/chats.py, issue 27), found with
-- EXPLAIN QUERY PLAN on a store of 20,000 messages and growing with it:
-- * a page of chats or of a chat's messages fills its rows with `WHERE account = ? AND id IN (...)`
--   (store/chat_reads.py). With five ids or more, SQLite (no statistics) prefers walking an index that starts
--   with `account` alone (messages_target, inbound_list, history_source) to probing the unique index on `id`:
--   every message of the account, per page. With `(account, id)` both columns are one probe per id.
-- * a contact's reaction, edit, revoke or quote, and the phone's own read (`chat.read`), find our id of the message
--   they name with `account = ? AND wa_id = ? AND (chat_jid = ? OR phone_number = ?)` (store/inbound_content.py):
--   the OR defeats inbound_source (account, chat_jid, wa_id), so every inbound message of the account was read.
CREATE UNIQUE INDEX messages_account_id ON messages (account, id);
CREATE UNIQUE INDEX inbound_account_id ON inbound_messages (account, id);
CREATE UNIQUE INDEX history_account_id ON history_messages (account, id);
CREATE INDEX inbound_wa_id ON inbound_messages (account, wa_id);
