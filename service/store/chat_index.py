"""An account's chats (issue 27): kept in the transaction that stores each message, and merged when a LID's phone is
learned. SQL only.

Why a table per chat and an index of every chat's messages (migration 019): ``GET /chats`` reads one page of
``chats`` by activity, and a chat's messages are one range of ``chat_messages`` whichever table holds each one
(the outbox, the inbound messages, the history), instead of grouping or unioning a million rows per request.

A chat's id is the contact's E.164 number, a group's jid, or a LID jid while the LID's phone is unknown. The
mapping LID -> phone lives in ``contact_profiles`` (store/contact_profiles.py); when it is learned (an inbound
message naming both, ``contact.updated``, a history sync), the LID's chat becomes the phone's: its messages move
(``chat_messages.chat``), its inbound rows get their phone number, its unread messages are counted there.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

# The outbox rows that are messages of a chat (an action on a message is not one: it shows on its target).
MESSAGE_ACTIONS = (None, "location", "contacts", "poll")


def kind_of(chat: str) -> str:
    return "group" if chat.endswith("@g.us") else "contact"


def phone_of_lid(conn: sqlite3.Connection, account: str, lid: str) -> str | None:
    """The phone number the account learned for ``lid`` (a ``<digits>@lid``), or None."""
    row = conn.execute("SELECT phone_number FROM contact_profiles WHERE account = ? AND lid = ?"
                       " AND phone_number IS NOT NULL", (account, lid)).fetchone()
    return None if row is None else str(row[0])


def resolve(conn: sqlite3.Connection, account: str, chat: str) -> str:
    """The chat ``chat`` is now: a LID whose phone is known is the phone's chat."""
    if chat.endswith("@lid"):
        return phone_of_lid(conn, account, chat) or chat
    return chat


def get(conn: sqlite3.Connection, account: str, chat: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM chats WHERE account = ? AND id = ?", (account, chat)).fetchone()
    return None if row is None else dict(row)


def _touch(conn: sqlite3.Connection, account: str, chat: str, source: str | None, message_id: str | None, at: float,
           now: float, *, unread: bool = False, lid: str | None = None, name: str | None = None) -> None:
    """The chat's row after a message (or, ``source`` None, a history chat's timestamp) at ``at``: created, or its
    last message moved forward when ``at`` is not older; one more unread message for a live inbound one."""
    if source is not None and not unread and lid is None and name is None:
        # The common case (every accepted message: outbox.accept) in one statement instead of two.
        conn.execute(
            "INSERT INTO chats (account, id, kind, last_source, last_message_id, last_activity_at, unread_count,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (account, id) DO UPDATE SET"
            " last_source = excluded.last_source, last_message_id = excluded.last_message_id,"
            " last_activity_at = excluded.last_activity_at WHERE chats.last_activity_at <= excluded.last_activity_at",
            (account, chat, kind_of(chat), source, message_id, at, now))
        return
    created = conn.execute(
        "INSERT INTO chats (account, id, kind, lid, name, last_source, last_message_id, last_activity_at,"
        " unread_count, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, id) DO NOTHING",
        (account, chat, kind_of(chat), lid, name, source, message_id, at, int(unread), now),
    ).rowcount
    if created:
        return
    if source is not None:
        conn.execute("UPDATE chats SET last_source = ?, last_message_id = ?, last_activity_at = ?"
                     " WHERE account = ? AND id = ? AND last_activity_at <= ?",
                     (source, message_id, at, account, chat, at))
    else:
        conn.execute("UPDATE chats SET last_activity_at = ? WHERE account = ? AND id = ? AND last_activity_at < ?",
                     (at, account, chat, at))
    if unread:
        conn.execute("UPDATE chats SET unread_count = unread_count + 1 WHERE account = ? AND id = ?", (account, chat))
    if lid is not None or name is not None:
        conn.execute("UPDATE chats SET lid = COALESCE(?, lid), name = COALESCE(?, name) WHERE account = ? AND id = ?",
                     (lid, name, account, chat))


def add(conn: sqlite3.Connection, account: str, chat: str, source: str, message_id: str, at: float, now: float, *,
        unread: bool = False, lid: str | None = None) -> bool:
    """One message of ``chat`` (``source``: out, in or history), once; whether it was new."""
    if not conn.execute(
        "INSERT INTO chat_messages (account, chat, source, message_id, at, unread) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (account, message_id) DO NOTHING", (account, chat, source, message_id, at, int(unread)),
    ).rowcount:
        return False
    _touch(conn, account, chat, source, message_id, at, now, unread=unread, lid=lid)
    return True


def note_chat(conn: sqlite3.Connection, account: str, chat: str, at: float | None, now: float, *,
              name: str | None = None, lid: str | None = None) -> None:
    """A chat a history sync names (its subject, its last activity), with or without messages of its own."""
    _touch(conn, account, chat, None, None, at if at is not None else 0.0, now, lid=lid, name=name)


def outbound(conn: sqlite3.Connection, account: str, recipient: str, message_id: str, action: str | None,
             now: float) -> None:
    """A message we accepted (outbox.accept): its recipient's chat (a phone number or a group's jid)."""
    if action in MESSAGE_ACTIONS:
        add(conn, account, recipient, "out", message_id, now, now)


def recount(conn: sqlite3.Connection, account: str, chat: str) -> None:
    conn.execute("UPDATE chats SET unread_count = (SELECT COUNT(*) FROM chat_messages WHERE account = ? AND chat = ?"
                 " AND unread = 1) WHERE account = ? AND id = ?", (account, chat, account, chat))


def mark_read(conn: sqlite3.Connection, account: str, message_ids: list[str]) -> None:
    """Inbound messages taken as read (our read receipt, or the phone's): no longer counted unread."""
    if not message_ids:
        return
    marks = ",".join("?" * len(message_ids))
    # By message id alone (one probe each): with `unread = 1` in the WHERE, the planner walked the partial index of
    # every unread message of the account instead (176 ms with 15,818 unread, bench/chats.py).
    chats = sorted({r[0] for r in conn.execute(
        f"SELECT chat, unread FROM chat_messages WHERE account = ? AND message_id IN ({marks})",
        (account, *message_ids)) if r[1]})
    if not chats:
        return
    conn.execute(f"UPDATE chat_messages SET unread = 0 WHERE account = ? AND message_id IN ({marks})",
                 (account, *message_ids))
    for chat in chats:
        recount(conn, account, chat)


def newest_unread(conn: sqlite3.Connection, account: str, chat: str) -> dict[str, Any] | None:
    """The chat's newest inbound message not read yet (what ``POST /chats/{chat}/read`` reads up to), or None."""
    row = conn.execute(
        "SELECT i.* FROM chat_messages cm JOIN inbound_messages i ON i.account = cm.account AND i.id = cm.message_id"
        " WHERE cm.account = ? AND cm.chat = ? AND cm.unread = 1 ORDER BY cm.at DESC, cm.seq DESC LIMIT 1",
        (account, chat)).fetchone()
    return None if row is None else dict(row)


def read_upto(conn: sqlite3.Connection, account: str, chat: str, at: float, now: float) -> list[str]:
    """The account's phone read the chat up to ``at``: every unread inbound message until then is read (``read_at``)
    and no longer counted. Returns their ids."""
    ids = [r[0] for r in conn.execute(
        "SELECT message_id FROM chat_messages WHERE account = ? AND chat = ? AND unread = 1 AND at <= ?",
        (account, chat, at))]
    for message_id in ids:
        conn.execute("UPDATE inbound_messages SET read_at = ? WHERE account = ? AND id = ? AND read_at IS NULL",
                     (now, account, message_id))
    mark_read(conn, account, ids)
    return ids


def merge(conn: sqlite3.Connection, account: str, lid: str, phone: str, now: float) -> None:
    """The LID's chat becomes the phone's (one chat, not two): its messages, unread count and last message move; the
    LID's inbound rows get the phone number (what the read receipts and ``GET /messages?phone_number`` select)."""
    old = get(conn, account, lid)
    if old is None:
        conn.execute("UPDATE chats SET lid = ? WHERE account = ? AND id = ? AND lid IS NULL", (lid, account, phone))
        return
    conn.execute("UPDATE inbound_messages SET phone_number = ? WHERE account = ? AND phone_number IS NULL"
                 " AND group_id IS NULL AND id IN (SELECT message_id FROM chat_messages WHERE account = ?"
                 " AND chat = ? AND source = 'in')", (phone, account, account, lid))
    conn.execute("UPDATE chat_messages SET chat = ? WHERE account = ? AND chat = ?", (phone, account, lid))
    conn.execute("DELETE FROM chats WHERE account = ? AND id = ?", (account, lid))
    _touch(conn, account, phone, old["last_source"], old["last_message_id"], old["last_activity_at"], now, lid=lid,
           name=old["name"])
    recount(conn, account, phone)


def react(conn: sqlite3.Connection, account: str, message_id: str, sender: str, emoji: str) -> None:
    """A contact's reaction to a message of a chat ("" takes it back), kept beside the message's index row."""
    row = conn.execute("SELECT reactions FROM chat_messages WHERE account = ? AND message_id = ?",
                       (account, message_id)).fetchone()
    if row is None:
        return
    reactions = json.loads(row[0]) if row[0] else {}
    if emoji:
        reactions[sender] = emoji
    else:
        reactions.pop(sender, None)
    conn.execute("UPDATE chat_messages SET reactions = ? WHERE account = ? AND message_id = ?",
                 (json.dumps(reactions, ensure_ascii=False) if reactions else None, account, message_id))
