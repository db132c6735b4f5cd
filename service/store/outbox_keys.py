"""The outbox's idempotency keys: a key names one accepted message for 24 hours (``outbox.accept``). SQL only; the
names are re-exported by ``outbox`` (callers say ``outbox.replayed``, ``outbox.KeyReused``)."""

from __future__ import annotations

import sqlite3
from typing import Any

IDEMPOTENCY_WINDOW = 24 * 3600.0


class KeyReused(Exception):
    """The idempotency key names a message with another body."""

    def __init__(self, message_id: str):
        super().__init__(message_id)
        self.message_id = message_id


def replayed(conn: sqlite3.Connection, account: str, idempotency_key: str, rhash: str,
             now: float) -> dict[str, Any] | None:
    """The message this key accepted within 24 hours for the same request (KeyReused for another request), or
    None: a new request, to be accepted."""
    return replay_of(conn, account, key_row(conn, account, idempotency_key), rhash, now)


def key_row(conn: sqlite3.Connection, account: str, idempotency_key: str) -> Any:
    return conn.execute(
        "SELECT message_id, request_hash, created_at FROM idempotency_keys WHERE account = ? AND key = ?",
        (account, idempotency_key),
    ).fetchone()


def replay_of(conn: sqlite3.Connection, account: str, found: Any, rhash: str, now: float) -> dict[str, Any] | None:
    """``replayed``'s judgement of the key's row (None: no row, expired, or its message is gone)."""
    if found is None or found["created_at"] <= now - IDEMPOTENCY_WINDOW:
        return None
    if found["request_hash"] != rhash:
        raise KeyReused(found["message_id"])
    row = conn.execute("SELECT * FROM messages WHERE account = ? AND id = ?", (account, found["message_id"])).fetchone()
    return None if row is None else dict(row)


def key_in_use(conn: sqlite3.Connection, account: str, key: str, now: float) -> bool:
    """Whether ``key`` names a message accepted within the last 24 hours."""
    return conn.execute(
        "SELECT 1 FROM idempotency_keys WHERE account = ? AND key = ? AND created_at > ?",
        (account, key, now - IDEMPOTENCY_WINDOW),
    ).fetchone() is not None
