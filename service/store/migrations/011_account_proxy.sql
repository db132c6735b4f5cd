-- A proxy per account for its WhatsApp connection (issue 23): NULL follows WA_PROXY_URL; 'direct' is no proxy
-- although WA_PROXY_URL is set; else an http:// or socks5(h):// URL, credentials included, which only the
-- worker's accounts.json (0600) gets: the API shows it redacted (service/proxy_url.py), logs never.
-- Portable SQL (SQLite and PostgreSQL).
ALTER TABLE accounts ADD COLUMN proxy_url TEXT;
