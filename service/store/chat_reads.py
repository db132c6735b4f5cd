"""Reading chats (issue 27): a page of an account's chats by activity, a page of one chat's messages by time, a
search of the messages' text. SQL only.

Each page is first a range of ``chats`` or ``chat_messages`` (migration 019's indexes), then its rows are filled in
from the table that holds each message (the outbox, the inbound messages, the history) and what acted on them (our
reactions, edits and revokes in the outbox; contacts' reactions on the index row): one query per table per page,
never per message.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from service.store import contact_profiles, inbound_media

TABLES = {"out": "messages", "in": "inbound_messages", "history": "history_messages"}


def list_chats(conn: sqlite3.Connection, account: str, *, limit: int,
               before: tuple[float, str] | None = None) -> list[dict[str, Any]]:
    """Newest activity first; ``before``: the (activity, id) of the previous page's last chat. Each chat with its
    contact's ``profile`` (or None) and its ``last`` message (``fill``'s shape, or None)."""
    clauses, args = "", list[Any]([account])
    if before is not None:
        clauses = " AND (last_activity_at < ? OR (last_activity_at = ? AND id < ?))"
        args += [before[0], before[0], before[1]]
    chats = [dict(r) for r in conn.execute(
        f"SELECT * FROM chats WHERE account = ?{clauses} ORDER BY last_activity_at DESC, id DESC LIMIT ?",
        (*args, limit))]
    return with_details(conn, account, chats)


def with_details(conn: sqlite3.Connection, account: str, chats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``chats`` with their contacts' profiles and their last messages."""
    profiles = contact_profiles.names(conn, account, [c["id"] for c in chats if c["kind"] == "contact"])
    lasts = conn.execute(
        f"SELECT * FROM chat_messages WHERE account = ? AND message_id IN ({','.join('?' * len(chats)) or 'NULL'})",
        (account, *[c["last_message_id"] for c in chats])).fetchall() if chats else []
    filled = {m["index"]["message_id"]: m for m in fill(conn, account, [dict(r) for r in lasts])}
    return [{**c, "profile": profiles.get(c["id"]), "last": filled.get(c["last_message_id"])} for c in chats]


def _page(conn: sqlite3.Connection, where: str, args: list[Any], limit: int,
          before: tuple[float, int] | None) -> list[dict[str, Any]]:
    if before is not None:
        where += " AND (cm.at < ? OR (cm.at = ? AND cm.seq < ?))"
        args = [*args, before[0], before[0], before[1]]
    return [dict(r) for r in conn.execute(
        f"SELECT cm.* FROM chat_messages cm{where} ORDER BY cm.at DESC, cm.seq DESC LIMIT ?", (*args, limit))]


def chat_messages(conn: sqlite3.Connection, account: str, chat: str, *, limit: int,
                  before: tuple[float, int] | None = None) -> list[dict[str, Any]]:
    """The chat's messages, newest first, both directions and the history; ``before``: the previous page's last
    (at, seq)."""
    rows = _page(conn, " WHERE cm.account = ? AND cm.chat = ?", [account, chat], limit, before)
    return fill(conn, account, rows)


SEARCH_WINDOW = 20_000  # messages one search request reads at the most (then its cursor goes on from there)


def search(conn: sqlite3.Connection, account: str, pattern: str, *, chat: str | None, limit: int,
           before: tuple[float, int] | None = None,
           window: int = SEARCH_WINDOW) -> tuple[list[dict[str, Any]], tuple[float, int] | None]:
    """Messages whose text or caption matches the LIKE ``pattern`` (lower case), newest first, in ``chat`` or in
    all; and where the next request goes on, when this one stopped at its window rather than at the oldest message.

    A substring has no index, so a search reads messages one by one: it reads the newest ``window`` messages before
    ``before`` at the most, and a page with fewer than ``limit`` matches then says where to go on. Each request so
    costs a bounded time on the store's one thread (sends and events wait behind it), however big the store is and
    however rare the text; walking the pages finds every match. SQLite's LOWER folds ASCII letters only;
    PostgreSQL's every letter."""
    inner = " WHERE cm.account = ?"
    args: list[Any] = [account]
    if chat is not None:
        inner += " AND cm.chat = ?"
        args.append(chat)
    if before is not None:
        inner += " AND (cm.at < ? OR (cm.at = ? AND cm.seq < ?))"
        args += [before[0], before[0], before[1]]
    scanned = (f"SELECT cm.* FROM chat_messages cm{inner} ORDER BY cm.at DESC, cm.seq DESC LIMIT ?")
    rows = [dict(r) for r in conn.execute(
        f"SELECT w.* FROM ({scanned}) w"
        " LEFT JOIN messages m ON w.source = 'out' AND m.account = w.account AND m.id = w.message_id"
        " LEFT JOIN inbound_messages i ON w.source = 'in' AND i.account = w.account AND i.id = w.message_id"
        " LEFT JOIN history_messages h ON w.source = 'history' AND h.account = w.account AND h.id = w.message_id"
        " WHERE LOWER(COALESCE(m.body, i.body, h.body, '')) LIKE ? ESCAPE '\\'"
        " ORDER BY w.at DESC, w.seq DESC LIMIT ?", (*args, window, pattern, limit))]
    go_on = None
    if len(rows) < limit:  # the page did not fill: is there more beyond the window (the next request goes on)?
        edge = conn.execute(f"SELECT cm.at, cm.seq FROM chat_messages cm{inner} ORDER BY cm.at DESC, cm.seq DESC"
                            " LIMIT 2 OFFSET ?", (*args, window - 1)).fetchall()
        if len(edge) == 2:  # the window's oldest message, and one older still
            go_on = (float(edge[0][0]), int(edge[0][1]))
    return fill(conn, account, rows), go_on


def _ours(conn: sqlite3.Connection, account: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """What our reactions, edits and revokes (not failed) did to the messages ``ids``: {"reaction", "edits",
    "revoked"} by message id."""
    if not ids:
        return {}
    changes: dict[str, dict[str, Any]] = {}
    for row in conn.execute(
        f"SELECT target_id, action, body, content FROM messages WHERE account = ? AND target_id IN"
        f" ({','.join('?' * len(ids))}) AND action IN ('reaction', 'edit', 'revoke') AND status <> 'failed'"
        " ORDER BY seq", (account, *ids)):
        change = changes.setdefault(row["target_id"], {})
        if row["action"] == "reaction":
            change["reaction"] = json.loads(row["content"])["public"]["emoji"]
        elif row["action"] == "edit":
            change.setdefault("edits", []).append(row["body"])
        else:
            change["revoked"] = True
    return changes


def fill(conn: sqlite3.Connection, account: str, index: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Index rows as {"index": its chat_messages row, "source", "row": the message's own row (an inbound one with
    ``media``), "ours": what our actions did to it}, in the order given."""
    rows: dict[str, dict[str, Any]] = {}
    for source, table in TABLES.items():
        ids = [i["message_id"] for i in index if i["source"] == source]
        if not ids:
            continue
        found = [dict(r) for r in conn.execute(
            f"SELECT * FROM {table} WHERE account = ? AND id IN ({','.join('?' * len(ids))})", (account, *ids))]
        if source == "in":
            found = inbound_media.attach(conn, account, found)
        rows.update({r["id"]: r for r in found})
    ours = _ours(conn, account, [i["message_id"] for i in index if i["source"] != "history"])
    return [{"index": i, "source": i["source"], "row": rows[i["message_id"]], "ours": ours.get(i["message_id"], {})}
            for i in index if i["message_id"] in rows]
