-- A chat's unread messages by time (measured by bench/chats.py, issue 27). `POST /chats/{chat}/read` looks for the
-- chat's newest unread message (`... AND unread = 1 ORDER BY at DESC, seq DESC LIMIT 1`) and the phone's read
-- (`chat.read`) for its unread messages up to a time (`... AND unread = 1 AND at <= ?`), both in
-- store/chat_index.py. With the partial index on (account, chat) alone, SQLite walked the chat's whole range of
-- chat_messages_chat instead, newest first, for the order: every message of a chat with nothing unread (6.5 ms
-- against 0.7 at 300,000 messages, growing with the chat). Ordered by (at, seq) inside the partial index, both
-- are a walk of the chat's unread messages only.
DROP INDEX chat_messages_unread;
CREATE INDEX chat_messages_unread ON chat_messages (account, chat, at, seq) WHERE unread = 1;
