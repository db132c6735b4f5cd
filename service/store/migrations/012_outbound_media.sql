-- Media in sent messages (issue 24): the outbox row references the media's bytes by sha256 in the media store
-- (service/media/store.py); `body` holds the caption ('' when none). The bytes stay until retention prunes the
-- message's media (media_pruned_at) and no other row references them (messages_media_sha256).
-- Portable SQL (SQLite and PostgreSQL).
ALTER TABLE messages ADD COLUMN media_kind TEXT;
ALTER TABLE messages ADD COLUMN media_sha256 TEXT;
ALTER TABLE messages ADD COLUMN media_mimetype TEXT;
ALTER TABLE messages ADD COLUMN media_size INTEGER;
ALTER TABLE messages ADD COLUMN media_filename TEXT;
ALTER TABLE messages ADD COLUMN media_ptt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN media_pruned_at REAL;
CREATE INDEX messages_media_sha256 ON messages (media_sha256);
