"""What a contact does to a message (issue 25, item 2): a reaction, an edit of its own message, a revoke, a vote on
our poll; its presence (typing, online); and the account's own phone reading the contact's chat. SQL only.

Each worker event (``message.reaction``, ``message.edited``, ``message.revoked``) becomes one event of the log with
the same type, naming the message by its WhatsApp id and, when we know it, by ours (a contact's message we stored,
or one we sent). An edit replaces the stored message's text and keeps every version; a revoke marks it. Both apply
only to the contact's own message, and only once: the worker hands an event over at least once, so a repeat (its
``event_id`` stored already) changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from service.store import event_log, inbound_content

TYPES = ("message.reaction", "message.edited", "message.revoked")
MAX_TEXT = 65536  # an edited text longer than this is cut (WhatsApp's own limit is lower)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _seen(conn: sqlite3.Connection, account: str, source_id: str | None) -> bool:
    return source_id is not None and conn.execute(
        "SELECT 1 FROM events WHERE account = ? AND source_id = ?", (account, source_id)).fetchone() is not None


def _edit(conn: sqlite3.Connection, account: str, message_id: str, text: str | None, at: float, now: float) -> None:
    """The message's text becomes ``text``; ``edits`` keeps every version, the original first."""
    row = conn.execute("SELECT body, sent_at, edits FROM inbound_messages WHERE account = ? AND id = ?",
                       (account, message_id)).fetchone()
    original = {"text": row["body"], "timestamp": event_log.iso(row["sent_at"])}
    history = json.loads(row["edits"]) if row["edits"] else [original]
    history.append({"text": text, "timestamp": event_log.iso(at)})
    conn.execute("UPDATE inbound_messages SET body = ?, edits = ?, edited_at = ? WHERE account = ? AND id = ?",
                 (text, json.dumps(history, ensure_ascii=False), now, account, message_id))


def store_action(conn: sqlite3.Connection, account: str, event: dict[str, Any], now: float) -> dict[str, Any] | None:
    """A contact's reaction, edit or revoke, once; returns its stored event, or None for a repeat or an unusable one."""
    type_, wa_id, chat = event.get("type"), _str(event.get("id")), _str(event.get("from_jid"))
    source_id = _str(event.get("event_id"))
    if type_ not in TYPES or wa_id is None or chat is None or _seen(conn, account, source_id):
        return None
    phone, lid = _str(event.get("from")), _str(event.get("lid"))
    target_wa_id = _str(event.get("target_id"))
    direction = event.get("target_direction") if event.get("target_direction") in ("in", "out") else None
    message_id, found = inbound_content.quoted(conn, account, chat, phone, target_wa_id, direction)
    sent_at = event.get("timestamp")
    at = float(sent_at) if isinstance(sent_at, (int, float)) and sent_at > 0 else now
    data: dict[str, Any] = {
        "whatsapp_id": wa_id, "message_id": message_id, "message_whatsapp_id": target_wa_id,
        "direction": found or direction, "phone_number": phone, "lid": lid, "chat_jid": chat,
        "timestamp": event_log.iso(at),
    }
    if type_ == "message.reaction":
        emoji = event.get("emoji")
        data["emoji"] = emoji[:64] if isinstance(emoji, str) else ""  # "" removes the contact's reaction
    elif type_ == "message.edited":
        text = event.get("text")
        data["text"] = text[:MAX_TEXT] if isinstance(text, str) else None
        if message_id is not None and found == "in":  # only a contact's own message is edited
            _edit(conn, account, message_id, data["text"], at, now)
    elif message_id is not None and found == "in":  # a revoke, of the contact's own message
        conn.execute("UPDATE inbound_messages SET revoked_at = ? WHERE account = ? AND id = ? AND revoked_at IS NULL",
                     (now, account, message_id))
    return event_log.append(conn, account, type_, data, now, source_id=source_id, subject=phone or lid or chat)


PRESENCE_STATES = ("composing", "recording", "paused", "available", "unavailable")


def store_presence(conn: sqlite3.Connection, account: str, event: dict[str, Any], now: float) -> dict[str, Any] | None:
    """A contact typing, recording, online or away: one ``presence`` event, once (nothing else is stored)."""
    chat, state = _str(event.get("from_jid")), event.get("state")
    if chat is None or state not in PRESENCE_STATES:
        return None
    phone = _str(event.get("from"))
    last_seen = event.get("last_seen")
    data = {"phone_number": phone, "lid": _str(event.get("lid")), "chat_jid": chat, "state": state,
            "last_seen": event_log.iso(float(last_seen)) if isinstance(last_seen, (int, float)) and last_seen > 0
            else None}
    return event_log.append(conn, account, "presence", data, now, source_id=_str(event.get("event_id")),
                            subject=phone or data["lid"] or chat)


POLL_ERRORS = ("poll_unknown", "undecryptable")
MAX_OPTIONS = 64  # WhatsApp's polls have at most 12
MAX_READ_IDS = 1024  # ids of one read receipt kept


def store_poll_vote(conn: sqlite3.Connection, account: str, event: dict[str, Any],
                    now: float) -> dict[str, Any] | None:
    """A contact's vote on a poll we sent: one ``poll.vote`` naming the poll by WhatsApp's id and ours, once. The
    worker decrypted it: ``options`` the names chosen ([] withdraws the vote), or null with ``error``."""
    wa_id, chat = _str(event.get("id")), _str(event.get("from_jid"))
    if wa_id is None or chat is None:
        return None
    phone, lid = _str(event.get("from")), _str(event.get("lid"))
    poll_wa_id = _str(event.get("poll_id"))
    poll_id, _ = inbound_content.quoted(conn, account, chat, phone, poll_wa_id, "out")
    options = event.get("options")
    chosen = [o[:MAX_TEXT] for o in options[:MAX_OPTIONS] if isinstance(o, str)] if isinstance(options, list) else None
    sent_at = event.get("timestamp")
    data: dict[str, Any] = {
        "poll_id": poll_id, "whatsapp_id": poll_wa_id, "vote_whatsapp_id": wa_id, "phone_number": phone, "lid": lid,
        "chat_jid": chat, "options": chosen,
        "timestamp": event_log.iso(float(sent_at)) if isinstance(sent_at, (int, float)) and sent_at > 0 else None,
    }
    if chosen is None:  # not opened: say why (a vote the worker could not read is still a vote)
        data["error"] = event.get("error") if event.get("error") in POLL_ERRORS else "undecryptable"
    return event_log.append(conn, account, "poll.vote", data, now, source_id=_str(event.get("event_id")),
                            subject=phone or lid or chat)


def store_chat_read(conn: sqlite3.Connection, account: str, event: dict[str, Any],
                    now: float) -> dict[str, Any] | None:
    """The account's own phone read a contact's messages: one ``chat.read`` with their WhatsApp ids and ours (those
    we stored, in the same order), once."""
    chat, ids = _str(event.get("from_jid")), event.get("ids")
    wa_ids = [i for i in ids[:MAX_READ_IDS] if _str(i)] if isinstance(ids, list) else []
    if chat is None or not wa_ids:
        return None
    phone, lid = _str(event.get("from")), _str(event.get("lid"))
    ours = [inbound_content.quoted(conn, account, chat, phone, wa_id, "in")[0] for wa_id in wa_ids]
    read_at = event.get("timestamp")
    data = {"phone_number": phone, "lid": lid, "chat_jid": chat, "message_ids": [i for i in ours if i is not None],
            "whatsapp_ids": wa_ids,
            "timestamp": event_log.iso(float(read_at)) if isinstance(read_at, (int, float)) and read_at > 0 else None}
    return event_log.append(conn, account, "chat.read", data, now, source_id=_str(event.get("event_id")),
                            subject=phone or lid or chat)
