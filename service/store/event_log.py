"""The durable event log: every inbound message, message status and session change, once, in order.

Events are written in the same transaction as the change they report (an outbox status, a stored
inbound message), so the log never misses a change and never reports one that did not commit. A
worker event that arrives twice (it is handed over at least once) has a ``source_id`` and is stored
once. Readers (``GET /events``, the SSE stream, webhook deliveries) follow ``seq``, which is never
reused.

Payload (the public event, also the webhook body)::

    {"id": "evt_...", "type": "message.received", "account": "default",
     "timestamp": "2026-11-25T12:00:00.000Z", "data": {...}}
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from service.store.ids import new_id

TYPES = ("message.received", "message.status", "session.status", "message.undecryptable", "media.stored",
         "media.failed", "message.reaction", "message.edited", "message.revoked", "presence",
         "poll.vote", "chat.read", "group.participants", "group.updated")
EVENTS_LOCK = 0x7761_6777_0002  # the advisory lock (PostgreSQL) under which a seq is drawn


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC with milliseconds (the format of every time in the API)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append(conn: sqlite3.Connection, account: str, type_: str, data: dict[str, Any], now: float, *,
           source_id: str | None = None, subject: str | None = None) -> dict[str, Any] | None:
    """Store one event; None when ``source_id`` was stored already (a repeated hand-over)."""
    if source_id is not None and conn.execute(
        "SELECT 1 FROM events WHERE account = ? AND source_id = ?", (account, source_id)
    ).fetchone() is not None:
        return None
    event_id = "evt_" + new_id(now)
    payload = json.dumps(
        {"id": event_id, "type": type_, "account": account, "timestamp": iso(now), "data": data},
        ensure_ascii=False, separators=(",", ":"),
    )
    # PostgreSQL: event-writing transactions commit in seq order (store/pg.py), so a reader that moves a
    # cursor to the highest seq it sees never skips one that commits later. SQLite: one writer, no-op.
    conn.xact_lock(EVENTS_LOCK)  # type: ignore[attr-defined]  # the writers hand a SqliteConnection or PgConnection
    seq = conn.execute(
        "INSERT INTO events (account, id, source_id, type, subject, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " RETURNING seq",
        (account, event_id, source_id, type_, subject, payload, now),
    ).fetchall()[0][0]
    return {"seq": seq, "id": event_id, "account": account, "type": type_, "subject": subject,
            "payload": payload, "created_at": now}


def after(conn: sqlite3.Connection, seq: int, *, account: str | None = None, types: tuple[str, ...] | None = None,
          limit: int = 100) -> list[dict[str, Any]]:
    """Events with a cursor beyond ``seq``, oldest first."""
    sql = "SELECT seq, id, account, type, subject, payload, created_at FROM events WHERE seq > ?"
    args: list[Any] = [seq]
    if account is not None:
        sql += " AND account = ?"
        args.append(account)
    if types:
        sql += f" AND type IN ({','.join('?' * len(types))})"
        args.extend(types)
    sql += " ORDER BY seq LIMIT ?"
    args.append(limit)
    return [dict(r) for r in conn.execute(sql, args)]


def last_seq(conn: sqlite3.Connection) -> int:
    seq: int = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
    return seq


def first_seq(conn: sqlite3.Connection) -> int:
    """The oldest cursor still kept (0 for an empty log): a reader behind it has missed pruned events."""
    seq: int = conn.execute("SELECT COALESCE(MIN(seq), 0) FROM events").fetchone()[0]
    return seq


def prune(conn: sqlite3.Connection, older_than: float, read_upto: int | None = None) -> int:
    """Drop events created before ``older_than`` and, when given, not beyond ``read_upto`` (the events
    after it a reader still has to read)."""
    sql = "DELETE FROM events WHERE created_at < ?"
    args: list[Any] = [older_than]
    if read_upto is not None:
        sql += " AND seq <= ?"
        args.append(read_upto)
    return conn.execute(sql, args).rowcount


def public(row: dict[str, Any]) -> dict[str, Any]:
    """The event as the API shows it: its payload plus its cursor."""
    return {"seq": row["seq"], **json.loads(row["payload"])}
