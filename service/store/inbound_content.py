"""What a contact's message holds besides text and media (issue 25): the message it quotes, and a location, contact
cards, a poll or, for a kind we do not know, WhatsApp's name for it. SQL only.

The worker's fields are the sender's: every string is cut, every list bounded, a malformed field dropped, so that
what is stored and shown has one shape whatever a contact sent. The quoted message is mapped to our id when we
know it (a contact's message we stored, or one we sent) at the time the reply is stored: it came before.
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

from service.store.event_log import iso

MAX_TEXT = 4096  # a name, address, question, option or vCard longer than this is cut
MAX_ITEMS = 64  # contact cards or poll options kept


def _text(value: Any) -> str | None:
    return value[:MAX_TEXT] if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _location(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {"latitude": _number(value.get("latitude")), "longitude": _number(value.get("longitude")),
            "name": _text(value.get("name")), "address": _text(value.get("address"))}


def _contacts(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        return None
    return [{"name": _text(c.get("name")), "vcard": _text(c.get("vcard"))} for c in value[:MAX_ITEMS]
            if isinstance(c, dict)]


def _poll(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    options = value.get("options")
    options = [o for o in (_text(x) for x in options[:MAX_ITEMS]) if o] if isinstance(options, list) else []
    return {"question": _text(value.get("question")), "options": options, "multiple": value.get("multiple") is True}


def parse(kind: str, event: dict[str, Any]) -> dict[str, Any] | None:
    """The ``content`` column's object for a message of ``kind``, or None (text, media, reactions)."""
    if kind == "location":
        found: Any = _location(event.get("location"))
    elif kind == "contacts":
        found = _contacts(event.get("contacts"))
    elif kind == "poll":
        found = _poll(event.get("poll"))
    elif kind == "unsupported":
        found = _text(event.get("raw_type")) or "unknown"
        kind = "raw_type"
    else:
        return None
    return {kind: found} if found is not None else None


def quoted(conn: sqlite3.Connection, account: str, chat: str, phone: str | None, quoted_wa_id: str | None,
           direction: str | None = None) -> tuple[str | None, str | None]:
    """(our id, "in" or "out") of the message a contact names (quotes, reacts to, edits), or (None, None) when we do
    not know it: the contact's own (stored from this chat or from its phone number's) or one we sent; ``direction``
    ("in" or "out") looks only there."""
    if quoted_wa_id is None:
        return None, None
    if direction != "out":
        row = conn.execute(
            "SELECT id FROM inbound_messages WHERE account = ? AND wa_id = ? AND (chat_jid = ? OR phone_number = ?)"
            " ORDER BY seq LIMIT 1", (account, quoted_wa_id, chat, phone)).fetchone()
        if row is not None:
            return str(row[0]), "in"
    if direction == "in":
        return None, None
    row = conn.execute("SELECT id FROM messages WHERE account = ? AND wa_id = ?", (account, quoted_wa_id)).fetchone()
    return (str(row[0]), "out") if row is not None else (None, None)


def public(row: dict[str, Any]) -> dict[str, Any]:
    """The message's ``quoted_id`` (WhatsApp's), ``quoted`` (ours, or null), and its kind's own fields."""
    shown: dict[str, Any] = {
        "quoted_id": row.get("quoted_wa_id"),
        "quoted": {"id": row["quoted_id"], "direction": row["quoted_direction"]} if row.get("quoted_id") else None,
    }
    if row.get("content"):
        shown.update(json.loads(row["content"]))
    if row.get("edits"):  # edited: every version, the original first (``text`` is the latest)
        shown["edits"] = json.loads(row["edits"])
    if row.get("revoked_at") is not None:
        shown["revoked_at"] = iso(row["revoked_at"])
    return shown
