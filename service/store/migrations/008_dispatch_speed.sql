-- A recipient's messages in acceptance order: the dispatcher reads the rest of a send run (the next
-- waiting messages to one recipient, service/dispatch.py) without scanning the whole backlog.
CREATE INDEX messages_recipient ON messages (account, phone_number, seq);

-- Each account's waiting messages (queued or sending), kept in the transactions that change them
-- (service/store/outbox.py: accept, advance, fail), so that the outbox limit is checked on every accept
-- by one row instead of counting the backlog; on PostgreSQL the row also serializes concurrent accepts of
-- one account, so two instances cannot both take the last place.
CREATE TABLE outbox_depth (
    account TEXT PRIMARY KEY,
    waiting INTEGER NOT NULL
);
INSERT INTO outbox_depth (account, waiting)
    SELECT account, COUNT(*) FROM messages WHERE status IN ('queued', 'sending') GROUP BY account;
