"""The MCP server's rails in the store (migration 020): a scoped key's own rails, set by the admin on the key,
and every key's sends through MCP in the last hour (the send budget, durable across restarts and shared by
the instances of a cluster).

A key's rails are three nullable columns of ``account_keys``: NULL is "the settings' default" (WA_MCP_*), so a
key made before MCP existed, or without rails, follows the operator's defaults. The budget is a sliding hour:
one ``mcp_sends`` row per send, counted over the last ``WINDOW`` seconds, older rows pruned as it goes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from service.store.ids import new_id

WINDOW = 3600.0  # seconds: the budget is per hour, sliding


def key_rails(conn: sqlite3.Connection, key_id: str) -> dict[str, Any]:
    """A scoped key's own rails: ``tools`` (list or None), ``send_budget`` (int or None), ``dry_run`` (bool or
    None); None everywhere for an unknown key."""
    row = conn.execute("SELECT mcp_tools, mcp_send_budget, mcp_dry_run FROM account_keys WHERE id = ?",
                       (key_id,)).fetchone()
    if row is None:
        return {"tools": None, "send_budget": None, "dry_run": None}
    return {"tools": json.loads(row[0]) if row[0] is not None else None, "send_budget": row[1],
            "dry_run": bool(row[2]) if row[2] is not None else None}


def rails_of_keys(conn: sqlite3.Connection, account: str) -> dict[str, dict[str, Any]]:
    """key id -> its own rails, for the keys of ``account`` that have any (the listing shows them)."""
    rows = conn.execute("SELECT id FROM account_keys WHERE account = ? AND (mcp_tools IS NOT NULL OR "
                        "mcp_send_budget IS NOT NULL OR mcp_dry_run IS NOT NULL)", (account,)).fetchall()
    return {row[0]: key_rails(conn, row[0]) for row in rows}


def set_key_rails(conn: sqlite3.Connection, key_id: str, tools: list[str] | None, send_budget: int | None,
                  dry_run: bool | None) -> None:
    conn.execute("UPDATE account_keys SET mcp_tools = ?, mcp_send_budget = ?, mcp_dry_run = ? WHERE id = ?",
                 (json.dumps(tools) if tools is not None else None, send_budget,
                  int(dry_run) if dry_run is not None else None, key_id))


def _lock_key(key_ref: str) -> int:
    """A signed 63-bit advisory-lock key per budget owner (PostgreSQL: two instances take units in turn)."""
    return int.from_bytes(hashlib.sha256(b"mcp-budget:" + key_ref.encode()).digest()[:8], "big") >> 1


def take_send(conn: sqlite3.Connection, key_ref: str, budget: int, now: float) -> tuple[str | None, float]:
    """Take one unit of ``key_ref``'s budget: (its token, 0.0), or (None, seconds until a unit frees up) when
    ``budget`` sends were taken in the last hour (always so for a budget of 0)."""
    conn.xact_lock(_lock_key(key_ref))  # type: ignore[attr-defined]
    # Every key's hour-old rows go (a revoked or deleted key's too): the table holds at most an hour of sends.
    conn.execute("DELETE FROM mcp_sends WHERE sent_at <= ?", (now - WINDOW,))
    rows = conn.execute("SELECT sent_at FROM mcp_sends WHERE key_ref = ? ORDER BY sent_at", (key_ref,)).fetchall()
    if len(rows) >= budget:
        oldest = rows[len(rows) - budget][0] if budget > 0 else now
        return None, max(1.0, oldest + WINDOW - now) if budget > 0 else WINDOW
    token = new_id(now)
    conn.execute("INSERT INTO mcp_sends (id, key_ref, sent_at) VALUES (?, ?, ?)", (token, key_ref, now))
    return token, 0.0


def refund_send(conn: sqlite3.Connection, token: str) -> None:
    """Give a unit back: the gateway refused the message, so nothing was sent."""
    conn.execute("DELETE FROM mcp_sends WHERE id = ?", (token,))


def sends_left(conn: sqlite3.Connection, key_ref: str, budget: int, now: float) -> int:
    (used,) = conn.execute("SELECT COUNT(*) FROM mcp_sends WHERE key_ref = ? AND sent_at > ?",
                           (key_ref, now - WINDOW)).fetchone()
    return max(0, budget - int(used))
