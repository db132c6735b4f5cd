-- What /health and /metrics read about broken conversations at every call (service/store/stats.py), and
-- what the dispatcher's sweep for sent messages without a delivery receipt reads every second
-- (outbox.flag_undelivered), answered from small index ranges instead of scanning the log or the outbox.
CREATE INDEX events_type_created ON events (type, created_at);
CREATE INDEX messages_sent_at ON messages (account, sent_at) WHERE status = 'sent';
