-- A signing secret per account webhook (issue 21): whsec_..., made at creation and shown once; the previous
-- one keeps signing beside it until secret_previous_until after a rotation. Global endpoints (WA_WEBHOOK_URL)
-- keep NULL: they sign with WA_WEBHOOK_SECRET. An account endpoint made before this has NULL too until the
-- gateway's next start gives it one of its own (service/webhooks/delivery.py; rotate to learn it).
-- Never selected by the listings (service/store/webhooks.py reads it only to sign).
-- Portable SQL (SQLite and PostgreSQL).
ALTER TABLE webhook_endpoints ADD COLUMN secret TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN secret_previous TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN secret_previous_until REAL;
