"""The worker's contact and chat events (issue 27) as the store keeps them: ``contact.updated`` (names, push names,
LID <-> phone pairs), ``history.sync`` (the phone's chats, contacts and past messages), and what a live message, a
reaction or the phone's own read changes in a chat. SQL only.

A history message is never a new message: no event of the log (so no webhook, no SSE), no unread count, no outbox
row; it is stored once per (account, chat jid, WhatsApp id) however often the phone sends it again, and not at all
when the gateway holds it already as a live message (ours or a contact's). Every field comes from the phone or a
contact: strings are cut, anything malformed is dropped.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from service.store import chat_index, contact_profiles
from service.store.ids import new_id

PHONE = re.compile(r"^\+[1-9][0-9]{5,16}$")
LID = re.compile(r"^[0-9]{1,40}@lid$")
GROUP = re.compile(r"^[0-9]{5,40}(-[0-9]{5,20})?@g\.us$")
JID = re.compile(r"^[0-9A-Za-z.:_-]{1,80}@[a-z.]{1,30}$")
MAX_CONTACTS = 200  # per contact.updated (the worker splits bigger batches)
MAX_ITEMS = 500  # chats, contacts or messages of one history.sync part
MAX_TEXT = 65536
MAX_NAME = 256
MAX_CONTENT = 65536  # a message's content JSON longer than this is dropped
STATUSES = ("pending", "sent", "delivered", "read", "played", "failed")


def _match(pattern: re.Pattern[str], value: Any) -> str | None:
    return value if isinstance(value, str) and pattern.match(value) else None


def _name(value: Any) -> str | None:
    return value[:MAX_NAME] if isinstance(value, str) and value.strip() else None


def _time(value: Any, default: float | None) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e11
    return float(value) if ok else default


def _identity(item: dict[str, Any]) -> tuple[str | None, str | None]:
    return _match(PHONE, item.get("phone_number")), _match(LID, item.get("lid"))


def _contact(conn: sqlite3.Connection, account: str, item: Any, now: float) -> None:
    """One contact of ``contact.updated`` or a history sync: a key absent (or null) is unknown, not cleared."""
    if not isinstance(item, dict):
        return
    phone, lid = _identity(item)
    contact_profiles.note(conn, account, phone, lid, now, push_name=_name(item.get("push_name")),
                          name=_name(item.get("name")))


def store_contacts(conn: sqlite3.Connection, account: str, event: dict[str, Any], now: float) -> None:
    contacts = event.get("contacts")
    for item in contacts[:MAX_CONTACTS] if isinstance(contacts, list) else []:
        _contact(conn, account, item, now)


def chat_of(conn: sqlite3.Connection, account: str, phone: str | None, lid: str | None,
            group: str | None) -> str | None:
    """The chat of a contact or group (the phone's chat for a LID whose phone is known)."""
    if group is not None:
        return group
    if phone is not None:
        return phone
    return chat_index.resolve(conn, account, lid) if lid is not None else None


def _history_chat(conn: sqlite3.Connection, account: str, item: Any, now: float) -> None:
    if not isinstance(item, dict):
        return
    group = _match(GROUP, item.get("group_id"))
    phone, lid = (None, None) if group else _identity(item)
    if phone or lid:
        contact_profiles.note(conn, account, phone, lid, now)
    chat = chat_of(conn, account, phone, lid, group)
    if chat is not None:
        chat_index.note_chat(conn, account, chat, _time(item.get("timestamp"), None), now,
                             name=_name(item.get("name")) if group else None, lid=lid)


def _known(conn: sqlite3.Connection, account: str, chat_jid: str, wa_id: str, from_me: bool) -> bool:
    """Whether the gateway holds this message already as a live one (ours in the outbox, or a contact's). By
    WhatsApp's id alone: the phone may name the chat by LID where the live message came by phone number."""
    table = "messages" if from_me else "inbound_messages"
    return conn.execute(f"SELECT 1 FROM {table} WHERE account = ? AND wa_id = ?", (account, wa_id)).fetchone() \
        is not None


def _content(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_CONTENT else None


def _history_message(conn: sqlite3.Connection, account: str, item: Any, now: float) -> bool:
    """One past message, once; whether it was stored."""
    if not isinstance(item, dict):
        return False
    wa_id, chat_jid = item.get("wa_id"), _match(JID, item.get("chat_jid"))
    if not isinstance(wa_id, str) or not 0 < len(wa_id) <= 128 or chat_jid is None:
        return False
    group, from_me = _match(GROUP, item.get("group_id")), item.get("from_me") is True
    phone, lid = (None, None) if group else _identity(item)
    if phone or lid:
        contact_profiles.note(conn, account, phone, lid, now,
                              push_name=None if from_me else _name(item.get("push_name")))
    chat = chat_of(conn, account, phone, lid, group)
    if chat is None or _known(conn, account, chat_jid, wa_id, from_me):
        return False
    participant = item.get("participant") if group and isinstance(item.get("participant"), dict) else None
    if participant is not None:  # who of the group sent it
        phone, lid = _identity(participant)
        if phone or lid:
            contact_profiles.note(conn, account, phone, lid, now, push_name=_name(item.get("push_name")))
    sent_at = _time(item.get("sent_at"), now)
    assert sent_at is not None
    kind = item.get("kind") if isinstance(item.get("kind"), str) and 0 < len(item["kind"]) <= 32 else "unknown"
    text = item["text"][:MAX_TEXT] if isinstance(item.get("text"), str) else None
    status = item.get("status") if item.get("status") in STATUSES else None
    message_id = new_id(sent_at)
    if not conn.execute(
        "INSERT INTO history_messages (account, id, wa_id, chat_jid, direction, phone_number, lid, group_id,"
        " push_name, kind, body, content, status, sent_at, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
        " ?, ?) ON CONFLICT (account, chat_jid, wa_id) DO NOTHING",
        (account, message_id, wa_id, chat_jid, "out" if from_me else "in", phone, lid, group,
         None if from_me else _name(item.get("push_name")), kind, text, _content(item.get("content")), status,
         sent_at, now),
    ).rowcount:
        return False
    chat_index.add(conn, account, chat, "history", message_id, sent_at, now)
    return True


def store_history(conn: sqlite3.Connection, account: str, event: dict[str, Any], now: float) -> int:
    """One part of a history sync: its contacts, chats, then messages; returns how many messages were new."""
    def items(name: str) -> list[Any]:
        found = event.get(name)
        return found[:MAX_ITEMS] if isinstance(found, list) else []

    for item in items("contacts"):
        _contact(conn, account, item, now)
    for item in items("chats"):
        _history_chat(conn, account, item, now)
    return sum(_history_message(conn, account, item, now) for item in items("messages"))


def timeline_at(sent_at: float, received_at: float) -> float:
    """Where a contact's live message sits in its chat. WhatsApp times it in whole seconds while ours are timed in
    milliseconds, so within its second the time it reached us places it: a reply received 0.8 s into the second of
    our message it quotes comes after it, not before. One that came later (delivered while we were offline) keeps
    its own second, at its end; one timed ahead of our clock keeps its own time."""
    if received_at < sent_at:
        return sent_at
    return min(received_at, sent_at + 0.999)


def inbound(conn: sqlite3.Connection, account: str, row: dict[str, Any], now: float) -> None:
    """A contact's live message just stored (store/inbound.py): its sender learned (push name, LID <-> phone), and
    one more unread message of its chat (the group's, or the contact's)."""
    phone, lid = row["phone_number"], _match(LID, row["lid"])
    if phone or lid:
        contact_profiles.note(conn, account, phone, lid, now, push_name=row["push_name"])
    chat = chat_of(conn, account, phone, lid, row["group_id"]) or row["chat_jid"]
    chat_index.add(conn, account, chat, "in", row["id"], timeline_at(row["sent_at"], row["received_at"]), now,
                   unread=True,
                   lid=lid if row["group_id"] is None else None)


def phone_read(conn: sqlite3.Connection, account: str, data: dict[str, Any] | None, now: float) -> None:
    """The account's own phone read a contact's chat (a stored ``chat.read``): its unread messages up to the newest
    one named are read, and the chat's unread count follows."""
    if data is None or not data.get("message_ids"):
        return
    marks = ",".join("?" * len(data["message_ids"]))
    rows = conn.execute(f"SELECT chat, MAX(at) FROM chat_messages WHERE account = ? AND message_id IN ({marks})"
                        " GROUP BY chat", (account, *data["message_ids"])).fetchall()
    for chat, at in rows:
        chat_index.read_upto(conn, account, chat, at, now)


def reaction(conn: sqlite3.Connection, account: str, data: dict[str, Any] | None) -> None:
    """A contact's reaction (a stored ``message.reaction``) shown on the message it names, when we know it."""
    if data is None or data.get("message_id") is None:
        return
    sender = data.get("phone_number") or data.get("lid") or data.get("chat_jid")
    if isinstance(sender, str):
        chat_index.react(conn, account, data["message_id"], sender, data.get("emoji") or "")


def group_named(conn: sqlite3.Connection, account: str, data: dict[str, Any] | None, now: float) -> None:
    """A group's subject as a stored ``group.updated`` or ``group.participants`` (create) gives it, or as the worker
    answered our own create or rename: its chat's name. A group we were just put in is a chat before its first
    message (WhatsApp lists it at once), so the chat is made when it is not there yet."""
    if data is None:
        return
    group, subject = _match(GROUP, data.get("group_id")), _name(data.get("subject"))
    if group is not None and subject is not None:
        chat_index.note_chat(conn, account, group, now, now, name=subject)
