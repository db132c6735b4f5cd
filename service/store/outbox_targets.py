"""The messages our actions act on (issue 25): finding one by our id in either direction, what our reactions, edits
and revokes did to one of ours, and a read receipt's messages taken in the same transaction as its outbox row.
SQL only."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, replace
from typing import Any

from service.store import chat_index, outbox

READ_MAX = 1000  # a read names at most this many unread messages of the chat (the newest)
# The rows of ours a reaction, a reply, an edit or a revoke may name: messages, not actions on messages.
MESSAGE_ACTIONS = (None, "location", "contacts", "poll")


@dataclass(frozen=True, slots=True)
class Target:
    """A message of the account by our id: ``out`` (an outbox row) or ``in`` (an inbound_messages row)."""

    direction: str
    row: dict[str, Any]

    @property
    def is_message(self) -> bool:
        return self.direction == "in" or self.row.get("action") in MESSAGE_ACTIONS

    @property
    def chat(self) -> str | None:
        """The chat the message is in: the contact's phone number, or the group's jid."""
        return self.row.get("group_id") or self.row.get("phone_number")

    @property
    def text(self) -> str:
        return self.row.get("body") or ""  # a text, a caption, or '' (what a quote shows of the message)


def find(conn: sqlite3.Connection, account: str, message_id: str) -> Target | None:
    row = outbox.get(conn, account, message_id)
    if row is not None:
        return Target("out", row)
    found = conn.execute("SELECT * FROM inbound_messages WHERE account = ? AND id = ?",
                         (account, message_id)).fetchone()
    return None if found is None else Target("in", dict(found))


def history(conn: sqlite3.Connection, account: str, message_id: str) -> dict[str, Any]:
    """What our later actions did to our message ``message_id`` (those not failed: sent or on their way):
    ``reactions`` ({"me": emoji} while one stands, {} once removed), ``edits`` (the texts, the original first),
    ``revoked``. Empty when none did."""
    return histories(conn, account, [message_id]).get(message_id, {})


def histories(conn: sqlite3.Connection, account: str, message_ids: list[str]) -> dict[str, dict[str, Any]]:
    """``history`` of several of our messages in one query (a page of ``GET /messages``)."""
    if not message_ids:
        return {}
    marks = ",".join("?" * len(message_ids))
    rows = conn.execute(
        "SELECT a.target_id, a.action, a.body, a.content, t.body AS original FROM messages a"
        " JOIN messages t ON t.account = a.account AND t.id = a.target_id"
        f" WHERE a.account = ? AND a.target_id IN ({marks}) AND a.action IN ('reaction', 'edit', 'revoke')"
        " AND a.status <> 'failed' ORDER BY a.seq", (account, *message_ids),
    ).fetchall()
    changes: dict[str, dict[str, Any]] = {}
    for row in rows:
        change = changes.setdefault(row["target_id"], {})
        if row["action"] == "reaction":
            emoji = json.loads(row["content"])["public"]["emoji"]
            change["reactions"] = {"me": emoji} if emoji else {}
        elif row["action"] == "edit":
            change.setdefault("edits", [row["original"]]).append(row["body"])
        else:
            change["revoked"] = True
    return changes


def revoked(conn: sqlite3.Connection, account: str, message_id: str) -> bool:
    """Whether a revoke of our message is on its way or done."""
    return conn.execute(
        "SELECT 1 FROM messages WHERE account = ? AND target_id = ? AND action = 'revoke' AND status <> 'failed'",
        (account, message_id),
    ).fetchone() is not None


def accept_read(conn: sqlite3.Connection, *, chat_phone: str, upto_seq: int, upto_wa_id: str,
                extra: outbox.OutboundExtra, **accept: Any) -> tuple[dict[str, Any], bool]:
    """``outbox.accept`` of a read receipt for the contact's message ``upto`` and every earlier one of the chat not
    read yet: they are taken (``read_at``) in the same transaction, so that two reads never name one twice and a
    read accepted is never forgotten. A replay of the same request is answered as it was."""
    account, now, key = accept["account"], accept["now"], accept.get("idempotency_key")
    if key is not None:
        rhash = outbox.request_hash(accept["phone_number"], accept["body"], None, extra.identity)
        original = outbox.replayed(conn, account, key, rhash, now)
        if original is not None:
            return original, False
    unread = conn.execute(
        "SELECT seq, id, wa_id FROM inbound_messages WHERE account = ? AND phone_number = ? AND seq <= ?"
        " AND read_at IS NULL ORDER BY seq DESC LIMIT ?", (account, chat_phone, upto_seq, READ_MAX),
    ).fetchall()
    ids = [r["wa_id"] for r in reversed(unread)]
    if upto_wa_id not in ids:
        ids.append(upto_wa_id)  # read again: WhatsApp takes a repeated read receipt as a no-op
    for r in unread:
        conn.execute("UPDATE inbound_messages SET read_at = ? WHERE seq = ?", (now, r["seq"]))
    chat_index.mark_read(conn, account, [r["id"] for r in unread])  # the chat's unread count follows
    content = json.dumps({"worker": {"read": {"ids": ids}}, "public": {"ids": ids}})
    return outbox.accept(conn, extra=replace(extra, content=content), **accept)
