-- Media retention and quotas (issue 24, service/media/retention.py). An inbound message's media is pruned like
-- an outbound one's (013 inbound_media.pruned_at, 012 messages.media_pruned_at): the row stays, its bytes may go (GET /media/{id} answers
-- 410 media_pruned). A blob is deleted once no unpruned row references it: the two sha256 indexes answer that
-- per blob. The partial indexes find what is due (by age) and an account's unpruned media (its quota) without
-- reading the rows that carry no media. Portable SQL (SQLite and PostgreSQL).
CREATE INDEX inbound_media_sha256 ON inbound_media (sha256);
CREATE INDEX inbound_media_unpruned ON inbound_media (account, created_at) WHERE pruned_at IS NULL;
CREATE INDEX messages_media_unpruned ON messages (account, created_at)
    WHERE media_sha256 IS NOT NULL AND media_pruned_at IS NULL;
