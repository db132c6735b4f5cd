-- The MCP server's rails (issue 27): a scoped key's own rails, set by the admin (NULL: the WA_MCP_* defaults),
-- and every key's sends through MCP in the last hour (the send budget; service/store/mcp_rails.py). Portable SQL.
ALTER TABLE account_keys ADD COLUMN mcp_tools TEXT;          -- a JSON list of tool names
ALTER TABLE account_keys ADD COLUMN mcp_send_budget INTEGER; -- sends per hour
ALTER TABLE account_keys ADD COLUMN mcp_dry_run INTEGER;     -- 1: send tools only validate

CREATE TABLE mcp_sends (
    id TEXT PRIMARY KEY,
    key_ref TEXT NOT NULL,   -- a scoped key's id, or admin:<sha256 prefix> for an admin key
    sent_at REAL NOT NULL
);
CREATE INDEX mcp_sends_key ON mcp_sends (key_ref, sent_at);
