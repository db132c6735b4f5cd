"""Storing what the worker hands over: inbound messages, receipts, session changes. SQL only.

``store_worker_event`` runs in the writer thread's transaction for each worker event, before the
gateway acknowledges it to the worker; a repeated event (the hand-over is at least once) changes
nothing and adds no second event to the log.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from service.states import WORKER_RECEIPTS
from service.store import (
    chat_events,
    contacts,
    event_log,
    inbound_actions,
    inbound_content,
    inbound_groups,
    inbound_media,
    inbound_status,
    outbox,
)
from service.store.ids import new_id
from service.store.paging import newest_first

# What a worker's message.status says about our outbox message.


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _group(event: dict[str, Any]) -> str | None:
    """The group a message came in (the worker's ``group_id``), when it is a well-formed group jid."""
    group = _str(event.get("group_id"))
    return group if group is not None and group.endswith("@g.us") and len(group) <= 64 else None


def public_message(row: dict[str, Any]) -> dict[str, Any]:
    """An inbound message as the API and the events show it: ``type`` is its kind (``text`` for text; ``kind``
    stays for older clients), and a media message carries ``media`` (``row["media"]``: inbound_media.attach)."""
    shown = {
        "id": row["id"], "direction": "in", "whatsapp_id": row["wa_id"], "phone_number": row["phone_number"],
        "lid": row["lid"], "chat_jid": row["chat_jid"], "push_name": row["push_name"], "type": row["kind"],
        "kind": row["kind"], "text": row["body"], "timestamp": event_log.iso(row["sent_at"]),
        "offline": bool(row["offline"]), "received_at": event_log.iso(row["received_at"]),
    }
    if row.get("group_id"):  # a group's message: who in it sent it (phone_number and lid say so too, kept as they were)
        shown["group_id"] = row["group_id"]
        shown["participant"] = {"phone_number": row["phone_number"], "lid": row["lid"]}
    shown.update(inbound_content.public(row))  # quoted; location, contacts, poll, raw_type; edits, revoked_at
    if row.get("media") is not None:
        shown["media"] = inbound_media.public(row["media"])
    return shown


def store_message(conn: sqlite3.Connection, account: str, event: dict[str, Any], now: float) -> dict[str, Any] | None:
    """A contact's message, once; returns its stored event, or None for a repeat or an unusable one."""
    wa_id, chat = _str(event.get("id")), _str(event.get("from_jid"))
    if wa_id is None or chat is None:
        return None
    phone, lid = _str(event.get("from")), _str(event.get("lid"))
    if conn.execute(
        "SELECT 1 FROM inbound_messages WHERE account = ? AND chat_jid = ? AND wa_id = ?", (account, chat, wa_id)
    ).fetchone() is not None:
        return None
    if conn.execute(  # the phone's history brought it already (by whichever jid): one message, and it is no new one
        "SELECT 1 FROM history_messages WHERE account = ? AND wa_id = ?", (account, wa_id)
    ).fetchone() is not None:
        return None
    sent_at = event.get("timestamp")
    sent_at = float(sent_at) if isinstance(sent_at, (int, float)) and sent_at > 0 else now
    text = event.get("text") if isinstance(event.get("text"), str) else None
    media = inbound_media.parse(event)
    message_id = new_id(now)
    kind = media["kind"] if media else _str(event.get("kind")) or "text"
    content = inbound_content.parse(kind, event)
    quoted_wa_id = _str(event.get("quoted_id"))
    quoted_id, quoted_direction = inbound_content.quoted(conn, account, chat, phone, quoted_wa_id)
    conn.execute(
        "INSERT INTO inbound_messages (account, id, wa_id, chat_jid, phone_number, lid, push_name, kind, body,"
        " sent_at, offline, received_at, quoted_wa_id, quoted_id, quoted_direction, content, group_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (account, message_id, wa_id, chat, phone, lid, _str(event.get("push_name")), kind, text, sent_at,
         int(bool(event.get("offline"))), now, quoted_wa_id, quoted_id, quoted_direction,
         json.dumps(content, ensure_ascii=False) if content is not None else None, _group(event)),
    )
    if media is not None:  # downloaded later (service/runtime/downloads.py): due at once
        inbound_media.insert(conn, account, message_id, media, now)
    row = get(conn, account, message_id)
    assert row is not None
    if phone is not None and row["group_id"] is None:  # wrote to us, not only in a group we share
        contacts.record_inbound(conn, account, phone, now)  # a known contact from now on (the governor)
    chat_events.inbound(conn, account, row, now)  # its chat: one more unread message; its sender's profile
    stored = event_log.append(conn, account, "message.received", public_message(row), now,
                              source_id=_str(event.get("event_id")), subject=row["group_id"] or phone or lid or chat)
    if media is not None and media["state"] == "failed":  # nothing can download it: said at once, as a failure
        event_log.append(conn, account, "media.failed", public_message(row), now, subject=phone or lid or chat)
    return stored


def store_undecryptable(conn: sqlite3.Connection, account: str, event: dict[str, Any],
                        now: float) -> dict[str, Any] | None:
    """A contact's message that could not be decrypted (the worker waited for its resends): one event, unless
    a readable copy was stored meanwhile. Only the event: there is no message to list."""
    wa_id, chat = _str(event.get("id")), _str(event.get("from_jid"))
    if wa_id is None or chat is None:
        return None
    if conn.execute(
        "SELECT 1 FROM inbound_messages WHERE account = ? AND chat_jid = ? AND wa_id = ?", (account, chat, wa_id)
    ).fetchone() is not None:
        return None
    if conn.execute(  # the phone's history brought it already (by whichever jid): one message, and it is no new one
        "SELECT 1 FROM history_messages WHERE account = ? AND wa_id = ?", (account, wa_id)
    ).fetchone() is not None:
        return None
    phone, lid = _str(event.get("from")), _str(event.get("lid"))
    sent_at = event.get("timestamp")
    attempts = event.get("attempts")
    data = {"whatsapp_id": wa_id, "phone_number": phone, "lid": lid, "chat_jid": chat,
            "timestamp": event_log.iso(float(sent_at)) if isinstance(sent_at, (int, float)) and sent_at > 0 else None,
            "attempts": attempts if isinstance(attempts, int) and attempts > 0 else 1,
            "error": _str(event.get("error"))}
    return event_log.append(conn, account, "message.undecryptable", data, now,
                         source_id=_str(event.get("event_id")), subject=phone or lid or chat)


def _participant_status(conn: sqlite3.Connection, account: str, event: dict[str, Any], wa_id: str, status: str,
                        participant: str, now: float) -> dict[str, Any] | None:
    """A group message's receipt from one participant (issue 26): its own ``message.status`` naming whose it is,
    once per participant and step (the worker's event id), beside the message's own status (the first of them)."""
    row = outbox.by_wa_id(conn, account, wa_id)
    if row is None or not outbox.is_group(row["phone_number"]):
        return None
    data = {"id": row["id"], "whatsapp_id": wa_id, "phone_number": None, "status": status, "reason": None,
            "group_id": row["phone_number"], "participant": {"phone_number": participant}}
    return event_log.append(conn, account, "message.status", data, now, source_id=_str(event.get("event_id")),
                            subject=row["phone_number"])


def _data(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """The data of an event just appended to the log (None for a repeat, which changes nothing again)."""
    return None if stored is None else json.loads(stored["payload"])["data"]


def store_worker_event(conn: sqlite3.Connection, account: str, event: dict[str, Any], now: float) -> dict[str, Any]:
    """Apply one worker event; returns what changed: {"event": stored event or None, "message": outbox row},
    and for a receipt that moved a message, "reached": the steps it filled (outbox.advance)."""
    kind = event.get("type")
    if kind == "message":
        return {"event": store_message(conn, account, event, now), "message": None}
    if kind == "message.status":
        status, wa_id = WORKER_RECEIPTS.get(event.get("status", "")), _str(event.get("id"))
        if not (status and wa_id):
            return {"event": None, "message": None}
        [(row, reached)] = inbound_status.advance_many(conn, account, [(None, wa_id, status)], now)
        participant = _str(event.get("participant"))
        stored = _participant_status(conn, account, event, wa_id, status, participant, now) if participant else None
        # "reached": the steps this receipt filled (outbox.advance), for the latency histograms.
        return {"event": stored, "message": row, **({"reached": reached} if reached else {})}
    if kind in inbound_actions.TYPES:  # a reaction, edit or revoke
        stored = inbound_actions.store_action(conn, account, event, now)
        if kind == "message.reaction":
            chat_events.reaction(conn, account, _data(stored))
        return {"event": stored, "message": None}
    if kind == "presence":
        return {"event": inbound_actions.store_presence(conn, account, event, now), "message": None}
    if kind == "poll.vote":
        return {"event": inbound_actions.store_poll_vote(conn, account, event, now), "message": None}
    if kind == "chat.read":
        stored = inbound_actions.store_chat_read(conn, account, event, now)
        chat_events.phone_read(conn, account, _data(stored), now)  # the chat's unread count follows the phone
        return {"event": stored, "message": None}
    if kind == "contact.updated":  # names, push names, LID <-> phone pairs: stored, no event of the log
        chat_events.store_contacts(conn, account, event, now)
        return {"event": None, "message": None}
    if kind == "history.sync":  # past messages: stored as history, never as new messages (no event)
        chat_events.store_history(conn, account, event, now)
        return {"event": None, "message": None}
    if kind in inbound_groups.TYPES:  # a group's participants or settings changed
        stored = inbound_groups.store_group_event(conn, account, event, now)
        chat_events.group_named(conn, account, _data(stored), now)  # a new subject names the group's chat
        return {"event": stored, "message": None}
    if kind == "message.undecryptable":
        return {"event": store_undecryptable(conn, account, event, now), "message": None}
    if kind == "session.status":
        data: dict[str, Any] = {"state": _str(event.get("state")), "phone_number": _str(event.get("phone_number")),
                "last_error": _str(event.get("last_error"))}
        unreachable = event.get("unreachable")
        if isinstance(unreachable, dict):  # state whatsapp_unreachable: the cause and the system error
            data["unreachable"] = {"cause": _str(unreachable.get("cause")), "detail": _str(unreachable.get("detail"))}
        if code := _str(event.get("pairing_code")):  # state pairing_code: the code to type on the phone
            data["pairing_code"] = code
        stored = event_log.append(conn, account, "session.status", data, now, source_id=_str(event.get("event_id")))
        return {"event": stored, "message": None}
    return {"event": None, "message": None}


def store_worker_events(conn: sqlite3.Connection, account: str, batch: list[dict[str, Any]],
                        now: float) -> list[dict[str, Any]]:
    """A whole batch in one transaction: either all of it is stored (and may be acknowledged) or none."""
    return [store_worker_event(conn, account, event, now) for event in batch]


def list_messages(conn: sqlite3.Connection, account: str, *, phone_number: str | None = None, limit: int = 50,
                  before_seq: int | None = None) -> list[dict[str, Any]]:
    """Newest first; ``before_seq`` continues after the last row of the previous page."""
    rows = newest_first(conn, "SELECT * FROM inbound_messages", {"account": account, "phone_number": phone_number},
                        limit=limit, before_seq=before_seq)
    return inbound_media.attach(conn, account, rows)


def get(conn: sqlite3.Connection, account: str, message_id: str) -> dict[str, Any] | None:
    """The message, with its media row under ``media`` (None without media)."""
    row = conn.execute("SELECT * FROM inbound_messages WHERE account = ? AND id = ?", (account, message_id)).fetchone()
    return inbound_media.attach(conn, account, [dict(row)])[0] if row is not None else None


def media_settled(conn: sqlite3.Connection, account: str, message_id: str, now: float, *,
                  sha256: str | None = None, size: int | None = None, descriptor: dict[str, Any] | None = None,
                  error: str | None = None) -> dict[str, Any] | None:
    """A download's end, with its event in the same transaction: ``media.stored`` (``sha256``, ``size``, and a
    new ``descriptor`` when the worker gave one) or ``media.failed`` (``error``). The event's data is the message
    as ``GET /messages/{id}`` shows it. None when the row was not downloading (it ended already)."""
    if error is None:
        assert sha256 is not None and size is not None
        changed = inbound_media.stored(conn, account, message_id, sha256, size, descriptor, now)
    else:
        changed = inbound_media.failed(conn, account, message_id, error, now)
    row = get(conn, account, message_id) if changed else None
    if row is None:
        return None
    return event_log.append(conn, account, "media.failed" if error else "media.stored", public_message(row), now,
                            subject=row["phone_number"] or row["lid"] or row["chat_jid"])
